//! Xendit invoice callback: constant-time token check, validated body, invoice re-checked against
//! what we stored, then settlement through the one exactly-once path. Every receipt is logged.

use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::invoice::{Applied, InvoiceRecord, Invoices, SettleError, paid_as_billed};
use super::xendit::{XStatus, XenditError, de_amount, de_opt_amount};
use crate::audit::{Audit, LogKind};
use crate::config::Secret;
use crate::store::StoreError;

/// The callback fields we act on (integrations.md §3); others are ignored.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
pub struct CallbackBody {
    pub id: String,
    pub external_id: String,
    pub status: XStatus,
    #[serde(deserialize_with = "de_amount")]
    pub amount: i64,
    #[serde(default, deserialize_with = "de_opt_amount")]
    pub paid_amount: Option<i64>,
    #[serde(default)]
    pub paid_at: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub payment_method: Option<String>,
    #[serde(default)]
    pub payment_channel: Option<String>,
}

/// One problem with a callback body's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackProblem {
    /// `id` is empty.
    MissingId,
    /// `external_id` is empty.
    MissingExternalId,
    /// `currency` is given and is not IDR.
    NotIdr,
}

/// Why a callback was not processed. Only these answer non-2xx, so Xendit retries them: a
/// malformed body (which no retry mends, but which Xendit never sends: it shows up as a failed
/// delivery in its dashboard), and failures a retry can cure (our storage, or Xendit's own API
/// when an adoption must be verified there).
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// The body's fields are invalid.
    #[error("invalid callback: {0:?}")]
    Invalid(Vec<CallbackProblem>),
    /// An invoice to adopt could not be verified at Xendit.
    #[error(transparent)]
    Xendit(#[from] XenditError),
    #[error(transparent)]
    Settle(#[from] SettleError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a callback did. Every outcome answers 200 (Xendit stops retrying); the ones that change
/// nothing leave an audit entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// The payment was credited.
    Recorded,
    /// The invoice expired.
    Expired,
    /// Already in that state: nothing changed.
    AlreadyProcessed,
    /// A PENDING status, or a status we do not know (audit `ignored_status`): nothing to do.
    Ignored,
    /// Paid, but not as billed: held for review, nothing credited (audit `amount_mismatch`).
    AmountMismatch,
    /// No invoice of ours has that `external_id`, or Xendit does not hold the reported invoice
    /// (audit `unknown_invoice`): logged, nothing changed.
    Unknown,
    /// The reported Xendit invoice is not the one we hold for that `external_id` (audit
    /// `refused_id_mismatch`): nothing changed.
    IdMismatch,
}

/// What Xendit reports about an invoice: the callback's fields, or its own API's answer.
struct Report {
    status: XStatus,
    amount: i64,
    paid_amount: Option<i64>,
    paid_at: Option<String>,
}

/// The problems of a callback body's fields (pure).
fn problems(body: &CallbackBody) -> Vec<CallbackProblem> {
    let mut problems = Vec::new();
    if body.id.trim().is_empty() {
        problems.push(CallbackProblem::MissingId);
    }
    if body.external_id.trim().is_empty() {
        problems.push(CallbackProblem::MissingExternalId);
    }
    if body.currency.as_deref().is_some_and(|c| c != "IDR") {
        problems.push(CallbackProblem::NotIdr);
    }
    problems
}

/// The Xendit callbacks' gate and the invoice callback. Cheap to clone.
#[derive(Clone)]
pub struct Callbacks {
    invoices: Invoices,
    audit: Audit,
    /// `XENDIT_CALLBACK_TOKEN`; without one nothing is accepted.
    token: Option<Secret>,
    /// `XENDIT_CALLBACK_TOKEN_PREVIOUS`, accepted too while Xendit switches tokens.
    previous: Option<Secret>,
}

impl Callbacks {
    /// The callbacks, accepting `token`.
    pub fn new(invoices: Invoices, audit: Audit, token: Option<Secret>) -> Callbacks {
        Callbacks {
            invoices,
            audit,
            token,
            previous: None,
        }
    }

    /// Also accepts `previous` (a token being rotated out).
    pub fn with_previous(mut self, previous: Option<Secret>) -> Callbacks {
        self.previous = previous;
        self
    }

    /// Whether `given` is the configured `x-callback-token` (compared in constant time). Without
    /// a configured token nothing is accepted (never an empty or default token).
    pub fn accepts(&self, given: &[u8]) -> bool {
        let matches = |t: Option<&Secret>| match t {
            Some(t) if !t.expose().is_empty() => bool::from(given.ct_eq(t.expose().as_bytes())),
            _ => false,
        };
        // Both compared, so the time taken does not tell which one matched.
        let current = matches(self.token.as_ref());
        let previous = self.token.is_some() && matches(self.previous.as_ref());
        current | previous
    }

    /// Logs a callback refused for its token (the warning feeds the `CallbackTokenRejected`
    /// alarm; the token itself is never logged).
    pub async fn log_rejected_token(&self) {
        crate::metrics::emit(crate::metrics::Metric::CallbackRejected);
        tracing::warn!(
            "callback_token_rejected: a Xendit callback came without the right x-callback-token"
        );
        self.audit
            .record(
                LogKind::XenditCallback,
                "unauthenticated",
                None,
                "rejected_token",
                serde_json::json!({}),
            )
            .await;
    }

    async fn log(
        &self,
        subject: &str,
        username: Option<&str>,
        event: &str,
        receipt: serde_json::Value,
    ) {
        self.audit
            .record(LogKind::XenditCallback, subject, username, event, receipt)
            .await;
    }

    /// Handles an invoice callback: logged on receipt, checked against the stored invoice, then
    /// settled or expired exactly once. A checkout whose create answer was lost (stored without
    /// a Xendit id) is adopted after Xendit's API confirms the invoice is the one billed.
    pub async fn handle(&self, body: CallbackBody) -> Result<CallbackOutcome, CallbackError> {
        let outcome = self.settle_callback(body).await;
        match outcome {
            Ok(CallbackOutcome::Unknown) => {
                crate::metrics::emit(crate::metrics::Metric::CallbackUnknown)
            }
            Ok(CallbackOutcome::AlreadyProcessed) => {
                crate::metrics::emit(crate::metrics::Metric::CallbackDuplicate)
            }
            _ => {}
        }
        outcome
    }

    async fn settle_callback(&self, body: CallbackBody) -> Result<CallbackOutcome, CallbackError> {
        let problems = problems(&body);
        let receipt = serde_json::json!({
            "xendit_id": body.id, "status": body.status, "amount": body.amount, "paid_amount": body.paid_amount,
            "paid_at": body.paid_at, "payment_method": body.payment_method, "payment_channel": body.payment_channel,
        });
        let Some(rec) = self.invoices.load(&body.external_id).await? else {
            tracing::error!(
                external_id = body.external_id,
                xendit_id = body.id,
                "callback for an invoice we do not hold"
            );
            self.log(&body.external_id, None, "unknown_invoice", receipt)
                .await;
            return Ok(CallbackOutcome::Unknown);
        };
        let user = Some(rec.username.as_str());
        self.log(&rec.invoice_id, user, "received", receipt.clone())
            .await;
        if !problems.is_empty() {
            return Err(CallbackError::Invalid(problems));
        }
        if rec.xendit_id.is_empty() {
            return self.adopt(rec, &body.id, receipt).await;
        }
        if body.id != rec.xendit_id {
            self.log(&rec.invoice_id, user, "refused_id_mismatch", receipt)
                .await;
            return Ok(CallbackOutcome::IdMismatch);
        }
        let report = Report {
            status: body.status,
            amount: body.amount,
            paid_amount: body.paid_amount,
            paid_at: body.paid_at,
        };
        self.apply(&rec, report, receipt).await
    }

    /// Adopts the invoice `xendit_id` for the intent `rec` when Xendit's API holds it under our
    /// `external_id` at the billed amount, then applies what the API (not the callback body)
    /// reports.
    async fn adopt(
        &self,
        rec: InvoiceRecord,
        xendit_id: &str,
        receipt: serde_json::Value,
    ) -> Result<CallbackOutcome, CallbackError> {
        let user = Some(rec.username.as_str());
        let x = match self.invoices.provider_invoice(xendit_id).await {
            Ok(x) => x,
            Err(XenditError::NotFound) => {
                self.log(&rec.invoice_id, user, "unknown_invoice", receipt)
                    .await;
                return Ok(CallbackOutcome::Unknown);
            }
            Err(e) => return Err(e.into()),
        };
        let Some(adopted) = self.invoices.adopt_matching(&rec, &x).await? else {
            self.log(&rec.invoice_id, user, "refused_id_mismatch", receipt)
                .await;
            return Ok(CallbackOutcome::IdMismatch);
        };
        self.log(&rec.invoice_id, user, "adopted", receipt.clone())
            .await;
        let report = Report {
            status: x.status,
            amount: x.amount,
            paid_amount: x.paid_amount,
            paid_at: x.paid_at,
        };
        self.apply(&adopted, report, receipt).await
    }

    /// Settles or expires `rec` as `report` says, exactly once.
    async fn apply(
        &self,
        rec: &InvoiceRecord,
        report: Report,
        receipt: serde_json::Value,
    ) -> Result<CallbackOutcome, CallbackError> {
        let changed = |a: Applied, then: CallbackOutcome| match a {
            Applied::Changed => then,
            Applied::Unchanged => CallbackOutcome::AlreadyProcessed,
        };
        match report.status {
            XStatus::Paid | XStatus::Settled => {
                // Answered 2xx: Xendit's retries cannot change the amounts, and the sync
                // applies the same rule, so nothing credits the invoice until an operator acts.
                if !paid_as_billed(rec, report.amount, report.paid_amount) {
                    let a = self
                        .invoices
                        .hold_mismatch(rec, report.amount, report.paid_amount, "callback")
                        .await?;
                    return Ok(changed(a, CallbackOutcome::AmountMismatch));
                }
                let a = self
                    .invoices
                    .settle_paid(rec, report.paid_at, "callback")
                    .await?;
                Ok(changed(a, CallbackOutcome::Recorded))
            }
            XStatus::Expired => {
                let a = self.invoices.mark_expired(rec, "callback").await?;
                Ok(changed(a, CallbackOutcome::Expired))
            }
            XStatus::Pending => Ok(CallbackOutcome::Ignored),
            XStatus::Other(_) => {
                let user = Some(rec.username.as_str());
                self.log(&rec.invoice_id, user, "ignored_status", receipt)
                    .await;
                Ok(CallbackOutcome::Ignored)
            }
        }
    }
}
