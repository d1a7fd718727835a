//! The layers every router shares: envelope for every error path, CORS, security headers, health.

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use common::{assert_envelope, send};
use http::{Request, StatusCode};
use serde::Deserialize;
use shared::App;
use shared::http::Json;

#[derive(Deserialize)]
#[allow(dead_code)]
struct Echo {
    amount: i64,
    name: String,
}

async fn echo(Json(e): Json<Echo>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "amount": e.amount, "name": e.name }))
}

fn router_with(app: &App) -> Router {
    let routes = shared::http::routes().route("/echo", post(echo));
    shared::http::finish(routes, app)
}

fn app() -> App {
    let mut config = shared::config::Config::for_tests();
    config.origin_cors = vec!["http://allowed.test".into()];
    config.body_limit_bytes = 4096;
    let store =
        shared::store::local::LocalStore::memory(std::sync::Arc::new(shared::clock::SystemClock))
            .expect("store");
    App::with_local_store(
        config,
        &store,
        std::sync::Arc::new(shared::clock::SystemClock),
    )
}

fn post_json(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(body.into())
        .expect("request")
}

#[tokio::test]
async fn health_answers_ok_with_timestamp_and_uptime() {
    let r = router_with(&app());
    let (status, _, body) = send(
        &r,
        Request::get("/health").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "OK");
    let ts = body["timestamp"].as_str().expect("timestamp string");
    assert!(
        chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
        "ISO-8601: {ts}"
    );
    assert!(body["uptime"].as_f64().is_some_and(|u| u >= 0.0));
}

#[tokio::test]
async fn valid_json_reaches_the_handler() {
    let r = router_with(&app());
    let (status, _, body) = send(&r, post_json("/echo", r#"{"amount":5,"name":"x"}"#)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["amount"], 5);
}

#[tokio::test]
async fn malformed_json_is_400_envelope() {
    let r = router_with(&app());
    let (status, _, body) = send(&r, post_json("/echo", r#"{"amount":5,"#)).await;
    assert_envelope(status, &body, 400);
    assert_eq!(body["message"], "Malformed JSON");
}

#[tokio::test]
async fn wrong_field_type_is_400_envelope() {
    let r = router_with(&app());
    let (status, _, body) = send(&r, post_json("/echo", r#"{"amount":1.5,"name":"x"}"#)).await;
    assert_envelope(status, &body, 400);
}

#[tokio::test]
async fn wrong_content_type_is_415_envelope() {
    let r = router_with(&app());
    let req = Request::post("/echo")
        .header("content-type", "text/plain")
        .body(Body::from("{}"))
        .expect("req");
    let (status, _, body) = send(&r, req).await;
    assert_envelope(status, &body, 415);
}

#[tokio::test]
async fn unknown_route_is_404_envelope() {
    let r = router_with(&app());
    let (status, _, body) = send(&r, Request::get("/nope").body(Body::empty()).expect("req")).await;
    assert_envelope(status, &body, 404);
}

#[tokio::test]
async fn wrong_method_is_405_envelope() {
    let r = router_with(&app());
    let (status, _, body) = send(
        &r,
        Request::delete("/health").body(Body::empty()).expect("req"),
    )
    .await;
    assert_envelope(status, &body, 405);
}

#[tokio::test]
async fn oversize_body_is_413_envelope() {
    let r = router_with(&app());
    let big = format!(r#"{{"amount":1,"name":"{}"}}"#, "x".repeat(10_000));
    let (status, _, body) = send(&r, post_json("/echo", big)).await;
    assert_envelope(status, &body, 413);
}

#[tokio::test]
async fn security_headers_are_set() {
    let r = router_with(&app());
    let (_, headers, _) = send(
        &r,
        Request::get("/health").body(Body::empty()).expect("req"),
    )
    .await;
    for h in [
        "content-security-policy",
        "x-content-type-options",
        "x-frame-options",
        "strict-transport-security",
        "referrer-policy",
    ] {
        assert!(headers.contains_key(h), "missing {h}");
    }
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let r = router_with(&app());
    let pre = |origin: &str| {
        Request::options("/health")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .body(Body::empty())
            .expect("req")
    };
    let (_, h, _) = send(&r, pre("http://allowed.test")).await;
    assert_eq!(
        h.get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap_or("")),
        Some("http://allowed.test")
    );
    let (_, h, _) = send(&r, pre("http://evil.test")).await;
    assert!(h.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn health_lambda_event_runs_through_lambda_http() {
    let event = include_str!("../../events/health.json");
    let req =
        lambda_http::request::from_str(event).expect("event parses as an API Gateway v2 request");
    let r = shared::http::finish(shared::http::health::router(), &app());
    let (parts, body) = req.into_parts();
    let body = match body {
        lambda_http::Body::Empty => Body::empty(),
        lambda_http::Body::Text(t) => Body::from(t),
        lambda_http::Body::Binary(b) => Body::from(b),
        _ => Body::empty(),
    };
    let (status, _, json) = send(&r, Request::from_parts(parts, body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["status"], "OK");
}
