//! The Xendit sync, bounded so it always finishes inside the sync function's timeout however much
//! is pending: every step stops starting new work at the run's deadline (`SYNC_BUDGET_SECS`, and
//! the Lambda invocation's own deadline). Order: payouts first (money leaving the wallet), then
//! points expiry (bounded and resumable), then invoices — those whose `expiry_date` has passed
//! first, then the rest in turn from where the previous run stopped, at most
//! `SYNC_MAX_INVOICES` per run. PAID ones are credited through the same exactly-once path as the
//! callback, EXPIRED ones are marked; a checkout whose create call failed ambiguously is adopted
//! from Xendit or given up once [`CREATE_GRACE`] has passed. Invoice lookups are paced to
//! `SYNC_XENDIT_RPM`, and the client waits out a 429's `Retry-After`. Safe to run twice at once: every change is conditional.

use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;

use super::invoice::{Applied, CREATE_GRACE, InvoiceRecord, Invoices};
use super::payout::{PayoutSync, Payouts};
use super::xendit::XInvoice;
use crate::audit::{Audit, LogKind};
use crate::clock::{ClockRef, Deadline};
use crate::points::{ExpirySummary, Rewards};
use crate::store::walk::Walk;
use crate::store::{Item, Query, SkCond, StoreError, TableRef, from_item, keys, schema::GSI2};

/// How many invoices are checked at Xendit at once.
const CONCURRENCY: usize = 4;
/// Time kept back from the Lambda deadline for the summary and the answer.
const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub checked: usize,
    pub paid: usize,
    pub expired: usize,
    pub unchanged: usize,
    /// Checkouts whose create call failed ambiguously, found at Xendit and adopted.
    pub adopted: usize,
    /// Checkouts Xendit holds no invoice for, given up (EXPIRED, off the open-invoice count).
    pub abandoned: usize,
    pub errors: usize,
    /// Pending invoices left for a later run (budget or per-run maximum reached).
    pub deferred: bool,
    /// Pending payouts reconciled with Xendit.
    pub payouts: PayoutSync,
    /// Points expired by this run (`POINTS_EXPIRY_MONTHS`).
    pub points_expiry: ExpirySummary,
    /// The wallet ↔ ledger reconciliation step (scheduled runs only: never in an HTTP answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub reconcile: Option<crate::reconcile::Report>,
}

impl Summary {
    /// Every failure of the run: invoices, payouts and points expiry.
    pub fn total_errors(&self) -> usize {
        self.errors + self.payouts.errors + self.points_expiry.errors
    }

    fn count(&mut self, one: One) {
        match one {
            One::Paid => self.paid += 1,
            One::Expired => self.expired += 1,
            One::Unchanged => self.unchanged += 1,
            One::Adopted(then) => {
                self.adopted += 1;
                self.count(*then);
            }
            One::Abandoned => self.abandoned += 1,
            One::Error => self.errors += 1,
            One::Skipped => self.deferred = true,
        }
    }
}

/// Why a run failed. Every step's failure is counted in the [`Summary`] instead, so a run answers
/// one today; the error is kept for the store the run reads.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The settings of [`XenditSync`], copied out of the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncSettings {
    /// `SYNC_BUDGET_SECS`: how long one run may take.
    pub budget_secs: u64,
    /// `SYNC_MAX_INVOICES`: invoices one run checks.
    pub max_invoices: usize,
    /// `SYNC_XENDIT_RPM`: invoice lookups per minute at most (0 = unpaced).
    pub xendit_rpm: u32,
    /// `RECONCILE_MAX_WALLETS`: wallets a scheduled run reconciles (0 = none).
    pub reconcile_max_wallets: usize,
}

/// Spaces one run's Xendit lookups evenly so the run stays inside the account's per-endpoint
/// rate limit however many invoices are pending.
struct Pacer {
    gap: Duration,
    next: std::sync::Mutex<tokio::time::Instant>,
}

impl Pacer {
    fn new(per_minute: u32) -> Pacer {
        Pacer {
            gap: match per_minute {
                0 => Duration::ZERO,
                n => Duration::from_secs(60) / n,
            },
            next: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits for the next free slot.
    async fn wait(&self) {
        if self.gap.is_zero() {
            return;
        }
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let at = (*next).max(tokio::time::Instant::now());
            *next = at + self.gap;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

enum One {
    Paid,
    Expired,
    Unchanged,
    /// A checkout intent adopted, then brought in line as the inner outcome says.
    Adopted(Box<One>),
    /// A checkout intent Xendit holds nothing for, given up.
    Abandoned,
    Error,
    /// Not looked at: the budget ran out first.
    Skipped,
}

/// The Xendit sync. Cheap to clone.
#[derive(Clone)]
pub struct XenditSync {
    table: TableRef,
    clock: ClockRef,
    invoices: Invoices,
    payouts: Payouts,
    rewards: Rewards,
    audit: Audit,
    settings: SyncSettings,
}

impl XenditSync {
    /// The sync over the main table.
    pub fn new(
        table: TableRef,
        clock: ClockRef,
        invoices: Invoices,
        payouts: Payouts,
        rewards: Rewards,
        audit: Audit,
        settings: SyncSettings,
    ) -> XenditSync {
        XenditSync {
            table,
            clock,
            invoices,
            payouts,
            rewards,
            audit,
            settings,
        }
    }

    async fn one(&self, rec: InvoiceRecord) -> One {
        if rec.xendit_id.is_empty() {
            return self.intent(rec).await;
        }
        let x = match self.invoices.provider_invoice(&rec.xendit_id).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(invoice_id = rec.invoice_id, error = %e, "sync: xendit lookup failed");
                return One::Error;
            }
        };
        self.reconcile(&rec, &x).await
    }

    async fn reconcile(&self, rec: &InvoiceRecord, x: &XInvoice) -> One {
        match self.invoices.reconcile(rec, x, "sync").await {
            Ok(Applied::Changed) if x.status.is_paid() => One::Paid,
            Ok(Applied::Changed) => One::Expired,
            Ok(Applied::Unchanged) => One::Unchanged,
            Err(e) => {
                tracing::warn!(invoice_id = rec.invoice_id, error = %e, "sync: reconcile failed");
                One::Error
            }
        }
    }

    /// A checkout that never learnt its Xendit id: left alone while its create call may still
    /// be running ([`CREATE_GRACE`]), then adopted from Xendit or given up.
    async fn intent(&self, rec: InvoiceRecord) -> One {
        let started = chrono::DateTime::from_timestamp(rec.created_at, 0).unwrap_or_default();
        if self.clock.now() < started + CREATE_GRACE {
            return One::Unchanged;
        }
        match self.invoices.settle_intent(&rec).await {
            Ok(Some((adopted, x))) => One::Adopted(Box::new(self.reconcile(&adopted, &x).await)),
            Ok(None) => One::Abandoned,
            Err(e) => {
                tracing::warn!(invoice_id = rec.invoice_id, error = %e, "sync: checkout intent not settled");
                One::Error
            }
        }
    }

    /// The run's deadline: its budget, and never later than the Lambda deadline (epoch millis)
    /// minus a margin.
    pub fn deadline(&self, lambda_deadline_ms: Option<u64>) -> Deadline {
        let mut budget = Duration::from_secs(self.settings.budget_secs);
        if let Some(ms) = lambda_deadline_ms {
            let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
            let left = Duration::from_millis(ms.saturating_sub(now_ms));
            budget = budget.min(left.saturating_sub(DEADLINE_MARGIN));
        }
        Deadline::after(budget)
    }

    /// Checks `items` at Xendit (bounded concurrency, paced; none started past the deadline).
    async fn check(
        &self,
        items: Vec<Item>,
        deadline: Deadline,
        pacer: &Pacer,
        summary: &mut Summary,
    ) -> usize {
        let records: Vec<InvoiceRecord> = items.iter().filter_map(|i| from_item(i).ok()).collect();
        let results: Vec<One> = futures::stream::iter(records)
            .map(|r| async move {
                if !deadline.passed() {
                    pacer.wait().await;
                }
                if deadline.passed() {
                    One::Skipped
                } else {
                    self.one(r).await
                }
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let mut done = 0;
        for r in results {
            if matches!(r, One::Skipped) {
                summary.deferred = true;
                continue;
            }
            summary.count(r);
            summary.checked += 1;
            done += 1;
        }
        done
    }

    /// The overdue part of the invoice step: invoices whose `expiry_date` has passed (Xendit has
    /// settled or expired them), at most half the run, so ones that keep failing at Xendit cannot
    /// starve the walk through the rest.
    async fn overdue(
        &self,
        deadline: Deadline,
        pacer: &Pacer,
        summary: &mut Summary,
    ) -> Result<(), StoreError> {
        let now_iso = self
            .clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let overdue = self
            .table
            .query(
                Query::index(GSI2, keys::PENDING_INVOICES_GSI_PK)
                    .sk(SkCond::Lt(now_iso))
                    .limit(self.settings.max_invoices.div_ceil(2)),
            )
            .await?;
        let n = overdue.items.len();
        let handled = self.check(overdue.items, deadline, pacer, summary).await;
        if handled < n || overdue.cursor.is_some() {
            summary.deferred = true;
        }
        Ok(())
    }

    /// The invoice step: overdue invoices first, then the others in turn from where the previous
    /// run stopped.
    async fn invoices(&self, deadline: Deadline, summary: &mut Summary) -> Result<(), StoreError> {
        let max = self.settings.max_invoices;
        let table = self.table.as_ref();
        let pacer = Pacer::new(self.settings.xendit_rpm);
        self.overdue(deadline, &pacer, summary).await?;
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
            let handled = self.check(page.clone(), deadline, &pacer, summary).await;
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
    pub async fn run_until(&self, deadline: Deadline) -> Result<Summary, SyncError> {
        let mut summary = Summary::default();
        match self.payouts.reconcile_pending(deadline).await {
            Ok(p) => summary.payouts = p,
            Err(e) => {
                tracing::warn!(error = %e, "sync: payout reconciliation failed");
                summary.errors += 1;
            }
        }
        match self.rewards.expire(deadline).await {
            Ok(p) => summary.points_expiry = p,
            Err(e) => {
                tracing::warn!(error = %e, "sync: points expiry failed");
                summary.errors += 1;
            }
        }
        if let Err(e) = self.invoices(deadline, &mut summary).await {
            tracing::warn!(error = %e, "sync: invoice step failed");
            summary.errors += 1;
        }
        self.audit
            .record(
                LogKind::XenditSync,
                "run",
                None,
                "summary",
                serde_json::to_value(&summary).unwrap_or_default(),
            )
            .await;
        match summary.total_errors() {
            0 => tracing::info!(?summary, "xendit sync finished"),
            // Feeds the `SyncStepErrors` alarm: the run itself succeeded, some steps did not.
            n => tracing::error!(
                ?summary,
                errors = n,
                "sync_step_errors: xendit sync finished with errors"
            ),
        }
        Ok(summary)
    }

    /// Runs the sync once within its configured budget (`SYNC_BUDGET_SECS`).
    pub async fn run(&self) -> Result<Summary, SyncError> {
        self.run_until(self.deadline(None)).await
    }

    /// The `xendit-sync` function: one scheduled EventBridge event runs the sync once, within the
    /// invocation's deadline (epoch millis).
    pub async fn handle_event(
        &self,
        event: aws_lambda_events::eventbridge::EventBridgeEvent,
        lambda_deadline_ms: Option<u64>,
    ) -> Result<Summary, SyncError> {
        tracing::info!(source = %event.source, "scheduled xendit sync");
        let deadline = self.deadline(lambda_deadline_ms);
        let mut summary = self.run_until(deadline).await?;
        self.reconcile_wallets(deadline, &mut summary).await;
        Ok(summary)
    }

    /// The reconciliation step of a scheduled run, with what is left of its budget.
    async fn reconcile_wallets(&self, deadline: Deadline, summary: &mut Summary) {
        let max_wallets = self.settings.reconcile_max_wallets;
        if max_wallets == 0 {
            return;
        }
        let reconciler = crate::reconcile::Reconciler::new(
            self.table.clone(),
            self.clock.clone(),
            self.audit.clone(),
        );
        let budget = crate::reconcile::Budget {
            max_wallets,
            deadline,
        };
        match reconciler.run(budget).await {
            Ok(report) => {
                tracing::info!(
                    checked = report.checked,
                    mismatches = report.mismatches.len(),
                    pass_complete = report.pass_complete,
                    "reconciliation step finished"
                );
                summary.reconcile = Some(report);
            }
            Err(e) => {
                summary.errors += 1;
                tracing::error!(error = %e, "sync_step_errors: reconciliation step failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_errors_counts_every_step() {
        let mut s = Summary::default();
        assert_eq!(s.total_errors(), 0);
        s.errors = 1;
        s.payouts.errors = 2;
        s.points_expiry.errors = 3;
        assert_eq!(s.total_errors(), 6);
    }

    #[tokio::test]
    async fn the_pacer_spaces_calls_to_the_rate() {
        // 600 a minute: one slot every 100 ms, the first at once.
        let pacer = Pacer::new(600);
        let started = tokio::time::Instant::now();
        for _ in 0..4 {
            pacer.wait().await;
        }
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        assert!(Pacer::new(0).gap.is_zero());
    }
}
