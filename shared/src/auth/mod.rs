//! Authentication: JWT sessions, API keys, and (in `accounts`) signup, login and passwords.

pub mod accounts;
pub mod apikey;
pub mod extract;
pub mod identity;
pub mod otp;
pub mod password;
pub mod reset;
pub mod session;
pub mod token;

pub use extract::{ApiKeyHolder, AuthUser};
