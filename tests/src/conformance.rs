//! The `Table` port conformance suite: one set of cases, run against every adapter (the embedded
//! local store always, DynamoDB against the emulator). Each case gets a fresh, empty table from the
//! caller's factory, runs in its own task (a panic fails only that case), and reports an error
//! message instead of stopping the run, so one report lists every failure.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use shared::store::schema::{GSI1, GSI2, MAIN};
use shared::store::{
    AttrValue, Cond, Item, Key, Page, Query, Scan, SkCond, StoreError, TableDef, TableRef, TxOp,
    Update, get_n, get_s, query_all,
};

/// A boxed, sendable future.
pub type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What one case returns: `Err` carries the failed expectation.
pub type Outcome = Result<(), String>;

type CaseFn = fn(TableRef) -> BoxFut<Outcome>;

/// The result of a run.
#[derive(Debug, Default)]
pub struct Report {
    pub adapter: String,
    pub passed: Vec<&'static str>,
    pub failed: Vec<(&'static str, String)>,
}

impl Report {
    /// Number of cases run.
    pub fn total(&self) -> usize {
        self.passed.len() + self.failed.len()
    }
}

/// Names of every case, in run order.
pub fn case_names() -> Vec<&'static str> {
    CASES.iter().map(|(n, _)| *n).collect()
}

/// Runs every case against tables from `make` (which must return a fresh, empty table shaped like
/// the definition it is given, each time it is called). Prints
/// `conformance[<adapter>]: N/M cases passed` and returns the report when all passed; panics with
/// the list of failures otherwise.
pub async fn run<F, Fut>(adapter: &str, make: F) -> Report
where
    F: Fn(&'static TableDef) -> Fut,
    Fut: Future<Output = Result<TableRef, StoreError>>,
{
    let report = run_collect(adapter, make).await;
    println!(
        "conformance[{}]: {}/{} cases passed",
        report.adapter,
        report.passed.len(),
        report.total()
    );
    if !report.failed.is_empty() {
        let list: Vec<String> = report
            .failed
            .iter()
            .map(|(n, e)| format!("  - {n}: {e}"))
            .collect();
        panic!(
            "conformance[{}]: {} of {} cases failed:\n{}",
            report.adapter,
            report.failed.len(),
            report.total(),
            list.join("\n")
        );
    }
    report
}

/// Like [`run`] but never panics: the caller inspects the report.
pub async fn run_collect<F, Fut>(adapter: &str, make: F) -> Report
where
    F: Fn(&'static TableDef) -> Fut,
    Fut: Future<Output = Result<TableRef, StoreError>>,
{
    let mut report = Report {
        adapter: adapter.to_owned(),
        ..Report::default()
    };
    for (name, case) in CASES {
        let outcome = match make(&MAIN).await {
            Err(e) => Err(format!("could not create a fresh table: {e}")),
            Ok(table) => {
                match tokio::time::timeout(Duration::from_secs(120), tokio::spawn(case(table)))
                    .await
                {
                    Err(_) => Err("timed out after 120 s".to_owned()),
                    Ok(Err(join)) => Err(format!("panicked: {}", panic_message(join))),
                    Ok(Ok(outcome)) => outcome,
                }
            }
        };
        match outcome {
            Ok(()) => report.passed.push(name),
            Err(e) => {
                println!("conformance[{adapter}]: FAILED {name}: {e}");
                report.failed.push((name, e));
            }
        }
    }
    report
}

fn panic_message(join: tokio::task::JoinError) -> String {
    match join.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "non-string panic".into()),
        Err(e) => e.to_string(),
    }
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        const CASES: &[(&str, CaseFn)] = &[$((stringify!($name), |t| Box::pin($name(t)))),*];
    };
}

cases![
    get_missing_is_none,
    batch_get_answers_in_key_order,
    put_if_absent_succeeds_when_absent,
    put_if_absent_fails_on_existing_and_leaves_it,
    put_replaces_the_whole_item,
    values_round_trip,
    update_creates_missing_item_and_returns_new_values,
    update_existing_returns_all_new,
    update_without_actions_creates_or_returns_the_item,
    update_of_key_attributes_is_invalid,
    update_condition_failure_changes_nothing,
    conditions_match_the_port_semantics,
    concurrent_conditional_debits_never_overdraw,
    transaction_with_failed_condition_applies_nothing,
    transaction_reports_every_failed_index,
    transaction_applies_put_update_delete_check,
    transaction_same_key_twice_is_invalid,
    transaction_of_100_items_applies,
    gsi1_query_sorted_and_sparse,
    gsi2_query_sorted_and_sparse,
    gsi_follows_updates_and_deletes,
    pagination_table_both_directions,
    pagination_gsi_both_directions,
    sort_key_prefix_query,
    sort_key_range_queries,
    ttl_expired_items_are_hidden,
    tampered_cursor_is_bad_cursor,
    delete_returns_old_item_and_honours_condition,
    scan_visits_every_item_of_a_kind_once_in_bounded_pages,
];

// ---------------------------------------------------------------------------------------------
// Helpers

macro_rules! ensure {
    ($c:expr, $($arg:tt)+) => {
        if !$c {
            return Err(format!("line {}: {}", line!(), format!($($arg)+)));
        }
    };
}

macro_rules! ensure_eq {
    ($a:expr, $b:expr $(,)?) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            return Err(format!(
                "line {}: expected `{}` == `{}`\n      left:  {:?}\n      right: {:?}",
                line!(),
                stringify!($a),
                stringify!($b),
                a,
                b
            ));
        }
    }};
}

/// Turns a store error into a case failure naming the step.
trait Ctx<T> {
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T> Ctx<T> for Result<T, StoreError> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: unexpected error {e:?}"))
    }
}

fn item(pk: &str, sk: &str, attrs: &[(&str, AttrValue)]) -> Item {
    let mut i = Key::new(pk, sk).item();
    for (n, v) in attrs {
        i.insert((*n).to_owned(), v.clone());
    }
    i
}

fn n(v: i64) -> AttrValue {
    AttrValue::N(v)
}

fn s(v: &str) -> AttrValue {
    AttrValue::S(v.to_owned())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sks(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|i| get_s(i, "sk").unwrap_or("<no sk>").to_owned())
        .collect()
}

fn attr_strings(items: &[Item], attr: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| get_s(i, attr).unwrap_or("<none>").to_owned())
        .collect()
}

/// Reads every page of `q` with the given page size; checks page sizes and guards against loops.
async fn paginate(t: &TableRef, q: Query, page: usize) -> Result<Vec<Item>, String> {
    let mut out = Vec::new();
    let mut q = q.limit(page);
    for _ in 0..100 {
        let Page { items, cursor } = t.query(q.clone()).await.ctx("query page")?;
        ensure!(
            items.len() <= page,
            "page of {} items exceeds limit {page}",
            items.len()
        );
        out.extend(items);
        match cursor {
            Some(c) => q.cursor = Some(c),
            None => return Ok(out),
        }
    }
    Err("pagination did not finish within 100 pages".into())
}

/// Runs a GSI query until it returns `want` (values of `attr`, in order) — GSIs are eventually
/// consistent on DynamoDB; emulators and the local store answer at once.
async fn gsi_eventually(
    t: &TableRef,
    q: Query,
    attr: &str,
    want: &[&str],
) -> Result<Vec<Item>, String> {
    let mut last = Vec::new();
    for attempt in 0..20 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        last = query_all(t.as_ref(), q.clone()).await.ctx("gsi query")?;
        if attr_strings(&last, attr) == want {
            return Ok(last);
        }
    }
    Err(format!(
        "gsi query {q:?}: expected {attr} = {want:?}, got {:?}",
        attr_strings(&last, attr)
    ))
}

// ---------------------------------------------------------------------------------------------
// Single-item operations

async fn get_missing_is_none(t: TableRef) -> Outcome {
    t.put(item("P", "present", &[]), None).await.ctx("put")?;
    ensure_eq!(t.get(&Key::new("P", "missing")).await.ctx("get")?, None);
    ensure_eq!(t.get(&Key::new("Q", "present")).await.ctx("get")?, None);
    ensure!(
        t.get(&Key::new("P", "present")).await.ctx("get")?.is_some(),
        "present item not found"
    );
    Ok(())
}

async fn batch_get_answers_in_key_order(t: TableRef) -> Outcome {
    let now = now();
    let a = item("B", "A", &[("v", n(1))]);
    let c = item("B2", "C", &[("v", n(3))]);
    let dead = item("B", "DEAD", &[("ttl", n(now - 60))]);
    for it in [&a, &c, &dead] {
        t.put(it.clone(), None).await.ctx("put")?;
    }
    let keys = [
        Key::new("B2", "C"),
        Key::new("B", "MISSING"),
        Key::new("B", "DEAD"),
        Key::new("B", "A"),
    ];
    ensure_eq!(
        t.get_many(&keys).await.ctx("batch get")?,
        vec![Some(c), None, None, Some(a.clone())]
    );
    ensure_eq!(
        t.get_many(&[Key::new("B", "A")]).await.ctx("batch get")?,
        vec![Some(a)]
    );
    // 100 keys (DynamoDB's limit) in one request; more, none, or a key twice is refused.
    let hundred: Vec<Key> = (0..100)
        .map(|i| Key::new("B", format!("K{i:03}")))
        .collect();
    ensure_eq!(t.get_many(&hundred).await.ctx("batch of 100")?.len(), 100);
    let too_many: Vec<Key> = (0..101)
        .map(|i| Key::new("B", format!("K{i:03}")))
        .collect();
    for bad in [
        &too_many[..],
        &[][..],
        &[Key::new("B", "A"), Key::new("B", "A")][..],
    ] {
        let got = t.get_many(bad).await;
        ensure!(
            matches!(got, Err(StoreError::Invalid(_))),
            "{} keys: expected Invalid, got {got:?}",
            bad.len()
        );
    }
    Ok(())
}

async fn put_if_absent_succeeds_when_absent(t: TableRef) -> Outcome {
    let it = item("P", "A", &[("v", n(1)), ("name", s("first"))]);
    t.put(it.clone(), Some(Cond::item_absent()))
        .await
        .ctx("conditional put")?;
    ensure_eq!(t.get(&Key::new("P", "A")).await.ctx("get")?, Some(it));
    Ok(())
}

async fn put_if_absent_fails_on_existing_and_leaves_it(t: TableRef) -> Outcome {
    let first = item("P", "A", &[("v", n(1)), ("name", s("first"))]);
    t.put(first.clone(), None).await.ctx("put")?;
    let second = item("P", "A", &[("v", n(2))]);
    let r = t.put(second, Some(Cond::item_absent())).await;
    ensure_eq!(r, Err(StoreError::ConditionFailed));
    ensure_eq!(
        t.get(&Key::new("P", "A")).await.ctx("get")?,
        Some(first.clone())
    );
    // A condition on an attribute value fails the same way.
    let r = t
        .put(item("P", "A", &[("v", n(3))]), Some(Cond::eq("v", 2)))
        .await;
    ensure_eq!(r, Err(StoreError::ConditionFailed));
    ensure_eq!(t.get(&Key::new("P", "A")).await.ctx("get")?, Some(first));
    Ok(())
}

async fn put_replaces_the_whole_item(t: TableRef) -> Outcome {
    t.put(item("P", "A", &[("a", n(1)), ("b", n(2))]), None)
        .await
        .ctx("put")?;
    let replacement = item("P", "A", &[("a", n(5))]);
    t.put(replacement.clone(), Some(Cond::eq("b", 2)))
        .await
        .ctx("conditional replace")?;
    ensure_eq!(
        t.get(&Key::new("P", "A")).await.ctx("get")?,
        Some(replacement)
    );
    Ok(())
}

async fn values_round_trip(t: TableRef) -> Outcome {
    let nested = AttrValue::M(BTreeMap::from([
        (
            "list".to_owned(),
            AttrValue::L(vec![
                n(1),
                s("two"),
                AttrValue::Bool(false),
                AttrValue::Null,
            ]),
        ),
        (
            "map".to_owned(),
            AttrValue::M(BTreeMap::from([("deep".to_owned(), n(-7))])),
        ),
        ("empty".to_owned(), AttrValue::L(vec![])),
    ]));
    let it = item(
        "P",
        "ALL#TYPES",
        &[
            ("max", n(i64::MAX)),
            ("min", n(i64::MIN)),
            ("zero", n(0)),
            ("text", s("héllo wörld ✓ \"quoted\" #n0 :v0")),
            ("blank", s("")),
            ("yes", AttrValue::Bool(true)),
            ("nothing", AttrValue::Null),
            ("nested", nested),
        ],
    );
    t.put(it.clone(), None).await.ctx("put")?;
    ensure_eq!(
        t.get(&Key::new("P", "ALL#TYPES")).await.ctx("get")?,
        Some(it.clone())
    );
    let page = t.query(Query::pk("P")).await.ctx("query")?;
    ensure_eq!(page.items, vec![it]);
    Ok(())
}

async fn update_creates_missing_item_and_returns_new_values(t: TableRef) -> Outcome {
    let key = Key::new("USER#u", "WALLET");
    let got = t
        .update(
            &key,
            Update::new()
                .set("owner", "u")
                .add("balance", 25)
                .add("points", -3),
            None,
        )
        .await
        .ctx("update of a missing item")?;
    let want = item(
        "USER#u",
        "WALLET",
        &[("owner", s("u")), ("balance", n(25)), ("points", n(-3))],
    );
    ensure_eq!(got, want);
    ensure_eq!(t.get(&key).await.ctx("get")?, Some(want));
    Ok(())
}

async fn update_existing_returns_all_new(t: TableRef) -> Outcome {
    let key = Key::new("P", "A");
    t.put(
        item(
            "P",
            "A",
            &[
                ("a", n(1)),
                ("b", s("x")),
                ("c", AttrValue::Bool(true)),
                ("keep", s("k")),
            ],
        ),
        None,
    )
    .await
    .ctx("put")?;
    let got = t
        .update(
            &key,
            Update::new()
                .set("b", "y")
                .add("a", 2)
                .remove("c")
                .remove("absent"),
            Some(Cond::eq("a", 1)),
        )
        .await
        .ctx("update")?;
    let want = item("P", "A", &[("a", n(3)), ("b", s("y")), ("keep", s("k"))]);
    ensure_eq!(got, want);
    ensure_eq!(t.get(&key).await.ctx("get")?, Some(want));
    Ok(())
}

async fn update_without_actions_creates_or_returns_the_item(t: TableRef) -> Outcome {
    let key = Key::new("P", "EMPTY");
    ensure_eq!(
        t.update(&key, Update::new(), None)
            .await
            .ctx("empty update of a missing item")?,
        key.item()
    );
    ensure_eq!(t.get(&key).await.ctx("get")?, Some(key.item()));
    let full = item("P", "FULL", &[("v", n(1))]);
    t.put(full.clone(), None).await.ctx("put")?;
    let got = t
        .update(
            &Key::new("P", "FULL"),
            Update::new(),
            Some(Cond::eq("v", 1)),
        )
        .await
        .ctx("empty update")?;
    ensure_eq!(got, full);
    Ok(())
}

async fn update_of_key_attributes_is_invalid(t: TableRef) -> Outcome {
    let it = item("P", "A", &[("v", n(1))]);
    t.put(it.clone(), None).await.ctx("put")?;
    let key = Key::new("P", "A");
    for (desc, u) in [
        ("set pk", Update::new().set("pk", "OTHER")),
        ("set sk", Update::new().set("v", 2).set("sk", "B")),
        ("remove sk", Update::new().remove("sk")),
    ] {
        let r = t.update(&key, u.clone(), None).await;
        ensure!(
            matches!(r, Err(StoreError::Invalid(_))),
            "update `{desc}`: expected Invalid, got {r:?}"
        );
        let r = t
            .transact(vec![TxOp::Update {
                key: key.clone(),
                update: u,
                cond: None,
            }])
            .await;
        ensure!(
            matches!(r, Err(StoreError::Invalid(_))),
            "transaction `{desc}`: expected Invalid, got {r:?}"
        );
    }
    ensure_eq!(t.get(&key).await.ctx("get")?, Some(it));
    ensure_eq!(t.get(&Key::new("OTHER", "A")).await.ctx("get")?, None);
    ensure_eq!(t.get(&Key::new("P", "B")).await.ctx("get")?, None);
    Ok(())
}

async fn update_condition_failure_changes_nothing(t: TableRef) -> Outcome {
    let key = Key::new("USER#u", "WALLET");
    let wallet = item("USER#u", "WALLET", &[("balance", n(10))]);
    t.put(wallet.clone(), None).await.ctx("put")?;
    let r = t
        .update(
            &key,
            Update::new().add("balance", -20).set("touched", true),
            Some(Cond::ge("balance", 20)),
        )
        .await;
    ensure_eq!(r, Err(StoreError::ConditionFailed));
    ensure_eq!(t.get(&key).await.ctx("get")?, Some(wallet));
    // A guarded update of a missing item does not create it.
    let missing = Key::new("USER#nobody", "WALLET");
    let r = t
        .update(
            &missing,
            Update::new().add("balance", 5),
            Some(Cond::item_exists()),
        )
        .await;
    ensure_eq!(r, Err(StoreError::ConditionFailed));
    ensure_eq!(t.get(&missing).await.ctx("get missing")?, None);
    Ok(())
}

/// Each condition is tried as the guard of an update on an existing item and of a put on a missing
/// one; it must succeed exactly when the expected truth value says so (which must also agree with
/// `Cond::eval`, the port's reference semantics).
async fn conditions_match_the_port_semantics(t: TableRef) -> Outcome {
    let base = item(
        "P",
        "C",
        &[
            ("n", n(10)),
            ("s", s("abc")),
            ("b", AttrValue::Bool(true)),
            ("m", AttrValue::M(BTreeMap::from([("x".to_owned(), n(1))]))),
            ("l", AttrValue::L(vec![s("a"), n(2)])),
        ],
    );
    t.put(base.clone(), None).await.ctx("put")?;
    let m1 = AttrValue::M(BTreeMap::from([("x".to_owned(), n(1))]));
    // (description, condition, expected on the existing item, expected on a missing item)
    let table: Vec<(&str, Cond, bool, bool)> = vec![
        ("exists n", Cond::Exists("n".into()), true, false),
        ("not exists n", Cond::NotExists("n".into()), false, true),
        ("not exists zz", Cond::NotExists("zz".into()), true, true),
        ("item exists", Cond::item_exists(), true, false),
        ("item absent", Cond::item_absent(), false, true),
        ("n = 10", Cond::eq("n", 10), true, false),
        ("n = 11", Cond::eq("n", 11), false, false),
        (
            "n = '10' (type mismatch)",
            Cond::eq("n", "10"),
            false,
            false,
        ),
        ("n <> 10", Cond::ne("n", 10), false, false),
        ("n <> 11", Cond::ne("n", 11), true, false),
        (
            "zz <> 1 (missing attribute)",
            Cond::ne("zz", 1),
            false,
            false,
        ),
        ("s <> 5 (type mismatch)", Cond::ne("s", 5), true, false),
        ("n < 11", Cond::lt("n", 11), true, false),
        ("n < 10", Cond::lt("n", 10), false, false),
        ("n <= 10", Cond::le("n", 10), true, false),
        ("n > 10", Cond::gt("n", 10), false, false),
        ("n > -5", Cond::gt("n", -5), true, false),
        ("n >= 10", Cond::ge("n", 10), true, false),
        ("n >= 11", Cond::ge("n", 11), false, false),
        ("s < 'abd'", Cond::lt("s", "abd"), true, false),
        ("s > 'abc'", Cond::gt("s", "abc"), false, false),
        ("s > 5 (type mismatch)", Cond::gt("s", 5), false, false),
        ("zz < 5 (missing)", Cond::lt("zz", 5), false, false),
        (
            "begins_with s 'ab'",
            Cond::BeginsWith("s".into(), "ab".into()),
            true,
            false,
        ),
        (
            "begins_with s 'b'",
            Cond::BeginsWith("s".into(), "b".into()),
            false,
            false,
        ),
        (
            "begins_with n '1' (number)",
            Cond::BeginsWith("n".into(), "1".into()),
            false,
            false,
        ),
        ("b = true", Cond::eq("b", true), true, false),
        ("m = {x:1}", Cond::eq("m", m1), true, false),
        (
            "l = [a,2]",
            Cond::eq("l", AttrValue::L(vec![s("a"), n(2)])),
            true,
            false,
        ),
        (
            "and(n=10, s=abc)",
            Cond::eq("n", 10).and(Cond::eq("s", "abc")),
            true,
            false,
        ),
        (
            "and(n=10, s=x)",
            Cond::eq("n", 10).and(Cond::eq("s", "x")),
            false,
            false,
        ),
        (
            "or(n=11, s=abc)",
            Cond::eq("n", 11).or(Cond::eq("s", "abc")),
            true,
            false,
        ),
        (
            "or(n=11, item absent)",
            Cond::eq("n", 11).or(Cond::item_absent()),
            false,
            true,
        ),
        ("not(n=10)", Cond::eq("n", 10).not(), false, true),
        ("not(zz <> 1)", Cond::ne("zz", 1).not(), true, true),
        (
            "not(n<5) (missing item)",
            Cond::lt("n", 5).not(),
            true,
            true,
        ),
        ("and() is true", Cond::And(vec![]), true, true),
        ("or() is false", Cond::Or(vec![]), false, false),
        (
            "nested",
            Cond::Or(vec![
                Cond::And(vec![Cond::gt("n", 5), Cond::lt("n", 8)]),
                Cond::eq("s", "abc").not().not(),
            ]),
            true,
            false,
        ),
    ];
    let key = Key::new("P", "C");
    let missing = Key::new("P", "MISSING");
    for (i, (desc, cond, on_item, on_missing)) in table.into_iter().enumerate() {
        let current = t.get(&key).await.ctx("get")?;
        ensure_eq!(cond.eval(current.as_ref()), on_item);
        ensure_eq!(cond.eval(None), on_missing);
        let probe = Update::new().set("probe", i64::try_from(i).unwrap_or_default());
        let r = t.update(&key, probe, Some(cond.clone())).await;
        match (&r, on_item) {
            (Ok(_), true) | (Err(StoreError::ConditionFailed), false) => {}
            _ => {
                return Err(format!(
                    "condition `{desc}` on the item: expected success={on_item}, got {r:?}"
                ));
            }
        }
        let r = t.put(missing.item(), Some(cond.clone())).await;
        match (&r, on_missing) {
            (Ok(()), true) => {
                t.delete(&missing, None).await.ctx("delete")?;
            }
            (Err(StoreError::ConditionFailed), false) => {}
            _ => {
                return Err(format!(
                    "condition `{desc}` on a missing item: expected success={on_missing}, got {r:?}"
                ));
            }
        }
    }
    // Only `probe` ever changed on the item.
    let after = t.get(&key).await.ctx("get")?.ok_or("item vanished")?;
    let mut without_probe = after.clone();
    without_probe.remove("probe");
    ensure_eq!(without_probe, base);
    Ok(())
}

async fn concurrent_conditional_debits_never_overdraw(t: TableRef) -> Outcome {
    const START: i64 = 500;
    const DEBIT: i64 = 15;
    const TASKS: usize = 50;
    let key = Key::new("USER#race", "WALLET");
    t.put(item("USER#race", "WALLET", &[("balance", n(START))]), None)
        .await
        .ctx("put")?;
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let (t, key, barrier) = (t.clone(), key.clone(), barrier.clone());
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            t.update(
                &key,
                Update::new().add("balance", -DEBIT),
                Some(Cond::ge("balance", DEBIT)),
            )
            .await
        }));
    }
    let (mut ok, mut refused, mut seen) = (0, 0, Vec::new());
    for h in handles {
        match h.await.map_err(|e| format!("task failed: {e}"))? {
            Ok(item) => {
                ok += 1;
                let b = get_n(&item, "balance").ok_or("no balance in returned item")?;
                ensure!(b >= 0, "a debit returned a negative balance {b}");
                seen.push(b);
            }
            Err(StoreError::ConditionFailed) => refused += 1,
            Err(e) => return Err(format!("unexpected error from a debit: {e:?}")),
        }
    }
    let expected_ok = START / DEBIT;
    ensure_eq!(ok, expected_ok);
    ensure_eq!(refused, TASKS as i64 - expected_ok);
    seen.sort_unstable();
    let want: Vec<i64> = (0..expected_ok)
        .map(|k| START - DEBIT * (k + 1))
        .rev()
        .collect();
    ensure!(
        seen == want,
        "each success must see a distinct balance: got {seen:?}"
    );
    let final_balance = t
        .get(&key)
        .await
        .ctx("get")?
        .and_then(|i| get_n(&i, "balance"));
    ensure_eq!(final_balance, Some(START - DEBIT * expected_ok));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Transactions

async fn seed_abcd(t: &TableRef) -> Result<Vec<Item>, String> {
    let mut out = Vec::new();
    for sk in ["A", "B", "C", "D"] {
        let it = item("TX", sk, &[("v", n(1))]);
        t.put(it.clone(), None).await.ctx("seed")?;
        out.push(it);
    }
    Ok(out)
}

async fn all_unchanged(t: &TableRef, items: &[Item]) -> Outcome {
    for it in items {
        let key = Key::of(it).ctx("key")?;
        ensure!(
            t.get(&key).await.ctx("get")?.as_ref() == Some(it),
            "item {key:?} changed"
        );
    }
    Ok(())
}

async fn transaction_with_failed_condition_applies_nothing(t: TableRef) -> Outcome {
    let seeded = seed_abcd(&t).await?;
    let ops = vec![
        TxOp::Put {
            item: item("TX", "NEW", &[("v", n(9))]),
            cond: Some(Cond::item_absent()),
        },
        TxOp::Update {
            key: Key::new("TX", "A"),
            update: Update::new().add("v", 1),
            cond: Some(Cond::ge("v", 1)),
        },
        TxOp::Delete {
            key: Key::new("TX", "B"),
            cond: None,
        },
        TxOp::Check {
            key: Key::new("TX", "C"),
            cond: Cond::eq("v", 99),
        },
    ];
    let r = t.transact(ops).await;
    ensure_eq!(r, Err(StoreError::TransactionCanceled { failed: vec![3] }));
    ensure!(
        r.as_ref().is_err_and(|e| e.failed_at(3) && !e.failed_at(0)),
        "failed_at must name index 3 only"
    );
    ensure_eq!(t.get(&Key::new("TX", "NEW")).await.ctx("get NEW")?, None);
    all_unchanged(&t, &seeded).await
}

async fn transaction_reports_every_failed_index(t: TableRef) -> Outcome {
    let seeded = seed_abcd(&t).await?;
    let ops = vec![
        TxOp::Update {
            key: Key::new("TX", "A"),
            update: Update::new().add("v", -5),
            cond: Some(Cond::ge("v", 5)),
        },
        TxOp::Update {
            key: Key::new("TX", "B"),
            update: Update::new().add("v", 1),
            cond: None,
        },
        TxOp::Put {
            item: item("TX", "C", &[("v", n(2))]),
            cond: Some(Cond::item_absent()),
        },
        TxOp::Check {
            key: Key::new("TX", "D"),
            cond: Cond::eq("v", 1),
        },
    ];
    let r = t.transact(ops).await;
    ensure_eq!(
        r,
        Err(StoreError::TransactionCanceled { failed: vec![0, 2] })
    );
    all_unchanged(&t, &seeded).await
}

async fn transaction_applies_put_update_delete_check(t: TableRef) -> Outcome {
    let seeded = seed_abcd(&t).await?;
    let ops = vec![
        TxOp::Put {
            item: item("TX", "NEW", &[("v", n(9))]),
            cond: Some(Cond::item_absent()),
        },
        TxOp::Update {
            key: Key::new("TX", "A"),
            update: Update::new().add("v", 1).set("w", "x"),
            cond: Some(Cond::ge("v", 1)),
        },
        TxOp::Delete {
            key: Key::new("TX", "B"),
            cond: Some(Cond::eq("v", 1)),
        },
        TxOp::Check {
            key: Key::new("TX", "C"),
            cond: Cond::eq("v", 1),
        },
        TxOp::Update {
            key: Key::new("TX", "E"),
            update: Update::new().add("count", 1),
            cond: None,
        },
        TxOp::Update {
            key: Key::new("TX", "F"),
            update: Update::new(),
            cond: Some(Cond::item_absent()),
        },
    ];
    t.transact(ops).await.ctx("transaction")?;
    ensure_eq!(
        t.get(&Key::new("TX", "NEW")).await.ctx("get")?,
        Some(item("TX", "NEW", &[("v", n(9))]))
    );
    ensure_eq!(
        t.get(&Key::new("TX", "A")).await.ctx("get")?,
        Some(item("TX", "A", &[("v", n(2)), ("w", s("x"))]))
    );
    ensure_eq!(t.get(&Key::new("TX", "B")).await.ctx("get")?, None);
    ensure_eq!(
        t.get(&Key::new("TX", "E")).await.ctx("get")?,
        Some(item("TX", "E", &[("count", n(1))]))
    );
    ensure_eq!(
        t.get(&Key::new("TX", "F")).await.ctx("get")?,
        Some(item("TX", "F", &[]))
    );
    all_unchanged(&t, &seeded[2..]).await
}

async fn transaction_same_key_twice_is_invalid(t: TableRef) -> Outcome {
    let seeded = seed_abcd(&t).await?;
    let ops = vec![
        TxOp::Update {
            key: Key::new("TX", "A"),
            update: Update::new().add("v", 1),
            cond: None,
        },
        TxOp::Put {
            item: item("TX", "NEW", &[]),
            cond: None,
        },
        TxOp::Check {
            key: Key::new("TX", "A"),
            cond: Cond::item_exists(),
        },
    ];
    let r = t.transact(ops).await;
    ensure!(
        matches!(r, Err(StoreError::Invalid(_))),
        "expected Invalid, got {r:?}"
    );
    ensure_eq!(t.get(&Key::new("TX", "NEW")).await.ctx("get")?, None);
    all_unchanged(&t, &seeded).await?;
    let r = t.transact(vec![]).await;
    ensure!(
        matches!(r, Err(StoreError::Invalid(_))),
        "empty transaction: expected Invalid, got {r:?}"
    );
    let too_many: Vec<TxOp> = (0..101)
        .map(|i| TxOp::Put {
            item: item("MANY", &format!("{i:03}"), &[]),
            cond: None,
        })
        .collect();
    let r = t.transact(too_many).await;
    ensure!(
        matches!(r, Err(StoreError::Invalid(_))),
        "101 operations: expected Invalid, got {r:?}"
    );
    ensure_eq!(
        t.query(Query::pk("MANY")).await.ctx("query")?.items.len(),
        0
    );
    Ok(())
}

async fn transaction_of_100_items_applies(t: TableRef) -> Outcome {
    let ops: Vec<TxOp> = (0..100)
        .map(|i| TxOp::Put {
            item: item("MANY", &format!("{i:03}"), &[("i", n(i))]),
            cond: Some(Cond::item_absent()),
        })
        .collect();
    t.transact(ops).await.ctx("100-item transaction")?;
    let all = query_all(t.as_ref(), Query::pk("MANY"))
        .await
        .ctx("query")?;
    ensure_eq!(all.len(), 100);
    let want: Vec<String> = (0..100).map(|i| format!("{i:03}")).collect();
    ensure_eq!(sks(&all), want);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Indexes

async fn gsi_query_sorted_and_sparse(
    t: TableRef,
    index: &'static str,
    ipk: &str,
    isk: &str,
) -> Outcome {
    // Indexed items live in different partitions and are written out of order.
    for (pk, k) in [
        ("USER#c", "K#3"),
        ("USER#a", "K#1"),
        ("USER#e", "K#5"),
        ("USER#b", "K#2"),
        ("USER#d", "K#4"),
    ] {
        t.put(
            item(
                pk,
                "REC",
                &[(ipk, s("G#1")), (isk, s(k)), ("payload", s(pk))],
            ),
            None,
        )
        .await
        .ctx("put")?;
    }
    // Sparse: lacking either index attribute keeps an item out of the index.
    t.put(item("USER#x", "REC", &[(ipk, s("G#1"))]), None)
        .await
        .ctx("put")?;
    t.put(item("USER#y", "REC", &[(isk, s("K#0"))]), None)
        .await
        .ctx("put")?;
    t.put(item("USER#z", "REC", &[("payload", s("none"))]), None)
        .await
        .ctx("put")?;
    // Another index partition, and a neighbouring one by prefix.
    t.put(
        item("USER#f", "REC", &[(ipk, s("G#2")), (isk, s("K#0"))]),
        None,
    )
    .await
    .ctx("put")?;
    t.put(
        item("USER#g", "REC", &[(ipk, s("G#10")), (isk, s("K#0"))]),
        None,
    )
    .await
    .ctx("put")?;
    let want = ["K#1", "K#2", "K#3", "K#4", "K#5"];
    let got = gsi_eventually(&t, Query::index(index, "G#1"), isk, &want).await?;
    // Projection ALL: whole items come back.
    ensure_eq!(
        attr_strings(&got, "payload"),
        vec!["USER#a", "USER#b", "USER#c", "USER#d", "USER#e"]
    );
    ensure_eq!(
        got[0],
        item(
            "USER#a",
            "REC",
            &[(ipk, s("G#1")), (isk, s("K#1")), ("payload", s("USER#a"))]
        )
    );
    let rev: Vec<&str> = want.iter().rev().copied().collect();
    gsi_eventually(&t, Query::index(index, "G#1").descending(), isk, &rev).await?;
    gsi_eventually(&t, Query::index(index, "G#2"), isk, &["K#0"]).await?;
    gsi_eventually(
        &t,
        Query::index(index, "G#1").sk(SkCond::Between("K#2".into(), "K#4".into())),
        isk,
        &["K#2", "K#3", "K#4"],
    )
    .await?;
    gsi_eventually(
        &t,
        Query::index(index, "G#1")
            .sk(SkCond::Gt("K#3".into()))
            .descending(),
        isk,
        &["K#5", "K#4"],
    )
    .await?;
    gsi_eventually(&t, Query::index(index, "G#none"), isk, &[]).await?;
    Ok(())
}

async fn gsi1_query_sorted_and_sparse(t: TableRef) -> Outcome {
    gsi_query_sorted_and_sparse(t, GSI1, "gsi1pk", "gsi1sk").await
}

async fn gsi2_query_sorted_and_sparse(t: TableRef) -> Outcome {
    gsi_query_sorted_and_sparse(t, GSI2, "gsi2pk", "gsi2sk").await
}

async fn gsi_follows_updates_and_deletes(t: TableRef) -> Outcome {
    let rec = |sk: &str, isk: &str| {
        item(
            "INVOICE#1",
            sk,
            &[("gsi2pk", s("PENDING")), ("gsi2sk", s(isk))],
        )
    };
    t.put(rec("A", "2024-01"), None).await.ctx("put")?;
    t.put(rec("B", "2024-02"), None).await.ctx("put")?;
    t.put(rec("C", "2024-03"), None).await.ctx("put")?;
    let q = || Query::index(GSI2, "PENDING");
    gsi_eventually(&t, q(), "sk", &["A", "B", "C"]).await?;
    // Moving an item's index sort key moves it in the index.
    t.update(
        &Key::new("INVOICE#1", "A"),
        Update::new().set("gsi2sk", "2024-09"),
        None,
    )
    .await
    .ctx("update")?;
    gsi_eventually(&t, q(), "sk", &["B", "C", "A"]).await?;
    // Removing an index attribute takes it out (the sparse "pending" index).
    t.update(
        &Key::new("INVOICE#1", "B"),
        Update::new().remove("gsi2pk").set("status", "PAID"),
        None,
    )
    .await
    .ctx("update")?;
    gsi_eventually(&t, q(), "sk", &["C", "A"]).await?;
    // Deleting an item takes it out.
    t.delete(&Key::new("INVOICE#1", "C"), None)
        .await
        .ctx("delete")?;
    gsi_eventually(&t, q(), "sk", &["A"]).await?;
    // Changing the index partition key moves it to the other partition; a transaction keeps indexes too.
    t.transact(vec![
        TxOp::Update {
            key: Key::new("INVOICE#1", "A"),
            update: Update::new().set("gsi2pk", "EXPIRED"),
            cond: None,
        },
        TxOp::Put {
            item: rec("D", "2024-04"),
            cond: Some(Cond::item_absent()),
        },
    ])
    .await
    .ctx("transaction")?;
    gsi_eventually(&t, q(), "sk", &["D"]).await?;
    gsi_eventually(&t, Query::index(GSI2, "EXPIRED"), "sk", &["A"]).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Queries and pagination

async fn pagination_table_both_directions(t: TableRef) -> Outcome {
    // Written out of order, with neighbouring partitions that must not leak in.
    for i in [7, 2, 9, 0, 4, 1, 8, 3, 6, 5] {
        t.put(item("PAGE", &format!("S#{i:02}"), &[("i", n(i))]), None)
            .await
            .ctx("put")?;
    }
    for pk in ["PAG", "PAGE#", "PAGEX", "PAGF"] {
        t.put(item(pk, "S#00", &[]), None).await.ctx("put")?;
    }
    let asc: Vec<String> = (0..10).map(|i| format!("S#{i:02}")).collect();
    let desc: Vec<String> = asc.iter().rev().cloned().collect();
    ensure_eq!(sks(&paginate(&t, Query::pk("PAGE"), 3).await?), asc);
    ensure_eq!(
        sks(&paginate(&t, Query::pk("PAGE").descending(), 3).await?),
        desc
    );
    // Other page sizes, and a bounded query.
    ensure_eq!(sks(&paginate(&t, Query::pk("PAGE"), 1).await?), asc);
    ensure_eq!(sks(&paginate(&t, Query::pk("PAGE"), 10).await?), asc);
    ensure_eq!(
        sks(&paginate(&t, Query::pk("PAGE").prefix("S#0"), 4).await?),
        asc
    );
    ensure_eq!(
        sks(&paginate(
            &t,
            Query::pk("PAGE").sk(SkCond::Ge("S#05".into())).descending(),
            2
        )
        .await?),
        desc[..5].to_vec()
    );
    // No limit reads the whole partition; a limit larger than the partition needs no cursor.
    ensure_eq!(
        sks(&t.query(Query::pk("PAGE")).await.ctx("query")?.items),
        asc
    );
    let page = t.query(Query::pk("PAGE").limit(50)).await.ctx("query")?;
    ensure_eq!(sks(&page.items), asc);
    ensure_eq!(page.cursor, None);
    // The first page of 3 really is the first 3, with a cursor.
    let page = t.query(Query::pk("PAGE").limit(3)).await.ctx("query")?;
    ensure_eq!(sks(&page.items), asc[..3].to_vec());
    ensure!(
        page.cursor.is_some(),
        "a full page with more to come must carry a cursor"
    );
    Ok(())
}

async fn pagination_gsi_both_directions(t: TableRef) -> Outcome {
    for i in [3, 8, 0, 5, 1, 9, 2, 7, 4, 6] {
        let pk = format!("USER#{}", 9 - i);
        t.put(
            item(
                &pk,
                "REC",
                &[("gsi1pk", s("EMAIL")), ("gsi1sk", s(&format!("K#{i:02}")))],
            ),
            None,
        )
        .await
        .ctx("put")?;
    }
    t.put(
        item(
            "USER#other",
            "REC",
            &[("gsi1pk", s("EMAILS")), ("gsi1sk", s("K#00"))],
        ),
        None,
    )
    .await
    .ctx("put")?;
    let asc: Vec<String> = (0..10).map(|i| format!("K#{i:02}")).collect();
    let want: Vec<&str> = asc.iter().map(String::as_str).collect();
    gsi_eventually(&t, Query::index(GSI1, "EMAIL"), "gsi1sk", &want).await?;
    let desc: Vec<String> = asc.iter().rev().cloned().collect();
    ensure_eq!(
        attr_strings(
            &paginate(&t, Query::index(GSI1, "EMAIL"), 3).await?,
            "gsi1sk"
        ),
        asc
    );
    ensure_eq!(
        attr_strings(
            &paginate(&t, Query::index(GSI1, "EMAIL").descending(), 3).await?,
            "gsi1sk"
        ),
        desc
    );
    ensure_eq!(
        attr_strings(
            &paginate(&t, Query::index(GSI1, "EMAIL"), 4).await?,
            "gsi1sk"
        ),
        asc
    );
    ensure_eq!(
        attr_strings(
            &paginate(
                &t,
                Query::index(GSI1, "EMAIL")
                    .sk(SkCond::Lt("K#07".into()))
                    .descending(),
                3
            )
            .await?,
            "gsi1sk"
        ),
        desc[3..].to_vec()
    );
    // Items sharing an index key are all returned once (their order is unspecified).
    for u in ["USER#dup1", "USER#dup2", "USER#dup3", "USER#dup4"] {
        t.put(
            item(u, "REC", &[("gsi1pk", s("DUP")), ("gsi1sk", s("SAME"))]),
            None,
        )
        .await
        .ctx("put")?;
    }
    gsi_eventually(&t, Query::index(GSI1, "DUP"), "gsi1sk", &["SAME"; 4]).await?;
    let mut pks: Vec<String> =
        attr_strings(&paginate(&t, Query::index(GSI1, "DUP"), 3).await?, "pk");
    pks.sort();
    ensure_eq!(
        pks,
        vec!["USER#dup1", "USER#dup2", "USER#dup3", "USER#dup4"]
    );
    Ok(())
}

async fn sort_key_prefix_query(t: TableRef) -> Outcome {
    for sk in [
        "ADDR#1",
        "ADDR#2",
        "ADDRESS",
        "LEDGER#2024#a",
        "LEDGER#2024#b",
        "A",
        "LOGIN",
        "ZZZ",
    ] {
        t.put(item("USER#a", sk, &[]), None).await.ctx("put")?;
    }
    t.put(item("USER#ab", "ADDR#9", &[]), None)
        .await
        .ctx("put")?;
    t.put(item("USER#", "ADDR#8", &[]), None).await.ctx("put")?;
    let q = |p: &str| Query::pk("USER#a").prefix(p);
    ensure_eq!(
        sks(&t.query(q("ADDR#")).await.ctx("query")?.items),
        vec!["ADDR#1", "ADDR#2"]
    );
    ensure_eq!(
        sks(&t.query(q("ADDR")).await.ctx("query")?.items),
        vec!["ADDR#1", "ADDR#2", "ADDRESS"]
    );
    ensure_eq!(
        sks(&t.query(q("ADDR").descending()).await.ctx("query")?.items),
        vec!["ADDRESS", "ADDR#2", "ADDR#1"]
    );
    ensure_eq!(
        sks(&t.query(q("LEDGER#2024#")).await.ctx("query")?.items),
        vec!["LEDGER#2024#a", "LEDGER#2024#b"]
    );
    ensure_eq!(
        sks(&t.query(q("LOGIN")).await.ctx("query")?.items),
        vec!["LOGIN"]
    );
    ensure_eq!(
        sks(&t.query(q("B")).await.ctx("query")?.items),
        Vec::<String>::new()
    );
    ensure_eq!(
        sks(&t.query(q("ZZZZ")).await.ctx("query")?.items),
        Vec::<String>::new()
    );
    ensure_eq!(
        t.query(Query::pk("USER#a")).await.ctx("query")?.items.len(),
        8
    );
    ensure_eq!(
        t.query(Query::pk("USER#nobody"))
            .await
            .ctx("query")?
            .items
            .len(),
        0
    );
    Ok(())
}

async fn sort_key_range_queries(t: TableRef) -> Outcome {
    for sk in ["b", "e", "a", "d", "c"] {
        t.put(
            item("R", sk, &[("gsi1pk", s("RG")), ("gsi1sk", s(sk))]),
            None,
        )
        .await
        .ctx("put")?;
    }
    t.put(item("R2", "c", &[]), None).await.ctx("put")?;
    let cases: Vec<(SkCond, bool, Vec<&str>)> = vec![
        (
            SkCond::Between("b".into(), "d".into()),
            true,
            vec!["b", "c", "d"],
        ),
        (
            SkCond::Between("b".into(), "d".into()),
            false,
            vec!["d", "c", "b"],
        ),
        (SkCond::Between("bb".into(), "cc".into()), true, vec!["c"]),
        (SkCond::Between("c".into(), "c".into()), true, vec!["c"]),
        (SkCond::Between("x".into(), "z".into()), true, vec![]),
        (SkCond::Gt("c".into()), true, vec!["d", "e"]),
        (SkCond::Gt("c".into()), false, vec!["e", "d"]),
        (SkCond::Ge("c".into()), true, vec!["c", "d", "e"]),
        (SkCond::Lt("c".into()), true, vec!["a", "b"]),
        (SkCond::Lt("c".into()), false, vec!["b", "a"]),
        (SkCond::Le("c".into()), true, vec!["a", "b", "c"]),
        (SkCond::Le("c".into()), false, vec!["c", "b", "a"]),
        (SkCond::Eq("c".into()), true, vec!["c"]),
        (SkCond::Eq("cc".into()), true, vec![]),
        (SkCond::Lt("a".into()), true, vec![]),
        (SkCond::Gt("e".into()), true, vec![]),
    ];
    for (cond, forward, want) in cases {
        let mut q = Query::pk("R").sk(cond.clone());
        q.forward = forward;
        let got = sks(&t.query(q).await.ctx("query")?.items);
        ensure!(
            got == want,
            "table {cond:?} forward={forward}: expected {want:?}, got {got:?}"
        );
        let mut q = Query::index(GSI1, "RG").sk(cond.clone());
        q.forward = forward;
        gsi_eventually(&t, q, "gsi1sk", &want).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// TTL, cursors, delete

async fn ttl_expired_items_are_hidden(t: TableRef) -> Outcome {
    let now = now();
    let live = item(
        "S",
        "LIVE",
        &[
            ("ttl", n(now + 3600)),
            ("gsi1pk", s("T")),
            ("gsi1sk", s("1")),
        ],
    );
    let dead = item(
        "S",
        "DEAD",
        &[("ttl", n(now - 60)), ("gsi1pk", s("T")), ("gsi1sk", s("2"))],
    );
    let forever = item("S", "FOREVER", &[("gsi1pk", s("T")), ("gsi1sk", s("3"))]);
    for it in [&live, &dead, &forever] {
        t.put(it.clone(), None).await.ctx("put")?;
    }
    ensure_eq!(t.get(&Key::new("S", "LIVE")).await.ctx("get")?, Some(live));
    ensure_eq!(t.get(&Key::new("S", "DEAD")).await.ctx("get")?, None);
    ensure_eq!(
        t.get(&Key::new("S", "FOREVER")).await.ctx("get")?,
        Some(forever)
    );
    ensure_eq!(
        sks(&t.query(Query::pk("S")).await.ctx("query")?.items),
        vec!["FOREVER", "LIVE"]
    );
    ensure_eq!(
        sks(&query_all(t.as_ref(), Query::pk("S").limit(1))
            .await
            .ctx("paged query")?),
        vec!["FOREVER", "LIVE"]
    );
    ensure_eq!(
        sks(&t
            .query(Query::pk("S").prefix("DEAD"))
            .await
            .ctx("query")?
            .items),
        Vec::<String>::new()
    );
    gsi_eventually(&t, Query::index(GSI1, "T"), "sk", &["LIVE", "FOREVER"]).await?;
    // TTL deletion is lazy: a condition still sees the expired item until it is replaced...
    let r = t
        .put(item("S", "DEAD", &[("v", n(2))]), Some(Cond::item_absent()))
        .await;
    ensure_eq!(r, Err(StoreError::ConditionFailed));
    // ...and deleting it reports nothing (the old item had expired) but removes it.
    ensure_eq!(
        t.delete(&Key::new("S", "DEAD"), None).await.ctx("delete")?,
        None
    );
    t.put(item("S", "DEAD", &[("v", n(3))]), Some(Cond::item_absent()))
        .await
        .ctx("put after delete")?;
    ensure_eq!(
        t.get(&Key::new("S", "DEAD")).await.ctx("get")?,
        Some(item("S", "DEAD", &[("v", n(3))]))
    );
    // An update that moves the TTL into the past hides the item.
    t.update(
        &Key::new("S", "LIVE"),
        Update::new().set("ttl", now - 1),
        None,
    )
    .await
    .ctx("update")?;
    ensure_eq!(t.get(&Key::new("S", "LIVE")).await.ctx("get")?, None);
    Ok(())
}

async fn tampered_cursor_is_bad_cursor(t: TableRef) -> Outcome {
    for sk in ["a", "b", "c"] {
        t.put(
            item("CUR", sk, &[("gsi1pk", s("CG")), ("gsi1sk", s(sk))]),
            None,
        )
        .await
        .ctx("put")?;
    }
    let first = t.query(Query::pk("CUR").limit(1)).await.ctx("query")?;
    let good = first.cursor.ok_or("no cursor after a full first page")?;
    let next = t
        .query(Query::pk("CUR").limit(1).after(Some(good.clone())))
        .await
        .ctx("query with a good cursor")?;
    ensure_eq!(sks(&next.items), vec!["b"]);
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let bad = vec![
        "!!not base64!!".to_owned(),
        b64("not json"),
        b64("[1,2,3]"),
        b64("{}"),
        b64(r#"{"pk":5,"sk":"a"}"#),
        good[..good.len() / 2].to_owned(),
    ];
    for c in &bad {
        let r = t
            .query(Query::pk("CUR").limit(1).after(Some(c.clone())))
            .await;
        ensure!(
            r == Err(StoreError::BadCursor),
            "table query with cursor {c:?}: expected BadCursor, got {r:?}"
        );
        let r = t
            .query(Query::index(GSI1, "CG").limit(1).after(Some(c.clone())))
            .await;
        ensure!(
            r == Err(StoreError::BadCursor),
            "gsi query with cursor {c:?}: expected BadCursor, got {r:?}"
        );
    }
    // A table cursor lacks the index keys, so it is no cursor for an index query.
    let r = t
        .query(Query::index(GSI1, "CG").limit(1).after(Some(good)))
        .await;
    ensure!(
        r == Err(StoreError::BadCursor),
        "gsi query with a table cursor: expected BadCursor, got {r:?}"
    );
    Ok(())
}

async fn delete_returns_old_item_and_honours_condition(t: TableRef) -> Outcome {
    let key = Key::new("D", "A");
    let it = item(
        "D",
        "A",
        &[("v", n(1)), ("gsi1pk", s("DG")), ("gsi1sk", s("1"))],
    );
    t.put(it.clone(), None).await.ctx("put")?;
    ensure_eq!(
        t.delete(&key, Some(Cond::eq("v", 2))).await,
        Err(StoreError::ConditionFailed)
    );
    ensure_eq!(t.get(&key).await.ctx("get")?, Some(it.clone()));
    ensure_eq!(
        t.delete(&key, Some(Cond::eq("v", 1)))
            .await
            .ctx("conditional delete")?,
        Some(it)
    );
    ensure_eq!(t.get(&key).await.ctx("get")?, None);
    gsi_eventually(&t, Query::index(GSI1, "DG"), "sk", &[]).await?;
    ensure_eq!(t.delete(&key, None).await.ctx("delete missing")?, None);
    ensure_eq!(
        t.delete(&key, Some(Cond::item_exists())).await,
        Err(StoreError::ConditionFailed)
    );
    Ok(())
}

/// A scan in pages of 7 evaluated items finds every `WALLET` item exactly once (and no other
/// kind), resumes from any page's cursor, skips expired items and refuses a tampered cursor.
async fn scan_visits_every_item_of_a_kind_once_in_bounded_pages(t: TableRef) -> Outcome {
    for i in 0..12 {
        let pk = format!("USER#scan{i:02}");
        t.put(item(&pk, "WALLET", &[("balance", n(i))]), None)
            .await
            .ctx("put wallet")?;
        t.put(item(&pk, "INFO", &[]), None).await.ctx("put info")?;
    }
    let expired = item("USER#scan99", "WALLET", &[("ttl", n(1))]);
    t.put(expired, None).await.ctx("put expired")?;
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = t
            .scan(Scan {
                sk: "WALLET".into(),
                limit: 7,
                cursor: cursor.clone(),
            })
            .await
            .ctx("scan")?;
        pages += 1;
        ensure!(
            page.items.len() <= 7,
            "a page holds at most `limit` items: {}",
            page.items.len()
        );
        for i in &page.items {
            ensure_eq!(get_s(i, "sk"), Some("WALLET"));
            seen.push(get_s(i, "pk").unwrap_or_default().to_owned());
        }
        if pages == 2 {
            // A cursor can be kept and the pass resumed later from it.
            let again = t
                .scan(Scan {
                    sk: "WALLET".into(),
                    limit: 7,
                    cursor: cursor.clone(),
                })
                .await
                .ctx("scan again")?;
            ensure_eq!(again.items.len(), page.items.len());
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        ensure!(pages < 20, "the pass ends");
    }
    seen.sort();
    let expected: Vec<String> = (0..12).map(|i| format!("USER#scan{i:02}")).collect();
    ensure_eq!(seen, expected);
    ensure!(
        pages >= 4,
        "25 items in pages of 7 evaluated: {pages} pages"
    );
    let bad = t
        .scan(Scan {
            sk: "WALLET".into(),
            limit: 7,
            cursor: Some("not-a-cursor".into()),
        })
        .await;
    ensure_eq!(bad, Err(StoreError::BadCursor));
    Ok(())
}
