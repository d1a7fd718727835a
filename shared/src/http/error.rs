//! The one HTTP error type. Every failure a client sees is rendered here as the original API's
//! envelope: `{"status":false,"message":…,"errorCode":<http>,"errors":[…]}`.

use std::borrow::Cow;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::store::StoreError;

pub use crate::domain::FieldError;
use crate::domain::InvalidInput;

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
impl From<crate::ratelimit::RateLimitError> for ApiError {
    fn from(e: crate::ratelimit::RateLimitError) -> Self {
        use crate::ratelimit::RateLimitError;
        match e {
            RateLimitError::Exceeded { retry_after } => ApiError::too_many_requests(retry_after),
            RateLimitError::Store(e) => e.into(),
        }
    }
}

impl From<crate::auth::password::HashRefused> for ApiError {
    fn from(e: crate::auth::password::HashRefused) -> Self {
        use crate::auth::password::HashRefused;
        match e {
            HashRefused::Busy => ApiError::unavailable(),
            HashRefused::ClientBusy => ApiError::too_many_requests(1),
        }
    }
}

impl From<crate::auth::password::HashFailed> for ApiError {
    fn from(_: crate::auth::password::HashFailed) -> Self {
        ApiError::internal()
    }
}

impl From<crate::auth::session::SessionError> for ApiError {
    fn from(e: crate::auth::session::SessionError) -> Self {
        use crate::auth::session::SessionError;
        match e {
            SessionError::Rejected => ApiError::unauthorized(),
            SessionError::Signing => ApiError::internal(),
            SessionError::Store(e) => e.into(),
        }
    }
}

impl From<crate::auth::otp::OtpError> for ApiError {
    fn from(e: crate::auth::otp::OtpError) -> Self {
        use crate::auth::otp::OtpError;
        match e {
            OtpError::Expired => ApiError::bad_request("OTP Expired"),
            OtpError::Wrong => ApiError::bad_request("Invalid OTP"),
            OtpError::UnknownToken => ApiError::unauthorized(),
            OtpError::Store(e) => e.into(),
        }
    }
}

impl From<crate::auth::apikey::ApiKeyError> for ApiError {
    fn from(e: crate::auth::apikey::ApiKeyError) -> Self {
        use crate::auth::apikey::ApiKeyError;
        match e {
            ApiKeyError::InvalidHolder => {
                ApiError::bad_request("holder must be 1-64 characters of A-Z a-z 0-9 - _ .")
            }
            ApiKeyError::HolderExists => ApiError::conflict("API key holder already exists"),
            ApiKeyError::Store(e) => e.into(),
        }
    }
}

impl From<crate::auth::accounts::QueueRefused> for ApiError {
    fn from(_: crate::auth::accounts::QueueRefused) -> Self {
        ApiError::unavailable()
    }
}

impl From<crate::auth::accounts::SignupError> for ApiError {
    fn from(e: crate::auth::accounts::SignupError) -> Self {
        use crate::auth::accounts::{SignupError, Taken};
        match e {
            SignupError::InvalidReferralCode => ApiError::bad_request("Invalid Referral Code"),
            SignupError::Taken(Taken::Username) => {
                ApiError::conflict("Username is already registered")
            }
            SignupError::Taken(Taken::Email) => ApiError::conflict("Email is already registered"),
            SignupError::Taken(Taken::Phone) => {
                ApiError::conflict("Phone number is already registered")
            }
            SignupError::StoredEmail(e) => e.into(),
            SignupError::Busy => ApiError::unavailable(),
            SignupError::RateLimited(e) => e.into(),
            SignupError::Hashing(e) => e.into(),
            SignupError::HashFailed(e) => e.into(),
            SignupError::Store(e) => e.into(),
        }
    }
}

impl From<crate::auth::accounts::VerifyError> for ApiError {
    fn from(e: crate::auth::accounts::VerifyError) -> Self {
        use crate::auth::accounts::VerifyError;
        match e {
            VerifyError::UnknownAccount => ApiError::unauthorized(),
            VerifyError::AlreadyVerified => ApiError::bad_request("Account is already verified"),
            VerifyError::PhoneRequired => ApiError::bad_request("PhoneRequired"),
            VerifyError::PhoneTaken => ApiError::conflict("Phone number is already registered"),
            VerifyError::Otp(e) => e.into(),
            VerifyError::RateLimited(e) => e.into(),
            VerifyError::Queue(e) => e.into(),
            VerifyError::Store(e) => e.into(),
        }
    }
}

impl From<crate::auth::accounts::LoginError> for ApiError {
    fn from(e: crate::auth::accounts::LoginError) -> Self {
        use crate::auth::accounts::LoginError;
        match e {
            LoginError::InvalidCredential => ApiError::unprocessable("Invalid Credential"),
            LoginError::Disabled => ApiError::forbidden("Account is Disabled"),
            LoginError::NotConfirmed { by_otp: true } => ApiError::forbidden("OTP Not Confirmed"),
            LoginError::NotConfirmed { by_otp: false } => {
                ApiError::forbidden("Account is Not Confirmed")
            }
            LoginError::Busy => ApiError::unavailable(),
            LoginError::RateLimited(e) => e.into(),
            LoginError::Hashing(e) => e.into(),
            LoginError::HashFailed(e) => e.into(),
            LoginError::Session(e) => e.into(),
            LoginError::Store(e) => e.into(),
        }
    }
}

impl From<crate::auth::accounts::ResetError> for ApiError {
    fn from(e: crate::auth::accounts::ResetError) -> Self {
        use crate::auth::accounts::ResetError;
        match e {
            ResetError::TokenSpent => ApiError::unauthorized(),
            ResetError::Otp(e) => e.into(),
            ResetError::RateLimited(e) => e.into(),
            ResetError::Queue(e) => e.into(),
            ResetError::Hashing(e) => e.into(),
            ResetError::HashFailed(e) => e.into(),
            ResetError::Store(e) => e.into(),
        }
    }
}

impl From<crate::auth::accounts::PasswordChangeError> for ApiError {
    fn from(e: crate::auth::accounts::PasswordChangeError) -> Self {
        use crate::auth::accounts::PasswordChangeError;
        match e {
            PasswordChangeError::NoAccount | PasswordChangeError::SessionGone => {
                ApiError::unauthorized()
            }
            PasswordChangeError::InvalidCredential => ApiError::unprocessable("Invalid Credential"),
            PasswordChangeError::ChangedConcurrently => {
                ApiError::conflict("Password was changed concurrently")
            }
            PasswordChangeError::RateLimited(e) => e.into(),
            PasswordChangeError::Hashing(e) => e.into(),
            PasswordChangeError::HashFailed(e) => e.into(),
            PasswordChangeError::Store(e) => e.into(),
        }
    }
}

impl From<crate::auth::accounts::DeactivateError> for ApiError {
    fn from(e: crate::auth::accounts::DeactivateError) -> Self {
        use crate::auth::accounts::DeactivateError;
        match e {
            DeactivateError::NoAccount => ApiError::unauthorized(),
            DeactivateError::Devices(e) => e.into(),
            DeactivateError::Store(e) => e.into(),
        }
    }
}
// --- end auth errors ---

// --- money errors ---
impl From<crate::wallet::WalletError> for ApiError {
    fn from(e: crate::wallet::WalletError) -> Self {
        use crate::wallet::WalletError;
        match e {
            WalletError::Insufficient => ApiError::bad_request("Insufficient Balance"),
            WalletError::InsufficientWithdrawable => {
                ApiError::bad_request("Insufficient Withdrawable Balance")
            }
            WalletError::InsufficientPoints => ApiError::bad_request("Insufficient Points"),
            WalletError::KeyReuse => key_reuse(),
            WalletError::Contended => ApiError::unavailable(),
            WalletError::Store(s) => s.into(),
        }
    }
}

/// A reused Idempotency-Key (422).
fn key_reuse() -> ApiError {
    ApiError::unprocessable("Idempotency-Key was used with a different request")
}

/// One invalid field (400 `Validation Error`).
fn invalid_field(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, message)])
}

impl From<crate::payments::xendit::XenditError> for ApiError {
    fn from(e: crate::payments::xendit::XenditError) -> Self {
        use crate::payments::xendit::XenditError;
        match e {
            XenditError::Unavailable(why) => {
                tracing::warn!(why, "xendit unavailable");
                ApiError::bad_gateway("Payment provider unavailable")
            }
            XenditError::RateLimited => {
                tracing::warn!("xendit rate limit exceeded");
                ApiError::bad_gateway("Payment provider unavailable")
            }
            XenditError::Auth(code) => {
                tracing::error!(code, "xendit refused our API key");
                ApiError::bad_gateway("Payment provider unavailable")
            }
            XenditError::NotFound => ApiError::not_found("Invoice Not Found"),
            XenditError::Rejected {
                status,
                code,
                message,
            } => {
                let text = if message.is_empty() { code } else { message };
                if status == 422 {
                    ApiError::unprocessable(text)
                } else {
                    ApiError::bad_request(text)
                }
            }
        }
    }
}

impl From<crate::points::RedeemError> for ApiError {
    fn from(e: crate::points::RedeemError) -> Self {
        use crate::points::RedeemError;
        match e {
            RedeemError::BelowMinimum { min } => {
                invalid_field("points", format!("must be at least {min}"))
            }
            RedeemError::TooLarge => invalid_field("points", "is too large"),
            RedeemError::AmountOutOfRange => invalid_field(
                "points",
                format!(
                    "must be a whole number of rupiah between 1 and {}",
                    crate::domain::money::MAX_AMOUNT
                ),
            ),
            RedeemError::Unexpected => ApiError::internal(),
            RedeemError::Wallet(w) => w.into(),
        }
    }
}

impl From<crate::payments::invoice::CheckoutError> for ApiError {
    fn from(e: crate::payments::invoice::CheckoutError) -> Self {
        use crate::payments::invoice::CheckoutError;
        match e {
            CheckoutError::TooManyOpen => ApiError::conflict("Too Many Open Invoices"),
            CheckoutError::ProviderMismatch => {
                ApiError::bad_gateway("Payment provider unavailable")
            }
            CheckoutError::Xendit(x) => x.into(),
            CheckoutError::Store(s) => s.into(),
        }
    }
}

impl From<crate::payments::invoice::SettleError> for ApiError {
    fn from(e: crate::payments::invoice::SettleError) -> Self {
        use crate::payments::invoice::SettleError;
        match e {
            SettleError::Contended => ApiError::unavailable(),
            SettleError::Xendit(x) => x.into(),
            SettleError::Wallet(w) => w.into(),
            SettleError::Store(s) => s.into(),
        }
    }
}

impl From<crate::payments::invoice::InvoiceError> for ApiError {
    fn from(e: crate::payments::invoice::InvoiceError) -> Self {
        use crate::payments::invoice::InvoiceError;
        match e {
            InvoiceError::NotFound => ApiError::not_found("Invoice Not Found"),
            InvoiceError::AlreadyPaid => ApiError::bad_request("Invoice Already Paid"),
            InvoiceError::Xendit(x) => x.into(),
            InvoiceError::Settle(s) => s.into(),
            InvoiceError::Store(s) => s.into(),
        }
    }
}

impl From<crate::payments::callback::CallbackError> for ApiError {
    fn from(e: crate::payments::callback::CallbackError) -> Self {
        use crate::payments::callback::{CallbackError, CallbackProblem};
        match e {
            CallbackError::Invalid(problems) => ApiError::validation(
                problems
                    .iter()
                    .map(|p| match p {
                        CallbackProblem::MissingId => FieldError::new("id", "is required"),
                        CallbackProblem::MissingExternalId => {
                            FieldError::new("external_id", "is required")
                        }
                        CallbackProblem::NotIdr => FieldError::new("currency", "must be IDR"),
                    })
                    .collect(),
            ),
            CallbackError::Xendit(x) => x.into(),
            CallbackError::Settle(s) => s.into(),
            CallbackError::Store(s) => s.into(),
        }
    }
}

impl From<crate::payments::payout::BankAccountError> for ApiError {
    fn from(e: crate::payments::payout::BankAccountError) -> Self {
        use crate::payments::payout::BankAccountError;
        match e {
            BankAccountError::UnsupportedBank => {
                invalid_field("bank_code", "is not a supported bank")
            }
            BankAccountError::BadNumber {
                code,
                min,
                max,
                ewallet,
            } => invalid_field(
                "account_number",
                if ewallet {
                    format!(
                        "must be the {min}-{max} digit mobile number (08…) registered with {code}"
                    )
                } else if min == max {
                    format!("must be {min} digits for {code}")
                } else {
                    format!("must be {min}-{max} digits for {code}")
                },
            ),
            BankAccountError::BadHolder => invalid_field(
                "account_holder_name",
                "is required (at most 100 characters)",
            ),
            BankAccountError::TooMany => ApiError::bad_request("At most 10 bank accounts"),
            BankAccountError::Exists => ApiError::conflict("Bank account already registered"),
            BankAccountError::Store(s) => s.into(),
        }
    }
}

impl From<crate::payments::payout::PayoutError> for ApiError {
    fn from(e: crate::payments::payout::PayoutError) -> Self {
        use crate::payments::payout::PayoutError;
        match e {
            PayoutError::UnknownBankAccount => ApiError::not_found("Bank Account Not Found"),
            PayoutError::KeyReuse => key_reuse(),
            PayoutError::Rejected { message } => ApiError::bad_request(if message.is_empty() {
                "Payout Rejected".into()
            } else {
                message
            }),
            PayoutError::Vanished => ApiError::internal(),
            PayoutError::Xendit(x) => x.into(),
            PayoutError::Wallet(w) => w.into(),
            PayoutError::Store(s) => s.into(),
        }
    }
}

impl From<crate::payments::voucher::InvalidVoucherCode> for ApiError {
    fn from(_: crate::payments::voucher::InvalidVoucherCode) -> Self {
        invalid_field("voucher_code", "must be 3-32 letters, digits, _ or -")
    }
}

impl From<crate::payments::voucher::VoucherError> for ApiError {
    fn from(e: crate::payments::voucher::VoucherError) -> Self {
        use crate::payments::voucher::VoucherError;
        match e {
            VoucherError::NotFound => ApiError::not_found("Voucher Not Found"),
            VoucherError::Exists => ApiError::conflict("Voucher already exists"),
            VoucherError::Expired => ApiError::bad_request("Voucher Expired"),
            VoucherError::QuotaExceeded => ApiError::bad_request("Voucher Quota Exceeded"),
            VoucherError::AlreadyRedeemed => ApiError::conflict("Voucher Already Redeemed"),
            VoucherError::Contended => ApiError::unavailable(),
            VoucherError::Store(s) => s.into(),
        }
    }
}

impl From<crate::payments::catalog::UnknownBankKind> for ApiError {
    fn from(_: crate::payments::catalog::UnknownBankKind) -> Self {
        invalid_field("type", "must be DISBURSEMENT or VA")
    }
}

impl From<crate::payments::catalog::CatalogError> for ApiError {
    fn from(e: crate::payments::catalog::CatalogError) -> Self {
        use crate::payments::catalog::CatalogError;
        match e {
            CatalogError::Xendit(x) => x.into(),
            CatalogError::Store(s) => s.into(),
        }
    }
}

impl From<crate::payments::payer::PayerError> for ApiError {
    fn from(e: crate::payments::payer::PayerError) -> Self {
        use crate::payments::payer::PayerError;
        match e {
            PayerError::Unknown => ApiError::not_found("Account does not exist"),
            PayerError::Disabled => ApiError::forbidden("Account is Disabled"),
            PayerError::Store(s) => s.into(),
        }
    }
}

impl From<crate::payments::sync::SyncError> for ApiError {
    fn from(e: crate::payments::sync::SyncError) -> Self {
        match e {
            crate::payments::sync::SyncError::Store(s) => s.into(),
        }
    }
}
// --- end money errors ---

// --- other errors ---
impl From<InvalidInput> for ApiError {
    fn from(e: InvalidInput) -> Self {
        match e {
            InvalidInput::Fields(errors) => ApiError::validation(errors),
            InvalidInput::Message(message) => ApiError::bad_request(message),
        }
    }
}
impl From<crate::address::AddressError> for ApiError {
    fn from(e: crate::address::AddressError) -> Self {
        use crate::address::{AddressError, MAX_ADDRESSES};
        match e {
            AddressError::NotFound => ApiError::not_found("Address Not Found"),
            AddressError::LimitReached => ApiError::bad_request(format!(
                "Address limit reached: at most {MAX_ADDRESSES} addresses per user"
            )),
            AddressError::Busy => ApiError::unavailable(),
            AddressError::Store(e) => e.into(),
        }
    }
}
impl From<crate::devices::DeviceError> for ApiError {
    fn from(e: crate::devices::DeviceError) -> Self {
        use crate::devices::DeviceError;
        match e {
            DeviceError::NotFound => ApiError::not_found("Token Not Found"),
            DeviceError::Busy => ApiError::unavailable(),
            DeviceError::Store(e) => e.into(),
        }
    }
}
impl From<crate::devices::PushError> for ApiError {
    fn from(e: crate::devices::PushError) -> Self {
        use crate::devices::PushError;
        match e {
            PushError::UnknownAccount => ApiError::not_found("Account does not exist"),
            PushError::Queue(_) => ApiError::unavailable(),
            PushError::Store(e) => e.into(),
        }
    }
}
impl From<crate::marketing::MarketingError> for ApiError {
    fn from(e: crate::marketing::MarketingError) -> Self {
        use crate::marketing::MarketingError;
        match e {
            MarketingError::Invalid(e) => e.into(),
            MarketingError::FaqNotFound => ApiError::not_found("FAQ Not Found"),
            MarketingError::BadCounter => ApiError::internal(),
            MarketingError::Store(e) => e.into(),
        }
    }
}
impl From<crate::devtools::DevUserError> for ApiError {
    fn from(e: crate::devtools::DevUserError) -> Self {
        match e {
            crate::devtools::DevUserError::Taken => {
                ApiError::conflict("Username is already registered")
            }
            crate::devtools::DevUserError::Store(e) => e.into(),
        }
    }
}
impl From<crate::realtime::RealtimeError> for ApiError {
    fn from(e: crate::realtime::RealtimeError) -> Self {
        use crate::realtime::RealtimeError;
        match e {
            RealtimeError::Unauthorized => ApiError::unauthorized(),
            RealtimeError::Session(e) => e.into(),
            RealtimeError::Store(e) => e.into(),
        }
    }
}
impl From<crate::blobs::BlobError> for ApiError {
    fn from(e: crate::blobs::BlobError) -> Self {
        match e {
            crate::blobs::BlobError::BadName => ApiError::not_found("Not Found"),
            crate::blobs::BlobError::Io(msg) => {
                tracing::error!(error = %msg, "blob store failed");
                ApiError::unavailable()
            }
        }
    }
}
impl From<crate::profile::ProfileError> for ApiError {
    fn from(e: crate::profile::ProfileError) -> Self {
        use crate::profile::ProfileError;
        match e {
            ProfileError::NoAccount => ApiError::not_found("Account does not exist"),
            ProfileError::Invalid(e) => e.into(),
            ProfileError::PhoneTaken => ApiError::conflict("Phone number is already registered"),
            ProfileError::OtpExpired => ApiError::bad_request("OTP Expired"),
            ProfileError::Concurrent => ApiError::conflict("Profile was changed concurrently"),
            ProfileError::Otp(e) => e.into(),
            ProfileError::RateLimited(e) => e.into(),
            ProfileError::Queue(_) => ApiError::unavailable(),
            ProfileError::Blob(e) => e.into(),
            ProfileError::Store(e) => e.into(),
        }
    }
}

impl From<crate::profile::image::ImageError> for ApiError {
    fn from(e: crate::profile::image::ImageError) -> Self {
        use crate::profile::image::ImageError;
        match e {
            ImageError::TooLarge => ApiError::new(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                "File too large: the maximum is 2 MiB",
            ),
            ImageError::Empty => ApiError::bad_request("profile_img is empty"),
            ImageError::NotAnImage => {
                ApiError::bad_request("profile_img must be a JPEG, PNG or WebP image")
            }
            ImageError::Busy => ApiError::unavailable(),
            ImageError::Profile(e) => e.into(),
            ImageError::Blob(e) => e.into(),
            ImageError::Store(e) => e.into(),
        }
    }
}
// --- end other errors ---
