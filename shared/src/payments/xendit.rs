//! Xendit client (invoices and banks), `reqwest` with the secret key as Basic user and a bounded
//! timeout. Wire format: integrations.md §1–3. Failures are [`XenditError`]s (the HTTP layer
//! answers provider failures with 502 envelopes).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::config::{Config, Secret};

/// An invoice status at Xendit (unknown values are kept as they came).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum XStatus {
    Pending,
    Paid,
    Settled,
    Expired,
    #[serde(untagged)]
    Other(String),
}

impl XStatus {
    /// PAID and SETTLED both mean the payer paid.
    pub fn is_paid(&self) -> bool {
        matches!(self, XStatus::Paid | XStatus::Settled)
    }
}

/// Parses a JSON amount given as `50000` or `50000.0`; fractional amounts are refused.
pub fn de_amount<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    whole(&n).ok_or_else(|| serde::de::Error::custom(format!("amount {n} is not a whole number")))
}

/// Like [`de_amount`] for an optional field.
pub fn de_opt_amount<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => whole(&n)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("amount {n} is not whole"))),
    }
}

fn whole(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    // Amounts are far below 2^53, where f64 holds integers exactly.
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// The parts of Xendit's Invoice object we use; the rest is kept in `extra`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct XInvoice {
    pub id: String,
    pub external_id: String,
    pub status: XStatus,
    #[serde(deserialize_with = "de_amount")]
    pub amount: i64,
    #[serde(default)]
    pub invoice_url: String,
    #[serde(default)]
    pub expiry_date: String,
    #[serde(default)]
    pub paid_at: Option<String>,
    #[serde(default, deserialize_with = "de_opt_amount")]
    pub paid_amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    /// Xendit's other fields, as it sent them.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// `POST /v2/invoices` request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateInvoice {
    pub external_id: String,
    pub amount: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_duration: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_methods: Option<Vec<String>>,
}

/// The destination of a payout (`channel_properties`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PayoutDestination {
    pub account_number: String,
    pub account_holder_name: String,
}

/// `POST /v2/payouts` request (integrations.md §4.4; xendit-go `payout.CreatePayoutRequest`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreatePayout {
    /// Our payout id.
    pub reference_id: String,
    /// Country-prefixed channel, e.g. `ID_BCA`, `ID_OVO`.
    pub channel_code: String,
    pub channel_properties: PayoutDestination,
    pub amount: i64,
    pub currency: String,
    pub description: String,
}

/// A payout as Xendit answers it (`GetPayouts200ResponseDataInner`; the account number is kept
/// out of our types).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct XPayout {
    pub id: String,
    pub reference_id: String,
    #[serde(deserialize_with = "de_amount")]
    pub amount: i64,
    #[serde(default)]
    pub channel_code: String,
    /// `ACCEPTED`, `REQUESTED`, `PENDING_COMPLIANCE_ASSESSMENT`, `SUCCEEDED`, `FAILED`,
    /// `CANCELLED`, `COMPLIANCE_REJECTED`, `REVERSED`, ...
    pub status: String,
    #[serde(default)]
    pub failure_code: Option<String>,
}

/// `GET /v2/payouts?reference_id=` answer.
#[derive(Deserialize)]
struct PayoutList {
    data: Vec<XPayout>,
}

/// One bank of `GET /available_disbursements_banks`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct XBank {
    pub name: String,
    pub code: String,
    #[serde(default)]
    pub can_disburse: bool,
    #[serde(default)]
    pub can_name_validate: bool,
}

/// Xendit's error body.
#[derive(Clone, Debug, Default, Deserialize)]
struct XErrorBody {
    #[serde(default)]
    error_code: String,
    #[serde(default)]
    message: String,
}

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum XenditError {
    /// Timeout, transport failure, 5xx or an unreadable answer: the provider is unavailable, and
    /// the request may or may not have been carried out ([`XenditError::is_ambiguous`]).
    #[error("xendit unavailable: {0}")]
    Unavailable(String),
    /// 429 `RATE_LIMIT_EXCEEDED` after the client's own retries: the request was not carried out.
    #[error("xendit rate limit exceeded")]
    RateLimited,
    /// The object does not exist (404).
    #[error("xendit: not found")]
    NotFound,
    /// Our credentials were refused (401/403): a configuration problem.
    #[error("xendit refused our credentials: {0}")]
    Auth(String),
    /// Xendit refused the request (other 4xx).
    #[error("xendit rejected the request: {status} {code}: {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
}

impl XenditError {
    /// Whether the request may have been carried out although it failed (a timeout, a lost
    /// connection, a 5xx): the caller must read back what Xendit holds before it gives up.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, XenditError::Unavailable(_))
    }
}

/// How often a 429 is retried before [`XenditError::RateLimited`] is returned.
const RATE_LIMIT_RETRIES: u32 = 2;
/// The longest `Retry-After` the client waits out; a longer one fails at once.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// The wait a 429 asks for: `Retry-After`, else `Rate-Limit-Reset` (the seconds left in Xendit's
/// window, fractional: docs.xendit.co/apidocs/rate-limits), else one second.
fn retry_after(res: &reqwest::Response) -> Duration {
    crate::backoff::wait_from(
        res.headers(),
        &["retry-after", "rate-limit-reset"],
        chrono::Utc::now(),
    )
    .unwrap_or(Duration::from_secs(1))
}

/// The Xendit client. Cheap to clone.
#[derive(Clone)]
pub struct Xendit {
    /// Built on first use: every function assembles an `App`, most never call Xendit, and
    /// building the HTTP client (TLS stack, root certificates) at init would cost them start time
    /// and, through the linker, binary size.
    http: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
    timeout_ms: u64,
    base: String,
    /// `None` only where the function does not call Xendit (its requests then fail as
    /// unauthenticated); the functions that do require the key at start.
    key: Option<Secret>,
}

impl Xendit {
    /// A client for the configured base URL, secret key and timeout.
    pub fn new(config: &Config) -> Xendit {
        Xendit {
            http: Default::default(),
            timeout_ms: config.xendit_timeout_ms,
            base: config.xendit_base_url.trim_end_matches('/').to_owned(),
            key: config.xendit_secret_key.clone(),
        }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_millis(self.timeout_ms))
                .connect_timeout(Duration::from_millis(self.timeout_ms.min(5_000)))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new())
        })
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http()
            .request(method, format!("{}{path}", self.base))
            .basic_auth(self.key.as_ref().map_or("", Secret::expose), Some(""))
    }

    /// Sends `rb`; a 429 is retried up to [`RATE_LIMIT_RETRIES`] times after the `Retry-After`
    /// Xendit gives (a rate-limited request was not carried out, so the retry is safe).
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        rb: reqwest::RequestBuilder,
    ) -> Result<T, XenditError> {
        let mut retries = 0;
        let res = loop {
            let res = rb_send(&rb).await?;
            if res.status().as_u16() != 429 {
                break res;
            }
            let wait = retry_after(&res);
            if retries == RATE_LIMIT_RETRIES || wait > MAX_RETRY_AFTER {
                tracing::warn!(retries, ?wait, "xendit rate limit: giving up");
                return Err(XenditError::RateLimited);
            }
            tracing::info!(?wait, "xendit rate limit: retrying after Retry-After");
            tokio::time::sleep(wait).await;
            retries += 1;
        };
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|_| XenditError::Unavailable("body read failed".into()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| XenditError::Unavailable(format!("unreadable answer: {e}")));
        }
        let body: XErrorBody = serde_json::from_slice(&bytes).unwrap_or_default();
        Err(match status.as_u16() {
            404 => XenditError::NotFound,
            401 | 403 => XenditError::Auth(body.error_code),
            429 => XenditError::RateLimited,
            s if status.is_server_error() => XenditError::Unavailable(format!("HTTP {s}")),
            s => XenditError::Rejected {
                status: s,
                code: body.error_code,
                message: body.message,
            },
        })
    }

    /// `POST /v2/invoices`.
    pub async fn create_invoice(&self, req: &CreateInvoice) -> Result<XInvoice, XenditError> {
        self.send(self.req(reqwest::Method::POST, "/v2/invoices").json(req))
            .await
    }

    /// `GET /v2/invoices/{id}`.
    pub async fn get_invoice(&self, xendit_id: &str) -> Result<XInvoice, XenditError> {
        self.send(self.req(
            reqwest::Method::GET,
            &format!("/v2/invoices/{}", seg(xendit_id)),
        ))
        .await
    }

    /// `GET /v2/invoices?external_id=…` (Xendit may hold several invoices per external id).
    pub async fn list_invoices(
        &self,
        external_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<XInvoice>, XenditError> {
        let mut q: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        if let Some(e) = external_id {
            q.push(("external_id", e.to_owned()));
        }
        self.send(self.req(reqwest::Method::GET, "/v2/invoices").query(&q))
            .await
    }

    /// `POST /invoices/{id}/expire!`.
    pub async fn expire_invoice(&self, xendit_id: &str) -> Result<XInvoice, XenditError> {
        self.send(self.req(
            reqwest::Method::POST,
            &format!("/invoices/{}/expire!", seg(xendit_id)),
        ))
        .await
    }

    /// `POST /v2/payouts` with the (required) `Idempotency-key` header.
    pub async fn create_payout(
        &self,
        req: &CreatePayout,
        idempotency_key: &str,
    ) -> Result<XPayout, XenditError> {
        let rb = self
            .req(reqwest::Method::POST, "/v2/payouts")
            .header("idempotency-key", idempotency_key)
            .json(req);
        self.send(rb).await
    }

    /// `GET /v2/payouts?reference_id=…` (`{data: [...], has_more, links}`).
    pub async fn payouts_by_reference(
        &self,
        reference_id: &str,
    ) -> Result<Vec<XPayout>, XenditError> {
        let rb = self
            .req(reqwest::Method::GET, "/v2/payouts")
            .query(&[("reference_id", reference_id)]);
        Ok(self.send::<PayoutList>(rb).await?.data)
    }

    /// `GET /available_disbursements_banks`.
    pub async fn available_banks(&self) -> Result<Vec<XBank>, XenditError> {
        self.send(self.req(reqwest::Method::GET, "/available_disbursements_banks"))
            .await
    }
}

/// Sends one copy of a request (every request we build has a JSON or empty body, so it can be
/// copied).
async fn rb_send(rb: &reqwest::RequestBuilder) -> Result<reqwest::Response, XenditError> {
    let Some(rb) = rb.try_clone() else {
        return Err(XenditError::Unavailable("request not repeatable".into()));
    };
    rb.send().await.map_err(|e| {
        XenditError::Unavailable(if e.is_timeout() {
            "timeout".into()
        } else {
            "transport error".into()
        })
    })
}

/// Keeps an id to one safe path segment (ids are ours or Xendit's hex ids).
fn seg(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect()
}
