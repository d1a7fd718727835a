//! Messages that carry a secret (OTP, verification link, reset token) are held in the main table
//! as `OUTMSG#{id}` — written in the same transaction that creates the secret, kept no longer than
//! the secret is valid — and queued only as [`Notification::Held`]`{id}`. The consumer reads the
//! message, delivers it and deletes it; a copy that lingers in the queue or its dead-letter queue
//! (14 days) refers to nothing once the secret has expired or the message was sent.

use serde::{Deserialize, Serialize};

use super::Notification;
use crate::store::{Cond, Key, StoreError, Table, TxOp, from_item, to_item};

/// The key of a held message.
pub fn key(id: &str) -> Key {
    Key::new(format!("OUTMSG#{id}"), "OUTMSG")
}

/// The stored form.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct HeldItem {
    pk: String,
    sk: String,
    /// The message, as its JSON.
    message: String,
    expires_at: i64,
    ttl: i64,
}

/// The put that holds `message` until `expires_at` (epoch seconds), for the transaction that
/// creates its secret, and the reference to queue once that transaction committed.
pub fn hold(message: &Notification, expires_at: i64) -> Result<(TxOp, Notification), StoreError> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let k = key(&id);
    let json = serde_json::to_string(message)
        .map_err(|e| StoreError::Invalid(format!("unserialisable message: {e}")))?;
    let item = HeldItem {
        pk: k.pk,
        sk: k.sk,
        message: json,
        expires_at,
        ttl: expires_at,
    };
    Ok((
        TxOp::Put {
            item: to_item(&item)?,
            cond: Some(Cond::item_absent()),
        },
        Notification::Held { id },
    ))
}

/// The held message `id`, unless it was sent already or its secret expired (at `now`).
pub async fn read(
    table: &dyn Table,
    id: &str,
    now: i64,
) -> Result<Option<Notification>, StoreError> {
    let Some(item) = table.get(&key(id)).await? else {
        return Ok(None);
    };
    let held: HeldItem = from_item(&item)?;
    if held.expires_at <= now {
        return Ok(None);
    }
    serde_json::from_str(&held.message)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("held message {id}: {e}")))
}

/// Forgets a held message once it was delivered.
pub async fn forget(table: &dyn Table, id: &str) -> Result<(), StoreError> {
    table.delete(&key(id), None).await.map(|_| ())
}
