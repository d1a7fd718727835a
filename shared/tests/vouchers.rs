//! Vouchers: definitions by API key, redemption within the total and per-user limits even under
//! concurrency, and the caller-only redemption check.

mod common;

use axum::Router;
use axum::body::Body;
use base64::Engine;
use common::{assert_envelope, send};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use shared::App;

const KEY: &str = "shop:shop-key-0123456789abcdef";

async fn setup() -> (App, Router) {
    let app = App::for_tests();
    app.api_keys()
        .register("shop", "shop-key-0123456789abcdef", "test", true)
        .await
        .expect("key");
    let routes = shared::http::routes().merge(shared::http::dev::router());
    let router = shared::http::finish(routes, &app);
    (app, router)
}

fn basic(req: http::request::Builder, key: &str) -> http::request::Builder {
    req.header(
        "authorization",
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(key)
        ),
    )
}

fn post(path: &str, key: &str, body: Value) -> Request<Body> {
    basic(
        Request::post(path).header("content-type", "application/json"),
        key,
    )
    .body(Body::from(body.to_string()))
    .expect("req")
}

async fn user(router: &Router, name: &str) -> String {
    let req = Request::post("/_dev/users")
        .header("content-type", "application/json")
        .body(Body::from(json!({ "username": name }).to_string()))
        .expect("req");
    let (s, _, body) = send(router, req).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

async fn define(router: &Router, code: &str, total: i64, from: &str, until: &str) {
    let body = json!({ "code": code, "discount_amount": 15_000, "valid_from": from, "valid_until": until, "total_limit": total });
    let (s, _, body) = send(router, post("/sys/voucher", KEY, body)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

async fn redeem(router: &Router, username: &str, code: &str) -> (StatusCode, Value) {
    let (s, _, body) = send(
        router,
        post(
            "/redeem-voucher",
            KEY,
            json!({ "username": username, "voucher_code": code }),
        ),
    )
    .await;
    (s, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_parallel_redemptions_of_a_ten_use_voucher_by_different_users_redeem_exactly_ten() {
    let (app, router) = setup().await;
    define(
        &router,
        "PROMO10",
        10,
        "2000-01-01T00:00:00Z",
        "2999-01-01T00:00:00Z",
    )
    .await;
    for i in 0..30 {
        user(&router, &format!("buyer{i:02}")).await;
    }
    let mut tasks = Vec::new();
    for i in 0..30 {
        let r = router.clone();
        tasks.push(tokio::spawn(async move {
            redeem(&r, &format!("buyer{i:02}"), "promo10").await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let (s, body) = t.await.expect("task");
        match s {
            StatusCode::OK => ok += 1,
            StatusCode::BAD_REQUEST => assert_eq!(body["message"], "Voucher Quota Exceeded"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok, 10);
    let def = app
        .vouchers()
        .load(&shared::payments::voucher::VoucherCode::parse("PROMO10").expect("code"))
        .await
        .expect("load")
        .expect("def");
    assert_eq!(def.redeemed_count, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_user_redeeming_the_same_voucher_twice_in_parallel_redeems_once() {
    let (app, router) = setup().await;
    define(
        &router,
        "ONCE",
        100,
        "2000-01-01T00:00:00Z",
        "2999-01-01T00:00:00Z",
    )
    .await;
    let token = user(&router, "greedy").await;
    let (a, b) = tokio::join!(
        redeem(&router, "greedy", "ONCE"),
        redeem(&router, "greedy", "ONCE")
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{a:?} {b:?}"
    );
    let def = app
        .vouchers()
        .load(&shared::payments::voucher::VoucherCode::parse("ONCE").expect("code"))
        .await
        .expect("load")
        .expect("def");
    assert_eq!(def.redeemed_count, 1);
    let check = Request::get("/check-voucher-redemption?voucher_code=once")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("req");
    let (s, _, body) = send(&router, check).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["data"]["redeemed"].clone(),
            body["data"]["count"].clone()
        ),
        (json!(true), json!(1))
    );
}

#[tokio::test]
async fn redemption_check_answers_for_the_caller_only() {
    let (_, router) = setup().await;
    define(
        &router,
        "MINE",
        5,
        "2000-01-01T00:00:00Z",
        "2999-01-01T00:00:00Z",
    )
    .await;
    user(&router, "redeemer").await;
    let other = user(&router, "bystander").await;
    assert_eq!(redeem(&router, "redeemer", "MINE").await.0, StatusCode::OK);
    let check = Request::get("/check-voucher-redemption?voucher_code=MINE&username=redeemer")
        .header("authorization", format!("Bearer {other}"))
        .body(Body::empty())
        .expect("req");
    let (s, _, body) = send(&router, check).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["redeemed"], false);
}

#[tokio::test]
async fn vouchers_outside_their_window_unknown_or_unauthenticated_are_refused() {
    let (_, router) = setup().await;
    define(
        &router,
        "OLD",
        5,
        "2000-01-01T00:00:00Z",
        "2001-01-01T00:00:00Z",
    )
    .await;
    user(&router, "late").await;
    let (s, body) = redeem(&router, "late", "OLD").await;
    assert_envelope(s, &body, 400);
    assert_eq!(body["message"], "Voucher Expired");
    let (s, body) = redeem(&router, "late", "NOSUCH").await;
    assert_envelope(s, &body, 404);
    let (s, body) = redeem(&router, "ghost", "OLD").await;
    assert_envelope(s, &body, 404);
    let (s, _, body) = send(
        &router,
        post(
            "/redeem-voucher",
            "shop:wrong",
            json!({ "username": "late", "voucher_code": "OLD" }),
        ),
    )
    .await;
    assert_envelope(s, &body, 401);
    let bad = json!({ "code": "BAD", "discount_amount": -1, "valid_from": "x", "valid_until": "2001-01-01T00:00:00Z", "total_limit": 0 });
    let (s, _, body) = send(&router, post("/sys/voucher", KEY, bad)).await;
    assert_envelope(s, &body, 400);
    let dup = json!({ "code": "OLD", "discount_amount": 1, "valid_from": "2000-01-01T00:00:00Z", "valid_until": "2001-01-01T00:00:00Z", "total_limit": 1 });
    let (s, _, body) = send(&router, post("/sys/voucher", KEY, dup)).await;
    assert_envelope(s, &body, 409);
}
