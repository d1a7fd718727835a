//! The one HTTP error type. Every failure a client sees is rendered here as the original API's
//! envelope: `{"status":false,"message":…,"errorCode":<http>,"errors":[…]}`.

use std::borrow::Cow;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::store::StoreError;

/// One problem with one input field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The envelope as serialised; documented in the OpenAPI document as `ErrorEnvelope`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ErrorEnvelope)]
pub struct Envelope<'a> {
    /// Always `false`.
    #[schema(example = false)]
    pub status: bool,
    /// Human-readable reason.
    pub message: &'a str,
    /// The HTTP status code, repeated.
    #[serde(rename = "errorCode")]
    #[schema(minimum = 400, maximum = 599)]
    pub error_code: u16,
    /// Per-field problems (empty unless the input was invalid).
    pub errors: &'a [FieldError],
}

/// An error answered to the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: Cow<'static, str>,
    pub errors: Vec<FieldError>,
    /// Seconds after which a 429/503 may be retried.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            status,
            message: message.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 400 with per-field details.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let mut e = Self::bad_request("Validation Error");
        e.errors = errors;
        e
    }
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized")
    }
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    pub fn unprocessable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
        e.retry_after = Some(retry_after.max(1));
        e
    }
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    }
    pub fn unavailable() -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
        e.retry_after = Some(1);
        e
    }
    /// An upstream provider (Xendit, FCM, …) failed.
    pub fn bad_gateway(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, message)
    }
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// The envelope for a bare status (used for framework-generated errors).
    pub fn from_status(status: StatusCode) -> Self {
        let reason = status.canonical_reason().unwrap_or("Error");
        Self::new(status, reason)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadCursor => ApiError::bad_request("Invalid cursor"),
            StoreError::Throttled | StoreError::Unavailable(_) | StoreError::Conflict => {
                tracing::warn!(error = %e, "store unavailable");
                ApiError::unavailable()
            }
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Envelope {
            status: false,
            message: &self.message,
            error_code: self.status.as_u16(),
            errors: &self.errors,
        };
        let mut res = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

// Domain errors into the envelope. Each group keeps its conversions in its own block.

// --- auth errors ---
// --- end auth errors ---

// --- money errors ---
// --- end money errors ---

// --- other errors ---
// --- end other errors ---
