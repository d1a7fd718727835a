//! Store faults on the money path: the table throttled or unavailable at a single call of a
//! checkout, a debit and a payment callback. Each answers the 503 envelope (retryable) or
//! succeeds; money moves exactly once across the failure and the retry; a checkout whose invoice
//! could not be stored leaves nothing payable at Xendit. (Provider faults — Xendit 500/timeout,
//! FCM/SMS/SES errors — are in `payments.rs`, `push.rs` and `providers.rs`.)

mod common;
mod served;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use base64::Engine;
use common::{assert_envelope, send};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use shared::App;
use shared::clock::SystemClock;
use shared::domain::money::Money;
use shared::store::faulty::{Fault, FaultyTable, Op, Trigger};
use shared::store::local::LocalStore;
use shared::store::schema::{GSI1, LOGS, MAIN};
use shared::store::{Query, TableRef, keys, query_all};
use shared::wallet::{Change, EntryType};

struct Env {
    app: App,
    faulty: Arc<FaultyTable>,
    router: Router,
    base: String,
}

async fn env() -> Env {
    let mut faulty_out = None;
    let s = served::serve(|config| {
        let clock = Arc::new(SystemClock);
        let store = LocalStore::memory(clock.clone()).expect("memory store");
        let faulty = FaultyTable::wrap(store.table(&MAIN, &config.main_table));
        let logs: TableRef = Arc::new(store.table(&LOGS, &config.logs_table));
        let main: TableRef = faulty.clone();
        faulty_out = Some(faulty);
        App::assemble(config, main, logs, clock)
    })
    .await;
    let faulty = faulty_out.expect("built");
    Env {
        app: s.app,
        faulty,
        router: s.router,
        base: s.base,
    }
}

fn get(path: &str, token: &str) -> Request<Body> {
    Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("req")
}

fn post_json(path: &str, token: Option<&str>, body: Value) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/json");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).expect("req")
}

/// 503 with the envelope and `Retry-After`, or the expected success.
fn assert_503_or(status: StatusCode, headers: &http::HeaderMap, body: &Value, ok: StatusCode) {
    if status == StatusCode::SERVICE_UNAVAILABLE {
        assert_envelope(status, body, 503);
        assert!(headers.contains_key("retry-after"), "Retry-After on 503");
    } else {
        assert_eq!(status, ok, "{body}");
    }
}

impl Env {
    async fn user(&self, name: &str) -> String {
        let (s, _, body) = send(
            &self.router,
            post_json("/_dev/users", None, json!({ "username": name })),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    async fn credit(&self, user: &str, amount: i64) {
        let change = Change {
            kind: EntryType::Credit,
            amount: Money::from_rupiah(amount),
            description: "test top-up".into(),
            reference_id: "test".into(),
            funds: shared::wallet::Funds::Cash,
        };
        self.app
            .wallets()
            .apply(
                &shared::domain::Username::from_stored(user),
                &change,
                None,
                &[],
            )
            .await
            .expect("credit");
    }

    async fn balance(&self, token: &str) -> i64 {
        self.faulty.clear();
        let (s, _, body) = send(&self.router, get("/balance", token)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body["balance"].as_i64().expect("balance")
    }

    async fn ledger(&self, user: &str) -> i64 {
        self.app
            .wallets()
            .ledger_sum(&shared::domain::Username::from_stored(user))
            .await
            .expect("ledger")
            .rupiah()
    }

    /// The simulator's invoices, over HTTP with Xendit's Basic auth.
    async fn xendit_invoices(&self) -> Vec<Value> {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:",
            self.app
                .config
                .xendit_secret_key
                .as_ref()
                .expect("local key")
                .expose()
        ));
        reqwest::Client::new()
            .get(format!("{}/_dev/xendit/v2/invoices?limit=100", self.base))
            .header("authorization", format!("Basic {auth}"))
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json")
    }

    async fn sim(&self, path: &str, body: Value) -> Value {
        let res = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("sim");
        assert_eq!(res.status(), 200);
        res.json().await.expect("json")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_whose_invoice_cannot_be_stored_is_503_and_leaves_nothing_payable_at_xendit() {
    let e = env().await;
    let token = e.user("orphan").await;
    for fault in [Fault::Unavailable, Fault::Throttled] {
        // The checkout is reserved first (one transaction); the update recording Xendit's
        // answer is the write that fails here.
        e.faulty.fail(Trigger::Op(Op::Update), fault);
        let (s, h, body) = send(
            &e.router,
            post_json(
                "/payment-checkout",
                Some(&token),
                json!({ "amount": 10_000 }),
            ),
        )
        .await;
        e.faulty.clear();
        assert_envelope(s, &body, 503);
        assert!(h.contains_key("retry-after"));
    }
    // Xendit accepted both invoices; both were expired again, so neither can be paid.
    let at_xendit = e.xendit_invoices().await;
    assert_eq!(at_xendit.len(), 2, "{at_xendit:?}");
    for inv in &at_xendit {
        assert_eq!(inv["status"], "EXPIRED", "orphan left payable: {inv}");
    }
    let mine = query_all(
        e.app.main.as_ref(),
        Query::index(GSI1, keys::user_invoices_gsi("orphan")),
    )
    .await
    .expect("q");
    assert!(mine.is_empty(), "no invoice stored: {mine:?}");
    // After the outage the same request succeeds.
    let (s, _, body) = send(
        &e.router,
        post_json(
            "/payment-checkout",
            Some(&token),
            json!({ "amount": 10_000 }),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debit_failing_at_any_store_call_is_503_or_done_and_a_retry_debits_exactly_once() {
    let e = env().await;
    let token = e.user("debtor").await;
    e.credit("debtor", 1_000).await;
    let mut expected = 1_000;
    let mut injected_somewhere = 0;
    for n in 1..=8 {
        let key = format!("debit-{n}");
        let req = || {
            let mut r = post_json(
                "/balance/decrease",
                Some(&token),
                json!({ "amount": 10, "description": "Purchase" }),
            );
            r.headers_mut()
                .insert("idempotency-key", key.parse().expect("header"));
            r
        };
        e.faulty.fail(Trigger::NthCall(n), Fault::Throttled);
        let (s, h, body) = send(&e.router, req()).await;
        injected_somewhere += e.faulty.injected();
        e.faulty.clear();
        assert_503_or(s, &h, &body, StatusCode::OK);
        if s == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(
                e.balance(&token).await,
                expected,
                "a failed debit moved money"
            );
        }
        // The client retries with the same key: one debit in all.
        let (s, _, body) = send(&e.router, req()).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        expected -= 10;
        assert_eq!(e.balance(&token).await, expected, "call {n}");
        assert_eq!(e.ledger("debtor").await, expected, "ledger after call {n}");
    }
    assert!(injected_somewhere >= 3, "faults must have hit the debit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_callback_failing_at_any_store_call_is_retried_and_credits_once() {
    let e = env().await;
    let token = e.user("payer").await;
    let (s, _, co) = send(
        &e.router,
        post_json(
            "/payment-checkout",
            Some(&token),
            json!({ "amount": 25_000 }),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{co}");
    let xid = co["id"].as_str().expect("id");
    let paid = e
        .sim(
            &format!("/_dev/xendit/invoices/{xid}/pay"),
            json!({ "deliver": false }),
        )
        .await;
    let payload = xendit_sim::callback_payload(&paid["invoice"]);
    let callback = || {
        Request::post("/payment-callback")
            .header("content-type", "application/json")
            .header(
                "x-callback-token",
                e.app
                    .config
                    .xendit_callback_token
                    .as_ref()
                    .expect("local token")
                    .expose(),
            )
            .body(Body::from(payload.to_string()))
            .expect("req")
    };
    let mut failures = 0;
    for n in 1..=10 {
        e.faulty.fail(Trigger::NthCall(n), Fault::Unavailable);
        let (s, h, body) = send(&e.router, callback()).await;
        e.faulty.clear();
        assert_503_or(s, &h, &body, StatusCode::OK);
        if s == StatusCode::SERVICE_UNAVAILABLE {
            failures += 1;
        }
        let balance = e.balance(&token).await;
        assert!(
            balance == 0 || balance == 25_000,
            "partial credit: {balance}"
        );
    }
    assert!(failures >= 1, "some call must have failed");
    // Xendit retries until it gets a 2xx; the wallet holds exactly one credit.
    let (s, _, body) = send(&e.router, callback()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(e.balance(&token).await, 25_000);
    assert_eq!(e.ledger("payer").await, 25_000);
}
