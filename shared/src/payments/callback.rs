//! Xendit invoice callback: constant-time token check, validated body, invoice re-checked against
//! what we stored, then settlement through the one exactly-once path. Every receipt is logged.

use axum::extract::FromRequestParts;
use http::request::Parts;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::invoice::{self, Applied};
use super::xendit::{XStatus, de_amount, de_opt_amount};
use crate::app::App;
use crate::audit::{self, LogKind};
use crate::error::{ApiError, FieldError};

/// A request carrying the configured `x-callback-token` (compared in constant time).
#[derive(Debug, Clone, Copy)]
pub struct CallbackToken;

impl FromRequestParts<App> for CallbackToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let given = parts
            .headers
            .get("x-callback-token")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        // Without a configured token nothing is accepted (never an empty or default token).
        let accepted = match app.config.xendit_callback_token.as_ref() {
            Some(t) if !t.expose().is_empty() => bool::from(given.ct_eq(t.expose().as_bytes())),
            _ => false,
        };
        if accepted {
            Ok(CallbackToken)
        } else {
            audit::record(
                app,
                LogKind::XenditCallback,
                "unauthenticated",
                None,
                "rejected_token",
                serde_json::json!({}),
            )
            .await;
            Err(ApiError::unauthorized())
        }
    }
}

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

/// What the callback did, for the 200 answer.
pub async fn handle(app: &App, body: CallbackBody) -> Result<&'static str, ApiError> {
    let mut problems = Vec::new();
    if body.id.trim().is_empty() {
        problems.push(FieldError::new("id", "is required"));
    }
    if body.external_id.trim().is_empty() {
        problems.push(FieldError::new("external_id", "is required"));
    }
    if body.currency.as_deref().is_some_and(|c| c != "IDR") {
        problems.push(FieldError::new("currency", "must be IDR"));
    }
    let receipt = serde_json::json!({
        "xendit_id": body.id, "status": body.status, "amount": body.amount, "paid_amount": body.paid_amount,
        "paid_at": body.paid_at, "payment_method": body.payment_method, "payment_channel": body.payment_channel,
    });
    let Some(rec) = invoice::load(app, &body.external_id).await? else {
        audit::record(
            app,
            LogKind::XenditCallback,
            &body.external_id,
            None,
            "unknown_invoice",
            receipt,
        )
        .await;
        return Err(ApiError::not_found("Invoice Not Found"));
    };
    audit::record(
        app,
        LogKind::XenditCallback,
        &rec.invoice_id,
        Some(&rec.username),
        "received",
        receipt.clone(),
    )
    .await;
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    if body.id != rec.xendit_id {
        audit::record(
            app,
            LogKind::XenditCallback,
            &rec.invoice_id,
            Some(&rec.username),
            "refused_id_mismatch",
            receipt,
        )
        .await;
        return Err(ApiError::bad_request("Invoice Not Found"));
    }
    match body.status {
        XStatus::Paid | XStatus::Settled => {
            let paid = body.paid_amount.unwrap_or(body.amount);
            if paid != rec.amount || body.amount != rec.amount {
                audit::record(
                    app,
                    LogKind::XenditCallback,
                    &rec.invoice_id,
                    Some(&rec.username),
                    "refused_amount_mismatch",
                    receipt,
                )
                .await;
                return Err(ApiError::bad_request("Amount Mismatch"));
            }
            Ok(
                match invoice::settle_paid(app, &rec, body.paid_at, "callback").await? {
                    Applied::Changed => "Payment Recorded",
                    Applied::Unchanged => "Already Processed",
                },
            )
        }
        XStatus::Expired => Ok(match invoice::mark_expired(app, &rec, "callback").await? {
            Applied::Changed => "Invoice Expired",
            Applied::Unchanged => "Already Processed",
        }),
        XStatus::Pending => Ok("Ignored"),
        XStatus::Other(_) => Err(ApiError::validation(vec![FieldError::new(
            "status",
            "unknown status",
        )])),
    }
}
