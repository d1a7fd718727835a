//! Reward points: an append-only points ledger (`USER#{u}/POINTS#{ts}#{id}`) next to the
//! `points` counter on `WALLET`. Every change of the counter writes a ledger entry in the same
//! transaction (through [`Wallets::apply_full`] for the owner's own changes, or
//! [`Wallets::credit_points_ops`] for a referrer's bonus), so `WALLET.points` always equals the
//! ledger sum. Redemption converts points into balance in one transaction; the expiry job
//! debits points older than the configured age, first earned first expired.
//!
//! Built on [`crate::wallet`] (which writes the counter and its ledger); the wallet knows nothing
//! of this module.

use chrono::{DateTime, Months, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::{Audit, LogKind};
use crate::clock::{ClockRef, Deadline};
use crate::domain::account::Username;
use crate::domain::money::{MAX_AMOUNT, Money, Points};
use crate::store::walk::Walk;
use crate::store::{Query, StoreError, TableRef, from_item, keys, schema::GSI2};
use crate::wallet::{Change, EntryType, Funds, Idem, Outcome, PointsChange, WalletError, Wallets};

pub use crate::wallet::PointsEntry;

/// What `GET /points/history` shows of an entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PointsView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EntryType,
    pub amount: i64,
    pub description: String,
    pub reference_id: String,
    pub created_at: String,
}

/// Epoch millis as the wire's ISO-8601 UTC timestamp.
pub fn iso(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl From<&PointsEntry> for PointsView {
    fn from(e: &PointsEntry) -> Self {
        PointsView {
            id: e.entry_id.clone(),
            kind: e.kind,
            amount: e.amount,
            description: e.description.clone(),
            reference_id: e.reference_id.clone(),
            created_at: iso(e.created_ms),
        }
    }
}

/// Points earned by paying: `POINTS_PER_AMOUNT` rupiah per point (0 disables).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EarnRate {
    /// Rupiah per point; 0 or less earns nothing.
    pub per_amount: i64,
}

impl EarnRate {
    /// Points earned by paying `amount`.
    pub fn earned_for(self, amount: Money) -> Points {
        match self.per_amount {
            n if n > 0 && amount.rupiah() > 0 => Points::new(amount.rupiah() / n),
            _ => Points::ZERO,
        }
    }
}

/// The settings of [`Rewards`], copied out of the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RewardSettings {
    /// `POINTS_REDEEM_RATE`: rupiah credited per redeemed point.
    pub redeem_rate: i64,
    /// `POINTS_REDEEM_MIN`: fewest points one redemption may convert.
    pub redeem_min: i64,
    /// `POINTS_EXPIRY_MONTHS` (0 = never).
    pub expiry_months: i64,
    /// `SYNC_MAX_WALLETS`: wallets one expiry run looks at.
    pub max_wallets_per_run: usize,
}

/// The answer to a redemption.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Redeemed {
    pub points_redeemed: i64,
    pub amount: i64,
    pub balance: i64,
    pub points: i64,
    pub transaction_id: String,
}

/// Why a redemption was not made.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    /// Fewer points than `POINTS_REDEEM_MIN`.
    #[error("at least {min} points must be redeemed")]
    BelowMinimum { min: i64 },
    /// The points are worth more than an amount can be.
    #[error("too many points")]
    TooLarge,
    /// The points are worth an amount outside `1..=MAX_AMOUNT` rupiah.
    #[error("the amount is out of range")]
    AmountOutOfRange,
    /// The wallet answered a refused extra operation although none was given.
    #[error("unexpected wallet answer")]
    Unexpected,
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

/// Why an expiry run stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExpiryError {
    /// `POINTS_EXPIRY_MONTHS` does not give a date.
    #[error("no cutoff date {months} months back")]
    Cutoff { months: i64 },
    #[error(transparent)]
    Wallet(#[from] WalletError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one expiry run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ExpirySummary {
    /// Wallets looked at.
    pub checked: usize,
    /// Wallets that had points expire in this run.
    pub expired_wallets: usize,
    /// Points expired in this run.
    pub expired_points: i64,
    pub errors: usize,
}

/// Points of a user due to expire at `cutoff_ms`, first earned first gone: everything credited
/// up to the cutoff minus everything ever debited (debits consume the oldest points first, and
/// points never go negative). Also the id of the newest credit in that batch.
fn due(entries: &[PointsEntry], cutoff_ms: i64) -> Option<(i64, String)> {
    let mut old = 0i64;
    let mut last = None;
    let mut debits = 0i64;
    for e in entries {
        match e.kind {
            EntryType::Credit if e.created_ms <= cutoff_ms => {
                old = old.saturating_add(e.amount);
                last = Some(e.entry_id.clone());
            }
            EntryType::Credit => {}
            EntryType::Debit => debits = debits.saturating_add(e.amount),
        }
    }
    let n = old.saturating_sub(debits);
    last.filter(|_| n > 0).map(|id| (n, id))
}

/// The amount `points` redeem into at `settings`, or why not (pure).
fn redemption_amount(settings: &RewardSettings, points: Points) -> Result<Money, RedeemError> {
    let n = points.value();
    if n < settings.redeem_min {
        return Err(RedeemError::BelowMinimum {
            min: settings.redeem_min,
        });
    }
    let amount = n
        .checked_mul(settings.redeem_rate)
        .ok_or(RedeemError::TooLarge)?;
    if amount <= 0 || amount > MAX_AMOUNT {
        return Err(RedeemError::AmountOutOfRange);
    }
    Ok(Money::from_rupiah(amount))
}

/// The points service: history, redemption and expiry on top of [`Wallets`]. Cheap to clone.
/// (Named `Rewards` because `Points` is the amount type.)
#[derive(Clone)]
pub struct Rewards {
    table: TableRef,
    clock: ClockRef,
    wallets: Wallets,
    audit: Audit,
    settings: RewardSettings,
}

impl Rewards {
    /// The points service on the main table.
    pub fn new(
        table: TableRef,
        clock: ClockRef,
        wallets: Wallets,
        audit: Audit,
        settings: RewardSettings,
    ) -> Rewards {
        Rewards {
            table,
            clock,
            wallets,
            audit,
            settings,
        }
    }

    /// A page of a user's points history, newest first.
    pub async fn history(
        &self,
        username: &Username,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<(Vec<PointsView>, Option<String>), StoreError> {
        let q = Query::pk(keys::user_pk(username.as_str()))
            .prefix(keys::POINTS_PREFIX)
            .descending()
            .limit(limit)
            .after(cursor);
        let page = self.table.query(q).await?;
        let items = page
            .items
            .iter()
            .map(|i| from_item::<PointsEntry>(i).map(|e| PointsView::from(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, page.cursor))
    }

    /// Every points-ledger entry of a user, oldest first.
    pub async fn ledger(&self, username: &Username) -> Result<Vec<PointsEntry>, StoreError> {
        self.wallets.points_ledger(username).await
    }

    /// Credits minus debits over the points ledger: must always equal `WALLET.points`.
    pub async fn ledger_sum(&self, username: &Username) -> Result<Points, StoreError> {
        self.wallets.points_ledger_sum(username).await
    }

    /// Converts `points` into balance at `POINTS_REDEEM_RATE` rupiah per point, in one
    /// transaction (points debit + balance credit + both ledger entries + the idempotency record
    /// when a key is given).
    pub async fn redeem(
        &self,
        username: &Username,
        points: Points,
        idempotency_key: Option<String>,
    ) -> Result<Redeemed, RedeemError> {
        let amount = redemption_amount(&self.settings, points)?;
        let n = points.value();
        let reference_id = format!("redeem-{}", uuid::Uuid::new_v4().simple());
        let change = Change {
            kind: EntryType::Credit,
            amount,
            description: format!("Redeemed {n} points"),
            reference_id: reference_id.clone(),
            funds: Funds::Bonus,
        };
        let pchange = PointsChange {
            kind: EntryType::Debit,
            points,
            description: "Redeemed for balance".into(),
            reference_id,
        };
        let idem = idempotency_key.map(|k| Idem {
            scope: format!("redeem:{}", username.as_str()),
            key: k,
            fingerprint: n.to_string(),
        });
        let out = self
            .wallets
            .apply_full(username, Some(&change), Some(&pchange), idem.as_ref(), &[])
            .await?;
        let (balance, points_after, entry_id) = match out {
            Outcome::Applied {
                balance_after,
                points,
                entry_id,
            } => {
                self.audit
                    .record(
                        LogKind::Audit,
                        username.as_str(),
                        Some(username.as_str()),
                        "points_redeemed",
                        serde_json::json!({ "points": n, "amount": amount.rupiah() }),
                    )
                    .await;
                (balance_after, points, entry_id)
            }
            Outcome::Replayed {
                balance_after,
                points_after,
                entry_id,
            } => (balance_after, points_after, entry_id),
            // No extra operations were given.
            Outcome::ExtraRefused(_) => return Err(RedeemError::Unexpected),
        };
        Ok(Redeemed {
            points_redeemed: n,
            amount: amount.rupiah(),
            balance: balance.rupiah(),
            points: points_after.value(),
            transaction_id: entry_id,
        })
    }

    async fn expire_user(&self, username: &Username, cutoff_ms: i64) -> Result<i64, ExpiryError> {
        let entries = self.ledger(username).await?;
        let Some((n, last)) = due(&entries, cutoff_ms) else {
            return Ok(0);
        };
        // One batch per (user, newest expired credit): a second run, even a concurrent one, finds
        // the record (or nothing left to expire) and changes nothing.
        let batch = format!("{}#{last}", username.as_str());
        let idem = Idem {
            scope: "points-expiry".into(),
            key: batch.clone(),
            fingerprint: batch,
        };
        let pchange = PointsChange {
            kind: EntryType::Debit,
            points: Points::new(n),
            description: "Points expired".into(),
            reference_id: format!("expiry-{last}"),
        };
        match self
            .wallets
            .apply_full(username, None, Some(&pchange), Some(&idem), &[])
            .await
        {
            Ok(Outcome::Applied { .. }) => Ok(n),
            Ok(_) => Ok(0),
            // Redeemed meanwhile: the next run sees the new ledger.
            Err(WalletError::InsufficientPoints) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// The expiry job (`POINTS_EXPIRY_MONTHS`, 0 = never): for wallets that earned points,
    /// debits the points earned before the cutoff that were not spent yet, as a DEBIT ledger
    /// entry. Bounded per run (`SYNC_MAX_WALLETS` wallets, and nothing new is started past
    /// `deadline`) and resumable: each run continues after the wallet the previous one stopped
    /// at, so every wallet is reached.
    pub async fn expire(&self, deadline: Deadline) -> Result<ExpirySummary, ExpiryError> {
        let months = self.settings.expiry_months;
        let mut summary = ExpirySummary::default();
        if months <= 0 {
            return Ok(summary);
        }
        let now = self.clock.now();
        let cutoff = u32::try_from(months)
            .ok()
            .and_then(|m| now.checked_sub_months(Months::new(m)))
            .ok_or(ExpiryError::Cutoff { months })?;
        let table = self.table.as_ref();
        let mut walk = Walk::resume(
            table,
            "points-expiry",
            GSI2,
            "gsi2sk",
            keys::POINTS_HOLDERS_GSI_PK,
        )
        .await?;
        let max = self.settings.max_wallets_per_run;
        let mut finished = true;
        'pages: while summary.checked < max {
            let page = walk.next(table, (max - summary.checked).min(100)).await?;
            if page.is_empty() {
                break;
            }
            for item in &page {
                if deadline.passed() || summary.checked >= max {
                    finished = false;
                    break 'pages;
                }
                walk.handled(item);
                let Some(username) = crate::store::get_s(item, "gsi2sk").map(str::to_owned) else {
                    continue;
                };
                summary.checked += 1;
                let user = Username::from_stored(username.as_str());
                match self.expire_user(&user, cutoff.timestamp_millis()).await {
                    Ok(0) => {}
                    Ok(n) => {
                        summary.expired_wallets += 1;
                        summary.expired_points += n;
                    }
                    Err(e) => {
                        tracing::warn!(username, error = %e, "points expiry failed");
                        summary.errors += 1;
                    }
                }
            }
        }
        walk.save(table, finished && walk.reached_end()).await?;
        if summary.expired_wallets > 0 || summary.errors > 0 {
            tracing::info!(?summary, "points expiry finished");
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: EntryType, amount: i64, ms: i64) -> PointsEntry {
        PointsEntry {
            pk: String::new(),
            sk: String::new(),
            entry_id: format!("e{ms}"),
            kind,
            amount,
            description: String::new(),
            reference_id: String::new(),
            created_ms: ms,
        }
    }

    #[test]
    fn expiry_takes_old_credits_after_debits_consumed_the_oldest_first() {
        let entries = vec![
            e(EntryType::Credit, 100, 1),
            e(EntryType::Credit, 50, 2),
            e(EntryType::Debit, 120, 3),
            e(EntryType::Credit, 70, 10),
        ];
        assert_eq!(due(&entries, 2), Some((30, "e2".into())));
        assert_eq!(due(&entries, 0), None);
        let mut spent = entries.clone();
        spent.push(e(EntryType::Debit, 30, 11));
        assert_eq!(due(&spent, 2), None, "nothing left of the old credits");
    }

    #[test]
    fn earning_is_whole_points_per_amount_and_off_at_zero() {
        let rate = EarnRate { per_amount: 10_000 };
        assert_eq!(rate.earned_for(Money::from_rupiah(45_000)), Points::new(4));
        assert_eq!(rate.earned_for(Money::from_rupiah(9_999)), Points::ZERO);
        assert_eq!(
            EarnRate { per_amount: 0 }.earned_for(Money::from_rupiah(45_000)),
            Points::ZERO
        );
    }

    #[test]
    fn redemptions_below_the_minimum_or_past_the_largest_amount_are_refused() {
        let s = RewardSettings {
            redeem_rate: 100,
            redeem_min: 100,
            expiry_months: 0,
            max_wallets_per_run: 10,
        };
        assert!(matches!(
            redemption_amount(&s, Points::new(99)),
            Err(RedeemError::BelowMinimum { min: 100 })
        ));
        assert_eq!(
            redemption_amount(&s, Points::new(150)).expect("ok"),
            Money::from_rupiah(15_000)
        );
        assert!(matches!(
            redemption_amount(&s, Points::new(MAX_AMOUNT)),
            Err(RedeemError::AmountOutOfRange)
        ));
    }
}
