//! The storage-less application `health` runs on: answers health, refuses every table call.

mod common;

use axum::body::Body;
use http::{Request, StatusCode};
use shared::store::{Key, StoreError};

#[tokio::test]
async fn stateless_app_answers_health_and_refuses_table_calls_as_unavailable() {
    let app = shared::App::stateless_from_env().expect("default local config");
    let router = shared::http::finish(shared::http::health::router(), &app);
    let (status, _, body) = common::send(
        &router,
        Request::get("/health").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "OK");

    let err = app.main.get(&Key::new("USER#a", "PROFILE")).await;
    assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
    let err = app.logs.get(&Key::new("LOG#a", "1")).await;
    assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
}
