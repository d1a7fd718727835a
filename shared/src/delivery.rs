//! Delivery of queued notifications through the providers, and the SQS batch handler of the
//! `notifier` function.
//!
//! Failure policy: a transient failure (provider 5xx/429, timeouts, credentials an operator must
//! fix) reports the SQS record as a batch item failure, so SQS redelivers it; after the queue's
//! `maxReceiveCount` receives SQS moves it to the dead-letter queue. A permanent failure (malformed
//! body, rejected address) is logged and acknowledged: retrying cannot help. A push to a user with
//! several devices is retried as a whole, so a device that already got it may get it twice.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::json;

use crate::audit::{Audit, LogKind};
use crate::clock::ClockRef;
use crate::devices::{DeviceError, Devices, token_hash};
use crate::domain::Username;
use crate::notify::fcm::PushOutcome;
use crate::notify::local::LocalQueue;
use crate::notify::providers::Providers;
use crate::notify::{Notification, NotifyError, Resolved, Resolver, held};
use crate::store::{StoreError, TableRef};

/// Resolves queued messages against the main table (held messages, password-reset requests).
#[derive(Clone)]
pub struct MessageResolver {
    table: TableRef,
    clock: ClockRef,
}

impl MessageResolver {
    pub fn new(table: TableRef, clock: ClockRef) -> Self {
        MessageResolver { table, clock }
    }
}

#[async_trait]
impl Resolver for MessageResolver {
    async fn resolve(&self, queued: Notification) -> Result<Resolved, StoreError> {
        resolve(self.table.as_ref(), self.clock.epoch(), queued).await
    }
}

/// The local queue, delivering into the dev outbox of `table` as the notifier would deliver.
pub fn local_queue(table: TableRef, clock: ClockRef) -> LocalQueue {
    let resolver = Arc::new(MessageResolver::new(table.clone(), clock.clone()));
    LocalQueue::new(table, clock, resolver)
}

/// Turns a queued message into what to deliver: a held message is read back (at `now`), a
/// password-reset request becomes the reset mail of the account it names (issuing its token),
/// anything else is delivered as it is.
pub async fn resolve(
    table: &dyn crate::store::Table,
    now: i64,
    queued: Notification,
) -> Result<Resolved, StoreError> {
    match queued {
        Notification::Held { id } => Ok(match held::read(table, &id, now).await? {
            Some(Notification::Held { .. } | Notification::PasswordReset { .. }) | None => {
                Resolved::Nothing("held message already sent or expired")
            }
            Some(message) => Resolved::Deliver {
                message,
                held: Some(id),
                user: None,
            },
        }),
        Notification::PasswordReset { email } => Ok(
            match crate::auth::reset::prepare(table, now, &email).await? {
                Some(p) => Resolved::Deliver {
                    message: p.mail,
                    held: None,
                    user: Some(p.username),
                },
                None => Resolved::Nothing("no account to reset for that address"),
            },
        ),
        message => Ok(Resolved::Deliver {
            message,
            held: None,
            user: None,
        }),
    }
}

/// Delivers notifications: the main table (held messages, reset requests), the devices and the
/// audit log, the providers, and after how many receives SQS dead-letters a message.
#[derive(Clone)]
pub struct Delivery {
    table: TableRef,
    clock: ClockRef,
    devices: Devices,
    audit: Audit,
    providers: Providers,
    max_receives: i64,
}

fn unconfigured(channel: &str) -> NotifyError {
    NotifyError::Permanent(format!("no {channel} provider configured"))
}

impl Delivery {
    pub fn new(
        table: TableRef,
        clock: ClockRef,
        devices: Devices,
        audit: Audit,
        providers: Providers,
        max_receives: i64,
    ) -> Self {
        Delivery {
            table,
            clock,
            devices,
            audit,
            providers,
            max_receives,
        }
    }

    /// Delivers one queued message: resolves it ([`resolve`]), sends it, then forgets the held
    /// copy (so a redelivered or redriven copy of the queue message sends nothing twice).
    pub async fn deliver(&self, queued: &Notification) -> Result<(), NotifyError> {
        let store = |e: StoreError| NotifyError::Transient(format!("store: {e}"));
        let resolved = resolve(self.table.as_ref(), self.clock.epoch(), queued.clone())
            .await
            .map_err(store)?;
        let (message, held, user) = match resolved {
            Resolved::Deliver {
                message,
                held,
                user,
            } => (message, held, user),
            Resolved::Nothing(why) => {
                tracing::info!(why, "nothing to deliver");
                return Ok(());
            }
        };
        let channel = match &message {
            Notification::Email { .. } => "email",
            Notification::Sms { .. } => "sms",
            _ => "push",
        };
        let sent = self.send(&message).await;
        crate::metrics::emit(match sent {
            Ok(()) => crate::metrics::Metric::NotificationSent(channel),
            Err(_) => crate::metrics::Metric::NotificationFailed(channel),
        });
        sent?;
        if let Some(id) = held
            && let Err(e) = held::forget(self.table.as_ref(), &id).await
        {
            tracing::warn!(error = %e, "could not forget a delivered held message");
        }
        if let Some(u) = user {
            self.audit
                .record(
                    LogKind::Audit,
                    &u,
                    Some(&u),
                    "password_reset_requested",
                    json!({}),
                )
                .await;
        }
        Ok(())
    }

    /// Sends one resolved message through its provider.
    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        match n {
            Notification::Email {
                to,
                subject,
                body,
                html,
            } => {
                let mailer = self
                    .providers
                    .mailer
                    .as_ref()
                    .ok_or_else(|| unconfigured("mail"))?;
                mailer.send_mail(to, subject, body, html.as_deref()).await
            }
            Notification::Sms { to, text } => {
                let sms = self
                    .providers
                    .sms
                    .as_ref()
                    .ok_or_else(|| unconfigured("SMS"))?;
                sms.send_sms(to, text).await
            }
            Notification::Push {
                username,
                title,
                body,
                data,
            } => self.push(username, title, body, data).await,
            Notification::Held { .. } | Notification::PasswordReset { .. } => Err(
                NotifyError::Permanent("an unresolved message cannot be sent".into()),
            ),
        }
    }

    /// Sends to every device of the user; dead tokens are deleted. Any transient failure fails the
    /// whole message (retried later).
    async fn push(
        &self,
        username: &str,
        title: &str,
        body: &str,
        data: &BTreeMap<String, String>,
    ) -> Result<(), NotifyError> {
        let pusher = self
            .providers
            .push
            .as_ref()
            .ok_or_else(|| unconfigured("push"))?;
        let store = |e: DeviceError| NotifyError::Transient(format!("store: {e}"));
        let user = Username::from_stored(username);
        let devices = self.devices.of_user(&user).await.map_err(store)?;
        if devices.is_empty() {
            tracing::info!(username, "push skipped: no registered devices");
        }
        let mut failure = None;
        for device in devices {
            match pusher.push(&device.token, title, body, data).await {
                Ok(PushOutcome::Delivered) => {}
                Ok(PushOutcome::DeadToken(reason)) => {
                    self.devices
                        .remove_dead(&user, &device.token)
                        .await
                        .map_err(store)?;
                    let hash = token_hash(&device.token);
                    self.audit
                        .record(
                            LogKind::Notification,
                            username,
                            Some(username),
                            "push.token_removed",
                            json!({ "reason": reason, "token_sha256": hash }),
                        )
                        .await;
                }
                Err(NotifyError::Permanent(e)) => {
                    tracing::error!(username, error = %e, "push refused by provider")
                }
                Err(e @ NotifyError::Transient(_)) => failure = Some(e),
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Handles one SQS batch: transient failures are reported as batch item failures (SQS retries
    /// them, then dead-letters them after `NOTIFY_MAX_RECEIVES`), everything else is acknowledged.
    pub async fn handle_sqs(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            if let Err(e) = self.handle_record(&record).await {
                let receives: i64 = record
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                let last = receives >= self.max_receives;
                tracing::warn!(message_id = %id, receives, last, error = %e, "delivery failed; will be retried");
                if last {
                    self.audit
                        .record(
                            LogKind::Notification,
                            &id,
                            None,
                            "notification.dead_lettered",
                            json!({ "receives": receives, "error": e.to_string() }),
                        )
                        .await;
                }
                response.add_failure(id);
            }
        }
        response
    }

    /// Delivers one record; `Err` only for failures worth retrying.
    async fn handle_record(&self, record: &SqsMessage) -> Result<(), NotifyError> {
        let id = record.message_id.as_deref().unwrap_or_default();
        let parsed =
            serde_json::from_str::<Notification>(record.body.as_deref().unwrap_or_default());
        let outcome = match parsed {
            Ok(n) => self.deliver(&n).await,
            Err(e) => Err(NotifyError::Permanent(format!(
                "malformed message body: {e}"
            ))),
        };
        match outcome {
            Err(NotifyError::Permanent(e)) => {
                tracing::error!(message_id = id, error = %e, "notification dropped");
                self.audit
                    .record(
                        LogKind::Notification,
                        id,
                        None,
                        "notification.dropped",
                        json!({ "error": e }),
                    )
                    .await;
                Ok(())
            }
            other => other,
        }
    }
}
