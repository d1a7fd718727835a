//! The `auth` route group: signup and verification, login, password reset and change, session
//! extend/verify/logoff, deactivation. Handlers only translate HTTP: request bodies become
//! domain values here, rules live in [`crate::auth::accounts`].

use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::auth::accounts::{
    DeactivationReason, FullName, LoggedIn, LoginId, NewAccount, ReferralCode, SignupMode,
    Verification,
};
use crate::auth::password::NewPassword;
use crate::auth::{Accounts, Sessions};
use crate::domain::{Email, InvalidInput, Phone, Username};
use crate::http::error::{ApiError, Envelope, FieldError};
use crate::http::extract::{AuthUser, bearer};
use crate::http::{ClientIp, Json, Query};

/// A plain success answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusMessage {
    /// Always `true`.
    pub status: bool,
    pub message: String,
}

fn ok(message: &str) -> Json<StatusMessage> {
    Json(StatusMessage {
        status: true,
        message: message.to_owned(),
    })
}

/// A fresh token (`/signup`: the registration token; `/extend`: a new session token).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenOk {
    pub token: String,
}

/// `POST /check/email` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailAvailability {
    pub status: bool,
    pub available: bool,
    pub message: String,
}

/// `GET /verify` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenInfo {
    pub status: bool,
    pub message: String,
    pub user: String,
    pub agent: bool,
}

/// A successful login.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LoginOk {
    pub token: String,
    pub agent: bool,
}

impl From<LoggedIn> for LoginOk {
    fn from(l: LoggedIn) -> Self {
        LoginOk {
            token: l.token,
            agent: l.agent,
        }
    }
}

/// `POST /signup` input.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct SignupInput {
    /// 3-32 characters of a-z, 0-9, `_ . -` (stored lower-cased).
    #[schema(pattern = "^[A-Za-z0-9_.-]{3,32}$", example = "john_doe")]
    pub username: String,
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// Unique, case-insensitively.
    #[schema(format = Email, max_length = 254, example = "john@example.com")]
    pub email: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
        example = "John Doe"
    )]
    pub full_name: String,
    /// Indonesian mobile number (`628…`, `08…` or `+628…`); required for `OTP` mode.
    #[serde(default)]
    #[schema(pattern = "^(628[0-9]{7,12})?$", example = "628123456789")]
    pub phone_number: Option<String>,
    /// Another user's referral code.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9]{0,32}$")]
    pub referral_code: Option<String>,
    /// `LINK` (e-mail link, the default) or `OTP` (SMS code; needs `phone_number`).
    #[serde(default)]
    #[schema(pattern = "^(LINK|OTP)$", example = "LINK")]
    pub mode: Option<String>,
}

/// Checked in the order the original API reported problems (first one wins).
impl TryFrom<SignupInput> for NewAccount {
    type Error = InvalidInput;

    fn try_from(b: SignupInput) -> Result<NewAccount, InvalidInput> {
        let mode = SignupMode::parse(b.mode.as_deref())?;
        let username = Username::parse(&b.username)?;
        let email = Email::parse(&b.email)?;
        let full_name = FullName::parse(&b.full_name)?;
        let password = NewPassword::parse("password", &b.password)?;
        let phone = b
            .phone_number
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Phone::parse)
            .transpose()?;
        let verification = Verification::new(mode, phone)?;
        let referral_code = ReferralCode::parse(b.referral_code.as_deref())?;
        Ok(NewAccount {
            username,
            email,
            full_name,
            password,
            verification,
            referral_code,
        })
    }
}

/// `POST /auth` body.
#[derive(Deserialize, ToSchema)]
pub struct LoginReq {
    /// Username or e-mail.
    #[schema(min_length = 1, max_length = 254, example = "john_doe")]
    username: String,
    #[schema(max_length = 128)]
    password: String,
}

/// Log in by username or e-mail.
#[utoipa::path(
    post,
    path = "/auth",
    tag = "auth",
    request_body = LoginReq,
    responses(
        (status = 200, description = "Logged in", body = LoginOk),
        (status = 403, description = "Account disabled or not yet verified", body = Envelope),
        (status = 422, description = "Invalid Credential", body = Envelope),
        (status = 429, description = "Too many attempts from this IP or on this account", body = Envelope),
    )
)]
async fn login(
    State(accounts): State<Accounts>,
    ip: ClientIp,
    Json(req): Json<LoginReq>,
) -> Result<Json<LoginOk>, ApiError> {
    let id = LoginId::parse(&req.username);
    let done = accounts.login(&ip.bucket(), &id, &req.password).await?;
    Ok(Json(done.into()))
}

/// Register an account; verification by e-mail link (`LINK`) or SMS code (`OTP`).
#[utoipa::path(
    post,
    path = "/signup",
    tag = "auth",
    request_body = SignupInput,
    responses(
        (status = 201, description = "Account created, pending verification; `token` is the registration token (Bearer for `/verify-sign-up` and `/resend-otp`)", body = TokenOk),
        (status = 409, description = "Username, e-mail or phone already registered", body = Envelope),
        (status = 429, description = "Too many signups from this IP", body = Envelope),
    )
)]
async fn signup(
    State(accounts): State<Accounts>,
    ip: ClientIp,
    Json(req): Json<SignupInput>,
) -> Result<(StatusCode, Json<TokenOk>), ApiError> {
    let account = NewAccount::try_from(req)?;
    let token = accounts.signup(&ip.bucket(), &account).await?;
    Ok((StatusCode::CREATED, Json(TokenOk { token })))
}

/// `{email}` body.
#[derive(Deserialize, ToSchema)]
pub struct EmailReq {
    #[schema(format = Email, max_length = 254, example = "john@example.com")]
    email: String,
}

/// Whether an e-mail address is still free.
#[utoipa::path(
    post,
    path = "/check/email",
    tag = "auth",
    request_body = EmailReq,
    responses(
        (status = 200, description = "Availability", body = EmailAvailability),
        (status = 429, description = "Too many checks from this IP", body = Envelope),
    )
)]
async fn check_email(
    State(accounts): State<Accounts>,
    ip: ClientIp,
    Json(req): Json<EmailReq>,
) -> Result<Json<EmailAvailability>, ApiError> {
    accounts.count_email_check(&ip.bucket()).await?;
    let email = Email::parse(&req.email)?;
    let available = accounts.email_available(&email).await?;
    let message = if available {
        "Email is available"
    } else {
        "Email is already registered"
    };
    Ok(Json(EmailAvailability {
        status: true,
        available,
        message: message.into(),
    }))
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct TokenQuery {
    /// A single-use token from a mail link.
    #[serde(default)]
    token: Option<String>,
}

/// `POST /verify-sign-up` body: `otp` (OTP mode, registration token as Bearer) or `token`
/// (LINK mode).
#[derive(Deserialize, ToSchema)]
pub struct VerifySignupReq {
    /// The 6-digit SMS code.
    #[serde(default)]
    #[schema(nullable = false, pattern = "^[0-9]{6}$", example = "123456")]
    otp: Option<String>,
    /// The token of the verification link.
    #[serde(default)]
    #[schema(nullable = false)]
    token: Option<String>,
}

/// OTP mode: `{otp}` with the registration token as Bearer. LINK mode: the link's `token` in the
/// query or body.
#[utoipa::path(
    post,
    path = "/verify-sign-up",
    tag = "auth",
    params(TokenQuery),
    request_body = VerifySignupReq,
    security((), ("bearerAuth" = [])),
    responses(
        (status = 200, description = "Account verified", body = StatusMessage),
        (status = 400, description = "Neither `otp` nor `token` given, or the OTP expired / is wrong", body = Envelope),
        (status = 401, description = "Unknown, used or expired token", body = Envelope),
        (status = 422, description = "Wrong OTP", body = Envelope),
        (status = 429, description = "Too many wrong codes", body = Envelope),
    )
)]
async fn verify_signup(
    State(accounts): State<Accounts>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    Json(req): Json<VerifySignupReq>,
) -> Result<Json<StatusMessage>, ApiError> {
    if let Some(code) = req.otp.as_deref() {
        let register = bearer(&headers).ok_or_else(ApiError::unauthorized)?;
        accounts.verify_signup_otp(register, code).await?;
    } else if let Some(link) = q.token.as_deref().or(req.token.as_deref()) {
        accounts.verify_signup_link(link).await?;
    } else {
        return Err(ApiError::validation(vec![FieldError::new(
            "otp",
            "is required",
        )]));
    }
    Ok(ok("Account verified"))
}

/// The link in the verification mail, opened from a mail client: an HTML page, or JSON when the
/// client accepts only JSON.
#[utoipa::path(
    get,
    path = "/verify-sign-up",
    tag = "auth",
    params(TokenQuery),
    responses(
        (status = 200, description = "Account verified", content(
            (StatusMessage = "application/json"),
            (String = "text/html"),
        )),
        (status = 401, description = "Missing, unknown, used or expired token", body = Envelope),
    )
)]
// Answers either JSON or an HTML page (content negotiation), hence a plain `Response`; both are
// documented in the path's `content(..)`.
async fn verify_signup_link(
    State(accounts): State<Accounts>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Result<Response, ApiError> {
    let token = q.token.as_deref().ok_or_else(ApiError::unauthorized)?;
    accounts.verify_signup_link(token).await?;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json") && !v.contains("text/html"));
    if wants_json {
        return Ok(ok("Account verified").into_response());
    }
    Ok(Html(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Account verified</title></head>\
         <body><h1>Account verified</h1><p>Your account is active. You can now sign in to the app.</p></body></html>",
    )
    .into_response())
}

/// Send the verification (mail link or SMS code) again; registration token as Bearer.
#[utoipa::path(
    post,
    path = "/resend-otp",
    tag = "auth",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Verification sent", body = StatusMessage),
        (status = 429, description = "Too many resends", body = Envelope),
    )
)]
async fn resend_otp(
    State(accounts): State<Accounts>,
    ip: ClientIp,
    headers: HeaderMap,
) -> Result<Json<StatusMessage>, ApiError> {
    let register = bearer(&headers).ok_or_else(ApiError::unauthorized)?;
    accounts.resend_verification(&ip.bucket(), register).await?;
    Ok(ok("Verification sent"))
}

/// Mail a password-reset token (the answer is the same whether or not the e-mail is registered).
#[utoipa::path(
    post,
    path = "/request-reset-pwd",
    tag = "auth",
    request_body = EmailReq,
    responses(
        (status = 200, description = "Reset mail sent if the e-mail is registered", body = StatusMessage),
        (status = 429, description = "Too many requests", body = Envelope),
    )
)]
async fn request_reset(
    State(accounts): State<Accounts>,
    ip: ClientIp,
    Json(req): Json<EmailReq>,
) -> Result<Json<StatusMessage>, ApiError> {
    accounts.count_reset_request(&ip.bucket()).await?;
    let email = Email::parse(&req.email)?;
    accounts.request_reset(&email).await?;
    Ok(ok(
        "If the e-mail is registered, a password reset link has been sent",
    ))
}

/// `POST /reset-pwd` body.
#[derive(Deserialize, ToSchema)]
pub struct ResetReq {
    /// The new password.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    /// The reset token (alternatively as Bearer or `?token=`).
    #[serde(default)]
    token: Option<String>,
}

/// The reset token may come as Bearer, in the body (`token`) or in the query (`?token=`).
#[utoipa::path(
    post,
    path = "/reset-pwd",
    tag = "auth",
    params(TokenQuery),
    request_body = ResetReq,
    security((), ("bearerAuth" = [])),
    responses(
        (status = 200, description = "Password has been reset", body = StatusMessage),
        (status = 401, description = "Missing, unknown, used or expired reset token", body = Envelope),
        (status = 429, description = "Too much password work in flight from this address", body = Envelope),
    )
)]
async fn reset_pwd(
    State(accounts): State<Accounts>,
    ip: ClientIp,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    Json(req): Json<ResetReq>,
) -> Result<Json<StatusMessage>, ApiError> {
    let token = bearer(&headers)
        .map(str::to_owned)
        .or(req.token)
        .or(q.token)
        .ok_or_else(ApiError::unauthorized)?;
    let new = NewPassword::parse("password", &req.password)?;
    accounts.reset_password(&ip.bucket(), &token, &new).await?;
    Ok(ok("Password has been reset"))
}

/// `POST /update-pwd` body.
#[derive(Deserialize, ToSchema)]
pub struct UpdatePwdReq {
    #[schema(max_length = 128)]
    old_password: String,
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

/// Change the password (signs out every other session).
#[utoipa::path(
    post,
    path = "/update-pwd",
    tag = "auth",
    request_body = UpdatePwdReq,
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Password updated", body = StatusMessage),
        (status = 409, description = "Password was changed concurrently", body = Envelope),
        (status = 422, description = "Invalid Credential (old password wrong)", body = Envelope),
        (status = 429, description = "Too many wrong old passwords on this account (or password work in flight)", body = Envelope),
    )
)]
async fn update_pwd(
    State(accounts): State<Accounts>,
    user: AuthUser,
    Json(req): Json<UpdatePwdReq>,
) -> Result<Json<StatusMessage>, ApiError> {
    let new = NewPassword::parse("new_password", &req.new_password)?;
    accounts
        .update_password(&user.username, &user.sid, &req.old_password, &new)
        .await?;
    Ok(ok("Password updated"))
}

/// A new session token with a fresh expiry.
#[utoipa::path(
    get,
    path = "/extend",
    tag = "auth",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "New token", body = TokenOk))
)]
async fn extend(
    State(sessions): State<Sessions>,
    user: AuthUser,
) -> Result<Json<TokenOk>, ApiError> {
    let issued = sessions.extend(&user.claims).await?;
    Ok(Json(TokenOk {
        token: issued.token,
    }))
}

/// Whether the bearer token is a live session.
#[utoipa::path(
    get,
    path = "/verify",
    tag = "auth",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Token is valid", body = TokenInfo))
)]
async fn verify(user: AuthUser) -> Json<TokenInfo> {
    Json(TokenInfo {
        status: true,
        message: "Token is valid".into(),
        user: user.username.as_str().to_owned(),
        agent: user.agent,
    })
}

/// End this session.
#[utoipa::path(
    get,
    path = "/logoff",
    tag = "auth",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Logged off", body = StatusMessage))
)]
async fn logoff(
    State(accounts): State<Accounts>,
    user: AuthUser,
) -> Result<Json<StatusMessage>, ApiError> {
    accounts.log_off(&user.username, &user.sid).await?;
    Ok(ok("Logged off"))
}

/// `POST /deactivate` body.
#[derive(Deserialize, Default, ToSchema)]
pub struct DeactivateReq {
    #[serde(default)]
    #[schema(max_length = 1000)]
    reason: Option<String>,
}

/// Deactivate the account (every session ends).
#[utoipa::path(
    post,
    path = "/deactivate",
    tag = "auth",
    request_body = DeactivateReq,
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Account deactivated", body = StatusMessage))
)]
async fn deactivate(
    State(accounts): State<Accounts>,
    user: AuthUser,
    Json(req): Json<DeactivateReq>,
) -> Result<Json<StatusMessage>, ApiError> {
    let reason = DeactivationReason::parse(req.reason.as_deref())?;
    accounts.deactivate(&user.username, &reason).await?;
    Ok(ok("Account deactivated"))
}

/// The auth route group, with its documentation.
pub fn openapi_router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(signup))
        .routes(routes!(check_email))
        .routes(routes!(verify_signup, verify_signup_link))
        .routes(routes!(resend_otp))
        .routes(routes!(request_reset))
        .routes(routes!(reset_pwd))
        .routes(routes!(update_pwd))
        .routes(routes!(extend))
        .routes(routes!(verify))
        .routes(routes!(logoff))
        .routes(routes!(deactivate))
}

/// The auth route group.
pub fn router() -> Router<App> {
    openapi_router().split_for_parts().0
}
