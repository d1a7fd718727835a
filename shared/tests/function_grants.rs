//! Each function's routes work with only the table actions the function declares in
//! `shared::permissions` (what its IAM policy grants), and an undeclared action is refused.

mod common;
mod common_users;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use common::send;
use http::{Request, StatusCode};
use shared::App;
use shared::clock::{ClockRef, SystemClock};
use shared::config::Config;
use shared::store::local::LocalStore;

/// An unrestricted app for setup and a restricted one for `function`, on the same store.
fn apps(function: &'static str) -> (App, App) {
    let clock: ClockRef = Arc::new(SystemClock);
    let store = LocalStore::memory(clock.clone()).expect("store");
    let admin = App::with_local_store(Config::for_tests(), &store, clock.clone());
    let restricted = App::with_local_store(Config::for_tests(), &store, clock)
        .with_grants(function)
        .expect("grants apply to fresh state");
    (admin, restricted)
}

fn req(method: &str, path: &str, token: &str, body: Option<serde_json::Value>) -> Request<Body> {
    let b = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    match body {
        Some(j) => b
            .header("content-type", "application/json")
            .body(Body::from(j.to_string())),
        None => b.body(Body::empty()),
    }
    .expect("request")
}

async fn ok(router: &Router, r: Request<Body>) -> serde_json::Value {
    let (status, _, body) = send(router, r).await;
    assert!(status.is_success(), "{status}: {body}");
    body
}

#[tokio::test]
async fn address_routes_need_only_the_address_grants() {
    let (admin, app) = apps("address");
    let t = common_users::create_user(&admin, "grant_addr", None).await;
    let r = shared::http::finish(shared::http::address::router(), &app);
    let addr = serde_json::json!({"label":"Home","recipient_name":"A B","phone_number":"628123456789","address":"Jl. Test 1","is_default":false});
    ok(&r, req("POST", "/address", &t, Some(addr.clone()))).await;
    ok(&r, req("POST", "/address", &t, Some(addr))).await;
    ok(
        &r,
        req(
            "POST",
            "/address/set-default",
            &t,
            Some(serde_json::json!({"id": 2})),
        ),
    )
    .await;
    ok(&r, req("DELETE", "/address/2", &t, None)).await;
    let list = ok(&r, req("GET", "/address/list", &t, None)).await;
    assert!(list.to_string().contains("Jl. Test 1"), "{list}");
}

#[tokio::test]
async fn profile_routes_need_only_the_user_grants() {
    let (admin, app) = apps("user");
    let t = common_users::create_user(&admin, "grant_user", None).await;
    let r = shared::http::finish(shared::http::user::router(), &app);
    ok(&r, req("GET", "/user/profile", &t, None)).await;
    ok(
        &r,
        req(
            "PUT",
            "/user/profile",
            &t,
            Some(serde_json::json!({"full_name":"New Name","phone_number":"628111222333"})),
        ),
    )
    .await;
    ok(&r, req("GET", "/user/referral-code", &t, None)).await;
}

#[tokio::test]
async fn wallet_and_points_routes_need_only_their_grants() {
    let (admin, app) = apps("payment");
    let t = common_users::create_user(&admin, "grant_pay", None).await;
    let r = shared::http::finish(shared::http::payment::router(), &app);
    ok(&r, req("GET", "/balance", &t, None)).await;
    ok(
        &r,
        req(
            "POST",
            "/balance/decrease",
            &t,
            Some(serde_json::json!({"amount":1000,"description":"x"})),
        ),
    )
    .await;
    ok(&r, req("GET", "/invoice/list/xendit", &t, None)).await;

    let (admin, app) = apps("points");
    let t = common_users::create_user(&admin, "grant_pts", None).await;
    let r = shared::http::finish(shared::http::points::router(), &app);
    ok(
        &r,
        req(
            "POST",
            "/points/redeem",
            &t,
            Some(serde_json::json!({"points":100})),
        ),
    )
    .await;
    ok(&r, req("GET", "/points/history", &t, None)).await;
    ok(&r, req("GET", "/referral/history", &t, None)).await;
    ok(&r, req("GET", "/referral/stats", &t, None)).await;
}

#[tokio::test]
async fn device_and_offer_routes_need_only_their_grants() {
    let (admin, app) = apps("fcm");
    let t = common_users::create_user(&admin, "grant_fcm", None).await;
    let r = shared::http::finish(shared::http::fcm::router(), &app);
    ok(
        &r,
        req(
            "POST",
            "/fcm/register",
            &t,
            Some(serde_json::json!({"token":"device-token-0123456789","device_type":"android"})),
        ),
    )
    .await;
    let (status, _, _) = send(
        &r,
        req(
            "DELETE",
            "/fcm/token?token=device-token-0123456789",
            &t,
            None,
        ),
    )
    .await;
    assert!(status.is_success(), "{status}");

    let (admin, app) = apps("marketing");
    let t = common_users::create_user(&admin, "grant_mkt", None).await;
    let r = shared::http::finish(shared::http::marketing::router(), &app);
    ok(&r, req("GET", "/marketing-offer/list", &t, None)).await;
    ok(&r, Request::get("/faq").body(Body::empty()).expect("req")).await;
}

#[tokio::test]
async fn an_undeclared_table_action_is_refused() {
    // `health` declares no table access at all: a session check (GetItem) must be refused.
    let (admin, app) = apps("health");
    let t = common_users::create_user(&admin, "grant_none", None).await;
    let r = shared::http::finish(shared::http::payment::router(), &app);
    let (status, _, body) = send(&r, req("GET", "/balance", &t, None)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
}
