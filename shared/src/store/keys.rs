//! Key builders for the single-table design: every `pk`/`sk` format lives here.

use super::Key;

/// `USER#{username}`
pub fn user_pk(username: &str) -> String {
    format!("USER#{username}")
}

/// The login record of a user.
pub fn login(username: &str) -> Key {
    Key::new(user_pk(username), "LOGIN")
}

/// The profile record of a user.
pub fn info(username: &str) -> Key {
    Key::new(user_pk(username), "INFO")
}

/// The wallet (balance and points) of a user.
pub fn wallet(username: &str) -> Key {
    Key::new(user_pk(username), "WALLET")
}

/// Sort-key prefix of a user's sessions.
pub const SESSION_PREFIX: &str = "SESSION#";

/// One session of a user.
pub fn session(username: &str, sid: &str) -> Key {
    Key::new(user_pk(username), format!("{SESSION_PREFIX}{sid}"))
}

/// An API key, by holder.
pub fn api_key(holder: &str) -> Key {
    Key::new(format!("APIKEY#{holder}"), "APIKEY")
}

/// Partition of all API keys (GSI1), so they can be listed.
pub const API_KEYS_GSI_PK: &str = "APIKEYS";

/// A fixed-window rate-limit counter.
pub fn rate(bucket: &str, window: i64) -> Key {
    Key::new(format!("RATE#{bucket}#{window}"), "RATE")
}

/// An idempotency record.
pub fn idempotency(scope: &str, key: &str) -> Key {
    Key::new(format!("IDEM#{scope}#{key}"), "IDEM")
}

/// Uniqueness guard of an e-mail address (normalised), written in the signup transaction.
pub fn email_guard(email: &str) -> Key {
    Key::new(format!("EMAIL#{email}"), "GUARD")
}

/// Uniqueness guard of a phone number (MSISDN).
pub fn phone_guard(phone: &str) -> Key {
    Key::new(format!("PHONE#{phone}"), "GUARD")
}

/// Uniqueness guard of a referral code (points to its owner).
pub fn refcode_guard(code: &str) -> Key {
    Key::new(format!("REFCODE#{code}"), "GUARD")
}

/// GSI1 partition of a user's INFO item, for login by e-mail.
pub fn email_gsi(email: &str) -> String {
    format!("EMAIL#{email}")
}

/// A one-time code (OTP) for a purpose (e.g. `SIGNUP`) and identifier (username, phone).
pub fn otp(purpose: &str, identifier: &str) -> Key {
    Key::new(format!("OTP#{purpose}#{identifier}"), "OTP")
}

/// A single-use or short-lived opaque token, by purpose and the SHA-256 of the token.
pub fn one_time_token(purpose: &str, token_hash: &str) -> Key {
    Key::new(format!("TOKEN#{purpose}#{token_hash}"), "TOKEN")
}

/// Partition of the local dev outbox for one recipient (e-mail, MSISDN or username).
pub fn outbox_pk(to: &str) -> String {
    format!("OUTBOX#{to}")
}

/// One deactivation of a user, with its reason (the original `deactivate_reason`).
pub fn deactivation(username: &str, at_ms: i64) -> Key {
    Key::new(user_pk(username), format!("DEACTIVATE#{at_ms:013}"))
}

/// Sort-key prefix of a user's addresses.
pub const ADDR_PREFIX: &str = "ADDR#";

/// One address of a user; ids are per-user integers, zero-padded so sort order is creation order.
pub fn address(username: &str, id: i64) -> Key {
    Key::new(user_pk(username), format!("{ADDR_PREFIX}{id:010}"))
}

/// Per-user address bookkeeping: count, default id, id counter, version (guards every change).
pub fn address_meta(username: &str) -> Key {
    Key::new(user_pk(username), "ADDRMETA")
}

/// Sort-key prefix of a user's device tokens.
pub const FCM_PREFIX: &str = "FCM#";

/// One device token of a user, by the SHA-256 (hex) of the token.
pub fn user_device(username: &str, token_hash: &str) -> Key {
    Key::new(user_pk(username), format!("{FCM_PREFIX}{token_hash}"))
}

/// Global owner record of a device token (a token belongs to at most one user).
pub fn device_owner(token_hash: &str) -> Key {
    Key::new(format!("FCMTOKEN#{token_hash}"), "OWNER")
}

/// A marketing offer.
pub fn offer(id: &str) -> Key {
    Key::new(format!("OFFER#{id}"), "OFFER")
}

/// GSI1 partition holding every offer (listing without a scan).
pub const OFFERS_GSI_PK: &str = "OFFERS";

/// A FAQ entry.
pub fn faq(id: &str) -> Key {
    Key::new(format!("FAQ#{id}"), "FAQ")
}

/// GSI1 partition holding every FAQ entry.
pub const FAQS_GSI_PK: &str = "FAQS";

/// A named counter (integer ids for offers and FAQ entries, like the original's).
pub fn counter(name: &str) -> Key {
    Key::new(format!("COUNTER#{name}"), "COUNTER")
}
