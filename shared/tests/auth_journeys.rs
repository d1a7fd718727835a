//! In-process journeys of the auth route group: signup (OTP and LINK), verification, login,
//! sessions, password reset and change, deactivation.

mod auth;
mod common;

use auth::{env, get, post};
use common::{assert_emf, assert_envelope};
use http::StatusCode;
use serde_json::json;
use shared::store::keys;

#[tokio::test]
async fn otp_signup_verify_login_extend_logoff_journey() {
    let e = env();
    let reg = e
        .signup_otp("john_doe", "john@example.com", "628123456789")
        .await;

    let (s, b) = e.login("john_doe", "securePassword123").await;
    assert_envelope(s, &b, 403);
    assert_eq!(b["message"], "OTP Not Confirmed");

    let otp = e.latest_otp("628123456789").await;
    let (s, b) = e
        .call(post("/verify-sign-up", json!({"otp": otp}), Some(&reg)))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // Login by username and by e-mail (any case).
    let (s, b) = e.login("john_doe", "securePassword123").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["agent"], false);
    let token = b["token"].as_str().expect("token").to_owned();
    let by_mail = e.token("John@Example.com", "securePassword123").await;
    assert_ne!(by_mail, token);

    let (s, b) = e.call(get("/verify", Some(&token))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], true);

    e.clock.advance(chrono::Duration::seconds(5));
    let (s, b) = e.call(get("/extend", Some(&token))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let extended = b["token"].as_str().expect("token").to_owned();
    assert_ne!(extended, token);
    let sid = |t: &str| {
        shared::auth::token::verify(&e.app.config.jwt_secret, t, e.app.clock.epoch())
            .expect("valid")
            .sid
    };
    assert_eq!(sid(&extended), sid(&token), "extend keeps the session");

    let (s, _) = e.call(get("/logoff", Some(&extended))).await;
    assert_eq!(s, StatusCode::OK);
    for t in [&token, &extended] {
        let (s, b) = e.call(get("/verify", Some(t))).await;
        assert_envelope(s, &b, 401);
    }
    // The other session (logged in by e-mail) is untouched.
    let (s, _) = e.call(get("/verify", Some(&by_mail))).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn registration_token_is_single_use_after_verification() {
    let e = env();
    let reg = e
        .signup_otp("jane_doe", "jane@example.com", "628111222333")
        .await;
    let otp = e.latest_otp("628111222333").await;
    let (s, _) = e
        .call(post("/verify-sign-up", json!({"otp": otp}), Some(&reg)))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = e
        .call(post("/verify-sign-up", json!({"otp": otp}), Some(&reg)))
        .await;
    assert_envelope(s, &b, 401);
}

#[tokio::test]
async fn link_signup_opens_from_the_mail_and_then_logs_in() {
    let e = env();
    e.signup_link("linky", "linky@example.com").await;
    let (s, b) = e.login("linky", "securePassword123").await;
    assert_envelope(s, &b, 403);
    assert_eq!(b["message"], "Account is Not Confirmed");

    let mail = e.outbox("linky@example.com").await;
    let body = &mail.last().expect("mail").body;
    let base = &e.app.config.public_base_url;
    assert!(
        body.contains(&format!("{base}/verify-sign-up?token=")),
        "{body}"
    );
    let link_token = e.latest_mail_token("linky@example.com").await;

    let (status, headers, _) = common::send(
        &e.router,
        get(&format!("/verify-sign-up?token={link_token}"), None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[http::header::CONTENT_TYPE]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );

    let (s, b) = e
        .call(get(&format!("/verify-sign-up?token={link_token}"), None))
        .await;
    assert_envelope(s, &b, 401);
    e.token("linky", "securePassword123").await;
}

#[tokio::test]
async fn password_reset_with_the_mailed_token_revokes_sessions_and_the_token_is_single_use() {
    let e = env();
    e.active_user("resetme", "resetme@example.com", "628555000111")
        .await;
    let old_session = e.token("resetme", "securePassword123").await;

    let (s1, b1) = e
        .call(post(
            "/request-reset-pwd",
            json!({"email": "resetme@example.com"}),
            None,
        ))
        .await;
    let (s2, b2) = e
        .call(post(
            "/request-reset-pwd",
            json!({"email": "nobody@example.com"}),
            None,
        ))
        .await;
    assert_eq!(
        (s1, &b1),
        (s2, &b2),
        "known and unknown e-mails get the same answer"
    );
    assert_eq!(s1, StatusCode::OK);
    assert!(e.outbox("nobody@example.com").await.is_empty());

    let token = e.latest_mail_token("resetme@example.com").await;
    let (s, b) = e
        .call(post(
            "/reset-pwd",
            json!({"password": "brandNewPass456", "token": token}),
            None,
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let (s, b) = e.call(get("/verify", Some(&old_session))).await;
    assert_envelope(s, &b, 401);
    let (s, b) = e.login("resetme", "securePassword123").await;
    assert_envelope(s, &b, 422);
    e.token("resetme", "brandNewPass456").await;

    let (s, b) = e
        .call(post(
            "/reset-pwd",
            json!({"password": "anotherPass789"}),
            Some(&token),
        ))
        .await;
    assert_envelope(s, &b, 401);
    e.token("resetme", "brandNewPass456").await;
}

#[tokio::test]
async fn reset_token_is_accepted_from_the_query_and_expires_after_30_minutes() {
    let e = env();
    e.active_user("queryreset", "qr@example.com", "628555000222")
        .await;
    e.call(post(
        "/request-reset-pwd",
        json!({"email": "qr@example.com"}),
        None,
    ))
    .await;
    let token = e.latest_mail_token("qr@example.com").await;
    let (s, b) = e
        .call(post(
            &format!("/reset-pwd?token={token}"),
            json!({"password": "viaQuery123"}),
            None,
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    e.token("queryreset", "viaQuery123").await;

    e.call(post(
        "/request-reset-pwd",
        json!({"email": "qr@example.com"}),
        None,
    ))
    .await;
    let late = e.latest_mail_token("qr@example.com").await;
    e.clock.advance(chrono::Duration::minutes(31));
    let (s, b) = e
        .call(post(
            "/reset-pwd",
            json!({"password": "tooLate12345"}),
            Some(&late),
        ))
        .await;
    assert_envelope(s, &b, 401);
}

#[tokio::test]
async fn update_pwd_revokes_other_sessions_but_keeps_the_callers() {
    let e = env();
    e.active_user("changer", "changer@example.com", "628555000333")
        .await;
    let mine = e.token("changer", "securePassword123").await;
    let other = e.token("changer", "securePassword123").await;

    let wrong = json!({"old_password": "notMyPassword1", "new_password": "freshPassword1"});
    let (s, b) = e.call(post("/update-pwd", wrong, Some(&mine))).await;
    assert_envelope(s, &b, 422);

    let body = json!({"old_password": "securePassword123", "new_password": "freshPassword1"});
    let (s, b) = e.call(post("/update-pwd", body, Some(&mine))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = e.call(get("/verify", Some(&mine))).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = e.call(get("/verify", Some(&other))).await;
    assert_envelope(s, &b, 401);
    let (s, _) = e.login("changer", "securePassword123").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    e.token("changer", "freshPassword1").await;
}

#[tokio::test]
async fn deactivate_stores_the_reason_revokes_sessions_and_login_is_403() {
    let e = env();
    e.active_user("leaver", "leaver@example.com", "628555000444")
        .await;
    let t1 = e.token("leaver", "securePassword123").await;
    let t2 = e.token("leaver", "securePassword123").await;
    for token in [
        "leaver-phone-token-0000000001",
        "leaver-tablet-token-000000002",
    ] {
        let reg = shared::devices::Registration {
            token: Some(token.into()),
            device_type: Some("android".into()),
        };
        e.app
            .devices()
            .register(
                &shared::domain::Username::from_stored("leaver"),
                &reg.parse().expect("valid registration"),
            )
            .await
            .expect("register device");
    }
    assert_eq!(
        e.app
            .devices()
            .of_user(&shared::domain::Username::from_stored("leaver"))
            .await
            .expect("devices")
            .len(),
        2
    );
    let (s, b) = e
        .call(post(
            "/deactivate",
            json!({"reason": "No longer needed"}),
            Some(&t1),
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    for t in [&t1, &t2] {
        let (s, b) = e.call(get("/verify", Some(t))).await;
        assert_envelope(s, &b, 401);
    }
    let (s, b) = e.login("leaver", "securePassword123").await;
    assert_envelope(s, &b, 403);
    assert_eq!(b["message"], "Account is Disabled");
    // A wrong password still says nothing about the account's state.
    let (s, b) = e.login("leaver", "wrongPassword9").await;
    assert_envelope(s, &b, 422);

    let q = shared::store::Query::pk(keys::user_pk("leaver")).prefix("DEACTIVATE#");
    let items = shared::store::query_all(e.app.main.as_ref(), q)
        .await
        .expect("query");
    assert_eq!(items.len(), 1);
    assert_eq!(
        shared::store::get_s(&items[0], "reason"),
        Some("No longer needed")
    );
    let login = e
        .app
        .main
        .get(&keys::login("leaver"))
        .await
        .expect("get")
        .expect("login");
    assert_eq!(shared::store::get_s(&login, "status"), Some("deactivated"));
    // No more pushes: the tokens and their owner records are gone.
    assert!(
        e.app
            .devices()
            .of_user(&shared::domain::Username::from_stored("leaver"))
            .await
            .expect("devices")
            .is_empty()
    );
    let q = shared::store::Query::pk(keys::user_devices_pk("leaver")).prefix(keys::FCM_PREFIX);
    assert!(
        shared::store::query_all(e.app.main.as_ref(), q)
            .await
            .expect("query")
            .is_empty()
    );
    for token in [
        "leaver-phone-token-0000000001",
        "leaver-tablet-token-000000002",
    ] {
        let owner = keys::device_owner(&shared::devices::token_hash(token));
        assert!(
            e.app.main.get(&owner).await.expect("get").is_none(),
            "{token}"
        );
    }
}

#[tokio::test]
async fn unknown_user_and_wrong_password_are_both_invalid_credential() {
    let e = env();
    e.active_user("someone", "someone@example.com", "628555000555")
        .await;
    for (user, pwd) in [
        ("someone", "wrongPassword1"),
        ("nobody_here", "securePassword123"),
        ("ghost@example.com", "x"),
    ] {
        let (s, b) = e.login(user, pwd).await;
        assert_envelope(s, &b, 422);
        assert_eq!(b["message"], "Invalid Credential");
    }
}

#[tokio::test]
async fn audit_events_are_recorded_without_secrets() {
    let e = env();
    e.active_user("audited", "audited@example.com", "628555000666")
        .await;
    let t = e.token("audited", "securePassword123").await;
    e.login("audited", "wrongPassword1").await;
    e.call(get("/logoff", Some(&t))).await;
    let q = shared::store::Query::index(shared::store::schema::GSI1, "LOGUSER#audited");
    let items = shared::store::query_all(e.app.logs.as_ref(), q)
        .await
        .expect("logs");
    let events: Vec<&str> = items
        .iter()
        .filter_map(|i| shared::store::get_s(i, "event"))
        .collect();
    for ev in [
        "signup",
        "signup_verified",
        "login",
        "login_failed",
        "logoff",
    ] {
        assert!(events.contains(&ev), "missing {ev} in {events:?}");
    }
    let dump = format!("{items:?}");
    assert!(
        !dump.contains("securePassword123")
            && !dump.contains(&t)
            && !dump.contains("wrongPassword1")
    );
}

#[tokio::test]
async fn dev_outbox_lists_messages_newest_last_and_only_in_local_mode() {
    let e = env();
    let reg = e
        .signup_otp("outboxer", "outboxer@example.com", "628900000001")
        .await;
    e.clock.advance(chrono::Duration::seconds(2));
    e.call(post("/resend-otp", json!({}), Some(&reg))).await;
    let dev = shared::http::finish(shared::http::dev::router(), &e.app);
    let (s, _, b) = common::send(&dev, get("/_dev/outbox?to=628900000001", None)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let list = b.as_array().expect("array");
    assert_eq!(list.len(), 2);
    let newest = e.latest_otp("628900000001").await;
    assert!(
        list[1]["body"].as_str().expect("body").contains(&newest),
        "newest last"
    );
    for field in ["channel", "to", "subject", "body", "created_at"] {
        assert!(list[0].get(field).is_some(), "{field} in {}", list[0]);
    }
    assert_eq!(list[0]["channel"], "sms");

    let mut config = shared::config::Config::for_tests();
    config.backend = shared::config::Backend::Aws;
    let store =
        shared::store::local::LocalStore::memory(std::sync::Arc::new(shared::clock::SystemClock))
            .expect("store");
    let aws_like = shared::App::with_local_store(
        config,
        &store,
        std::sync::Arc::new(shared::clock::SystemClock),
    );
    let dev = shared::http::finish(shared::http::dev::router(), &aws_like);
    let (s, _, b) = common::send(&dev, get("/_dev/outbox?to=628900000001", None)).await;
    assert_envelope(s, &b, 404);
}

#[tokio::test]
async fn signups_and_logins_print_emf_metrics() {
    shared::metrics::capture();
    let e = env();
    let reg = e
        .signup_otp("metered", "metered@example.com", "628123450077")
        .await;
    let otp = e.latest_otp("628123450077").await;
    let (s, _) = e.login("metered", "wrong-password-123").await;
    assert!(s.is_client_error(), "{s}");
    let (s, b) = e
        .call(post("/verify-sign-up", json!({"otp": otp}), Some(&reg)))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = e.login("metered", "securePassword123").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let lines = shared::metrics::captured();
    assert_emf(&lines, "Signups", 1, &[]);
    assert_emf(&lines, "LoginsFailed", 1, &[]);
    assert_emf(&lines, "LoginsOk", 1, &[]);
}
