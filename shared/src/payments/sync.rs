//! The Xendit sync: PENDING invoices (sparse GSI2) are checked at Xendit with bounded
//! concurrency; PAID ones are credited through the same exactly-once path as the callback, EXPIRED
//! ones are marked. Safe to run twice at once: every change is conditional.

use futures::StreamExt;
use serde::Serialize;

use super::invoice::{self, Applied, InvoiceRecord};
use crate::app::App;
use crate::audit::{self, LogKind};
use crate::error::ApiError;
use crate::store::{Query, from_item, keys, query_all, schema::GSI2};

/// How many invoices are checked at Xendit at once.
const CONCURRENCY: usize = 4;

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub checked: usize,
    pub paid: usize,
    pub expired: usize,
    pub unchanged: usize,
    pub errors: usize,
    /// Pending payouts reconciled with Xendit.
    pub payouts: super::payout::PayoutSync,
}

enum One {
    Paid,
    Expired,
    Unchanged,
    Error,
}

async fn one(app: &App, rec: InvoiceRecord) -> One {
    let x = match app.xendit.get_invoice(&rec.xendit_id).await {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(invoice_id = rec.invoice_id, error = %e, "sync: xendit lookup failed");
            return One::Error;
        }
    };
    match invoice::reconcile(app, &rec, &x, "sync").await {
        Ok(Applied::Changed) if x.status.is_paid() => One::Paid,
        Ok(Applied::Changed) => One::Expired,
        Ok(Applied::Unchanged) => One::Unchanged,
        Err(e) => {
            tracing::warn!(invoice_id = rec.invoice_id, error = %e, "sync: reconcile failed");
            One::Error
        }
    }
}

/// Runs the sync once.
pub async fn run(app: &App) -> Result<Summary, ApiError> {
    let items = query_all(
        app.main.as_ref(),
        Query::index(GSI2, keys::PENDING_INVOICES_GSI_PK),
    )
    .await?;
    let records: Vec<InvoiceRecord> = items.iter().filter_map(|i| from_item(i).ok()).collect();
    let mut summary = Summary {
        checked: records.len(),
        ..Summary::default()
    };
    let results: Vec<One> = futures::stream::iter(records)
        .map(|r| one(app, r))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for r in results {
        match r {
            One::Paid => summary.paid += 1,
            One::Expired => summary.expired += 1,
            One::Unchanged => summary.unchanged += 1,
            One::Error => summary.errors += 1,
        }
    }
    match super::payout::reconcile_pending(app).await {
        Ok(p) => summary.payouts = p,
        Err(e) => {
            tracing::warn!(error = %e, "sync: payout resubmission failed");
            summary.errors += 1;
        }
    }
    audit::record(
        app,
        LogKind::XenditSync,
        "run",
        None,
        "summary",
        serde_json::to_value(&summary).unwrap_or_default(),
    )
    .await;
    tracing::info!(?summary, "xendit sync finished");
    Ok(summary)
}

/// The `xendit-sync` function: one scheduled EventBridge event runs the sync once.
pub async fn handle_event(
    app: &App,
    event: aws_lambda_events::eventbridge::EventBridgeEvent,
) -> Result<Summary, ApiError> {
    tracing::info!(source = %event.source, "scheduled xendit sync");
    run(app).await
}
