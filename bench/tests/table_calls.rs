//! Call budgets: how many DynamoDB requests (table-port calls) the main routes may make.
//! Authenticated reads ≤ 2 calls and no write; login a bounded number; nothing on liveness.

use bench::calls::{Row, measure};
use shared::store::counting::CountingTable;
use shared::store::schema::MAIN;
use shared::store::{Key, Table};

fn row<'a>(rows: &'a [Row], route: &str, case: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.route == route && r.case == case)
        .unwrap_or_else(|| panic!("no row for {route} ({case})"))
}

#[tokio::test]
async fn authenticated_verify_makes_at_most_two_reads_and_no_write() {
    let rows = measure().await.expect("measure");
    let r = row(&rows, "GET /verify", "valid session");
    assert!(r.main.total() + r.logs.total() <= 2, "{r:?}");
    assert_eq!(r.main.writes() + r.logs.writes(), 0, "{r:?}");
}

#[tokio::test]
async fn balance_reads_session_and_wallet_only() {
    let rows = measure().await.expect("measure");
    let r = row(&rows, "GET /balance", "valid session");
    assert!(r.main.total() + r.logs.total() <= 2, "{r:?}");
    assert_eq!(r.main.writes() + r.logs.writes(), 0, "{r:?}");
}

#[tokio::test]
async fn every_authenticated_read_makes_at_most_two_calls_and_no_write() {
    let rows = measure().await.expect("measure");
    let reads: Vec<&Row> = rows
        .iter()
        .filter(|r| r.case == "valid session" && r.route.starts_with("GET "))
        .filter(|r| !["GET /extend", "GET /logoff"].contains(&r.route.as_str()))
        .collect();
    assert!(reads.len() >= 8, "too few reads measured: {reads:?}");
    assert!(
        reads.iter().any(|r| r.route == "GET /user/profile"),
        "{reads:?}"
    );
    for r in reads {
        assert!(r.main.total() + r.logs.total() <= 2, "{}: {r:?}", r.route);
        assert_eq!(r.main.writes() + r.logs.writes(), 0, "{}: {r:?}", r.route);
    }
}

#[tokio::test]
async fn list_reads_are_one_session_read_plus_one_query_page() {
    let rows = measure().await.expect("measure");
    for route in [
        "GET /address/list",
        "GET /bank-account/list",
        "GET /payout/list",
    ] {
        let r = row(&rows, route, "valid session");
        assert!(r.main.total() + r.logs.total() <= 2, "{route}: {r:?}");
        assert!(r.main.query <= 1, "{route}: {r:?}");
    }
}

#[tokio::test]
async fn rejected_tokens_cost_at_most_one_read() {
    let rows = measure().await.expect("measure");
    let none = row(&rows, "GET /verify", "no token");
    assert_eq!(none.main.total() + none.logs.total(), 0, "{none:?}");
    let revoked = row(&rows, "GET /verify", "revoked session");
    assert!(
        revoked.main.total() <= 1 && revoked.logs.total() == 0,
        "{revoked:?}"
    );
}

#[tokio::test]
async fn login_makes_a_bounded_number_of_calls_with_one_session_write() {
    let rows = measure().await.expect("measure");
    let ok = row(&rows, "POST /auth", "valid credentials");
    assert!(ok.main.total() <= 6, "{ok:?}");
    // The IP counter, the account's guessing slot (taken before the hash) and its refund (a
    // success does not count), and the session's transaction (with the check on LOGIN).
    assert!(ok.main.writes() <= 4, "{ok:?}");
    assert_eq!(ok.main.transact, 1, "{ok:?}");
    assert!(ok.logs.total() <= 1, "{ok:?}");
    for case in ["wrong password", "unknown user"] {
        let r = row(&rows, "POST /auth", case);
        assert!(r.main.total() + r.logs.total() <= 6, "{case}: {r:?}");
    }
}

#[tokio::test]
async fn health_touches_no_table() {
    let rows = measure().await.expect("measure");
    let r = row(&rows, "GET /health", "liveness");
    assert_eq!(r.main.total() + r.logs.total(), 0, "{r:?}");
}

#[tokio::test]
async fn counting_table_counts_every_operation_including_failed_ones() {
    let clock: shared::clock::ClockRef = std::sync::Arc::new(shared::clock::SystemClock);
    let store = shared::store::local::LocalStore::memory(clock).expect("store");
    let t = CountingTable::new(std::sync::Arc::new(store.table(&MAIN, "main")));
    let key = Key::new("A", "B");
    assert!(t.get(&key).await.expect("get").is_none());
    let cond = shared::store::expr::Cond::item_exists();
    assert!(t.delete(&key, Some(cond)).await.is_err(), "condition fails");
    let read = t
        .get_many(&[key.clone(), Key::new("A", "C")])
        .await
        .expect("batch get");
    assert_eq!(read, vec![None, None]);
    assert!(t.get_many(&[]).await.is_err(), "an empty batch is refused");
    let c = t.calls();
    assert_eq!(
        (c.get, c.batch_get, c.delete, c.total()),
        (1, 2, 1, 4),
        "{c:?}"
    );
    assert_eq!(c.reads(), 3);
    assert_eq!(c.writes(), 1);
}

#[tokio::test]
async fn each_money_write_is_one_transaction_after_its_lookup_and_one_batch_read() {
    let rows = measure().await.expect("measure");
    for (route, case) in [
        ("POST /balance/decrease", "new Idempotency-Key"),
        ("POST /points/redeem", "new Idempotency-Key"),
        ("POST /payment-callback", "invoice paid"),
    ] {
        let r = row(&rows, route, case);
        // The lookup is the session (debit, redemption: the session and LOGIN in one batch) or
        // the invoice naming the payer (callback); the batch reads the idempotency record and the
        // wallet together.
        assert_eq!(
            (r.main.transact, r.main.writes()),
            (1, 1),
            "{route} ({case}): {r:?}"
        );
        assert_eq!(r.main.get + r.main.batch_get, 2, "{route} ({case}): {r:?}");
        // After the money moved, a credited payment looks up the payer's WebSocket
        // connections (one index query) to tell them.
        let lookups = u64::from(route == "POST /payment-callback");
        assert_eq!(r.main.query, lookups, "{route} ({case}): {r:?}");
    }
}

#[tokio::test]
async fn replayed_and_refused_money_writes_write_nothing() {
    let rows = measure().await.expect("measure");
    for (route, case) in [
        ("POST /balance/decrease", "replayed Idempotency-Key"),
        ("POST /balance/decrease", "insufficient balance"),
        ("POST /payment-callback", "replayed callback"),
    ] {
        let r = row(&rows, route, case);
        assert_eq!(r.main.writes(), 0, "{route} ({case}): {r:?}");
        assert!(r.main.reads() <= 2, "{route} ({case}): {r:?}");
    }
}
