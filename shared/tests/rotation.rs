//! Rotating the JWT key and the Xendit callback token without logging everyone out or losing
//! callbacks: during the window the previous value is accepted next to the new one, and only
//! then (docs/OPERATIONS.md, runbooks "Rotate the JWT secret" and "Rotate the callback token").

mod common;

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::json;
use shared::App;
use shared::clock::SystemClock;
use shared::config::{Config, Secret};
use shared::store::local::LocalStore;

use common::send;

const OLD: &str = "old-key-0123456789abcdef0123456789abcdef";
const NEW: &str = "new-key-0123456789abcdef0123456789abcdef";

fn app(store: &LocalStore, secret: &str, previous: Option<&str>) -> (App, axum::Router) {
    let mut config = Config::for_tests();
    config.jwt_secret = Secret::new(secret);
    config.jwt_secret_previous = previous.map(Secret::new);
    let app = App::with_local_store(config, store, Arc::new(SystemClock));
    let router = shared::http::finish(shared::http::local_routes(xendit_sim::openapi()), &app);
    (app, router)
}

fn verify(token: &str) -> Request<Body> {
    Request::get("/verify")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("req")
}

#[tokio::test]
async fn tokens_of_the_previous_jwt_key_verify_only_while_it_is_configured() {
    let store = LocalStore::memory(Arc::new(SystemClock)).expect("store");
    let (_, before) = app(&store, OLD, None);
    let req = Request::post("/_dev/users")
        .header("content-type", "application/json")
        .body(Body::from(json!({"username": "rotor"}).to_string()))
        .expect("req");
    let (s, _, b) = send(&before, req).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let old_token = b["token"].as_str().expect("token").to_owned();

    // During the window: the new key signs, the old key's tokens still verify.
    let (_, during) = app(&store, NEW, Some(OLD));
    let (s, _, b) = send(&during, verify(&old_token)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // After it: the old key's tokens are refused.
    let (_, after) = app(&store, NEW, None);
    let (s, _, _) = send(&after, verify(&old_token)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A previous key shorter than the minimum is a configuration error.
    let err =
        Config::from_lookup(|k| (k == "SECRET_AUTH_CONFIG_PREVIOUS").then(|| "short".to_owned()))
            .expect_err("refused");
    assert!(
        err.to_string().contains("SECRET_AUTH_CONFIG_PREVIOUS"),
        "{err}"
    );
}

#[test]
fn the_previous_callback_token_is_accepted_only_while_configured() {
    let gate = |previous: Option<&str>| {
        let mut config = Config::for_tests();
        config.xendit_callback_token = Some(Secret::new("new-callback-token-0123456789abcdef"));
        config.xendit_callback_token_previous = previous.map(Secret::new);
        let store = LocalStore::memory(Arc::new(SystemClock)).expect("store");
        App::with_local_store(config, &store, Arc::new(SystemClock)).callbacks()
    };
    let old = b"old-callback-token-0123456789abcdef";
    let during = gate(Some("old-callback-token-0123456789abcdef"));
    assert!(during.accepts(b"new-callback-token-0123456789abcdef"));
    assert!(during.accepts(old));
    assert!(!during.accepts(b"someone-elses-token-0123456789abcd"));
    let after = gate(None);
    assert!(!after.accepts(old));
}
