//! The `auth` route group: signup and verification, login, password reset and change, session
//! extend/verify/logoff, deactivation. Handlers only translate HTTP; rules live in
//! `crate::auth::accounts`.

use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::auth::accounts::{self, LoginOk, SignupInput};
use crate::auth::{AuthUser, session};
use crate::error::{ApiError, FieldError};
use crate::http::{ClientIp, Json, Query};

/// The bearer token of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

fn ok(message: &str) -> Json<Value> {
    Json(json!({ "status": true, "message": message }))
}

#[derive(Deserialize)]
struct LoginReq {
    username: String,
    password: String,
}

async fn login(
    State(app): State<App>,
    ip: ClientIp,
    Json(req): Json<LoginReq>,
) -> Result<Json<LoginOk>, ApiError> {
    Ok(Json(
        accounts::login(&app, &ip.bucket(), &req.username, &req.password).await?,
    ))
}

async fn signup(
    State(app): State<App>,
    ip: ClientIp,
    Json(req): Json<SignupInput>,
) -> Result<Response, ApiError> {
    let token = accounts::signup(&app, &ip.bucket(), req).await?;
    Ok((StatusCode::CREATED, Json(json!({ "token": token }))).into_response())
}

#[derive(Deserialize)]
struct EmailReq {
    email: String,
}

async fn check_email(
    State(app): State<App>,
    ip: ClientIp,
    Json(req): Json<EmailReq>,
) -> Result<Json<Value>, ApiError> {
    let available = accounts::email_available(&app, &ip.bucket(), &req.email).await?;
    let message = if available {
        "Email is available"
    } else {
        "Email is already registered"
    };
    Ok(Json(
        json!({ "status": true, "available": available, "message": message }),
    ))
}

#[derive(Deserialize, Default)]
struct TokenQuery {
    #[serde(default)]
    token: Option<String>,
}

#[derive(Deserialize)]
struct VerifySignupReq {
    #[serde(default)]
    otp: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

/// OTP mode: `{otp}` with the registration token as Bearer. LINK mode: the link's `token` in the
/// query or body.
async fn verify_signup(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    Json(req): Json<VerifySignupReq>,
) -> Result<Json<Value>, ApiError> {
    if let Some(code) = req.otp.as_deref() {
        let register = bearer(&headers).ok_or_else(ApiError::unauthorized)?;
        accounts::verify_signup_otp(&app, register, code).await?;
    } else if let Some(link) = q.token.as_deref().or(req.token.as_deref()) {
        accounts::verify_signup_link(&app, link).await?;
    } else {
        return Err(ApiError::validation(vec![FieldError::new(
            "otp",
            "is required",
        )]));
    }
    Ok(ok("Account verified"))
}

/// The link in the verification mail, opened from a mail client.
async fn verify_signup_link(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Result<Response, ApiError> {
    let token = q.token.as_deref().ok_or_else(ApiError::unauthorized)?;
    accounts::verify_signup_link(&app, token).await?;
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

async fn resend_otp(
    State(app): State<App>,
    ip: ClientIp,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let register = bearer(&headers).ok_or_else(ApiError::unauthorized)?;
    accounts::resend_verification(&app, &ip.bucket(), register).await?;
    Ok(ok("Verification sent"))
}

async fn request_reset(
    State(app): State<App>,
    ip: ClientIp,
    Json(req): Json<EmailReq>,
) -> Result<Json<Value>, ApiError> {
    accounts::request_reset(&app, &ip.bucket(), &req.email).await?;
    Ok(ok(
        "If the e-mail is registered, a password reset link has been sent",
    ))
}

#[derive(Deserialize)]
struct ResetReq {
    password: String,
    #[serde(default)]
    token: Option<String>,
}

/// The reset token may come as Bearer, in the body (`token`) or in the query (`?token=`).
async fn reset_pwd(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    Json(req): Json<ResetReq>,
) -> Result<Json<Value>, ApiError> {
    let token = bearer(&headers)
        .map(str::to_owned)
        .or(req.token)
        .or(q.token)
        .ok_or_else(ApiError::unauthorized)?;
    accounts::reset_password(&app, &token, &req.password).await?;
    Ok(ok("Password has been reset"))
}

#[derive(Deserialize)]
struct UpdatePwdReq {
    old_password: String,
    new_password: String,
}

async fn update_pwd(
    State(app): State<App>,
    user: AuthUser,
    Json(req): Json<UpdatePwdReq>,
) -> Result<Json<Value>, ApiError> {
    accounts::update_password(
        &app,
        &user.username,
        &user.sid,
        &req.old_password,
        &req.new_password,
    )
    .await?;
    Ok(ok("Password updated"))
}

async fn extend(State(app): State<App>, user: AuthUser) -> Result<Json<Value>, ApiError> {
    let issued = session::extend(&app, &user.claims).await?;
    Ok(Json(json!({ "token": issued.token })))
}

async fn verify(user: AuthUser) -> Json<Value> {
    Json(
        json!({ "status": true, "message": "Token is valid", "user": user.username, "agent": user.agent }),
    )
}

async fn logoff(State(app): State<App>, user: AuthUser) -> Result<Json<Value>, ApiError> {
    session::revoke(&app, &user.username, &user.sid).await?;
    crate::audit::record(
        &app,
        crate::audit::LogKind::Audit,
        &user.username,
        Some(&user.username),
        "logoff",
        json!({ "sid": user.sid }),
    )
    .await;
    Ok(ok("Logged off"))
}

#[derive(Deserialize, Default)]
struct DeactivateReq {
    #[serde(default)]
    reason: Option<String>,
}

async fn deactivate(
    State(app): State<App>,
    user: AuthUser,
    Json(req): Json<DeactivateReq>,
) -> Result<Json<Value>, ApiError> {
    accounts::deactivate(&app, &user.username, req.reason.as_deref()).await?;
    Ok(ok("Account deactivated"))
}

/// The auth route group.
pub fn router() -> Router<App> {
    Router::new()
        .route("/auth", post(login))
        .route("/signup", post(signup))
        .route("/check/email", post(check_email))
        .route(
            "/verify-sign-up",
            post(verify_signup).get(verify_signup_link),
        )
        .route("/resend-otp", post(resend_otp))
        .route("/request-reset-pwd", post(request_reset))
        .route("/reset-pwd", post(reset_pwd))
        .route("/update-pwd", post(update_pwd))
        .route("/extend", get(extend))
        .route("/verify", get(verify))
        .route("/logoff", get(logoff))
        .route("/deactivate", post(deactivate))
}
