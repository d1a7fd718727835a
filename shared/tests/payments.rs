//! The money path in-process: wallet debits under races and retries, checkout through the Xendit
//! simulator, the callback exactly once, faults, the sync, ownership, and the Lambda event shapes.
//! The app listens on a real loopback port, because the Xendit client and the simulator's callback
//! delivery speak HTTP.

mod common;
mod served;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use common::{assert_emf, assert_envelope, lambda_event, send};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use shared::App;
use shared::clock::SystemClock;
use shared::config::Config;
use shared::domain::money::Money;
use shared::payments::invoice::{InvoiceRecord, NewInvoice, Status};
use shared::store::local::LocalStore;
use shared::store::schema::{GSI1, GSI2};
use shared::store::{Query, keys, query_all, to_item};
use shared::wallet::{Change, EntryType};

/// A running app: state, in-process router and the base URL it also listens on.
struct Env {
    app: App,
    router: Router,
    base: String,
}

async fn env_with(tweak: impl FnOnce(&mut Config)) -> Env {
    env_on(Arc::new(SystemClock), tweak).await
}

/// An app (and its simulator) on `clock`.
async fn env_on(clock: shared::clock::ClockRef, tweak: impl FnOnce(&mut Config)) -> Env {
    let s = served::serve(|mut config| {
        tweak(&mut config);
        let store = LocalStore::memory(clock.clone()).expect("memory store");
        App::with_local_store(config, &store, clock)
    })
    .await;
    Env {
        app: s.app,
        router: s.router,
        base: s.base,
    }
}

async fn env() -> Env {
    env_with(|_| {}).await
}

impl Env {
    /// Creates an active user with an empty wallet; returns its token.
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
        let (s, _, body) = send(&self.router, get("/balance", Some(token))).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body["balance"].as_i64().expect("balance")
    }

    async fn checkout(&self, token: &str, amount: i64) -> Value {
        let req = json!({ "amount": amount, "description": "Top up", "payment_method": "EWALLET", "ewallet_type": "OVO" });
        let (s, _, body) = send(
            &self.router,
            post_json("/payment-checkout", Some(token), req),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body
    }

    /// A simulator control call over real HTTP (it delivers the callback over HTTP too).
    async fn sim(&self, path: &str, body: Value) -> (u16, Value) {
        let res = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("sim");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Marks an invoice paid at the simulator without delivering its callback (a lost callback);
    /// returns the simulator's invoice.
    async fn pay_undelivered(&self, invoice_id: &str) -> Value {
        let (_, body) = self
            .sim(
                &format!("/_dev/xendit/invoices/{invoice_id}/pay"),
                json!({ "deliver": false }),
            )
            .await;
        body["invoice"].clone()
    }

    /// `POST /invoice/cancel/xendit` as `token`'s user.
    async fn cancel(&self, token: &str, invoice_id: &str) -> (StatusCode, http::HeaderMap, Value) {
        let body = json!({ "invoice_id": invoice_id });
        send(
            &self.router,
            post_json("/invoice/cancel/xendit", Some(token), body),
        )
        .await
    }

    async fn invoice(&self, id: &str) -> InvoiceRecord {
        self.app
            .invoices()
            .load(id)
            .await
            .expect("load")
            .expect("invoice stored")
    }

    async fn assert_reconciled(&self, user: &str, token: &str) {
        let balance = self.balance(token).await;
        let sum = self
            .app
            .wallets()
            .ledger_sum(&shared::domain::Username::from_stored(user))
            .await
            .expect("ledger");
        assert_eq!(sum.rupiah(), balance, "ledger sum must equal the balance");
    }
}

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::empty()).expect("req")
}

fn post_json(path: &str, token: Option<&str>, body: Value) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/json");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).expect("req")
}

fn callback(token: &str, body: &Value) -> Request<Body> {
    Request::post("/payment-callback")
        .header("content-type", "application/json")
        .header("x-callback-token", token)
        .body(Body::from(body.to_string()))
        .expect("req")
}

fn decrease(token: &str, amount: Value, key: Option<&str>) -> Request<Body> {
    let mut b = Request::post("/balance/decrease")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"));
    if let Some(k) = key {
        b = b.header("idempotency-key", k);
    }
    b.body(Body::from(
        json!({ "amount": amount, "description": "Purchase" }).to_string(),
    ))
    .expect("req")
}

/// A local WebSocket connection of a fresh session of `user`, subscribed to payment events.
async fn subscribe(
    app: &App,
    user: &str,
) -> tokio::sync::mpsc::UnboundedReceiver<shared::ws::Outgoing> {
    let hub = app.ws_hub.clone().expect("local hub");
    let issued = app
        .sessions()
        .issue(&shared::domain::Username::from_stored(user), false)
        .await
        .expect("session");
    let conn = format!("test-{}", uuid::Uuid::new_v4().simple());
    app.realtime()
        .register(
            &conn,
            &shared::domain::Username::from_stored(user),
            &issued.sid,
        )
        .await
        .expect("register");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    hub.attach(&conn, tx);
    app.realtime()
        .message(&conn, "{\"action\":\"subscribe:payment\"}")
        .await
        .expect("subscribe");
    rx
}

fn events(rx: &mut tokio::sync::mpsc::UnboundedReceiver<shared::ws::Outgoing>) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(m) = rx.try_recv() {
        if let shared::ws::Outgoing::Text(m) = m {
            out.push(serde_json::from_str(&m).expect("json event"));
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Wallet

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn debit_never_overdraws_under_100_parallel_requests() {
    let e = env().await;
    let token = e.user("racer").await;
    e.credit("racer", 500).await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let r = e.router.clone();
        let t = token.clone();
        tasks.push(tokio::spawn(async move {
            send(&r, decrease(&t, json!(10), None)).await
        }));
    }
    let (mut ok, mut short) = (0, 0);
    for t in tasks {
        let (s, _, body) = t.await.expect("task");
        match s {
            StatusCode::OK => ok += 1,
            StatusCode::BAD_REQUEST => {
                assert_eq!(body["message"], "Insufficient Balance");
                short += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((ok, short), (50, 50));
    assert_eq!(e.balance(&token).await, 0);
    e.assert_reconciled("racer", &token).await;
    assert_eq!(
        e.app
            .wallets()
            .ledger(&shared::domain::Username::from_stored("racer"))
            .await
            .expect("ledger")
            .len(),
        51
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repeated_idempotency_key_debits_once_and_answers_the_same() {
    let e = env().await;
    let token = e.user("idem").await;
    e.credit("idem", 100).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let r = e.router.clone();
        let t = token.clone();
        tasks.push(tokio::spawn(async move {
            send(&r, decrease(&t, json!(30), Some("order-1"))).await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        let (s, _, body) = t.await.expect("task");
        assert_eq!(s, StatusCode::OK, "{body}");
        answers.push((body["balance"].clone(), body["transaction_id"].clone()));
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "same key, same answer: {answers:?}"
    );
    assert_eq!(e.balance(&token).await, 70);
    // The same key with a different request is refused, and changes nothing.
    let (s, _, body) = send(&e.router, decrease(&token, json!(31), Some("order-1"))).await;
    assert_envelope(s, &body, 422);
    assert_eq!(e.balance(&token).await, 70);
    e.assert_reconciled("idem", &token).await;
}

#[tokio::test]
async fn decrease_refuses_bad_amounts_and_overdrafts_with_envelopes() {
    let e = env().await;
    let token = e.user("strict").await;
    e.credit("strict", 50).await;
    for bad in [
        json!(10.5),
        json!(-10),
        json!(0),
        json!(1_000_000_000_000i64),
        json!(1e30),
        json!("10"),
    ] {
        let (s, _, body) = send(&e.router, decrease(&token, bad.clone(), None)).await;
        assert_envelope(s, &body, 400);
    }
    let (s, _, body) = send(&e.router, decrease(&token, json!(51), None)).await;
    assert_envelope(s, &body, 400);
    assert_eq!(body["message"], "Insufficient Balance");
    let (s, _, body) = send(&e.router, decrease("not-a-token", json!(1), None)).await;
    assert_envelope(s, &body, 401);
    assert_eq!(e.balance(&token).await, 50);
}

// ------------------------------------------------------------------------------------------------
// Checkout, callback

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paying_an_invoice_credits_the_wallet_once_and_notifies_the_owner() {
    let e = env().await;
    let token = e.user("payer").await;
    let mut rx = subscribe(&e.app, "payer").await;
    let co = e.checkout(&token, 75_000).await;
    let id = co["invoice_id"].as_str().expect("invoice id");
    assert_eq!(co["external_id"], id);
    assert_eq!(co["status"], "PENDING");
    let rec = e.invoice(id).await;
    assert_eq!(
        (rec.status, rec.amount, rec.gsi2pk.as_deref()),
        (Status::Pending, 75_000, Some("PENDING"))
    );

    let page = reqwest::get(co["invoice_url"].as_str().expect("url"))
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").contains("Pay"));

    let (s, body) = e
        .sim(
            &format!(
                "/_dev/xendit/invoices/{}/pay",
                co["id"].as_str().expect("xid")
            ),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, body["callback_status"].as_u64()),
        (200, Some(200)),
        "{body}"
    );
    assert_eq!(e.balance(&token).await, 75_000);
    let rec = e.invoice(id).await;
    assert_eq!(rec.status, Status::Paid);
    assert!(
        rec.gsi2pk.is_none(),
        "a paid invoice leaves the pending index"
    );
    let got = events(&mut rx);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["event"], "payment:status:update");
    assert_eq!(got[0]["data"]["invoice_id"], id);
    assert_eq!(got[0]["data"]["status"], "PAID");
    assert_eq!(got[0]["data"]["amount"], 75_000);
    assert!(got[0]["data"]["paid_at"].is_string());

    // Re-delivery of the same callback changes nothing.
    let (_, body) = e
        .sim(&format!("/_dev/xendit/invoices/{id}/callback"), json!({}))
        .await;
    assert_eq!(body["callback_status"], 200);
    assert_eq!(e.balance(&token).await, 75_000);
    assert!(events(&mut rx).is_empty());
    e.assert_reconciled("payer", &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_callback_delivered_20_times_concurrently_credits_once() {
    let e = env().await;
    let token = e.user("dupes").await;
    let co = e.checkout(&token, 20_000).await;
    let paid = e.pay_undelivered(co["id"].as_str().expect("xid")).await;
    let payload = xendit_sim::callback_payload(&paid);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let r = e.router.clone();
        let p = payload.clone();
        tasks.push(tokio::spawn(async move {
            send(&r, callback("local-callback-token", &p)).await
        }));
    }
    for t in tasks {
        let (s, _, body) = t.await.expect("task");
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    assert_eq!(e.balance(&token).await, 20_000);
    assert_eq!(
        e.app
            .wallets()
            .ledger(&shared::domain::Username::from_stored("dupes"))
            .await
            .expect("ledger")
            .len(),
        1
    );
    e.assert_reconciled("dupes", &token).await;
}

#[tokio::test]
async fn a_callback_with_a_wrong_or_missing_token_is_refused_and_changes_nothing() {
    let e = env().await;
    let token = e.user("victim").await;
    let co = e.checkout(&token, 10_000).await;
    let paid = e
        .pay_undelivered(co["invoice_id"].as_str().expect("id"))
        .await;
    let payload = xendit_sim::callback_payload(&paid);
    for tok in ["wrong-token", "local-callback-tokeN", ""] {
        let (s, _, body) = send(&e.router, callback(tok, &payload)).await;
        assert_envelope(s, &body, 401);
    }
    let req = Request::post("/payment-callback")
        .header("content-type", "application/json")
        .body(Body::from(payload.to_string()))
        .expect("req");
    let (s, _, body) = send(&e.router, req).await;
    assert_envelope(s, &body, 401);
    assert_eq!(e.balance(&token).await, 0);
    assert_eq!(
        e.invoice(co["invoice_id"].as_str().expect("id"))
            .await
            .status,
        Status::Pending
    );
}

#[tokio::test]
async fn an_invoice_paid_short_is_held_for_review_by_the_callback_and_the_sync_alike() {
    let e = env().await;
    let token = e.user("shortpay").await;
    let mismatches = |id: String| {
        let logs = e.app.logs.clone();
        async move {
            query_all(logs.as_ref(), Query::pk(format!("XENDIT_CALLBACK#{id}")))
                .await
                .expect("logs")
                .into_iter()
                .filter(|l| l.get("event").and_then(|v| v.as_str()) == Some("amount_mismatch"))
                .count()
        }
    };

    // The callback reports 1 000 paid on a 10 000 invoice: answered 2xx (a retry cannot change
    // the amounts), nothing credited, one alarmable audit event.
    let co = e.checkout(&token, 10_000).await;
    let id = co["invoice_id"].as_str().expect("id").to_owned();
    let (_, body) = e
        .sim(
            &format!("/_dev/xendit/invoices/{id}/pay"),
            json!({ "paid_amount": 1_000 }),
        )
        .await;
    assert_eq!(body["callback_status"], 200, "{body}");
    assert_eq!(e.balance(&token).await, 0);
    assert_eq!(e.invoice(&id).await.status, Status::Pending);
    assert_eq!(mismatches(id.clone()).await, 1);

    // Xendit delivers it again, and the sync sees it PAID at Xendit: still nothing credited
    // (before, the sync credited the full 10 000), and no second event.
    let (_, again) = e
        .sim(&format!("/_dev/xendit/invoices/{id}/callback"), json!({}))
        .await;
    assert_eq!(again["callback_status"], 200, "{again}");
    e.app.sync().run().await.expect("sync");
    assert_eq!(e.balance(&token).await, 0, "the sync must not credit it");
    assert_eq!(mismatches(id.clone()).await, 1);

    // Paid short with the callback lost: the sync applies the same rule.
    let co = e.checkout(&token, 20_000).await;
    let lost = co["invoice_id"].as_str().expect("id").to_owned();
    e.sim(
        &format!("/_dev/xendit/invoices/{lost}/pay"),
        json!({ "paid_amount": 5_000, "deliver": false }),
    )
    .await;
    e.app.sync().run().await.expect("sync");
    e.app.sync().run().await.expect("sync");
    assert_eq!(e.balance(&token).await, 0);
    assert_eq!(mismatches(lost.clone()).await, 1);

    // Paid as billed is still credited.
    let co = e.checkout(&token, 3_000).await;
    let fine = co["invoice_id"].as_str().expect("id").to_owned();
    let (_, ok) = e
        .sim(&format!("/_dev/xendit/invoices/{fine}/pay"), json!({}))
        .await;
    assert_eq!(ok["callback_status"], 200);
    assert_eq!(e.balance(&token).await, 3_000);
}

#[tokio::test]
async fn an_expired_callback_after_payment_changes_nothing() {
    let e = env().await;
    let token = e.user("ooo").await;
    let co = e.checkout(&token, 5_000).await;
    let id = co["invoice_id"].as_str().expect("id");
    let (_, sim) = e
        .sim(&format!("/_dev/xendit/invoices/{id}/pay"), json!({}))
        .await;
    let mut late = xendit_sim::callback_payload(&sim["invoice"]);
    late["status"] = "EXPIRED".into();
    let (s, _, body) = send(&e.router, callback("local-callback-token", &late)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(e.invoice(id).await.status, Status::Paid);
    assert_eq!(e.balance(&token).await, 5_000);
}

#[tokio::test]
async fn an_expired_callback_on_a_pending_invoice_marks_it_expired() {
    let e = env().await;
    let token = e.user("lapsed").await;
    let mut rx = subscribe(&e.app, "lapsed").await;
    let co = e.checkout(&token, 5_000).await;
    let id = co["invoice_id"].as_str().expect("id");
    let (_, body) = e
        .sim(&format!("/_dev/xendit/invoices/{id}/expire"), json!({}))
        .await;
    assert_eq!(body["callback_status"], 200);
    assert_eq!(e.invoice(id).await.status, Status::Expired);
    assert_eq!(events(&mut rx)[0]["data"]["status"], "EXPIRED");
}

// ------------------------------------------------------------------------------------------------
// Faults

/// The user sees no invoice: none listed, and the checkout's intent (if any) answers 404.
async fn assert_no_invoice_visible(e: &Env, token: &str) {
    let (s, _, body) = send(&e.router, get("/invoice/list/xendit", Some(token))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"], json!([]), "{body}");
    for rec in intents(e).await {
        let (s, _, body) = send(
            &e.router,
            get(
                &format!("/invoice/detail?invoice_id={}", rec.invoice_id),
                None,
            ),
        )
        .await;
        assert_envelope(s, &body, 404);
    }
}

/// The checkouts stored without a Xendit id (intents) in the sync's pending index.
async fn intents(e: &Env) -> Vec<InvoiceRecord> {
    let pending = query_all(
        e.app.main.as_ref(),
        Query::index(GSI2, keys::PENDING_INVOICES_GSI_PK),
    )
    .await
    .expect("q");
    pending
        .iter()
        .map(|i| shared::store::from_item::<InvoiceRecord>(i).expect("record"))
        .filter(|r| r.xendit_id.is_empty())
        .collect()
}

/// Plans a simulator fault: `mode` on `route` (all when `None`) for `count` calls (all when
/// `None`).
async fn fault(e: &Env, mode: &str, route: Option<&str>, count: Option<u32>) {
    let (s, body) = e
        .sim(
            "/_dev/xendit/faults",
            json!({ "mode": mode, "route": route, "count": count }),
        )
        .await;
    assert_eq!(s, 200, "{body}");
}

async fn checkout_status(e: &Env, token: &str, amount: i64) -> (StatusCode, Value) {
    let req = json!({ "amount": amount, "description": "Top up" });
    let (s, _, body) = send(&e.router, post_json("/payment-checkout", Some(token), req)).await;
    (s, body)
}

/// The events logged about `subject` (an invoice id, or a foreign `external_id`) by the
/// checkout and the callback.
async fn audit_events(e: &Env, subject: &str) -> Vec<String> {
    let mut events = Vec::new();
    for kind in ["XENDIT_CHECKOUT", "XENDIT_CALLBACK"] {
        let logs = query_all(e.app.logs.as_ref(), Query::pk(format!("{kind}#{subject}")))
            .await
            .expect("logs");
        events.extend(
            logs.iter()
                .filter_map(|l| l.get("event").and_then(|v| v.as_str()).map(str::to_owned)),
        );
    }
    events
}

#[tokio::test]
async fn checkout_answers_502_shows_nothing_and_the_sync_gives_up_the_intent_when_xendit_fails() {
    let clock = shared::clock::ManualClock::new();
    let e = env_on(Arc::new(clock.clone()), |c| c.max_open_invoices = 1).await;
    let token = e.user("unlucky").await;
    fault(&e, "error500", None, None).await;
    let (s, body) = checkout_status(&e, &token, 10_000).await;
    assert_envelope(s, &body, 502);
    assert_eq!(body["message"], "Payment provider unavailable");
    assert_no_invoice_visible(&e, &token).await;
    let kept = intents(&e).await;
    assert_eq!(kept.len(), 1, "the intent stays until Xendit can be asked");
    // Its slot is held meanwhile.
    fault(&e, "none", None, None).await;
    let (s, body) = checkout_status(&e, &token, 10_000).await;
    assert_envelope(s, &body, 409);
    // Within the grace a run leaves it alone (its create call may still be running) ...
    let first = e.app.sync().run().await.expect("sync");
    assert_eq!((first.abandoned, first.adopted), (0, 0), "{first:?}");
    // ... after it, Xendit holds nothing for it, so it is given up and its slot freed.
    clock.advance(chrono::Duration::minutes(6));
    let run = e.app.sync().run().await.expect("sync");
    assert_eq!(
        (run.abandoned, run.adopted, run.errors),
        (1, 0, 0),
        "{run:?}"
    );
    assert!(intents(&e).await.is_empty());
    assert_eq!(e.invoice(&kept[0].invoice_id).await.status, Status::Expired);
    assert_no_invoice_visible(&e, &token).await;
    e.checkout(&token, 10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_answers_502_within_the_client_timeout_when_xendit_times_out() {
    let e = env_with(|c| c.xendit_timeout_ms = 300).await;
    let token = e.user("slowpoke").await;
    fault(&e, "timeout", None, None).await;
    let started = std::time::Instant::now();
    let (s, body) = checkout_status(&e, &token, 10_000).await;
    assert_envelope(s, &body, 502);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the client timeout bounds the wait"
    );
    assert_no_invoice_visible(&e, &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checkout_whose_create_times_out_after_xendit_created_it_adopts_it_and_credits_once() {
    let e = env_with(|c| c.xendit_timeout_ms = 300).await;
    let token = e.user("adoptee").await;
    // Xendit creates the invoice, but its answer comes after the client gave up.
    fault(&e, "timeout_after", Some("create_invoice"), Some(1)).await;
    let co = e.checkout(&token, 25_000).await;
    let id = co["invoice_id"].as_str().expect("id");
    let stored = e.invoice(id).await;
    assert_eq!(stored.xendit_id, co["id"].as_str().expect("xendit id"));
    assert!(
        audit_events(&e, id)
            .await
            .contains(&"create_adopted".to_owned())
    );
    let (_, paid) = e
        .sim(&format!("/_dev/xendit/invoices/{id}/pay"), json!({}))
        .await;
    assert_eq!(paid["callback_status"], 200, "{paid}");
    let (_, again) = e
        .sim(&format!("/_dev/xendit/invoices/{id}/callback"), json!({}))
        .await;
    assert_eq!(again["callback_status"], 200, "{again}");
    assert_eq!(e.balance(&token).await, 25_000);
    e.assert_reconciled("adoptee", &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checkout_left_unresolved_is_adopted_by_the_sync_and_its_payment_credited_once() {
    let clock = shared::clock::ManualClock::new();
    let e = env_on(Arc::new(clock.clone()), |c| c.xendit_timeout_ms = 300).await;
    let token = e.user("orphaned").await;
    // The create happens but times out, and so does the lookup after it.
    fault(&e, "timeout_after", None, Some(2)).await;
    let (s, body) = checkout_status(&e, &token, 30_000).await;
    assert_envelope(s, &body, 502);
    assert_no_invoice_visible(&e, &token).await;
    let id = intents(&e).await[0].invoice_id.clone();
    assert!(
        audit_events(&e, &id)
            .await
            .contains(&"create_unresolved".to_owned())
    );
    clock.advance(chrono::Duration::minutes(6));
    let run = e.app.sync().run().await.expect("sync");
    assert_eq!((run.adopted, run.paid, run.errors), (1, 0, 0), "{run:?}");
    let adopted = e.invoice(&id).await;
    assert!(!adopted.xendit_id.is_empty());
    assert_eq!(adopted.status, Status::Pending);
    // The user, e-mailed the link by Xendit, pays; the callback credits once.
    let (_, paid) = e
        .sim(&format!("/_dev/xendit/invoices/{id}/pay"), json!({}))
        .await;
    assert_eq!(paid["callback_status"], 200, "{paid}");
    let run = e.app.sync().run().await.expect("sync");
    assert_eq!(run.checked, 0, "{run:?}");
    assert_eq!(e.balance(&token).await, 30_000);
    e.assert_reconciled("orphaned", &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_callback_for_a_checkout_whose_create_answer_was_lost_adopts_it_and_credits_once() {
    let e = env_with(|c| c.xendit_timeout_ms = 300).await;
    let token = e.user("early").await;
    fault(&e, "timeout_after", None, Some(2)).await;
    let (s, body) = checkout_status(&e, &token, 40_000).await;
    assert_envelope(s, &body, 502);
    let id = intents(&e).await[0].invoice_id.clone();
    // Paid before any sync; the callback is delivered 8 times at once.
    let sim = e.pay_undelivered(&id).await;
    let payload = xendit_sim::callback_payload(&sim);
    let mut calls = Vec::new();
    for _ in 0..8 {
        let (router, payload) = (e.router.clone(), payload.clone());
        calls.push(tokio::spawn(async move {
            send(&router, callback("local-callback-token", &payload)).await
        }));
    }
    let mut recorded = 0;
    for c in calls {
        let (s, _, body) = c.await.expect("join");
        assert_eq!(s, StatusCode::OK, "{body}");
        recorded += usize::from(body["message"] == "Payment Recorded");
    }
    assert_eq!(recorded, 1);
    assert_eq!(e.balance(&token).await, 40_000);
    assert_eq!(e.invoice(&id).await.status, Status::Paid);
    assert!(audit_events(&e, &id).await.contains(&"adopted".to_owned()));
    e.assert_reconciled("early", &token).await;
}

#[tokio::test]
async fn a_callback_for_an_invoice_we_do_not_hold_answers_200_and_changes_nothing() {
    let e = env().await;
    let token = e.user("bystander").await;
    let co = e.checkout(&token, 5_000).await;
    let id = co["invoice_id"].as_str().expect("id");
    let sim = e.pay_undelivered(id).await;
    // Someone else's invoice on the same Xendit account.
    let mut foreign = xendit_sim::callback_payload(&sim);
    foreign["external_id"] = "order-77".into();
    let (s, _, body) = send(&e.router, callback("local-callback-token", &foreign)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Unknown Invoice Logged");
    assert!(
        audit_events(&e, "order-77")
            .await
            .contains(&"unknown_invoice".to_owned())
    );
    // Ours, but reporting another Xendit invoice than the one we hold.
    let mut other = xendit_sim::callback_payload(&sim);
    other["id"] = "579c8d61f23fa4ca35e52da4".into();
    let (s, _, body) = send(&e.router, callback("local-callback-token", &other)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Invoice Id Mismatch Logged");
    assert_eq!(e.balance(&token).await, 0);
    assert_eq!(e.invoice(id).await.status, Status::Pending);
}

#[tokio::test]
async fn cancelling_an_invoice_xendit_already_expired_answers_expired() {
    let e = env().await;
    let token = e.user("late").await;
    let co = e.checkout(&token, 10_000).await;
    let id = co["invoice_id"].as_str().expect("id");
    e.sim(
        &format!("/_dev/xendit/invoices/{id}/expire"),
        json!({ "deliver": false }),
    )
    .await;
    let (s, _, body) = e.cancel(&token, id).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "EXPIRED");
    assert_eq!(e.invoice(id).await.status, Status::Expired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_whose_expire_answer_is_lost_reads_the_invoice_back() {
    let e = env_with(|c| c.xendit_timeout_ms = 300).await;
    let token = e.user("lostcancel").await;
    let co = e.checkout(&token, 10_000).await;
    let id = co["invoice_id"].as_str().expect("id");
    fault(&e, "timeout_after", Some("expire_invoice"), Some(1)).await;
    let (s, _, body) = e.cancel(&token, id).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "EXPIRED");
}

#[tokio::test]
async fn an_invoice_past_its_expiry_date_without_a_callback_is_expired_by_one_sync_run() {
    let clock = shared::clock::ManualClock::new();
    let e = env_on(Arc::new(clock.clone()), |c| c.invoice_duration_secs = 3_600).await;
    let token = e.user("forgetful").await;
    let co = e.checkout(&token, 7_000).await;
    let id = co["invoice_id"].as_str().expect("id");
    clock.advance(chrono::Duration::minutes(61));
    let run = e.app.sync().run().await.expect("sync");
    assert_eq!((run.checked, run.expired), (1, 1), "{run:?}");
    assert_eq!(e.invoice(id).await.status, Status::Expired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_whose_lookups_are_rate_limited_waits_and_completes() {
    let e = env().await;
    let token = e.user("patient").await;
    let co = e.checkout(&token, 8_000).await;
    let id = co["invoice_id"].as_str().expect("id");
    e.pay_undelivered(id).await;
    fault(&e, "rate_limit", Some("get_invoice"), Some(2)).await;
    let run = e.app.sync().run().await.expect("sync");
    assert_eq!((run.paid, run.errors), (1, 0), "{run:?}");
    assert_eq!(e.balance(&token).await, 8_000);
}

#[tokio::test]
async fn a_rate_limit_that_outlasts_the_retries_fails_the_call_cleanly() {
    let e = env().await;
    let token = e.user("throttled").await;
    fault(&e, "rate_limit", Some("create_invoice"), None).await;
    let (s, body) = checkout_status(&e, &token, 8_000).await;
    assert_envelope(s, &body, 502);
    // A 429 is a definite refusal: nothing is left for the sync.
    assert!(intents(&e).await.is_empty());
}

#[tokio::test]
async fn checkout_amounts_stop_at_xendits_invoice_maximum() {
    let e = env().await;
    let token = e.user("whale").await;
    let (s, body) = checkout_status(&e, &token, 1_000_000_000).await;
    assert_envelope(s, &body, 400);
    assert_eq!(body["errors"][0]["field"], "amount", "{body}");
    let (s, body) = checkout_status(&e, &token, 999_999_999).await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_simulator_refuses_a_wrong_api_key_like_xendit() {
    let e = env_with(|c| {
        c.xendit_secret_key = Some(shared::config::Secret::new("xnd_development_wrong"))
    })
    .await;
    // The simulator checks against the configured key, so make the client use a different one.
    let res = reqwest::Client::new()
        .get(format!("{}/_dev/xendit/v2/invoices", e.base))
        .basic_auth("xnd_other", Some(""))
        .send()
        .await
        .expect("req");
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error_code"], "INVALID_API_KEY");
}

// ------------------------------------------------------------------------------------------------
// Sync

#[tokio::test]
async fn sync_marks_an_invoice_expired_at_xendit_and_emits_an_event() {
    let e = env().await;
    let token = e.user("syncexp").await;
    let co = e.checkout(&token, 9_000).await;
    let id = co["invoice_id"].as_str().expect("id");
    e.sim(
        &format!("/_dev/xendit/invoices/{id}/expire"),
        json!({ "deliver": false }),
    )
    .await;
    let mut rx = subscribe(&e.app, "syncexp").await;
    let summary = e.app.sync().run().await.expect("sync");
    assert_eq!((summary.checked, summary.expired), (1, 1), "{summary:?}");
    assert_eq!(e.invoice(id).await.status, Status::Expired);
    let got = events(&mut rx);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["data"]["status"], "EXPIRED");
    assert_eq!(
        e.app.sync().run().await.expect("sync").checked,
        0,
        "expired invoices leave the pending index"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_credits_a_paid_invoice_whose_callback_was_lost_once_and_a_late_callback_changes_nothing()
 {
    let e = env().await;
    let token = e.user("lost").await;
    let co = e.checkout(&token, 42_000).await;
    let id = co["invoice_id"].as_str().expect("id");
    e.pay_undelivered(id).await;
    let mut rx = subscribe(&e.app, "lost").await;
    // Two syncs at once (e.g. the schedule and a manual trigger) still credit once.
    let (s1, s2) = (e.app.sync(), e.app.sync());
    let (a, b) = tokio::join!(s1.run(), s2.run());
    let (a, b) = (a.expect("sync a"), b.expect("sync b"));
    assert_eq!(a.paid + b.paid, 1, "{a:?} {b:?}");
    assert_eq!(e.balance(&token).await, 42_000);
    assert_eq!(e.invoice(id).await.status, Status::Paid);
    assert_eq!(events(&mut rx).len(), 1);
    let (_, body) = e
        .sim(&format!("/_dev/xendit/invoices/{id}/callback"), json!({}))
        .await;
    assert_eq!(body["callback_status"], 200);
    assert_eq!(e.balance(&token).await, 42_000);
    e.assert_reconciled("lost", &token).await;
}

#[tokio::test]
async fn sync_trigger_route_requires_an_api_key() {
    let e = env().await;
    let (s, _, body) = send(
        &e.router,
        Request::post("/sys/xendit-sync")
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_envelope(s, &body, 401);
}

// ------------------------------------------------------------------------------------------------
// Invoice routes, ownership

#[tokio::test]
async fn another_users_invoice_is_not_found_for_detail_and_cancel() {
    let e = env().await;
    let alice = e.user("alice").await;
    let mallory = e.user("mallory").await;
    let co = e.checkout(&alice, 10_000).await;
    let id = co["invoice_id"].as_str().expect("id");
    let (s, _, body) = send(
        &e.router,
        get(
            &format!("/invoice/detail/xendit?invoice_id={id}"),
            Some(&mallory),
        ),
    )
    .await;
    assert_envelope(s, &body, 404);
    assert_eq!(body["message"], "Invoice Not Found");
    let (s, _, body) = e.cancel(&mallory, id).await;
    assert_envelope(s, &body, 404);
    assert_eq!(e.invoice(id).await.status, Status::Pending);
    // The owner sees it.
    let (s, _, body) = send(
        &e.router,
        get(
            &format!("/invoice/detail/xendit?invoice_id={id}"),
            Some(&alice),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["external_id"], id);
}

#[tokio::test]
async fn public_invoice_detail_leaks_no_personal_data() {
    let e = env().await;
    let token = e.user("private.person").await;
    let co = e.checkout(&token, 10_000).await;
    let id = co["invoice_id"].as_str().expect("id");
    let (s, _, body) = send(
        &e.router,
        get(&format!("/invoice/detail?invoice_id={id}"), None),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    for k in &keys {
        assert!(
            [
                "invoice_id",
                "status",
                "amount",
                "currency",
                "expiry_date",
                "paid_at"
            ]
            .contains(k),
            "unexpected field {k}"
        );
    }
    let text = body.to_string();
    assert!(
        !text.contains("private.person") && !text.contains('@'),
        "{text}"
    );
    let (s, _, body) = send(&e.router, get("/invoice/detail?invoice_id=inv-nope", None)).await;
    assert_envelope(s, &body, 404);
}

#[tokio::test]
async fn the_owner_cancels_a_pending_invoice_but_not_a_paid_one() {
    let e = env().await;
    let token = e.user("canceller").await;
    let co = e.checkout(&token, 10_000).await;
    let id = co["invoice_id"].as_str().expect("id");
    let (s, _, body) = e.cancel(&token, id).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "EXPIRED");
    assert_eq!(e.invoice(id).await.status, Status::Expired);

    let co = e.checkout(&token, 10_000).await;
    let id = co["invoice_id"].as_str().expect("id");
    e.sim(&format!("/_dev/xendit/invoices/{id}/pay"), json!({}))
        .await;
    let (s, _, body) = e.cancel(&token, id).await;
    assert_envelope(s, &body, 400);
    assert_eq!(body["message"], "Invoice Already Paid");
    assert_eq!(e.balance(&token).await, 10_000);
}

#[tokio::test]
async fn cancelling_an_invoice_paid_at_xendit_but_not_yet_called_back_settles_it() {
    let e = env().await;
    let token = e.user("racecancel").await;
    let co = e.checkout(&token, 10_000).await;
    let id = co["invoice_id"].as_str().expect("id");
    e.pay_undelivered(id).await;
    let (s, _, body) = e.cancel(&token, id).await;
    assert_envelope(s, &body, 400);
    assert_eq!(body["message"], "Invoice Already Paid");
    assert_eq!(e.invoice(id).await.status, Status::Paid);
    assert_eq!(e.balance(&token).await, 10_000);
}

#[tokio::test]
async fn own_invoices_are_listed_newest_first_in_pages() {
    let e = env().await;
    let token = e.user("lister").await;
    let other = e.user("other").await;
    let mut ids = Vec::new();
    for amount in [1_000, 2_000, 3_000] {
        ids.push(
            e.checkout(&token, amount).await["invoice_id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    e.checkout(&other, 9_999).await;
    let (s, _, p1) = send(&e.router, get("/invoice/list/xendit?limit=2", Some(&token))).await;
    assert_eq!(s, StatusCode::OK, "{p1}");
    let got: Vec<&str> = p1["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|i| i["invoice_id"].as_str().expect("id"))
        .collect();
    assert_eq!(got, vec![ids[2].as_str(), ids[1].as_str()]);
    let cursor = p1["next_cursor"].as_str().expect("more pages");
    let (_, _, p2) = send(
        &e.router,
        get(
            &format!("/invoice/list/xendit?limit=2&cursor={cursor}"),
            Some(&token),
        ),
    )
    .await;
    let got: Vec<&str> = p2["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|i| i["invoice_id"].as_str().expect("id"))
        .collect();
    assert_eq!(got, vec![ids[0].as_str()]);
    let (s, _, body) = send(&e.router, get("/invoice/list/xendit?limit=0", Some(&token))).await;
    assert_envelope(s, &body, 400);
}

#[tokio::test]
async fn system_checkout_needs_an_api_key_and_an_existing_user() {
    let e = env().await;
    e.user("customer").await;
    e.app
        .api_keys()
        .register("shop", "shop-key-0123456789abcdef", "test", true)
        .await
        .expect("key");
    let basic = |k: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(k)
        )
    };
    let req = |auth: &str, user: &str| {
        Request::post("/sys/payment-checkout")
            .header("content-type", "application/json")
            .header("authorization", auth)
            .body(Body::from(
                json!({ "username": user, "amount": 10_000, "description": "Order" }).to_string(),
            ))
            .expect("req")
    };
    let (s, _, body) = send(&e.router, req(&basic("shop:wrong"), "customer")).await;
    assert_envelope(s, &body, 401);
    let (s, _, body) = send(
        &e.router,
        req(&basic("shop:shop-key-0123456789abcdef"), "nobody"),
    )
    .await;
    assert_envelope(s, &body, 404);
    let (s, _, body) = send(
        &e.router,
        req(&basic("shop:shop-key-0123456789abcdef"), "customer"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        e.invoice(body["invoice_id"].as_str().expect("id"))
            .await
            .username,
        "customer"
    );
    // Not on behalf of a disabled account.
    e.app
        .main
        .update(
            &keys::login("customer"),
            shared::store::Update::new().set("disabled", true),
            None,
        )
        .await
        .expect("disable");
    let (s, _, body) = send(
        &e.router,
        req(&basic("shop:shop-key-0123456789abcdef"), "customer"),
    )
    .await;
    assert_envelope(s, &body, 403);
}

// ------------------------------------------------------------------------------------------------
// Lambda event shapes

#[tokio::test]
async fn the_callback_function_credits_from_a_function_url_event() {
    let e = env().await;
    let token = e.user("lambdauser").await;
    // The sample event pays invoice `inv_local_0001` (Xendit id 579c8d61f23fa4ca35e52da4) 50 000.
    let rec = InvoiceRecord::pending(
        NewInvoice {
            invoice_id: "inv_local_0001".into(),
            username: "lambdauser".into(),
            amount: 50_000,
            currency: "IDR".into(),
            description: "Top up balance".into(),
            payment_method: None,
            ewallet_type: None,
            xendit_id: "579c8d61f23fa4ca35e52da4".into(),
            invoice_url: "https://checkout.xendit.co/web/579c8d61f23fa4ca35e52da4".into(),
            expiry_date: "2099-01-01T00:00:00.000Z".into(),
        },
        chrono::Utc::now(),
    );
    e.app
        .main
        .put(to_item(&rec).expect("item"), None)
        .await
        .expect("put");
    let router = shared::http::finish(shared::http::payment::callback_function_router(), &e.app);
    for expected_balance in [50_000, 50_000] {
        let req = lambda_http::request::from_str(include_str!("../../events/xendit-callback.json"))
            .expect("function URL event");
        let (parts, body) = req.into_parts();
        let body = match body {
            lambda_http::Body::Text(t) => Body::from(t),
            lambda_http::Body::Binary(b) => Body::from(b),
            _ => Body::empty(),
        };
        let (s, _, json) = send(&router, Request::from_parts(parts, body)).await;
        assert_eq!(s, StatusCode::OK, "{json}");
        assert_eq!(e.balance(&token).await, expected_balance);
    }
}

#[tokio::test]
async fn the_ws_function_connects_subscribes_for_the_token_user_only_and_disconnects() {
    use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
    /// What the function posts through the Management API, by connection.
    #[derive(Clone, Default)]
    struct Posted(Arc<std::sync::Mutex<Vec<(String, Value)>>>);
    #[async_trait::async_trait]
    impl shared::ws::WsSender for Posted {
        async fn post(&self, id: &str, message: &str) -> Result<(), shared::ws::WsSendError> {
            let v = serde_json::from_str(message).unwrap_or(Value::Null);
            self.0.lock().expect("lock").push((id.to_owned(), v));
            Ok(())
        }
        async fn close(&self, _: &str) {}
    }
    let posted = Posted::default();
    let last_reply = || posted.0.lock().expect("lock").last().cloned();
    let e = env().await;
    let app = e.app.with_ws(Arc::new(posted.clone()));
    let token = e.user("wsuser").await;
    let connect_json =
        include_str!("../../events/ws-connect.json").replace("<jwt-from-POST-/auth>", &token);
    let connect: ApiGatewayWebsocketProxyRequest =
        serde_json::from_str(&connect_json).expect("connect event");
    let conn = connect
        .request_context
        .connection_id
        .clone()
        .expect("connection id");
    let res = shared::http::ws::handle_event(&app.realtime(), connect.clone()).await;
    assert_eq!(res.status_code, 200);

    let mut bad = connect.clone();
    bad.query_string_parameters = Default::default();
    assert_eq!(
        shared::http::ws::handle_event(&app.realtime(), bad)
            .await
            .status_code,
        401,
        "missing token refused"
    );

    let msg: ApiGatewayWebsocketProxyRequest =
        serde_json::from_str(include_str!("../../events/ws-message.json")).expect("message event");
    assert_eq!(
        msg.request_context.connection_id.as_deref(),
        Some(conn.as_str())
    );
    assert_eq!(
        shared::http::ws::handle_event(&app.realtime(), msg.clone())
            .await
            .status_code,
        200
    );
    let subscribed = query_all(
        e.app.main.as_ref(),
        Query::index(GSI1, keys::ws_user_gsi("wsuser")),
    )
    .await
    .expect("q");
    assert_eq!(subscribed.len(), 1);
    // API Gateway drops a `$default` integration's answer: the reply goes out through the
    // Management API, to the sender's connection.
    assert_eq!(
        last_reply(),
        Some((
            conn.clone(),
            json!({"event": "subscribed", "data": {"channel": "payment"}})
        ))
    );

    // Keep-alive.
    let mut ping = msg.clone();
    ping.body = Some(json!({ "action": "ping" }).to_string());
    let res = shared::http::ws::handle_event(&app.realtime(), ping).await;
    assert_eq!(res.status_code, 200);
    assert_eq!(last_reply(), Some((conn.clone(), json!({"event": "pong"}))));

    let mut spoof = msg.clone();
    spoof.body =
        Some(json!({ "action": "subscribe:payment", "username": "someone-else" }).to_string());
    let res = shared::http::ws::handle_event(&app.realtime(), spoof).await;
    assert_eq!(res.status_code, 200);
    let (to, reply) = last_reply().expect("a reply");
    assert_eq!(to, conn);
    assert_eq!(reply["event"], "error", "{reply}");
    assert!(
        query_all(
            e.app.main.as_ref(),
            Query::index(GSI1, keys::ws_user_gsi("someone-else"))
        )
        .await
        .expect("q")
        .is_empty()
    );

    let disconnect: ApiGatewayWebsocketProxyRequest =
        serde_json::from_str(include_str!("../../events/ws-disconnect.json"))
            .expect("disconnect event");
    assert_eq!(
        shared::http::ws::handle_event(&app.realtime(), disconnect)
            .await
            .status_code,
        200
    );
    assert!(
        e.app
            .main
            .get(&keys::ws_connection(&conn))
            .await
            .expect("get")
            .is_none()
    );
}

#[tokio::test]
async fn the_sync_function_runs_from_a_scheduled_event() {
    let e = env().await;
    let token = e.user("scheduled").await;
    let co = e.checkout(&token, 8_000).await;
    e.pay_undelivered(co["invoice_id"].as_str().expect("id"))
        .await;
    let event: aws_lambda_events::eventbridge::EventBridgeEvent =
        serde_json::from_str(include_str!("../../events/xendit-sync.json"))
            .expect("scheduled event");
    let summary = e.app.sync().handle_event(event, None).await.expect("sync");
    assert_eq!(summary.paid, 1);
    assert_eq!(e.balance(&token).await, 8_000);
    // Its last step reconciled the wallets: the one just credited matches its ledger.
    let reconciled = summary.reconcile.expect("the reconciliation step ran");
    assert!(
        reconciled.checked >= 1 && reconciled.mismatches.is_empty(),
        "{reconciled:?}"
    );

    // A wallet changed behind its ledger's back is reported by the next scheduled run.
    e.app
        .main
        .update(
            &shared::store::keys::wallet("scheduled"),
            shared::store::Update::new().set("balance", 9_000i64),
            None,
        )
        .await
        .expect("corrupt");
    let event: aws_lambda_events::eventbridge::EventBridgeEvent =
        serde_json::from_str(include_str!("../../events/xendit-sync.json")).expect("event");
    let summary = e.app.sync().handle_event(event, None).await.expect("sync");
    let found = summary.reconcile.expect("reconciled").mismatches;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (
            found[0].username.as_str(),
            found[0].balance,
            found[0].ledger_sum
        ),
        ("scheduled", 9_000, 8_000)
    );
}

#[tokio::test]
async fn the_payment_function_serves_balance_and_checkout_events() {
    let e = env().await;
    let token = e.user("apigw").await;
    e.credit("apigw", 1_234).await;
    let router = shared::http::finish(shared::http::payment::router(), &e.app);
    let (s, body) = lambda_event(
        &router,
        include_str!("../../events/payment-balance.json"),
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "balance": 1_234, "points": 0, "withdrawable_balance": 1_234 })
    );
    let (s, body) = lambda_event(
        &router,
        include_str!("../../events/payment-checkout.json"),
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["amount"], 100_000);
    assert_eq!(
        e.invoice(body["invoice_id"].as_str().expect("id"))
            .await
            .status,
        Status::Pending
    );
}

// ------------------------------------------------------------------------------------------------
// Banks and payment types

#[tokio::test]
async fn seeded_banks_and_payment_types_are_listed_and_banks_refresh_from_xendit() {
    let e = env().await;
    e.app.catalog().seed().await.expect("seed");
    let (s, _, body) = send(
        &e.router,
        post_json("/bank/list", None, json!({ "type": "DISBURSEMENT" })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let codes: Vec<&str> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|b| b["code"].as_str().expect("code"))
        .collect();
    assert!(
        codes.contains(&"BCA") && codes.contains(&"MANDIRI"),
        "{codes:?}"
    );
    let (s, _, body) = send(
        &e.router,
        post_json("/bank/list", None, json!({ "type": "VA" })),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        body["data"]
            .as_array()
            .expect("data")
            .iter()
            .all(|b| b["type"] == "VA")
    );
    let (s, _, body) = send(
        &e.router,
        post_json("/bank/list", None, json!({ "type": "CASH" })),
    )
    .await;
    assert_envelope(s, &body, 400);
    let (s, _, body) = send(&e.router, get("/payment/list", None)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        body["data"]
            .as_array()
            .expect("data")
            .iter()
            .any(|t| t["code"] == "OVO" && t["payment_method"] == "EWALLET")
    );
    // Refresh from Xendit (the simulator) needs an API key.
    let (s, _, body) = send(
        &e.router,
        Request::post("/sys/bank/refresh")
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_envelope(s, &body, 401);
    e.app
        .api_keys()
        .register("ops", "ops-key-0123456789abcdef", "test", true)
        .await
        .expect("key");
    let req = Request::post("/sys/bank/refresh")
        .header(
            "authorization",
            format!("Basic {}", {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode("ops:ops-key-0123456789abcdef")
            }),
        )
        .body(Body::empty())
        .expect("req");
    let (s, _, body) = send(&e.router, req).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body["data"]["banks"].as_u64().expect("count") > 0);
}

// ------------------------------------------------------------------------------------------------
// Bank accounts and payouts

async fn bank_account(e: &Env, token: &str, bank: &str, number: &str) -> (StatusCode, Value) {
    let body = json!({ "bank_code": bank, "account_number": number, "account_holder_name": "Budi Santoso" });
    let (s, _, v) = send(&e.router, post_json("/bank-account", Some(token), body)).await;
    (s, v)
}

async fn payout(
    e: &Env,
    token: &str,
    account: &str,
    amount: i64,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut b = Request::post("/payout")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"));
    if let Some(k) = key {
        b = b.header("idempotency-key", k);
    }
    let req = b
        .body(Body::from(
            json!({ "bank_account_id": account, "amount": amount }).to_string(),
        ))
        .expect("req");
    let (s, _, v) = send(&e.router, req).await;
    (s, v)
}

#[tokio::test]
async fn bank_accounts_are_validated_per_bank_and_never_shown_or_logged_unmasked() {
    let e = env().await;
    let token = e.user("banker").await;
    let (s, v) = bank_account(&e, &token, "BCA", "1234567890").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["account_number"], "******7890");
    for (bank, number) in [
        ("BCA", "123456789"),
        ("BRI", "1234567890"),
        ("OVO", "628123456789"),
        ("XYZ", "1234567890"),
        ("BCA", "12345abcde"),
    ] {
        let (s, v) = bank_account(&e, &token, bank, number).await;
        assert_envelope(s, &v, 400);
    }
    let (s, v) = bank_account(&e, &token, "BCA", "1234567890").await;
    assert_envelope(s, &v, 409);
    let (_, _, list) = send(&e.router, get("/bank-account/list", Some(&token))).await;
    assert!(!list.to_string().contains("1234567890"), "{list}");
    e.credit("banker", 100_000).await;
    let id = v_id(&list["data"][0]);
    let (s, v) = payout(&e, &token, &id, 10_000, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!v.to_string().contains("1234567890"), "{v}");
    let logs = query_all(e.app.logs.as_ref(), Query::index(GSI1, "LOGUSER#banker"))
        .await
        .expect("logs");
    assert!(!logs.is_empty());
    for l in &logs {
        let text = serde_json::to_string(
            &l.iter()
                .map(|(k, v)| (k.clone(), shared::store::value::to_json(v)))
                .collect::<serde_json::Map<_, _>>(),
        )
        .expect("json");
        assert!(
            !text.contains("1234567890"),
            "log line leaks the account number: {text}"
        );
    }
}

fn v_id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn a_payout_holds_funds_completes_or_releases_them_exactly_once() {
    let e = env().await;
    let token = e.user("earner").await;
    e.credit("earner", 100_000).await;
    let (_, acct) = bank_account(&e, &token, "MANDIRI", "1234567890123").await;
    let acct = v_id(&acct);

    let (s, v) = payout(&e, &token, &acct, 30_000, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["status"], "PENDING");
    assert_eq!(e.balance(&token).await, 70_000, "funds are held at request");
    let first = v["data"]["payout_id"].as_str().expect("id").to_owned();
    let (_, done) = e
        .sim(&format!("/_dev/xendit/payouts/{first}/succeed"), json!({}))
        .await;
    assert_eq!(done["callback_status"], 200, "{done}");
    assert_eq!(e.balance(&token).await, 70_000);

    let (_, v) = payout(&e, &token, &acct, 50_000, None).await;
    let second = v["data"]["payout_id"].as_str().expect("id").to_owned();
    assert_eq!(e.balance(&token).await, 20_000);
    let (_, failed) = e
        .sim(
            &format!("/_dev/xendit/payouts/{second}/fail"),
            json!({ "failure_code": "INVALID_DESTINATION", "deliver": false }),
        )
        .await;
    let cb = failed["webhook"].clone();
    for _ in 0..3 {
        let (s, _, body) = send(&e.router, webhook_req(&cb)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    assert_eq!(
        e.balance(&token).await,
        70_000,
        "a failed payout releases its hold once"
    );
    let (s, v) = payout(&e, &token, &acct, 70_001, None).await;
    assert_envelope(s, &v, 400);
    assert_eq!(v["message"], "Insufficient Balance");

    let (_, _, list) = send(&e.router, get("/payout/list", Some(&token))).await;
    let statuses: Vec<&str> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["status"].as_str().expect("s"))
        .collect();
    assert_eq!(statuses, vec!["FAILED", "COMPLETED"]);
    e.assert_reconciled("earner", &token).await;
}

fn webhook_req(body: &Value) -> Request<Body> {
    Request::post("/payout-callback")
        .header("content-type", "application/json")
        .header("x-callback-token", "local-callback-token")
        .body(Body::from(body.to_string()))
        .expect("req")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_payout_webhook_delivered_8_times_while_the_sync_runs_releases_the_hold_once() {
    let e = env().await;
    let token = e.user("racer").await;
    e.credit("racer", 80_000).await;
    let (_, acct) = bank_account(&e, &token, "BCA", "1234567890").await;
    let (s, v) = payout(&e, &token, &v_id(&acct), 60_000, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = v["data"]["payout_id"].as_str().expect("id").to_owned();
    // The request went to the Payouts API: our id as reference, the bank as an ID_ channel.
    let (_, failed) = e
        .sim(
            &format!("/_dev/xendit/payouts/{id}/fail"),
            json!({ "failure_code": "INVALID_DESTINATION", "deliver": false }),
        )
        .await;
    assert_eq!(failed["payout"]["reference_id"], id.as_str(), "{failed}");
    assert_eq!(failed["payout"]["channel_code"], "ID_BCA");
    assert_eq!(failed["webhook"]["event"], "payout.failed");
    assert_eq!(e.balance(&token).await, 20_000);
    let mut calls = Vec::new();
    for _ in 0..8 {
        let (router, body) = (e.router.clone(), failed["webhook"].clone());
        calls.push(tokio::spawn(async move {
            send(&router, webhook_req(&body)).await
        }));
    }
    let sync = e.app.sync();
    let run = tokio::spawn(async move { sync.run().await });
    let mut released = 0;
    for c in calls {
        let (s, _, body) = c.await.expect("join");
        assert_eq!(s, StatusCode::OK, "{body}");
        released += usize::from(body["message"] == "Payout Failed");
    }
    let run = run.await.expect("join").expect("sync");
    assert_eq!(released + run.payouts.released, 1, "{run:?}");
    assert_eq!(e.balance(&token).await, 80_000);
    e.assert_reconciled("racer", &token).await;
}

#[tokio::test]
async fn a_reversed_payout_gives_the_funds_back_once() {
    let e = env().await;
    let token = e.user("reversed").await;
    e.credit("reversed", 50_000).await;
    let (_, acct) = bank_account(&e, &token, "DANA", "081234567890").await;
    let (_, v) = payout(&e, &token, &v_id(&acct), 40_000, None).await;
    let id = v["data"]["payout_id"].as_str().expect("id").to_owned();
    let (_, done) = e
        .sim(&format!("/_dev/xendit/payouts/{id}/succeed"), json!({}))
        .await;
    assert_eq!(done["callback_status"], 200, "{done}");
    assert_eq!(e.balance(&token).await, 10_000);
    let (_, back) = e
        .sim(&format!("/_dev/xendit/payouts/{id}/reverse"), json!({}))
        .await;
    assert_eq!(back["callback_status"], 200, "{back}");
    assert_eq!(back["webhook"]["event"], "payout.reversed");
    let (s, _, body) = send(&e.router, webhook_req(&back["webhook"])).await;
    assert_eq!(
        (s, body["message"].as_str()),
        (StatusCode::OK, Some("Already Processed"))
    );
    assert_eq!(e.balance(&token).await, 50_000);
    let (_, _, list) = send(&e.router, get("/payout/list", Some(&token))).await;
    assert_eq!(list["data"][0]["status"], "FAILED");
    assert_eq!(list["data"][0]["failure_code"], "REVERSED");
    e.assert_reconciled("reversed", &token).await;
}

#[tokio::test]
async fn a_payout_below_the_channels_minimum_is_a_clear_400_and_holds_nothing() {
    let e = env().await;
    let token = e.user("smallfry").await;
    e.credit("smallfry", 50_000).await;
    let (_, acct) = bank_account(&e, &token, "BNI", "0987654321").await;
    let (s, v) = payout(&e, &token, &v_id(&acct), 5_000, None).await;
    assert_envelope(s, &v, 400);
    assert_eq!(v["message"], "amount must be at least 10000");
    assert_eq!(e.balance(&token).await, 50_000);
    let (_, _, list) = send(&e.router, get("/payout/list", Some(&token))).await;
    assert_eq!(list["data"][0]["failure_code"], "RECIPIENT_AMOUNT_ERROR");
}

#[tokio::test]
async fn a_payout_webhook_for_a_payout_we_do_not_hold_answers_200_and_changes_nothing() {
    let e = env().await;
    let body = json!({
        "event": "payout.succeeded", "business_id": "b", "created": "2026-01-01T00:00:00Z",
        "data": { "id": "disb-foreign", "reference_id": "someone-else", "amount": 10_000,
                  "channel_code": "ID_BCA", "currency": "IDR", "status": "SUCCEEDED" },
    });
    let (s, _, v) = send(&e.router, webhook_req(&body)).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (StatusCode::OK, Some("Unknown Payout Logged"))
    );
}

#[tokio::test]
async fn a_repeated_payout_request_with_the_same_key_holds_once() {
    let e = env().await;
    let token = e.user("twice").await;
    e.credit("twice", 50_000).await;
    let (_, acct) = bank_account(&e, &token, "BNI", "0987654321").await;
    let acct = v_id(&acct);
    let (s1, a) = payout(&e, &token, &acct, 20_000, Some("po-key-1")).await;
    let (s2, b) = payout(&e, &token, &acct, 20_000, Some("po-key-1")).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{a} {b}");
    assert_eq!(a["data"]["payout_id"], b["data"]["payout_id"]);
    assert_eq!(e.balance(&token).await, 30_000);
    let (s, v) = payout(&e, &token, &acct, 25_000, Some("po-key-1")).await;
    assert_envelope(s, &v, 422);
}

#[tokio::test]
async fn a_payout_whose_submission_fails_keeps_its_hold_until_the_sync_submits_it() {
    let e = env().await;
    let token = e.user("patient").await;
    e.credit("patient", 40_000).await;
    let (_, acct) = bank_account(&e, &token, "BCA", "1111222233").await;
    let acct = v_id(&acct);
    e.sim("/_dev/xendit/faults", json!({ "mode": "error500" }))
        .await;
    let (s, v) = payout(&e, &token, &acct, 15_000, None).await;
    assert_envelope(s, &v, 502);
    assert_eq!(
        e.balance(&token).await,
        25_000,
        "an unconfirmed submission keeps the hold"
    );
    e.sim("/_dev/xendit/faults", json!({ "mode": "none" }))
        .await;
    let summary = e.app.sync().run().await.expect("sync");
    assert_eq!(summary.payouts.submitted, 1, "{summary:?}");
    assert_eq!(
        e.app.sync().run().await.expect("sync").payouts.submitted,
        0,
        "submitted once"
    );
    let (_, _, list) = send(&e.router, get("/payout/list", Some(&token))).await;
    let id = list["data"][0]["payout_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (_, done) = e
        .sim(&format!("/_dev/xendit/payouts/{id}/fail"), json!({}))
        .await;
    assert_eq!(done["callback_status"], 200);
    assert_eq!(e.balance(&token).await, 40_000);
}

#[tokio::test]
async fn another_users_bank_account_cannot_be_paid_out_to() {
    let e = env().await;
    let alice = e.user("alice2").await;
    let bob = e.user("bob2").await;
    e.credit("bob2", 10_000).await;
    let (_, acct) = bank_account(&e, &alice, "BCA", "5555666677").await;
    let (s, v) = payout(&e, &bob, &v_id(&acct), 1_000, None).await;
    assert_envelope(s, &v, 404);
    assert_eq!(e.balance(&bob).await, 10_000);
}

#[tokio::test]
async fn sync_settles_payouts_whose_webhook_was_lost() {
    let e = env().await;
    let token = e.user("quiet").await;
    e.credit("quiet", 60_000).await;
    let (_, acct) = bank_account(&e, &token, "BRI", "123456789012345").await;
    let acct = v_id(&acct);
    let (_, a) = payout(&e, &token, &acct, 10_000, None).await;
    let (_, b) = payout(&e, &token, &acct, 20_000, None).await;
    let a = a["data"]["payout_id"].as_str().expect("id").to_owned();
    let b = b["data"]["payout_id"].as_str().expect("id").to_owned();
    assert_eq!(e.balance(&token).await, 30_000);
    e.sim(
        &format!("/_dev/xendit/payouts/{a}/succeed"),
        json!({ "deliver": false }),
    )
    .await;
    let (_, failed) = e
        .sim(
            &format!("/_dev/xendit/payouts/{b}/fail"),
            json!({ "deliver": false }),
        )
        .await;
    let summary = e.app.sync().run().await.expect("sync");
    assert_eq!(
        (summary.payouts.completed, summary.payouts.released),
        (1, 1),
        "{summary:?}"
    );
    assert_eq!(e.balance(&token).await, 50_000);
    let again = e.app.sync().run().await.expect("sync");
    assert_eq!(
        again.payouts,
        Default::default(),
        "nothing pending any more"
    );
    // The late callback changes nothing.
    let (s, _, body) = send(&e.router, webhook_req(&failed["webhook"])).await;
    assert_eq!(
        (s, body["message"].as_str()),
        (StatusCode::OK, Some("Already Processed"))
    );
    assert_eq!(e.balance(&token).await, 50_000);
    e.assert_reconciled("quiet", &token).await;
}

#[tokio::test]
async fn a_balance_change_leaves_points_alone() {
    let e = env().await;
    let token = e.user("pointy").await;
    e.credit("pointy", 1_000).await;
    e.app
        .main
        .update(
            &keys::wallet("pointy"),
            shared::store::Update::new()
                .add("points", 7)
                .add("version", 1),
            None,
        )
        .await
        .expect("points");
    let (s, _, body) = send(&e.router, decrease(&token, json!(100), None)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, _, bal) = send(&e.router, get("/balance", Some(&token))).await;
    assert_eq!(
        bal,
        json!({ "balance": 900, "points": 7, "withdrawable_balance": 900 })
    );
}

// ------------------------------------------------------------------------------------------------
// Real-time connections as API Gateway keeps them

fn ws_url(e: &Env) -> String {
    format!("{}/ws", e.base.replacen("http", "ws", 1))
}

/// Waits for the close of `socket`; its close code.
async fn close_code<S>(socket: &mut S, within: std::time::Duration) -> Option<u16>
where
    S: futures::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let wait = async {
        while let Some(m) = socket.next().await {
            match m {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    };
    tokio::time::timeout(within, wait)
        .await
        .expect("closed in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_websocket_closes_idle_and_old_connections_like_api_gateway_and_ping_keeps_one_open()
 {
    use futures::{SinkExt, StreamExt};
    use std::time::{Duration, Instant};
    use tokio_tungstenite::tungstenite::Message;
    let e = env_with(|c| {
        c.ws_idle_secs = 1;
        c.ws_max_connection_secs = 3;
    })
    .await;
    let token = e.user("keepalive").await;
    let url = format!("{}?token={token}", ws_url(&e));
    // Silent: closed "going away" once idle.
    let (mut quiet, _) = tokio_tungstenite::connect_async(url.clone())
        .await
        .expect("connect");
    let started = Instant::now();
    assert_eq!(
        close_code(&mut quiet, Duration::from_secs(5)).await,
        Some(1001)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    // Pinging: answered with pong and kept past the idle limit, but closed at the maximum age.
    let (mut chatty, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let started = Instant::now();
    let mut pongs = 0;
    let code = loop {
        chatty
            .send(Message::Text(r#"{"action":"ping"}"#.into()))
            .await
            .expect("ping");
        match tokio::time::timeout(Duration::from_secs(5), chatty.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(reply))) => {
                assert!(reply.to_string().contains("pong"), "{reply}");
                pongs += 1;
            }
            other => panic!("no answer: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    };
    assert_eq!(code, Some(1001));
    assert!(pongs >= 5, "kept open past the idle limit: {pongs} pongs");
    assert!(
        started.elapsed() >= Duration::from_millis(2_800),
        "{:?}",
        started.elapsed()
    );
}

/// The JavaScript between the `ws-snippet` markers of `docs/payments.md`.
fn documented_snippet() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/payments.md"))
        .expect("docs/payments.md");
    let start = doc.find("<!-- ws-snippet:start -->").expect("start marker");
    let end = doc.find("<!-- ws-snippet:end -->").expect("end marker");
    doc[start..end]
        .lines()
        .filter(|l| !l.starts_with("<!--") && !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_documented_websocket_snippet_receives_a_payment_update() {
    let e = env().await;
    let token = e.user("nodeclient").await;
    let co = e.checkout(&token, 12_000).await;
    let id = co["invoice_id"].as_str().expect("id").to_owned();
    let dir = std::env::temp_dir().join(format!("ws-snippet-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let script = dir.join("client.js");
    let harness = r#"
const [wsUrl, token, invoiceId] = process.argv.slice(2);
subscribePayments(wsUrl, token, (data) => {
  if (data.invoice_id === invoiceId && data.status === 'PAID') {
    console.log(JSON.stringify(data));
    process.exit(0);
  }
});
setTimeout(() => { console.error('no payment update'); process.exit(2); }, 20000);
"#;
    std::fs::write(&script, format!("{}\n{harness}", documented_snippet())).expect("write");
    // Node 20 has WebSocket behind a flag; later versions ignore it.
    let child = std::process::Command::new("node")
        .arg("--experimental-websocket")
        .arg(&script)
        .args([ws_url(&e), token.clone(), id.clone()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node (Node 20+) must be installed to run the documented client snippet");
    // Pay once the snippet's connection has subscribed.
    let subscribed = async {
        loop {
            let subs = query_all(
                e.app.main.as_ref(),
                Query::index(GSI1, keys::ws_user_gsi("nodeclient")),
            )
            .await
            .expect("q");
            if !subs.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(15), subscribed)
        .await
        .expect("the snippet subscribed");
    let (_, paid) = e
        .sim(&format!("/_dev/xendit/invoices/{id}/pay"), json!({}))
        .await;
    assert_eq!(paid["callback_status"], 200, "{paid}");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("node ran");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_str(stdout.trim()).expect("the update as JSON");
    assert_eq!(got["invoice_id"], id.as_str());
    assert_eq!(got["status"], "PAID");
    assert_eq!(got["amount"], 12_000);
}

#[tokio::test]
async fn money_events_print_emf_metrics() {
    shared::metrics::capture();
    let e = env().await;
    let token = e.user("meter").await;
    let co = e.checkout(&token, 25_000).await;
    let paid = e
        .pay_undelivered(co["invoice_id"].as_str().expect("id"))
        .await;
    let payload = xendit_sim::callback_payload(&paid);
    let (s, _, b) = send(&e.router, callback("local-callback-token", &payload)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _, _) = send(&e.router, callback("local-callback-token", &payload)).await;
    assert_eq!(s, StatusCode::OK, "a replay is acknowledged");
    let (s, _, _) = send(&e.router, callback("wrong-token", &payload)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let mut unknown = payload.clone();
    unknown["external_id"] = json!("inv-nobody-holds");
    let (s, _, _) = send(&e.router, callback("local-callback-token", &unknown)).await;
    assert!(s.is_success(), "{s}");
    let (s, _, b) = send(&e.router, decrease(&token, json!(4_000), Some("meter-1"))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let lines = shared::metrics::captured();
    assert_emf(&lines, "PaymentsCredited", 1, &[]);
    assert_emf(&lines, "PaymentsCreditedRupiah", 25_000, &[]);
    assert_emf(&lines, "CallbacksDuplicate", 1, &[]);
    assert_emf(&lines, "CallbacksRejected", 1, &[]);
    assert_emf(&lines, "CallbacksUnknown", 1, &[]);
    assert_emf(&lines, "Debits", 1, &[]);
    assert_emf(&lines, "DebitsRupiah", 4_000, &[]);
    let credited = lines
        .iter()
        .filter(|l| l.contains("\"PaymentsCredited\""))
        .count();
    assert_eq!(credited, 1, "credited once, counted once");
}
