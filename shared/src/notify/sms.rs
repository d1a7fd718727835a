//! SMS through the SMSViro gateway (Infobip-compatible `POST /restapi/sms/1/text/advanced`,
//! `Authorization: App <key>`).

use std::time::Duration;

use serde_json::{Value, json};

use super::NotifyError;
use crate::config::Secret;

/// The SMSViro client.
pub struct SmsViro {
    http: reqwest::Client,
    url: String,
    api_key: Secret,
    sender: String,
}

impl SmsViro {
    pub fn new(base_url: &str, api_key: Secret, sender: &str) -> Result<Self, NotifyError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| NotifyError::Permanent(format!("http client: {e}")))?;
        let url = format!(
            "{}/restapi/sms/1/text/advanced",
            base_url.trim_end_matches('/')
        );
        Ok(SmsViro {
            http,
            url,
            api_key,
            sender: sender.to_owned(),
        })
    }

    /// Sends one text to an MSISDN (`62…`).
    pub async fn send(&self, to: &str, text: &str) -> Result<(), NotifyError> {
        let body = json!({ "messages": [{ "from": self.sender, "destinations": [{ "to": to }], "text": text }] });
        let res = self
            .http
            .post(&self.url)
            .header("Authorization", format!("App {}", self.api_key.expose()))
            .header("Accept", "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|e| NotifyError::Transient(format!("SMS gateway: {e}")))?;
        let status = res.status();
        let reply: Value = res.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            let group = reply["messages"][0]["status"]["groupName"]
                .as_str()
                .unwrap_or("PENDING");
            return match group {
                "PENDING" | "ACCEPTED" | "DELIVERED" => Ok(()),
                other => Err(NotifyError::Permanent(format!(
                    "SMS gateway status {other}"
                ))),
            };
        }
        match status.as_u16() {
            // Credentials or quota: an operator fixes it, the message waits.
            401 | 403 | 429 | 500..=599 => Err(NotifyError::Transient(format!(
                "SMS gateway answered {status}"
            ))),
            _ => Err(NotifyError::Permanent(format!(
                "SMS gateway answered {status}"
            ))),
        }
    }
}
