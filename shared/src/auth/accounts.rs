//! Accounts: signup (LINK / OTP verification), login, password reset and change, deactivation.
//! Every multi-item change is one transaction; uniqueness of username, e-mail, phone and referral
//! code rests on guard items written with `attribute_not_exists` in the signup transaction.

use std::sync::OnceLock;

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::identity;
use super::otp::{self, Purpose};
use super::password;
use super::session::{self, Issued, OpenError};
use crate::app::App;
use crate::audit::{self, LogKind};
use crate::domain::account::{
    AccountStatus, Email, LoginRecord, Phone, UserInfo, Username, WalletRecord,
};
use crate::error::{ApiError, FieldError};
use crate::notify::Notification;
use crate::ratelimit;
use crate::store::{
    Cond, Key, Steps, StoreError, TxOp, Update, from_item, get_array, get_s, keys, to_item,
};

/// OTP purpose of signup verification.
const SIGNUP_OTP: &str = "SIGNUP";
/// Referral codes: 8 characters from an alphabet without look-alikes (0/O, 1/I/L).
const REFCODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const REFCODE_LEN: usize = 8;
/// Attempts at a signup transaction (new referral code on collision, retry on conflict).
const SIGNUP_ATTEMPTS: usize = 6;

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
    fn parse(raw: Option<&str>) -> Result<SignupMode, ApiError> {
        match raw.map(|s| s.trim().to_ascii_uppercase()).as_deref() {
            None | Some("LINK") => Ok(SignupMode::Link),
            Some("OTP") => Ok(SignupMode::Otp),
            Some(_) => Err(ApiError::validation(vec![FieldError::new(
                "mode",
                "must be LINK or OTP",
            )])),
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            SignupMode::Link => "LINK",
            SignupMode::Otp => "OTP",
        }
    }
}

/// `POST /signup` input.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
pub struct SignupInput {
    /// 3-32 characters of a-z, 0-9, `_ . -` (stored lower-cased).
    #[schema(pattern = "^[A-Za-z0-9_.-]{3,32}$", example = "john_doe")]
    pub username: String,
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// Unique, case-insensitively.
    #[schema(format = Email, max_length = 254, example = "john@example.com")]
    pub email: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
        example = "John Doe"
    )]
    pub full_name: String,
    /// Indonesian mobile number (`628…`, `08…` or `+628…`); required for `OTP` mode.
    #[serde(default)]
    #[schema(pattern = "^(628[0-9]{7,12})?$", example = "628123456789")]
    pub phone_number: Option<String>,
    /// Another user's referral code.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9]{0,32}$")]
    pub referral_code: Option<String>,
    /// `LINK` (e-mail link, the default) or `OTP` (SMS code; needs `phone_number`).
    #[serde(default)]
    #[schema(pattern = "^(LINK|OTP)$", example = "LINK")]
    pub mode: Option<String>,
}

/// A uniqueness guard (`EMAIL#…`, `PHONE#…`, `REFCODE#…`) pointing at its owner.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Guard {
    pk: String,
    sk: String,
    username: String,
}

fn guard_op(key: Key, username: &str) -> Result<TxOp, ApiError> {
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

fn put_new<T: Serialize>(record: &T) -> Result<TxOp, ApiError> {
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

fn full_name(raw: &str) -> Result<String, ApiError> {
    let s = raw.trim();
    if (1..=100).contains(&s.chars().count()) && !s.chars().any(char::is_control) {
        Ok(s.to_owned())
    } else {
        Err(ApiError::validation(vec![FieldError::new(
            "full_name",
            "must be 1-100 characters",
        )]))
    }
}

/// The username a guard item points at.
async fn guard_owner(app: &App, key: &Key) -> Result<Option<String>, ApiError> {
    Ok(app
        .main
        .get(key)
        .await?
        .and_then(|i| get_s(&i, "username").map(str::to_owned)))
}

async fn login_record(app: &App, username: &str) -> Result<Option<LoginRecord>, ApiError> {
    Ok(crate::store::get_record(app.main.as_ref(), &keys::login(username)).await?)
}

async fn info_record(app: &App, username: &str) -> Result<Option<UserInfo>, ApiError> {
    Ok(crate::store::get_record(app.main.as_ref(), &keys::info(username)).await?)
}

/// Puts a notification on the queue; a failure is logged, not returned (the account change it
/// belongs to is already committed, and the user can ask for a resend).
async fn enqueue(app: &App, n: Notification) {
    if let Err(e) = app.queue.send(&n).await {
        tracing::error!(error = %e, "could not enqueue notification");
    }
}

/// Enqueues a notification whose sending is the whole answer (`/resend-otp`,
/// `/request-reset-pwd`): a refused message is a 503, never a "sent" the user waits for in vain.
async fn enqueue_required(app: &App, n: Notification) -> Result<(), ApiError> {
    app.queue.send(&n).await.map_err(|e| {
        tracing::error!(error = %e, "could not enqueue notification");
        ApiError::unavailable()
    })
}

fn link_mail(app: &App, to: &str, username: &str, token: &str) -> Notification {
    let link = format!(
        "{}/verify-sign-up?token={token}",
        app.config.public_base_url.trim_end_matches('/')
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

/// The SMS carrying a one-time code.
pub fn otp_sms(to: &str, code: &str) -> Notification {
    Notification::Sms {
        to: to.to_owned(),
        text: format!(
            "Your UserState verification code is {code}. It expires in 10 minutes. Do not share it."
        ),
    }
}

/// A message carrying a secret, held in the table until `expires_at` (see [`crate::notify::held`]):
/// its put (for the transaction that creates the secret) and the reference to queue afterwards.
fn held(n: &Notification, expires_at: i64) -> Result<(TxOp, Notification), ApiError> {
    Ok(crate::notify::held::hold(n, expires_at)?)
}

/// OTP send limits: per phone number and per IP (the original `otp_tracker`).
pub async fn limit_otp_send(app: &App, identifier: &str, ip: &str) -> Result<(), ApiError> {
    ratelimit::hit(app, &format!("otp:ip:{ip}"), app.config.limits.otp_ip).await?;
    ratelimit::hit(
        app,
        &format!("otp:id:{identifier}"),
        app.config.limits.otp_identifier,
    )
    .await
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

/// The steps of the signup transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SignupStep {
    /// `LOGIN`, `INFO`, `WALLET`: the username.
    Account,
    /// The e-mail guard (canonical form) and the check on an older exact-form guard.
    Email,
    /// The new user's own referral code.
    RefCode,
    /// The registration token, the OTP or link token, and the held message.
    Secrets,
    /// No verified account holds the phone (OTP mode).
    Phone,
    /// The referral code used still belongs to the referrer.
    Referrer,
    /// The referral records.
    Referral,
}

/// What a signup asked for, checked.
struct ValidSignup {
    mode: SignupMode,
    username: Username,
    email: Email,
    name: String,
    /// OTP mode: the number the code goes to (claimed once the code is entered).
    phone: Option<Phone>,
    /// LINK mode: a number given but not proven; kept unverified, claims nothing.
    unverified_phone: Option<Phone>,
    referred_by: Option<(String, String)>,
}

async fn validate_signup(app: &App, input: &SignupInput) -> Result<ValidSignup, ApiError> {
    let mode = SignupMode::parse(input.mode.as_deref())?;
    let username = Username::parse(&input.username)?;
    let email = Email::parse(&input.email)?;
    let name = full_name(&input.full_name)?;
    password::validate("password", &input.password)?;
    let phone = match input
        .phone_number
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(p) => Some(Phone::parse(p)?),
        None if mode == SignupMode::Otp => return Err(ApiError::bad_request("PhoneRequired")),
        None => None,
    };
    let (phone, unverified_phone) = match mode {
        SignupMode::Otp => (phone, None),
        SignupMode::Link => (None, phone),
    };
    let referred_by = match input
        .referral_code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        Some(code) => {
            let code = code.to_ascii_uppercase();
            let plausible = code.len() <= 32 && code.chars().all(|c| c.is_ascii_alphanumeric());
            let owner = if plausible {
                guard_owner(app, &keys::refcode_guard(&code)).await?
            } else {
                None
            };
            let Some(owner) = owner else {
                return Err(ApiError::bad_request("Invalid Referral Code"));
            };
            Some((code, owner))
        }
        None => None,
    };
    Ok(ValidSignup {
        mode,
        username,
        email,
        name,
        phone,
        unverified_phone,
        referred_by,
    })
}

/// The signup transaction for one attempt (a fresh referral code each time), the registration
/// token and the queue message to send once it committed.
fn signup_steps(
    app: &App,
    v: &ValidSignup,
    pwd: &str,
) -> Result<(Steps<SignupStep>, String, Notification), ApiError> {
    use SignupStep::*;
    let u = v.username.as_str();
    let now = app.clock.epoch();
    let mut referral_code = new_referral_code();
    while v
        .referred_by
        .as_ref()
        .is_some_and(|(c, _)| *c == referral_code)
    {
        referral_code = new_referral_code();
    }
    let login = LoginRecord {
        pk: keys::login(u).pk,
        sk: keys::login(u).sk,
        username: u.to_owned(),
        pwd: pwd.to_owned(),
        disabled: false,
        status: AccountStatus::Pending,
        mode: Some(v.mode.as_str().to_owned()),
        created_at: now,
        updated_at: now,
        cred_version: 0,
    };
    let info = UserInfo {
        pk: keys::info(u).pk,
        sk: keys::info(u).sk,
        username: u.to_owned(),
        full_name: v.name.clone(),
        email: v.email.as_str().to_owned(),
        phone_number: v.phone.as_ref().map(|p| p.as_str().to_owned()),
        unverified_phone: v.unverified_phone.as_ref().map(|p| p.as_str().to_owned()),
        profile_img: None,
        agent: false,
        referral_code: referral_code.clone(),
        referred_by: v.referred_by.as_ref().map(|(c, _)| c.clone()),
        created_at: now,
        updated_at: now,
        gsi1pk: keys::email_gsi(v.email.as_str()),
        gsi1sk: u.to_owned(),
    };
    let wallet = WalletRecord {
        pk: keys::wallet(u).pk,
        sk: keys::wallet(u).sk,
        ..WalletRecord::default()
    };
    let (register_op, register_token) = otp::new_token_op(app, Purpose::Register, u)?;
    let (secret_op, message, held_until) = match v.mode {
        SignupMode::Otp => {
            let (op, code) = otp::new_otp_op(app, SIGNUP_OTP, u)?;
            let to = v.phone.as_ref().map(|p| p.as_str()).unwrap_or_default();
            (op, otp_sms(to, &code), now + otp::OTP_TTL_SECS)
        }
        SignupMode::Link => {
            let (op, token) = otp::new_token_op(app, Purpose::VerifyLink, u)?;
            (
                op,
                link_mail(app, v.email.as_str(), u, &token),
                now + Purpose::VerifyLink.ttl_secs(),
            )
        }
    };
    let (hold_op, queued) = held(&message, held_until)?;
    let mut steps = Steps::new();
    steps
        .extend(
            Account,
            [put_new(&login)?, put_new(&info)?, put_new(&wallet)?],
        )
        .extend(
            Email,
            identity::email_claim_ops(
                &v.email,
                guard_op(keys::email_guard(&v.email.canonical()), u)?,
            ),
        )
        .push(RefCode, guard_op(keys::refcode_guard(&referral_code), u)?)
        .extend(Secrets, [register_op, secret_op, hold_op]);
    // The phone is claimed when the code sent to it is entered (activation), so a signup with
    // someone else's number blocks nobody; a number a verified account holds is refused now.
    if let Some(p) = &v.phone {
        steps.push(
            Phone,
            TxOp::Check {
                key: keys::phone_guard(p.as_str()),
                cond: Cond::item_absent(),
            },
        );
    }
    for p in v.phone.iter().chain(&v.unverified_phone) {
        steps.push(Secrets, phone_seen_op(p.as_str(), u, now));
    }
    if let Some((code, referrer)) = &v.referred_by {
        // The code must still belong to the same referrer; the new user never owns it.
        steps.push(
            Referrer,
            TxOp::Check {
                key: keys::refcode_guard(code),
                cond: Cond::eq("username", referrer.as_str()),
            },
        );
        steps.extend(
            Referral,
            crate::referral::signup_ops(u, referrer, code, app.clock.now().timestamp_millis())?,
        );
    }
    Ok((steps, register_token, queued))
}

/// Registers a pending account in one transaction and sends its verification (link or OTP).
/// Returns the registration token (Bearer of `/verify-sign-up` and `/resend-otp`).
pub async fn signup(app: &App, ip: &str, input: SignupInput) -> Result<String, ApiError> {
    let v = validate_signup(app, &input).await?;
    ratelimit::hit(app, &format!("signup:ip:{ip}"), app.config.limits.signup_ip).await?;
    if let (SignupMode::Otp, Some(p)) = (v.mode, &v.phone) {
        limit_otp_send(app, p.as_str(), ip).await?;
    }
    let ticket = app.hashing.admit(&[&ip_client(ip)])?;
    let pwd = password::hash_async(ticket, input.password).await?;
    let u = v.username.as_str();

    let mut reclaimed = false;
    for attempt in 0..SIGNUP_ATTEMPTS {
        let (steps, register_token, queued) = signup_steps(app, &v, &pwd)?;
        let (ops, names) = steps.split();
        let e = match app.main.transact(ops).await {
            Ok(()) => {
                enqueue(app, queued).await;
                audit::record(
                    app,
                    LogKind::Audit,
                    u,
                    Some(u),
                    "signup",
                    json!({ "mode": v.mode.as_str(), "ip": ip }),
                )
                .await;
                return Ok(register_token);
            }
            Err(StoreError::Conflict) => {
                // A concurrent transaction touched the same items; the retry sees its outcome.
                tokio::time::sleep(std::time::Duration::from_millis(20 * (attempt as u64 + 1)))
                    .await;
                continue;
            }
            Err(e @ StoreError::TransactionCanceled { .. }) => e,
            Err(e) => return Err(e.into()),
        };
        // Which identifier was taken, and the key naming its owner.
        let taken = if names.failed(&e, SignupStep::Email) {
            let owner = identity::email_owner(app.main.as_ref(), &v.email).await?;
            Some(("Email is already registered", owner))
        } else if names.failed(&e, SignupStep::Account) {
            Some(("Username is already registered", Some(u.to_owned())))
        } else if let (true, Some(p)) = (names.failed(&e, SignupStep::Phone), &v.phone) {
            let owner = guard_owner(app, &keys::phone_guard(p.as_str())).await?;
            Some(("Phone number is already registered", owner))
        } else {
            None
        };
        if let Some((message, owner)) = taken {
            // An abandoned signup (never verified, past its verification window) gives way once.
            if !reclaimed
                && let Some(owner) = owner
                && reclaim_abandoned(app, &owner).await?
            {
                reclaimed = true;
                continue;
            }
            return Err(ApiError::conflict(message));
        }
        if names.failed(&e, SignupStep::Referrer) {
            return Err(ApiError::bad_request("Invalid Referral Code"));
        }
        // Only the new referral code (or a token, astronomically unlikely) collided: try another.
        tracing::debug!(attempt, "referral code collision; retrying signup");
    }
    Err(ApiError::unavailable())
}

/// Removes an account that was never verified and whose verification window (the registration
/// token's lifetime) has passed, releasing its username, e-mail, phone and referral code. One
/// transaction, conditional on the account still being that pending account; true when removed.
async fn reclaim_abandoned(app: &App, owner: &str) -> Result<bool, ApiError> {
    let Some(login) = login_record(app, owner).await? else {
        return Ok(false);
    };
    let stale_before = app.clock.epoch() - Purpose::Register.ttl_secs();
    if login.status != AccountStatus::Pending || login.created_at > stale_before {
        return Ok(false);
    }
    let mine = || Some(Cond::eq("username", owner));
    let mut ops = vec![
        TxOp::Delete {
            key: keys::login(owner),
            cond: Some(Cond::eq("status", "pending").and(Cond::eq("created_at", login.created_at))),
        },
        TxOp::Delete {
            key: keys::wallet(owner),
            cond: None,
        },
        TxOp::Delete {
            key: keys::otp(SIGNUP_OTP, owner),
            cond: None,
        },
    ];
    ops.extend(crate::referral::removal_ops(app, owner).await?);
    if let Some(info) = info_record(app, owner).await? {
        ops.push(TxOp::Delete {
            key: keys::info(owner),
            cond: None,
        });
        for key in identity::email_guard_keys(&Email::parse(&info.email)?) {
            ops.push(TxOp::Delete { key, cond: mine() });
        }
        ops.push(TxOp::Delete {
            key: keys::refcode_guard(&info.referral_code),
            cond: mine(),
        });
        if let Some(p) = &info.phone_number {
            // Pending accounts claim their phone only once verified (older ones did at signup).
            ops.push(TxOp::Delete {
                key: keys::phone_guard(p),
                cond: Some(Cond::item_absent().or(Cond::eq("username", owner))),
            });
        }
    }
    match app.main.transact(ops).await {
        Ok(()) => {
            audit::record(
                app,
                LogKind::Audit,
                owner,
                Some(owner),
                "abandoned_signup_removed",
                json!({}),
            )
            .await;
            Ok(true)
        }
        Err(StoreError::TransactionCanceled { .. } | StoreError::Conflict) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The account a registration token belongs to, if it is still pending.
async fn pending_account(
    app: &App,
    register_token: &str,
) -> Result<(String, LoginRecord), ApiError> {
    let rec = otp::lookup_token(app, Purpose::Register, register_token).await?;
    let login = login_record(app, &rec.username)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if login.status != AccountStatus::Pending {
        return Err(ApiError::bad_request("Account is already verified"));
    }
    Ok((rec.username, login))
}

fn activate_op(app: &App, username: &str) -> TxOp {
    TxOp::Update {
        key: keys::login(username),
        update: Update::new()
            .set("status", "active")
            .set("updated_at", app.clock.epoch()),
        cond: Some(Cond::eq("status", "pending")),
    }
}

/// Runs an activation transaction; with `REFERRAL_QUALIFY_ON=verification` the user's pending
/// referral is completed (and the referrer credited) in the same transaction.
async fn activate(app: &App, ops: Vec<TxOp>, username: &str) -> Result<(), StoreError> {
    if app.config.points.qualify_on == crate::config::ReferralQualify::Verification {
        crate::referral::transact_with_completion(app, ops, username, "verification").await
    } else {
        app.main.transact(ops).await
    }
}

/// `POST /verify-sign-up` in OTP mode: the registration token plus the SMS code activate the account.
pub async fn verify_signup_otp(
    app: &App,
    register_token: &str,
    code: &str,
) -> Result<(), ApiError> {
    let (username, _) = pending_account(app, register_token).await?;
    let phone = info_record(app, &username)
        .await?
        .and_then(|i| i.phone_number)
        .ok_or_else(|| ApiError::bad_request("PhoneRequired"))?;
    let consume_otp = otp::check_otp(app, SIGNUP_OTP, &username, code).await?;
    let mut claim = keys::phone_guard(&phone).item();
    claim.insert("username".into(), username.as_str().into());
    let ops = vec![
        activate_op(app, &username),
        consume_otp,
        otp::consume_token_op(app, Purpose::Register, register_token),
        // The number is proven now: claim it (an account that verified it first keeps it).
        TxOp::Put {
            item: claim,
            cond: Some(Cond::item_absent().or(Cond::eq("username", username.as_str()))),
        },
    ];
    match activate(app, ops, &username).await {
        Ok(()) => {}
        Err(e) if e.failed_at(0) => {
            return Err(ApiError::bad_request("Account is already verified"));
        }
        Err(e) if e.failed_at(1) => return Err(ApiError::bad_request("OTP Expired")),
        Err(e) if e.failed_at(2) => return Err(ApiError::unauthorized()),
        Err(e) if e.failed_at(3) => {
            return Err(ApiError::conflict("Phone number is already registered"));
        }
        Err(e) => return Err(e.into()),
    }
    audit::record(
        app,
        LogKind::Audit,
        &username,
        Some(&username),
        "signup_verified",
        json!({ "mode": "OTP" }),
    )
    .await;
    Ok(())
}

/// The e-mailed link (LINK mode): its single-use token activates the account.
pub async fn verify_signup_link(app: &App, link_token: &str) -> Result<(), ApiError> {
    let rec = otp::lookup_token(app, Purpose::VerifyLink, link_token).await?;
    let ops = vec![
        otp::consume_token_op(app, Purpose::VerifyLink, link_token),
        activate_op(app, &rec.username),
    ];
    match activate(app, ops, &rec.username).await {
        Ok(()) => {}
        Err(e) if e.failed_at(0) => return Err(ApiError::unauthorized()),
        Err(e) if e.failed_at(1) => {
            return Err(ApiError::bad_request("Account is already verified"));
        }
        Err(e) => return Err(e.into()),
    }
    audit::record(
        app,
        LogKind::Audit,
        &rec.username,
        Some(&rec.username),
        "signup_verified",
        json!({ "mode": "LINK" }),
    )
    .await;
    Ok(())
}

/// `POST /resend-otp`: a new OTP by SMS (OTP mode) or a new link by e-mail (LINK mode) for a pending
/// account, limited per phone/e-mail and per IP.
pub async fn resend_verification(
    app: &App,
    ip: &str,
    register_token: &str,
) -> Result<(), ApiError> {
    let (username, login) = pending_account(app, register_token).await?;
    let info = info_record(app, &username)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let now = app.clock.epoch();
    let (op, notification, held_until) = if login.mode.as_deref() == Some("OTP") {
        let phone = info
            .phone_number
            .clone()
            .ok_or_else(|| ApiError::bad_request("PhoneRequired"))?;
        limit_otp_send(app, &phone, ip).await?;
        let (op, code) = otp::new_otp_op(app, SIGNUP_OTP, &username)?;
        (op, otp_sms(&phone, &code), now + otp::OTP_TTL_SECS)
    } else {
        limit_otp_send(app, &info.email, ip).await?;
        let (op, token) = otp::new_token_op(app, Purpose::VerifyLink, &username)?;
        (
            op,
            link_mail(app, &info.email, &username, &token),
            now + Purpose::VerifyLink.ttl_secs(),
        )
    };
    let (hold_op, queued) = held(&notification, held_until)?;
    app.main.transact(vec![op, hold_op]).await?;
    enqueue_required(app, queued).await
}

/// A successful login.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct LoginOk {
    pub token: String,
    pub agent: bool,
}

/// Computed once: verifying against it for unknown users keeps their timing like a wrong password.
fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| password::hash("dummy-password-for-timing").unwrap_or_default())
}

/// `LOGIN` and `INFO` of a user, in one batch read.
async fn account(
    app: &App,
    username: &str,
) -> Result<Option<(LoginRecord, Option<UserInfo>)>, ApiError> {
    let [login, info] = get_array(
        app.main.as_ref(),
        &[keys::login(username), keys::info(username)],
    )
    .await?;
    let Some(login) = login else {
        return Ok(None);
    };
    let info = info.map(|i| from_item(&i)).transpose()?;
    Ok(Some((from_item(&login)?, info)))
}

/// 403 when the account may not log in (disabled, deactivated, not verified yet).
fn may_log_in(record: &LoginRecord) -> Result<(), ApiError> {
    if record.disabled || record.status == AccountStatus::Deactivated {
        return Err(ApiError::forbidden("Account is Disabled"));
    }
    if record.status == AccountStatus::Pending {
        return Err(ApiError::forbidden(
            if record.mode.as_deref() == Some("OTP") {
                "OTP Not Confirmed"
            } else {
                "Account is Not Confirmed"
            },
        ));
    }
    Ok(())
}

/// `POST /auth`: by username or e-mail. Unknown user and wrong password are both 422 "Invalid
/// Credential"; state (disabled, pending) is only revealed to the holder of the right password.
///
/// Guessing is bounded before any hashing: a slot of the per-account limit is taken atomically
/// first (given back on success, so only failures count), and the hash itself must be admitted
/// to the bounded hashing queue. The session is written in one transaction with a check that the
/// account's credential version and state are still those the password was verified against.
pub async fn login(app: &App, ip: &str, identifier: &str, pwd: &str) -> Result<LoginOk, ApiError> {
    let invalid = || ApiError::unprocessable("Invalid Credential");
    ratelimit::hit(app, &format!("login:ip:{ip}"), app.config.limits.login_ip).await?;
    let ident = identifier.trim().to_lowercase();
    if ident.is_empty() || ident.len() > 254 {
        return Err(invalid());
    }
    let username = if ident.contains('@') {
        match Email::parse(&ident) {
            Ok(e) => identity::email_owner(app.main.as_ref(), &e).await?,
            Err(_) => None,
        }
    } else {
        Username::parse(&ident).ok().map(|u| u.as_str().to_owned())
    };
    // Keyed by the account (whether named by username or e-mail), else by what was typed.
    let acct_bucket = format!("login:acct:{}", username.as_deref().unwrap_or(&ident));
    let slot = ratelimit::take(app, &acct_bucket, app.config.limits.login_account).await?;
    let ticket = match app.hashing.admit(&[&ip_client(ip), &acct_bucket]) {
        Ok(t) => t,
        Err(refused) => {
            // Not an attempt: nothing was verified.
            slot.give_back(app).await;
            return Err(refused.into());
        }
    };
    let read = match &username {
        Some(u) => account(app, u).await?,
        None => None,
    };
    let Some((record, info)) = read.filter(|_| pwd.chars().count() <= password::MAX_LEN) else {
        // Same work as a wrong password.
        let _ = password::verify_async(ticket, pwd.to_owned(), dummy_hash().to_owned()).await;
        slot.keep();
        return Err(invalid());
    };
    let u = record.username.clone();
    if !password::verify_async(ticket, pwd.to_owned(), record.pwd.clone()).await {
        slot.keep();
        audit::record(
            app,
            LogKind::Audit,
            &u,
            Some(&u),
            "login_failed",
            json!({ "ip": ip }),
        )
        .await;
        return Err(invalid());
    }
    slot.give_back(app).await;
    let agent = info.map(|i| i.agent).unwrap_or(false);
    let issued = open_verified(app, record, pwd, agent, ip).await?;
    audit::record(
        app,
        LogKind::Audit,
        &u,
        Some(&u),
        "login",
        json!({ "ip": ip, "sid": issued.sid }),
    )
    .await;
    Ok(LoginOk {
        token: issued.token,
        agent,
    })
}

/// Opens the session of a login whose password matched `record`. When the account changed between
/// that read and the session write (a password change or reset, a deactivation, a concurrent
/// re-hash), it is read again: a new credential refuses the login (422), a new state answers
/// as it would have (403); a re-hash alone (same version) keeps the password valid.
async fn open_verified(
    app: &App,
    mut record: LoginRecord,
    pwd: &str,
    agent: bool,
    ip: &str,
) -> Result<Issued, ApiError> {
    let u = record.username.clone();
    for _ in 0..3 {
        may_log_in(&record)?;
        let opened = if password::needs_rehash(&record.pwd) {
            login_with_rehash(app, &record, pwd, agent, ip).await
        } else {
            session::open(app, &u, agent, record.cred_version).await
        };
        match opened {
            Ok(issued) => return Ok(issued),
            Err(OpenError::Api(e)) => return Err(e),
            Err(OpenError::AccountChanged) => {
                let now = login_record(app, &u)
                    .await?
                    .ok_or_else(|| ApiError::unprocessable("Invalid Credential"))?;
                if now.cred_version != record.cred_version && now.pwd != record.pwd {
                    return Err(ApiError::unprocessable("Invalid Credential"));
                }
                record = now;
            }
        }
    }
    Err(ApiError::unavailable())
}

/// Replaces a legacy (bcrypt or weaker argon2) hash with argon2id in the same transaction that
/// opens the session (both conditional on the account as read). When the hashing queue is full
/// the session is opened without the upgrade (the next login does it).
async fn login_with_rehash(
    app: &App,
    record: &LoginRecord,
    pwd: &str,
    agent: bool,
    ip: &str,
) -> Result<Issued, OpenError> {
    let u = &record.username;
    let Ok(ticket) = app.hashing.admit(&[&ip_client(ip)]) else {
        return session::open(app, u, agent, record.cred_version).await;
    };
    let new_hash = password::hash_async(ticket, pwd.to_owned()).await?;
    let (session_op, issued) = session::new_session_op(app, u, agent, record.cred_version)?;
    let rehash = TxOp::Update {
        key: keys::login(u),
        update: Update::new()
            .set("pwd", new_hash)
            .set("updated_at", app.clock.epoch()),
        cond: Some(
            session::may_open(record.cred_version).and(Cond::eq("pwd", record.pwd.as_str())),
        ),
    };
    match app.main.transact(vec![rehash, session_op]).await {
        Ok(()) => {
            audit::record(
                app,
                LogKind::Audit,
                u,
                Some(u),
                "password_rehashed",
                json!({}),
            )
            .await;
            Ok(issued)
        }
        Err(e) if e.failed_at(0) => Err(OpenError::AccountChanged),
        Err(e) => Err(OpenError::Api(e.into())),
    }
}

/// `POST /check/email`: whether an e-mail can still be registered (no alias of its mailbox is).
pub async fn email_available(app: &App, ip: &str, email: &str) -> Result<bool, ApiError> {
    ratelimit::hit(
        app,
        &format!("check-email:ip:{ip}"),
        app.config.limits.check_email_ip,
    )
    .await?;
    let email = Email::parse(email)?;
    Ok(identity::email_owner(app.main.as_ref(), &email)
        .await?
        .is_none())
}

/// `POST /request-reset-pwd`: queues the request for the notifier, which looks the account up,
/// issues the single-use token and mails it ([`crate::auth::reset`]). This request does the same
/// work — two rate-limit counters and one queue message without any secret — whether or not the
/// address is registered, so neither its answer nor its timing tells.
pub async fn request_reset(app: &App, ip: &str, email: &str) -> Result<(), ApiError> {
    ratelimit::hit(app, &format!("reset:ip:{ip}"), app.config.limits.reset_ip).await?;
    let email = Email::parse(email)?;
    ratelimit::hit(
        app,
        &format!("reset:id:{}", email.canonical()),
        app.config.limits.reset_identifier,
    )
    .await?;
    enqueue_required(
        app,
        Notification::PasswordReset {
            email: email.as_str().to_owned(),
        },
    )
    .await
}

/// `POST /reset-pwd`: consumes the reset token, sets the password and bumps the credential
/// version (one transaction, conditional on the version the token was issued for), which revokes
/// every session; the stale session items are then deleted. The mailbox owner proved who they are,
/// so the account's failed-login counter is cleared too.
pub async fn reset_password(
    app: &App,
    ip: &str,
    token: &str,
    new_password: &str,
) -> Result<(), ApiError> {
    password::validate("password", new_password)?;
    let rec = otp::lookup_token(app, Purpose::ResetPwd, token).await?;
    let ticket = app.hashing.admit(&[&ip_client(ip)])?;
    let hash = password::hash_async(ticket, new_password.to_owned()).await?;
    let mut login_cond = Cond::item_exists();
    if let Some(cv) = rec.cv {
        login_cond = login_cond.and(session::version_is("cred_version", cv));
    }
    let ops = vec![
        otp::consume_token_op(app, Purpose::ResetPwd, token),
        TxOp::Update {
            key: keys::login(&rec.username),
            update: Update::new()
                .set("pwd", hash)
                .set("updated_at", app.clock.epoch())
                .add("cred_version", 1),
            cond: Some(login_cond),
        },
    ];
    match app.main.transact(ops).await {
        Ok(()) => {}
        Err(e @ StoreError::TransactionCanceled { .. }) => {
            tracing::debug!(error = %e, "reset token no longer valid");
            return Err(ApiError::unauthorized());
        }
        Err(e) => return Err(e.into()),
    }
    session::revoke_all(app, &rec.username, None).await?;
    ratelimit::clear(
        app,
        &format!("login:acct:{}", rec.username),
        app.config.limits.login_account,
    )
    .await?;
    audit::record(
        app,
        LogKind::Audit,
        &rec.username,
        Some(&rec.username),
        "password_reset",
        json!({}),
    )
    .await;
    Ok(())
}

/// The steps of a password change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PasswordStep {
    /// The new hash and version on `LOGIN`, if the old hash and version are still there.
    Login,
    /// The caller's session follows the new version (the others are revoked by it).
    Caller,
}

/// `POST /update-pwd`: checks the old password (attempts limited per account, counted before the
/// check), sets the new one and bumps the credential version, moving the caller's session to the
/// new version in the same transaction: every other session is revoked by that, the caller's
/// stays.
pub async fn update_password(
    app: &App,
    username: &str,
    sid: &str,
    old: &str,
    new: &str,
) -> Result<(), ApiError> {
    password::validate("new_password", new)?;
    let bucket = format!("pwd:acct:{username}");
    let slot = ratelimit::take(app, &bucket, app.config.limits.password_change).await?;
    let ticket = match app.hashing.admit(&[&bucket]) {
        Ok(t) => t,
        Err(refused) => {
            slot.give_back(app).await;
            return Err(refused.into());
        }
    };
    let Some(login) = login_record(app, username).await? else {
        slot.keep();
        return Err(ApiError::unauthorized());
    };
    if old.chars().count() > password::MAX_LEN
        || !password::verify_async(ticket, old.to_owned(), login.pwd.clone()).await
    {
        slot.keep();
        audit::record(
            app,
            LogKind::Audit,
            username,
            Some(username),
            "password_change_failed",
            json!({}),
        )
        .await;
        return Err(ApiError::unprocessable("Invalid Credential"));
    }
    slot.give_back(app).await;
    let ticket = app.hashing.admit(&[&bucket])?;
    let hash = password::hash_async(ticket, new.to_owned()).await?;
    let v = login.cred_version;
    let mut steps = Steps::new();
    steps
        .push(
            PasswordStep::Login,
            TxOp::Update {
                key: keys::login(username),
                update: Update::new()
                    .set("pwd", hash)
                    .set("updated_at", app.clock.epoch())
                    .add("cred_version", 1),
                cond: Some(
                    Cond::eq("pwd", login.pwd.as_str()).and(session::version_is("cred_version", v)),
                ),
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
    match app.main.transact(ops).await {
        Ok(()) => {}
        Err(e) if names.failed(&e, PasswordStep::Login) => {
            return Err(ApiError::conflict("Password was changed concurrently"));
        }
        Err(e) if names.failed(&e, PasswordStep::Caller) => {
            return Err(ApiError::unauthorized());
        }
        Err(e) => return Err(e.into()),
    }
    session::revoke_all(app, username, Some(sid)).await?;
    audit::record(
        app,
        LogKind::Audit,
        username,
        Some(username),
        "password_changed",
        json!({}),
    )
    .await;
    Ok(())
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

/// `POST /deactivate`: records the reason, marks the account deactivated and disabled and bumps
/// the credential version (one transaction: every session is revoked by it), then forgets the
/// push tokens and deletes the stale session items.
pub async fn deactivate(app: &App, username: &str, reason: Option<&str>) -> Result<(), ApiError> {
    let reason = reason.map(str::trim).unwrap_or_default();
    if reason.chars().count() > 1000 {
        return Err(ApiError::validation(vec![FieldError::new(
            "reason",
            "must be at most 1000 characters",
        )]));
    }
    let now = app.clock.now();
    let key = keys::deactivation(username, now.timestamp_millis());
    let record = Deactivation {
        pk: key.pk,
        sk: key.sk,
        username: username.to_owned(),
        reason: reason.to_owned(),
        created_at: now.timestamp(),
    };
    let ops = vec![
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
        TxOp::Put {
            item: to_item(&record)?,
            cond: None,
        },
    ];
    match app.main.transact(ops).await {
        Ok(()) => {}
        Err(e) if e.failed_at(0) => return Err(ApiError::unauthorized()),
        Err(e) => return Err(e.into()),
    }
    // Before the sessions go: if this fails, the caller can still retry with its session.
    crate::devices::remove_all(app, username).await?;
    session::revoke_all(app, username, None).await?;
    audit::record(
        app,
        LogKind::Audit,
        username,
        Some(username),
        "deactivated",
        json!({ "reason": reason }),
    )
    .await;
    Ok(())
}
