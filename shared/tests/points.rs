//! Points and referrals in-process: the referral journey through signup, verification and a
//! Xendit payment (callback delivered twice and concurrently), redemption under races, history
//! pagination, the expiry job, and the `points` Lambda event shape. The app listens on a loopback
//! port because the Xendit simulator delivers callbacks over HTTP.

mod common;
mod served;

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use common::{assert_envelope, send};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use shared::App;
use shared::clock::ManualClock;
use shared::config::{Config, ReferralQualify};
use shared::store::local::LocalStore;
use shared::wallet::{EntryType, PointsChange};

struct Env {
    app: App,
    clock: ManualClock,
    router: Router,
    base: String,
}

async fn env_with(tweak: impl FnOnce(&mut Config)) -> Env {
    let clock = ManualClock::new();
    let app_clock = clock.clone();
    let s = served::serve(|mut config| {
        tweak(&mut config);
        let store = LocalStore::memory(Arc::new(app_clock.clone())).expect("memory store");
        App::with_local_store(config, &store, Arc::new(app_clock))
    })
    .await;
    Env {
        app: s.app,
        clock,
        router: s.router,
        base: s.base,
    }
}

/// The defaults, except that any payment qualifies a referral (these tests are about exactly-once
/// crediting; the minimum has its own test).
async fn env() -> Env {
    env_with(|c| c.points.referral_min_payment = 1).await
}

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::empty()).expect("request")
}

fn post_json(path: &str, token: Option<&str>, body: Value) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/json");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).expect("request")
}

fn redeem_req(token: &str, points: i64, key: Option<&str>) -> Request<Body> {
    let mut b = Request::post("/points/redeem")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"));
    if let Some(k) = key {
        b = b.header("idempotency-key", k);
    }
    b.body(Body::from(json!({ "points": points }).to_string()))
        .expect("request")
}

impl Env {
    async fn call(&self, req: Request<Body>) -> (StatusCode, Value) {
        let (s, _, b) = send(&self.router, req).await;
        (s, b)
    }

    async fn signup(&self, name: &str, code: Option<&str>) -> (StatusCode, Value) {
        let mut body = json!({"username": name, "password": "securePassword123",
            "email": format!("{name}@example.com"), "full_name": "Test User", "mode": "LINK"});
        if let Some(c) = code {
            body["referral_code"] = json!(c);
        }
        self.call(post_json("/signup", None, body)).await
    }

    /// Clicks the verification link of `name` and logs in; returns the bearer token.
    async fn verify_and_login(&self, name: &str) -> String {
        self.app.queue.flush().await;
        let mails = shared::notify::local::read(&self.app.main, &format!("{name}@example.com"))
            .await
            .expect("outbox");
        let body = &mails.last().expect("a verification mail").body;
        let at = body.find("token=").expect("link") + "token=".len();
        let link: String = body[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let (s, b) = self
            .call(post_json("/verify-sign-up", None, json!({ "token": link })))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        self.login(name).await
    }

    async fn login(&self, name: &str) -> String {
        let (s, b) = self
            .call(post_json(
                "/auth",
                None,
                json!({"username": name, "password": "securePassword123"}),
            ))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["token"].as_str().expect("token").to_owned()
    }

    async fn active(&self, name: &str, code: Option<&str>) -> String {
        let (s, b) = self.signup(name, code).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        self.verify_and_login(name).await
    }

    async fn refcode(&self, token: &str) -> String {
        let (s, b) = self.call(get("/user/referral-code", Some(token))).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["referral_code"].as_str().expect("code").to_owned()
    }

    async fn stats(&self, token: &str) -> Value {
        let (s, b) = self.call(get("/referral/stats", Some(token))).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }

    async fn wallet(&self, token: &str) -> (i64, i64) {
        let (s, b) = self.call(get("/balance", Some(token))).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        (
            b["balance"].as_i64().expect("balance"),
            b["points"].as_i64().expect("points"),
        )
    }

    /// Checks out `amount` and marks it paid at the simulator without delivering the callback;
    /// returns the callback payload.
    async fn paid_invoice(&self, token: &str, amount: i64) -> Value {
        let req = json!({ "amount": amount, "description": "Top up" });
        let (s, co) = self
            .call(post_json("/payment-checkout", Some(token), req))
            .await;
        assert_eq!(s, StatusCode::OK, "{co}");
        let res = reqwest::Client::new()
            .post(format!(
                "{}/_dev/xendit/invoices/{}/pay",
                self.base,
                co["id"].as_str().expect("xid")
            ))
            .json(&json!({ "deliver": false }))
            .send()
            .await
            .expect("sim");
        assert_eq!(res.status().as_u16(), 200);
        let sim: Value = res.json().await.expect("json");
        xendit_sim::callback_payload(&sim["invoice"])
    }

    async fn deliver(&self, payload: &Value) -> StatusCode {
        let req = Request::post("/payment-callback")
            .header("content-type", "application/json")
            .header("x-callback-token", "local-callback-token")
            .body(Body::from(payload.to_string()))
            .expect("request");
        send(&self.router, req).await.0
    }

    async fn assert_reconciled(&self, user: &str, token: &str) {
        let (balance, pts) = self.wallet(token).await;
        let sum = self
            .app
            .wallets()
            .ledger_sum(&shared::domain::Username::from_stored(user))
            .await
            .expect("ledger");
        assert_eq!(sum.rupiah(), balance, "{user}: wallet ledger = balance");
        let psum = self
            .app
            .rewards()
            .ledger_sum(&shared::domain::Username::from_stored(user))
            .await
            .expect("points");
        assert_eq!(psum.value(), pts, "{user}: points ledger = points");
        assert!(pts >= 0 && balance >= 0);
    }

    async fn give_points(&self, user: &str, n: i64) {
        let p = PointsChange {
            kind: EntryType::Credit,
            points: shared::domain::Points::new(n),
            description: "test points".into(),
            reference_id: "test".into(),
        };
        self.app
            .wallets()
            .apply_full(
                &shared::domain::Username::from_stored(user),
                None,
                Some(&p),
                None,
                &[],
            )
            .await
            .expect("credit points");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_referral_completes_on_the_first_payment_and_pays_the_bonus_once_despite_duplicate_callbacks()
 {
    let e = env().await;
    let a = e.active("alice", None).await;
    let code = e.refcode(&a).await;
    let (s, b) = e.signup("bob", Some(&code.to_lowercase())).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(
        e.stats(&a).await,
        json!({"total_referrals": 1, "completed_referrals": 0, "pending_referrals": 1, "total_earned_points": 0})
    );
    let (s, hist) = e.call(get("/referral/history", Some(&a))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(hist.as_array().map(Vec::len), Some(1), "{hist}");
    assert_eq!(hist[0]["username"], "bob");
    assert_eq!(hist[0]["referral_code"], code.as_str());
    assert_eq!(hist[0]["status"], "pending");
    assert!(hist[0]["created_at"].as_str().expect("ts").ends_with('Z'));

    let b_token = e.verify_and_login("bob").await;
    assert_eq!(
        e.stats(&a).await["pending_referrals"],
        1,
        "verification does not qualify by default"
    );

    // First payment: its callback arrives 10 times at once, then twice more.
    let payload = e.paid_invoice(&b_token, 50_000).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let r = e.router.clone();
        let p = payload.clone();
        tasks.push(tokio::spawn(async move {
            let req = Request::post("/payment-callback")
                .header("content-type", "application/json")
                .header("x-callback-token", "local-callback-token")
                .body(Body::from(p.to_string()))
                .expect("request");
            send(&r, req).await.0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), StatusCode::OK);
    }
    assert_eq!(e.deliver(&payload).await, StatusCode::OK);
    assert_eq!(e.deliver(&payload).await, StatusCode::OK);

    assert_eq!(
        e.stats(&a).await,
        json!({"total_referrals": 1, "completed_referrals": 1, "pending_referrals": 0, "total_earned_points": 50})
    );
    assert_eq!(e.wallet(&a).await, (0, 50), "bonus credited exactly once");
    // 50,000 rupiah at 1 point per 10,000.
    assert_eq!(e.wallet(&b_token).await, (50_000, 5));
    let (_, hist) = e.call(get("/points/history", Some(&a))).await;
    let items = hist["data"].as_array().expect("data");
    assert_eq!(items.len(), 1, "{hist}");
    assert_eq!(
        (
            &items[0]["type"],
            &items[0]["amount"],
            &items[0]["reference_id"]
        ),
        (&json!("CREDIT"), &json!(50), &json!("bob"))
    );

    // A second payment earns B points again but no further bonus.
    let payload = e.paid_invoice(&b_token, 20_000).await;
    assert_eq!(e.deliver(&payload).await, StatusCode::OK);
    assert_eq!(e.wallet(&a).await, (0, 50));
    assert_eq!(e.wallet(&b_token).await, (70_000, 7));
    assert_eq!(e.stats(&a).await["completed_referrals"], 1);
    e.assert_reconciled("alice", &a).await;
    e.assert_reconciled("bob", &b_token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sync_path_completes_a_referral_exactly_once_like_the_callback() {
    let e = env().await;
    let a = e.active("carol", None).await;
    let code = e.refcode(&a).await;
    let d = e.active("dave", Some(&code)).await;
    let payload = e.paid_invoice(&d, 30_000).await;
    // The callback was lost; two syncs race, then the late callback arrives.
    let (s1, s2) = (e.app.sync(), e.app.sync());
    let (r1, r2) = tokio::join!(s1.run(), s2.run());
    assert_eq!(r1.expect("sync").paid + r2.expect("sync").paid, 1);
    assert_eq!(e.deliver(&payload).await, StatusCode::OK);
    assert_eq!(e.wallet(&a).await, (0, 50));
    assert_eq!(e.stats(&a).await["completed_referrals"], 1);
    e.assert_reconciled("carol", &a).await;
    e.assert_reconciled("dave", &d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_qualify_on_verification_the_referral_completes_when_the_referred_user_verifies() {
    let e = env_with(|c| {
        c.points.qualify_on = ReferralQualify::Verification;
        c.points.referral_bonus = 25;
    })
    .await;
    let a = e.active("erin", None).await;
    let code = e.refcode(&a).await;
    e.signup("frank", Some(&code)).await;
    assert_eq!(e.stats(&a).await["pending_referrals"], 1);
    let f = e.verify_and_login("frank").await;
    assert_eq!(
        e.stats(&a).await,
        json!({"total_referrals": 1, "completed_referrals": 1, "pending_referrals": 0, "total_earned_points": 25})
    );
    // Paying afterwards changes nothing for the referrer.
    let payload = e.paid_invoice(&f, 10_000).await;
    assert_eq!(e.deliver(&payload).await, StatusCode::OK);
    assert_eq!(e.wallet(&a).await, (0, 25));
    e.assert_reconciled("erin", &a).await;
    e.assert_reconciled("frank", &f).await;
}

#[tokio::test]
async fn an_unknown_referral_code_is_refused_at_signup_and_nothing_is_stored() {
    let e = env().await;
    let (s, b) = e.signup("gina", Some("NOPE2345")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_envelope(StatusCode::BAD_REQUEST, &b, 400);
    assert_eq!(b["message"], "Invalid Referral Code");
    let (s, b) = e.signup("gina", Some("bad code!")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    // The username is still free: nothing was written.
    let (s, b) = e.signup("gina", None).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

#[tokio::test]
async fn a_user_cannot_refer_itself_or_gain_a_second_referrer() {
    let e = env().await;
    let h = e.active("hank", None).await;
    let code = e.refcode(&h).await;
    // Signing up again as the code's owner is refused as a taken username; nothing is recorded.
    let (s, b) = e.signup("hank", Some(&code)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(e.stats(&h).await["total_referrals"], 0);
    // A referred user has exactly one referrer, and it is never the user itself.
    e.signup("ivan", Some(&code)).await;
    let by = e
        .app
        .referrals()
        .referred_by(&shared::domain::Username::from_stored("ivan"))
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(by.referrer, "hank");
    let (s, _) = e.signup("ivan", Some(&code)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(e.stats(&h).await["total_referrals"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_redemptions_never_overdraw_points_and_both_ledgers_reconcile() {
    let e = env().await;
    let t = e.active("judy", None).await;
    e.give_points("judy", 1_000).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let r = e.router.clone();
        let req = redeem_req(&t, 100, None);
        tasks.push(tokio::spawn(async move { send(&r, req).await }));
    }
    let (mut ok, mut refused) = (0, 0);
    for task in tasks {
        let (s, _, b) = task.await.expect("task");
        match s {
            StatusCode::OK => ok += 1,
            StatusCode::BAD_REQUEST => {
                assert_envelope(StatusCode::BAD_REQUEST, &b, 400);
                assert_eq!(b["message"], "Insufficient Points");
                refused += 1;
            }
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert_eq!((ok, refused), (10, 10));
    // 1,000 points at 100 rupiah each.
    assert_eq!(e.wallet(&t).await, (100_000, 0));
    e.assert_reconciled("judy", &t).await;
}

#[tokio::test]
async fn redemption_checks_the_minimum_and_replays_an_idempotency_key() {
    let e = env().await;
    let t = e.active("kate", None).await;
    let (s, b) = e.call(redeem_req(&t, 150, None)).await;
    assert_eq!(
        (s, b["message"].clone()),
        (StatusCode::BAD_REQUEST, json!("Insufficient Points"))
    );
    e.give_points("kate", 500).await;
    let (s, b) = e.call(redeem_req(&t, 99, None)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_envelope(StatusCode::BAD_REQUEST, &b, 400);
    let (s, _) = e.call(redeem_req(&t, -5, None)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, first) = e.call(redeem_req(&t, 200, Some("r-1"))).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(
        (first["balance"].clone(), first["points"].clone()),
        (json!(20_000), json!(300))
    );
    let (s, again) = e.call(redeem_req(&t, 200, Some("r-1"))).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["transaction_id"], first["transaction_id"]);
    assert_eq!(again["points"], 300);
    assert_eq!(e.wallet(&t).await, (20_000, 300));
    let (s, _) = e.call(redeem_req(&t, 100, Some("r-1"))).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "key reused with another amount"
    );
    e.assert_reconciled("kate", &t).await;
}

#[tokio::test]
async fn points_history_pages_return_every_entry_exactly_once_newest_first() {
    let e = env().await;
    let t = e.active("liam", None).await;
    for _ in 0..25 {
        e.give_points("liam", 10).await;
        e.clock.advance(chrono::Duration::milliseconds(3));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/points/history?limit=7&cursor={c}"),
            None => "/points/history?limit=7".into(),
        };
        let (s, b) = e.call(get(&path, Some(&t))).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let items = b["data"].as_array().expect("data");
        assert!(items.len() <= 7);
        for i in items {
            assert_eq!(i["type"], "CREDIT");
            seen.push((
                i["created_at"].as_str().expect("ts").to_owned(),
                i["id"].as_str().expect("id").to_owned(),
            ));
        }
        pages += 1;
        match b["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10, "pagination must end");
    }
    assert_eq!(seen.len(), 25);
    let ids: HashSet<&String> = seen.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 25, "no entry twice");
    let stored: HashSet<String> = e
        .app
        .rewards()
        .ledger(&shared::domain::Username::from_stored("liam"))
        .await
        .expect("ledger")
        .into_iter()
        .map(|p| p.entry_id)
        .collect();
    assert_eq!(ids, stored.iter().collect());
    assert!(seen.windows(2).all(|w| w[0].0 > w[1].0), "newest first");
    let (s, b) = e
        .call(get("/points/history?cursor=garbage", Some(&t)))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, _) = e.call(get("/points/history", None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expiry_debits_unspent_old_points_first_in_first_out_and_is_idempotent() {
    let e = env_with(|c| c.points.expiry_months = 12).await;
    let t = e.active("mia", None).await;
    e.give_points("mia", 300).await;
    let (s, _) = e.call(redeem_req(&t, 100, None)).await;
    assert_eq!(s, StatusCode::OK);
    e.clock.advance(chrono::Duration::days(60));
    e.give_points("mia", 200).await;
    // Nothing is old enough yet.
    assert_eq!(
        e.app
            .rewards()
            .expire(shared::clock::Deadline::after(
                std::time::Duration::from_secs(60)
            ))
            .await
            .expect("run")
            .expired_points,
        0
    );
    e.clock.advance(chrono::Duration::days(320));
    // Two concurrent runs and a third: 300 earned first, 100 of them spent → 200 expire once.
    let (x1, x2) = (e.app.rewards(), e.app.rewards());
    let (r1, r2) = tokio::join!(
        x1.expire(shared::clock::Deadline::after(
            std::time::Duration::from_secs(60)
        )),
        x2.expire(shared::clock::Deadline::after(
            std::time::Duration::from_secs(60)
        ))
    );
    let r3 = e
        .app
        .rewards()
        .expire(shared::clock::Deadline::after(
            std::time::Duration::from_secs(60),
        ))
        .await
        .expect("third run");
    assert_eq!(
        r1.expect("run").expired_points + r2.expect("run").expired_points + r3.expired_points,
        200
    );
    let t = e.login("mia").await;
    assert_eq!(e.wallet(&t).await.1, 200);
    let (_, b) = e.call(get("/points/history", Some(&t))).await;
    let expired: Vec<&Value> = b["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|i| i["description"] == "Points expired")
        .collect();
    assert_eq!(expired.len(), 1, "{b}");
    assert_eq!(
        (&expired[0]["type"], &expired[0]["amount"]),
        (&json!("DEBIT"), &json!(200))
    );
    // The later 200 expire through the scheduled sync once they are old enough.
    e.clock.advance(chrono::Duration::days(60));
    let summary = e.app.sync().run().await.expect("sync");
    assert_eq!(summary.points_expiry.expired_points, 200);
    let t = e.login("mia").await;
    assert_eq!(e.wallet(&t).await.1, 0);
    e.assert_reconciled("mia", &t).await;
}

#[tokio::test]
async fn the_points_function_serves_a_history_event() {
    let e = env().await;
    let t = e.active("nora", None).await;
    for _ in 0..9 {
        e.give_points("nora", 5).await;
    }
    let router = shared::http::finish(shared::http::points::router(), &e.app);
    let event =
        include_str!("../../events/points-history.json").replace("<jwt-from-POST-/auth>", &t);
    let req = lambda_http::request::from_str(&event).expect("API Gateway v2 event");
    let (parts, body) = req.into_parts();
    let body = match body {
        lambda_http::Body::Text(t) => Body::from(t),
        lambda_http::Body::Binary(b) => Body::from(b),
        _ => Body::empty(),
    };
    let (s, _, json) = send(&router, Request::from_parts(parts, body)).await;
    assert_eq!(s, StatusCode::OK, "{json}");
    assert_eq!(json["data"].as_array().map(Vec::len), Some(7));
    assert!(json["next_cursor"].is_string());
}

#[tokio::test]
async fn an_abandoned_referred_signup_takes_its_pending_referral_with_it() {
    let e = env().await;
    let a = e.active("olga", None).await;
    let code = e.refcode(&a).await;
    let (s, _) = e.signup("pete", Some(&code)).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(e.stats(&a).await["pending_referrals"], 1);
    // Never verified; a day later someone else takes the username (without a code).
    e.clock.advance(chrono::Duration::hours(25));
    let a = e.login("olga").await;
    let (s, b) = e.signup("pete", None).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(
        e.stats(&a).await,
        json!({"total_referrals": 0, "completed_referrals": 0, "pending_referrals": 0, "total_earned_points": 0})
    );
    assert!(
        e.app
            .referrals()
            .referred_by(&shared::domain::Username::from_stored("pete"))
            .await
            .expect("read")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_first_payments_settling_at_once_pay_the_referral_bonus_once_and_credit_both() {
    let e = env().await;
    let a = e.active("quinn", None).await;
    let code = e.refcode(&a).await;
    let r = e.active("rosa", Some(&code)).await;
    let p1 = e.paid_invoice(&r, 10_000).await;
    let p2 = e.paid_invoice(&r, 30_000).await;
    let mut tasks = Vec::new();
    for p in [p1.clone(), p2.clone(), p1, p2] {
        let router = e.router.clone();
        tasks.push(tokio::spawn(async move {
            let req = Request::post("/payment-callback")
                .header("content-type", "application/json")
                .header("x-callback-token", "local-callback-token")
                .body(Body::from(p.to_string()))
                .expect("request");
            send(&router, req).await.0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), StatusCode::OK);
    }
    assert_eq!(e.wallet(&a).await, (0, 50));
    assert_eq!(e.wallet(&r).await, (40_000, 4));
    assert_eq!(e.stats(&a).await["completed_referrals"], 1);
    e.assert_reconciled("quinn", &a).await;
    e.assert_reconciled("rosa", &r).await;
}
