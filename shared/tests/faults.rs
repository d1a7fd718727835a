//! Fault injection: the table failing (throttled, unavailable) at every single call of a signup,
//! an OTP verification and a login. Each answers the 503 envelope with `Retry-After` or succeeds,
//! and the stored state is all-or-nothing: no guard without its account, no half-verified
//! account, no session without a token handed out; a retry after the fault succeeds.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use common::{assert_envelope, send};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use shared::App;
use shared::clock::ManualClock;
use shared::config::Config;
use shared::store::faulty::{Fault, FaultyTable, Op, Trigger};
use shared::store::local::LocalStore;
use shared::store::schema::{LOGS, MAIN};
use shared::store::{Item, TableRef, get_s};

const PASSWORD: &str = "securePassword123";

struct Env {
    app: App,
    faulty: Arc<FaultyTable>,
    router: Router,
}

fn env() -> Env {
    let clock = ManualClock::new();
    let config = Config::for_tests();
    let store = LocalStore::memory(Arc::new(clock.clone())).expect("store");
    let faulty = FaultyTable::wrap(store.table(&MAIN, &config.main_table));
    let logs: TableRef = Arc::new(store.table(&LOGS, &config.logs_table));
    let main: TableRef = faulty.clone();
    let app = App::assemble(config, main, logs, Arc::new(clock));
    let router = shared::http::finish(shared::http::routes(), &app);
    Env {
        app,
        faulty,
        router,
    }
}

fn post(path: &str, body: Value, bearer: Option<&str>) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/json");
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).expect("request")
}

fn signup_body(username: &str) -> Value {
    json!({"username": username, "password": PASSWORD, "email": format!("{username}@example.com"),
        "full_name": "Fault Test", "phone_number": "628123450001", "mode": "OTP"})
}

impl Env {
    async fn call(&self, req: Request<Body>) -> (StatusCode, http::HeaderMap, Value) {
        let res = send(&self.router, req).await;
        self.app.queue.flush().await;
        res
    }

    async fn signup(&self, username: &str) -> (StatusCode, http::HeaderMap, Value) {
        self.call(post("/signup", signup_body(username), None))
            .await
    }

    async fn latest_otp(&self) -> Option<String> {
        let list = shared::notify::local::read(&self.app.main, "628123450001")
            .await
            .expect("outbox");
        list.last().and_then(|m| {
            m.body
                .split(|c: char| !c.is_ascii_digit())
                .find(|w| w.len() == 6)
                .map(str::to_owned)
        })
    }

    async fn verify(&self, reg: &str, otp: &str) -> (StatusCode, http::HeaderMap, Value) {
        self.call(post("/verify-sign-up", json!({ "otp": otp }), Some(reg)))
            .await
    }

    async fn login(&self, username: &str) -> (StatusCode, http::HeaderMap, Value) {
        self.call(post(
            "/auth",
            json!({"username": username, "password": PASSWORD}),
            None,
        ))
        .await
    }

    /// A verified account; returns nothing (log in with [`Env::login`]).
    async fn verified(&self, username: &str) {
        let (s, _, b) = self.signup(username).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let reg = b["token"].as_str().expect("token").to_owned();
        let otp = self.latest_otp().await.expect("otp");
        let (s, _, b) = self.verify(&reg, &otp).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    /// Every item written so far (read past the fault injection).
    async fn items(&self) -> Vec<Item> {
        self.faulty.items().await.expect("list")
    }

    /// Calls the table saw for one request, with no fault armed.
    async fn count_calls(&self, run: impl AsyncFnOnce(&Env)) -> usize {
        let before = self.faulty.calls().len();
        run(self).await;
        self.faulty.calls().len() - before
    }
}

fn pk(item: &Item) -> String {
    get_s(item, "pk").unwrap_or_default().to_owned()
}

fn sk(item: &Item) -> String {
    get_s(item, "sk").unwrap_or_default().to_owned()
}

/// The account items a signup writes (rate-limit counters and the outbox excluded).
fn account_items(items: &[Item]) -> Vec<String> {
    let mut out: Vec<String> = items
        .iter()
        // Counters, the dev outbox and held messages (kept only until delivered or expired) are
        // not part of the account.
        .filter(|i| {
            !pk(i).starts_with("RATE#")
                && !pk(i).starts_with("OUTBOX#")
                && !pk(i).starts_with("OUTMSG#")
        })
        .map(|i| format!("{}|{}", pk(i), sk(i)))
        .collect();
    out.sort();
    out
}

#[track_caller]
fn assert_unavailable(status: StatusCode, headers: &http::HeaderMap, body: &Value) {
    assert_envelope(status, body, 503);
    assert_eq!(headers[http::header::RETRY_AFTER], "1");
}

#[tokio::test]
async fn signup_faulted_at_any_store_call_answers_503_and_writes_all_or_nothing() {
    // The complete set a successful signup writes, and how many calls it takes.
    let reference = env();
    let calls = reference
        .count_calls(async |e| {
            let (s, _, b) = e.signup("faulty").await;
            assert_eq!(s, StatusCode::CREATED, "{b}");
        })
        .await;
    let complete = account_items(&reference.items().await);
    for prefix in [
        "USER#faulty|LOGIN",
        "USER#faulty|INFO",
        "USER#faulty|WALLET",
        "EMAIL#",
        "PHONE#",
        "REFCODE#",
    ] {
        assert!(
            complete.iter().any(|k| k.starts_with(prefix)),
            "{prefix} in {complete:?}"
        );
    }
    assert!(calls >= 3, "{calls}");

    let mut refused = 0;
    for n in 1..=calls {
        for fault in [Fault::Throttled, Fault::Unavailable] {
            let e = env();
            e.faulty.fail(Trigger::NthCall(n), fault);
            let (s, h, b) = e.signup("faulty").await;
            assert_eq!(e.faulty.injected(), 1, "call {n} was injected");
            e.faulty.clear();
            let after = account_items(&e.items().await);
            if s == StatusCode::CREATED {
                // The fault hit a step after the commit (e.g. the notification): all written.
                assert_eq!(after.len(), complete.len(), "call {n}: {after:?}");
                continue;
            }
            refused += 1;
            assert_unavailable(s, &h, &b);
            assert!(after.is_empty(), "call {n} ({fault:?}) left {after:?}");
            assert!(
                e.latest_otp().await.is_none(),
                "call {n}: no code sent for an account that does not exist"
            );
            // Nothing left behind blocks the retry.
            let (s, _, b) = e.signup("faulty").await;
            assert_eq!(s, StatusCode::CREATED, "retry after call {n}: {b}");
            assert_eq!(account_items(&e.items().await).len(), complete.len());
        }
    }
    assert!(refused > 0, "some fault reached the client");
}

#[tokio::test]
async fn signup_with_transactions_throttled_answers_503_and_writes_nothing() {
    let e = env();
    e.faulty.fail(Trigger::Op(Op::Transact), Fault::Throttled);
    for _ in 0..3 {
        let (s, h, b) = e.signup("throttled").await;
        assert_unavailable(s, &h, &b);
    }
    assert!(e.faulty.injected() >= 3);
    assert!(account_items(&e.items().await).is_empty());
    e.faulty.clear();
    let (s, _, b) = e.signup("throttled").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

#[tokio::test]
async fn otp_verification_faulted_at_any_store_call_leaves_the_account_pending_and_the_code_usable()
{
    let reference = env();
    let (_, _, b) = reference.signup("verifier").await;
    let reg = b["token"].as_str().expect("token").to_owned();
    let otp = reference.latest_otp().await.expect("otp");
    let calls = reference
        .count_calls(async |e| {
            let (s, _, b) = e.verify(&reg, &otp).await;
            assert_eq!(s, StatusCode::OK, "{b}");
        })
        .await;

    let mut refused = 0;
    for n in 1..=calls {
        let e = env();
        let (_, _, b) = e.signup("verifier").await;
        let reg = b["token"].as_str().expect("token").to_owned();
        let otp = e.latest_otp().await.expect("otp");
        e.faulty.fail(Trigger::NthCall(n), Fault::Unavailable);
        let (s, h, b) = e.verify(&reg, &otp).await;
        e.faulty.clear();
        if s == StatusCode::OK {
            let (s, _, b) = e.login("verifier").await;
            assert_eq!(s, StatusCode::OK, "verified means usable: {b}");
            continue;
        }
        refused += 1;
        assert_unavailable(s, &h, &b);
        // Still pending: the password is right but the account is not confirmed.
        let (s, _, b) = e.login("verifier").await;
        assert_envelope(s, &b, 403);
        // The same code still works once the store is back.
        let (s, _, b) = e.verify(&reg, &otp).await;
        assert_eq!(s, StatusCode::OK, "retry after call {n}: {b}");
        let (s, _, b) = e.login("verifier").await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    assert!(refused > 0);
}

#[tokio::test]
async fn login_faulted_at_any_store_call_answers_503_and_leaves_no_session_behind() {
    let reference = env();
    reference.verified("loginer").await;
    let calls = reference
        .count_calls(async |e| {
            let (s, _, b) = e.login("loginer").await;
            assert_eq!(s, StatusCode::OK, "{b}");
        })
        .await;

    let mut refused = 0;
    for n in 1..=calls {
        for fault in [Fault::Throttled, Fault::Unavailable] {
            let e = env();
            e.verified("loginer").await;
            let sessions_before = sessions(&e).await;
            e.faulty.fail(Trigger::NthCall(n), fault);
            let (s, h, b) = e.login("loginer").await;
            e.faulty.clear();
            let sessions_after = sessions(&e).await;
            if s == StatusCode::OK {
                assert_eq!(sessions_after, sessions_before + 1, "call {n}");
                continue;
            }
            refused += 1;
            assert_unavailable(s, &h, &b);
            assert_eq!(
                sessions_after, sessions_before,
                "call {n} ({fault:?}) left a session"
            );
            let (s, _, b) = e.login("loginer").await;
            assert_eq!(s, StatusCode::OK, "retry after call {n}: {b}");
        }
    }
    assert!(refused > 0);
}

async fn sessions(e: &Env) -> usize {
    e.items()
        .await
        .iter()
        .filter(|i| pk(i) == "USER#loginer" && sk(i).starts_with("SESSION#"))
        .count()
}

#[tokio::test]
async fn a_session_check_faulted_answers_503_not_401() {
    let e = env();
    e.verified("checker").await;
    let (_, _, b) = e.login("checker").await;
    let token = b["token"].as_str().expect("token").to_owned();
    e.faulty.fail(Trigger::Op(Op::Get), Fault::Throttled);
    let req = Request::get("/verify")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request");
    let (s, h, b) = e.call(req).await;
    e.faulty.clear();
    assert_unavailable(s, &h, &b);
    let req = Request::get("/verify")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request");
    let (s, _, b) = e.call(req).await;
    assert_eq!(s, StatusCode::OK, "the session survived the outage: {b}");
}

/// The notification queue (SQS in AWS) refusing messages while `down` is set.
struct FlakyQueue {
    down: std::sync::atomic::AtomicBool,
    inner: shared::notify::local::LocalQueue,
}

#[async_trait::async_trait]
impl shared::notify::Queue for FlakyQueue {
    async fn send(
        &self,
        message: &shared::notify::Notification,
    ) -> Result<(), shared::notify::NotifyError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(shared::notify::NotifyError::Transient(
                "injected: queue down".into(),
            ));
        }
        self.inner.send(message).await
    }
    async fn flush(&self) {
        self.inner.flush().await
    }
}

#[tokio::test]
async fn signup_with_the_notification_queue_down_creates_the_account_and_resend_delivers_later() {
    let clock = ManualClock::new();
    let config = Config::for_tests();
    let store = LocalStore::memory(Arc::new(clock.clone())).expect("store");
    let faulty = FaultyTable::wrap(store.table(&MAIN, &config.main_table));
    let main: TableRef = faulty.clone();
    let logs: TableRef = Arc::new(store.table(&LOGS, &config.logs_table));
    let queue = Arc::new(FlakyQueue {
        down: std::sync::atomic::AtomicBool::new(true),
        inner: shared::delivery::local_queue(main.clone(), Arc::new(clock.clone())),
    });
    let app = App::assemble_with_queue(config, main, logs, Arc::new(clock.clone()), queue.clone());
    let router = shared::http::finish(shared::http::routes(), &app);
    let e = Env {
        app,
        faulty,
        router,
    };

    let (s, _, b) = e.signup("queued").await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "the account does not depend on the queue: {b}"
    );
    let reg = b["token"].as_str().expect("token").to_owned();
    assert!(e.latest_otp().await.is_none(), "nothing was delivered");
    // LOGIN, INFO, WALLET, the e-mail and referral-code guards, the phone's "seen" record (the
    // phone itself is claimed at verification), the registration token and the OTP.
    let items = account_items(&e.items().await);
    assert_eq!(items.len(), 8, "{items:?}");

    // Resending while the queue is still down is an honest error, not a silent success.
    clock.advance(chrono::Duration::seconds(61));
    let (s, h, b) = e.call(post("/resend-otp", json!({}), Some(&reg))).await;
    assert_unavailable(s, &h, &b);

    queue.down.store(false, std::sync::atomic::Ordering::SeqCst);
    clock.advance(chrono::Duration::seconds(61));
    let (s, _, b) = e.call(post("/resend-otp", json!({}), Some(&reg))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let otp = e
        .latest_otp()
        .await
        .expect("delivered once the queue is back");
    let (s, _, b) = e.verify(&reg, &otp).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}
