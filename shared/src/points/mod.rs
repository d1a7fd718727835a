//! Reward points: an append-only points ledger (`USER#{u}/POINTS#{ts}#{id}`) next to the
//! `points` counter on `WALLET`. Every change of the counter writes a ledger entry in the same
//! transaction (through [`wallet::apply_full`] for the owner's own changes, or [`ledger_put`] +
//! an `ADD` with a version bump for a referrer's bonus), so `WALLET.points` always equals the
//! ledger sum. Redemption converts points into balance in one transaction; the expiry job
//! debits points older than the configured age, first earned first expired.

use chrono::{DateTime, Months, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::audit::{self, LogKind};
use crate::clock::Deadline;
use crate::domain::money::{Money, Points};
use crate::error::{ApiError, FieldError};
use crate::store::walk::Walk;
use crate::store::{
    Cond, Item, Query, StoreError, TxOp, from_item, keys, query_all, schema::GSI2, to_item,
};
use crate::wallet::{self, Change, EntryType, Idem, Outcome, PointsChange};

/// One stored points-ledger entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PointsEntry {
    pub pk: String,
    pub sk: String,
    pub entry_id: String,
    #[serde(rename = "type")]
    pub kind: EntryType,
    pub amount: i64,
    pub description: String,
    pub reference_id: String,
    /// Epoch milliseconds.
    pub created_ms: i64,
}

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

/// The put of a new points-ledger entry, for a transaction.
pub fn ledger_put(
    username: &str,
    now: DateTime<Utc>,
    entry_id: &str,
    kind: EntryType,
    amount: i64,
    description: &str,
    reference_id: &str,
) -> Result<TxOp, StoreError> {
    let k = keys::points_entry(username, now.timestamp_millis(), entry_id);
    let entry = PointsEntry {
        pk: k.pk,
        sk: k.sk,
        entry_id: entry_id.to_owned(),
        kind,
        amount,
        description: description.to_owned(),
        reference_id: reference_id.to_owned(),
        created_ms: now.timestamp_millis(),
    };
    Ok(TxOp::Put {
        item: to_item(&entry)?,
        cond: Some(Cond::item_absent()),
    })
}

/// Operations crediting `points` to another user's wallet inside someone else's transaction
/// (the referrer's bonus): `ADD points` with a `version` bump (so a racing balance change of that
/// wallet retries instead of overwriting) plus the ledger entry. The wallet must exist.
pub fn credit_ops(
    app: &App,
    username: &str,
    points: i64,
    description: &str,
    reference_id: &str,
) -> Result<Vec<TxOp>, StoreError> {
    let now = app.clock.now();
    let entry_id = uuid::Uuid::new_v4().simple().to_string();
    Ok(vec![
        TxOp::Update {
            key: keys::wallet(username),
            update: crate::store::Update::new()
                .add("points", points)
                .add("version", 1)
                .set("updated_at", now.timestamp())
                .set("gsi2pk", keys::POINTS_HOLDERS_GSI_PK)
                .set("gsi2sk", username),
            cond: Some(Cond::item_exists()),
        },
        ledger_put(
            username,
            now,
            &entry_id,
            EntryType::Credit,
            points,
            description,
            reference_id,
        )?,
    ])
}

/// Points earned by paying `amount` rupiah (`POINTS_PER_AMOUNT` rupiah per point; 0 disables).
pub fn earned_for(app: &App, amount: i64) -> i64 {
    match app.config.points.per_amount {
        n if n > 0 && amount > 0 => amount / n,
        _ => 0,
    }
}

/// A page of a user's points history, newest first.
pub async fn history(
    app: &App,
    username: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<PointsView>, Option<String>), StoreError> {
    let q = Query::pk(keys::user_pk(username))
        .prefix(keys::POINTS_PREFIX)
        .descending()
        .limit(limit)
        .after(cursor);
    let page = app.main.query(q).await?;
    let items = page
        .items
        .iter()
        .map(|i| from_item::<PointsEntry>(i).map(|e| PointsView::from(&e)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((items, page.cursor))
}

/// Every points-ledger entry of a user, oldest first.
pub async fn ledger(app: &App, username: &str) -> Result<Vec<PointsEntry>, StoreError> {
    let items: Vec<Item> = query_all(
        app.main.as_ref(),
        Query::pk(keys::user_pk(username)).prefix(keys::POINTS_PREFIX),
    )
    .await?;
    items.iter().map(from_item).collect()
}

/// Credits minus debits over the points ledger: must always equal `WALLET.points`.
pub async fn ledger_sum(app: &App, username: &str) -> Result<i64, StoreError> {
    Ok(ledger(app, username)
        .await?
        .iter()
        .fold(0i64, |acc, e| match e.kind {
            EntryType::Credit => acc.saturating_add(e.amount),
            EntryType::Debit => acc.saturating_sub(e.amount),
        }))
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

/// Converts `points` into balance at `POINTS_REDEEM_RATE` rupiah per point, in one transaction
/// (points debit + balance credit + both ledger entries + the idempotency record when a key is given).
pub async fn redeem(
    app: &App,
    username: &str,
    points: Points,
    idempotency_key: Option<String>,
) -> Result<Redeemed, ApiError> {
    let cfg = &app.config.points;
    let n = points.value();
    if n < cfg.redeem_min {
        return Err(ApiError::validation(vec![FieldError::new(
            "points",
            format!("must be at least {}", cfg.redeem_min),
        )]));
    }
    let amount = n
        .checked_mul(cfg.redeem_rate)
        .ok_or_else(|| ApiError::validation(vec![FieldError::new("points", "is too large")]))?;
    let amount = Money::positive("points", amount)?;
    let reference_id = format!("redeem-{}", uuid::Uuid::new_v4().simple());
    let change = Change {
        kind: EntryType::Credit,
        amount,
        description: format!("Redeemed {n} points"),
        reference_id: reference_id.clone(),
        funds: crate::wallet::Funds::Bonus,
    };
    let pchange = PointsChange {
        kind: EntryType::Debit,
        points: n,
        description: "Redeemed for balance".into(),
        reference_id,
    };
    let idem = idempotency_key.map(|k| Idem {
        scope: format!("redeem:{username}"),
        key: k,
        fingerprint: n.to_string(),
    });
    let out = wallet::apply_full(
        app,
        username,
        Some(&change),
        Some(&pchange),
        idem.as_ref(),
        &[],
    )
    .await?;
    let (balance, points_after, entry_id) = match out {
        Outcome::Applied {
            balance_after,
            points,
            entry_id,
        } => {
            audit::record(
                app,
                LogKind::Audit,
                username,
                Some(username),
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
        Outcome::ExtraRefused(_) => return Err(ApiError::internal()),
    };
    Ok(Redeemed {
        points_redeemed: n,
        amount: amount.rupiah(),
        balance: balance.rupiah(),
        points: points_after,
        transaction_id: entry_id,
    })
}

/// What one expiry run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExpirySummary {
    /// Wallets looked at.
    pub checked: usize,
    /// Wallets that had points expire in this run.
    pub expired_wallets: usize,
    /// Points expired in this run.
    pub expired_points: i64,
    pub errors: usize,
}

/// Points of `username` due to expire at `cutoff_ms`, first earned first gone: everything
/// credited up to the cutoff minus everything ever debited (debits consume the oldest points
/// first, and points never go negative). Also the id of the newest credit in that batch.
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

async fn expire_user(app: &App, username: &str, cutoff_ms: i64) -> Result<i64, ApiError> {
    let entries = ledger(app, username).await?;
    let Some((n, last)) = due(&entries, cutoff_ms) else {
        return Ok(0);
    };
    // One batch per (user, newest expired credit): a second run, even a concurrent one, finds the
    // record (or nothing left to expire) and changes nothing.
    let batch = format!("{username}#{last}");
    let idem = Idem {
        scope: "points-expiry".into(),
        key: batch.clone(),
        fingerprint: batch,
    };
    let pchange = PointsChange {
        kind: EntryType::Debit,
        points: n,
        description: "Points expired".into(),
        reference_id: format!("expiry-{last}"),
    };
    match wallet::apply_full(app, username, None, Some(&pchange), Some(&idem), &[]).await {
        Ok(Outcome::Applied { .. }) => Ok(n),
        Ok(_) => Ok(0),
        // Redeemed meanwhile: the next run sees the new ledger.
        Err(wallet::WalletError::InsufficientPoints) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// The expiry job (`POINTS_EXPIRY_MONTHS`, 0 = never): for wallets that earned points, debits
/// the points earned before the cutoff that were not spent yet, as a DEBIT ledger entry. Bounded
/// per run (`SYNC_MAX_WALLETS` wallets, and nothing new is started past `deadline`) and resumable:
/// each run continues after the wallet the previous one stopped at, so every wallet is reached.
pub async fn expire(app: &App, deadline: Deadline) -> Result<ExpirySummary, ApiError> {
    let months = app.config.points.expiry_months;
    let mut summary = ExpirySummary::default();
    if months <= 0 {
        return Ok(summary);
    }
    let now = app.clock.now();
    let cutoff = u32::try_from(months)
        .ok()
        .and_then(|m| now.checked_sub_months(Months::new(m)))
        .ok_or_else(ApiError::internal)?;
    let table = app.main.as_ref();
    let mut walk = Walk::resume(
        table,
        "points-expiry",
        GSI2,
        "gsi2sk",
        keys::POINTS_HOLDERS_GSI_PK,
    )
    .await?;
    let max = app.config.sync_max_wallets;
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
            match expire_user(app, &username, cutoff.timestamp_millis()).await {
                Ok(0) => {}
                Ok(n) => {
                    summary.expired_wallets += 1;
                    summary.expired_points += n;
                }
                Err(e) => {
                    tracing::warn!(username, error = %e.message, "points expiry failed");
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
}
