//! Extractors that refuse with the local server's envelope (as its own extractors do) instead of
//! axum's plain-text rejections.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::envelope;

/// A refused extraction, answered as the envelope.
pub(crate) struct Rejected(Response);

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        self.0
    }
}

/// Path parameters: 400 when they do not parse.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Rejected))]
pub(crate) struct Path<T>(pub T);

impl From<PathRejection> for Rejected {
    fn from(r: PathRejection) -> Self {
        let problem = ("path", r.body_text());
        Rejected(envelope(
            StatusCode::BAD_REQUEST,
            "Invalid path parameter",
            Some(problem),
        ))
    }
}

/// Query string: 400 with the reason when it does not parse.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Rejected))]
pub(crate) struct Query<T>(pub T);

impl From<QueryRejection> for Rejected {
    fn from(r: QueryRejection) -> Self {
        let problem = ("query", r.body_text());
        Rejected(envelope(
            StatusCode::BAD_REQUEST,
            "Invalid query string",
            Some(problem),
        ))
    }
}

/// JSON body: 415 without a JSON content type, 400 for malformed JSON or wrong field types, 413
/// past the body limit.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(Rejected))]
pub(crate) struct Json<T>(pub T);

impl From<JsonRejection> for Rejected {
    fn from(r: JsonRejection) -> Self {
        let (status, message, problem) = match r {
            JsonRejection::MissingJsonContentType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json",
                None,
            ),
            JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "Malformed JSON", None),
            JsonRejection::JsonDataError(e) => (
                StatusCode::BAD_REQUEST,
                "Invalid request body",
                Some(("body", e.body_text())),
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large", None)
            }
            other => (other.status(), "Invalid request body", None),
        };
        Rejected(envelope(status, message, problem))
    }
}
