//! The caller's profile: read (with wallet figures), name/phone change, referral code, profile image.

pub mod image;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::App;
use crate::audit::{self, LogKind};
use crate::domain::{Phone, UserInfo, WalletRecord};
use crate::error::{ApiError, FieldError};
use crate::store::{Cond, StoreError, TxOp, Update, from_item, get_array, keys};

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
}

/// Reads the INFO item; a valid session without it means the account is gone.
pub async fn info(app: &App, username: &str) -> Result<UserInfo, ApiError> {
    let item = app.main.get(&keys::info(username)).await?;
    let item = item.ok_or_else(|| ApiError::not_found("Account does not exist"))?;
    Ok(from_item(&item)?)
}

/// The profile with balance and points: the INFO and WALLET items in one batch read.
pub async fn get(app: &App, username: &str) -> Result<Profile, ApiError> {
    let [info, wallet] = get_array(
        app.main.as_ref(),
        &[keys::info(username), keys::wallet(username)],
    )
    .await?;
    let info: UserInfo =
        from_item(&info.ok_or_else(|| ApiError::not_found("Account does not exist"))?)?;
    let wallet = match wallet {
        Some(item) => from_item::<WalletRecord>(&item)?,
        None => WalletRecord::default(),
    };
    let profile_img = match &info.profile_img {
        Some(name) => Some(app.blobs.url(&image::blob_name(name)).await?),
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
    })
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

fn validate(req: &ProfileUpdate) -> Result<ValidUpdate, ApiError> {
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
        return Err(ApiError::validation(errors));
    }
    Ok(ValidUpdate { full_name, phone })
}

fn phone_taken() -> ApiError {
    ApiError::conflict("Phone number is already registered")
}

/// Changes name and/or phone. A new phone moves the uniqueness guard in the same transaction as
/// the profile change, so two users can never end up with one number.
pub async fn update(app: &App, username: &str, req: &ProfileUpdate) -> Result<Profile, ApiError> {
    let valid = validate(req)?;
    for _ in 0..5 {
        let current = info(app, username).await?;
        let now = app.clock.epoch();
        let mut update = Update::new().set("updated_at", now);
        if let Some(n) = &valid.full_name {
            update = update.set("full_name", n.as_str());
        }
        // The profile write only commits if the phone is still what we read.
        let info_cond = match &current.phone_number {
            Some(p) => Cond::eq("phone_number", p.as_str()),
            None => Cond::item_exists().and(
                Cond::NotExists("phone_number".into())
                    .or(Cond::eq("phone_number", crate::store::AttrValue::Null)),
            ),
        };
        let mut ops = Vec::new();
        let new_phone = valid
            .phone
            .as_ref()
            .filter(|p| current.phone_number.as_deref() != Some(p.as_str()));
        if let Some(p) = new_phone {
            update = update.set("phone_number", p.as_str());
            let mut guard = keys::phone_guard(p.as_str()).item();
            guard.insert("username".into(), username.into());
            guard.insert("created_at".into(), now.into());
            ops.push(TxOp::Put {
                item: guard,
                cond: Some(Cond::item_absent()),
            });
            if let Some(old) = &current.phone_number {
                // Our own INFO names this number, so this guard should be ours; never drop another's.
                ops.push(TxOp::Delete {
                    key: keys::phone_guard(old),
                    cond: Some(Cond::item_absent().or(Cond::eq("username", username))),
                });
            }
        }
        ops.push(TxOp::Update {
            key: keys::info(username),
            update,
            cond: Some(info_cond),
        });
        match app.main.transact(ops).await {
            Ok(()) => {
                let fields = json!({
                    "full_name": valid.full_name.is_some(),
                    "phone_number": new_phone.is_some(),
                });
                audit::record(
                    app,
                    LogKind::Audit,
                    username,
                    Some(username),
                    "profile.updated",
                    fields,
                )
                .await;
                return get(app, username).await;
            }
            Err(e) if new_phone.is_some() && e.failed_at(0) => return Err(phone_taken()),
            Err(StoreError::TransactionCanceled { .. } | StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::unavailable())
}

/// `GET /user/referral-code`.
pub async fn referral_code(app: &App, username: &str) -> Result<String, ApiError> {
    Ok(info(app, username).await?.referral_code)
}
