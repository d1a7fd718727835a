//! Attack scenarios of the hardening work, written once and run on the embedded store
//! (`shared/tests/hardening.rs`) and on DynamoDB through the emulator
//! (`tests/tests/hardening_dynamo.rs`): they depend on conditional writes and transactions, whose
//! semantics must hold on both.
#![allow(dead_code)]

#[path = "../served.rs"]
mod served;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use shared::App;
use shared::config::Config;
use tower::ServiceExt;

/// An app served on a loopback port (the Xendit simulator calls back into it) and its router.
#[derive(Clone)]
pub struct Scene {
    pub app: App,
    pub router: Router,
    pub base: String,
}

pub const PASSWORD: &str = "securePassword123";

impl Scene {
    /// Serves the app `build` makes from the test configuration (pointed at the bound port).
    pub async fn serve(
        tweak: impl FnOnce(&mut Config),
        build: impl FnOnce(Config) -> App,
    ) -> Scene {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mut config = Config::for_tests();
        config.public_base_url = base.clone();
        config.xendit_base_url = format!("{base}/_dev/xendit");
        tweak(&mut config);
        let app = build(config);
        let router = shared::http::finish(served::local_routes(&app), &app);
        let served = router.clone();
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                served.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        Scene { app, router, base }
    }

    /// Sends a request; status and JSON body.
    pub async fn call(&self, req: Request<Body>) -> (StatusCode, Value) {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Messages delivered to `to`, oldest first.
    pub async fn outbox(&self, to: &str) -> Vec<shared::notify::local::OutboxEntry> {
        self.app.queue.flush().await;
        shared::notify::local::read(&self.app.main, to)
            .await
            .expect("outbox")
    }

    /// The token in the newest mail to `email` (a `token=` link or a reset token).
    pub async fn mail_token(&self, email: &str) -> String {
        let msgs = self.outbox(email).await;
        let last = msgs.last().expect("a mail was sent");
        let body = &last.body;
        let at = match body.find("token=") {
            Some(i) => i + "token=".len(),
            None => body.find("in the app: ").expect("a token") + "in the app: ".len(),
        };
        body[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }

    /// A verified account `username` (`{username}@example.com`, password [`PASSWORD`]).
    pub async fn active_user(&self, username: &str) {
        let email = format!("{username}@example.com");
        let body = json!({"username": username, "password": PASSWORD, "email": email,
            "full_name": "Test User", "mode": "LINK"});
        let (s, b) = self.call(post("/signup", body, None)).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let link = self.mail_token(&email).await;
        let (s, b) = self
            .call(post("/verify-sign-up", json!({ "token": link }), None))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    /// `POST /auth` as if from `ip`.
    pub async fn login_from(
        &self,
        username: &str,
        password: &str,
        ip: &str,
    ) -> (StatusCode, Value) {
        let req = from_ip(
            post(
                "/auth",
                json!({"username": username, "password": password}),
                None,
            ),
            ip,
        );
        self.call(req).await
    }

    /// A session token.
    pub async fn token(&self, username: &str) -> String {
        let (s, b) = self.login_from(username, PASSWORD, "198.51.100.1").await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["token"].as_str().expect("token").to_owned()
    }

    /// Whether a session token is still accepted.
    pub async fn live(&self, token: &str) -> bool {
        self.call(get("/verify", Some(token))).await.0 == StatusCode::OK
    }
}

pub fn post(path: &str, body: Value, bearer: Option<&str>) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/json");
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).expect("request")
}

pub fn get(path: &str, bearer: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::empty()).expect("request")
}

/// The request as API Gateway delivers it from `ip` (`requestContext.http.sourceIp`).
pub fn from_ip(mut req: Request<Body>, ip: &str) -> Request<Body> {
    let mut ctx = aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
    ctx.http.source_ip = Some(ip.to_owned());
    req.extensions_mut()
        .insert(lambda_http::request::RequestContext::ApiGatewayV2(ctx));
    req
}

/// Limits high enough that a race of one user's logins is not cut short by them (the races are
/// about revocation, not guessing).
pub fn race_config(c: &mut Config) {
    c.limits.login_account = shared::ratelimit::Limit::new(1000, 300);
    c.limits.login_ip = shared::ratelimit::Limit::new(1000, 300);
    c.limits.password_change = shared::ratelimit::Limit::new(1000, 300);
    c.hash_limits.per_client = 1000;
    c.hash_limits.queue_max = 1000;
}

/// `n` logins of `username` with `password`, spread over ~40 ms, while `revoke` runs ~15 ms in;
/// the tokens of the logins that succeeded.
async fn race<F: std::future::Future<Output = ()>>(
    scene: &Scene,
    username: &str,
    password: &str,
    n: usize,
    revoke: F,
) -> Vec<String> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let (scene, username, password) = (scene.clone(), username.to_owned(), password.to_owned());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis((i as u64 * 40) / n as u64)).await;
            scene
                .login_from(&username, &password, &format!("203.0.113.{}", i + 1))
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(15)).await;
    revoke.await;
    let mut tokens = Vec::new();
    for t in tasks {
        let (s, b) = t.await.expect("login task");
        match s {
            StatusCode::OK => tokens.push(b["token"].as_str().expect("token").to_owned()),
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::FORBIDDEN => {}
            other => panic!("unexpected {other}: {b}"),
        }
    }
    tokens
}

/// Parallel logins racing a password reset, a password change and a deactivation: no session
/// opened with the old password or for the old account state survives (three rounds each).
pub async fn logins_racing_revocations_leave_no_live_session(scene: &Scene, rounds: usize) {
    for round in 0..rounds {
        // A password reset by mail.
        let u = format!("reset{round}");
        scene.active_user(&u).await;
        let email = format!("{u}@example.com");
        let (s, b) = scene
            .call(post("/request-reset-pwd", json!({ "email": email }), None))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let reset = scene.mail_token(&email).await;
        let s2 = scene.clone();
        let tokens = race(scene, &u, PASSWORD, 16, async move {
            let (s, b) = s2
                .call(post(
                    "/reset-pwd",
                    json!({ "token": reset, "password": "brandNewPassword1" }),
                    None,
                ))
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
        })
        .await;
        for t in &tokens {
            assert!(!scene.live(t).await, "a session of {u} survived the reset");
        }

        // A password change: only the caller's session stays.
        let u = format!("change{round}");
        scene.active_user(&u).await;
        let caller = scene.token(&u).await;
        let (s2, c2) = (scene.clone(), caller.clone());
        let tokens = race(scene, &u, PASSWORD, 16, async move {
            let (s, b) = s2
                .call(post(
                    "/update-pwd",
                    json!({ "old_password": PASSWORD, "new_password": "brandNewPassword1" }),
                    Some(&c2),
                ))
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
        })
        .await;
        for t in &tokens {
            assert!(!scene.live(t).await, "a session of {u} survived the change");
        }
        assert!(scene.live(&caller).await, "the caller keeps its session");

        // A deactivation: nothing survives, and money routes refuse.
        let u = format!("leave{round}");
        scene.active_user(&u).await;
        let caller = scene.token(&u).await;
        let (s2, c2) = (scene.clone(), caller.clone());
        let tokens = race(scene, &u, PASSWORD, 16, async move {
            let (s, b) = s2
                .call(post(
                    "/deactivate",
                    json!({ "reason": "leaving" }),
                    Some(&c2),
                ))
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
        })
        .await;
        for t in tokens.iter().chain([&caller]) {
            assert!(
                !scene.live(t).await,
                "a session of {u} survived deactivation"
            );
            let (s, _) = scene.call(get("/balance", Some(t))).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED);
        }
    }
}

/// 60 parallel wrong passwords for one account from 60 addresses: at most the per-account limit
/// of them is verified (422), the rest are refused before any hashing (429); the owner gets in
/// again once the window has passed.
pub async fn wrong_passwords_from_many_addresses_verify_at_most_the_limit(
    scene: &Scene,
    limit: i64,
) -> (usize, usize) {
    scene.active_user("target").await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let scene = scene.clone();
        tasks.push(tokio::spawn(async move {
            scene
                .login_from("target", "wrongPassword1", &format!("192.0.2.{}", i + 1))
                .await
        }));
    }
    let (mut verified, mut refused) = (0, 0);
    for t in tasks {
        let (s, b) = t.await.expect("task");
        match s {
            StatusCode::UNPROCESSABLE_ENTITY => verified += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert!(
        verified <= limit as usize,
        "{verified} verified, limit {limit}"
    );
    assert_eq!(verified + refused, 60);
    (verified, refused)
}

/// 16 parallel checkouts of one user with room for `cap` open invoices: exactly `cap` succeed,
/// the rest are 409 "Too Many Open Invoices"; cancelling one makes room for exactly one more.
pub async fn parallel_checkouts_respect_the_open_invoice_cap(scene: &Scene, cap: usize) {
    scene.active_user("shopper").await;
    let token = scene.token("shopper").await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (scene, token) = (scene.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            scene
                .call(post(
                    "/payment-checkout",
                    json!({ "amount": 10_000 }),
                    Some(&token),
                ))
                .await
        }));
    }
    let mut created = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (s, b) = t.await.expect("task");
        match s {
            StatusCode::OK => created.push(b["invoice_id"].as_str().expect("id").to_owned()),
            StatusCode::CONFLICT => {
                assert_eq!(b["message"], "Too Many Open Invoices");
                refused += 1;
            }
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert_eq!((created.len(), refused), (cap, 16 - cap));
    let (s, b) = scene
        .call(post(
            "/invoice/cancel/xendit",
            json!({ "invoice_id": created[0] }),
            Some(&token),
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let checkout = || {
        post(
            "/payment-checkout",
            json!({ "amount": 10_000 }),
            Some(&token),
        )
    };
    assert_eq!(scene.call(checkout()).await.0, StatusCode::OK);
    assert_eq!(scene.call(checkout()).await.0, StatusCode::CONFLICT);
}

/// `n` PENDING invoices of `username` stored as checkouts leave them (Xendit ids the simulator
/// does not know: each check is a quick 404); the first fifth are past their expiry date.
pub async fn seed_pending_invoices(app: &App, username: &str, n: usize) {
    use shared::payments::invoice::{InvoiceRecord, NewInvoice};
    let now = chrono::Utc::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(25) {
        let mut ops = Vec::new();
        for i in chunk {
            let expiry = if *i < n / 5 {
                now - chrono::Duration::hours(1)
            } else {
                now + chrono::Duration::hours(12)
            };
            let rec = InvoiceRecord::pending(
                NewInvoice {
                    invoice_id: format!("inv-seed-{i:05}"),
                    username: username.to_owned(),
                    amount: 10_000,
                    currency: "IDR".into(),
                    description: "seed".into(),
                    payment_method: None,
                    ewallet_type: None,
                    xendit_id: format!("x-seed-{i:05}"),
                    invoice_url: "http://example.invalid".into(),
                    expiry_date: expiry.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                },
                now,
            );
            ops.push(shared::store::TxOp::Put {
                item: shared::store::to_item(&rec).expect("item"),
                cond: None,
            });
        }
        app.main.transact(ops).await.expect("seed");
    }
}

/// Gives `username` points credited 60 days ago (due to expire under a one-month rule).
pub async fn old_points(app: &App, username: &str, change: &shared::wallet::PointsChange) {
    use shared::store::keys;
    let then = chrono::Utc::now() - chrono::Duration::days(60);
    let mut wallet = keys::wallet(username).item();
    wallet.insert("balance".into(), 0i64.into());
    wallet.insert("points".into(), change.points.value().into());
    wallet.insert("version".into(), 1i64.into());
    wallet.insert("gsi2pk".into(), keys::POINTS_HOLDERS_GSI_PK.into());
    wallet.insert("gsi2sk".into(), username.into());
    let entry = shared::wallet::points_ledger_put(
        &shared::domain::Username::from_stored(username),
        then,
        "old-credit",
        change,
    )
    .expect("entry");
    app.main
        .transact(vec![
            shared::store::TxOp::Put {
                item: wallet,
                cond: None,
            },
            entry,
        ])
        .await
        .expect("old points");
}

/// Completes `username`'s pending payout at the simulator without delivering the callback (the
/// sync must find it); the Xendit id.
pub async fn complete_payout_without_callback(scene: &Scene, username: &str) -> String {
    use shared::store::{Query, keys, query_all, schema::GSI1};
    let payouts = query_all(
        scene.app.main.as_ref(),
        Query::index(GSI1, keys::user_payouts_gsi(username)),
    )
    .await
    .expect("payouts");
    let xid = payouts
        .iter()
        .find_map(|p| shared::store::get_s(p, "xendit_id").map(str::to_owned))
        .expect("a submitted payout");
    let res = reqwest::Client::new()
        .post(format!("{}/_dev/xendit/payouts/{xid}/succeed", scene.base))
        .json(&json!({ "deliver": false }))
        .send()
        .await
        .expect("simulator");
    assert_eq!(res.status().as_u16(), 200);
    xid
}

/// Signups with aliases of an existing mailbox are refused (the canonical guard, and the check
/// on an older exact-form guard); two referred users paying at once reward the referrer at most
/// the cap (1 here, a conditional counter in the settlement transaction).
pub async fn aliases_and_referral_caps(scene: &Scene) {
    scene.active_user("owner").await;
    let owner = scene.token("owner").await;
    let (_, rc) = scene.call(get("/user/referral-code", Some(&owner))).await;
    let code = rc["referral_code"].as_str().expect("code").to_owned();
    let signup = |name: &str, email: &str| {
        post(
            "/signup",
            json!({"username": name, "password": PASSWORD, "email": email, "full_name": "A",
                "referral_code": code, "mode": "LINK"}),
            None,
        )
    };
    let (s, b) = scene
        .call(signup("ownerplus", "Owner+shop@example.com"))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let mut payers = Vec::new();
    for name in ["pal1", "pal2"] {
        let email = format!("{name}@example.com");
        let (s, b) = scene.call(signup(name, &email)).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let link = scene.mail_token(&email).await;
        scene
            .call(post("/verify-sign-up", json!({ "token": link }), None))
            .await;
        payers.push(scene.token(name).await);
    }
    let mut paid = Vec::new();
    for t in &payers {
        let (s, co) = scene
            .call(post(
                "/payment-checkout",
                json!({ "amount": 60_000 }),
                Some(t),
            ))
            .await;
        assert_eq!(s, StatusCode::OK, "{co}");
        paid.push(co["id"].as_str().expect("xendit id").to_owned());
    }
    let base = scene.base.clone();
    let pays = paid.into_iter().map(|xid| {
        let base = base.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{base}/_dev/xendit/invoices/{xid}/pay"))
                .json(&json!({}))
                .send()
                .await
                .expect("pay")
                .status()
                .as_u16()
        })
    });
    for p in pays.collect::<Vec<_>>() {
        assert_eq!(p.await.expect("task"), 200);
    }
    let (_, stats) = scene.call(get("/referral/stats", Some(&owner))).await;
    assert_eq!(stats["completed_referrals"], 2, "{stats}");
    assert_eq!(
        stats["total_earned_points"], 50,
        "one rewarded, one capped: {stats}"
    );
}
