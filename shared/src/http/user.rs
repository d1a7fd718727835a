//! `user` route group: profile, referral code, profile image upload (JWT); image serving (local).

use axum::Router;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{StatusCode, header};
use serde_json::{Value, json};

use crate::app::App;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::{Json, Path};
use crate::profile::{self, Profile, ProfileUpdate, image};

async fn get_profile(user: AuthUser, State(app): State<App>) -> ApiResult<Json<Profile>> {
    Ok(Json(profile::get(&app, &user.username).await?))
}

async fn put_profile(
    user: AuthUser,
    State(app): State<App>,
    Json(req): Json<ProfileUpdate>,
) -> ApiResult<Json<Profile>> {
    Ok(Json(profile::update(&app, &user.username, &req).await?))
}

async fn referral_code(user: AuthUser, State(app): State<App>) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({ "referral_code": profile::referral_code(&app, &user.username).await? }),
    ))
}

fn multipart_error(status: StatusCode, detail: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        image::too_large()
    } else {
        ApiError::bad_request("Invalid multipart body")
            .with_errors(vec![FieldError::new("body", detail)])
    }
}

async fn update_image(
    user: AuthUser,
    State(app): State<App>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Json<Value>> {
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
    let url = image::replace(&app, &user.username, bytes).await?;
    Ok(Json(
        json!({ "status": true, "message": "Profile image updated", "profile_img": url }),
    ))
}

async fn serve_image(State(app): State<App>, Path(file): Path<String>) -> ApiResult<Response> {
    let (bytes, content_type) = image::read(&app, &file)
        .await?
        .ok_or_else(|| ApiError::not_found("Not Found"))?;
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "public, max-age=86400, immutable")
        // Images are loaded by client apps on other origins.
        .header("cross-origin-resource-policy", "cross-origin")
        .body(Body::from(bytes))
        .map_err(|_| ApiError::internal())
}

/// The user route group (image serving included: in aws mode images are served from S3 instead).
pub fn router() -> Router<App> {
    Router::new()
        .route("/user/profile", get(get_profile).put(put_profile))
        .route("/user/referral-code", get(referral_code))
        .route(
            "/user/update-profile-img",
            post(update_image).layer(DefaultBodyLimit::max(image::UPLOAD_BODY_LIMIT)),
        )
        .route("/resources/user_profile_img/{file}", get(serve_image))
}
