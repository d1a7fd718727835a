//! Extractors whose rejections are the error envelope instead of axum's plain-text bodies.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::header::AUTHORIZATION;
use http::request::Parts;
use http::{HeaderMap, StatusCode};

use crate::auth::token::Claims;
use crate::auth::{ApiKeys, Sessions};
use crate::domain::Username;
use crate::http::error::ApiError;

/// JSON body: 415 without a JSON content type, 400 for malformed JSON or wrong field types,
/// 413 past the body limit. Also a JSON response.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json",
            ),
            JsonRejection::JsonSyntaxError(_) => ApiError::bad_request("Malformed JSON"),
            JsonRejection::JsonDataError(e) => {
                ApiError::bad_request("Invalid request body").with_errors(vec![
                    crate::http::error::FieldError::new("body", e.body_text()),
                ])
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large")
            }
            other => ApiError::new(other.status(), "Invalid request body"),
        }
    }
}

/// Query string: 400 with the reason when it does not parse.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request("Invalid query string").with_errors(vec![
            crate::http::error::FieldError::new("query", r.body_text()),
        ])
    }
}

/// Path parameters: 400 when they do not parse (e.g. a non-numeric id).
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request("Invalid path parameter").with_errors(vec![
            crate::http::error::FieldError::new("path", r.body_text()),
        ])
    }
}

/// The caller's IP address as seen by the edge: API Gateway's `sourceIp` in Lambda, the socket
/// peer in the local server. `X-Forwarded-For` is deliberately ignored: clients can forge it, and
/// rate limits keyed on it would be trivially bypassed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    /// A stable string for rate-limit buckets: the IPv4 address, or the /64 an IPv6 address is
    /// in (one subscriber usually holds a whole /64, so per-address limits would be trivially
    /// bypassed by cycling through it). IPv4-mapped IPv6 addresses count as their IPv4 address.
    pub fn bucket(&self) -> String {
        match self.0 {
            None => "unknown".into(),
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                    format!("{net}/64")
                }
            },
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        use lambda_http::request::RequestContext;
        if let Some(ctx) = parts.extensions.get::<RequestContext>() {
            let ip = match ctx {
                RequestContext::ApiGatewayV2(c) => {
                    c.http.source_ip.as_deref().and_then(|s| s.parse().ok())
                }
                RequestContext::WebSocket(c) => {
                    c.identity.source_ip.as_deref().and_then(|s| s.parse().ok())
                }
                _ => None,
            };
            return Ok(ClientIp(ip));
        }
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientIp(ip))
    }
}

// --- auth extractors ---

/// An authenticated user with a live session (JWT bearer token whose session is stored and
/// whose account still accepts it). Works with any state that can give [`Sessions`].
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub username: Username,
    pub agent: bool,
    pub sid: String,
    /// The verified claims (for `/extend`).
    pub claims: Claims,
}

/// The bearer token of a request, if it carries one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser
where
    Sessions: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let claims = Sessions::from_ref(state).check(token).await?;
        Ok(AuthUser {
            username: Username::from_stored(claims.user.clone()),
            agent: claims.agent,
            sid: claims.sid.clone(),
            claims,
        })
    }
}

/// A caller authenticated with an API key (`Authorization: Basic base64(holder:key)`). Works
/// with any state that can give [`ApiKeys`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyHolder(pub String);

/// Decodes `Basic base64(holder:key)`.
pub fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
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

impl<S: Send + Sync> FromRequestParts<S> for ApiKeyHolder
where
    ApiKeys: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let (holder, key) = basic(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        if ApiKeys::from_ref(state).verify(&holder, &key).await? {
            Ok(ApiKeyHolder(holder))
        } else {
            Err(ApiError::unauthorized())
        }
    }
}

// --- end auth extractors ---

/// The optional `Idempotency-Key` header: 1–128 visible characters (trimmed), else 400.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        v.to_str()
            .ok()
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 128)
            .map(|k| IdempotencyKey(Some(k.to_owned())))
            .ok_or_else(|| {
                ApiError::bad_request("Idempotency-Key must be 1-128 visible characters")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::ClientIp;

    fn bucket(ip: &str) -> String {
        ClientIp(Some(ip.parse().expect("ip"))).bucket()
    }

    #[test]
    fn ipv6_clients_are_bucketed_by_their_64_and_ipv4_by_address() {
        assert_eq!(bucket("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(
            bucket("2001:db8:1:2:ffff:eeee:dddd:cccc"),
            "2001:db8:1:2::/64"
        );
        assert_ne!(bucket("2001:db8:1:3::1"), bucket("2001:db8:1:2::1"));
        assert_eq!(bucket("203.0.113.7"), "203.0.113.7");
        assert_eq!(bucket("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(ClientIp(None).bucket(), "unknown");
    }
}
