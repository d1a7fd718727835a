//! The AWS push adapter against a fake API Gateway Management API: subscribed connections get
//! the message, a gone connection (410 GoneException) is deleted, other users hear nothing.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use shared::App;
use shared::store::keys;
use shared::ws::{ApiGatewayPush, WsPush};

#[derive(Clone, Default)]
struct Fake {
    /// (connection id, payload) delivered.
    got: Arc<Mutex<Vec<(String, String)>>>,
}

async fn post_to_connection(State(f): State<Fake>, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().replace("%40", "@");
    let id = path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .replace("%3D", "=");
    if !path.contains("/@connections/") || id.starts_with("gone") {
        return (
            StatusCode::GONE,
            [("x-amzn-errortype", "GoneException")],
            "{\"message\":null}",
        )
            .into_response();
    }
    f.got
        .lock()
        .expect("lock")
        .push((id, String::from_utf8_lossy(&body).into_owned()));
    StatusCode::OK.into_response()
}

async fn connect(app: &App, id: &str, user: &str) {
    let token = shared::auth::session::issue(app, user, false)
        .await
        .expect("session")
        .token;
    shared::ws::connect(app, id, Some(&token))
        .await
        .expect("connect");
    shared::ws::message(app, id, "{\"action\":\"subscribe:payment\"}")
        .await
        .expect("subscribe");
}

#[tokio::test]
async fn pushes_reach_subscribed_connections_and_gone_ones_are_deleted() {
    let fake = Fake::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}/dev", listener.local_addr().expect("addr"));
    let router = Router::new()
        .fallback(post_to_connection)
        .with_state(fake.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let app = App::for_tests();
    connect(&app, "live-1", "alice").await;
    connect(&app, "gone-1", "alice").await;
    connect(&app, "live-2", "bob").await;

    let conf = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
        .region(aws_sdk_apigatewaymanagement::config::Region::new(
            "us-east-1",
        ))
        .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .endpoint_url(endpoint)
        .build();
    let push = ApiGatewayPush::new(
        aws_sdk_apigatewaymanagement::Client::from_conf(conf),
        app.main.clone(),
    );
    push.publish("alice", "{\"event\":\"payment:status:update\"}")
        .await;

    let got = fake.got.lock().expect("lock").clone();
    assert_eq!(
        got,
        vec![(
            "live-1".to_owned(),
            "{\"event\":\"payment:status:update\"}".to_owned()
        )]
    );
    assert!(
        app.main
            .get(&keys::ws_connection("gone-1"))
            .await
            .expect("get")
            .is_none(),
        "gone connection deleted"
    );
    assert!(
        app.main
            .get(&keys::ws_connection("live-1"))
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        app.main
            .get(&keys::ws_connection("live-2"))
            .await
            .expect("get")
            .is_some()
    );
}
