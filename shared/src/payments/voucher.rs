//! Vouchers: definitions (code, discount, validity window, total and per-user limits) managed with
//! an API key, and redemption — one transaction that increments the definition's counter under
//! `redeemed_count < total_limit` and the user's counter under `count < per_user_limit`, so neither
//! limit can be exceeded under concurrency. Redeeming answers the discount for the calling service
//! to apply; it does not move wallet money.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::{Audit, LogKind};
use crate::clock::ClockRef;
use crate::domain::account::Username;
use crate::domain::money::Money;
use crate::store::{Cond, Steps, StoreError, TableRef, TxOp, Update, keys, to_item};

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

// Checked into a `VoucherSpec` at the HTTP edge.
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

/// A voucher definition to create, checked: the window is not empty and the limits are in range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoucherSpec {
    pub code: VoucherCode,
    pub discount: Money,
    /// Epoch seconds, inclusive.
    pub valid_from: i64,
    pub valid_until: i64,
    pub total_limit: i64,
    pub per_user_limit: i64,
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

/// A voucher code that is not 3–32 of `A-Z 0-9 _ -`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid voucher code")]
pub struct InvalidVoucherCode;

/// A voucher code: 3–32 of `A-Z 0-9 _ -`, case-insensitive (stored upper-case).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VoucherCode(String);

impl VoucherCode {
    pub fn parse(raw: &str) -> Result<VoucherCode, InvalidVoucherCode> {
        let c = raw.trim().to_uppercase();
        if (3..=32).contains(&c.len())
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        {
            Ok(VoucherCode(c))
        } else {
            Err(InvalidVoucherCode)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<VoucherCode> for String {
    fn from(c: VoucherCode) -> String {
        c.0
    }
}

/// Why a voucher request was refused.
#[derive(Debug, thiserror::Error)]
pub enum VoucherError {
    #[error("voucher not found")]
    NotFound,
    /// A definition with that code exists.
    #[error("voucher already exists")]
    Exists,
    /// Outside its validity window.
    #[error("voucher expired")]
    Expired,
    /// Redeemed `total_limit` times.
    #[error("voucher quota exceeded")]
    QuotaExceeded,
    /// The user redeemed it `per_user_limit` times.
    #[error("voucher already redeemed")]
    AlreadyRedeemed,
    /// The redemption kept losing races.
    #[error("too much contention")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The answer to a redemption.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Redeemed {
    pub username: String,
    pub voucher_code: String,
    pub discount_amount: i64,
    pub redeemed_at: String,
}

/// Whether a user has redeemed a voucher.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RedemptionStatus {
    pub voucher_code: String,
    pub redeemed: bool,
    pub count: i64,
    pub redeemed_at: Option<String>,
}

/// The steps of a redemption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Redeem {
    /// The definition's counter, below `total_limit` and inside the window.
    Definition,
    /// The user's counter, below `per_user_limit`.
    PerUser,
}

/// Why `def` cannot be redeemed at `t` (epoch seconds), if so (pure).
fn refusal(def: &VoucherDef, t: i64) -> Option<VoucherError> {
    if t < def.valid_from || t > def.valid_until {
        Some(VoucherError::Expired)
    } else if def.redeemed_count >= def.total_limit {
        Some(VoucherError::QuotaExceeded)
    } else {
        None
    }
}

/// Voucher definitions and redemptions. Cheap to clone.
#[derive(Clone)]
pub struct Vouchers {
    table: TableRef,
    clock: ClockRef,
    audit: Audit,
}

impl Vouchers {
    /// The vouchers on the main table.
    pub fn new(table: TableRef, clock: ClockRef, audit: Audit) -> Vouchers {
        Vouchers {
            table,
            clock,
            audit,
        }
    }

    /// Creates a definition (refused when the code exists).
    pub async fn create(&self, spec: VoucherSpec) -> Result<VoucherView, VoucherError> {
        let k = keys::voucher_def(spec.code.as_str());
        let def = VoucherDef {
            pk: k.pk,
            sk: k.sk,
            code: spec.code.into(),
            discount_amount: spec.discount.rupiah(),
            valid_from: spec.valid_from,
            valid_until: spec.valid_until,
            total_limit: spec.total_limit,
            per_user_limit: spec.per_user_limit,
            redeemed_count: 0,
            created_at: self.clock.epoch(),
        };
        match self
            .table
            .put(to_item(&def)?, Some(Cond::item_absent()))
            .await
        {
            Ok(()) => Ok(VoucherView::from(&def)),
            Err(StoreError::ConditionFailed) => Err(VoucherError::Exists),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a definition.
    pub async fn load(&self, code: &VoucherCode) -> Result<Option<VoucherDef>, StoreError> {
        crate::store::get_record(self.table.as_ref(), &keys::voucher_def(code.as_str())).await
    }

    /// The view of a definition.
    pub async fn show(&self, code: &VoucherCode) -> Result<VoucherView, VoucherError> {
        let def = self.load(code).await?.ok_or(VoucherError::NotFound)?;
        Ok(VoucherView::from(&def))
    }

    /// The redemption transaction: both counters, each under its limit.
    fn redeem_steps(
        &self,
        username: &Username,
        def: &VoucherDef,
        t: i64,
        at: &str,
    ) -> Steps<Redeem> {
        let code = def.code.as_str();
        let mut steps = Steps::new();
        steps
            .push(
                Redeem::Definition,
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
            )
            .push(
                Redeem::PerUser,
                TxOp::Update {
                    key: keys::user_voucher(username.as_str(), code),
                    update: Update::new()
                        .add("count", 1)
                        .set("voucher_code", code)
                        .set("discount_amount", def.discount_amount)
                        .set("redeemed_at", at),
                    cond: Some(Cond::item_absent().or(Cond::lt("count", def.per_user_limit))),
                },
            );
        steps
    }

    /// Redeems a voucher for a user, within the total and per-user limits.
    pub async fn redeem(
        &self,
        username: &Username,
        code: &VoucherCode,
    ) -> Result<Redeemed, VoucherError> {
        let def = self.load(code).await?.ok_or(VoucherError::NotFound)?;
        let now = self.clock.now();
        let t = now.timestamp();
        if let Some(no) = refusal(&def, t) {
            return Err(no);
        }
        let at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
        let (ops, names) = self.redeem_steps(username, &def, t, &at).split();
        for _ in 0..20 {
            match self.table.transact(ops.clone()).await {
                Ok(()) => {
                    self.audit
                        .record(
                            LogKind::Audit,
                            &format!("voucher:{}", code.as_str()),
                            Some(username.as_str()),
                            "voucher_redeemed",
                            serde_json::json!({ "voucher_code": code.as_str(), "discount_amount": def.discount_amount }),
                        )
                        .await;
                    return Ok(Redeemed {
                        username: username.as_str().to_owned(),
                        voucher_code: code.as_str().to_owned(),
                        discount_amount: def.discount_amount,
                        redeemed_at: at,
                    });
                }
                Err(StoreError::Conflict) => continue,
                Err(e) if names.failed(&e, Redeem::PerUser) => {
                    return Err(VoucherError::AlreadyRedeemed);
                }
                Err(e) if names.failed(&e, Redeem::Definition) => {
                    let cur = self.load(code).await?.ok_or(VoucherError::NotFound)?;
                    let t = self.clock.epoch();
                    return Err(if t < cur.valid_from || t > cur.valid_until {
                        VoucherError::Expired
                    } else {
                        VoucherError::QuotaExceeded
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(VoucherError::Contended)
    }

    /// The caller's own redemption state for a code.
    pub async fn check(
        &self,
        username: &Username,
        code: &VoucherCode,
    ) -> Result<RedemptionStatus, StoreError> {
        let item = self
            .table
            .get(&keys::user_voucher(username.as_str(), code.as_str()))
            .await?;
        let count = item
            .as_ref()
            .and_then(|i| crate::store::get_n(i, "count"))
            .unwrap_or(0);
        let at = item
            .as_ref()
            .and_then(|i| crate::store::get_s(i, "redeemed_at"))
            .map(str::to_owned);
        Ok(RedemptionStatus {
            voucher_code: code.as_str().to_owned(),
            redeemed: count > 0,
            count,
            redeemed_at: at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_upper_cased_and_restricted() {
        assert_eq!(
            VoucherCode::parse(" promo-10 ").map(String::from),
            Ok("PROMO-10".to_owned())
        );
        assert_eq!(VoucherCode::parse("ab"), Err(InvalidVoucherCode));
        assert_eq!(VoucherCode::parse("no spaces"), Err(InvalidVoucherCode));
    }
}
