//! The AWS push adapter against a fake API Gateway Management API: subscribed connections of live
//! sessions get the message; a gone connection (410 GoneException) is forgotten; a connection
//! whose session was logged off — or whose account was deactivated — gets nothing, is closed
//! (`DeleteConnection`) and forgotten; other users hear nothing.

mod common_users;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use shared::App;
use shared::store::keys;
use shared::ws::ApiGatewayPush;

#[derive(Clone, Default)]
struct Fake {
    /// (connection id, payload) delivered.
    got: Arc<Mutex<Vec<(String, String)>>>,
    /// Connection ids closed.
    closed: Arc<Mutex<Vec<String>>>,
}

async fn management_api(State(f): State<Fake>, method: Method, uri: Uri, body: Bytes) -> Response {
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
    if method == Method::DELETE {
        f.closed.lock().expect("lock").push(id);
        return StatusCode::NO_CONTENT.into_response();
    }
    f.got
        .lock()
        .expect("lock")
        .push((id, String::from_utf8_lossy(&body).into_owned()));
    StatusCode::OK.into_response()
}

/// Connects and subscribes `id` with a fresh session of `user`; returns the session id.
async fn connect(app: &App, id: &str, user: &str) -> String {
    let issued = app
        .sessions()
        .issue(&shared::domain::Username::from_stored(user), false)
        .await
        .expect("session");
    app.realtime()
        .connect(id, Some(&issued.token))
        .await
        .expect("connect");
    app.realtime()
        .message(id, "{\"action\":\"subscribe:payment\"}")
        .await
        .expect("subscribe");
    issued.sid
}

async fn stored(app: &App, id: &str) -> bool {
    app.main
        .get(&keys::ws_connection(id))
        .await
        .expect("get")
        .is_some()
}

#[tokio::test]
async fn pushes_reach_live_sessions_only_and_revoked_or_gone_connections_are_closed_and_forgotten()
{
    let fake = Fake::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}/dev", listener.local_addr().expect("addr"));
    let router = Router::new()
        .fallback(management_api)
        .with_state(fake.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
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
    let push = ApiGatewayPush::new(aws_sdk_apigatewaymanagement::Client::from_conf(conf));
    let app = App::for_tests().with_ws(Arc::new(push));
    common_users::create_user(&app, "alice", None).await;
    common_users::create_user(&app, "bob", None).await;

    connect(&app, "live-1", "alice").await;
    connect(&app, "gone-1", "alice").await;
    let logged_off = connect(&app, "revoked-1", "alice").await;
    connect(&app, "live-2", "bob").await;
    app.sessions()
        .revoke(&shared::domain::Username::from_stored("alice"), &logged_off)
        .await
        .expect("logoff");

    let msg = "{\"event\":\"payment:status:update\"}";
    app.realtime()
        .publish(&shared::domain::Username::from_stored("alice"), msg)
        .await;
    assert_eq!(
        fake.got.lock().expect("lock").clone(),
        vec![("live-1".to_owned(), msg.to_owned())]
    );
    assert_eq!(
        fake.closed.lock().expect("lock").clone(),
        vec!["revoked-1".to_owned()]
    );
    assert!(!stored(&app, "gone-1").await, "gone connection forgotten");
    assert!(
        !stored(&app, "revoked-1").await,
        "revoked connection forgotten"
    );
    assert!(stored(&app, "live-1").await && stored(&app, "live-2").await);

    // A deactivated account's connections get nothing either, and are closed.
    app.accounts()
        .deactivate(
            &shared::domain::Username::from_stored("bob"),
            &Default::default(),
        )
        .await
        .expect("deactivate");
    app.realtime()
        .publish(&shared::domain::Username::from_stored("bob"), msg)
        .await;
    assert_eq!(fake.got.lock().expect("lock").len(), 1, "nothing more sent");
    assert!(
        fake.closed
            .lock()
            .expect("lock")
            .contains(&"live-2".to_owned())
    );
    assert!(!stored(&app, "live-2").await);
    // And a message on it is refused.
    let refused = app
        .realtime()
        .message("live-1", "{\"action\":\"subscribe:payment\"}")
        .await;
    assert!(refused.is_ok(), "alice's live session still works");
}
