//! Vouchers: definitions (code, discount, validity window, total and per-user limits) managed with
//! an API key, and redemption — one transaction that increments the definition's counter under
//! `redeemed_count < total_limit` and the user's counter under `count < per_user_limit`, so neither
//! limit can be exceeded under concurrency. Redeeming answers the discount for the calling service
//! to apply; it does not move wallet money.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::audit::{self, LogKind};
use crate::domain::money::Money;
use crate::error::{ApiError, FieldError};
use crate::store::{Cond, StoreError, TxOp, Update, keys, to_item};

/// `VOUCHERDEF#{code}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VoucherDef {
    pub pk: String,
    pub sk: String,
    pub code: String,
    pub discount_amount: i64,
    /// Epoch seconds, inclusive.
    pub valid_from: i64,
    pub valid_until: i64,
    pub total_limit: i64,
    pub per_user_limit: i64,
    pub redeemed_count: i64,
    pub created_at: i64,
}

/// What an administrator submits.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
pub struct NewVoucher {
    pub code: String,
    pub discount_amount: i64,
    pub valid_from: String,
    pub valid_until: String,
    pub total_limit: i64,
    #[serde(default)]
    pub per_user_limit: Option<i64>,
}

/// The view of a definition.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VoucherView {
    pub code: String,
    pub discount_amount: i64,
    pub valid_from: String,
    pub valid_until: String,
    pub total_limit: i64,
    pub per_user_limit: i64,
    pub redeemed_count: i64,
}

fn iso(epoch: i64) -> String {
    DateTime::<Utc>::from_timestamp(epoch, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl From<&VoucherDef> for VoucherView {
    fn from(d: &VoucherDef) -> Self {
        VoucherView {
            code: d.code.clone(),
            discount_amount: d.discount_amount,
            valid_from: iso(d.valid_from),
            valid_until: iso(d.valid_until),
            total_limit: d.total_limit,
            per_user_limit: d.per_user_limit,
            redeemed_count: d.redeemed_count,
        }
    }
}

/// A voucher code: 3–32 of `A-Z 0-9 _ -`, case-insensitive (stored upper-case).
pub fn parse_code(raw: &str) -> Result<String, ApiError> {
    let c = raw.trim().to_uppercase();
    if (3..=32).contains(&c.len())
        && c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    {
        Ok(c)
    } else {
        Err(ApiError::validation(vec![FieldError::new(
            "voucher_code",
            "must be 3-32 letters, digits, _ or -",
        )]))
    }
}

fn parse_time(field: &str, raw: &str) -> Result<i64, ApiError> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.timestamp())
        .map_err(|_| {
            ApiError::validation(vec![FieldError::new(
                field,
                "must be an RFC 3339 date-time",
            )])
        })
}

/// Creates a definition (409 when the code exists).
pub async fn create(app: &App, req: NewVoucher) -> Result<VoucherView, ApiError> {
    let code = parse_code(&req.code)?;
    let discount = Money::positive("discount_amount", req.discount_amount)?;
    let valid_from = parse_time("valid_from", &req.valid_from)?;
    let valid_until = parse_time("valid_until", &req.valid_until)?;
    let mut problems = Vec::new();
    if valid_until <= valid_from {
        problems.push(FieldError::new("valid_until", "must be after valid_from"));
    }
    if !(1..=10_000_000).contains(&req.total_limit) {
        problems.push(FieldError::new(
            "total_limit",
            "must be between 1 and 10000000",
        ));
    }
    let per_user = req.per_user_limit.unwrap_or(1);
    if !(1..=1000).contains(&per_user) {
        problems.push(FieldError::new(
            "per_user_limit",
            "must be between 1 and 1000",
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let k = keys::voucher_def(&code);
    let def = VoucherDef {
        pk: k.pk,
        sk: k.sk,
        code,
        discount_amount: discount.rupiah(),
        valid_from,
        valid_until,
        total_limit: req.total_limit,
        per_user_limit: per_user,
        redeemed_count: 0,
        created_at: app.clock.epoch(),
    };
    match app
        .main
        .put(to_item(&def)?, Some(Cond::item_absent()))
        .await
    {
        Ok(()) => Ok(VoucherView::from(&def)),
        Err(StoreError::ConditionFailed) => Err(ApiError::conflict("Voucher already exists")),
        Err(e) => Err(e.into()),
    }
}

/// Reads a definition.
pub async fn load(app: &App, code: &str) -> Result<Option<VoucherDef>, StoreError> {
    crate::store::get_record(app.main.as_ref(), &keys::voucher_def(code)).await
}

/// The answer to a redemption.
#[derive(Clone, Debug, Serialize)]
pub struct Redeemed {
    pub username: String,
    pub voucher_code: String,
    pub discount_amount: i64,
    pub redeemed_at: String,
}

/// Redeems a voucher for a user, within the total and per-user limits.
pub async fn redeem(app: &App, username: &str, code: &str) -> Result<Redeemed, ApiError> {
    let def = load(app, code)
        .await?
        .ok_or_else(|| ApiError::not_found("Voucher Not Found"))?;
    let now = app.clock.now();
    let t = now.timestamp();
    if t < def.valid_from || t > def.valid_until {
        return Err(ApiError::bad_request("Voucher Expired"));
    }
    if def.redeemed_count >= def.total_limit {
        return Err(ApiError::bad_request("Voucher Quota Exceeded"));
    }
    let at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let ops = vec![
        TxOp::Update {
            key: keys::voucher_def(code),
            update: Update::new().add("redeemed_count", 1),
            cond: Some(
                Cond::item_exists()
                    .and(Cond::lt("redeemed_count", def.total_limit))
                    .and(Cond::le("valid_from", t))
                    .and(Cond::ge("valid_until", t)),
            ),
        },
        TxOp::Update {
            key: keys::user_voucher(username, code),
            update: Update::new()
                .add("count", 1)
                .set("voucher_code", code)
                .set("discount_amount", def.discount_amount)
                .set("redeemed_at", at.as_str()),
            cond: Some(Cond::item_absent().or(Cond::lt("count", def.per_user_limit))),
        },
    ];
    for _ in 0..20 {
        match app.main.transact(ops.clone()).await {
            Ok(()) => {
                audit::record(
                    app,
                    LogKind::Audit,
                    &format!("voucher:{code}"),
                    Some(username),
                    "voucher_redeemed",
                    serde_json::json!({ "voucher_code": code, "discount_amount": def.discount_amount }),
                )
                .await;
                return Ok(Redeemed {
                    username: username.to_owned(),
                    voucher_code: code.to_owned(),
                    discount_amount: def.discount_amount,
                    redeemed_at: at,
                });
            }
            Err(StoreError::Conflict) => continue,
            Err(e) if e.failed_at(1) => return Err(ApiError::conflict("Voucher Already Redeemed")),
            Err(e) if e.failed_at(0) => {
                let cur = load(app, code)
                    .await?
                    .ok_or_else(|| ApiError::not_found("Voucher Not Found"))?;
                let t = app.clock.epoch();
                return Err(if t < cur.valid_from || t > cur.valid_until {
                    ApiError::bad_request("Voucher Expired")
                } else {
                    ApiError::bad_request("Voucher Quota Exceeded")
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::unavailable())
}

/// Whether a user has redeemed a voucher.
#[derive(Clone, Debug, Serialize)]
pub struct RedemptionStatus {
    pub voucher_code: String,
    pub redeemed: bool,
    pub count: i64,
    pub redeemed_at: Option<String>,
}

/// The caller's own redemption state for a code.
pub async fn check(app: &App, username: &str, code: &str) -> Result<RedemptionStatus, ApiError> {
    let item = app.main.get(&keys::user_voucher(username, code)).await?;
    let count = item
        .as_ref()
        .and_then(|i| crate::store::get_n(i, "count"))
        .unwrap_or(0);
    let at = item
        .as_ref()
        .and_then(|i| crate::store::get_s(i, "redeemed_at"))
        .map(str::to_owned);
    Ok(RedemptionStatus {
        voucher_code: code.to_owned(),
        redeemed: count > 0,
        count,
        redeemed_at: at,
    })
}
