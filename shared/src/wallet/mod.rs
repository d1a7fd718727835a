//! The wallet: integer-rupiah balance and points on `USER#{u}/WALLET`, changed only through
//! [`apply`], which writes in ONE transaction the conditional wallet update (optimistic on
//! `version`, `balance >= amount` for debits), an append-only ledger entry with the balance after,
//! an optional idempotency record, and any extra operations the caller needs in the same
//! all-or-nothing write (an invoice status change, a payout).
//!
//! Rule for other code touching `WALLET` (points): bump `version` in the same write, so a balance
//! change racing with it retries instead of overwriting.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::domain::account::WalletRecord;
use crate::domain::money::Money;
use crate::error::ApiError;
use crate::store::{
    Cond, Item, Key, Query, StoreError, TxOp, Update, batch_array, from_item, get_array, keys,
    query_all, to_item,
};

/// Direction of a wallet change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum EntryType {
    Credit,
    Debit,
}

/// Which money a change moves. The wallet's `bonus` is the part of the balance that came from
/// points: it can be spent but never paid out, so points cannot be turned into withdrawable money.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Funds {
    /// A credit of withdrawable money (a paid top-up, a released payout hold), or a debit that
    /// spends (it uses bonus money first).
    #[default]
    Cash,
    /// A credit of bonus money (redeemed points): spendable, not withdrawable.
    Bonus,
    /// A debit that leaves the wallet for a bank (a payout): withdrawable money only.
    Withdrawal,
}

/// One change requested of a wallet.
#[derive(Clone, Debug)]
pub struct Change {
    pub kind: EntryType,
    pub amount: Money,
    pub description: String,
    /// What caused it (invoice id, request id, voucher code).
    pub reference_id: String,
    /// Which money it moves.
    pub funds: Funds,
}

impl Change {
    /// A change of withdrawable money ([`Funds::Cash`]).
    pub fn cash(
        kind: EntryType,
        amount: Money,
        description: impl Into<String>,
        reference_id: impl Into<String>,
    ) -> Change {
        Change {
            kind,
            amount,
            description: description.into(),
            reference_id: reference_id.into(),
            funds: Funds::Cash,
        }
    }
}

/// Balance and bonus after a change of `wallet`, or why it cannot be made (pure: the rule of
/// [`Funds`]).
pub fn balance_after(wallet: &WalletRecord, c: &Change) -> Result<(i64, i64), WalletError> {
    let amount = c.amount.rupiah();
    let overflow = || WalletError::Store(StoreError::Invalid("wallet overflow".into()));
    let bonus = wallet.bonus.clamp(0, wallet.balance.max(0));
    match (c.kind, c.funds) {
        (EntryType::Credit, funds) => {
            let balance = wallet.balance.checked_add(amount).ok_or_else(overflow)?;
            let bonus = if funds == Funds::Bonus {
                bonus.checked_add(amount).ok_or_else(overflow)?
            } else {
                bonus
            };
            Ok((balance, bonus))
        }
        (EntryType::Debit, Funds::Withdrawal) => {
            if wallet.withdrawable() < amount {
                return Err(if wallet.balance < amount {
                    WalletError::Insufficient
                } else {
                    WalletError::InsufficientWithdrawable
                });
            }
            Ok((wallet.balance - amount, bonus))
        }
        (EntryType::Debit, _) => {
            if wallet.balance < amount {
                return Err(WalletError::Insufficient);
            }
            Ok((wallet.balance - amount, (bonus - amount).max(0)))
        }
    }
}

/// A points change made in the same wallet write, with its own points-ledger entry
/// (`USER#{u}/POINTS#{ts}#{id}`, see [`crate::points`]).
#[derive(Clone, Debug)]
pub struct PointsChange {
    pub kind: EntryType,
    pub points: i64,
    pub description: String,
    pub reference_id: String,
}

/// An append-only ledger item `USER#{u}/LEDGER#{ts}#{id}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub pk: String,
    pub sk: String,
    pub entry_id: String,
    #[serde(rename = "type")]
    pub kind: EntryType,
    pub amount: i64,
    pub balance_after: i64,
    /// The wallet's bonus (non-withdrawable) part after the entry.
    #[serde(default)]
    pub bonus_after: i64,
    pub description: String,
    pub reference_id: String,
    pub created_at: i64,
}

/// An idempotency guard for a change: `IDEM#{scope}#{key}`, written in the same transaction.
#[derive(Clone, Debug)]
pub struct Idem {
    pub scope: String,
    pub key: String,
    /// What the request asked for; a reused key with a different fingerprint is refused.
    pub fingerprint: String,
}

/// The stored idempotency record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdemRecord {
    pub pk: String,
    pub sk: String,
    pub username: String,
    pub fingerprint: String,
    pub balance_after: i64,
    /// Points after the change (0 in records written before points existed).
    #[serde(default)]
    pub points_after: i64,
    pub entry_id: String,
    pub created_at: i64,
    pub ttl: i64,
}

/// The wallet after a change, or the answer already given for the same idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied {
        balance_after: Money,
        points: i64,
        entry_id: String,
    },
    /// The idempotency record existed: nothing changed; the first answer is returned.
    Replayed {
        balance_after: Money,
        points_after: i64,
        entry_id: String,
    },
    /// The extra operation at this index (0-based among the caller's extras) had a false condition;
    /// nothing changed.
    ExtraRefused(usize),
}

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("insufficient balance")]
    Insufficient,
    /// Enough balance, but part of it is bonus money, which cannot be paid out.
    #[error("insufficient withdrawable balance")]
    InsufficientWithdrawable,
    #[error("insufficient points")]
    InsufficientPoints,
    #[error("idempotency key reused with a different request")]
    KeyReuse,
    #[error("too much contention")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<WalletError> for ApiError {
    fn from(e: WalletError) -> Self {
        match e {
            WalletError::Insufficient => ApiError::bad_request("Insufficient Balance"),
            WalletError::InsufficientWithdrawable => {
                ApiError::bad_request("Insufficient Withdrawable Balance")
            }
            WalletError::InsufficientPoints => ApiError::bad_request("Insufficient Points"),
            WalletError::KeyReuse => {
                ApiError::unprocessable("Idempotency-Key was used with a different request")
            }
            WalletError::Contended => ApiError::unavailable(),
            WalletError::Store(s) => s.into(),
        }
    }
}

/// How many times a change is retried after losing an optimistic race.
const MAX_ATTEMPTS: usize = 100;
/// Idempotency records are kept this long (seconds).
const IDEM_TTL_SECS: i64 = 7 * 86_400;

/// Reads a wallet; a user without a wallet item has an empty one at version 0.
pub async fn read(app: &App, username: &str) -> Result<WalletRecord, StoreError> {
    Ok(read_stored(app, username).await?.0)
}

/// The wallet and whether its item exists.
async fn read_stored(app: &App, username: &str) -> Result<(WalletRecord, bool), StoreError> {
    stored(app.main.get(&keys::wallet(username)).await?, username)
}

/// The wallet in a read item, or a fresh one (and whether it exists).
fn stored(item: Option<Item>, username: &str) -> Result<(WalletRecord, bool), StoreError> {
    match item {
        Some(item) => Ok((from_item(&item)?, true)),
        None => {
            let k = keys::wallet(username);
            Ok((
                WalletRecord {
                    pk: k.pk,
                    sk: k.sk,
                    ..WalletRecord::default()
                },
                false,
            ))
        }
    }
}

async fn read_idem(app: &App, username: &str, idem: &Idem) -> Result<Option<Outcome>, WalletError> {
    let item = app
        .main
        .get(&keys::idempotency(&idem.scope, &idem.key))
        .await?;
    replayed(item.as_ref(), username, idem)
}

/// The first answer for an idempotency key, if its record was read; a record for another request
/// (fingerprint or user) is a reused key.
fn replayed(
    item: Option<&Item>,
    username: &str,
    idem: &Idem,
) -> Result<Option<Outcome>, WalletError> {
    let Some(item) = item else {
        return Ok(None);
    };
    let rec: IdemRecord = from_item(item)?;
    if rec.fingerprint != idem.fingerprint || rec.username != username {
        return Err(WalletError::KeyReuse);
    }
    Ok(Some(Outcome::Replayed {
        balance_after: Money::from_rupiah(rec.balance_after),
        points_after: rec.points_after,
        entry_id: rec.entry_id,
    }))
}

/// Applies one change exactly once. `extra` operations join the same transaction after the
/// wallet, ledger and idempotency operations.
pub async fn apply(
    app: &App,
    username: &str,
    change: &Change,
    idem: Option<&Idem>,
    extra: &[TxOp],
) -> Result<Outcome, WalletError> {
    apply_full(app, username, Some(change), None, idem, extra).await
}

/// Applies a balance change and/or a points change to one wallet exactly once, in one
/// transaction: the wallet update (optimistic on `version`; `balance >=` / `points >=` for
/// debits), a wallet-ledger entry (balance change only), a points-ledger entry (points change
/// only), the idempotency record, then `extra`.
pub async fn apply_full(
    app: &App,
    username: &str,
    change: Option<&Change>,
    points: Option<&PointsChange>,
    idem: Option<&Idem>,
    extra: &[TxOp],
) -> Result<Outcome, WalletError> {
    // With a key, its record and the wallet are read in one request (the usual case is a new key,
    // and the wallet is needed then); a retry after a lost race reads the wallet alone.
    let first_read = match idem {
        Some(idem) => {
            let [record, wallet] = get_array(app.main.as_ref(), &read_keys(username, idem)).await?;
            Some(WalletRead { record, wallet })
        }
        None => None,
    };
    apply_read(app, username, change, points, idem, extra, first_read).await
}

/// The items a change with an idempotency key reads first, in this order: the key's record, the
/// wallet. A caller with items of its own to read can read these in the same batch and hand them
/// to [`apply_full_read`].
pub fn read_keys(username: &str, idem: &Idem) -> [Key; 2] {
    [
        keys::idempotency(&idem.scope, &idem.key),
        keys::wallet(username),
    ]
}

/// The idempotency record and wallet as read (by [`read_keys`]).
pub struct WalletRead {
    record: Option<Item>,
    wallet: Option<Item>,
}

impl WalletRead {
    /// From the answer to a batch read of exactly [`read_keys`], in that order.
    pub fn from_items(items: Vec<Option<Item>>) -> Result<WalletRead, StoreError> {
        let [record, wallet] = batch_array(items)?;
        Ok(WalletRead { record, wallet })
    }
}

/// [`apply_full`] with its first read (idempotency record and wallet) already made by the caller.
pub async fn apply_full_read(
    app: &App,
    username: &str,
    change: Option<&Change>,
    points: Option<&PointsChange>,
    idem: &Idem,
    extra: &[TxOp],
    read: WalletRead,
) -> Result<Outcome, WalletError> {
    apply_read(app, username, change, points, Some(idem), extra, Some(read)).await
}

async fn apply_read(
    app: &App,
    username: &str,
    change: Option<&Change>,
    points: Option<&PointsChange>,
    idem: Option<&Idem>,
    extra: &[TxOp],
    first_read: Option<WalletRead>,
) -> Result<Outcome, WalletError> {
    let mut prefetched = None;
    if let Some(read) = first_read {
        if let Some(idem) = idem
            && let Some(done) = replayed(read.record.as_ref(), username, idem)?
        {
            return Ok(done);
        }
        prefetched = Some(stored(read.wallet, username)?);
    }
    let overflow = || WalletError::Store(StoreError::Invalid("wallet overflow".into()));
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            let ms = rand::rng().random_range(1..=(2 + attempt as u64).min(20));
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let (wallet, exists) = match prefetched.take() {
            Some(read) => read,
            None => read_stored(app, username).await?,
        };
        let (after, bonus_after) = match change {
            None => (wallet.balance, wallet.bonus),
            Some(c) => balance_after(&wallet, c)?,
        };
        let points_after = match points {
            None => wallet.points,
            Some(p) => match p.kind {
                EntryType::Credit => wallet.points.checked_add(p.points),
                EntryType::Debit => {
                    if wallet.points < p.points {
                        return Err(WalletError::InsufficientPoints);
                    }
                    wallet.points.checked_sub(p.points)
                }
            }
            .ok_or_else(overflow)?,
        };
        let now = app.clock.now();
        let entry_id = uuid::Uuid::new_v4().simple().to_string();
        let wallet_cond = if !exists {
            Cond::item_absent()
        } else {
            let mut c = Cond::eq("version", wallet.version);
            if let Some(ch) = change.filter(|c| c.kind == EntryType::Debit) {
                c = c.and(Cond::ge("balance", ch.amount.rupiah()));
            }
            if let Some(p) = points.filter(|p| p.kind == EntryType::Debit) {
                c = c.and(Cond::ge("points", p.points));
            }
            c
        };
        // Without a points change, points are left alone (another flow may add to them with a
        // version bump); a first write creates the field.
        let mut update = Update::new()
            .set("balance", after)
            .set("version", wallet.version + 1)
            .set("updated_at", now.timestamp());
        if change.is_some() || !exists {
            update = update.set("bonus", bonus_after);
        }
        if points.is_some() || !exists {
            update = update.set("points", points_after);
        }
        if points.is_some_and(|p| p.kind == EntryType::Credit) {
            update = update
                .set("gsi2pk", keys::POINTS_HOLDERS_GSI_PK)
                .set("gsi2sk", username);
        }
        let mut ops = vec![TxOp::Update {
            key: keys::wallet(username),
            update,
            cond: Some(wallet_cond),
        }];
        if let Some(c) = change {
            let lkey = keys::ledger(username, now.timestamp_millis(), &entry_id);
            let entry = LedgerEntry {
                pk: lkey.pk,
                sk: lkey.sk,
                entry_id: entry_id.clone(),
                kind: c.kind,
                amount: c.amount.rupiah(),
                balance_after: after,
                bonus_after,
                description: c.description.clone(),
                reference_id: c.reference_id.clone(),
                created_at: now.timestamp(),
            };
            ops.push(TxOp::Put {
                item: to_item(&entry)?,
                cond: Some(Cond::item_absent()),
            });
        }
        let idem_at = ops.len();
        if let Some(idem) = idem {
            let k = keys::idempotency(&idem.scope, &idem.key);
            let rec = IdemRecord {
                pk: k.pk,
                sk: k.sk,
                username: username.to_owned(),
                fingerprint: idem.fingerprint.clone(),
                balance_after: after,
                points_after,
                entry_id: entry_id.clone(),
                created_at: now.timestamp(),
                ttl: now.timestamp() + IDEM_TTL_SECS,
            };
            ops.push(TxOp::Put {
                item: to_item(&rec)?,
                cond: Some(Cond::item_absent()),
            });
        }
        if let Some(p) = points {
            ops.push(crate::points::ledger_put(
                username,
                now,
                &entry_id,
                p.kind,
                p.points,
                &p.description,
                &p.reference_id,
            )?);
        }
        let first_extra = ops.len();
        ops.extend(extra.iter().cloned());
        match app.main.transact(ops).await {
            Ok(()) => {
                return Ok(Outcome::Applied {
                    balance_after: Money::from_rupiah(after),
                    points: points_after,
                    entry_id,
                });
            }
            Err(StoreError::Conflict) => continue,
            Err(e @ StoreError::TransactionCanceled { .. }) => {
                if let StoreError::TransactionCanceled { failed } = &e
                    && let Some(i) = failed.iter().find(|i| **i >= first_extra)
                {
                    return Ok(Outcome::ExtraRefused(i - first_extra));
                }
                if let Some(idem) = idem.filter(|_| e.failed_at(idem_at))
                    && let Some(done) = read_idem(app, username, idem).await?
                {
                    return Ok(done);
                }
                // Lost the optimistic race on the wallet (or a ledger id collided): read again.
                continue;
            }
            Err(e) => return Err(e.into()),
        }
    }
    tracing::warn!(
        username,
        "wallet change gave up after {MAX_ATTEMPTS} attempts"
    );
    Err(WalletError::Contended)
}

/// Every ledger entry of a user, oldest first.
pub async fn ledger(app: &App, username: &str) -> Result<Vec<LedgerEntry>, StoreError> {
    let items: Vec<Item> = query_all(
        app.main.as_ref(),
        Query::pk(keys::user_pk(username)).prefix(keys::LEDGER_PREFIX),
    )
    .await?;
    items.iter().map(from_item).collect()
}

/// Credits minus debits over the whole ledger: must always equal the wallet balance.
pub async fn ledger_sum(app: &App, username: &str) -> Result<Money, StoreError> {
    let sum = ledger(app, username)
        .await?
        .iter()
        .fold(0i64, |acc, e| match e.kind {
            EntryType::Credit => acc.saturating_add(e.amount),
            EntryType::Debit => acc.saturating_sub(e.amount),
        });
    Ok(Money::from_rupiah(sum))
}
