//! Writing a plan through the `Table` port: every item with a condition (absent, or already
//! identical), one transaction per chunk, the user's core chunk (with its progress marker) last;
//! then the reconciliation report.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;

use super::plan::{BadRow, Global, Plan, UserPlan};
use shared::App;
use shared::store::{Cond, Item, Key, StoreError, TxOp, Update, get_n, get_s, keys};

/// Users imported concurrently by default.
const PARALLEL: usize = 16;
const ATTEMPTS: usize = 30;

/// Options of one run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Read and compare only; write nothing.
    pub dry_run: bool,
    /// Print a progress line on stderr every this many users (0 = never).
    pub progress_every: usize,
    /// Users written concurrently (0 = the default, 16). Use 1 against the moto emulator, which
    /// fails concurrent transactions.
    pub parallel: usize,
}

/// Balance reconciliation: Postgres sums against the store, over the users imported.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// Sum of every non-negative whole-rupiah `user_balance.balance` row in the source.
    pub source_all_rows: i64,
    /// Sum of `user_balance.balance` of the users this import covers (planned, not skipped).
    pub source_imported_users: i64,
    /// Sum of the WALLET balances of those users in the store after the run.
    pub store_imported_users: i64,
    /// Sum of the wallet ledgers of those users (credits minus debits).
    pub store_ledger_imported_users: i64,
    pub source_points_imported_users: i64,
    pub store_points_imported_users: i64,
    /// True when source and store agree (balances, ledgers, points).
    pub equal: bool,
}

/// The reconciliation report (`--report FILE` writes it as JSON).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub rows_read: std::collections::BTreeMap<String, usize>,
    /// Items written (in a dry run: items that would be written).
    pub items_written: u64,
    /// Items found already present and identical.
    pub items_already_present: u64,
    pub users_planned: usize,
    /// Users written by this run.
    pub users_imported: u64,
    /// Users an earlier run had completed (progress marker present, same content).
    pub users_already_imported: u64,
    /// Global items (offers, banks, payment types, API keys, counters) written.
    pub globals_written: u64,
    /// Rows refused or changed on the way, with the reason.
    pub bad_rows: Vec<BadRow>,
    pub adjustments: Vec<BadRow>,
    /// Items or users that could not be written because the target holds something different.
    pub conflicts: Vec<BadRow>,
    pub balances: Totals,
}

impl Report {
    /// A short human summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "import{}: {} users planned, {} imported now, {} already imported, {} conflicts\n",
            if self.dry_run { " (dry run)" } else { "" },
            self.users_planned,
            self.users_imported,
            self.users_already_imported,
            self.conflicts.len()
        ));
        s.push_str(&format!(
            "items written: {}{}, already present: {}, global items written: {}\n",
            self.items_written,
            if self.dry_run { " (would be)" } else { "" },
            self.items_already_present,
            self.globals_written
        ));
        s.push_str("rows read:");
        for (t, n) in &self.rows_read {
            s.push_str(&format!(" {t}={n}"));
        }
        s.push('\n');
        s.push_str(&format!(
            "bad rows: {}, adjusted rows: {}\n",
            self.bad_rows.len(),
            self.adjustments.len()
        ));
        for b in &self.bad_rows {
            s.push_str(&format!(
                "  {} {}: {} -> {}\n",
                b.table, b.key, b.reason, b.action
            ));
        }
        for b in &self.conflicts {
            s.push_str(&format!(
                "  CONFLICT {} {}: {} -> {}\n",
                b.table, b.key, b.reason, b.action
            ));
        }
        let t = &self.balances;
        s.push_str(&format!(
            "balance total: source {} (all rows {}), store {}, ledger {}; points: source {}, store {} -> {}\n",
            t.source_imported_users,
            t.source_all_rows,
            t.store_imported_users,
            t.store_ledger_imported_users,
            t.source_points_imported_users,
            t.store_points_imported_users,
            if t.equal { "EQUAL" } else { "MISMATCH" }
        ));
        s
    }
}

/// Why an import could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

#[derive(Default)]
struct Counters {
    written: AtomicU64,
    present: AtomicU64,
    imported: AtomicU64,
    already: AtomicU64,
    done: AtomicU64,
}

enum UserOutcome {
    Imported,
    Already,
    Conflict(BadRow),
}

fn conflict(table: &str, key: &Key, reason: impl ToString, action: &str) -> BadRow {
    BadRow {
        table: table.into(),
        key: format!("{}/{}", key.pk, key.sk),
        reason: reason.to_string(),
        action: action.into(),
    }
}

/// Writes `items` in one transaction, each only if absent; items already present and identical
/// are dropped and the rest retried. `Err(key)` names an item present with other content.
async fn write_chunk(
    app: &App,
    mut items: Vec<Item>,
    dry_run: bool,
    c: &Counters,
) -> Result<Result<(), Key>, StoreError> {
    if dry_run {
        for it in items {
            let k = Key::of(&it)?;
            match app.main.get(&k).await? {
                None => c.written.fetch_add(1, Ordering::Relaxed),
                Some(cur) if cur == it => c.present.fetch_add(1, Ordering::Relaxed),
                Some(_) => return Ok(Err(k)),
            };
        }
        return Ok(Ok(()));
    }
    for attempt in 0..ATTEMPTS {
        if items.is_empty() {
            return Ok(Ok(()));
        }
        let ops: Vec<TxOp> = items
            .iter()
            .map(|it| TxOp::Put {
                item: it.clone(),
                cond: Some(Cond::item_absent()),
            })
            .collect();
        match app.main.transact(ops).await {
            Ok(()) => {
                c.written.fetch_add(items.len() as u64, Ordering::Relaxed);
                return Ok(Ok(()));
            }
            Err(StoreError::TransactionCanceled { failed }) => {
                let mut keep = Vec::with_capacity(items.len());
                for (i, it) in items.into_iter().enumerate() {
                    if !failed.contains(&i) {
                        keep.push(it);
                        continue;
                    }
                    let k = Key::of(&it)?;
                    match app.main.get(&k).await? {
                        Some(cur) if cur == it => {
                            c.present.fetch_add(1, Ordering::Relaxed);
                        }
                        None => keep.push(it),
                        Some(_) => return Ok(Err(k)),
                    }
                }
                items = keep;
            }
            Err(e) if e.is_retryable() => {
                tokio::time::sleep(Duration::from_millis(25 * (attempt as u64 + 1))).await;
            }
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Unavailable(
        "import: too many retries writing one user".into(),
    ))
}

async fn import_user(
    app: &App,
    u: &UserPlan,
    dry_run: bool,
    c: &Counters,
) -> Result<UserOutcome, StoreError> {
    let marker = keys::import_marker(&u.username);
    if let Some(m) = app.main.get(&marker).await? {
        if get_s(&m, "fingerprint") == Some(u.fingerprint.as_str()) {
            return Ok(UserOutcome::Already);
        }
        return Ok(UserOutcome::Conflict(conflict(
            "user_login",
            &marker,
            format!("{} changed in the source since it was imported", u.username),
            "not re-imported (the live account may have moved on)",
        )));
    }
    if app.main.get(&keys::login(&u.username)).await?.is_some() {
        return Ok(UserOutcome::Conflict(conflict(
            "user_login",
            &keys::login(&u.username),
            format!("username {} already exists in the target", u.username),
            "user skipped",
        )));
    }
    for chunk in &u.chunks {
        if let Err(k) = write_chunk(app, chunk.clone(), dry_run, c).await? {
            return Ok(UserOutcome::Conflict(conflict(
                "user_login",
                &k,
                format!(
                    "{}: the target already holds a different item here",
                    u.username
                ),
                "user skipped (items written before the conflict are history only)",
            )));
        }
    }
    Ok(UserOutcome::Imported)
}

async fn write_global(
    app: &App,
    g: &Global,
    dry_run: bool,
    c: &Counters,
) -> Result<Option<BadRow>, StoreError> {
    match g {
        Global::Item(it) => match write_chunk(app, vec![it.clone()], dry_run, c).await? {
            Ok(()) => Ok(None),
            Err(k) => Ok(Some(conflict(
                "global",
                &k,
                "the target already holds a different item",
                "skipped",
            ))),
        },
        Global::ApiKey {
            holder,
            hash,
            description,
        } => {
            let k = keys::api_key(holder);
            match app.main.get(&k).await? {
                Some(cur) if get_s(&cur, "hash") == Some(hash.as_str()) => {
                    c.present.fetch_add(1, Ordering::Relaxed);
                    Ok(None)
                }
                Some(_) => Ok(Some(conflict(
                    "api_key",
                    &k,
                    format!(
                        "holder {holder} already has a different key in the target (possibly this key, upgraded on first use after an earlier import)"
                    ),
                    "left as is",
                ))),
                None if dry_run => {
                    c.written.fetch_add(1, Ordering::Relaxed);
                    Ok(None)
                }
                None => match app
                    .api_keys()
                    .store_hash(holder, hash, description, false)
                    .await
                {
                    Ok(()) => {
                        c.written.fetch_add(1, Ordering::Relaxed);
                        Ok(None)
                    }
                    Err(e) => {
                        let message = shared::http::error::ApiError::from(e).message;
                        Ok(Some(conflict("api_key", &k, message, "skipped")))
                    }
                },
            }
        }
        Global::Counter { name, at_least } => {
            let k = keys::counter(name);
            let cur = app.main.get(&k).await?;
            if cur.as_ref().and_then(|i| get_n(i, "value")).unwrap_or(0) >= *at_least {
                c.present.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
            c.written.fetch_add(1, Ordering::Relaxed);
            if !dry_run {
                let cond = Cond::item_absent().or(Cond::lt("value", *at_least));
                match app
                    .main
                    .update(&k, Update::new().set("value", *at_least), Some(cond))
                    .await
                {
                    Ok(_) | Err(StoreError::ConditionFailed) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(None)
        }
    }
}

/// Runs the plan and reconciles. Users are independent; any number of runs converge.
pub async fn execute(app: &App, plan: Plan, opts: Options) -> Result<Report, ImportError> {
    let counters = Arc::new(Counters::default());
    let total = plan.users.len();
    let parallel = if opts.parallel == 0 {
        PARALLEL
    } else {
        opts.parallel
    };
    let mut report = Report {
        dry_run: opts.dry_run,
        rows_read: plan.rows_read.clone(),
        users_planned: total,
        bad_rows: plan.bad_rows.clone(),
        adjustments: plan.adjustments.clone(),
        ..Report::default()
    };

    let before_globals = counters.written.load(Ordering::Relaxed);
    for g in &plan.globals {
        if let Some(b) = write_global(app, g, opts.dry_run, &counters).await? {
            report.conflicts.push(b);
        }
    }
    report.globals_written = counters.written.load(Ordering::Relaxed) - before_globals;

    let results: Vec<(usize, Result<UserOutcome, StoreError>)> =
        futures::stream::iter(plan.users.iter().enumerate())
            .map(|(i, u)| {
                let c = counters.clone();
                async move {
                    let r = import_user(app, u, opts.dry_run, &c).await;
                    let done = c.done.fetch_add(1, Ordering::Relaxed) + 1;
                    if opts.progress_every > 0
                        && ((done as usize).is_multiple_of(opts.progress_every)
                            || done as usize == total)
                    {
                        eprintln!(
                            "import: users {done}/{total}  items written {}  already present {}",
                            c.written.load(Ordering::Relaxed),
                            c.present.load(Ordering::Relaxed)
                        );
                    }
                    (i, r)
                }
            })
            .buffer_unordered(parallel)
            .collect()
            .await;
    let mut covered = vec![false; total];
    for (i, r) in results {
        match r? {
            UserOutcome::Imported => {
                counters.imported.fetch_add(1, Ordering::Relaxed);
                covered[i] = true;
            }
            UserOutcome::Already => {
                counters.already.fetch_add(1, Ordering::Relaxed);
                covered[i] = true;
            }
            UserOutcome::Conflict(b) => report.conflicts.push(b),
        }
    }
    report.items_written = counters.written.load(Ordering::Relaxed);
    report.items_already_present = counters.present.load(Ordering::Relaxed);
    report.users_imported = counters.imported.load(Ordering::Relaxed);
    report.users_already_imported = counters.already.load(Ordering::Relaxed);

    // Reconciliation over the users this import covers.
    let mut t = Totals {
        source_all_rows: plan.source_balance_total,
        ..Totals::default()
    };
    let covered_users: Vec<&UserPlan> = plan
        .users
        .iter()
        .zip(covered)
        .filter(|(_, c)| *c)
        .map(|(u, _)| u)
        .collect();
    for u in &covered_users {
        t.source_imported_users += u.balance;
        t.source_points_imported_users += u.points;
    }
    if !opts.dry_run {
        let sums: Vec<Result<(i64, i64, i64), StoreError>> =
            futures::stream::iter(covered_users.iter())
                .map(|u| async move {
                    let user = shared::domain::Username::from_stored(u.username.as_str());
                    let w = app.wallets().read(&user).await?;
                    let l = app.wallets().ledger_sum(&user).await?;
                    Ok((w.balance, l.rupiah(), w.points))
                })
                .buffer_unordered(parallel)
                .collect()
                .await;
        for s in sums {
            let (b, l, p) = s?;
            t.store_imported_users += b;
            t.store_ledger_imported_users += l;
            t.store_points_imported_users += p;
        }
    } else {
        t.store_imported_users = t.source_imported_users;
        t.store_ledger_imported_users = t.source_imported_users;
        t.store_points_imported_users = t.source_points_imported_users;
    }
    t.equal = t.source_imported_users == t.store_imported_users
        && t.store_imported_users == t.store_ledger_imported_users
        && t.source_points_imported_users == t.store_points_imported_users;
    report.balances = t;
    Ok(report)
}
