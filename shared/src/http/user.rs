//! `user` route group: profile, referral code, profile image upload (JWT); image serving (local).

use axum::Router;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::response::Response;
use http::{StatusCode, header};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::app::App;
use crate::http::error::{ApiError, ApiResult, Envelope, FieldError};
use crate::http::extract::AuthUser;
use crate::http::{ClientIp, Json, Path};
use crate::profile::{Profile, ProfileUpdate, Profiles, image};
use serde::Deserialize;

/// The `multipart/form-data` body of `/user/update-profile-img` (documentation only; the handler
/// reads the parts itself).
#[derive(ToSchema)]
#[allow(dead_code)]
struct ProfileImageUpload {
    /// A JPEG, PNG or WebP image.
    #[schema(value_type = String, format = Binary)]
    profile_img: Vec<u8>,
}

/// Raw image bytes (documentation only).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
struct ImageBytes(Vec<u8>);

#[utoipa::path(
    get,
    path = "/user/profile",
    tag = "user",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The caller's profile", body = Profile),
        (status = 404, description = "Account does not exist", body = Envelope),
    )
)]
async fn get_profile(user: AuthUser, State(profiles): State<Profiles>) -> ApiResult<Json<Profile>> {
    Ok(Json(profiles.get(&user.username).await?))
}

#[utoipa::path(
    put,
    path = "/user/profile",
    tag = "user",
    request_body = ProfileUpdate,
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The profile: the name is changed at once; a new phone number is not — a code is sent to it and it shows as `pending_phone_number` until `POST /user/profile/phone/verify` (same answer whether or not the number is registered)", body = Profile),
        (status = 404, description = "Account does not exist", body = Envelope),
        (status = 429, description = "Too many phone-change codes for this account, number or address", body = Envelope),
    )
)]
async fn put_profile(
    user: AuthUser,
    State(profiles): State<Profiles>,
    ip: ClientIp,
    Json(req): Json<ProfileUpdate>,
) -> ApiResult<Json<Profile>> {
    Ok(Json(
        profiles.update(&user.username, &ip.bucket(), &req).await?,
    ))
}

/// `POST /user/profile/phone/verify` body.
#[derive(Deserialize, ToSchema)]
struct PhoneVerifyReq {
    /// The 6-digit code sent to the new number.
    #[schema(pattern = "^[0-9]{6}$", example = "123456")]
    otp: String,
}

#[utoipa::path(
    post,
    path = "/user/profile/phone/verify",
    tag = "user",
    request_body = PhoneVerifyReq,
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The number is verified and now the profile's `phone_number`", body = Profile),
        (status = 400, description = "Invalid OTP, or OTP Expired (no pending change, too many tries, or older than 10 minutes)", body = Envelope),
        (status = 404, description = "Account does not exist", body = Envelope),
        (status = 409, description = "Phone number is already registered (told only to whoever proved they hold it)", body = Envelope),
    )
)]
async fn verify_phone(
    user: AuthUser,
    State(profiles): State<Profiles>,
    Json(req): Json<PhoneVerifyReq>,
) -> ApiResult<Json<Profile>> {
    Ok(Json(profiles.verify_phone(&user.username, &req.otp).await?))
}

#[utoipa::path(
    get,
    path = "/user/referral-code",
    tag = "user",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The caller's referral code", body = ReferralCode),
        (status = 404, description = "Account does not exist", body = Envelope),
    )
)]
async fn referral_code(
    user: AuthUser,
    State(profiles): State<Profiles>,
) -> ApiResult<Json<ReferralCode>> {
    Ok(Json(ReferralCode {
        referral_code: profiles.referral_code(&user.username).await?,
    }))
}

/// `GET /user/referral-code`.
#[derive(Serialize, ToSchema)]
struct ReferralCode {
    referral_code: String,
}

/// The profile image was replaced.
#[derive(Serialize, ToSchema)]
struct ImageUpdated {
    #[schema(example = true)]
    status: bool,
    #[schema(example = "Profile image updated")]
    message: &'static str,
    /// The new image's URL.
    profile_img: String,
}

fn multipart_error(status: StatusCode, detail: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::from(image::ImageError::TooLarge)
    } else {
        ApiError::bad_request("Invalid multipart body")
            .with_errors(vec![FieldError::new("body", detail)])
    }
}

#[utoipa::path(
    post,
    path = "/user/update-profile-img",
    tag = "user",
    request_body(content = ProfileImageUpload, content_type = "multipart/form-data"),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Profile image replaced", body = ImageUpdated),
        (status = 400, description = "Invalid multipart body, `profile_img` missing or empty, or not a JPEG, PNG or WebP image", body = Envelope),
        (status = 413, description = "Image too large", body = Envelope),
    )
)]
async fn update_image(
    user: AuthUser,
    State(profiles): State<Profiles>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Json<ImageUpdated>> {
    let mut multipart = multipart.map_err(|r| multipart_error(r.status(), r.body_text()))?;
    let mut file = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(e.status(), e.body_text()))?
    {
        if field.name() == Some("profile_img") {
            let bytes = field
                .bytes()
                .await
                .map_err(|e| multipart_error(e.status(), e.body_text()))?;
            file = Some(bytes);
            break;
        }
    }
    let bytes = file
        .ok_or_else(|| ApiError::validation(vec![FieldError::new("profile_img", "is required")]))?;
    let url = profiles.replace_image(&user.username, bytes).await?;
    Ok(Json(ImageUpdated {
        status: true,
        message: "Profile image updated",
        profile_img: url,
    }))
}

#[utoipa::path(
    get,
    path = "/resources/user_profile_img/{file}",
    tag = "user",
    params(("file" = String, Path, description = "Image file name as found in `profile_img`")),
    responses(
        (status = 200, description = "The image", content((ImageBytes = "image/jpeg"), (ImageBytes = "image/png"), (ImageBytes = "image/webp"))),
        (status = 404, description = "Image Not Found (also for any name this service did not generate)", body = Envelope),
    )
)]
async fn serve_image(
    State(profiles): State<Profiles>,
    Path(file): Path<String>,
) -> ApiResult<Response> {
    let (bytes, content_type) = profiles
        .read_image(&file)
        .await?
        .ok_or_else(|| ApiError::not_found("Image Not Found"))?;
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "public, max-age=86400, immutable")
        // Images are loaded by client apps on other origins.
        .header("cross-origin-resource-policy", "cross-origin")
        .body(Body::from(bytes))
        .map_err(|_| ApiError::internal())
}

/// The user route group, with its documentation.
pub fn openapi_router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(get_profile, put_profile))
        .routes(routes!(verify_phone))
        .routes(routes!(referral_code))
        .routes(routes!(update_image).layer(DefaultBodyLimit::max(image::UPLOAD_BODY_LIMIT)))
        .routes(routes!(serve_image))
}

/// The user route group.
pub fn router() -> Router<App> {
    openapi_router().split_for_parts().0
}
