//! Firebase Cloud Messaging HTTP v1: service-account JWT (RS256) → OAuth access token (cached
//! until five minutes before it expires) → one `messages:send` per device token.

use std::collections::BTreeMap;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::NotifyError;
use crate::clock::ClockRef;

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Refresh the access token this long before it expires.
const REFRESH_MARGIN_SECS: i64 = 300;

fn default_token_uri() -> String {
    DEFAULT_TOKEN_URI.into()
}

/// The fields of a Firebase service-account JSON this client uses.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    pub project_id: String,
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("project_id", &self.project_id)
            .finish()
    }
}

impl ServiceAccount {
    /// Reads the JSON itself (when the value starts with `{`) or the file it names.
    pub fn load(value: &str) -> Result<ServiceAccount, NotifyError> {
        let text = if value.trim_start().starts_with('{') {
            value.to_owned()
        } else {
            std::fs::read_to_string(value.trim())
                .map_err(|e| NotifyError::Permanent(format!("FCM service account file: {e}")))?
        };
        serde_json::from_str(&text)
            .map_err(|e| NotifyError::Permanent(format!("FCM service account JSON: {e}")))
    }
}

/// What became of one device's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Delivered,
    /// FCM says the token will never work again (uninstalled, malformed, other project): delete it.
    DeadToken(String),
}

#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: i64,
}

struct Cached {
    token: String,
    refresh_at: i64,
}

/// An FCM HTTP v1 client.
pub struct FcmClient {
    http: reqwest::Client,
    account: ServiceAccount,
    key: EncodingKey,
    send_url: String,
    clock: ClockRef,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

fn transient(what: &str, e: impl std::fmt::Display) -> NotifyError {
    NotifyError::Transient(format!("{what}: {e}"))
}

impl FcmClient {
    /// A client for `account`, sending to `{base_url}/v1/projects/{project}/messages:send`.
    pub fn new(
        account: ServiceAccount,
        base_url: &str,
        clock: ClockRef,
    ) -> Result<FcmClient, NotifyError> {
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|e| NotifyError::Permanent(format!("FCM private key: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| NotifyError::Permanent(format!("http client: {e}")))?;
        let send_url = format!(
            "{}/v1/projects/{}/messages:send",
            base_url.trim_end_matches('/'),
            account.project_id
        );
        Ok(FcmClient {
            http,
            account,
            key,
            send_url,
            clock,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// A valid access token, from the cache unless `refresh` or it is close to expiry.
    async fn access_token(&self, refresh: bool) -> Result<String, NotifyError> {
        let mut cached = self.cached.lock().await;
        let now = self.clock.epoch();
        if let Some(c) = cached.as_ref().filter(|c| !refresh && c.refresh_at > now) {
            return Ok(c.token.clone());
        }
        let claims = Assertion {
            iss: &self.account.client_email,
            scope: SCOPE,
            aud: &self.account.token_uri,
            iat: now,
            exp: now + 3600,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.account.private_key_id.clone();
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| NotifyError::Permanent(format!("signing FCM assertion: {e}")))?;
        let res = self
            .http
            .post(&self.account.token_uri)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| transient("FCM token request", e))?;
        if !res.status().is_success() {
            // Bad credentials or clock skew: keep the message (retry, then DLQ) rather than drop it.
            return Err(NotifyError::Transient(format!(
                "FCM token endpoint answered {}",
                res.status()
            )));
        }
        let t: TokenResponse = res
            .json()
            .await
            .map_err(|e| transient("FCM token response", e))?;
        let token = t.access_token.clone();
        *cached = Some(Cached {
            token: t.access_token,
            refresh_at: now + t.expires_in - REFRESH_MARGIN_SECS,
        });
        Ok(token)
    }

    /// Sends one notification to one device.
    pub async fn send(
        &self,
        device_token: &str,
        title: &str,
        body: &str,
        data: &BTreeMap<String, String>,
    ) -> Result<PushOutcome, NotifyError> {
        let message = json!({
            "message": {
                "token": device_token,
                "notification": { "title": title, "body": body },
                "data": data,
                "android": { "priority": "HIGH" },
                "apns": { "headers": { "apns-priority": "10" } }
            }
        });
        let (mut refreshed, mut waited) = (false, false);
        loop {
            let token = self.access_token(refreshed).await?;
            let res = self
                .http
                .post(&self.send_url)
                .bearer_auth(token)
                .json(&message)
                .send()
                .await
                .map_err(|e| transient("FCM send", e))?;
            let status = res.status().as_u16();
            if res.status().is_success() {
                return Ok(PushOutcome::Delivered);
            }
            let wait = crate::backoff::wait_from(res.headers(), &["retry-after"], self.clock.now());
            let error: Value = res.json().await.unwrap_or(Value::Null);
            match classify(status, &error) {
                Verdict::RefreshAuth if !refreshed => refreshed = true,
                Verdict::RefreshAuth => {
                    return Err(NotifyError::Transient(
                        "FCM rejected a fresh access token".into(),
                    ));
                }
                Verdict::Dead(reason) => return Ok(PushOutcome::DeadToken(reason)),
                // FCM asks for a short pause: wait it out once, within this delivery.
                Verdict::Retry
                    if !waited
                        && matches!(status, 429 | 503)
                        && wait.is_some_and(|w| w <= MAX_INLINE_WAIT) =>
                {
                    waited = true;
                    tokio::time::sleep(wait.unwrap_or_default()).await;
                }
                // Anything longer goes back to the queue (SQS redelivers after the visibility
                // timeout); the next attempt is never sooner than FCM asked.
                Verdict::Retry => {
                    let after = wait.map_or(String::new(), |w| {
                        format!(", retry after {} s", w.as_secs())
                    });
                    return Err(NotifyError::Transient(format!(
                        "FCM answered {status}{after}"
                    )));
                }
                Verdict::Reject => {
                    return Err(NotifyError::Permanent(format!(
                        "FCM refused the message: {status} {error}"
                    )));
                }
            }
        }
    }
}

/// The longest `Retry-After` a delivery waits out itself; a longer one is left to the queue's
/// redelivery (the notifier queue's visibility timeout is longer than this).
const MAX_INLINE_WAIT: Duration = Duration::from_secs(5);

enum Verdict {
    RefreshAuth,
    Dead(String),
    Retry,
    Reject,
}

/// Maps a Google API error (FcmError code first, then `error.status`) to what the backend does.
fn classify(status: u16, error: &Value) -> Verdict {
    let err = &error["error"];
    let details = err["details"].as_array().cloned().unwrap_or_default();
    let fcm_code = details
        .iter()
        .find(|d| {
            d["@type"]
                .as_str()
                .is_some_and(|t| t.ends_with("google.firebase.fcm.v1.FcmError"))
        })
        .and_then(|d| d["errorCode"].as_str())
        .or_else(|| err["status"].as_str())
        .unwrap_or_default()
        .to_owned();
    let token_violation = details.iter().any(|d| {
        d["fieldViolations"]
            .as_array()
            .is_some_and(|v| v.iter().any(|f| f["field"] == "message.token"))
    }) || err["message"]
        .as_str()
        .is_some_and(|m| m.contains("not a valid FCM registration token"));
    match status {
        401 => Verdict::RefreshAuth,
        404 if fcm_code == "UNREGISTERED" || fcm_code == "NOT_FOUND" => Verdict::Dead(fcm_code),
        400 if token_violation => Verdict::Dead("INVALID_ARGUMENT".into()),
        403 if fcm_code == "SENDER_ID_MISMATCH" => Verdict::Dead(fcm_code),
        // Quota, overload, internal errors, and permission problems that an operator must fix: keep the message.
        403 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::Reject,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: u16, status: &str, fcm: &str) -> Value {
        json!({"error":{"code":code,"message":"x","status":status,
            "details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":fcm}]}})
    }

    #[test]
    fn dead_tokens_are_recognised_and_transient_errors_retried() {
        assert!(matches!(
            classify(404, &err(404, "NOT_FOUND", "UNREGISTERED")),
            Verdict::Dead(_)
        ));
        assert!(matches!(
            classify(403, &err(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH")),
            Verdict::Dead(_)
        ));
        let bad_token = json!({"error":{"code":400,"status":"INVALID_ARGUMENT","message":"The registration token is not a valid FCM registration token",
            "details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token","description":"Invalid registration token"}]},
                       {"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"}]}});
        assert!(matches!(classify(400, &bad_token), Verdict::Dead(_)));
        let bad_payload = json!({"error":{"code":400,"status":"INVALID_ARGUMENT","message":"Invalid data payload key: from",
            "details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.data","description":"reserved"}]}]}});
        assert!(
            matches!(classify(400, &bad_payload), Verdict::Reject),
            "a payload bug keeps the token"
        );
        assert!(matches!(
            classify(429, &err(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED")),
            Verdict::Retry
        ));
        assert!(matches!(classify(503, &Value::Null), Verdict::Retry));
        assert!(
            matches!(classify(502, &Value::Null), Verdict::Retry),
            "HTML 502 bodies are transport errors"
        );
    }
}
