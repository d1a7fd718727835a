//! One-time secrets: 6-digit OTPs (HMAC-SHA256 with the server secret, 10-minute expiry, 5 tries,
//! single use) and opaque tokens (32 random bytes, stored as SHA-256, with an expiry) for
//! registration, e-mail verification links and password resets. Only hashes are stored.

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::ClockRef;
use crate::config::Secret;
use crate::domain::account::Username;
use crate::ratelimit::{Limit, RateLimitError, RateLimiter};
use crate::store::{Cond, StoreError, TableRef, TxOp, Update, from_item, keys, to_item};

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

/// Why a code or a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum OtpError {
    /// No code is waiting, it expired, or its attempts are used up.
    #[error("OTP expired")]
    Expired,
    /// The code does not match.
    #[error("wrong OTP")]
    Wrong,
    /// The token is unknown, used or expired.
    #[error("unknown or expired token")]
    UnknownToken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How often codes and links may be sent (the original `otp_tracker`): per address and per
/// destination (`RATE_LIMIT_OTP_IP`, `RATE_LIMIT_OTP_ID`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendLimits {
    pub per_ip: Limit,
    pub per_identifier: Limit,
}

/// The SHA-256 (hex) under which a token is stored.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
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

/// One-time codes and tokens on the main table, codes keyed with the server secret, with their
/// send limits. Cheap to clone.
#[derive(Clone)]
pub struct Otps {
    table: TableRef,
    clock: ClockRef,
    /// HMAC key of stored codes (`SECRET_AUTH_CONFIG`).
    secret: Secret,
    limiter: RateLimiter,
    limits: SendLimits,
}

impl Otps {
    /// Codes and tokens in `table`, code hashes keyed with `secret`, sends limited by `limits`.
    pub fn new(
        table: TableRef,
        clock: ClockRef,
        secret: Secret,
        limiter: RateLimiter,
        limits: SendLimits,
    ) -> Otps {
        Otps {
            table,
            clock,
            secret,
            limiter,
            limits,
        }
    }

    fn otp_hash(&self, purpose: &str, identifier: &str, code: &str) -> String {
        // HMAC keyed with the server secret: a leaked table does not reveal codes by brute force
        // alone.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.secret.expose().as_bytes()) else {
            return String::new();
        };
        mac.update(format!("{purpose}:{identifier}:{code}").as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Counts one send of a code or link to `identifier` (a phone number or e-mail address)
    /// from `ip`, refused past either limit.
    pub async fn limit_send(&self, identifier: &str, ip: &str) -> Result<(), RateLimitError> {
        self.limiter
            .hit(&format!("otp:ip:{ip}"), self.limits.per_ip)
            .await?;
        self.limiter
            .hit(&format!("otp:id:{identifier}"), self.limits.per_identifier)
            .await
    }

    /// A put that stores a fresh OTP for `purpose`/`username` (replacing any earlier one), and
    /// the code.
    pub fn new_otp_op(
        &self,
        purpose: &str,
        username: &Username,
    ) -> Result<(TxOp, String), StoreError> {
        let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
        let now = self.clock.epoch();
        let key = keys::otp(purpose, username);
        let rec = OtpRecord {
            pk: key.pk,
            sk: key.sk,
            hash: self.otp_hash(purpose, username, &code),
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

    /// Spends one attempt on the OTP and compares it. On a match returns the delete that
    /// consumes the code (to run in the same transaction as whatever the code unlocks; it fails
    /// if the code was replaced meanwhile). Attempts are counted before comparing, so no more
    /// than [`OTP_MAX_TRIES`] guesses — right or wrong — are ever compared.
    pub async fn check_otp(
        &self,
        purpose: &str,
        username: &Username,
        code: &str,
    ) -> Result<TxOp, OtpError> {
        let now = self.clock.epoch();
        let key = keys::otp(purpose, username);
        let cond = Cond::item_exists()
            .and(Cond::lt("tries", OTP_MAX_TRIES))
            .and(Cond::gt("expires_at", now));
        let item = match self
            .table
            .update(&key, Update::new().add("tries", 1), Some(cond))
            .await
        {
            Ok(item) => item,
            Err(StoreError::ConditionFailed) => return Err(OtpError::Expired),
            Err(e) => return Err(e.into()),
        };
        let rec: OtpRecord = from_item(&item)?;
        let given = self.otp_hash(purpose, username, code.trim());
        if bool::from(given.as_bytes().ct_eq(rec.hash.as_bytes())) {
            Ok(TxOp::Delete {
                key,
                cond: Some(Cond::eq("hash", rec.hash)),
            })
        } else {
            Err(OtpError::Wrong)
        }
    }

    /// A put that stores a new token of `purpose` for `username`, and the token itself.
    pub fn new_token_op(
        &self,
        purpose: Purpose,
        username: &Username,
    ) -> Result<(TxOp, String), StoreError> {
        token_op(self.clock.epoch(), purpose, username, None)
    }

    /// The live token record.
    pub async fn lookup_token(
        &self,
        purpose: Purpose,
        token: &str,
    ) -> Result<TokenRecord, OtpError> {
        if token.is_empty() || token.len() > 256 {
            return Err(OtpError::UnknownToken);
        }
        let key = keys::one_time_token(purpose.as_str(), &token_hash(token));
        let item = self.table.get(&key).await?.ok_or(OtpError::UnknownToken)?;
        let rec: TokenRecord = from_item(&item)?;
        if rec.expires_at <= self.clock.epoch() {
            return Err(OtpError::UnknownToken);
        }
        Ok(rec)
    }

    /// The delete that consumes a token inside a transaction (fails if it is gone or expired).
    pub fn consume_token_op(&self, purpose: Purpose, token: &str) -> TxOp {
        TxOp::Delete {
            key: keys::one_time_token(purpose.as_str(), &token_hash(token)),
            cond: Some(Cond::item_exists().and(Cond::gt("expires_at", self.clock.epoch()))),
        }
    }
}
