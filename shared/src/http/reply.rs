//! Response bodies several route groups share.

use serde::Serialize;
use utoipa::ToSchema;

/// An action succeeded: `{status: true, message}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    #[schema(example = true)]
    pub status: bool,
    /// What was done (the original API's wording).
    pub message: &'static str,
}

impl Done {
    /// `{status: true, message}`.
    pub fn new(message: &'static str) -> super::Json<Done> {
        super::Json(Done {
            status: true,
            message,
        })
    }
}
