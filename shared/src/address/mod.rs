//! A user's delivery addresses. Invariant: when a user has any address, exactly one is the default.
//!
//! Every change is one transaction that also updates the per-user `ADDRMETA` item (count, default
//! id, id counter, version) under a condition on its version. Two concurrent changes to one user's
//! addresses therefore cannot both commit from the same state: the loser re-reads and retries. That
//! makes "first address is default", "setting a default clears the old one" and "deleting the
//! default promotes the oldest remaining one" hold under any interleaving.
//!
//! Ids stay per-user integers like the original's (a counter on `ADDRMETA`, advanced in the same
//! transaction as the insert); another user's id simply does not exist under the caller's key.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::ClockRef;
use crate::domain::{FieldError, InvalidInput, Phone, Username};
use crate::store::{
    Cond, Query, StoreError, TableRef, TxOp, Update, from_item, keys, query_all, to_item,
};

/// Most addresses one user may keep.
pub const MAX_ADDRESSES: i64 = 20;
/// How often a change is retried after losing a race on `ADDRMETA`.
const MAX_ATTEMPTS: u32 = 40;

/// Why an address change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("address not found")]
    NotFound,
    #[error("address limit reached")]
    LimitReached,
    /// Kept losing the race on `ADDRMETA` (retryable).
    #[error("address change kept losing races")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The delivery addresses of every user: the main table and the clock.
#[derive(Clone)]
pub struct Addresses {
    table: TableRef,
    clock: ClockRef,
}

/// An address as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Address {
    pub id: i64,
    pub label: String,
    pub recipient_name: String,
    pub phone_number: String,
    pub address: String,
    pub is_default: bool,
}

/// `USER#{u}` / `ADDR#{id:010}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct AddressRecord {
    pk: String,
    sk: String,
    id: i64,
    label: String,
    recipient_name: String,
    phone_number: String,
    address: String,
    is_default: bool,
    created_at: i64,
    updated_at: i64,
}

impl AddressRecord {
    fn view(&self) -> Address {
        Address {
            id: self.id,
            label: self.label.clone(),
            recipient_name: self.recipient_name.clone(),
            phone_number: self.phone_number.clone(),
            address: self.address.clone(),
            is_default: self.is_default,
        }
    }
}

/// `USER#{u}` / `ADDRMETA`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AddressMeta {
    /// Number of addresses the user has.
    pub count: i64,
    /// Id of the default address (present exactly when `count > 0`).
    #[serde(default)]
    pub default_id: Option<i64>,
    /// Highest id handed out so far.
    pub next_id: i64,
    /// Incremented by every change; every change is conditional on it.
    pub version: i64,
    /// False when the item does not exist yet.
    #[serde(skip)]
    exists: bool,
}

/// The fields of a create or update request, as sent.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct AddressInput {
    pub label: Option<String>,
    pub recipient_name: Option<String>,
    pub phone_number: Option<String>,
    pub address: Option<String>,
    #[serde(default)]
    pub is_default: Option<bool>,
}

/// A validated request.
#[derive(Clone, Debug)]
pub struct ValidAddress {
    label: String,
    recipient_name: String,
    phone_number: Phone,
    address: String,
    is_default: bool,
}

fn text(
    errors: &mut Vec<FieldError>,
    field: &str,
    v: &Option<String>,
    min: usize,
    max: usize,
) -> String {
    let s = v.as_deref().map(str::trim).unwrap_or_default();
    let n = s.chars().count();
    if v.is_none() {
        errors.push(FieldError::new(field, "is required"));
    } else if n < min || n > max {
        errors.push(FieldError::new(
            field,
            format!("must be {min}-{max} characters"),
        ));
    } else if s.chars().any(|c| c.is_control() && c != '\n') {
        errors.push(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    s.to_owned()
}

impl AddressInput {
    /// Checks every field; all problems are reported together.
    pub fn validate(&self) -> Result<ValidAddress, InvalidInput> {
        let mut errors = Vec::new();
        let label = text(&mut errors, "label", &self.label, 1, 50);
        let recipient_name = text(&mut errors, "recipient_name", &self.recipient_name, 1, 100);
        let address = text(&mut errors, "address", &self.address, 5, 500);
        let phone = match self.phone_number.as_deref() {
            None => {
                errors.push(FieldError::new("phone_number", "is required"));
                None
            }
            Some(p) => match Phone::parse(p) {
                Ok(p) => Some(p),
                Err(_) => {
                    errors.push(FieldError::new("phone_number", "PhoneFormatErr"));
                    None
                }
            },
        };
        match phone {
            Some(phone_number) if errors.is_empty() => Ok(ValidAddress {
                label,
                recipient_name,
                phone_number,
                address,
                is_default: self.is_default.unwrap_or(false),
            }),
            _ => Err(InvalidInput::Fields(errors)),
        }
    }
}

/// The write of `ADDRMETA` that commits a change, conditional on the version read.
fn meta_op(
    username: &Username,
    m: &AddressMeta,
    count: i64,
    default_id: Option<i64>,
    next_id: i64,
) -> TxOp {
    let mut update = Update::new()
        .set("count", count)
        .set("next_id", next_id)
        .set("version", m.version + 1);
    update = match default_id {
        Some(id) => update.set("default_id", id),
        None => update.remove("default_id"),
    };
    let cond = if m.exists {
        Cond::eq("version", m.version)
    } else {
        Cond::item_absent()
    };
    TxOp::Update {
        key: keys::address_meta(username),
        update,
        cond: Some(cond),
    }
}

fn set_default_flag(username: &Username, id: i64, flag: bool, now: i64) -> TxOp {
    TxOp::Update {
        key: keys::address(username, id),
        update: Update::new().set("is_default", flag).set("updated_at", now),
        cond: Some(Cond::item_exists()),
    }
}

async fn backoff(attempt: u32) {
    let cap = 2u64 << attempt.min(5);
    let ms = rand::random_range(1..=cap);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn gave_up() -> AddressError {
    tracing::warn!("address change kept losing races; giving up");
    AddressError::Busy
}

impl Addresses {
    pub fn new(table: TableRef, clock: ClockRef) -> Self {
        Addresses { table, clock }
    }

    /// Reads the user's `ADDRMETA` (a default one when the user never had an address).
    pub async fn meta(&self, username: &Username) -> Result<AddressMeta, AddressError> {
        match self.table.get(&keys::address_meta(username)).await? {
            None => Ok(AddressMeta::default()),
            Some(item) => {
                let mut m: AddressMeta = from_item(&item)?;
                m.exists = true;
                Ok(m)
            }
        }
    }

    async fn load(
        &self,
        username: &Username,
        id: i64,
    ) -> Result<Option<AddressRecord>, AddressError> {
        if id <= 0 {
            return Ok(None);
        }
        Ok(crate::store::get_record(self.table.as_ref(), &keys::address(username, id)).await?)
    }

    async fn all_records(&self, username: &Username) -> Result<Vec<AddressRecord>, AddressError> {
        let q = Query::pk(keys::user_pk(username)).prefix(keys::ADDR_PREFIX);
        let items = query_all(self.table.as_ref(), q).await?;
        items
            .iter()
            .map(|i| from_item(i).map_err(AddressError::from))
            .collect()
    }

    /// Commits a transaction; `Ok(false)` means another change won the race and the caller retries.
    async fn commit(&self, ops: Vec<TxOp>) -> Result<bool, AddressError> {
        match self.table.transact(ops).await {
            Ok(()) => Ok(true),
            Err(StoreError::TransactionCanceled { .. } | StoreError::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Every address of the user, oldest first.
    pub async fn list(&self, username: &Username) -> Result<Vec<Address>, AddressError> {
        Ok(self
            .all_records(username)
            .await?
            .iter()
            .map(AddressRecord::view)
            .collect())
    }

    /// Adds an address; the first one, or one sent with `is_default`, becomes the default.
    pub async fn create(
        &self,
        username: &Username,
        input: &ValidAddress,
    ) -> Result<Address, AddressError> {
        for attempt in 0..MAX_ATTEMPTS {
            let m = self.meta(username).await?;
            if m.count >= MAX_ADDRESSES {
                return Err(AddressError::LimitReached);
            }
            let now = self.clock.epoch();
            let id = m.next_id + 1;
            let is_default = input.is_default || m.default_id.is_none();
            let key = keys::address(username, id);
            let rec = AddressRecord {
                pk: key.pk,
                sk: key.sk,
                id,
                label: input.label.clone(),
                recipient_name: input.recipient_name.clone(),
                phone_number: input.phone_number.as_str().to_owned(),
                address: input.address.clone(),
                is_default,
                created_at: now,
                updated_at: now,
            };
            let default_id = if is_default { Some(id) } else { m.default_id };
            let mut ops = vec![
                meta_op(username, &m, m.count + 1, default_id, id),
                TxOp::Put {
                    item: to_item(&rec)?,
                    cond: Some(Cond::item_absent()),
                },
            ];
            if let (true, Some(old)) = (is_default, m.default_id) {
                ops.push(set_default_flag(username, old, false, now));
            }
            if self.commit(ops).await? {
                return Ok(rec.view());
            }
            backoff(attempt).await;
        }
        Err(gave_up())
    }

    /// Replaces an address's fields. `is_default: true` makes it the default; `false` on the current
    /// default is ignored (the default only moves when another address is made default or it is deleted).
    pub async fn update(
        &self,
        username: &Username,
        id: i64,
        input: &ValidAddress,
    ) -> Result<Address, AddressError> {
        for attempt in 0..MAX_ATTEMPTS {
            let m = self.meta(username).await?;
            let old = self
                .load(username, id)
                .await?
                .ok_or(AddressError::NotFound)?;
            let now = self.clock.epoch();
            let becomes_default = input.is_default && m.default_id != Some(id);
            let rec = AddressRecord {
                label: input.label.clone(),
                recipient_name: input.recipient_name.clone(),
                phone_number: input.phone_number.as_str().to_owned(),
                address: input.address.clone(),
                is_default: m.default_id == Some(id) || becomes_default,
                updated_at: now,
                ..old
            };
            let default_id = if becomes_default {
                Some(id)
            } else {
                m.default_id
            };
            let mut ops = vec![
                meta_op(username, &m, m.count, default_id, m.next_id),
                TxOp::Put {
                    item: to_item(&rec)?,
                    cond: Some(Cond::item_exists()),
                },
            ];
            if let (true, Some(prev)) = (becomes_default, m.default_id) {
                ops.push(set_default_flag(username, prev, false, now));
            }
            if self.commit(ops).await? {
                return Ok(rec.view());
            }
            backoff(attempt).await;
        }
        Err(gave_up())
    }

    /// Deletes an address; when it was the default, the oldest remaining address becomes the default.
    pub async fn delete(&self, username: &Username, id: i64) -> Result<(), AddressError> {
        for attempt in 0..MAX_ATTEMPTS {
            let m = self.meta(username).await?;
            self.load(username, id)
                .await?
                .ok_or(AddressError::NotFound)?;
            let now = self.clock.epoch();
            let mut ops = Vec::with_capacity(3);
            let mut default_id = m.default_id;
            if m.default_id == Some(id) {
                let heir = self
                    .all_records(username)
                    .await?
                    .into_iter()
                    .map(|r| r.id)
                    .find(|&other| other != id);
                default_id = heir;
                if let Some(h) = heir {
                    ops.push(set_default_flag(username, h, true, now));
                }
            }
            ops.push(meta_op(
                username,
                &m,
                (m.count - 1).max(0),
                default_id,
                m.next_id,
            ));
            ops.push(TxOp::Delete {
                key: keys::address(username, id),
                cond: Some(Cond::item_exists()),
            });
            if self.commit(ops).await? {
                return Ok(());
            }
            backoff(attempt).await;
        }
        Err(gave_up())
    }

    /// Makes an address the default, clearing the previous default in the same transaction.
    pub async fn set_default(&self, username: &Username, id: i64) -> Result<Address, AddressError> {
        for attempt in 0..MAX_ATTEMPTS {
            let m = self.meta(username).await?;
            let rec = self
                .load(username, id)
                .await?
                .ok_or(AddressError::NotFound)?;
            if m.default_id == Some(id) && rec.is_default {
                return Ok(rec.view());
            }
            let now = self.clock.epoch();
            let mut ops = vec![
                meta_op(username, &m, m.count, Some(id), m.next_id),
                set_default_flag(username, id, true, now),
            ];
            if let Some(prev) = m.default_id.filter(|&p| p != id) {
                ops.push(set_default_flag(username, prev, false, now));
            }
            if self.commit(ops).await? {
                return Ok(Address {
                    is_default: true,
                    ..rec.view()
                });
            }
            backoff(attempt).await;
        }
        Err(gave_up())
    }
}
