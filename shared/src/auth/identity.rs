//! Which account an e-mail address belongs to. New accounts are guarded by the address's
//! canonical form ([`Email::canonical`]), so aliases of one mailbox cannot hold two accounts.
//! Imported accounts also hold a guard on their exact address (the original system let aliases of
//! one mailbox register separately; each keeps its account): a lookup tries the exact address
//! first, then the mailbox.

use crate::domain::account::Email;
use crate::store::{Cond, Key, StoreError, Table, TxOp, get_s, keys};

/// The guard keys an address may be registered under: the exact one first, then (when it
/// differs) the canonical one.
pub fn email_guard_keys(email: &Email) -> Vec<Key> {
    let canonical = keys::email_guard(&email.canonical());
    let exact = keys::email_guard(email.as_str());
    if exact == canonical {
        vec![exact]
    } else {
        vec![exact, canonical]
    }
}

/// The username owning `email` (any alias of its mailbox), in one batch read.
pub async fn email_owner(table: &dyn Table, email: &Email) -> Result<Option<String>, StoreError> {
    let read = table.get_many(&email_guard_keys(email)).await?;
    Ok(read
        .into_iter()
        .flatten()
        .find_map(|item| get_s(&item, "username").map(str::to_owned)))
}

/// For a new account's transaction: the canonical guard (put, must be absent) and, when the exact
/// address differs, a check that no older account holds it under its exact form. The first
/// operation is the put.
pub fn email_claim_ops(email: &Email, guard_put: TxOp) -> Vec<TxOp> {
    let mut ops = vec![guard_put];
    let exact = keys::email_guard(email.as_str());
    if exact != keys::email_guard(&email.canonical()) {
        ops.push(TxOp::Check {
            key: exact,
            cond: Cond::item_absent(),
        });
    }
    ops
}
