//! Authentication: JWT sessions, API keys, and (in `accounts`) signup, login and passwords.
//! The extractors that guard handlers (`AuthUser`, `ApiKeyHolder`) live in
//! [`crate::http::extract`].

pub mod accounts;
pub mod apikey;
pub mod identity;
pub mod otp;
pub mod password;
pub mod reset;
pub mod session;
pub mod token;

pub use accounts::Accounts;
pub use apikey::ApiKeys;
pub use otp::Otps;
pub use session::Sessions;
