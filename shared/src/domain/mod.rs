//! Value types that can only be built valid: handlers receive them already checked.

pub mod account;
pub mod money;

pub use account::{AccountStatus, Email, LoginRecord, Phone, UserInfo, Username, WalletRecord};
pub use money::{Money, Points};
