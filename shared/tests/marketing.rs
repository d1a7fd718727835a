//! Marketing offers (visibility: active, unexpired, global or targeted) and the FAQ.

mod common;
mod common_users;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use base64::Engine;
use common::{assert_envelope, send};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use shared::App;
use shared::clock::ManualClock;

async fn setup() -> (App, Router, ManualClock) {
    let clock = ManualClock::new();
    let app = App::for_tests_with_clock(Arc::new(clock.clone()));
    app.api_keys()
        .register("marketing", "marketing-key-0123456789abcdef", "tests", true)
        .await
        .expect("key");
    let router = shared::http::finish(shared::http::routes(), &app);
    (app, router, clock)
}

fn basic(method: &str, path: &str, body: Option<Value>) -> Request<Body> {
    let creds = base64::engine::general_purpose::STANDARD
        .encode("marketing:marketing-key-0123456789abcdef");
    let b = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Basic {creds}"));
    match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    }
    .expect("req")
}

fn bearer_get(path: &str, token: &str) -> Request<Body> {
    Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("req")
}

async fn offer(r: &Router, body: Value) -> Value {
    let (status, _, out) = send(r, basic("POST", "/marketing-offer", Some(body))).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    out
}

async fn titles(r: &Router, token: &str) -> Vec<String> {
    let (status, _, body) = send(r, bearer_get("/marketing-offer/list", token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut t: Vec<String> = body
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|o| o["title"].as_str().map(str::to_owned))
        .collect();
    t.sort();
    t
}

fn in_hours(app: &App, h: i64) -> String {
    (app.clock.now() + chrono::Duration::hours(h)).to_rfc3339()
}

#[tokio::test]
async fn expired_and_inactive_offers_are_never_listed_and_targeted_ones_only_to_their_user() {
    let (app, r, clock) = setup().await;
    let alice = common_users::create_user(&app, "alice", None).await;
    let bob = common_users::create_user(&app, "bob", None).await;
    let global = offer(&r, json!({ "title": "Summer Sale", "description": "Get 50% off!", "image_url": "/images/offer1.jpg", "valid_until": "2999-12-31" })).await;
    assert_eq!(global["valid_until"], "2999-12-31T23:59:59.000Z");
    assert_eq!(global["is_active"], true);
    assert!(global["id"].as_i64().is_some_and(|id| id > 0));
    offer(&r, json!({ "title": "Flash", "description": "One hour only", "valid_until": in_hours(&app, 1) })).await;
    offer(&r, json!({ "title": "Paused", "description": "Not yet", "valid_until": "2999-01-01", "is_active": false })).await;
    offer(&r, json!({ "title": "For Alice", "description": "Just you", "valid_until": in_hours(&app, 48), "username": "alice" })).await;

    assert_eq!(
        titles(&r, &alice).await,
        vec!["Flash", "For Alice", "Summer Sale"]
    );
    assert_eq!(
        titles(&r, &bob).await,
        vec!["Flash", "Summer Sale"],
        "targeted offers are private"
    );

    clock.advance(chrono::Duration::hours(2));
    assert_eq!(
        titles(&r, &alice).await,
        vec!["For Alice", "Summer Sale"],
        "expired offers disappear"
    );
    clock.advance(chrono::Duration::hours(48));
    // Sessions last a day: log in again after the jump.
    let alice = common_users::token(&app, "alice").await;
    let bob = common_users::token(&app, "bob").await;
    assert_eq!(titles(&r, &alice).await, vec!["Summer Sale"]);

    let (_, _, body) = send(&r, bearer_get("/marketing-offer/list", &bob)).await;
    let o = &body[0];
    for field in [
        "id",
        "title",
        "description",
        "image_url",
        "valid_until",
        "is_active",
    ] {
        assert!(o.get(field).is_some(), "{field} missing in {o}");
    }
    let (status, _, body) = send(
        &r,
        Request::get("/marketing-offer/list")
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_envelope(status, &body, 401);
}

#[tokio::test]
async fn offers_are_validated_and_need_an_api_key() {
    let (app, r, _) = setup().await;
    let t = common_users::create_user(&app, "carl", None).await;
    let cases = [
        json!({ "title": "", "description": "d", "valid_until": "2999-01-01" }),
        json!({ "title": "t", "description": "d", "valid_until": "2000-01-01" }),
        json!({ "title": "t", "description": "d", "valid_until": "next tuesday" }),
        json!({ "title": "t", "description": "d", "valid_until": "2999-01-01", "username": "ghost" }),
        json!({ "title": "t", "description": "d", "valid_until": "2999-01-01", "image_url": "javascript:alert(1)" }),
        json!({ "title": "x".repeat(151), "description": "d", "valid_until": "2999-01-01" }),
    ];
    for case in cases {
        let (status, _, body) =
            send(&r, basic("POST", "/marketing-offer", Some(case.clone()))).await;
        assert_envelope(status, &body, 400);
    }
    let as_user = Request::post("/marketing-offer")
        .header("authorization", format!("Bearer {t}"))
        .header("content-type", "application/json")
        .body(Body::from(
            json!({ "title": "t", "description": "d", "valid_until": "2999-01-01" }).to_string(),
        ))
        .expect("req");
    let (status, _, body) = send(&r, as_user).await;
    assert_envelope(status, &body, 401);
    assert!(titles(&r, &t).await.is_empty(), "nothing was created");
}

#[tokio::test]
async fn faq_is_public_ordered_categorised_and_managed_with_an_api_key() {
    let (_, r, _) = setup().await;
    let mk = |q: &str, order: i64, cat: &str| json!({ "question": q, "answer": format!("Answer to {q}"), "order": order, "category": cat });
    let mut ids = Vec::new();
    for (q, order, cat) in [
        ("How to pay?", 2, "Payment"),
        ("What is UserState?", 1, "General"),
        ("Refunds?", 2, "Payment"),
    ] {
        let (status, _, body) = send(&r, basic("POST", "/faq", Some(mk(q, order, cat)))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_i64().expect("id"));
    }
    let public = |r: Router| async move {
        let (status, _, body) =
            send(&r, Request::get("/faq").body(Body::empty()).expect("req")).await;
        assert_eq!(status, StatusCode::OK);
        body.as_array()
            .expect("array")
            .iter()
            .map(|f| f["question"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        public(r.clone()).await,
        vec!["What is UserState?", "How to pay?", "Refunds?"],
        "by order, then id"
    );

    let (status, _, body) = send(
        &r,
        basic(
            "PUT",
            &format!("/faq/{}", ids[2]),
            Some(json!({ "order": 0 })),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["category"], "Payment", "absent fields are kept");
    assert_eq!(
        public(r.clone()).await,
        vec!["Refunds?", "What is UserState?", "How to pay?"]
    );

    let (status, _, _) = send(&r, basic("DELETE", &format!("/faq/{}", ids[0]), None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        public(r.clone()).await,
        vec!["Refunds?", "What is UserState?"]
    );
    let (status, _, body) = send(&r, basic("DELETE", &format!("/faq/{}", ids[0]), None)).await;
    assert_envelope(status, &body, 404);
    let (status, _, body) = send(&r, basic("PUT", "/faq/999", Some(json!({ "order": 1 })))).await;
    assert_envelope(status, &body, 404);
    let (status, _, body) = send(
        &r,
        basic("POST", "/faq", Some(json!({ "question": "No answer" }))),
    )
    .await;
    assert_envelope(status, &body, 400);
    let (status, _, body) = send(
        &r,
        basic(
            "PUT",
            &format!("/faq/{}", ids[1]),
            Some(json!({ "order": -1 })),
        ),
    )
    .await;
    assert_envelope(status, &body, 400);
    let anonymous = Request::post("/faq")
        .header("content-type", "application/json")
        .body(Body::from(mk("x", 1, "y").to_string()))
        .expect("req");
    let (status, _, body) = send(&r, anonymous).await;
    assert_envelope(status, &body, 401);
}
