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
            return accepted(&reply);
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

/// What a 2xx answer says about the message (Infobip's status groups, which SMSViro's paths
/// imply; integrations.md §8 — its body is unconfirmed). Only a recognised "on its way" group
/// counts as sent: an answer this client does not recognise is a transient failure, so the
/// message is retried and, after the queue's receive limit, dead-lettered instead of vanishing.
/// The error names the group, never the text or the number.
fn accepted(reply: &Value) -> Result<(), NotifyError> {
    let group = reply["messages"][0]["status"]["groupName"].as_str();
    match group {
        Some("PENDING" | "ACCEPTED" | "DELIVERED") => Ok(()),
        Some(g @ ("REJECTED" | "UNDELIVERABLE" | "EXPIRED")) => {
            Err(NotifyError::Permanent(format!("SMS gateway status {g}")))
        }
        Some(other) => Err(NotifyError::Transient(format!(
            "SMS gateway answered an unknown status group {other:?}"
        ))),
        None => Err(NotifyError::Transient(
            "SMS gateway answered 2xx without a message status".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_recognised_status_counts_as_sent() {
        let with = |g: &str| json!({"messages": [{"status": {"groupName": g}}]});
        assert!(accepted(&with("PENDING")).is_ok());
        assert!(accepted(&with("DELIVERED")).is_ok());
        assert!(matches!(
            accepted(&with("REJECTED")),
            Err(NotifyError::Permanent(_))
        ));
        assert!(matches!(
            accepted(&with("QUEUED_SOMEWHERE")),
            Err(NotifyError::Transient(_))
        ));
        for body in [
            json!({}),
            json!({"ok": true}),
            Value::Null,
            json!({"messages": []}),
        ] {
            assert!(
                matches!(accepted(&body), Err(NotifyError::Transient(_))),
                "{body}"
            );
        }
    }
}
