//! The Xendit sync, bounded so it always finishes inside the sync function's timeout however much
//! is pending: every step stops starting new work at the run's deadline (`SYNC_BUDGET_SECS`, and
//! the Lambda invocation's own deadline). Order: payouts first (money leaving the wallet), then
//! points expiry (bounded and resumable), then invoices — those whose `expiry_date` has passed
//! first, then the rest in turn from where the previous run stopped, at most
//! `SYNC_MAX_INVOICES` per run. PAID ones are credited through the same exactly-once path as the
//! callback, EXPIRED ones are marked. Safe to run twice at once: every change is conditional.

use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;

use super::invoice::{self, Applied, InvoiceRecord};
use crate::app::App;
use crate::audit::{self, LogKind};
use crate::clock::Deadline;
use crate::error::ApiError;
use crate::store::walk::Walk;
use crate::store::{Item, Query, SkCond, from_item, keys, schema::GSI2};

/// How many invoices are checked at Xendit at once.
const CONCURRENCY: usize = 4;
/// Time kept back from the Lambda deadline for the summary and the answer.
const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub checked: usize,
    pub paid: usize,
    pub expired: usize,
    pub unchanged: usize,
    pub errors: usize,
    /// Pending invoices left for a later run (budget or per-run maximum reached).
    pub deferred: bool,
    /// Pending payouts reconciled with Xendit.
    pub payouts: super::payout::PayoutSync,
    /// Points expired by this run (`POINTS_EXPIRY_MONTHS`).
    pub points_expiry: crate::points::ExpirySummary,
}

enum One {
    Paid,
    Expired,
    Unchanged,
    Error,
    /// Not looked at: the budget ran out first.
    Skipped,
}

async fn one(app: &App, rec: InvoiceRecord) -> One {
    if rec.xendit_id.is_empty() {
        // A checkout still being created (or abandoned mid-way): nothing to ask Xendit by id.
        return One::Unchanged;
    }
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

/// The run's deadline: its budget, and never later than the Lambda deadline (epoch millis) minus
/// a margin.
pub fn deadline(app: &App, lambda_deadline_ms: Option<u64>) -> Deadline {
    let mut budget = Duration::from_secs(app.config.sync_budget_secs);
    if let Some(ms) = lambda_deadline_ms {
        let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        let left = Duration::from_millis(ms.saturating_sub(now_ms));
        budget = budget.min(left.saturating_sub(DEADLINE_MARGIN));
    }
    Deadline::after(budget)
}

/// Checks `items` at Xendit (bounded concurrency; none started past the deadline).
async fn check(app: &App, items: Vec<Item>, deadline: Deadline, summary: &mut Summary) -> usize {
    let records: Vec<InvoiceRecord> = items.iter().filter_map(|i| from_item(i).ok()).collect();
    let results: Vec<One> = futures::stream::iter(records)
        .map(|r| async move {
            if deadline.passed() {
                One::Skipped
            } else {
                one(app, r).await
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let mut done = 0;
    for r in results {
        match r {
            One::Paid => summary.paid += 1,
            One::Expired => summary.expired += 1,
            One::Unchanged => summary.unchanged += 1,
            One::Error => summary.errors += 1,
            One::Skipped => {
                summary.deferred = true;
                continue;
            }
        }
        summary.checked += 1;
        done += 1;
    }
    done
}

/// The invoice step: overdue invoices first (their `expiry_date` has passed, so Xendit has settled
/// or expired them), then the others in turn.
async fn invoices(app: &App, deadline: Deadline, summary: &mut Summary) -> Result<(), ApiError> {
    let max = app.config.sync_max_invoices;
    let table = app.main.as_ref();
    let now_iso = app
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // At most half the run goes to overdue invoices, so ones that keep failing at Xendit cannot
    // starve the walk through the rest.
    let overdue = table
        .query(
            Query::index(GSI2, keys::PENDING_INVOICES_GSI_PK)
                .sk(SkCond::Lt(now_iso))
                .limit(max.div_ceil(2)),
        )
        .await?;
    let n = overdue.items.len();
    let handled = check(app, overdue.items, deadline, summary).await;
    if handled < n || overdue.cursor.is_some() {
        summary.deferred = true;
    }
    let mut walk = Walk::resume(
        table,
        "xendit-sync-invoices",
        GSI2,
        "gsi2sk",
        keys::PENDING_INVOICES_GSI_PK,
    )
    .await?;
    let mut finished = true;
    while summary.checked < max && !deadline.passed() {
        let page = walk.next(table, (max - summary.checked).min(100)).await?;
        if page.is_empty() {
            break;
        }
        let n = page.len();
        let handled = check(app, page.clone(), deadline, summary).await;
        for item in page.iter().take(handled) {
            walk.handled(item);
        }
        if handled < n {
            finished = false;
            break;
        }
    }
    if summary.checked >= max || deadline.passed() {
        finished = finished && walk.reached_end();
        summary.deferred |= !finished;
    }
    walk.save(table, finished && walk.reached_end()).await?;
    Ok(())
}

/// Runs the sync once within `deadline`.
pub async fn run_until(app: &App, deadline: Deadline) -> Result<Summary, ApiError> {
    let mut summary = Summary::default();
    match super::payout::reconcile_pending(app, deadline).await {
        Ok(p) => summary.payouts = p,
        Err(e) => {
            tracing::warn!(error = %e, "sync: payout reconciliation failed");
            summary.errors += 1;
        }
    }
    match crate::points::expire(app, deadline).await {
        Ok(p) => summary.points_expiry = p,
        Err(e) => {
            tracing::warn!(error = %e.message, "sync: points expiry failed");
            summary.errors += 1;
        }
    }
    if let Err(e) = invoices(app, deadline, &mut summary).await {
        tracing::warn!(error = %e.message, "sync: invoice step failed");
        summary.errors += 1;
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

/// Runs the sync once within its configured budget (`SYNC_BUDGET_SECS`).
pub async fn run(app: &App) -> Result<Summary, ApiError> {
    run_until(app, deadline(app, None)).await
}

/// The `xendit-sync` function: one scheduled EventBridge event runs the sync once, within the
/// invocation's deadline (epoch millis).
pub async fn handle_event(
    app: &App,
    event: aws_lambda_events::eventbridge::EventBridgeEvent,
    lambda_deadline_ms: Option<u64>,
) -> Result<Summary, ApiError> {
    tracing::info!(source = %event.source, "scheduled xendit sync");
    run_until(app, deadline(app, lambda_deadline_ms)).await
}
