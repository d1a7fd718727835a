//! Who may call a handler, stated in its signature: `AuthUser` (JWT + live session) or
//! `ApiKeyHolder` (Basic holder:key).

use axum::extract::FromRequestParts;
use base64::Engine;
use http::header::AUTHORIZATION;
use http::request::Parts;

use super::token::Claims;
use super::{apikey, session};
use crate::app::App;
use crate::error::ApiError;

/// An authenticated user with a live session.
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub username: String,
    pub agent: bool,
    pub sid: String,
    /// The verified claims (for `/extend`).
    pub claims: Claims,
}

/// The bearer token of a request, if it carries one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<App> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        let claims = session::check(app, token).await?;
        Ok(AuthUser {
            username: claims.user.clone(),
            agent: claims.agent,
            sid: claims.sid.clone(),
            claims,
        })
    }
}

/// A caller authenticated with an API key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyHolder(pub String);

/// Decodes `Basic base64(holder:key)`.
pub fn basic(parts: &Parts) -> Option<(String, String)> {
    let v = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (holder, key) = text.split_once(':')?;
    Some((holder.to_owned(), key.to_owned()))
}

impl FromRequestParts<App> for ApiKeyHolder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let (holder, key) = basic(parts).ok_or_else(ApiError::unauthorized)?;
        if apikey::verify(app, &holder, &key).await? {
            Ok(ApiKeyHolder(holder))
        } else {
            Err(ApiError::unauthorized())
        }
    }
}
