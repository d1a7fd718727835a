//! Device tokens for push. A token belongs to at most one user: the global `FCMTOKEN#{sha256}`
//! owner item and the user's `USER#{u}/FCM#{sha256}` item are written in one transaction, and a
//! token registered by another user moves to them (the old user's item is deleted in the same
//! transaction) — a shared or resold device never pushes to its previous owner.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::ClockRef;
use crate::domain::{FieldError, InvalidInput, Username};
use crate::store::{Cond, Query, StoreError, TableRef, TxOp, from_item, keys, query_all, to_item};

/// Why a device change was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Not one of the caller's tokens (or unknown).
    #[error("token not found")]
    NotFound,
    /// Kept losing races on the owner item (retryable).
    #[error("device registration kept losing races")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an admin push was not queued.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("account does not exist")]
    UnknownAccount,
    #[error("queue: {0}")]
    Queue(#[from] crate::notify::NotifyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Admin pushes: checks the account exists (main table), then queues the message.
#[derive(Clone)]
pub struct Pushes {
    table: TableRef,
    queue: crate::notify::QueueRef,
}

impl Pushes {
    pub fn new(table: TableRef, queue: crate::notify::QueueRef) -> Self {
        Pushes { table, queue }
    }

    /// Queues `title`/`body`/`data` for every device of `username`.
    pub async fn queue(
        &self,
        username: &Username,
        title: String,
        body: String,
        data: std::collections::BTreeMap<String, String>,
    ) -> Result<(), PushError> {
        if self.table.get(&keys::info(username)).await?.is_none() {
            return Err(PushError::UnknownAccount);
        }
        let message = crate::notify::Notification::Push {
            username: username.to_string(),
            title,
            body,
            data,
        };
        self.queue.send(&message).await.map_err(|e| {
            tracing::error!(error = %e, "could not enqueue push");
            PushError::Queue(e)
        })
    }
}

/// Registered push devices: the main table and the clock.
#[derive(Clone)]
pub struct Devices {
    table: TableRef,
    clock: ClockRef,
}

/// Most devices kept per user; registering another forgets the least recently registered one.
pub const MAX_DEVICES: usize = 10;

/// Device kinds the original stored.
const DEVICE_TYPES: [&str; 3] = ["android", "ios", "web"];

/// Hex SHA-256 of a token: the key part (tokens are long and opaque).
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `FCMTOKEN#{h}` / `OWNER` and `USER#{u}` / `FCM#{h}` share this shape.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub pk: String,
    pub sk: String,
    pub username: String,
    pub token: String,
    pub device_type: String,
    pub updated_at: i64,
}

/// `POST /fcm/register` body.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct Registration {
    pub token: Option<String>,
    pub device_type: Option<String>,
}

/// A registration as checked: a plausible token and a known device type.
#[derive(Clone, Debug)]
pub struct Device {
    token: String,
    device_type: String,
}

impl Registration {
    /// Checks both fields.
    pub fn parse(&self) -> Result<Device, InvalidInput> {
        Ok(Device {
            token: parse_token(self.token.as_deref())?,
            device_type: parse_device_type(self.device_type.as_deref())?,
        })
    }
}

/// Checks a device token's shape (FCM tokens are ~150–300 printable ASCII characters).
pub fn parse_token(raw: Option<&str>) -> Result<String, InvalidInput> {
    let t = raw.map(str::trim).unwrap_or_default();
    let ok = (16..=4096).contains(&t.len()) && t.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(t.to_owned())
    } else {
        Err(InvalidInput::Fields(vec![FieldError::new(
            "token",
            "must be a device registration token",
        )]))
    }
}

fn parse_device_type(raw: Option<&str>) -> Result<String, InvalidInput> {
    let d = raw.map(|s| s.trim().to_lowercase()).unwrap_or_default();
    if DEVICE_TYPES.contains(&d.as_str()) {
        Ok(d)
    } else {
        Err(InvalidInput::Fields(vec![FieldError::new(
            "device_type",
            "must be android, ios or web",
        )]))
    }
}

fn owner_cond(prev: &Option<DeviceRecord>) -> Cond {
    match prev {
        Some(p) => Cond::eq("username", p.username.as_str()),
        None => Cond::item_absent(),
    }
}

/// How long a "this user registered this device" record is kept.
const SEEN_TTL_SECS: i64 = 400 * 86_400;

/// Remembers that `username` registered the token (read by the self-referral check).
fn seen_op(username: &Username, hash: &str, now: i64) -> TxOp {
    let mut item = keys::device_seen(hash, username).item();
    item.insert("username".into(), username.as_str().into());
    item.insert("at".into(), now.into());
    item.insert("ttl".into(), (now + SEEN_TTL_SECS).into());
    TxOp::Put { item, cond: None }
}

impl Devices {
    pub fn new(table: TableRef, clock: ClockRef) -> Self {
        Devices { table, clock }
    }

    async fn owner(&self, hash: &str) -> Result<Option<DeviceRecord>, DeviceError> {
        Ok(crate::store::get_record(self.table.as_ref(), &keys::device_owner(hash)).await?)
    }

    /// Registers a token for a user (idempotent; moves it from any previous owner).
    pub async fn register(&self, username: &Username, device: &Device) -> Result<(), DeviceError> {
        let Device { token, device_type } = device;
        let hash = token_hash(token);
        for _ in 0..5 {
            let prev = self.owner(&hash).await?;
            let now = self.clock.epoch();
            let record = |key: crate::store::Key| DeviceRecord {
                pk: key.pk,
                sk: key.sk,
                username: username.to_string(),
                token: token.clone(),
                device_type: device_type.clone(),
                updated_at: now,
            };
            let mut ops = vec![
                TxOp::Put {
                    item: to_item(&record(keys::device_owner(&hash)))?,
                    cond: Some(owner_cond(&prev)),
                },
                TxOp::Put {
                    item: to_item(&record(keys::user_device(username, &hash)))?,
                    cond: None,
                },
                seen_op(username, &hash, now),
            ];
            if let Some(p) = prev.as_ref().filter(|p| p.username != username.as_str()) {
                ops.push(TxOp::Delete {
                    key: keys::user_device(&p.username, &hash),
                    cond: None,
                });
            }
            match self.table.transact(ops).await {
                Ok(()) => return self.prune(username, &hash).await,
                Err(StoreError::TransactionCanceled { .. } | StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(DeviceError::Busy)
    }

    /// Whether `other` ever registered one of `username`'s current devices (a shared handset).
    pub async fn shares_a_device(
        &self,
        username: &Username,
        other: &str,
    ) -> Result<bool, StoreError> {
        let q = Query::pk(keys::user_devices_pk(username)).prefix(keys::FCM_PREFIX);
        let mine = query_all(self.table.as_ref(), q).await?;
        let seen: Vec<crate::store::Key> = mine
            .iter()
            .filter_map(|i| crate::store::get_s(i, "token"))
            .map(|t| keys::device_seen(&token_hash(t), other))
            .collect();
        for chunk in seen.chunks(crate::store::MAX_BATCH_GET_KEYS) {
            if self
                .table
                .get_many(chunk)
                .await?
                .iter()
                .any(Option::is_some)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Keeps the newest [`MAX_DEVICES`] registrations of a user (bounded push fan-out).
    /// The device just registered (`keep`) always stays.
    async fn prune(&self, username: &Username, keep: &str) -> Result<(), DeviceError> {
        let mut devices = self.of_user(username).await?;
        if devices.len() <= MAX_DEVICES {
            return Ok(());
        }
        devices.sort_by_key(|d| std::cmp::Reverse((token_hash(&d.token) == keep, d.updated_at)));
        for stale in &devices[MAX_DEVICES..] {
            self.remove(username, &token_hash(&stale.token)).await?;
        }
        Ok(())
    }

    /// Removes one of the user's own tokens; another user's (or an unknown) token is a 404.
    pub async fn unregister(&self, username: &Username, token: &str) -> Result<(), DeviceError> {
        let hash = token_hash(token);
        let mine = self
            .owner(&hash)
            .await?
            .is_some_and(|o| o.username == username.as_str());
        if !mine {
            return Err(DeviceError::NotFound);
        }
        self.remove(username, &hash).await
    }

    /// Forgets every push token of a user (a deactivated account gets no more pushes).
    pub async fn remove_all(&self, username: &Username) -> Result<(), DeviceError> {
        for device in self.of_user(username).await? {
            self.remove(username, &token_hash(&device.token)).await?;
        }
        Ok(())
    }

    /// Deletes a user's token item, and the owner item while it still names that user.
    async fn remove(&self, username: &Username, hash: &str) -> Result<(), DeviceError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Step {
            UserItem,
            StillOwner,
        }
        let mut steps = crate::store::Steps::new();
        steps
            .push(
                Step::UserItem,
                TxOp::Delete {
                    key: keys::user_device(username, hash),
                    cond: None,
                },
            )
            .push(
                Step::StillOwner,
                TxOp::Delete {
                    key: keys::device_owner(hash),
                    cond: Some(Cond::eq("username", username.as_str())),
                },
            );
        let (ops, names) = steps.split();
        match self.table.transact(ops).await {
            Ok(()) => Ok(()),
            // The token moved to someone else meanwhile: only our stale item goes.
            Err(e) if names.failed(&e, Step::StillOwner) => {
                self.table
                    .delete(&keys::user_device(username, hash), None)
                    .await?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Forgets a token the push provider reported as dead.
    pub async fn remove_dead(&self, username: &Username, token: &str) -> Result<(), DeviceError> {
        self.remove(username, &token_hash(token)).await
    }

    /// Every registered device of a user.
    pub async fn of_user(&self, username: &Username) -> Result<Vec<DeviceRecord>, DeviceError> {
        let q = Query::pk(keys::user_devices_pk(username)).prefix(keys::FCM_PREFIX);
        let items = query_all(self.table.as_ref(), q).await?;
        items
            .iter()
            .map(|i| from_item(i).map_err(DeviceError::from))
            .collect()
    }
}
