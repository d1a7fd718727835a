//! The wallet: integer-rupiah balance and points on `USER#{u}/WALLET`, changed only through
//! [`Wallets::apply`], which writes in ONE transaction the conditional wallet update (optimistic on
//! `version`, `balance >= amount` for debits), an append-only ledger entry with the balance after,
//! an optional idempotency record, and any extra operations the caller needs in the same
//! all-or-nothing write (an invoice status change, a payout).
//!
//! Rule for other code touching `WALLET` (points): bump `version` in the same write, so a balance
//! change racing with it retries instead of overwriting.
//!
//! The wallet owns both counters on `WALLET` and both ledgers written with them (money
//! `LEDGER#…`, points `POINTS#…`): it knows nothing of the `points` module, which builds on it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::clock::ClockRef;
use crate::domain::account::{Username, WalletRecord};
use crate::domain::money::{Money, Points};
use crate::store::{
    Cond, Item, Key, Query, Steps, StoreError, TableRef, TxOp, Update, batch_array, from_item,
    get_array, keys, query_all, to_item,
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
/// (`USER#{u}/POINTS#{ts}#{id}`, see [`PointsEntry`]).
#[derive(Clone, Debug)]
pub struct PointsChange {
    pub kind: EntryType,
    pub points: Points,
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

/// One stored points-ledger entry `USER#{u}/POINTS#{ts}#{id}` (written with every change of
/// `WALLET.points`, so the counter always equals the ledger sum).
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

/// The put of a new points-ledger entry, for a transaction.
pub fn points_ledger_put(
    username: &Username,
    now: DateTime<Utc>,
    entry_id: &str,
    change: &PointsChange,
) -> Result<TxOp, StoreError> {
    let k = keys::points_entry(username.as_str(), now.timestamp_millis(), entry_id);
    let entry = PointsEntry {
        pk: k.pk,
        sk: k.sk,
        entry_id: entry_id.to_owned(),
        kind: change.kind,
        amount: change.points.value(),
        description: change.description.clone(),
        reference_id: change.reference_id.clone(),
        created_ms: now.timestamp_millis(),
    };
    Ok(TxOp::Put {
        item: to_item(&entry)?,
        cond: Some(Cond::item_absent()),
    })
}

/// The put creating an empty wallet (balance, bonus and points 0, version 0) for a new user,
/// for the transaction creating the account (fails if it exists).
pub fn open_op(username: &Username) -> Result<TxOp, StoreError> {
    let k = keys::wallet(username.as_str());
    let wallet = WalletRecord {
        pk: k.pk,
        sk: k.sk,
        ..WalletRecord::default()
    };
    Ok(TxOp::Put {
        item: to_item(&wallet)?,
        cond: Some(Cond::item_absent()),
    })
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

/// A client's debit of its own wallet (`POST /balance/decrease`): spends, bonus money first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Debit {
    pub amount: Money,
    pub description: String,
    /// Replays the first answer for a repeated key.
    pub idempotency_key: Option<String>,
}

/// The wallet after a change, or the answer already given for the same idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied {
        balance_after: Money,
        points: Points,
        entry_id: String,
    },
    /// The idempotency record existed: nothing changed; the first answer is returned.
    Replayed {
        balance_after: Money,
        points_after: Points,
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

/// How many times a change is retried after losing an optimistic race.
const MAX_ATTEMPTS: usize = 100;
/// Idempotency records are kept this long (seconds).
const IDEM_TTL_SECS: i64 = 7 * 86_400;

/// What one wallet write asks for: a balance change and/or a points change, an optional
/// idempotency guard, and the caller's extra operations for the same transaction.
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    pub change: Option<&'a Change>,
    pub points: Option<&'a PointsChange>,
    pub idem: Option<&'a Idem>,
    pub extra: &'a [TxOp],
}

/// The steps of a wallet transaction, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The conditional `WALLET` update.
    Wallet,
    /// The money-ledger entry (balance change only).
    Ledger,
    /// The idempotency record.
    Idem,
    /// The points-ledger entry (points change only).
    PointsLedger,
    /// The caller's extra operation at this index.
    Extra(usize),
}

impl LedgerEntry {
    /// The entry of change `c`, with the balance and bonus after it.
    fn new(
        user: &Username,
        c: &Change,
        entry_id: &str,
        (balance_after, bonus_after): (i64, i64),
        now: DateTime<Utc>,
    ) -> LedgerEntry {
        let k = keys::ledger(user.as_str(), now.timestamp_millis(), entry_id);
        LedgerEntry {
            pk: k.pk,
            sk: k.sk,
            entry_id: entry_id.to_owned(),
            kind: c.kind,
            amount: c.amount.rupiah(),
            balance_after,
            bonus_after,
            description: c.description.clone(),
            reference_id: c.reference_id.clone(),
            created_at: now.timestamp(),
        }
    }
}

impl IdemRecord {
    /// The record answering a replay of `idem` with the balance and points after the change.
    fn new(
        user: &Username,
        idem: &Idem,
        entry_id: &str,
        (balance_after, points_after): (i64, i64),
        now: DateTime<Utc>,
    ) -> IdemRecord {
        let k = keys::idempotency(&idem.scope, &idem.key);
        IdemRecord {
            pk: k.pk,
            sk: k.sk,
            username: user.as_str().to_owned(),
            fingerprint: idem.fingerprint.clone(),
            balance_after,
            points_after,
            entry_id: entry_id.to_owned(),
            created_at: now.timestamp(),
            ttl: now.timestamp() + IDEM_TTL_SECS,
        }
    }
}

/// What one attempt writes, decided from the wallet as read ([`plan`]).
#[derive(Clone, Debug)]
pub struct Plan {
    pub steps: Steps<Step>,
    pub balance_after: Money,
    pub points_after: Points,
    pub entry_id: String,
}

/// The wallet as read for one attempt: the record (a fresh one when absent) and whether its item
/// exists.
#[derive(Clone, Debug)]
pub struct Current {
    pub wallet: WalletRecord,
    pub exists: bool,
}

/// Points after `p` is applied to `points`, or why not (pure).
fn points_after(points: i64, p: Option<&PointsChange>) -> Result<i64, WalletError> {
    let overflow = || WalletError::Store(StoreError::Invalid("wallet overflow".into()));
    let Some(p) = p else {
        return Ok(points);
    };
    let n = p.points.value();
    match p.kind {
        EntryType::Credit => points.checked_add(n),
        EntryType::Debit => {
            if points < n {
                return Err(WalletError::InsufficientPoints);
            }
            points.checked_sub(n)
        }
    }
    .ok_or_else(overflow)
}

/// The `WALLET` update of an attempt: optimistic on `version` (or on the item being absent for a
/// first write), `balance >=` / `points >=` for debits.
fn wallet_op(
    user: &Username,
    cur: &Current,
    req: &Request,
    after: (i64, i64, i64),
    now: i64,
) -> TxOp {
    let (balance, bonus, points) = after;
    let wallet = &cur.wallet;
    let cond = if !cur.exists {
        Cond::item_absent()
    } else {
        let mut c = Cond::eq("version", wallet.version);
        if let Some(ch) = req.change.filter(|c| c.kind == EntryType::Debit) {
            c = c.and(Cond::ge("balance", ch.amount.rupiah()));
        }
        if let Some(p) = req.points.filter(|p| p.kind == EntryType::Debit) {
            c = c.and(Cond::ge("points", p.points.value()));
        }
        c
    };
    // Without a points change, points are left alone (another flow may add to them with a
    // version bump); a first write creates the field.
    let mut update = Update::new()
        .set("balance", balance)
        .set("version", wallet.version + 1)
        .set("updated_at", now);
    if req.change.is_some() || !cur.exists {
        update = update.set("bonus", bonus);
    }
    if req.points.is_some() || !cur.exists {
        update = update.set("points", points);
    }
    if req.points.is_some_and(|p| p.kind == EntryType::Credit) {
        update = update
            .set("gsi2pk", keys::POINTS_HOLDERS_GSI_PK)
            .set("gsi2sk", user.as_str());
    }
    TxOp::Update {
        key: keys::wallet(user.as_str()),
        update,
        cond: Some(cond),
    }
}

/// What to write for `req` against the wallet as read (pure: the decision half of
/// [`Wallets::apply_full`]): the wallet update, the ledger entry, the idempotency record, the
/// points-ledger entry, then the caller's extras — or why the change cannot be made.
pub fn plan(
    user: &Username,
    cur: &Current,
    req: &Request,
    now: DateTime<Utc>,
    entry_id: String,
) -> Result<Plan, WalletError> {
    let wallet = &cur.wallet;
    let (after, bonus_after) = match req.change {
        None => (wallet.balance, wallet.bonus),
        Some(c) => balance_after(wallet, c)?,
    };
    let points = points_after(wallet.points, req.points)?;
    let mut steps = Steps::new();
    steps.push(
        Step::Wallet,
        wallet_op(
            user,
            cur,
            req,
            (after, bonus_after, points),
            now.timestamp(),
        ),
    );
    if let Some(c) = req.change {
        let entry = LedgerEntry::new(user, c, &entry_id, (after, bonus_after), now);
        steps.push(
            Step::Ledger,
            TxOp::Put {
                item: to_item(&entry)?,
                cond: Some(Cond::item_absent()),
            },
        );
    }
    if let Some(idem) = req.idem {
        let rec = IdemRecord::new(user, idem, &entry_id, (after, points), now);
        steps.push(
            Step::Idem,
            TxOp::Put {
                item: to_item(&rec)?,
                cond: Some(Cond::item_absent()),
            },
        );
    }
    if let Some(p) = req.points {
        steps.push(
            Step::PointsLedger,
            points_ledger_put(user, now, &entry_id, p)?,
        );
    }
    for (i, op) in req.extra.iter().enumerate() {
        steps.push(Step::Extra(i), op.clone());
    }
    Ok(Plan {
        steps,
        balance_after: Money::from_rupiah(after),
        points_after: Points::new(points),
        entry_id,
    })
}

/// What to do after an attempt's transaction failed (pure).
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Lost the optimistic race on the wallet (or a ledger id collided): read again.
    Retry,
    /// A caller's extra operation had a false condition: nothing changed.
    ExtraRefused(usize),
    /// The idempotency record exists: a concurrent request with the same key won; answer its
    /// result.
    ReadIdem,
    /// Not a lost race: give up with this error.
    Fail,
}

/// Decodes a failed attempt by step name: a refused extra wins over an existing idempotency
/// record, which wins over a lost race.
pub fn after_failure(names: &crate::store::steps::Names<Step>, e: &StoreError) -> Next {
    match e {
        StoreError::Conflict => Next::Retry,
        StoreError::TransactionCanceled { failed } => {
            if let Some(Step::Extra(i)) = failed
                .iter()
                .filter_map(|i| names.at(*i))
                .find(|s| matches!(s, Step::Extra(_)))
            {
                return Next::ExtraRefused(i);
            }
            if names.failed(e, Step::Idem) {
                Next::ReadIdem
            } else {
                Next::Retry
            }
        }
        _ => Next::Fail,
    }
}

/// The first answer for an idempotency key, if its record was read; a record for another request
/// (fingerprint or user) is a reused key.
fn replayed(
    item: Option<&Item>,
    username: &Username,
    idem: &Idem,
) -> Result<Option<Outcome>, WalletError> {
    let Some(item) = item else {
        return Ok(None);
    };
    let rec: IdemRecord = from_item(item)?;
    if rec.fingerprint != idem.fingerprint || rec.username != username.as_str() {
        return Err(WalletError::KeyReuse);
    }
    Ok(Some(Outcome::Replayed {
        balance_after: Money::from_rupiah(rec.balance_after),
        points_after: Points::new(rec.points_after),
        entry_id: rec.entry_id,
    }))
}

/// The wallet in a read item, or a fresh one (and whether it exists).
fn stored(item: Option<Item>, username: &Username) -> Result<Current, StoreError> {
    match item {
        Some(item) => Ok(Current {
            wallet: from_item(&item)?,
            exists: true,
        }),
        None => {
            let k = keys::wallet(username.as_str());
            Ok(Current {
                wallet: WalletRecord {
                    pk: k.pk,
                    sk: k.sk,
                    ..WalletRecord::default()
                },
                exists: false,
            })
        }
    }
}

/// The items a change with an idempotency key reads first, in this order: the key's record, the
/// wallet. A caller with items of its own to read can read these in the same batch and hand them
/// to [`Wallets::apply_full_read`].
pub fn read_keys(username: &Username, idem: &Idem) -> [Key; 2] {
    [
        keys::idempotency(&idem.scope, &idem.key),
        keys::wallet(username.as_str()),
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

/// Sums a ledger: credits minus debits.
fn signed_sum<'a>(entries: impl Iterator<Item = (EntryType, i64)> + 'a) -> i64 {
    entries.fold(0i64, |acc, (kind, amount)| match kind {
        EntryType::Credit => acc.saturating_add(amount),
        EntryType::Debit => acc.saturating_sub(amount),
    })
}

/// A wallet and its ledgers' sums as one read saw them ([`Wallets::ledgers_view`]).
#[derive(Clone, Debug, Default)]
pub struct LedgersView {
    /// `None` when the user has no wallet item.
    pub wallet: Option<WalletRecord>,
    pub ledger_sum: i64,
    pub points_ledger_sum: i64,
}

/// The wallets: reads and exactly-once changes of `USER#{u}/WALLET` and its ledgers, on the main
/// table. Cheap to clone.
#[derive(Clone)]
pub struct Wallets {
    table: TableRef,
    clock: ClockRef,
}

impl Wallets {
    /// The wallets on the main table.
    pub fn new(table: TableRef, clock: ClockRef) -> Wallets {
        Wallets { table, clock }
    }

    /// Reads a wallet; a user without a wallet item has an empty one at version 0.
    pub async fn read(&self, username: &Username) -> Result<WalletRecord, StoreError> {
        Ok(self.read_current(username).await?.wallet)
    }

    async fn read_current(&self, username: &Username) -> Result<Current, StoreError> {
        stored(
            self.table.get(&keys::wallet(username.as_str())).await?,
            username,
        )
    }

    async fn read_idem(
        &self,
        username: &Username,
        idem: &Idem,
    ) -> Result<Option<Outcome>, WalletError> {
        let item = self
            .table
            .get(&keys::idempotency(&idem.scope, &idem.key))
            .await?;
        replayed(item.as_ref(), username, idem)
    }

    /// Applies one change exactly once. `extra` operations join the same transaction after the
    /// wallet, ledger and idempotency operations.
    pub async fn apply(
        &self,
        username: &Username,
        change: &Change,
        idem: Option<&Idem>,
        extra: &[TxOp],
    ) -> Result<Outcome, WalletError> {
        self.apply_full(username, Some(change), None, idem, extra)
            .await
    }

    /// Debits a user's own wallet, exactly once per idempotency key (a key reused for another
    /// amount or description is refused).
    pub async fn debit(&self, username: &Username, debit: &Debit) -> Result<Outcome, WalletError> {
        let idem = debit.idempotency_key.as_ref().map(|k| Idem {
            scope: format!("decrease:{}", username.as_str()),
            key: k.clone(),
            fingerprint: format!("{}|{}", debit.amount.rupiah(), debit.description),
        });
        let change = Change {
            kind: EntryType::Debit,
            amount: debit.amount,
            description: debit.description.clone(),
            reference_id: format!("debit-{}", uuid::Uuid::new_v4().simple()),
            funds: Funds::Cash,
        };
        let outcome = self.apply(username, &change, idem.as_ref(), &[]).await?;
        crate::metrics::emit(crate::metrics::Metric::Debit(debit.amount.rupiah()));
        Ok(outcome)
    }

    /// Applies a balance change and/or a points change to one wallet exactly once, in one
    /// transaction: the wallet update (optimistic on `version`; `balance >=` / `points >=` for
    /// debits), a wallet-ledger entry (balance change only), a points-ledger entry (points change
    /// only), the idempotency record, then `extra`.
    pub async fn apply_full(
        &self,
        username: &Username,
        change: Option<&Change>,
        points: Option<&PointsChange>,
        idem: Option<&Idem>,
        extra: &[TxOp],
    ) -> Result<Outcome, WalletError> {
        let req = Request {
            change,
            points,
            idem,
            extra,
        };
        // With a key, its record and the wallet are read in one request (the usual case is a new
        // key, and the wallet is needed then); a retry after a lost race reads the wallet alone.
        let first_read = match idem {
            Some(idem) => {
                let [record, wallet] =
                    get_array(self.table.as_ref(), &read_keys(username, idem)).await?;
                Some(WalletRead { record, wallet })
            }
            None => None,
        };
        self.apply_read(username, &req, first_read).await
    }

    /// [`Wallets::apply_full`] with its first read (idempotency record and wallet) already made
    /// by the caller.
    pub async fn apply_full_read(
        &self,
        username: &Username,
        change: Option<&Change>,
        points: Option<&PointsChange>,
        idem: &Idem,
        extra: &[TxOp],
        read: WalletRead,
    ) -> Result<Outcome, WalletError> {
        let req = Request {
            change,
            points,
            idem: Some(idem),
            extra,
        };
        self.apply_read(username, &req, Some(read)).await
    }

    /// The retry loop around [`plan`]: read (or take the first read), plan, write, and decode a
    /// failure with [`after_failure`].
    async fn apply_read(
        &self,
        username: &Username,
        req: &Request<'_>,
        first_read: Option<WalletRead>,
    ) -> Result<Outcome, WalletError> {
        let mut prefetched = None;
        if let Some(read) = first_read {
            if let Some(idem) = req.idem
                && let Some(done) = replayed(read.record.as_ref(), username, idem)?
            {
                return Ok(done);
            }
            prefetched = Some(stored(read.wallet, username)?);
        }
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                let ms = rand::rng().random_range(1..=(2 + attempt as u64).min(20));
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let cur = match prefetched.take() {
                Some(read) => read,
                None => self.read_current(username).await?,
            };
            let entry_id = uuid::Uuid::new_v4().simple().to_string();
            let plan = plan(username, &cur, req, self.clock.now(), entry_id)?;
            let (ops, names) = plan.steps.split();
            let e = match self.table.transact(ops).await {
                Ok(()) => {
                    return Ok(Outcome::Applied {
                        balance_after: plan.balance_after,
                        points: plan.points_after,
                        entry_id: plan.entry_id,
                    });
                }
                Err(e) => e,
            };
            match after_failure(&names, &e) {
                Next::Retry => continue,
                Next::ExtraRefused(i) => return Ok(Outcome::ExtraRefused(i)),
                Next::ReadIdem => {
                    if let Some(idem) = req.idem
                        && let Some(done) = self.read_idem(username, idem).await?
                    {
                        return Ok(done);
                    }
                    continue;
                }
                Next::Fail => return Err(e.into()),
            }
        }
        tracing::warn!(
            username = username.as_str(),
            "wallet change gave up after {MAX_ATTEMPTS} attempts"
        );
        Err(WalletError::Contended)
    }

    /// Operations crediting `points` to another user's wallet inside someone else's transaction
    /// (the referrer's bonus): `ADD points` with a `version` bump (so a racing balance change of
    /// that wallet retries instead of overwriting) plus the points-ledger entry. The wallet must
    /// exist.
    pub fn credit_points_ops(
        &self,
        username: &Username,
        points: Points,
        description: &str,
        reference_id: &str,
    ) -> Result<Vec<TxOp>, StoreError> {
        let now = self.clock.now();
        let entry_id = uuid::Uuid::new_v4().simple().to_string();
        let change = PointsChange {
            kind: EntryType::Credit,
            points,
            description: description.to_owned(),
            reference_id: reference_id.to_owned(),
        };
        Ok(vec![
            TxOp::Update {
                key: keys::wallet(username.as_str()),
                update: Update::new()
                    .add("points", points.value())
                    .add("version", 1)
                    .set("updated_at", now.timestamp())
                    .set("gsi2pk", keys::POINTS_HOLDERS_GSI_PK)
                    .set("gsi2sk", username.as_str()),
                cond: Some(Cond::item_exists()),
            },
            points_ledger_put(username, now, &entry_id, &change)?,
        ])
    }

    /// Every ledger entry of a user, oldest first.
    pub async fn ledger(&self, username: &Username) -> Result<Vec<LedgerEntry>, StoreError> {
        let items: Vec<Item> = query_all(
            self.table.as_ref(),
            Query::pk(keys::user_pk(username.as_str())).prefix(keys::LEDGER_PREFIX),
        )
        .await?;
        items.iter().map(from_item).collect()
    }

    /// Credits minus debits over the whole ledger: must always equal the wallet balance.
    pub async fn ledger_sum(&self, username: &Username) -> Result<Money, StoreError> {
        let entries = self.ledger(username).await?;
        Ok(Money::from_rupiah(signed_sum(
            entries.iter().map(|e| (e.kind, e.amount)),
        )))
    }

    /// Every points-ledger entry of a user, oldest first.
    pub async fn points_ledger(&self, username: &Username) -> Result<Vec<PointsEntry>, StoreError> {
        let items: Vec<Item> = query_all(
            self.table.as_ref(),
            Query::pk(keys::user_pk(username.as_str())).prefix(keys::POINTS_PREFIX),
        )
        .await?;
        items.iter().map(from_item).collect()
    }

    /// The wallet and the sums of both its ledgers from one paged, consistent Query of the
    /// user's partition. Consistent per item, not across items: a change committing during the
    /// read can show in part, which [`crate::reconcile`] detects through the wallet's version.
    pub async fn ledgers_view(&self, username: &Username) -> Result<LedgersView, StoreError> {
        let items: Vec<Item> = query_all(
            self.table.as_ref(),
            Query::pk(keys::user_pk(username.as_str())),
        )
        .await?;
        let (mut cash, mut points, mut wallet) = (Vec::new(), Vec::new(), None);
        for item in &items {
            match crate::store::get_s(item, "sk") {
                Some(sk) if sk.starts_with(keys::LEDGER_PREFIX) => {
                    let e: LedgerEntry = from_item(item)?;
                    cash.push((e.kind, e.amount));
                }
                Some(sk) if sk.starts_with(keys::POINTS_PREFIX) => {
                    let e: PointsEntry = from_item(item)?;
                    points.push((e.kind, e.amount));
                }
                Some("WALLET") => wallet = Some(from_item::<WalletRecord>(item)?),
                _ => {}
            }
        }
        Ok(LedgersView {
            wallet,
            ledger_sum: signed_sum(cash.into_iter()),
            points_ledger_sum: signed_sum(points.into_iter()),
        })
    }

    /// Credits minus debits over the points ledger: must always equal `WALLET.points`.
    pub async fn points_ledger_sum(&self, username: &Username) -> Result<Points, StoreError> {
        let entries = self.points_ledger(username).await?;
        Ok(Points::new(signed_sum(
            entries.iter().map(|e| (e.kind, e.amount)),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AttrValue;

    fn user() -> Username {
        Username::parse("alice").expect("username")
    }

    fn current(balance: i64, bonus: i64, points: i64, exists: bool) -> Current {
        let k = keys::wallet("alice");
        Current {
            wallet: WalletRecord {
                pk: k.pk,
                sk: k.sk,
                balance,
                points,
                version: 7,
                bonus,
            },
            exists,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("time")
    }

    fn debit(n: i64) -> Change {
        Change::cash(EntryType::Debit, Money::from_rupiah(n), "buy", "ref")
    }

    fn points(kind: EntryType, n: i64) -> PointsChange {
        PointsChange {
            kind,
            points: Points::new(n),
            description: "p".into(),
            reference_id: "ref".into(),
        }
    }

    fn idem() -> Idem {
        Idem {
            scope: "s".into(),
            key: "k".into(),
            fingerprint: "f".into(),
        }
    }

    /// The wallet update of a plan applied to the wallet it was planned from.
    fn written(plan: &Plan, cur: &Current) -> (Option<Cond>, Item) {
        let (ops, names) = plan.steps.clone().split();
        assert_eq!(names.at(0), Some(Step::Wallet));
        let TxOp::Update { update, cond, .. } = &ops[0] else {
            panic!("the wallet step is an update");
        };
        let mut item = to_item(&cur.wallet).expect("item");
        update.apply(&mut item).expect("apply");
        (cond.clone(), item)
    }

    fn names(plan: &Plan) -> Vec<Step> {
        let (ops, names) = plan.steps.clone().split();
        (0..ops.len()).filter_map(|i| names.at(i)).collect()
    }

    #[test]
    fn a_debit_is_conditional_on_the_version_and_the_balance_and_writes_its_ledger_entry() {
        let cur = current(100, 0, 5, true);
        let d = debit(30);
        let req = Request {
            change: Some(&d),
            ..Request::default()
        };
        let plan = plan(&user(), &cur, &req, now(), "e1".into()).expect("plan");
        assert_eq!(plan.balance_after, Money::from_rupiah(70));
        assert_eq!(plan.points_after, Points::new(5));
        assert_eq!(names(&plan), vec![Step::Wallet, Step::Ledger]);
        let (cond, item) = written(&plan, &cur);
        assert_eq!(
            cond,
            Some(Cond::eq("version", 7i64).and(Cond::ge("balance", 30i64)))
        );
        assert_eq!(item.get("balance"), Some(&AttrValue::N(70)));
        assert_eq!(item.get("version"), Some(&AttrValue::N(8)));
        assert_eq!(
            item.get("points"),
            Some(&AttrValue::N(5)),
            "points left alone"
        );
    }

    #[test]
    fn a_first_write_creates_the_wallet_with_every_counter() {
        let cur = current(0, 0, 0, false);
        let credit = Change::cash(EntryType::Credit, Money::from_rupiah(50), "top up", "inv");
        let req = Request {
            change: Some(&credit),
            ..Request::default()
        };
        let plan = plan(&user(), &cur, &req, now(), "e1".into()).expect("plan");
        let (cond, item) = written(&plan, &cur);
        assert_eq!(cond, Some(Cond::item_absent()));
        assert_eq!(item.get("balance"), Some(&AttrValue::N(50)));
        assert_eq!(item.get("bonus"), Some(&AttrValue::N(0)));
        assert_eq!(item.get("points"), Some(&AttrValue::N(0)));
    }

    #[test]
    fn overdrafts_of_money_or_points_are_refused_before_anything_is_written() {
        let cur = current(10, 0, 3, true);
        let d = debit(11);
        let req = Request {
            change: Some(&d),
            ..Request::default()
        };
        assert!(matches!(
            plan(&user(), &cur, &req, now(), "e".into()),
            Err(WalletError::Insufficient)
        ));
        let p = points(EntryType::Debit, 4);
        let req = Request {
            points: Some(&p),
            ..Request::default()
        };
        assert!(matches!(
            plan(&user(), &cur, &req, now(), "e".into()),
            Err(WalletError::InsufficientPoints)
        ));
    }

    #[test]
    fn a_points_credit_indexes_the_wallet_and_writes_a_points_ledger_entry_after_the_idempotency_record()
     {
        let cur = current(0, 0, 2, true);
        let p = points(EntryType::Credit, 3);
        let i = idem();
        let extra = [TxOp::Check {
            key: keys::invoice("inv"),
            cond: Cond::item_exists(),
        }];
        let req = Request {
            change: None,
            points: Some(&p),
            idem: Some(&i),
            extra: &extra,
        };
        let plan = plan(&user(), &cur, &req, now(), "e1".into()).expect("plan");
        assert_eq!(
            names(&plan),
            vec![Step::Wallet, Step::Idem, Step::PointsLedger, Step::Extra(0)]
        );
        let (_, item) = written(&plan, &cur);
        assert_eq!(item.get("points"), Some(&AttrValue::N(5)));
        assert_eq!(
            item.get("gsi2pk"),
            Some(&AttrValue::S(keys::POINTS_HOLDERS_GSI_PK.into()))
        );
        assert_eq!(item.get("gsi2sk"), Some(&AttrValue::S("alice".into())));
        let (ops, _) = plan.steps.clone().split();
        let TxOp::Update { update, .. } = &ops[0] else {
            panic!("the wallet step is an update");
        };
        let mut touched = Item::new();
        update.apply(&mut touched).expect("apply");
        assert!(
            !touched.contains_key("bonus") && !touched.contains_key("balance_after"),
            "a points-only change leaves the bonus alone"
        );
    }

    #[test]
    fn a_failed_write_is_decoded_by_step_name() {
        let cur = current(100, 0, 0, true);
        let d = debit(1);
        let i = idem();
        let extra = [TxOp::Check {
            key: keys::invoice("inv"),
            cond: Cond::item_exists(),
        }];
        let req = Request {
            change: Some(&d),
            points: None,
            idem: Some(&i),
            extra: &extra,
        };
        let (_, names) = plan(&user(), &cur, &req, now(), "e".into())
            .expect("plan")
            .steps
            .split();
        let canceled = |failed: Vec<usize>| StoreError::TransactionCanceled { failed };
        // Wallet, Ledger, Idem, Extra(0).
        assert_eq!(after_failure(&names, &canceled(vec![0])), Next::Retry);
        assert_eq!(after_failure(&names, &canceled(vec![2])), Next::ReadIdem);
        assert_eq!(
            after_failure(&names, &canceled(vec![0, 2, 3])),
            Next::ExtraRefused(0)
        );
        assert_eq!(after_failure(&names, &StoreError::Conflict), Next::Retry);
        assert_eq!(after_failure(&names, &StoreError::Throttled), Next::Fail);
    }

    #[test]
    fn bonus_money_is_spent_first_and_never_paid_out() {
        let w = current(100, 40, 0, true).wallet;
        assert_eq!(balance_after(&w, &debit(50)).expect("spend"), (50, 0));
        let payout = Change {
            funds: Funds::Withdrawal,
            ..debit(70)
        };
        assert!(matches!(
            balance_after(&w, &payout),
            Err(WalletError::InsufficientWithdrawable)
        ));
    }
}
