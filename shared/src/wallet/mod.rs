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
    Cond, Item, Query, StoreError, TxOp, Update, from_item, keys, query_all, to_item,
};

/// Direction of a wallet change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EntryType {
    Credit,
    Debit,
}

/// One change requested of a wallet.
#[derive(Clone, Debug)]
pub struct Change {
    pub kind: EntryType,
    pub amount: Money,
    pub description: String,
    /// What caused it (invoice id, request id, voucher code).
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
    match app.main.get(&keys::wallet(username)).await? {
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
    let Some(item) = app
        .main
        .get(&keys::idempotency(&idem.scope, &idem.key))
        .await?
    else {
        return Ok(None);
    };
    let rec: IdemRecord = from_item(&item)?;
    if rec.fingerprint != idem.fingerprint || rec.username != username {
        return Err(WalletError::KeyReuse);
    }
    Ok(Some(Outcome::Replayed {
        balance_after: Money::from_rupiah(rec.balance_after),
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
    if let Some(idem) = idem {
        if let Some(done) = read_idem(app, username, idem).await? {
            return Ok(done);
        }
    }
    let amount = change.amount.rupiah();
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            let ms = rand::rng().random_range(1..=(2 + attempt as u64).min(20));
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let (wallet, exists) = read_stored(app, username).await?;
        let after = match change.kind {
            EntryType::Credit => wallet.balance.checked_add(amount),
            EntryType::Debit => {
                if wallet.balance < amount {
                    return Err(WalletError::Insufficient);
                }
                wallet.balance.checked_sub(amount)
            }
        }
        .ok_or(WalletError::Store(StoreError::Invalid(
            "balance overflow".into(),
        )))?;
        let now = app.clock.now();
        let entry_id = uuid::Uuid::new_v4().simple().to_string();
        let wallet_cond = if !exists {
            Cond::item_absent()
        } else {
            let c = Cond::eq("version", wallet.version);
            if change.kind == EntryType::Debit {
                c.and(Cond::ge("balance", amount))
            } else {
                c
            }
        };
        // Points are left alone (another flow owns them); a first write creates the field.
        let mut update = Update::new()
            .set("balance", after)
            .set("version", wallet.version + 1)
            .set("updated_at", now.timestamp());
        if !exists {
            update = update.set("points", 0);
        }
        let lkey = keys::ledger(username, now.timestamp_millis(), &entry_id);
        let entry = LedgerEntry {
            pk: lkey.pk,
            sk: lkey.sk,
            entry_id: entry_id.clone(),
            kind: change.kind,
            amount,
            balance_after: after,
            description: change.description.clone(),
            reference_id: change.reference_id.clone(),
            created_at: now.timestamp(),
        };
        let mut ops = vec![
            TxOp::Update {
                key: keys::wallet(username),
                update,
                cond: Some(wallet_cond),
            },
            TxOp::Put {
                item: to_item(&entry)?,
                cond: Some(Cond::item_absent()),
            },
        ];
        if let Some(idem) = idem {
            let k = keys::idempotency(&idem.scope, &idem.key);
            let rec = IdemRecord {
                pk: k.pk,
                sk: k.sk,
                username: username.to_owned(),
                fingerprint: idem.fingerprint.clone(),
                balance_after: after,
                entry_id: entry_id.clone(),
                created_at: now.timestamp(),
                ttl: now.timestamp() + IDEM_TTL_SECS,
            };
            ops.push(TxOp::Put {
                item: to_item(&rec)?,
                cond: Some(Cond::item_absent()),
            });
        }
        let first_extra = ops.len();
        ops.extend(extra.iter().cloned());
        match app.main.transact(ops).await {
            Ok(()) => {
                return Ok(Outcome::Applied {
                    balance_after: Money::from_rupiah(after),
                    points: wallet.points,
                    entry_id,
                });
            }
            Err(StoreError::Conflict) => continue,
            Err(e @ StoreError::TransactionCanceled { .. }) => {
                if let StoreError::TransactionCanceled { failed } = &e {
                    if let Some(i) = failed.iter().find(|i| **i >= first_extra) {
                        return Ok(Outcome::ExtraRefused(i - first_extra));
                    }
                }
                if let Some(idem) = idem.filter(|_| e.failed_at(2)) {
                    if let Some(done) = read_idem(app, username, idem).await? {
                        return Ok(done);
                    }
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
