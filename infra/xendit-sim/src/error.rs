//! The two error shapes the simulator answers: Xendit's `{error_code, message}` on everything that
//! stands in for Xendit, and the local server's envelope where the server's own extractors would
//! have refused the request (a control body, query or path that does not parse).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

/// A Xendit-shaped error answer (`{error_code, message}`).
#[derive(Debug)]
pub(crate) struct XErr {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// `Retry-After` seconds (429 answers).
    retry_after: Option<u64>,
}

impl XErr {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        XErr {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error with a `Retry-After` header.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 400 `API_VALIDATION_ERROR`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "API_VALIDATION_ERROR", message)
    }

    /// 404 `INVOICE_NOT_FOUND_ERROR`.
    pub fn invoice_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "INVOICE_NOT_FOUND_ERROR",
            "Invoice not found",
        )
    }

    /// The Xendit error code (tests of the pure steps).
    #[cfg(test)]
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for XErr {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(json!({ "error_code": self.code, "message": self.message })),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        res
    }
}

/// The local server's error envelope, field for field (`{status: false, message, errorCode,
/// errors: [{field, message}]}`): the control routes are served by the local server and refuse
/// unreadable input as its own routes do.
#[derive(Serialize)]
struct Envelope<'a> {
    status: bool,
    message: &'a str,
    #[serde(rename = "errorCode")]
    error_code: u16,
    errors: Vec<FieldProblem>,
}

#[derive(Serialize)]
struct FieldProblem {
    field: &'static str,
    message: String,
}

/// An envelope answer; `problem` is the `(field, reason)` of an input that did not parse.
pub(crate) fn envelope(
    status: StatusCode,
    message: &str,
    problem: Option<(&'static str, String)>,
) -> Response {
    let body = Envelope {
        status: false,
        message,
        error_code: status.as_u16(),
        errors: problem
            .map(|(field, message)| FieldProblem { field, message })
            .into_iter()
            .collect(),
    };
    (status, Json(body)).into_response()
}
