//! One-time secrets: 6-digit OTPs (HMAC-SHA256 with the server secret, 10-minute expiry, 5 tries,
//! single use) and opaque tokens (32 random bytes, stored as SHA-256, with an expiry) for
//! registration, e-mail verification links and password resets. Only hashes are stored.

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::error::ApiError;
use crate::store::{Cond, StoreError, TxOp, Update, from_item, keys, to_item};

/// How long an OTP is valid.
pub const OTP_TTL_SECS: i64 = 600;
/// Attempts (wrong or right) an OTP allows before it is burned.
pub const OTP_MAX_TRIES: i64 = 5;

/// What a one-time token is for (part of its key, so a token of one purpose never passes as another).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Returned by `/signup`; the Bearer token of `/verify-sign-up` and `/resend-otp`.
    Register,
    /// Carried by the e-mailed verification link (LINK mode).
    VerifyLink,
    /// E-mailed by `/request-reset-pwd`, consumed by `/reset-pwd`.
    ResetPwd,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "REGISTER",
            Purpose::VerifyLink => "VERIFY_LINK",
            Purpose::ResetPwd => "RESET_PWD",
        }
    }
    /// Lifetime of a token of this purpose.
    pub fn ttl_secs(self) -> i64 {
        match self {
            Purpose::Register | Purpose::VerifyLink => 86_400,
            Purpose::ResetPwd => 1_800,
        }
    }
}

/// A stored OTP.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct OtpRecord {
    pk: String,
    sk: String,
    hash: String,
    expires_at: i64,
    tries: i64,
    ttl: i64,
}

/// A stored one-time token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRecord {
    pub pk: String,
    pub sk: String,
    pub username: String,
    pub expires_at: i64,
    pub ttl: i64,
    /// The account's credential version when the token was issued (reset tokens): a password
    /// change, another reset or a deactivation since then makes the token useless.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv: Option<i64>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn otp_hash(app: &App, purpose: &str, identifier: &str, code: &str) -> String {
    // HMAC keyed with the server secret: a leaked table does not reveal codes by brute force alone.
    let mut mac = match Hmac::<Sha256>::new_from_slice(app.config.jwt_secret.expose().as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(format!("{purpose}:{identifier}:{code}").as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// A put that stores a fresh OTP for `purpose`/`identifier` (replacing any earlier one), and the code.
pub fn new_otp_op(app: &App, purpose: &str, identifier: &str) -> Result<(TxOp, String), ApiError> {
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
    let now = app.clock.epoch();
    let key = keys::otp(purpose, identifier);
    let rec = OtpRecord {
        pk: key.pk,
        sk: key.sk,
        hash: otp_hash(app, purpose, identifier, &code),
        expires_at: now + OTP_TTL_SECS,
        tries: 0,
        ttl: now + OTP_TTL_SECS,
    };
    Ok((
        TxOp::Put {
            item: to_item(&rec)?,
            cond: None,
        },
        code,
    ))
}

/// Spends one attempt on the OTP and compares it. On a match returns the delete that consumes the
/// code (to run in the same transaction as whatever the code unlocks; it fails if the code was
/// replaced meanwhile). Attempts are counted before comparing, so no more than
/// [`OTP_MAX_TRIES`] guesses — right or wrong — are ever compared.
pub async fn check_otp(
    app: &App,
    purpose: &str,
    identifier: &str,
    code: &str,
) -> Result<TxOp, ApiError> {
    let expired = || ApiError::bad_request("OTP Expired");
    let now = app.clock.epoch();
    let key = keys::otp(purpose, identifier);
    let cond = Cond::item_exists()
        .and(Cond::lt("tries", OTP_MAX_TRIES))
        .and(Cond::gt("expires_at", now));
    let item = match app
        .main
        .update(&key, Update::new().add("tries", 1), Some(cond))
        .await
    {
        Ok(item) => item,
        Err(StoreError::ConditionFailed) => return Err(expired()),
        Err(e) => return Err(e.into()),
    };
    let rec: OtpRecord = from_item(&item)?;
    let given = otp_hash(app, purpose, identifier, code.trim());
    if bool::from(given.as_bytes().ct_eq(rec.hash.as_bytes())) {
        Ok(TxOp::Delete {
            key,
            cond: Some(Cond::eq("hash", rec.hash)),
        })
    } else {
        Err(ApiError::bad_request("Invalid OTP"))
    }
}

/// The SHA-256 (hex) under which a token is stored.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A put that stores a new token of `purpose` for `username`, and the token itself.
pub fn new_token_op(
    app: &App,
    purpose: Purpose,
    username: &str,
) -> Result<(TxOp, String), ApiError> {
    Ok(token_op(app.clock.epoch(), purpose, username, None)?)
}

/// A put that stores a new token of `purpose` for `username` issued at `now` (bound to the
/// credential version `cv` when given), and the token itself.
pub fn token_op(
    now: i64,
    purpose: Purpose,
    username: &str,
    cv: Option<i64>,
) -> Result<(TxOp, String), StoreError> {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let key = keys::one_time_token(purpose.as_str(), &token_hash(&token));
    let exp = now + purpose.ttl_secs();
    let rec = TokenRecord {
        pk: key.pk,
        sk: key.sk,
        username: username.to_owned(),
        expires_at: exp,
        ttl: exp,
        cv,
    };
    Ok((
        TxOp::Put {
            item: to_item(&rec)?,
            cond: Some(Cond::item_absent()),
        },
        token,
    ))
}

/// The live token record, or 401.
pub async fn lookup_token(
    app: &App,
    purpose: Purpose,
    token: &str,
) -> Result<TokenRecord, ApiError> {
    if token.is_empty() || token.len() > 256 {
        return Err(ApiError::unauthorized());
    }
    let key = keys::one_time_token(purpose.as_str(), &token_hash(token));
    let item = app
        .main
        .get(&key)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let rec: TokenRecord = from_item(&item)?;
    if rec.expires_at <= app.clock.epoch() {
        return Err(ApiError::unauthorized());
    }
    Ok(rec)
}

/// The delete that consumes a token inside a transaction (fails if it is gone or expired).
pub fn consume_token_op(app: &App, purpose: Purpose, token: &str) -> TxOp {
    TxOp::Delete {
        key: keys::one_time_token(purpose.as_str(), &token_hash(token)),
        cond: Some(Cond::item_exists().and(Cond::gt("expires_at", app.clock.epoch()))),
    }
}
