//! Negative specifications of the auth route group: refused tokens, OTP limits, signup races and
//! validation, rate limits, API-key refusal, legacy password upgrade, and the Lambda entry.

mod auth;
mod common;

use auth::{env, env_with, get, post};
use axum::body::Body;
use base64::Engine;
use common::{assert_envelope, send};
use http::{Request, StatusCode};
use serde_json::json;
use shared::store::{Update, get_s, keys};

#[tokio::test]
async fn forged_expired_malformed_and_alg_none_tokens_are_401() {
    let e = env();
    e.active_user("victim", "victim@example.com", "628700000001")
        .await;
    let good = e.token("victim", "securePassword123").await;
    let claims = shared::auth::token::verify(&e.app.config.jwt_secret, &good, e.app.clock.epoch())
        .expect("valid");

    let other_key = shared::config::Secret::new("a-completely-different-secret-key-0123456789");
    let forged = shared::auth::token::sign(&other_key, &claims).expect("sign");
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&serde_json::to_string(&claims).expect("json"))
    );
    let mut tampered_claims = claims.clone();
    tampered_claims.user = "someone_else".into();
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&serde_json::to_string(&tampered_claims).expect("json")),
        parts[2]
    );

    for bad in [
        forged.as_str(),
        none.as_str(),
        tampered.as_str(),
        "garbage",
        "a.b.c",
    ] {
        let (s, b) = e.call(get("/verify", Some(bad))).await;
        assert_envelope(s, &b, 401);
    }
    let (s, b) = e.call(get("/verify", None)).await;
    assert_envelope(s, &b, 401);

    let (s, _) = e.call(get("/verify", Some(&good))).await;
    assert_eq!(s, StatusCode::OK);
    e.clock
        .advance(chrono::Duration::seconds(e.app.config.jwt_ttl_secs + 1));
    let (s, b) = e.call(get("/verify", Some(&good))).await;
    assert_envelope(s, &b, 401);
    let (s, b) = e.call(get("/extend", Some(&good))).await;
    assert_envelope(s, &b, 401);
}

#[tokio::test]
async fn five_wrong_otps_burn_the_code_so_the_right_one_then_fails() {
    let e = env();
    let reg = e
        .signup_otp("guesser", "guesser@example.com", "628700000002")
        .await;
    let otp = e.latest_otp("628700000002").await;
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let (s, b) = e
            .call(post("/verify-sign-up", json!({"otp": wrong}), Some(&reg)))
            .await;
        assert_envelope(s, &b, 400);
        assert_eq!(b["message"], "Invalid OTP");
    }
    let (s, b) = e
        .call(post("/verify-sign-up", json!({"otp": otp}), Some(&reg)))
        .await;
    assert_envelope(s, &b, 400);
    assert_eq!(b["message"], "OTP Expired");
    let (s, _) = e.login("guesser", "securePassword123").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "still pending");

    // A resent code works again.
    let (s, b) = e.call(post("/resend-otp", json!({}), Some(&reg))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let fresh = e.latest_otp("628700000002").await;
    let (s, b) = e
        .call(post("/verify-sign-up", json!({"otp": fresh}), Some(&reg)))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn an_otp_older_than_ten_minutes_fails() {
    let e = env();
    let reg = e
        .signup_otp("slowpoke", "slow@example.com", "628700000003")
        .await;
    let otp = e.latest_otp("628700000003").await;
    e.clock.advance(chrono::Duration::seconds(601));
    let (s, b) = e
        .call(post("/verify-sign-up", json!({"otp": otp}), Some(&reg)))
        .await;
    assert_envelope(s, &b, 400);
    assert_eq!(b["message"], "OTP Expired");
}

#[tokio::test]
async fn twenty_parallel_signups_with_one_email_create_exactly_one_account() {
    let e = env_with(|c| {
        c.limits.signup_ip = shared::ratelimit::Limit::new(1000, 3600);
        // One test client sends all 20 at once: let its hashes queue.
        c.hash_limits.per_client = 100;
        c.hash_limits.queue_max = 100;
    });
    let mut tasks = Vec::new();
    for i in 0..20 {
        let router = e.router.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"username": format!("racer{i}"), "password": "securePassword123",
                "email": "race@example.com", "full_name": "Racer", "mode": "LINK"});
            let (s, _, b) = send(&router, post("/signup", body, None)).await;
            (s, b)
        }));
    }
    let mut created = 0;
    for t in tasks {
        let (s, b) = t.await.expect("task");
        match s {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => assert_eq!(b["message"], "Email is already registered"),
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert_eq!(created, 1);
    let guard = e
        .app
        .main
        .get(&keys::email_guard("race@example.com"))
        .await
        .expect("get")
        .expect("guard");
    let owner = get_s(&guard, "username").expect("owner").to_owned();
    let mut logins = 0;
    for i in 0..20 {
        if e.app
            .main
            .get(&keys::login(&format!("racer{i}")))
            .await
            .expect("get")
            .is_some()
        {
            logins += 1;
            assert_eq!(format!("racer{i}"), owner);
        }
    }
    assert_eq!(logins, 1, "exactly one account exists");
}

#[tokio::test]
async fn signup_validates_phone_uniqueness_and_referral_codes() {
    let e = env();
    let base = || json!({"username": "val_user", "password": "securePassword123", "email": "val@example.com", "full_name": "Val"});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = base();
        b[k] = v;
        b
    };
    let (s, b) = e
        .call(post("/signup", with("mode", json!("OTP")), None))
        .await;
    assert_envelope(s, &b, 400);
    assert_eq!(b["message"], "PhoneRequired");
    let mut bad_phone = with("mode", json!("OTP"));
    bad_phone["phone_number"] = json!("12345");
    let (s, b) = e.call(post("/signup", bad_phone, None)).await;
    assert_envelope(s, &b, 400);
    assert_eq!(b["message"], "PhoneFormatErr");
    let (s, b) = e
        .call(post("/signup", with("password", json!("short")), None))
        .await;
    assert_envelope(s, &b, 400);
    let (s, b) = e
        .call(post(
            "/signup",
            with("referral_code", json!("NOSUCH99")),
            None,
        ))
        .await;
    assert_envelope(s, &b, 400);

    e.active_user("referrer", "referrer@example.com", "628700000004")
        .await;
    let info = e
        .app
        .main
        .get(&keys::info("referrer"))
        .await
        .expect("get")
        .expect("info");
    let code = get_s(&info, "referral_code").expect("code").to_owned();
    assert_eq!(code.len(), 8);
    assert!(
        code.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    );
    let guard = e
        .app
        .main
        .get(&keys::refcode_guard(&code))
        .await
        .expect("get")
        .expect("guard");
    assert_eq!(get_s(&guard, "username"), Some("referrer"));

    let (s, b) = e
        .call(post(
            "/signup",
            with("referral_code", json!(code.to_lowercase())),
            None,
        ))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let info = e
        .app
        .main
        .get(&keys::info("val_user"))
        .await
        .expect("get")
        .expect("info");
    assert_eq!(get_s(&info, "referred_by"), Some(code.as_str()));
    let wallet = e
        .app
        .main
        .get(&keys::wallet("val_user"))
        .await
        .expect("get")
        .expect("wallet");
    assert_eq!(shared::store::get_n(&wallet, "balance"), Some(0));

    // Duplicates: username, e-mail, phone.
    let dup_user = json!({"username": "VAL_USER", "password": "securePassword123", "email": "other@example.com", "full_name": "X"});
    let (s, b) = e.call(post("/signup", dup_user, None)).await;
    assert_envelope(s, &b, 409);
    assert_eq!(b["message"], "Username is already registered");
    let dup_mail = json!({"username": "fresh_one", "password": "securePassword123", "email": "VAL@example.com", "full_name": "X"});
    let (s, b) = e.call(post("/signup", dup_mail, None)).await;
    assert_envelope(s, &b, 409);
    assert_eq!(b["message"], "Email is already registered");
    let dup_phone = json!({"username": "fresh_two", "password": "securePassword123", "email": "two@example.com",
        "full_name": "X", "phone_number": "0870-0000-004", "mode": "OTP"});
    let (s, b) = e.call(post("/signup", dup_phone, None)).await;
    assert_envelope(s, &b, 409);
    assert_eq!(b["message"], "Phone number is already registered");
    // Nothing of the refused signups was written.
    assert!(
        e.app
            .main
            .get(&keys::login("fresh_two"))
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        e.app
            .main
            .get(&keys::email_guard("two@example.com"))
            .await
            .expect("get")
            .is_none()
    );
}

#[tokio::test]
async fn failed_logins_per_account_hit_429_until_the_window_passes() {
    let e = env();
    e.active_user("target", "target@example.com", "628700000005")
        .await;
    for _ in 0..10 {
        let (s, _) = e.login("target", "wrongPassword1").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (status, headers, body) = send(
        &e.router,
        post(
            "/auth",
            json!({"username": "target", "password": "securePassword123"}),
            None,
        ),
    )
    .await;
    assert_envelope(status, &body, 429);
    assert!(headers.contains_key(http::header::RETRY_AFTER));
    e.clock.advance(chrono::Duration::seconds(301));
    e.token("target", "securePassword123").await;
}

#[tokio::test]
async fn login_attempts_per_ip_hit_429() {
    let e = env_with(|c| c.limits.login_ip = shared::ratelimit::Limit::new(3, 300));
    for i in 0..3 {
        let (s, _) = e.login(&format!("user{i}"), "whatever123").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (s, b) = e.login("user9", "whatever123").await;
    assert_envelope(s, &b, 429);
}

#[tokio::test]
async fn otp_resends_are_limited_per_phone() {
    let e = env_with(|c| c.limits.otp_identifier = shared::ratelimit::Limit::new(3, 3600));
    let reg = e
        .signup_otp("resender", "resender@example.com", "628700000006")
        .await;
    for _ in 0..2 {
        let (s, b) = e.call(post("/resend-otp", json!({}), Some(&reg))).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let (s, b) = e.call(post("/resend-otp", json!({}), Some(&reg))).await;
    assert_envelope(s, &b, 429);
    assert_eq!(e.outbox("628700000006").await.len(), 3);
}

#[tokio::test]
async fn check_email_reports_availability_and_is_rate_limited() {
    let e = env_with(|c| c.limits.check_email_ip = shared::ratelimit::Limit::new(3, 60));
    e.signup_link("taken", "taken@example.com").await;
    let (s, b) = e
        .call(post(
            "/check/email",
            json!({"email": "Taken@example.com"}),
            None,
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["available"], false);
    let (s, b) = e
        .call(post(
            "/check/email",
            json!({"email": "free@example.com"}),
            None,
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["available"], true);
    e.call(post(
        "/check/email",
        json!({"email": "free@example.com"}),
        None,
    ))
    .await;
    let (s, b) = e
        .call(post(
            "/check/email",
            json!({"email": "free@example.com"}),
            None,
        ))
        .await;
    assert_envelope(s, &b, 429);
}

#[tokio::test]
async fn reset_requests_are_rate_limited_per_email() {
    let e = env_with(|c| c.limits.reset_identifier = shared::ratelimit::Limit::new(2, 3600));
    for _ in 0..2 {
        let (s, _) = e
            .call(post(
                "/request-reset-pwd",
                json!({"email": "who@example.com"}),
                None,
            ))
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, b) = e
        .call(post(
            "/request-reset-pwd",
            json!({"email": "who@example.com"}),
            None,
        ))
        .await;
    assert_envelope(s, &b, 429);
}

#[tokio::test]
async fn legacy_bcrypt_password_logs_in_and_is_rehashed_to_argon2id() {
    let e = env();
    e.active_user("oldtimer", "old@example.com", "628700000007")
        .await;
    let legacy = bcrypt::hash("legacyPassword1", 4).expect("bcrypt");
    e.app
        .main
        .update(
            &keys::login("oldtimer"),
            Update::new().set("pwd", legacy),
            None,
        )
        .await
        .expect("seed");

    e.token("oldtimer", "legacyPassword1").await;
    let login = e
        .app
        .main
        .get(&keys::login("oldtimer"))
        .await
        .expect("get")
        .expect("login");
    let pwd = get_s(&login, "pwd").expect("pwd");
    assert!(pwd.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{pwd}");
    e.token("oldtimer", "legacyPassword1").await;
    let (s, _) = e.login("oldtimer", "securePassword123").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn sys_only(holder: shared::http::extract::ApiKeyHolder) -> String {
    holder.0
}

#[tokio::test]
async fn basic_auth_with_a_wrong_key_is_401() {
    let app = shared::App::for_tests();
    app.api_keys()
        .register("ops", "right-key-0123456789abcdef", "test", true)
        .await
        .expect("register");
    let router = shared::http::finish(
        axum::Router::new().route("/sys/ping", axum::routing::get(sys_only)),
        &app,
    );
    let basic = |cred: &str| {
        let v = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(cred)
        );
        Request::get("/sys/ping")
            .header("authorization", v)
            .body(Body::empty())
            .expect("req")
    };
    let (s, _, _) = send(&router, basic("ops:right-key-0123456789abcdef")).await;
    assert_eq!(s, StatusCode::OK);
    for bad in [
        "ops:wrong-key",
        "nobody:right-key-0123456789abcdef",
        "no-colon",
    ] {
        let (s, _, b) = send(&router, basic(bad)).await;
        assert_envelope(s, &b, 401);
    }
}

#[tokio::test]
async fn auth_lambda_event_logs_in_through_lambda_http() {
    let e = env();
    e.active_user("john_doe", "john@example.com", "628700000008")
        .await;
    let event = include_str!("../../events/auth-login.json");
    let req =
        lambda_http::request::from_str(event).expect("event parses as an API Gateway v2 request");
    let router = shared::http::finish(shared::http::auth::router(), &e.app);
    let (parts, body) = req.into_parts();
    let body = match body {
        lambda_http::Body::Empty => Body::empty(),
        lambda_http::Body::Text(t) => Body::from(t),
        lambda_http::Body::Binary(b) => Body::from(b),
        _ => Body::empty(),
    };
    let (s, _, b) = send(&router, Request::from_parts(parts, body)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["token"].is_string());
    assert_eq!(b["agent"], false);
    // The rate-limit bucket came from API Gateway's sourceIp.
    let window = e
        .app
        .clock
        .epoch()
        .div_euclid(e.app.config.limits.login_ip.window_secs);
    let counter = e
        .app
        .main
        .get(&keys::rate("login:ip:203.0.113.25", window))
        .await
        .expect("get");
    assert!(counter.is_some());
}

#[tokio::test]
async fn an_abandoned_unverified_signup_releases_its_username_email_and_phone_after_a_day() {
    let e = env();
    e.signup_otp("abandoner", "abandon@example.com", "628700000009")
        .await;
    let again = json!({"username": "abandoner", "password": "securePassword123", "email": "abandon@example.com",
        "full_name": "Again", "phone_number": "628700000009", "mode": "OTP"});
    let (s, b) = e.call(post("/signup", again.clone(), None)).await;
    assert_envelope(s, &b, 409);

    // A verified account is never reclaimed, however old.
    e.active_user("keeper", "keeper@example.com", "628700000010")
        .await;
    e.clock.advance(chrono::Duration::hours(25));
    let (s, b) = e.call(post("/signup", again, None)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let reg = b["token"].as_str().expect("token").to_owned();
    let otp = e.latest_otp("628700000009").await;
    let (s, _) = e
        .call(post("/verify-sign-up", json!({"otp": otp}), Some(&reg)))
        .await;
    assert_eq!(s, StatusCode::OK);
    let info = e
        .app
        .main
        .get(&keys::info("abandoner"))
        .await
        .expect("get")
        .expect("info");
    assert_eq!(get_s(&info, "full_name"), Some("Again"));

    let steal = json!({"username": "thief", "password": "securePassword123", "email": "keeper@example.com",
        "full_name": "Thief", "mode": "LINK"});
    let (s, b) = e.call(post("/signup", steal, None)).await;
    assert_envelope(s, &b, 409);
    assert_eq!(b["message"], "Email is already registered");
}

#[tokio::test]
async fn failed_logins_by_username_and_by_email_share_one_account_limit() {
    let e = env_with(|c| c.limits.login_account = shared::ratelimit::Limit::new(4, 300));
    e.active_user("twoface", "twoface@example.com", "628700000011")
        .await;
    for id in [
        "twoface",
        "TwoFace@example.com",
        "twoface",
        "twoface@example.com",
    ] {
        let (s, _) = e.login(id, "wrongPassword1").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (s, b) = e.login("twoface@example.com", "securePassword123").await;
    assert_envelope(s, &b, 429);
    let (s, b) = e.login("twoface", "securePassword123").await;
    assert_envelope(s, &b, 429);
}

#[tokio::test]
async fn oversized_identifiers_and_referral_codes_are_clean_4xx() {
    let e = env();
    let (s, b) = e.login(&"a".repeat(5000), "whatever123").await;
    assert_envelope(s, &b, 422);
    let body = json!({"username": "biggie", "password": "securePassword123", "email": "big@example.com",
        "full_name": "Big", "referral_code": "R".repeat(5000)});
    let (s, b) = e.call(post("/signup", body, None)).await;
    assert_envelope(s, &b, 400);
    assert_eq!(b["message"], "Invalid Referral Code");
}
