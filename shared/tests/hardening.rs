//! The hardening specifications on the embedded store: revocation that wins every race, guessing
//! limits that count before the work, points and referrals that mint no withdrawable money,
//! bounded work per user, secrets that never sit in the queue. (The storage-dependent ones also
//! run on DynamoDB: `tests/tests/hardening_dynamo.rs`.)

mod scenarios;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use scenarios::{PASSWORD, Scene, get, post, race_config};
use serde_json::{Value, json};
use shared::App;
use shared::clock::{ManualClock, SystemClock};
use shared::config::Config;
use shared::store::local::LocalStore;

async fn local(tweak: impl FnOnce(&mut Config)) -> Scene {
    Scene::serve(tweak, |config| {
        let clock = Arc::new(SystemClock);
        let store = LocalStore::memory(clock.clone()).expect("store");
        App::with_local_store(config, &store, clock)
    })
    .await
}

async fn local_at(clock: ManualClock, tweak: impl FnOnce(&mut Config)) -> Scene {
    Scene::serve(tweak, |config| {
        let store = LocalStore::memory(Arc::new(clock.clone())).expect("store");
        App::with_local_store(config, &store, Arc::new(clock))
    })
    .await
}

// ------------------------------------------------------------------------------------------------
// Revocation

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_logins_racing_a_reset_a_password_change_and_a_deactivation_leave_no_live_session()
{
    let scene = local(race_config).await;
    scenarios::logins_racing_revocations_leave_no_live_session(&scene, 3).await;
}

#[tokio::test]
async fn an_outstanding_reset_token_dies_with_a_password_change() {
    let scene = local(|_| {}).await;
    scene.active_user("forgetful").await;
    let email = "forgetful@example.com";
    scene
        .call(post("/request-reset-pwd", json!({ "email": email }), None))
        .await;
    let reset = scene.mail_token(email).await;
    let token = scene.token("forgetful").await;
    let (s, b) = scene
        .call(post(
            "/update-pwd",
            json!({ "old_password": PASSWORD, "new_password": "anotherPassword9" }),
            Some(&token),
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = scene
        .call(post(
            "/reset-pwd",
            json!({ "token": reset, "password": "attackerPassword1" }),
            None,
        ))
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a token issued before the change is dead"
    );
    let (s, _) = scene
        .login_from("forgetful", "anotherPassword9", "198.51.100.7")
        .await;
    assert_eq!(s, StatusCode::OK);
}

/// A local `/ws` connection of a session that is logged off gets no more events and is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_of_a_logged_off_session_receives_nothing_and_is_closed() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let scene = local(|c| c.ws_recheck_secs = 1).await;
    scene.active_user("listener").await;
    let token = scene.token("listener").await;
    let url = format!("{}/ws?token={token}", scene.base.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    socket
        .send(Message::Text(r#"{"action":"subscribe:payment"}"#.into()))
        .await
        .expect("send");
    let reply = socket.next().await.expect("reply").expect("frame");
    assert!(reply.to_string().contains("subscribed"), "{reply}");
    let (s, _) = scene.call(get("/logoff", Some(&token))).await;
    assert_eq!(s, StatusCode::OK);
    // A payment of the user is published: the revoked connection must not get it.
    let other = scene.token("listener").await;
    top_up(&scene, &other, 10_000).await;
    let next = tokio::time::timeout(Duration::from_secs(5), socket.next()).await;
    match next {
        Ok(None) | Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) => {}
        Ok(Some(Ok(m))) => panic!("a revoked connection received {m}"),
        Err(_) => panic!("the revoked connection was not closed"),
    }
}

// ------------------------------------------------------------------------------------------------
// Guessing

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_parallel_wrong_passwords_from_sixty_addresses_verify_at_most_ten_and_the_owner_gets_in_after_the_window()
 {
    let clock = ManualClock::new();
    let scene = local_at(clock.clone(), |_| {}).await;
    let (verified, refused) =
        scenarios::wrong_passwords_from_many_addresses_verify_at_most_the_limit(&scene, 10).await;
    assert!(refused >= 50, "{verified} verified, {refused} refused");
    // Guessing on, one at a time: the window allows exactly ten verifications in all.
    let mut more = 0;
    loop {
        let ip = format!("192.0.2.{}", 100 + more);
        let (s, _) = scene.login_from("target", "wrongPassword1", &ip).await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        more += 1;
    }
    assert_eq!(verified + more, 10, "{verified} in the flood, {more} after");
    let (s, _) = scene.login_from("target", PASSWORD, "198.51.100.1").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "locked for the window");
    clock.advance(chrono::Duration::seconds(301));
    let (s, b) = scene.login_from("target", PASSWORD, "198.51.100.1").await;
    assert_eq!(s, StatusCode::OK, "not longer than one window: {b}");
}

#[tokio::test]
async fn a_password_reset_by_mail_lifts_the_guessing_lock_at_once() {
    let scene = local(|_| {}).await;
    scenarios::wrong_passwords_from_many_addresses_verify_at_most_the_limit(&scene, 10).await;
    let email = "target@example.com";
    scene
        .call(post("/request-reset-pwd", json!({ "email": email }), None))
        .await;
    let reset = scene.mail_token(email).await;
    let (s, b) = scene
        .call(post(
            "/reset-pwd",
            json!({ "token": reset, "password": "freshPassword12" }),
            None,
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = scene
        .login_from("target", "freshPassword12", "198.51.100.1")
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn update_pwd_guessing_with_a_stolen_token_hits_a_limit_before_the_right_password() {
    let clock = ManualClock::new();
    let scene = local_at(clock.clone(), |_| {}).await;
    scene.active_user("victim").await;
    let stolen = scene.token("victim").await;
    let other = scene.token("victim").await;
    let guess = |old: &str| {
        post(
            "/update-pwd",
            json!({ "old_password": old, "new_password": "attackerChoice1" }),
            Some(&stolen),
        )
    };
    let mut codes = Vec::new();
    for i in 0..8 {
        codes.push(scene.call(guess(&format!("wrongGuess{i}"))).await.0);
    }
    assert_eq!(
        codes
            .iter()
            .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
            .count(),
        5,
        "{codes:?}"
    );
    assert!(
        codes[5..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS)
    );
    // The right password is refused too while the limit holds: no oracle.
    let (s, _) = scene.call(guess(PASSWORD)).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        scene.live(&other).await,
        "the owner's other session is untouched"
    );
    clock.advance(chrono::Duration::seconds(901));
    let (s, _) = scene.call(guess(PASSWORD)).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_password_changes_from_one_session_is_refused_fast_and_others_still_log_in() {
    let scene = local(|c| {
        // No per-account guessing limit in the way: this is about the hashing queue.
        c.limits.password_change = shared::ratelimit::Limit::new(1000, 900);
    })
    .await;
    scene.active_user("flooder").await;
    scene.active_user("bystander").await;
    let token = scene.token("flooder").await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (scene, token) = (scene.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            scene
                .call(post(
                    "/update-pwd",
                    json!({ "old_password": format!("wrong{i}xxxx"), "new_password": "whatever123" }),
                    Some(&token),
                ))
                .await
                .0
        }));
    }
    let (s, b) = scene
        .login_from("bystander", PASSWORD, "198.51.100.9")
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let mut counts = std::collections::BTreeMap::new();
    for t in tasks {
        *counts.entry(t.await.expect("task").as_u16()).or_insert(0) += 1;
    }
    let hashed = counts.get(&422).copied().unwrap_or(0);
    let refused = counts.get(&429).copied().unwrap_or(0);
    assert_eq!(hashed + refused, 64, "{counts:?}");
    assert!(
        refused >= 32,
        "most of the flood is refused before hashing: {counts:?}"
    );
}

#[tokio::test]
async fn per_address_limits_count_an_ipv6_64_as_one_client() {
    let scene = local(|c| c.limits.login_ip = shared::ratelimit::Limit::new(3, 300)).await;
    scene.active_user("v6user").await;
    let mut codes = Vec::new();
    for i in 1..=5 {
        let ip = format!("2001:db8:77:1::{i:x}");
        codes.push(scene.login_from("v6user", "wrongPassword1", &ip).await.0);
    }
    assert_eq!(codes[3], StatusCode::TOO_MANY_REQUESTS, "{codes:?}");
    let (s, _) = scene
        .login_from("v6user", "wrongPassword1", "2001:db8:77:2::1")
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "another /64 is another client"
    );
}

#[tokio::test]
async fn a_reset_request_does_the_same_table_and_queue_work_for_known_and_unknown_addresses() {
    use shared::notify::memory::MemoryQueue;
    use shared::store::counting::CountingTable;
    let clock: shared::clock::ClockRef = Arc::new(SystemClock);
    let store = LocalStore::memory(clock.clone()).expect("store");
    let plain = App::with_local_store(Config::for_tests(), &store, clock.clone());
    let setup = Scene::serve(|_| {}, |_| plain.clone()).await;
    setup.active_user("known").await;
    let main = Arc::new(CountingTable::new(plain.main.clone()));
    let queue = MemoryQueue::new();
    let counted = App::assemble(Config::for_tests(), main.clone(), plain.logs.clone(), clock)
        .with_queue(Arc::new(queue.clone()));
    let router = shared::http::finish(shared::http::routes(), &counted);
    let mut seen = Vec::new();
    for email in ["known@example.com", "nobody@example.com"] {
        let before = main.calls();
        let req = post("/request-reset-pwd", json!({ "email": email }), None);
        let res = tower::ServiceExt::oneshot(router.clone(), req)
            .await
            .expect("infallible");
        assert_eq!(res.status(), StatusCode::OK);
        let after = main.calls();
        let sent = queue.drain();
        seen.push((
            after.total() - before.total(),
            after.writes() - before.writes(),
            sent.len(),
        ));
        let body = serde_json::to_string(&sent).expect("json");
        assert!(!body.contains("token"), "nothing secret is queued: {body}");
    }
    assert_eq!(seen[0], seen[1], "known vs unknown: {seen:?}");
}

#[tokio::test]
async fn no_otp_link_or_reset_token_is_ever_in_a_queued_message() {
    use shared::notify::memory::MemoryQueue;
    let queue = MemoryQueue::new();
    let q = queue.clone();
    let scene = Scene::serve(
        |_| {},
        move |config| {
            let clock = Arc::new(SystemClock);
            let store = LocalStore::memory(clock.clone()).expect("store");
            App::with_local_store(config, &store, clock).with_queue(Arc::new(q))
        },
    )
    .await;
    let signup = |name: &str, mode: &str, phone: &str| {
        post(
            "/signup",
            json!({"username": name, "password": PASSWORD, "email": format!("{name}@example.com"),
                "full_name": "Q", "phone_number": phone, "mode": mode}),
            None,
        )
    };
    let (s, otp_signup) = scene.call(signup("otpq", "OTP", "628123400001")).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = scene.call(signup("linkq", "LINK", "628123400002")).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = scene
        .call(post("/resend-otp", json!({}), otp_signup["token"].as_str()))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = scene
        .call(post(
            "/request-reset-pwd",
            json!({ "email": "linkq@example.com" }),
            None,
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    // Every message with a secret is held in the table; the queue has only references.
    let sent = queue.sent();
    assert!(sent.len() >= 4, "{sent:?}");
    let now = chrono::Utc::now().timestamp();
    let mut secrets = Vec::new();
    for m in &sent {
        match m {
            shared::notify::Notification::Held { id } => {
                let held = shared::notify::held::read(scene.app.main.as_ref(), id, now)
                    .await
                    .expect("read")
                    .expect("held until its secret expires");
                let text = serde_json::to_string(&held).expect("json");
                let code = text
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_')
                    .filter(|w| {
                        w.len() == 6 && w.chars().all(|c| c.is_ascii_digit()) || w.len() == 43
                    })
                    .map(str::to_owned)
                    .collect::<Vec<_>>();
                assert!(!code.is_empty(), "a secret in {text}");
                secrets.extend(code);
            }
            shared::notify::Notification::PasswordReset { email } => {
                assert_eq!(email, "linkq@example.com")
            }
            other => panic!("a message carrying text was queued: {other:?}"),
        }
    }
    let queued = serde_json::to_string(&sent).expect("json");
    for secret in &secrets {
        assert!(!queued.contains(secret.as_str()), "{secret} in the queue");
    }
}

// ------------------------------------------------------------------------------------------------
// Points and referrals

/// Checkout `amount` for `token` and pay it in the simulator (the callback is delivered).
async fn top_up(scene: &Scene, token: &str, amount: i64) {
    let (s, co) = scene
        .call(post(
            "/payment-checkout",
            json!({ "amount": amount }),
            Some(token),
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{co}");
    let res = reqwest::Client::new()
        .post(format!(
            "{}/_dev/xendit/invoices/{}/pay",
            scene.base,
            co["id"].as_str().expect("xendit id")
        ))
        .json(&json!({}))
        .send()
        .await
        .expect("pay");
    assert_eq!(res.status().as_u16(), 200);
}

async fn balance(scene: &Scene, token: &str) -> Value {
    let (s, b) = scene.call(get("/balance", Some(token))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

/// Registers a bank account; its id.
async fn bank_account(scene: &Scene, token: &str) -> String {
    let (s, b) = scene
        .call(post(
            "/bank-account",
            json!({"bank_code": "BCA", "account_number": "1234567890", "account_holder_name": "Boss"}),
            Some(token),
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["id"].as_str().expect("id").to_owned()
}

async fn payout(scene: &Scene, token: &str, account: &str, amount: i64) -> (StatusCode, Value) {
    scene
        .call(post(
            "/payout",
            json!({ "bank_account_id": account, "amount": amount }),
            Some(token),
        ))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_top_up_redeem_payout_loop_yields_no_withdrawable_gain() {
    let scene = local(|_| {}).await;
    scene.active_user("looper").await;
    let t = scene.token("looper").await;
    top_up(&scene, &t, 1_000_000).await;
    let b = balance(&scene, &t).await;
    assert_eq!(
        (b["balance"].as_i64(), b["points"].as_i64()),
        (Some(1_000_000), Some(100))
    );
    let (s, r) = scene
        .call(post("/points/redeem", json!({ "points": 100 }), Some(&t)))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let b = balance(&scene, &t).await;
    assert_eq!(b["balance"], 1_010_000);
    assert_eq!(
        b["withdrawable_balance"], 1_000_000,
        "points became bonus money"
    );
    let account = bank_account(&scene, &t).await;
    let (s, e) = payout(&scene, &t, &account, 1_010_000).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["message"], "Insufficient Withdrawable Balance");
    let (s, ok) = payout(&scene, &t, &account, 1_000_000).await;
    assert_eq!(s, StatusCode::OK, "{ok}");
    // What is left is the bonus, spendable only.
    let b = balance(&scene, &t).await;
    assert_eq!(
        (b["balance"].as_i64(), b["withdrawable_balance"].as_i64()),
        (Some(10_000), Some(0))
    );
    let (s, _) = scene
        .call(post(
            "/balance/decrease",
            json!({ "amount": 10_000 }),
            Some(&t),
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "bonus money is spent like any other");
    let w = scene
        .app
        .wallets()
        .read(&shared::domain::Username::from_stored("looper"))
        .await
        .expect("wallet");
    assert_eq!((w.balance, w.bonus), (0, 0));
    assert_eq!(
        scene
            .app
            .wallets()
            .ledger_sum(&shared::domain::Username::from_stored("looper"))
            .await
            .expect("sum")
            .rupiah(),
        w.balance
    );
}

async fn signup_with(scene: &Scene, name: &str, email: &str, code: &str) -> (StatusCode, Value) {
    scene
        .call(post(
            "/signup",
            json!({"username": name, "password": PASSWORD, "email": email, "full_name": "Alias",
                "referral_code": code, "mode": "LINK"}),
            None,
        ))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn farming_referrals_with_mailbox_aliases_and_tiny_payments_yields_no_withdrawable_gain() {
    let scene = local(|_| {}).await;
    let (s, b) = scene
        .call(post(
            "/signup",
            json!({"username": "boss", "password": PASSWORD, "email": "boss@gmail.com",
                "full_name": "Boss", "mode": "LINK"}),
            None,
        ))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let link = scene.mail_token("boss@gmail.com").await;
    scene
        .call(post("/verify-sign-up", json!({ "token": link }), None))
        .await;
    let boss = scene.token("boss").await;
    let (_, rc) = scene.call(get("/user/referral-code", Some(&boss))).await;
    let code = rc["referral_code"].as_str().expect("code").to_owned();
    // Aliases of the boss's own mailbox cannot hold accounts.
    for (i, alias) in [
        "boss+1@gmail.com",
        "b.o.s.s@gmail.com",
        "Boss+x@googlemail.com",
    ]
    .iter()
    .enumerate()
    {
        let (s, b) = signup_with(&scene, &format!("alias{i}"), alias, &code).await;
        assert_eq!(s, StatusCode::CONFLICT, "{alias}: {b}");
        assert_eq!(b["message"], "Email is already registered");
    }
    // Real other mailboxes paying 1 rupiah earn the referrer nothing.
    for i in 0..3 {
        let name = format!("farm{i}");
        let email = format!("farm{i}@example.com");
        let (s, b) = signup_with(&scene, &name, &email, &code).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let link = scene.mail_token(&email).await;
        scene
            .call(post("/verify-sign-up", json!({ "token": link }), None))
            .await;
        let t = scene.token(&name).await;
        top_up(&scene, &t, 1).await;
    }
    let b = balance(&scene, &boss).await;
    assert_eq!(
        (b["points"].as_i64(), b["withdrawable_balance"].as_i64()),
        (Some(0), Some(0))
    );
    let (_, stats) = scene.call(get("/referral/stats", Some(&boss))).await;
    assert_eq!(stats["completed_referrals"], 0, "{stats}");
    assert_eq!(stats["pending_referrals"], 3, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qualifying_referrals_pay_at_most_the_cap_per_window_and_bonus_points_are_not_withdrawable()
{
    let scene = local(|c| {
        c.points.referral_cap = shared::ratelimit::Limit::new(2, 30 * 86_400);
        c.points.referral_bonus = 100;
    })
    .await;
    scene.active_user("ref").await;
    let referrer = scene.token("ref").await;
    let (_, rc) = scene
        .call(get("/user/referral-code", Some(&referrer)))
        .await;
    let code = rc["referral_code"].as_str().expect("code").to_owned();
    for i in 0..3 {
        let name = format!("friend{i}");
        let email = format!("friend{i}@example.com");
        let (s, b) = signup_with(&scene, &name, &email, &code).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let link = scene.mail_token(&email).await;
        scene
            .call(post("/verify-sign-up", json!({ "token": link }), None))
            .await;
        let t = scene.token(&name).await;
        top_up(&scene, &t, 50_000).await;
    }
    let (_, stats) = scene.call(get("/referral/stats", Some(&referrer))).await;
    assert_eq!(stats["completed_referrals"], 3, "{stats}");
    assert_eq!(
        stats["total_earned_points"], 200,
        "two rewarded, one capped: {stats}"
    );
    let (s, _) = scene
        .call(post(
            "/points/redeem",
            json!({ "points": 200 }),
            Some(&referrer),
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    let b = balance(&scene, &referrer).await;
    assert_eq!(
        (b["balance"].as_i64(), b["withdrawable_balance"].as_i64()),
        (Some(20_000), Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_between_accounts_sharing_a_device_earns_nothing() {
    let scene = local(|_| {}).await;
    scene.active_user("host").await;
    let host = scene.token("host").await;
    let device = "fcm-token-of-one-phone-0123456789abcdef";
    let (s, b) = scene
        .call(post(
            "/fcm/register",
            json!({ "token": device, "device_type": "android" }),
            Some(&host),
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, rc) = scene.call(get("/user/referral-code", Some(&host))).await;
    let code = rc["referral_code"].as_str().expect("code").to_owned();
    let (s, _) = signup_with(&scene, "sock", "sock@example.com", &code).await;
    assert_eq!(s, StatusCode::CREATED);
    let link = scene.mail_token("sock@example.com").await;
    scene
        .call(post("/verify-sign-up", json!({ "token": link }), None))
        .await;
    let sock = scene.token("sock").await;
    // The same handset registers for the new account (the token moves to it).
    scene
        .call(post(
            "/fcm/register",
            json!({ "token": device, "device_type": "android" }),
            Some(&sock),
        ))
        .await;
    top_up(&scene, &sock, 100_000).await;
    let (_, stats) = scene.call(get("/referral/stats", Some(&host))).await;
    assert_eq!(stats["completed_referrals"], 1, "{stats}");
    assert_eq!(stats["total_earned_points"], 0, "{stats}");
    assert_eq!(balance(&scene, &host).await["points"], 0);
}

// ------------------------------------------------------------------------------------------------
// Bounded work

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_open_invoice_cap_holds_under_16_parallel_checkouts() {
    let scene = local(|c| c.max_open_invoices = 10).await;
    scenarios::parallel_checkouts_respect_the_open_invoice_cap(&scene, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sync_with_1000_pending_invoices_still_runs_payouts_and_points_expiry_within_its_budget()
{
    let scene = local(|c| {
        c.points.expiry_months = 1;
        // The simulator has no rate limit here; the pacing is tested on its own.
        c.sync_xendit_rpm = 0;
    })
    .await;
    let app = &scene.app;
    scenarios::seed_pending_invoices(app, "crowd", 1_000).await;
    // Points to expire, and a payout whose callback was lost.
    let old = shared::wallet::PointsChange {
        kind: shared::wallet::EntryType::Credit,
        points: shared::domain::Points::new(40),
        description: "old".into(),
        reference_id: "old".into(),
    };
    scenarios::old_points(app, "saver", &old).await;
    scene.active_user("payee").await;
    let t = scene.token("payee").await;
    top_up(&scene, &t, 60_000).await;
    let account = bank_account(&scene, &t).await;
    let (s, p) = payout(&scene, &t, &account, 50_000).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let xendit_payout = scenarios::complete_payout_without_callback(&scene, "payee").await;
    let started = Instant::now();
    let budget = Duration::from_secs(2);
    let summary = app
        .sync()
        .run_until(shared::clock::Deadline::after(budget))
        .await
        .expect("sync");
    let took = started.elapsed();
    assert_eq!(
        summary.payouts.completed, 1,
        "{summary:?} ({xendit_payout})"
    );
    assert_eq!(summary.points_expiry.expired_points, 40, "{summary:?}");
    assert!(summary.checked >= 1, "{summary:?}");
    // Nothing is started after the deadline; what runs then finishes within a call's timeout.
    assert!(took < budget + Duration::from_secs(5), "took {took:?}");
    // Later runs go on from where this one stopped until every invoice was looked at.
    let mut total = summary.checked;
    for _ in 0..20 {
        if total >= 1_000 {
            break;
        }
        let next = app
            .sync()
            .run_until(shared::clock::Deadline::after(budget))
            .await
            .expect("sync");
        total += next.checked;
    }
    assert!(total >= 1_000, "every invoice is reached in turn: {total}");
}
