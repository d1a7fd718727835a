//! Accounts: signup (LINK / OTP verification), login, password reset and change, deactivation.
//! Every multi-item change is one transaction; uniqueness of username, e-mail, phone and referral
//! code rests on guard items written with `attribute_not_exists` in the signup transaction.

use std::sync::{Arc, OnceLock};

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::identity;
use super::otp::{self, OtpError, Otps, Purpose};
use super::password::{self, HashFailed, HashGate, HashRefused, NewPassword};
use super::session::{self, Issued, OpenError, SessionError, Sessions};
use crate::audit::{Audit, LogKind};
use crate::clock::ClockRef;
use crate::devices::{DeviceError, Devices};
use crate::domain::InvalidInput;
use crate::domain::account::{
    AccountStatus, Email, LoginRecord, Phone, UserInfo, Username, WalletRecord,
};
use crate::notify::{Notification, QueueRef};
use crate::ratelimit::{Limit, RateLimitError, RateLimiter};
use crate::referral::Referrals;
use crate::store::{
    Cond, Key, Names, Steps, StoreError, TableRef, TxOp, Update, from_item, get_array, get_s, keys,
    to_item,
};

/// OTP purpose of signup verification.
const SIGNUP_OTP: &str = "SIGNUP";
/// Referral codes: 8 characters from an alphabet without look-alikes (0/O, 1/I/L).
const REFCODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const REFCODE_LEN: usize = 8;
/// Attempts at a signup transaction (new referral code on collision, retry on conflict).
const SIGNUP_ATTEMPTS: usize = 6;

// ---------------------------------------------------------------------------------------------
// Input values: built (and checked) at the edge, carried through as they are.

/// How a new account proves its contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SignupMode {
    /// E-mail verification link.
    Link,
    /// SMS one-time code.
    Otp,
}

impl SignupMode {
    /// `LINK` (also when absent) or `OTP`, in any case.
    pub fn parse(raw: Option<&str>) -> Result<SignupMode, InvalidInput> {
        match raw.map(|s| s.trim().to_ascii_uppercase()).as_deref() {
            None | Some("LINK") => Ok(SignupMode::Link),
            Some("OTP") => Ok(SignupMode::Otp),
            Some(_) => Err(InvalidInput::field("mode", "must be LINK or OTP")),
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            SignupMode::Link => "LINK",
            SignupMode::Otp => "OTP",
        }
    }
}

/// How a new account is verified; an OTP signup always has the number its code goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// An e-mailed link. A number given with it is kept unverified and claims nothing.
    Link { phone: Option<Phone> },
    /// An SMS code to `phone`, which the account claims once the code is entered.
    Otp { phone: Phone },
}

impl Verification {
    /// The verification `mode` asks for, with the number given (if any).
    pub fn new(mode: SignupMode, phone: Option<Phone>) -> Result<Verification, InvalidInput> {
        match (mode, phone) {
            (SignupMode::Otp, Some(phone)) => Ok(Verification::Otp { phone }),
            (SignupMode::Otp, None) => Err(InvalidInput::Message("PhoneRequired")),
            (SignupMode::Link, phone) => Ok(Verification::Link { phone }),
        }
    }
    pub fn mode(&self) -> SignupMode {
        match self {
            Verification::Link { .. } => SignupMode::Link,
            Verification::Otp { .. } => SignupMode::Otp,
        }
    }
    /// The number the code goes to (OTP mode).
    fn otp_phone(&self) -> Option<&Phone> {
        match self {
            Verification::Otp { phone } => Some(phone),
            Verification::Link { .. } => None,
        }
    }
    /// A number given but not proven (LINK mode).
    fn unverified_phone(&self) -> Option<&Phone> {
        match self {
            Verification::Link { phone } => phone.as_ref(),
            Verification::Otp { .. } => None,
        }
    }
}

/// A display name: 1–100 characters without control characters, trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullName(String);

impl FullName {
    pub fn parse(raw: &str) -> Result<FullName, InvalidInput> {
        let s = raw.trim();
        if (1..=100).contains(&s.chars().count()) && !s.chars().any(char::is_control) {
            Ok(FullName(s.to_owned()))
        } else {
            Err(InvalidInput::field("full_name", "must be 1-100 characters"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A referral code typed at signup, upper-cased: at most 32 letters and digits (nothing else
/// can be one, so anything else is refused without a look-up).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferralCode(String);

impl ReferralCode {
    /// `None` for an empty field.
    pub fn parse(raw: Option<&str>) -> Result<Option<ReferralCode>, InvalidInput> {
        let Some(code) = raw.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let code = code.to_ascii_uppercase();
        if code.len() <= 32 && code.chars().all(|c| c.is_ascii_alphanumeric()) {
            Ok(Some(ReferralCode(code)))
        } else {
            Err(InvalidInput::Message("Invalid Referral Code"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a signup asks for, checked.
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub username: Username,
    pub email: Email,
    pub full_name: FullName,
    pub password: NewPassword,
    pub verification: Verification,
    /// Another user's referral code.
    pub referral_code: Option<ReferralCode>,
}

/// What a login names: a username, an e-mail address, or something that can be neither (which
/// still costs an attempt and a hash, like a wrong password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginId {
    /// Empty, or longer than any e-mail address: refused before any look-up.
    OutOfRange,
    Username(Username),
    Email {
        email: Email,
        typed: String,
    },
    Unknown(String),
}

impl LoginId {
    /// Reads the login field (trimmed, lower-cased); never fails.
    pub fn parse(raw: &str) -> LoginId {
        let ident = raw.trim().to_lowercase();
        if ident.is_empty() || ident.len() > 254 {
            return LoginId::OutOfRange;
        }
        if ident.contains('@') {
            match Email::parse(&ident) {
                Ok(email) => LoginId::Email {
                    email,
                    typed: ident,
                },
                Err(_) => LoginId::Unknown(ident),
            }
        } else {
            match Username::parse(&ident) {
                Ok(u) => LoginId::Username(u),
                Err(_) => LoginId::Unknown(ident),
            }
        }
    }
}

/// Why an account is deactivated, as the user gave it (at most 1000 characters, trimmed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeactivationReason(String);

impl DeactivationReason {
    pub fn parse(raw: Option<&str>) -> Result<DeactivationReason, InvalidInput> {
        let reason = raw.map(str::trim).unwrap_or_default();
        if reason.chars().count() > 1000 {
            return Err(InvalidInput::field(
                "reason",
                "must be at most 1000 characters",
            ));
        }
        Ok(DeactivationReason(reason.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// An identifier another account holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    Username,
    Email,
    Phone,
}

/// The notification queue refused a message whose sending is the whole answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the notification queue refused the message")]
pub struct QueueRefused;

/// Why a signup was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    /// The referral code belongs to nobody (or changed hands meanwhile).
    #[error("invalid referral code")]
    InvalidReferralCode,
    #[error("{0:?} is already registered")]
    Taken(Taken),
    /// The e-mail address stored on an abandoned account blocking this one does not parse.
    #[error("stored e-mail address is invalid")]
    StoredEmail(InvalidInput),
    /// Every attempt collided (new referral codes, concurrent signups).
    #[error("signup kept colliding")]
    Busy,
    #[error(transparent)]
    RateLimited(#[from] RateLimitError),
    #[error(transparent)]
    Hashing(#[from] HashRefused),
    #[error(transparent)]
    HashFailed(#[from] HashFailed),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a verification (or its resend) was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The registration token belongs to no account.
    #[error("no account for the token")]
    UnknownAccount,
    #[error("account is already verified")]
    AlreadyVerified,
    /// An OTP account without a number (not created today; older items).
    #[error("no phone number to verify")]
    PhoneRequired,
    /// A verified account claimed the number first.
    #[error("phone number is already registered")]
    PhoneTaken,
    #[error(transparent)]
    Otp(#[from] OtpError),
    #[error(transparent)]
    RateLimited(#[from] RateLimitError),
    #[error(transparent)]
    Queue(#[from] QueueRefused),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a login was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown account or wrong password (never told apart).
    #[error("invalid credential")]
    InvalidCredential,
    /// Disabled or deactivated.
    #[error("account is disabled")]
    Disabled,
    /// Not verified yet; `by_otp` for an OTP signup.
    #[error("account is not confirmed")]
    NotConfirmed { by_otp: bool },
    /// The account kept changing while the session was written.
    #[error("account kept changing")]
    Busy,
    #[error(transparent)]
    RateLimited(#[from] RateLimitError),
    #[error(transparent)]
    Hashing(#[from] HashRefused),
    #[error(transparent)]
    HashFailed(#[from] HashFailed),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a password reset (or its request) was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// The token was used, or the account changed since it was issued.
    #[error("reset token no longer valid")]
    TokenSpent,
    #[error(transparent)]
    Otp(#[from] OtpError),
    #[error(transparent)]
    RateLimited(#[from] RateLimitError),
    #[error(transparent)]
    Queue(#[from] QueueRefused),
    #[error(transparent)]
    Hashing(#[from] HashRefused),
    #[error(transparent)]
    HashFailed(#[from] HashFailed),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a password change was refused.
#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    /// The account is gone.
    #[error("no such account")]
    NoAccount,
    /// The old password is wrong.
    #[error("invalid credential")]
    InvalidCredential,
    #[error("password was changed concurrently")]
    ChangedConcurrently,
    /// The caller's session is gone or belongs to another credential version.
    #[error("session no longer live")]
    SessionGone,
    #[error(transparent)]
    RateLimited(#[from] RateLimitError),
    #[error(transparent)]
    Hashing(#[from] HashRefused),
    #[error(transparent)]
    HashFailed(#[from] HashFailed),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a deactivation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeactivateError {
    #[error("no such account")]
    NoAccount,
    #[error(transparent)]
    Devices(#[from] DeviceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

// ---------------------------------------------------------------------------------------------
// Pure parts: records, guards, messages.

/// A uniqueness guard (`EMAIL#…`, `PHONE#…`, `REFCODE#…`) pointing at its owner.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Guard {
    pk: String,
    sk: String,
    username: String,
}

fn guard_op(key: Key, username: &str) -> Result<TxOp, StoreError> {
    let g = Guard {
        pk: key.pk,
        sk: key.sk,
        username: username.to_owned(),
    };
    Ok(TxOp::Put {
        item: to_item(&g)?,
        cond: Some(Cond::item_absent()),
    })
}

fn put_new<T: Serialize>(record: &T) -> Result<TxOp, StoreError> {
    Ok(TxOp::Put {
        item: to_item(record)?,
        cond: Some(Cond::item_absent()),
    })
}

fn new_referral_code() -> String {
    let mut rng = rand::rng();
    (0..REFCODE_LEN)
        .map(|_| REFCODE_ALPHABET[rng.random_range(0..REFCODE_ALPHABET.len())] as char)
        .collect()
}

/// The SMS carrying a one-time code.
pub fn otp_sms(to: &str, code: &str) -> Notification {
    Notification::Sms {
        to: to.to_owned(),
        text: format!(
            "Your UserState verification code is {code}. It expires in 10 minutes. Do not share it."
        ),
    }
}

/// Remembers that `username` gave `phone` (read by the self-referral check; kept a year).
pub fn phone_seen_op(phone: &str, username: &str, now: i64) -> TxOp {
    let mut item = keys::phone_seen(phone, username).item();
    item.insert("username".into(), username.into());
    item.insert("at".into(), now.into());
    item.insert("ttl".into(), (now + 400 * 86_400).into());
    TxOp::Put { item, cond: None }
}

/// The hashing-queue client of a caller's address.
fn ip_client(ip: &str) -> String {
    format!("ip:{ip}")
}

/// The owner of the referral code a signup gave.
#[derive(Clone, Debug)]
struct Referrer {
    code: String,
    owner: String,
}

/// The three items of a new pending account (`LOGIN`, `INFO`, `WALLET`) created at `now`.
fn new_account_records(
    a: &NewAccount,
    pwd: &str,
    referral_code: &str,
    referrer: Option<&Referrer>,
    now: i64,
) -> (LoginRecord, UserInfo, WalletRecord) {
    let u = a.username.as_str();
    let login = LoginRecord {
        pk: keys::login(u).pk,
        sk: keys::login(u).sk,
        username: u.to_owned(),
        pwd: pwd.to_owned(),
        disabled: false,
        status: AccountStatus::Pending,
        mode: Some(a.verification.mode().as_str().to_owned()),
        created_at: now,
        updated_at: now,
        cred_version: 0,
    };
    let phone = |p: Option<&Phone>| p.map(|p| p.as_str().to_owned());
    let info = UserInfo {
        pk: keys::info(u).pk,
        sk: keys::info(u).sk,
        username: u.to_owned(),
        full_name: a.full_name.as_str().to_owned(),
        email: a.email.as_str().to_owned(),
        phone_number: phone(a.verification.otp_phone()),
        unverified_phone: phone(a.verification.unverified_phone()),
        profile_img: None,
        agent: false,
        referral_code: referral_code.to_owned(),
        referred_by: referrer.map(|r| r.code.clone()),
        created_at: now,
        updated_at: now,
        gsi1pk: keys::email_gsi(a.email.as_str()),
        gsi1sk: u.to_owned(),
    };
    let wallet = WalletRecord {
        pk: keys::wallet(u).pk,
        sk: keys::wallet(u).sk,
        ..WalletRecord::default()
    };
    (login, info, wallet)
}

/// The steps of the signup transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SignupStep {
    /// `LOGIN`, `INFO`, `WALLET`: the username.
    Account,
    /// The e-mail guard (canonical form) and the check on an older exact-form guard.
    Email,
    /// The new user's own referral code.
    RefCode,
    /// The registration token, the OTP or link token, the held message, the phones seen.
    Secrets,
    /// No verified account holds the phone (OTP mode).
    Phone,
    /// The referral code used still belongs to the referrer.
    Referrer,
    /// The referral records.
    Referral,
}

/// The steps of an OTP verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OtpVerifyStep {
    /// `LOGIN`: pending → active.
    Activate,
    /// The code is consumed (fails when it was replaced meanwhile).
    Code,
    /// The registration token is consumed.
    RegisterToken,
    /// The number is claimed (an account that verified it first keeps it).
    PhoneClaim,
}

/// The steps of a link verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LinkVerifyStep {
    /// The link's token is consumed.
    Token,
    /// `LOGIN`: pending → active.
    Activate,
}

/// The steps of a password change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PasswordStep {
    /// The new hash and version on `LOGIN`, if the old hash and version are still there.
    Login,
    /// The caller's session follows the new version (the others are revoked by it).
    Caller,
}

/// The steps of a login that upgrades the stored hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RehashStep {
    /// The new hash on `LOGIN`, if the account is as read.
    Login,
    /// The session put.
    Session,
}

/// The steps of a deactivation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DeactivateStep {
    /// `LOGIN`: deactivated, disabled, version bumped.
    Login,
    /// The reason.
    Record,
}

/// The stored deactivation (the original `deactivate_reason`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Deactivation {
    pk: String,
    sk: String,
    username: String,
    reason: String,
    created_at: i64,
}

/// A successful login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedIn {
    pub token: String,
    pub agent: bool,
}

/// Computed once: verifying against it for unknown users keeps their timing like a wrong password.
fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| password::hash("dummy-password-for-timing").unwrap_or_default())
}

/// 403 when the account may not log in (disabled, deactivated, not verified yet).
fn may_log_in(record: &LoginRecord) -> Result<(), LoginError> {
    if record.disabled || record.status == AccountStatus::Deactivated {
        return Err(LoginError::Disabled);
    }
    if record.status == AccountStatus::Pending {
        return Err(LoginError::NotConfirmed {
            by_otp: record.mode.as_deref() == Some("OTP"),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The service.

/// The limits the account routes apply (`RATE_LIMIT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountLimits {
    /// Failed logins per account.
    pub login_account: Limit,
    /// Login attempts per address.
    pub login_ip: Limit,
    /// Signups per address.
    pub signup_ip: Limit,
    /// `/check/email` calls per address.
    pub check_email_ip: Limit,
    /// Reset requests per address…
    pub reset_ip: Limit,
    /// …and per mailbox.
    pub reset_identifier: Limit,
    /// Wrong old passwords per account.
    pub password_change: Limit,
}

/// The settings of [`Accounts`], copied out of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountSettings {
    /// `PUBLIC_BASE_URL`: where the verification link points.
    pub public_base_url: String,
    pub limits: AccountLimits,
    /// `REFERRAL_QUALIFY_ON=verification`: verifying completes the user's pending referral.
    pub referral_on_verification: bool,
}

/// Signup, verification, login, password reset and change, deactivation. Cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    table: TableRef,
    clock: ClockRef,
    queue: QueueRef,
    hashing: Arc<HashGate>,
    audit: Audit,
    sessions: Sessions,
    otps: Otps,
    limiter: RateLimiter,
    referrals: Referrals,
    devices: Devices,
    settings: Arc<AccountSettings>,
}

/// The ports and services [`Accounts`] is built from.
pub struct AccountPorts {
    pub table: TableRef,
    pub clock: ClockRef,
    pub queue: QueueRef,
    pub hashing: Arc<HashGate>,
    pub audit: Audit,
    pub sessions: Sessions,
    pub otps: Otps,
    pub limiter: RateLimiter,
    pub referrals: Referrals,
    pub devices: Devices,
}

impl Accounts {
    /// The accounts on `ports.table`, with `settings`.
    pub fn new(ports: AccountPorts, settings: AccountSettings) -> Accounts {
        Accounts {
            table: ports.table,
            clock: ports.clock,
            queue: ports.queue,
            hashing: ports.hashing,
            audit: ports.audit,
            sessions: ports.sessions,
            otps: ports.otps,
            limiter: ports.limiter,
            referrals: ports.referrals,
            devices: ports.devices,
            settings: Arc::new(settings),
        }
    }

    /// Writes one audit entry about `user`'s own account.
    async fn audit(&self, user: &str, event: &str, data: serde_json::Value) {
        self.audit
            .record(LogKind::Audit, user, Some(user), event, data)
            .await;
    }

    /// The username a guard item points at.
    async fn guard_owner(&self, key: &Key) -> Result<Option<String>, StoreError> {
        Ok(self
            .table
            .get(key)
            .await?
            .and_then(|i| get_s(&i, "username").map(str::to_owned)))
    }

    async fn login_record(&self, username: &str) -> Result<Option<LoginRecord>, StoreError> {
        crate::store::get_record(self.table.as_ref(), &keys::login(username)).await
    }

    async fn info_record(&self, username: &str) -> Result<Option<UserInfo>, StoreError> {
        crate::store::get_record(self.table.as_ref(), &keys::info(username)).await
    }

    /// `LOGIN` and `INFO` of a user, in one batch read.
    async fn account(
        &self,
        username: &str,
    ) -> Result<Option<(LoginRecord, Option<UserInfo>)>, StoreError> {
        let [login, info] = get_array(
            self.table.as_ref(),
            &[keys::login(username), keys::info(username)],
        )
        .await?;
        let Some(login) = login else {
            return Ok(None);
        };
        let info = info.map(|i| from_item(&i)).transpose()?;
        Ok(Some((from_item(&login)?, info)))
    }

    /// Puts a notification on the queue; a failure is logged, not returned (the account change
    /// it belongs to is already committed, and the user can ask for a resend).
    async fn enqueue(&self, n: Notification) {
        if let Err(e) = self.queue.send(&n).await {
            tracing::error!(error = %e, "could not enqueue notification");
        }
    }

    /// Enqueues a notification whose sending is the whole answer (`/resend-otp`,
    /// `/request-reset-pwd`): a refused message is an error, never a "sent" the user waits for
    /// in vain.
    async fn enqueue_required(&self, n: Notification) -> Result<(), QueueRefused> {
        self.queue.send(&n).await.map_err(|e| {
            tracing::error!(error = %e, "could not enqueue notification");
            QueueRefused
        })
    }

    fn link_mail(&self, to: &str, username: &str, token: &str) -> Notification {
        let link = format!(
            "{}/verify-sign-up?token={token}",
            self.settings.public_base_url.trim_end_matches('/')
        );
        Notification::Email {
            to: to.to_owned(),
            subject: "Verify your UserState account".into(),
            body: format!(
                "Welcome to UserState! Open this link to verify the account {username}:\n{link}\n\nThe link is valid for 24 hours. If you did not sign up as {username}, ignore this mail: the account is not verified without it."
            ),
            html: Some(format!(
                "<p>Welcome to UserState!</p><p><a href=\"{link}\">Verify the account {username}</a></p><p>The link is valid for 24 hours. If you did not sign up as {username}, ignore this mail: the account is not verified without it.</p>"
            )),
        }
    }

    /// A fresh verification secret for `username` (an SMS code to `phone`, else a link mailed to
    /// `email`): its put, the held message carrying it and the reference to queue.
    fn verification_secret(
        &self,
        username: &Username,
        phone: Option<&str>,
        email: &str,
    ) -> Result<([TxOp; 2], Notification), StoreError> {
        let now = self.clock.epoch();
        let (op, message, held_until) = match phone {
            Some(to) => {
                let (op, code) = self.otps.new_otp_op(SIGNUP_OTP, username)?;
                (op, otp_sms(to, &code), now + otp::OTP_TTL_SECS)
            }
            None => {
                let (op, token) = self.otps.new_token_op(Purpose::VerifyLink, username)?;
                let mail = self.link_mail(email, username, &token);
                (op, mail, now + Purpose::VerifyLink.ttl_secs())
            }
        };
        // Held in the table until it expires (see `crate::notify::held`); the queue carries
        // only a reference.
        let (hold_op, queued) = crate::notify::held::hold(&message, held_until)?;
        Ok(([op, hold_op], queued))
    }

    /// The owner of the referral code a signup gave.
    async fn referrer(&self, code: Option<&ReferralCode>) -> Result<Option<Referrer>, SignupError> {
        let Some(code) = code else {
            return Ok(None);
        };
        let owner = self
            .guard_owner(&keys::refcode_guard(code.as_str()))
            .await?
            .ok_or(SignupError::InvalidReferralCode)?;
        Ok(Some(Referrer {
            code: code.as_str().to_owned(),
            owner,
        }))
    }

    /// The signup transaction for one attempt (a fresh referral code each time), the
    /// registration token and the queue message to send once it committed.
    fn signup_steps(
        &self,
        a: &NewAccount,
        referrer: Option<&Referrer>,
        pwd: &str,
    ) -> Result<(Steps<SignupStep>, String, Notification), StoreError> {
        use SignupStep::*;
        let u = a.username.as_str();
        let now = self.clock.epoch();
        let mut referral_code = new_referral_code();
        while referrer.is_some_and(|r| r.code == referral_code) {
            referral_code = new_referral_code();
        }
        let (login, info, wallet) = new_account_records(a, pwd, &referral_code, referrer, now);
        let (register_op, register_token) =
            self.otps.new_token_op(Purpose::Register, &a.username)?;
        let otp_phone = a.verification.otp_phone().map(|p| p.as_str());
        let (secret_ops, queued) =
            self.verification_secret(&a.username, otp_phone, a.email.as_str())?;
        let email_guard = guard_op(keys::email_guard(&a.email.canonical()), u)?;
        let mut steps = Steps::new();
        steps
            .extend(
                Account,
                [put_new(&login)?, put_new(&info)?, put_new(&wallet)?],
            )
            .extend(Email, identity::email_claim_ops(&a.email, email_guard))
            .push(RefCode, guard_op(keys::refcode_guard(&referral_code), u)?)
            .push(Secrets, register_op)
            .extend(Secrets, secret_ops);
        // The phone is claimed when the code sent to it is entered (activation), so a signup
        // with someone else's number blocks nobody; a number a verified account holds is
        // refused now.
        if let Some(p) = a.verification.otp_phone() {
            let check = TxOp::Check {
                key: keys::phone_guard(p.as_str()),
                cond: Cond::item_absent(),
            };
            steps.push(Phone, check);
        }
        let phones = a.verification.otp_phone().into_iter();
        for p in phones.chain(a.verification.unverified_phone()) {
            steps.push(Secrets, phone_seen_op(p.as_str(), u, now));
        }
        if let Some(r) = referrer {
            // The code must still belong to the same referrer; the new user never owns it.
            let check = TxOp::Check {
                key: keys::refcode_guard(&r.code),
                cond: Cond::eq("username", r.owner.as_str()),
            };
            let now_ms = self.clock.now().timestamp_millis();
            let records = crate::referral::signup_ops(&a.username, &r.owner, &r.code, now_ms)?;
            steps.push(Referrer, check).extend(Referral, records);
        }
        Ok((steps, register_token, queued))
    }

    /// Registers a pending account in one transaction and sends its verification (link or
    /// OTP). Returns the registration token (Bearer of `/verify-sign-up` and `/resend-otp`).
    pub async fn signup(&self, ip: &str, a: &NewAccount) -> Result<String, SignupError> {
        let created = self.create_account(ip, a).await;
        if created.is_ok() {
            crate::metrics::emit(crate::metrics::Metric::Signup);
        }
        created
    }

    async fn create_account(&self, ip: &str, a: &NewAccount) -> Result<String, SignupError> {
        let referrer = self.referrer(a.referral_code.as_ref()).await?;
        let limits = &self.settings.limits;
        self.limiter
            .hit(&format!("signup:ip:{ip}"), limits.signup_ip)
            .await?;
        if let Some(p) = a.verification.otp_phone() {
            self.otps.limit_send(p.as_str(), ip).await?;
        }
        let ticket = self.hashing.admit(&[&ip_client(ip)])?;
        let pwd = password::hash_async(ticket, a.password.as_str().to_owned()).await?;
        let mut reclaimed = false;
        for attempt in 0..SIGNUP_ATTEMPTS {
            let (steps, register_token, queued) = self.signup_steps(a, referrer.as_ref(), &pwd)?;
            let (ops, names) = steps.split();
            let e = match self.table.transact(ops).await {
                Ok(()) => {
                    self.enqueue(queued).await;
                    let mode = a.verification.mode().as_str();
                    self.audit(&a.username, "signup", json!({ "mode": mode, "ip": ip }))
                        .await;
                    return Ok(register_token);
                }
                Err(StoreError::Conflict) => {
                    // A concurrent transaction touched the same items; the retry sees its
                    // outcome.
                    let pause = std::time::Duration::from_millis(20 * (attempt as u64 + 1));
                    tokio::time::sleep(pause).await;
                    continue;
                }
                Err(e @ StoreError::TransactionCanceled { .. }) => e,
                Err(e) => return Err(e.into()),
            };
            if let Some((taken, owner)) = self.taken(&e, &names, a).await? {
                // An abandoned signup (never verified, past its verification window) gives way
                // once.
                if !reclaimed
                    && let Some(owner) = owner
                    && self.reclaim_abandoned(&owner).await?
                {
                    reclaimed = true;
                    continue;
                }
                return Err(SignupError::Taken(taken));
            }
            if names.failed(&e, SignupStep::Referrer) {
                return Err(SignupError::InvalidReferralCode);
            }
            // Only the new referral code (or a token, astronomically unlikely) collided: try
            // another.
            tracing::debug!(attempt, "referral code collision; retrying signup");
        }
        Err(SignupError::Busy)
    }

    /// Which identifier a failed signup found taken, and who holds it.
    async fn taken(
        &self,
        e: &StoreError,
        names: &Names<SignupStep>,
        a: &NewAccount,
    ) -> Result<Option<(Taken, Option<String>)>, StoreError> {
        if names.failed(e, SignupStep::Email) {
            let owner = identity::email_owner(self.table.as_ref(), &a.email).await?;
            return Ok(Some((Taken::Email, owner)));
        }
        if names.failed(e, SignupStep::Account) {
            return Ok(Some((
                Taken::Username,
                Some(a.username.as_str().to_owned()),
            )));
        }
        if let (true, Some(p)) = (
            names.failed(e, SignupStep::Phone),
            a.verification.otp_phone(),
        ) {
            let owner = self.guard_owner(&keys::phone_guard(p.as_str())).await?;
            return Ok(Some((Taken::Phone, owner)));
        }
        Ok(None)
    }

    /// Removes an account that was never verified and whose verification window (the
    /// registration token's lifetime) has passed, releasing its username, e-mail, phone and
    /// referral code. One transaction, conditional on the account still being that pending
    /// account; true when removed.
    async fn reclaim_abandoned(&self, owner: &str) -> Result<bool, SignupError> {
        let Some(login) = self.login_record(owner).await? else {
            return Ok(false);
        };
        let stale_before = self.clock.epoch() - Purpose::Register.ttl_secs();
        if login.status != AccountStatus::Pending || login.created_at > stale_before {
            return Ok(false);
        }
        let pending = Cond::eq("status", "pending").and(Cond::eq("created_at", login.created_at));
        let delete = |key: Key, cond: Option<Cond>| TxOp::Delete { key, cond };
        let mut ops = vec![
            delete(keys::login(owner), Some(pending)),
            delete(keys::wallet(owner), None),
            delete(keys::otp(SIGNUP_OTP, owner), None),
        ];
        let owner_name = Username::from_stored(owner);
        ops.extend(self.referrals.removal_ops(&owner_name).await?);
        if let Some(info) = self.info_record(owner).await? {
            let mine = || Some(Cond::eq("username", owner));
            ops.push(delete(keys::info(owner), None));
            let email = Email::parse(&info.email).map_err(SignupError::StoredEmail)?;
            for key in identity::email_guard_keys(&email) {
                ops.push(delete(key, mine()));
            }
            ops.push(delete(keys::refcode_guard(&info.referral_code), mine()));
            if let Some(p) = &info.phone_number {
                // Pending accounts claim their phone only once verified (older ones did at
                // signup).
                let unclaimed = Cond::item_absent().or(Cond::eq("username", owner));
                ops.push(delete(keys::phone_guard(p), Some(unclaimed)));
            }
        }
        match self.table.transact(ops).await {
            Ok(()) => {
                self.audit(owner, "abandoned_signup_removed", json!({}))
                    .await;
                Ok(true)
            }
            Err(StoreError::TransactionCanceled { .. } | StoreError::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The account a registration token belongs to, if it is still pending.
    async fn pending_account(
        &self,
        register_token: &str,
    ) -> Result<(Username, LoginRecord), VerifyError> {
        let rec = self
            .otps
            .lookup_token(Purpose::Register, register_token)
            .await?;
        let login = self
            .login_record(&rec.username)
            .await?
            .ok_or(VerifyError::UnknownAccount)?;
        if login.status != AccountStatus::Pending {
            return Err(VerifyError::AlreadyVerified);
        }
        Ok((Username::from_stored(rec.username), login))
    }

    fn activate_op(&self, username: &str) -> TxOp {
        TxOp::Update {
            key: keys::login(username),
            update: Update::new()
                .set("status", "active")
                .set("updated_at", self.clock.epoch()),
            cond: Some(Cond::eq("status", "pending")),
        }
    }

    /// Runs an activation transaction; with `REFERRAL_QUALIFY_ON=verification` the user's
    /// pending referral is completed (and the referrer credited) in the same transaction (its
    /// operations go after `ops`, so the positions of `ops` keep their step names).
    async fn activate(&self, ops: Vec<TxOp>, username: &Username) -> Result<(), StoreError> {
        if self.settings.referral_on_verification {
            self.referrals
                .transact_with_completion(ops, username, "verification")
                .await
        } else {
            self.table.transact(ops).await
        }
    }

    /// `POST /verify-sign-up` in OTP mode: the registration token plus the SMS code activate
    /// the account.
    pub async fn verify_signup_otp(
        &self,
        register_token: &str,
        code: &str,
    ) -> Result<(), VerifyError> {
        use OtpVerifyStep::*;
        let (username, _) = self.pending_account(register_token).await?;
        let phone = self
            .info_record(&username)
            .await?
            .and_then(|i| i.phone_number)
            .ok_or(VerifyError::PhoneRequired)?;
        let consume_otp = self.otps.check_otp(SIGNUP_OTP, &username, code).await?;
        let mut claim = keys::phone_guard(&phone).item();
        claim.insert("username".into(), username.as_str().into());
        let first_claim = Cond::item_absent().or(Cond::eq("username", username.as_str()));
        let mut steps = Steps::new();
        steps
            .push(Activate, self.activate_op(&username))
            .push(Code, consume_otp)
            .push(
                RegisterToken,
                self.otps
                    .consume_token_op(Purpose::Register, register_token),
            )
            // The number is proven now: claim it (an account that verified it first keeps it).
            .push(
                PhoneClaim,
                TxOp::Put {
                    item: claim,
                    cond: Some(first_claim),
                },
            );
        let (ops, names) = steps.split();
        match self.activate(ops, &username).await {
            Ok(()) => {}
            Err(e) if names.failed(&e, Activate) => return Err(VerifyError::AlreadyVerified),
            Err(e) if names.failed(&e, Code) => return Err(OtpError::Expired.into()),
            Err(e) if names.failed(&e, RegisterToken) => {
                return Err(OtpError::UnknownToken.into());
            }
            Err(e) if names.failed(&e, PhoneClaim) => return Err(VerifyError::PhoneTaken),
            Err(e) => return Err(e.into()),
        }
        self.audit(&username, "signup_verified", json!({ "mode": "OTP" }))
            .await;
        Ok(())
    }

    /// The e-mailed link (LINK mode): its single-use token activates the account.
    pub async fn verify_signup_link(&self, link_token: &str) -> Result<(), VerifyError> {
        use LinkVerifyStep::*;
        let rec = self
            .otps
            .lookup_token(Purpose::VerifyLink, link_token)
            .await?;
        let username = Username::from_stored(rec.username);
        let mut steps = Steps::new();
        steps
            .push(
                Token,
                self.otps.consume_token_op(Purpose::VerifyLink, link_token),
            )
            .push(Activate, self.activate_op(&username));
        let (ops, names) = steps.split();
        match self.activate(ops, &username).await {
            Ok(()) => {}
            Err(e) if names.failed(&e, Token) => return Err(OtpError::UnknownToken.into()),
            Err(e) if names.failed(&e, Activate) => return Err(VerifyError::AlreadyVerified),
            Err(e) => return Err(e.into()),
        }
        self.audit(&username, "signup_verified", json!({ "mode": "LINK" }))
            .await;
        Ok(())
    }

    /// `POST /resend-otp`: a new OTP by SMS (OTP mode) or a new link by e-mail (LINK mode) for a
    /// pending account, limited per phone/e-mail and per IP.
    pub async fn resend_verification(
        &self,
        ip: &str,
        register_token: &str,
    ) -> Result<(), VerifyError> {
        let (username, login) = self.pending_account(register_token).await?;
        let info = self
            .info_record(&username)
            .await?
            .ok_or(VerifyError::UnknownAccount)?;
        let phone = if login.mode.as_deref() == Some("OTP") {
            let phone = info.phone_number.ok_or(VerifyError::PhoneRequired)?;
            self.otps.limit_send(&phone, ip).await?;
            Some(phone)
        } else {
            self.otps.limit_send(&info.email, ip).await?;
            None
        };
        let (ops, queued) = self.verification_secret(&username, phone.as_deref(), &info.email)?;
        self.table.transact(ops.into()).await?;
        Ok(self.enqueue_required(queued).await?)
    }

    /// `POST /auth`: by username or e-mail. Unknown user and wrong password are both "Invalid
    /// Credential"; state (disabled, pending) is only revealed to the holder of the right
    /// password.
    ///
    /// Guessing is bounded before any hashing: a slot of the per-account limit is taken
    /// atomically first (given back on success, so only failures count), and the hash itself
    /// must be admitted to the bounded hashing queue. The session is written in one transaction
    /// with a check that the account's credential version and state are still those the
    /// password was verified against.
    pub async fn login(&self, ip: &str, id: &LoginId, pwd: &str) -> Result<LoggedIn, LoginError> {
        let outcome = self.check_login(ip, id, pwd).await;
        crate::metrics::emit(match outcome {
            Ok(_) => crate::metrics::Metric::LoginOk,
            Err(_) => crate::metrics::Metric::LoginFailed,
        });
        outcome
    }

    async fn check_login(&self, ip: &str, id: &LoginId, pwd: &str) -> Result<LoggedIn, LoginError> {
        let limits = &self.settings.limits;
        self.limiter
            .hit(&format!("login:ip:{ip}"), limits.login_ip)
            .await?;
        let (username, typed) = match id {
            LoginId::OutOfRange => return Err(LoginError::InvalidCredential),
            LoginId::Username(u) => (Some(u.as_str().to_owned()), u.as_str()),
            LoginId::Email { email, typed } => {
                let owner = identity::email_owner(self.table.as_ref(), email).await?;
                (owner, typed.as_str())
            }
            LoginId::Unknown(typed) => (None, typed.as_str()),
        };
        // Keyed by the account (whether named by username or e-mail), else by what was typed.
        let acct_bucket = format!("login:acct:{}", username.as_deref().unwrap_or(typed));
        let slot = self
            .limiter
            .take(&acct_bucket, limits.login_account)
            .await?;
        let ticket = match self.hashing.admit(&[&ip_client(ip), &acct_bucket]) {
            Ok(t) => t,
            Err(refused) => {
                // Not an attempt: nothing was verified.
                slot.give_back(&self.limiter).await;
                return Err(refused.into());
            }
        };
        let read = match &username {
            Some(u) => self.account(u).await?,
            None => None,
        };
        let Some((record, info)) = read.filter(|_| pwd.chars().count() <= password::MAX_LEN) else {
            // Same work as a wrong password.
            let _ = password::verify_async(ticket, pwd.to_owned(), dummy_hash().to_owned()).await;
            slot.keep();
            return Err(LoginError::InvalidCredential);
        };
        let u = Username::from_stored(record.username.clone());
        if !password::verify_async(ticket, pwd.to_owned(), record.pwd.clone()).await {
            slot.keep();
            self.audit(&u, "login_failed", json!({ "ip": ip })).await;
            return Err(LoginError::InvalidCredential);
        }
        slot.give_back(&self.limiter).await;
        let agent = info.map(|i| i.agent).unwrap_or(false);
        let issued = self.open_verified(record, pwd, agent, ip).await?;
        self.audit(&u, "login", json!({ "ip": ip, "sid": issued.sid }))
            .await;
        Ok(LoggedIn {
            token: issued.token,
            agent,
        })
    }

    /// Opens the session of a login whose password matched `record`. When the account changed
    /// between that read and the session write (a password change or reset, a deactivation, a
    /// concurrent re-hash), it is read again: a new credential refuses the login, a new state
    /// answers as it would have; a re-hash alone (same version) keeps the password valid.
    async fn open_verified(
        &self,
        mut record: LoginRecord,
        pwd: &str,
        agent: bool,
        ip: &str,
    ) -> Result<Issued, LoginError> {
        let u = Username::from_stored(record.username.clone());
        for _ in 0..3 {
            may_log_in(&record)?;
            let opened = if password::needs_rehash(&record.pwd) {
                self.login_with_rehash(&record, pwd, agent, ip).await?
            } else {
                self.open_session(&u, agent, record.cred_version).await?
            };
            if let Some(issued) = opened {
                return Ok(issued);
            }
            let now = self
                .login_record(&u)
                .await?
                .ok_or(LoginError::InvalidCredential)?;
            if now.cred_version != record.cred_version && now.pwd != record.pwd {
                return Err(LoginError::InvalidCredential);
            }
            record = now;
        }
        Err(LoginError::Busy)
    }

    /// Opens a session for credential version `cv`; `None` when the account changed since.
    async fn open_session(
        &self,
        u: &Username,
        agent: bool,
        cv: i64,
    ) -> Result<Option<Issued>, LoginError> {
        match self.sessions.open(u, agent, cv).await {
            Ok(issued) => Ok(Some(issued)),
            Err(OpenError::AccountChanged) => Ok(None),
            Err(OpenError::Session(e)) => Err(e.into()),
        }
    }

    /// Replaces a legacy (bcrypt or weaker argon2) hash with argon2id in the same transaction
    /// that opens the session (both conditional on the account as read). When the hashing queue
    /// is full the session is opened without the upgrade (the next login does it).
    async fn login_with_rehash(
        &self,
        record: &LoginRecord,
        pwd: &str,
        agent: bool,
        ip: &str,
    ) -> Result<Option<Issued>, LoginError> {
        let u = Username::from_stored(record.username.clone());
        let Ok(ticket) = self.hashing.admit(&[&ip_client(ip)]) else {
            return self.open_session(&u, agent, record.cred_version).await;
        };
        let new_hash = password::hash_async(ticket, pwd.to_owned()).await?;
        let (session_op, issued) = self
            .sessions
            .new_session_op(&u, agent, record.cred_version)?;
        let as_read =
            session::may_open(record.cred_version).and(Cond::eq("pwd", record.pwd.as_str()));
        let rehash = TxOp::Update {
            key: keys::login(&u),
            update: Update::new()
                .set("pwd", new_hash)
                .set("updated_at", self.clock.epoch()),
            cond: Some(as_read),
        };
        let mut steps = Steps::new();
        steps
            .push(RehashStep::Login, rehash)
            .push(RehashStep::Session, session_op);
        let (ops, names) = steps.split();
        match self.table.transact(ops).await {
            Ok(()) => {
                self.audit(&u, "password_rehashed", json!({})).await;
                Ok(Some(issued))
            }
            Err(e) if names.failed(&e, RehashStep::Login) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Counts one `/check/email` call from `ip` (before the address is even read, so malformed
    /// input spends the budget too).
    pub async fn count_email_check(&self, ip: &str) -> Result<(), RateLimitError> {
        let limit = self.settings.limits.check_email_ip;
        self.limiter
            .hit(&format!("check-email:ip:{ip}"), limit)
            .await
    }

    /// `POST /check/email`: whether an e-mail can still be registered (no alias of its mailbox
    /// is). The caller counted the call first ([`Accounts::count_email_check`]).
    pub async fn email_available(&self, email: &Email) -> Result<bool, StoreError> {
        let owner = identity::email_owner(self.table.as_ref(), email).await?;
        Ok(owner.is_none())
    }

    /// Counts one reset request from `ip` (before the address is even read, so malformed input
    /// spends the budget too).
    pub async fn count_reset_request(&self, ip: &str) -> Result<(), RateLimitError> {
        let limit = self.settings.limits.reset_ip;
        self.limiter.hit(&format!("reset:ip:{ip}"), limit).await
    }

    /// `POST /request-reset-pwd`: queues the request for the notifier, which looks the account
    /// up, issues the single-use token and mails it ([`crate::auth::reset`]). The caller counted
    /// the request first ([`Accounts::count_reset_request`]). This does the same work — two
    /// rate-limit counters and one queue message without any secret — whether or not the
    /// address is registered, so neither its answer nor its timing tells.
    pub async fn request_reset(&self, email: &Email) -> Result<(), ResetError> {
        let limit = self.settings.limits.reset_identifier;
        self.limiter
            .hit(&format!("reset:id:{}", email.canonical()), limit)
            .await?;
        let request = Notification::PasswordReset {
            email: email.as_str().to_owned(),
        };
        Ok(self.enqueue_required(request).await?)
    }

    /// `POST /reset-pwd`: consumes the reset token, sets the password and bumps the credential
    /// version (one transaction, conditional on the version the token was issued for), which
    /// revokes every session; the stale session items are then deleted. The mailbox owner
    /// proved who they are, so the account's failed-login counter is cleared too.
    pub async fn reset_password(
        &self,
        ip: &str,
        token: &str,
        new_password: &NewPassword,
    ) -> Result<(), ResetError> {
        let rec = self.otps.lookup_token(Purpose::ResetPwd, token).await?;
        let ticket = self.hashing.admit(&[&ip_client(ip)])?;
        let hash = password::hash_async(ticket, new_password.as_str().to_owned()).await?;
        let mut login_cond = Cond::item_exists();
        if let Some(cv) = rec.cv {
            login_cond = login_cond.and(session::version_is("cred_version", cv));
        }
        let username = Username::from_stored(rec.username);
        let ops = vec![
            self.otps.consume_token_op(Purpose::ResetPwd, token),
            TxOp::Update {
                key: keys::login(&username),
                update: Update::new()
                    .set("pwd", hash)
                    .set("updated_at", self.clock.epoch())
                    .add("cred_version", 1),
                cond: Some(login_cond),
            },
        ];
        match self.table.transact(ops).await {
            Ok(()) => {}
            // Either part refused means the same: the token is no longer good.
            Err(e @ StoreError::TransactionCanceled { .. }) => {
                tracing::debug!(error = %e, "reset token no longer valid");
                return Err(ResetError::TokenSpent);
            }
            Err(e) => return Err(e.into()),
        }
        self.sessions.revoke_all(&username, None).await?;
        let limit = self.settings.limits.login_account;
        self.limiter
            .clear(&format!("login:acct:{username}"), limit)
            .await?;
        self.audit(&username, "password_reset", json!({})).await;
        Ok(())
    }

    /// `POST /update-pwd`: checks the old password (attempts limited per account, counted before
    /// the check), sets the new one and bumps the credential version, moving the caller's
    /// session to the new version in the same transaction: every other session is revoked by
    /// that, the caller's stays.
    pub async fn update_password(
        &self,
        username: &Username,
        sid: &str,
        old: &str,
        new: &NewPassword,
    ) -> Result<(), PasswordChangeError> {
        let bucket = format!("pwd:acct:{username}");
        let login = self.check_old_password(username, &bucket, old).await?;
        let ticket = self.hashing.admit(&[&bucket])?;
        let hash = password::hash_async(ticket, new.as_str().to_owned()).await?;
        let v = login.cred_version;
        let unchanged =
            Cond::eq("pwd", login.pwd.as_str()).and(session::version_is("cred_version", v));
        let mut steps = Steps::new();
        steps
            .push(
                PasswordStep::Login,
                TxOp::Update {
                    key: keys::login(username),
                    update: Update::new()
                        .set("pwd", hash)
                        .set("updated_at", self.clock.epoch())
                        .add("cred_version", 1),
                    cond: Some(unchanged),
                },
            )
            .push(
                PasswordStep::Caller,
                TxOp::Update {
                    key: keys::session(username, sid),
                    update: Update::new().set("cv", v + 1),
                    cond: Some(Cond::item_exists().and(session::version_is("cv", v))),
                },
            );
        let (ops, names) = steps.split();
        match self.table.transact(ops).await {
            Ok(()) => {}
            Err(e) if names.failed(&e, PasswordStep::Login) => {
                return Err(PasswordChangeError::ChangedConcurrently);
            }
            Err(e) if names.failed(&e, PasswordStep::Caller) => {
                return Err(PasswordChangeError::SessionGone);
            }
            Err(e) => return Err(e.into()),
        }
        self.sessions.revoke_all(username, Some(sid)).await?;
        self.audit(username, "password_changed", json!({})).await;
        Ok(())
    }

    /// The account's `LOGIN`, once `old` is proven its password: a slot of the per-account
    /// limit in `bucket` is taken first and kept on failure.
    async fn check_old_password(
        &self,
        username: &Username,
        bucket: &str,
        old: &str,
    ) -> Result<LoginRecord, PasswordChangeError> {
        let limit = self.settings.limits.password_change;
        let slot = self.limiter.take(bucket, limit).await?;
        let ticket = match self.hashing.admit(&[bucket]) {
            Ok(t) => t,
            Err(refused) => {
                slot.give_back(&self.limiter).await;
                return Err(refused.into());
            }
        };
        let Some(login) = self.login_record(username).await? else {
            slot.keep();
            return Err(PasswordChangeError::NoAccount);
        };
        if old.chars().count() > password::MAX_LEN
            || !password::verify_async(ticket, old.to_owned(), login.pwd.clone()).await
        {
            slot.keep();
            self.audit(username, "password_change_failed", json!({}))
                .await;
            return Err(PasswordChangeError::InvalidCredential);
        }
        slot.give_back(&self.limiter).await;
        Ok(login)
    }

    /// `GET /logoff`: ends one session.
    pub async fn log_off(&self, username: &Username, sid: &str) -> Result<(), StoreError> {
        self.sessions.revoke(username, sid).await?;
        self.audit(username, "logoff", json!({ "sid": sid })).await;
        Ok(())
    }

    /// `POST /deactivate`: records the reason, marks the account deactivated and disabled and
    /// bumps the credential version (one transaction: every session is revoked by it), then
    /// forgets the push tokens and deletes the stale session items.
    pub async fn deactivate(
        &self,
        username: &Username,
        reason: &DeactivationReason,
    ) -> Result<(), DeactivateError> {
        let now = self.clock.now();
        let key = keys::deactivation(username, now.timestamp_millis());
        let record = Deactivation {
            pk: key.pk,
            sk: key.sk,
            username: username.as_str().to_owned(),
            reason: reason.as_str().to_owned(),
            created_at: now.timestamp(),
        };
        let mut steps = Steps::new();
        steps
            .push(
                DeactivateStep::Login,
                TxOp::Update {
                    key: keys::login(username),
                    // The version bump revokes every session in this same write.
                    update: Update::new()
                        .set("status", "deactivated")
                        .set("disabled", true)
                        .set("updated_at", now.timestamp())
                        .add("cred_version", 1),
                    cond: Some(Cond::item_exists()),
                },
            )
            .push(
                DeactivateStep::Record,
                TxOp::Put {
                    item: to_item(&record)?,
                    cond: None,
                },
            );
        let (ops, names) = steps.split();
        match self.table.transact(ops).await {
            Ok(()) => {}
            Err(e) if names.failed(&e, DeactivateStep::Login) => {
                return Err(DeactivateError::NoAccount);
            }
            Err(e) => return Err(e.into()),
        }
        // Before the sessions go: if this fails, the caller can still retry with its session.
        self.devices.remove_all(username).await?;
        self.sessions.revoke_all(username, None).await?;
        let reason = reason.as_str();
        self.audit(username, "deactivated", json!({ "reason": reason }))
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> Phone {
        Phone::parse("08123456789").expect("phone")
    }

    #[test]
    fn an_otp_signup_without_a_phone_cannot_be_built() {
        assert_eq!(
            Verification::new(SignupMode::Otp, None),
            Err(InvalidInput::Message("PhoneRequired"))
        );
        let otp = Verification::new(SignupMode::Otp, Some(phone())).expect("otp");
        assert_eq!(otp.otp_phone(), Some(&phone()));
        assert_eq!(otp.unverified_phone(), None);
        let link = Verification::new(SignupMode::Link, Some(phone())).expect("link");
        assert_eq!(link.otp_phone(), None, "a link signup proves no number");
        assert_eq!(link.unverified_phone(), Some(&phone()));
        assert_eq!(SignupMode::parse(None), Ok(SignupMode::Link));
        assert_eq!(SignupMode::parse(Some(" otp ")), Ok(SignupMode::Otp));
        assert!(SignupMode::parse(Some("SMS")).is_err());
    }

    #[test]
    fn login_ids_name_a_username_an_address_or_nothing_usable() {
        assert_eq!(LoginId::parse("  "), LoginId::OutOfRange);
        assert_eq!(LoginId::parse(&"a".repeat(255)), LoginId::OutOfRange);
        assert_eq!(
            LoginId::parse(" John_Doe "),
            LoginId::Username(Username::parse("john_doe").expect("username"))
        );
        assert!(matches!(
            LoginId::parse("John@Example.com"),
            LoginId::Email { typed, .. } if typed == "john@example.com"
        ));
        assert_eq!(
            LoginId::parse("not an id"),
            LoginId::Unknown("not an id".into())
        );
        assert_eq!(LoginId::parse("x@y"), LoginId::Unknown("x@y".into()));
    }

    #[test]
    fn referral_codes_are_upper_cased_and_implausible_ones_refused_without_a_lookup() {
        assert_eq!(ReferralCode::parse(None), Ok(None));
        assert_eq!(ReferralCode::parse(Some("  ")), Ok(None));
        let code = ReferralCode::parse(Some(" ab12 ")).expect("plausible");
        assert_eq!(code.map(|c| c.0), Some("AB12".to_owned()));
        assert_eq!(
            ReferralCode::parse(Some("AB-12")),
            Err(InvalidInput::Message("Invalid Referral Code"))
        );
        assert!(ReferralCode::parse(Some(&"A".repeat(33))).is_err());
    }

    #[test]
    fn names_and_deactivation_reasons_are_bounded() {
        assert_eq!(FullName::parse(" Jo ").map(|n| n.0), Ok("Jo".to_owned()));
        assert!(FullName::parse("   ").is_err());
        assert!(FullName::parse("a\u{7}b").is_err());
        assert!(FullName::parse(&"x".repeat(101)).is_err());
        assert_eq!(
            DeactivationReason::parse(None).map(|r| r.0),
            Ok(String::new())
        );
        assert!(DeactivationReason::parse(Some(&"é".repeat(1000))).is_ok());
        assert!(DeactivationReason::parse(Some(&"x".repeat(1001))).is_err());
    }

    #[test]
    fn a_new_account_starts_pending_with_only_an_otp_number_as_its_phone() {
        let account = |verification| NewAccount {
            username: Username::parse("john_doe").expect("username"),
            email: Email::parse("John@Example.com").expect("email"),
            full_name: FullName::parse("John").expect("name"),
            password: NewPassword::parse("password", "correct horse").expect("password"),
            verification,
            referral_code: None,
        };
        let referrer = Referrer {
            code: "AB12".into(),
            owner: "alice".into(),
        };
        let otp = account(Verification::Otp { phone: phone() });
        let (login, info, wallet) =
            new_account_records(&otp, "hash", "NEWCODE1", Some(&referrer), 7);
        assert_eq!(login.status, AccountStatus::Pending);
        assert_eq!(login.mode.as_deref(), Some("OTP"));
        assert_eq!(info.phone_number.as_deref(), Some("628123456789"));
        assert_eq!(info.unverified_phone, None);
        assert_eq!(info.referred_by.as_deref(), Some("AB12"));
        assert_eq!(info.email, "john@example.com");
        assert_eq!((wallet.balance, wallet.points), (0, 0));
        let link = account(Verification::Link {
            phone: Some(phone()),
        });
        let (login, info, _) = new_account_records(&link, "hash", "NEWCODE1", None, 7);
        assert_eq!(login.mode.as_deref(), Some("LINK"));
        assert_eq!(info.phone_number, None);
        assert_eq!(info.unverified_phone.as_deref(), Some("628123456789"));
    }
}
