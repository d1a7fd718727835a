//! The money reconciliation: proves, for every user, that the wallet's `balance` equals the sum
//! of their ledger and `points` the sum of their points ledger. A pass scans every `WALLET` item
//! in bounded pages; a run does at most `max_wallets` (or stops at its deadline) and keeps its
//! cursor in the main table (`JOB#reconcile` / `CURSOR`), so the next run resumes where it
//! stopped and a pass over millions of users spreads over many runs. A mismatch is written to
//! the logs table (`AUDIT#reconcile`, event `wallet_mismatch`) and logged at error with the stable
//! marker `wallet reconciliation mismatch`, which the template's metric filter and alarm watch.
//! It never writes a wallet, a ledger or a points entry: fixing money is a person's decision
//! (docs/OPERATIONS.md, runbook "A wallet does not match its ledger").
//!
//! A wallet and its ledger change together in one transaction that also bumps the wallet's
//! `version`, so the check reads the ledgers between two reads of the wallet (the scan's, then
//! the one in the partition Query, which reads the wallet item after the ledger items): when the
//! version did not move, the sums belong to that wallet; when it did (a payment landed
//! meanwhile), the user is checked again, and after three moving attempts left for the next pass
//! (`busy`). Cost: one Scan page per 100 items of the table and one Query per user.

use serde::Serialize;

use crate::audit::{Audit, LogKind};
use crate::clock::{ClockRef, Deadline};
use crate::domain::account::{Username, WalletRecord};
use crate::store::{Key, Scan, StoreError, TableRef, from_item, to_item};
use crate::wallet::Wallets;

/// Wallets evaluated per scan page.
const PAGE: usize = 100;
/// Attempts at a consistent read of a wallet that keeps changing.
const ATTEMPTS: usize = 3;

/// The log line marker the template's metric filter counts.
pub const MISMATCH_MARKER: &str = "wallet reconciliation mismatch";

/// One user whose wallet does not match its ledgers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub username: String,
    pub balance: i64,
    pub ledger_sum: i64,
    pub points: i64,
    pub points_ledger_sum: i64,
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Wallets checked by this run.
    pub checked: usize,
    pub mismatches: Vec<Mismatch>,
    /// Wallets that changed under every attempt (checked again by the next pass).
    pub busy: usize,
    /// A pass ended in this run (the next run starts a new one).
    pub pass_complete: bool,
    /// The run started from a previous run's cursor.
    pub resumed: bool,
}

/// The stored position of the current pass.
#[derive(serde::Serialize, serde::Deserialize)]
struct CursorRecord {
    pk: String,
    sk: String,
    cursor: String,
}

fn cursor_key() -> Key {
    Key::new("JOB#reconcile", "CURSOR")
}

/// Bounds of one run.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub max_wallets: usize,
    pub deadline: Deadline,
}

/// The reconciliation job over the main table and the logs table.
#[derive(Clone)]
pub struct Reconciler {
    main: TableRef,
    wallets: Wallets,
    audit: Audit,
}

impl Reconciler {
    pub fn new(main: TableRef, clock: ClockRef, audit: Audit) -> Reconciler {
        Reconciler {
            wallets: Wallets::new(main.clone(), clock),
            main,
            audit,
        }
    }

    /// One run: resumes the current pass, checks up to the budget, stores where it stopped.
    pub async fn run(&self, budget: Budget) -> Result<Report, StoreError> {
        let mut cursor = match self.main.get(&cursor_key()).await? {
            Some(item) => Some(from_item::<CursorRecord>(&item)?.cursor),
            None => None,
        };
        let mut report = Report {
            resumed: cursor.is_some(),
            ..Report::default()
        };
        while report.checked < budget.max_wallets && !budget.deadline.passed() {
            let page = self
                .main
                .scan(Scan {
                    sk: "WALLET".into(),
                    limit: PAGE.min(budget.max_wallets - report.checked).max(1),
                    cursor: cursor.clone(),
                })
                .await?;
            for item in &page.items {
                let wallet: WalletRecord = from_item(item)?;
                self.check(&wallet, &mut report).await?;
            }
            cursor = page.cursor;
            if cursor.is_none() {
                report.pass_complete = true;
                break;
            }
        }
        match &cursor {
            Some(c) => {
                let k = cursor_key();
                let rec = CursorRecord {
                    pk: k.pk,
                    sk: k.sk,
                    cursor: c.clone(),
                };
                self.main.put(to_item(&rec)?, None).await?;
            }
            None => {
                self.main.delete(&cursor_key(), None).await?;
            }
        }
        Ok(report)
    }

    /// Checks one user: the scan's (consistent) read of the wallet, then one Query of the
    /// user's partition. When the wallet's version is the same in both, no change committed in
    /// between and the ledgers read belong to that wallet; otherwise the wallet is read again and
    /// the check repeated.
    async fn check(&self, seen: &WalletRecord, report: &mut Report) -> Result<(), StoreError> {
        let Some(name) = seen.pk.strip_prefix("USER#") else {
            return Ok(());
        };
        let user = Username::from_stored(name);
        let mut before = seen.clone();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                before = self.wallets.read(&user).await?;
            }
            let view = self.wallets.ledgers_view(&user).await?;
            let Some(wallet) = view.wallet.filter(|w| w.version == before.version) else {
                continue;
            };
            report.checked += 1;
            if wallet.balance != view.ledger_sum || wallet.points != view.points_ledger_sum {
                let m = Mismatch {
                    username: name.to_owned(),
                    balance: wallet.balance,
                    ledger_sum: view.ledger_sum,
                    points: wallet.points,
                    points_ledger_sum: view.points_ledger_sum,
                };
                self.report(&m).await;
                report.mismatches.push(m);
            }
            return Ok(());
        }
        report.busy += 1;
        Ok(())
    }

    async fn report(&self, m: &Mismatch) {
        tracing::error!(
            target: "reconcile",
            username = %m.username,
            balance = m.balance,
            ledger_sum = m.ledger_sum,
            points = m.points,
            points_ledger_sum = m.points_ledger_sum,
            "{MISMATCH_MARKER}"
        );
        let data = serde_json::to_value(m).unwrap_or_default();
        self.audit
            .record(
                LogKind::Audit,
                "reconcile",
                Some(&m.username),
                "wallet_mismatch",
                data,
            )
            .await;
    }
}
