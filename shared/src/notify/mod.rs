//! Outbound notifications (mail, SMS, push). Requests never wait on a provider: they put a
//! [`Notification`] on the queue port; a consumer (the `notifier` Lambda on SQS, or an in-process
//! task locally) delivers it through the mail/SMS/push ports.

pub mod fcm;
pub mod held;
pub mod local;
pub mod memory;
pub mod providers;
pub mod ses;
pub mod sms;
pub mod sqs;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One message to deliver. The serde form is the SQS message body. Messages that carry a secret
/// (an OTP, a verification link, a reset token) are never queued as such: they are held in the
/// table ([`held`]) and queued as [`Notification::Held`], so the queue and its dead-letter queue
/// never contain a usable secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notification {
    Email {
        to: String,
        subject: String,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        html: Option<String>,
    },
    Sms {
        /// MSISDN, `62…`.
        to: String,
        text: String,
    },
    Push {
        username: String,
        title: String,
        body: String,
        #[serde(default)]
        data: BTreeMap<String, String>,
    },
    /// A message held in the table because it carries a secret: the consumer reads it by id,
    /// delivers it and deletes it. Once its secret has expired it resolves to nothing.
    Held { id: String },
    /// Someone asked for a password reset for this e-mail: the consumer looks the account up,
    /// issues the reset token and mails it, so the request itself does the same work whether or
    /// not the address is registered.
    PasswordReset { email: String },
}

/// A delivery or enqueue failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// Worth retrying later (provider 5xx/429, timeouts).
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed as sent (bad address, rejected payload).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// The queue port.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    async fn send(&self, message: &Notification) -> Result<(), NotifyError>;
    /// Waits until everything sent so far has been delivered, where delivery is in-process (the
    /// local queue); a no-op where a remote consumer delivers.
    async fn flush(&self) {}
}

/// Shared queue handle.
pub type QueueRef = Arc<dyn Queue>;

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

/// Turns a queued message into what to deliver (held messages and reset requests need the
/// table and the account records): supplied by the delivery service, used by the local queue.
#[async_trait]
pub trait Resolver: Send + Sync + 'static {
    async fn resolve(&self, queued: Notification) -> Result<Resolved, crate::store::StoreError>;
}
