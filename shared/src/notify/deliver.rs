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

use super::fcm::{FcmClient, PushOutcome, ServiceAccount};
use super::ses::SesMailer;
use super::sms::SmsViro;
use super::{Notification, NotifyError};
use crate::app::App;
use crate::audit::{self, LogKind};
use crate::config::Backend;
use crate::devices;
use crate::store::StoreError;

/// Sends e-mail.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send_mail(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        html: Option<&str>,
    ) -> Result<(), NotifyError>;
}

/// Sends SMS.
#[async_trait]
pub trait SmsSender: Send + Sync + 'static {
    async fn send_sms(&self, to: &str, text: &str) -> Result<(), NotifyError>;
}

/// Sends one push message to one device.
#[async_trait]
pub trait Pusher: Send + Sync + 'static {
    async fn push(
        &self,
        device_token: &str,
        title: &str,
        body: &str,
        data: &BTreeMap<String, String>,
    ) -> Result<PushOutcome, NotifyError>;
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send_mail(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        html: Option<&str>,
    ) -> Result<(), NotifyError> {
        self.send(to, subject, text, html).await
    }
}

#[async_trait]
impl SmsSender for SmsViro {
    async fn send_sms(&self, to: &str, text: &str) -> Result<(), NotifyError> {
        self.send(to, text).await
    }
}

#[async_trait]
impl Pusher for FcmClient {
    async fn push(
        &self,
        device_token: &str,
        title: &str,
        body: &str,
        data: &BTreeMap<String, String>,
    ) -> Result<PushOutcome, NotifyError> {
        self.send(device_token, title, body, data).await
    }
}

/// What a queued message is to deliver, once resolved.
#[derive(Debug)]
pub enum Resolved {
    /// Deliver `message`; forget the held message `held` afterwards; `user` is whose it is (for
    /// the audit line), when known.
    Deliver {
        message: Notification,
        held: Option<String>,
        user: Option<String>,
    },
    /// Nothing to deliver, and why (a held message sent already or expired, a reset request for
    /// an address no usable account has).
    Nothing(&'static str),
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
        Notification::Held { id } => Ok(match super::held::read(table, &id, now).await? {
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

/// The providers, each optional: a channel without a provider drops its messages with an error log.
#[derive(Clone, Default)]
pub struct Providers {
    pub mailer: Option<Arc<dyn Mailer>>,
    pub sms: Option<Arc<dyn SmsSender>>,
    pub push: Option<Arc<dyn Pusher>>,
}

impl Providers {
    /// Builds the providers the configuration names: SES in aws mode, SMSViro when
    /// `API_URL_SMSVIRO` and `SMSVIROTOKEN` are set, FCM when `FCM_SERVICE_ACCOUNT_JSON` is set.
    pub async fn from_app(app: &App) -> Result<Providers, NotifyError> {
        let c = &app.config;
        let mut p = Providers::default();
        if c.backend == Backend::Aws {
            // The configuration the app loaded at start (loading it again would repeat the
            // credential and region lookups); the CLI's app always has it on AWS.
            let loaded;
            let sdk = match &app.sdk {
                Some(sdk) => sdk,
                None => {
                    loaded = aws_config::defaults(aws_config::BehaviorVersion::latest())
                        .load()
                        .await;
                    &loaded
                }
            };
            p.mailer = Some(Arc::new(SesMailer::new(
                aws_sdk_sesv2::Client::new(sdk),
                &c.mail_from,
            )));
        }
        if let (Some(url), Some(key)) = (&c.sms_base_url, &c.sms_api_key) {
            p.sms = Some(Arc::new(SmsViro::new(url, key.clone(), &c.sms_sender_id)?));
        }
        if let Some(sa) = &c.fcm_service_account {
            let account = ServiceAccount::load(sa.expose())?;
            p.push = Some(Arc::new(FcmClient::new(
                account,
                &c.fcm_base_url,
                app.clock.clone(),
            )?));
        }
        Ok(p)
    }
}

/// Delivers notifications.
#[derive(Clone)]
pub struct Delivery {
    app: App,
    providers: Providers,
}

fn unconfigured(channel: &str) -> NotifyError {
    NotifyError::Permanent(format!("no {channel} provider configured"))
}

impl Delivery {
    pub fn new(app: App, providers: Providers) -> Self {
        Delivery { app, providers }
    }

    /// Delivers one queued message: resolves it ([`resolve`]), sends it, then forgets the held
    /// copy (so a redelivered or redriven copy of the queue message sends nothing twice).
    pub async fn deliver(&self, queued: &Notification) -> Result<(), NotifyError> {
        let store = |e: StoreError| NotifyError::Transient(format!("store: {e}"));
        let resolved = resolve(
            self.app.main.as_ref(),
            self.app.clock.epoch(),
            queued.clone(),
        )
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
        self.send(&message).await?;
        if let Some(id) = held
            && let Err(e) = super::held::forget(self.app.main.as_ref(), &id).await
        {
            tracing::warn!(error = %e, "could not forget a delivered held message");
        }
        if let Some(u) = user {
            audit::record(
                &self.app,
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
        let store =
            |e: crate::error::ApiError| NotifyError::Transient(format!("store: {}", e.message));
        let devices = devices::of_user(&self.app, username).await.map_err(store)?;
        if devices.is_empty() {
            tracing::info!(username, "push skipped: no registered devices");
        }
        let mut failure = None;
        for device in devices {
            match pusher.push(&device.token, title, body, data).await {
                Ok(PushOutcome::Delivered) => {}
                Ok(PushOutcome::DeadToken(reason)) => {
                    devices::remove_dead(&self.app, username, &device.token)
                        .await
                        .map_err(store)?;
                    let hash = devices::token_hash(&device.token);
                    audit::record(
                        &self.app,
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
                let last = receives >= self.app.config.notify_max_receives;
                tracing::warn!(message_id = %id, receives, last, error = %e, "delivery failed; will be retried");
                if last {
                    audit::record(
                        &self.app,
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
                audit::record(
                    &self.app,
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
