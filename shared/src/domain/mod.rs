//! Value types that can only be built valid: handlers receive them already checked.

pub mod account;
pub mod money;

pub use account::{AccountStatus, Email, LoginRecord, Phone, UserInfo, Username, WalletRecord};
pub use money::{Money, Points};

/// One problem with one input field (rendered in the error envelope's `errors`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
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

/// Input that cannot become a domain value: per-field problems, or one message the original
/// API answered as a bare 400 (`PhoneFormatErr`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    #[error("invalid input: {0:?}")]
    Fields(Vec<FieldError>),
    #[error("{0}")]
    Message(&'static str),
}

impl InvalidInput {
    /// One invalid field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        InvalidInput::Fields(vec![FieldError::new(field, message)])
    }
}
