//! Helpers for in-process router tests.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Sends one request through the router and returns status, headers and JSON body (Null if empty/not JSON).
pub async fn send(
    router: &Router,
    req: Request<Body>,
) -> (http::StatusCode, http::HeaderMap, serde_json::Value) {
    let res: Response<Body> = router
        .clone()
        .oneshot(req)
        .await
        .expect("router is infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, json)
}

/// Feeds an API Gateway v2 sample event (`events/*.json`, the `<jwt-from-POST-/auth>` placeholder
/// replaced by `token`) through a router; returns status and JSON body.
pub async fn lambda_event(
    router: &Router,
    event: &str,
    token: &str,
) -> (http::StatusCode, serde_json::Value) {
    let event = event.replace("<jwt-from-POST-/auth>", token);
    let req = lambda_http::request::from_str(&event).expect("API Gateway v2 event");
    let (parts, body) = req.into_parts();
    let body = match body {
        lambda_http::Body::Text(t) => Body::from(t),
        lambda_http::Body::Binary(b) => Body::from(b),
        _ => Body::empty(),
    };
    let (s, _, json) = send(router, Request::from_parts(parts, body)).await;
    (s, json)
}

/// Asserts the error envelope shape and status.
pub fn assert_envelope(status: http::StatusCode, body: &serde_json::Value, expected: u16) {
    assert_eq!(status.as_u16(), expected, "status; body = {body}");
    assert_eq!(
        body["status"],
        serde_json::Value::Bool(false),
        "envelope.status in {body}"
    );
    assert_eq!(body["errorCode"], expected, "envelope.errorCode in {body}");
    assert!(body["message"].is_string(), "envelope.message in {body}");
    assert!(body["errors"].is_array(), "envelope.errors in {body}");
}

/// Asserts that `lines` (captured by `shared::metrics`) hold an EMF line in the `UserState`
/// namespace with metric `name` = `value`, its dimensions `dims` (first always `Function`) and
/// their values in the line.
#[allow(dead_code)]
pub fn assert_emf(lines: &[String], name: &str, value: i64, dims: &[(&str, &str)]) {
    let found = lines.iter().any(|l| {
        let v: serde_json::Value = serde_json::from_str(l).expect("an EMF line is JSON");
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        let mut want: Vec<&str> = vec!["Function"];
        want.extend(dims.iter().map(|(d, _)| *d));
        cw["Namespace"] == "UserState"
            && v["_aws"]["Timestamp"].is_i64()
            && cw["Dimensions"] == serde_json::json!([want])
            && cw["Metrics"]
                .as_array()
                .is_some_and(|m| m.iter().any(|d| d["Name"] == name))
            && v[name] == value
            && v["Function"].is_string()
            && dims.iter().all(|(d, val)| v[*d] == *val)
    });
    assert!(found, "no EMF line {name}={value} {dims:?} in {lines:#?}");
}
