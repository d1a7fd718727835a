//! The provider ports of delivery (mail, SMS, push) and their adapters' implementations.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::NotifyError;
use super::fcm::{FcmClient, PushOutcome};
use super::ses::SesMailer;
use super::sms::SmsViro;

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

/// The providers, each optional: a channel without a provider drops its messages with an error log.
#[derive(Clone, Default)]
pub struct Providers {
    pub mailer: Option<Arc<dyn Mailer>>,
    pub sms: Option<Arc<dyn SmsSender>>,
    pub push: Option<Arc<dyn Pusher>>,
}
