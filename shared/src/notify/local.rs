//! The local stand-in for queue + mail/SMS/push: an in-process channel whose consumer task writes
//! every message into a dev outbox in the main table (`OUTBOX#{to}` / `{ts}#{id}`, kept a day), where
//! `GET /_dev/outbox?to=…` shows it — so a developer can click a verification link or read an OTP.

use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use std::sync::Arc;

use super::{Notification, NotifyError, Queue, Resolved, Resolver};
use crate::clock::ClockRef;
use crate::store::{Item, Key, Query, StoreError, TableRef, from_item, keys, query_all, to_item};

/// How long outbox entries are kept.
const OUTBOX_TTL_SECS: i64 = 86_400;

/// One delivered message as the outbox shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutboxEntry {
    /// `email`, `sms` or `push`.
    pub channel: String,
    pub to: String,
    #[serde(default)]
    pub subject: String,
    pub body: String,
    /// RFC 3339.
    pub created_at: String,
}

/// The stored form of an [`OutboxEntry`].
#[derive(Serialize, Deserialize)]
struct OutboxItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    entry: OutboxEntry,
    ttl: i64,
}

enum Msg {
    Deliver(Notification),
    Flush(oneshot::Sender<()>),
}

/// In-process queue: `send` returns at once; a consumer task (started on first use, so the queue
/// can be built outside a runtime) delivers into the outbox in order.
pub struct LocalQueue {
    tx: mpsc::UnboundedSender<Msg>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Msg>>>,
    table: TableRef,
    clock: ClockRef,
    resolver: Arc<dyn Resolver>,
}

impl LocalQueue {
    /// A queue delivering into the outbox of `table` (the main table), each message resolved
    /// first by `resolver` as the notifier resolves it.
    pub fn new(table: TableRef, clock: ClockRef, resolver: Arc<dyn Resolver>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        LocalQueue {
            tx,
            rx: Mutex::new(Some(rx)),
            table,
            clock,
            resolver,
        }
    }

    fn ensure_consumer(&self) {
        let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut rx) = rx {
            let (table, clock) = (self.table.clone(), self.clock.clone());
            let resolver = self.resolver.clone();
            tokio::spawn(async move {
                while let Some(msg) = rx.recv().await {
                    match msg {
                        Msg::Deliver(n) => {
                            if let Err(e) =
                                resolve_and_deliver(&table, &clock, resolver.as_ref(), n).await
                            {
                                tracing::error!(error = %e, "local outbox delivery failed");
                            }
                        }
                        Msg::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            });
        }
    }
}

#[async_trait]
impl Queue for LocalQueue {
    async fn send(&self, message: &Notification) -> Result<(), NotifyError> {
        self.ensure_consumer();
        self.tx
            .send(Msg::Deliver(message.clone()))
            .map_err(|_| NotifyError::Transient("local queue consumer stopped".into()))
    }

    async fn flush(&self) {
        self.ensure_consumer();
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// What the local consumer does with each queued message: resolves it as the notifier does (a held
/// message read back, a reset request turned into its mail), writes it into the outbox, and
/// forgets the held copy.
async fn resolve_and_deliver(
    table: &TableRef,
    clock: &ClockRef,
    resolver: &dyn Resolver,
    queued: Notification,
) -> Result<(), StoreError> {
    match resolver.resolve(queued).await? {
        Resolved::Deliver { message, held, .. } => {
            deliver(table, clock, &message).await?;
            if let Some(id) = held {
                super::held::forget(table.as_ref(), &id).await?;
            }
            Ok(())
        }
        Resolved::Nothing(why) => {
            tracing::debug!(why, "local queue: nothing to deliver");
            Ok(())
        }
    }
}

/// Writes one notification into the outbox.
pub async fn deliver(
    table: &TableRef,
    clock: &ClockRef,
    n: &Notification,
) -> Result<(), StoreError> {
    let (channel, to, subject, body) = match n {
        Notification::Email {
            to, subject, body, ..
        } => ("email", to.clone(), subject.clone(), body.clone()),
        Notification::Sms { to, text } => ("sms", to.clone(), String::new(), text.clone()),
        Notification::Push {
            username,
            title,
            body,
            ..
        } => ("push", username.clone(), title.clone(), body.clone()),
        Notification::Held { .. } | Notification::PasswordReset { .. } => {
            return Err(StoreError::Invalid(
                "an unresolved message cannot go to the outbox".into(),
            ));
        }
    };
    let now = clock.now();
    let key = Key::new(
        keys::outbox_pk(&to),
        format!(
            "{:013}#{}",
            now.timestamp_millis(),
            uuid::Uuid::now_v7().simple()
        ),
    );
    let item = OutboxItem {
        pk: key.pk,
        sk: key.sk,
        entry: OutboxEntry {
            channel: channel.into(),
            to,
            subject,
            body,
            created_at: now.to_rfc3339(),
        },
        ttl: now.timestamp() + OUTBOX_TTL_SECS,
    };
    table.put(to_item(&item)?, None).await
}

/// Everything delivered to `to`, oldest first.
pub async fn read(table: &TableRef, to: &str) -> Result<Vec<OutboxEntry>, StoreError> {
    let items: Vec<Item> = query_all(table.as_ref(), Query::pk(keys::outbox_pk(to))).await?;
    items
        .iter()
        .map(|i| from_item::<OutboxItem>(i).map(|o| o.entry))
        .collect()
}
