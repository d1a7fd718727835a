//! The caller's profile: read (with wallet figures), name change, verified phone change, referral
//! code, profile image.

pub mod image;
pub mod metadata;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{Audit, LogKind};
use crate::auth::otp::{OtpError, Otps};
use crate::blobs::{BlobError, BlobsRef};
use crate::clock::ClockRef;
use crate::domain::{FieldError, InvalidInput, Phone, UserInfo, Username, WalletRecord};
use crate::notify::{NotifyError, QueueRef};
use crate::ratelimit::{Limit, RateLimitError, RateLimiter};
use crate::store::{Cond, Steps, StoreError, TableRef, TxOp, Update, from_item, get_array, keys};

/// Why a profile read or change failed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A valid session without its INFO item: the account is gone.
    #[error("account does not exist")]
    NoAccount,
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The verified number belongs to another account (only said to its proven holder).
    #[error("phone number is already registered")]
    PhoneTaken,
    /// No pending change, or its code was used up or replaced.
    #[error("OTP expired")]
    OtpExpired,
    #[error("profile was changed concurrently")]
    Concurrent,
    #[error(transparent)]
    Otp(#[from] OtpError),
    #[error(transparent)]
    RateLimited(#[from] RateLimitError),
    #[error("queue: {0}")]
    Queue(#[from] NotifyError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Profiles, phone changes and profile images: the main table, the clock, the image store, the
/// audit log, the queue (phone-change codes), the OTPs and the phone-change limit.
#[derive(Clone)]
pub struct Profiles {
    table: TableRef,
    clock: ClockRef,
    blobs: BlobsRef,
    audit: Audit,
    queue: QueueRef,
    otps: Otps,
    limiter: RateLimiter,
    phone_change_limit: Limit,
}

/// The ports and values of [`Profiles`].
pub struct ProfilePorts {
    pub table: TableRef,
    pub clock: ClockRef,
    pub blobs: BlobsRef,
    pub audit: Audit,
    pub queue: QueueRef,
    pub otps: Otps,
    pub limiter: RateLimiter,
    pub phone_change_limit: Limit,
}

/// `GET /user/profile`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Profile {
    pub username: String,
    pub full_name: String,
    pub email: String,
    pub phone_number: Option<String>,
    /// A URL the client can load, or null.
    pub profile_img: Option<String>,
    pub referral_code: String,
    pub balance: i64,
    pub points: i64,
    /// A number a phone change is waiting to verify (the code was sent to it), if any; it
    /// becomes `phone_number` at `POST /user/profile/phone/verify`.
    #[serde(default)]
    pub pending_phone_number: Option<String>,
}

/// `PUT /user/profile` body.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ProfileUpdate {
    pub full_name: Option<String>,
    pub phone_number: Option<String>,
}

/// Checked changes.
struct ValidUpdate {
    full_name: Option<String>,
    phone: Option<Phone>,
}

fn validate(req: &ProfileUpdate) -> Result<ValidUpdate, InvalidInput> {
    let mut errors = Vec::new();
    let full_name = req.full_name.as_deref().map(str::trim).map(str::to_owned);
    if let Some(n) = &full_name {
        let len = n.chars().count();
        if !(1..=100).contains(&len) || n.chars().any(char::is_control) {
            errors.push(FieldError::new("full_name", "must be 1-100 characters"));
        }
    }
    let phone = match req.phone_number.as_deref() {
        None => None,
        Some(p) => match Phone::parse(p) {
            Ok(p) => Some(p),
            Err(e) => return Err(e),
        },
    };
    if full_name.is_none() && phone.is_none() {
        errors.push(FieldError::new(
            "body",
            "send full_name and/or phone_number",
        ));
    }
    if !errors.is_empty() {
        return Err(InvalidInput::Fields(errors));
    }
    Ok(ValidUpdate { full_name, phone })
}

/// `USER#{u}` / `PHONE_CHANGE`: the number a phone change waits to verify.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PhoneChange {
    pk: String,
    sk: String,
    phone: String,
    expires_at: i64,
    ttl: i64,
}

/// OTP purpose of a phone change.
const PHONE_CHANGE_OTP: &str = "PHONE_CHANGE";

/// The steps of a verified phone change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PhoneStep {
    /// The code and the pending change are consumed.
    Proof,
    /// The new number's guard: free (or already ours).
    Guard,
    /// The old number's guard goes, and the profile takes the new number.
    Profile,
}

impl Profiles {
    pub fn new(p: ProfilePorts) -> Self {
        Profiles {
            table: p.table,
            clock: p.clock,
            blobs: p.blobs,
            audit: p.audit,
            queue: p.queue,
            otps: p.otps,
            limiter: p.limiter,
            phone_change_limit: p.phone_change_limit,
        }
    }

    /// Reads the INFO item; a valid session without it means the account is gone.
    pub async fn info(&self, username: &Username) -> Result<UserInfo, ProfileError> {
        let item = self.table.get(&keys::info(username)).await?;
        let item = item.ok_or(ProfileError::NoAccount)?;
        Ok(from_item(&item)?)
    }

    /// The profile with balance and points: the INFO and WALLET items in one batch read.
    pub async fn get(&self, username: &Username) -> Result<Profile, ProfileError> {
        let [info, wallet, change] = get_array(
            self.table.as_ref(),
            &[
                keys::info(username),
                keys::wallet(username),
                keys::phone_change(username),
            ],
        )
        .await?;
        let now = self.clock.epoch();
        let pending_phone_number = change
            .map(|i| from_item::<PhoneChange>(&i))
            .transpose()?
            .filter(|c| c.expires_at > now)
            .map(|c| c.phone);
        let info: UserInfo = from_item(&info.ok_or(ProfileError::NoAccount)?)?;
        let wallet = match wallet {
            Some(item) => from_item::<WalletRecord>(&item)?,
            None => WalletRecord::default(),
        };
        let profile_img = match &info.profile_img {
            Some(name) => Some(self.blobs.url(&image::blob_name(name)).await?),
            None => None,
        };
        Ok(Profile {
            username: info.username,
            full_name: info.full_name,
            email: info.email,
            phone_number: info.phone_number,
            profile_img,
            referral_code: info.referral_code,
            balance: wallet.balance,
            points: wallet.points,
            pending_phone_number,
        })
    }

    /// Changes the name at once. A new phone number is never taken on the caller's word: a code is
    /// sent to it, and the number becomes the account's only once that code comes back
    /// ([`verify_phone`]). The answer is the same whether or not another account holds the number
    /// (the sending limits apply either way), so the route reveals nothing about other accounts.
    pub async fn update(
        &self,
        username: &Username,
        ip: &str,
        req: &ProfileUpdate,
    ) -> Result<Profile, ProfileError> {
        let valid = validate(req)?;
        let current = self.info(username).await?;
        let new_phone = valid
            .phone
            .as_ref()
            .filter(|p| current.phone_number.as_deref() != Some(p.as_str()));
        if let Some(n) = &valid.full_name {
            let update = Update::new()
                .set("full_name", n.as_str())
                .set("updated_at", self.clock.epoch());
            self.table
                .update(&keys::info(username), update, Some(Cond::item_exists()))
                .await?;
        }
        if let Some(p) = new_phone {
            self.start_phone_change(username, ip, p).await?;
        }
        let fields = json!({
            "full_name": valid.full_name.is_some(),
            "phone_change_started": new_phone.is_some(),
        });
        self.audit
            .record(
                LogKind::Audit,
                username,
                Some(username),
                "profile.updated",
                fields,
            )
            .await;
        self.get(username).await
    }

    /// Sends a code to `phone` for the caller's phone change (limited per account, per number and
    /// per address), replacing any earlier pending change.
    async fn start_phone_change(
        &self,
        username: &Username,
        ip: &str,
        phone: &Phone,
    ) -> Result<(), ProfileError> {
        self.limiter
            .hit(
                &format!("phone-change:acct:{username}"),
                self.phone_change_limit,
            )
            .await?;
        self.otps.limit_send(phone.as_str(), ip).await?;
        let now = self.clock.epoch();
        let expires_at = now + crate::auth::otp::OTP_TTL_SECS;
        let (otp_op, code) = self.otps.new_otp_op(PHONE_CHANGE_OTP, username)?;
        let k = keys::phone_change(username);
        let change = PhoneChange {
            pk: k.pk,
            sk: k.sk,
            phone: phone.as_str().to_owned(),
            expires_at,
            ttl: expires_at,
        };
        let sms = crate::auth::accounts::otp_sms(phone.as_str(), &code);
        let (hold_op, queued) = crate::notify::held::hold(&sms, expires_at)?;
        self.table
            .transact(vec![
                otp_op,
                TxOp::Put {
                    item: crate::store::to_item(&change)?,
                    cond: None,
                },
                hold_op,
            ])
            .await?;
        self.queue.send(&queued).await.map_err(|e| {
            tracing::error!(error = %e, "could not enqueue the phone-change code");
            ProfileError::Queue(e)
        })
    }

    /// `POST /user/profile/phone/verify`: the code sent to the pending number proves it; in one
    /// transaction the number is claimed (its guard), the old one released and the profile changed.
    /// Only here — to someone who just proved they hold the number — does a 409 say it is taken.
    // Over 80 lines: the code check, the guarded transaction and the decoding of its named steps
    // read as one sequence, and each step's failure answer sits next to the step.
    pub async fn verify_phone(
        &self,
        username: &Username,
        code: &str,
    ) -> Result<Profile, ProfileError> {
        let now = self.clock.epoch();
        let change: PhoneChange =
            crate::store::get_record(self.table.as_ref(), &keys::phone_change(username))
                .await?
                .filter(|c: &PhoneChange| c.expires_at > now)
                .ok_or(ProfileError::OtpExpired)?;
        let consume_otp = self
            .otps
            .check_otp(PHONE_CHANGE_OTP, username, code)
            .await?;
        let current = self.info(username).await?;
        let mut guard = keys::phone_guard(&change.phone).item();
        guard.insert("username".into(), username.as_str().into());
        guard.insert("created_at".into(), now.into());
        let info_cond = match &current.phone_number {
            Some(p) => Cond::eq("phone_number", p.as_str()),
            None => Cond::item_exists().and(
                Cond::NotExists("phone_number".into())
                    .or(Cond::eq("phone_number", crate::store::AttrValue::Null)),
            ),
        };
        let mut steps = Steps::new();
        steps
            .push(PhoneStep::Proof, consume_otp)
            .push(
                PhoneStep::Proof,
                TxOp::Delete {
                    key: keys::phone_change(username),
                    cond: Some(Cond::eq("phone", change.phone.as_str())),
                },
            )
            .push(
                PhoneStep::Guard,
                TxOp::Put {
                    item: guard,
                    cond: Some(Cond::item_absent().or(Cond::eq("username", username.as_str()))),
                },
            )
            .push(
                PhoneStep::Profile,
                TxOp::Update {
                    key: keys::info(username),
                    update: Update::new()
                        .set("phone_number", change.phone.as_str())
                        .remove("unverified_phone")
                        .set("updated_at", now),
                    cond: Some(info_cond),
                },
            )
            .push(
                PhoneStep::Profile,
                crate::auth::accounts::phone_seen_op(&change.phone, username, now),
            );
        if let Some(old) = current
            .phone_number
            .as_deref()
            .filter(|o| *o != change.phone)
        {
            // Our own INFO names this number, so this guard should be ours; never drop another's.
            steps.push(
                PhoneStep::Profile,
                TxOp::Delete {
                    key: keys::phone_guard(old),
                    cond: Some(Cond::item_absent().or(Cond::eq("username", username.as_str()))),
                },
            );
        }
        let (ops, names) = steps.split();
        match self.table.transact(ops).await {
            Ok(()) => {}
            Err(e) if names.failed(&e, PhoneStep::Guard) => return Err(ProfileError::PhoneTaken),
            Err(e) if names.failed(&e, PhoneStep::Proof) => {
                return Err(ProfileError::OtpExpired);
            }
            Err(StoreError::TransactionCanceled { .. } | StoreError::Conflict) => {
                return Err(ProfileError::Concurrent);
            }
            Err(e) => return Err(e.into()),
        }
        self.audit
            .record(
                LogKind::Audit,
                username,
                Some(username),
                "profile.phone_verified",
                json!({}),
            )
            .await;
        self.get(username).await
    }

    /// `GET /user/referral-code`.
    pub async fn referral_code(&self, username: &Username) -> Result<String, ProfileError> {
        Ok(self.info(username).await?.referral_code)
    }
}
