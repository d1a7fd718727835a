//! Device tokens, `/fcm/send`, and delivery through FCM HTTP v1 (against a fake speaking the real
//! wire format), including dead-token removal and SQS retry/dead-letter behaviour.

mod common;
mod common_users;
#[path = "support/fake_fcm.rs"]
mod fake_fcm;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use base64::Engine;
use common::{assert_emf, assert_envelope, send};
use fake_fcm::FakeFcm;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use shared::App;
use shared::delivery::Delivery;
use shared::notify::fcm::{FcmClient, ServiceAccount};
use shared::notify::memory::MemoryQueue;
use shared::notify::providers::{Mailer, Providers};
use shared::notify::{Notification, NotifyError};
use shared::store::{Query, keys, query_all};

const TOKEN_A: &str = "dA1b2C3d4E5f6G7h8I9j0:APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ-hQMRKRrZuJAEcl7B338qju59zJMjw2DELjzEvxwYv7hH5Ynpc1ODQ0aT4U4OFEeBHWsnhTW";
const TOKEN_B: &str = "eB2c3D4e5F6g7H8i9J0k1:APA91bGHXQBB9zWqeL3kYzWtDmtqYCp9PUNCHbaZvmJjJSQmvA5aGzoRd4DXoX6aSA4ziE2uRAyVhAJfC9pxhTBsjR8hD6wT1mcBpAiTN5FNHVAr1mLVxnE";

struct Setup {
    app: App,
    router: Router,
    queue: MemoryQueue,
}

async fn setup() -> Setup {
    let queue = MemoryQueue::new();
    let app = App::for_tests().with_queue(Arc::new(queue.clone()));
    app.api_keys()
        .register("ops", "ops-secret-key-0123456789abcdef", "tests", true)
        .await
        .expect("api key");
    let router = shared::http::finish(shared::http::routes(), &app);
    Setup { app, router, queue }
}

fn bearer(method: &str, path: &str, token: &str, body: Option<Value>) -> Request<Body> {
    let b = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    }
    .expect("request")
}

fn basic_send(body: Value) -> Request<Body> {
    let creds =
        base64::engine::general_purpose::STANDARD.encode("ops:ops-secret-key-0123456789abcdef");
    Request::post("/fcm/send")
        .header("authorization", format!("Basic {creds}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request")
}

async fn register(r: &Router, user_token: &str, device: &str, kind: &str) -> StatusCode {
    let (status, _, body) = send(
        r,
        bearer(
            "POST",
            "/fcm/register",
            user_token,
            Some(json!({ "token": device, "device_type": kind })),
        ),
    )
    .await;
    assert!(
        status == StatusCode::OK || status.is_client_error(),
        "{status} {body}"
    );
    status
}

async fn device_tokens(app: &App, username: &str) -> Vec<String> {
    let mut t: Vec<String> = app
        .devices()
        .of_user(&shared::domain::Username::from_stored(username))
        .await
        .expect("devices")
        .into_iter()
        .map(|d| d.token)
        .collect();
    t.sort();
    t
}

fn delivery(app: &App, fake: &FakeFcm, mailer: Option<Arc<dyn Mailer>>) -> Delivery {
    let account = ServiceAccount::load(&fake.service_account_json()).expect("service account");
    let fcm = FcmClient::new(account, &fake.base_url, app.clock.clone()).expect("fcm client");
    app.delivery(Providers {
        mailer,
        sms: None,
        push: Some(Arc::new(fcm)),
    })
}

/// An SQS batch carrying the given bodies, each with its receive count.
fn sqs_event(records: &[(&str, &Notification, u32)]) -> aws_lambda_events::event::sqs::SqsEvent {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, n, receives)| {
            json!({
                "messageId": id,
                "receiptHandle": format!("rh-{id}"),
                "body": serde_json::to_string(n).expect("body"),
                "attributes": { "ApproximateReceiveCount": receives.to_string() },
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("sqs event")
}

fn failures(res: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    res.batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

async fn log_events(app: &App, subject: &str) -> Vec<String> {
    let items = query_all(
        app.logs.as_ref(),
        Query::pk(format!("NOTIFICATION#{subject}")),
    )
    .await
    .expect("logs");
    items
        .iter()
        .filter_map(|i| shared::store::get_s(i, "event").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn fcm_send_to_two_devices_with_one_unregistered_delivers_once_and_forgets_the_dead_token() {
    let s = setup().await;
    let fake = FakeFcm::start().await;
    let t = common_users::create_user(&s.app, "john_doe", None).await;
    assert_eq!(
        register(&s.router, &t, TOKEN_A, "android").await,
        StatusCode::OK
    );
    assert_eq!(
        register(&s.router, &t, TOKEN_B, "ios").await,
        StatusCode::OK
    );
    fake.unregister(TOKEN_B);

    let (status, _, body) = send(
        &s.router,
        basic_send(json!({ "username": "john_doe", "title": "New Offer", "body": "Check it out", "data": { "offer_id": 123, "hot": true } })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let queued = s.queue.drain();
    assert_eq!(
        queued.len(),
        1,
        "one queued message, delivered by the notifier"
    );
    let Notification::Push { data, .. } = &queued[0] else {
        panic!("push expected: {queued:?}")
    };
    assert_eq!(
        data.get("offer_id").map(String::as_str),
        Some("123"),
        "FCM data values are strings"
    );

    let d = delivery(&s.app, &fake, None);
    let res = d.handle_sqs(sqs_event(&[("m1", &queued[0], 1)])).await;
    assert!(
        failures(&res).is_empty(),
        "a dead token is not a retryable failure"
    );
    let delivered = fake.delivered();
    assert_eq!(delivered.len(), 1, "exactly one delivery: {delivered:?}");
    assert_eq!(delivered[0]["token"], TOKEN_A);
    assert_eq!(delivered[0]["notification"]["title"], "New Offer");
    assert_eq!(delivered[0]["data"]["hot"], "true");
    assert_eq!(
        device_tokens(&s.app, "john_doe").await,
        vec![TOKEN_A.to_owned()],
        "the dead token is gone"
    );
    let owner = shared::devices::token_hash(TOKEN_B);
    assert!(
        s.app
            .main
            .get(&keys::device_owner(&owner))
            .await
            .expect("get")
            .is_none()
    );
    assert_eq!(
        log_events(&s.app, "john_doe").await,
        vec!["push.token_removed"]
    );

    // A second message reuses the cached OAuth token.
    let res = d.handle_sqs(sqs_event(&[("m2", &queued[0], 1)])).await;
    assert!(failures(&res).is_empty());
    assert_eq!(fake.delivered().len(), 2);
    assert_eq!(fake.token_requests(), 1, "access token cached");
}

#[tokio::test]
async fn an_invalid_token_is_deleted_too() {
    let s = setup().await;
    let fake = FakeFcm::start().await;
    let t = common_users::create_user(&s.app, "ivy", None).await;
    register(&s.router, &t, TOKEN_A, "android").await;
    fake.invalidate(TOKEN_A);
    let n = Notification::Push {
        username: "ivy".into(),
        title: "t".into(),
        body: "b".into(),
        data: BTreeMap::new(),
    };
    let res = delivery(&s.app, &fake, None)
        .handle_sqs(sqs_event(&[("m1", &n, 1)]))
        .await;
    assert!(failures(&res).is_empty());
    assert!(device_tokens(&s.app, "ivy").await.is_empty());
}

#[tokio::test]
async fn a_provider_500_is_retried_by_sqs_and_dead_lettered_after_the_configured_receives() {
    let s = setup().await;
    let fake = FakeFcm::start().await;
    let t = common_users::create_user(&s.app, "retry", None).await;
    register(&s.router, &t, TOKEN_A, "android").await;
    fake.fail_with_500(true);
    let n = Notification::Push {
        username: "retry".into(),
        title: "t".into(),
        body: "b".into(),
        data: BTreeMap::new(),
    };
    let ok = Notification::Push {
        username: "nobody".into(),
        title: "t".into(),
        body: "b".into(),
        data: BTreeMap::new(),
    };
    let d = delivery(&s.app, &fake, None);
    let max = s.app.config.notify_max_receives;
    assert_eq!(max, 5, "matches the template's maxReceiveCount");

    // Model of SQS redrive: a failed record is received again until maxReceiveCount, then moves to the DLQ.
    let mut dlq = Vec::new();
    let mut receives = 0;
    while dlq.is_empty() {
        receives += 1;
        let res = d
            .handle_sqs(sqs_event(&[("m-fail", &n, receives), ("m-ok", &ok, 1)]))
            .await;
        assert_eq!(
            failures(&res),
            vec!["m-fail"],
            "only the failing record is retried (receive {receives})"
        );
        let events = log_events(&s.app, "m-fail").await;
        if receives < 5 {
            assert!(
                events.is_empty(),
                "not dead-lettered before the last receive: {events:?}"
            );
        }
        if i64::from(receives) >= max {
            dlq.push("m-fail");
        }
    }
    assert_eq!(receives, 5);
    assert_eq!(
        log_events(&s.app, "m-fail").await,
        vec!["notification.dead_lettered"]
    );
    assert!(fake.delivered().is_empty());
    assert_eq!(
        device_tokens(&s.app, "retry").await,
        vec![TOKEN_A.to_owned()],
        "a 500 never deletes a token"
    );

    // Once the provider recovers, a redriven copy is delivered.
    fake.fail_with_500(false);
    let res = d.handle_sqs(sqs_event(&[("m-fail", &n, 1)])).await;
    assert!(failures(&res).is_empty());
    assert_eq!(fake.delivered().len(), 1);
}

#[tokio::test]
async fn fcm_retry_after_is_waited_out_when_short_and_left_to_the_queue_when_long() {
    let s = setup().await;
    let fake = FakeFcm::start().await;
    let t = common_users::create_user(&s.app, "quota", None).await;
    register(&s.router, &t, TOKEN_A, "android").await;
    let n = Notification::Push {
        username: "quota".into(),
        title: "t".into(),
        body: "b".into(),
        data: BTreeMap::new(),
    };
    let d = delivery(&s.app, &fake, None);
    // A 1 s pause: waited out, then delivered within the same receive.
    fake.throttle(1, 1);
    let started = std::time::Instant::now();
    let res = d.handle_sqs(sqs_event(&[("m-short", &n, 1)])).await;
    assert!(failures(&res).is_empty());
    assert_eq!(fake.delivered().len(), 1);
    assert_eq!(fake.sends(), 2);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "not sooner than asked"
    );
    // A 2-minute pause: not hammered; the record goes back to the queue once.
    fake.throttle(1, 120);
    let res = d.handle_sqs(sqs_event(&[("m-long", &n, 1)])).await;
    assert_eq!(failures(&res), vec!["m-long"]);
    assert_eq!(fake.sends(), 3, "one attempt, no retry inside the delivery");
    assert_eq!(fake.delivered().len(), 1);
    assert_eq!(
        device_tokens(&s.app, "quota").await,
        vec![TOKEN_A.to_owned()]
    );
}

#[tokio::test]
async fn an_sms_gateway_answering_200_with_an_unknown_body_is_retried_then_dead_lettered() {
    let s = setup().await;
    // The gateway accepts the call but answers a body without a recognised status group.
    let router = Router::new().route(
        "/restapi/sms/1/text/advanced",
        axum::routing::post(|| async { axum::Json(json!({ "result": "queued?" })) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let sms = shared::notify::sms::SmsViro::new(&base, shared::config::Secret::new("k"), "US")
        .expect("sms client");
    let d = s.app.delivery(Providers {
        mailer: None,
        sms: Some(Arc::new(sms)),
        push: None,
    });
    let otp = Notification::Sms {
        to: "628123456789".into(),
        text: "Your code is 482913".into(),
    };
    let max = s.app.config.notify_max_receives;
    for receives in 1..=u32::try_from(max).expect("receives") {
        let res = d.handle_sqs(sqs_event(&[("m-sms", &otp, receives)])).await;
        assert_eq!(
            failures(&res),
            vec!["m-sms"],
            "receive {receives} is retried"
        );
        let events = log_events(&s.app, "m-sms").await;
        if i64::from(receives) < max {
            assert!(events.is_empty(), "{events:?}");
        }
    }
    let events = log_events(&s.app, "m-sms").await;
    assert_eq!(events, vec!["notification.dead_lettered"]);
    // Neither the code nor the number is in the audit entry.
    let logs = query_all(s.app.logs.as_ref(), Query::pk("NOTIFICATION#m-sms"))
        .await
        .expect("logs");
    let text = format!("{logs:?}");
    assert!(
        !text.contains("482913") && !text.contains("628123456789"),
        "{text}"
    );
}

#[tokio::test]
async fn a_malformed_record_is_acknowledged_and_logged_not_retried() {
    let s = setup().await;
    let fake = FakeFcm::start().await;
    let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(json!({
        "Records": [{ "messageId": "bad-1", "body": "{\"kind\":\"fax\"}", "attributes": { "ApproximateReceiveCount": "1" } }]
    }))
    .expect("event");
    let res = delivery(&s.app, &fake, None).handle_sqs(event).await;
    assert!(failures(&res).is_empty());
    assert_eq!(
        log_events(&s.app, "bad-1").await,
        vec!["notification.dropped"]
    );
}

#[tokio::test]
async fn a_token_moves_to_the_newest_user_and_only_its_owner_can_delete_it() {
    let s = setup().await;
    let first = common_users::create_user(&s.app, "first", None).await;
    let second = common_users::create_user(&s.app, "second", None).await;
    assert_eq!(
        register(&s.router, &first, TOKEN_A, "android").await,
        StatusCode::OK
    );
    assert_eq!(
        register(&s.router, &first, TOKEN_A, "android").await,
        StatusCode::OK,
        "idempotent"
    );
    assert_eq!(
        device_tokens(&s.app, "first").await,
        vec![TOKEN_A.to_owned()]
    );
    assert_eq!(
        register(&s.router, &second, TOKEN_A, "Android").await,
        StatusCode::OK
    );
    assert!(
        device_tokens(&s.app, "first").await.is_empty(),
        "moved away from the previous user"
    );
    assert_eq!(
        device_tokens(&s.app, "second").await,
        vec![TOKEN_A.to_owned()]
    );

    let path = format!("/fcm/token?token={}", TOKEN_A.replace(':', "%3A"));
    let (status, _, body) = send(&s.router, bearer("DELETE", &path, &first, None)).await;
    assert_envelope(status, &body, 404);
    assert_eq!(
        device_tokens(&s.app, "second").await,
        vec![TOKEN_A.to_owned()],
        "a non-owner deletes nothing"
    );
    let (status, _, body) = send(&s.router, bearer("DELETE", &path, &second, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(device_tokens(&s.app, "second").await.is_empty());
    let (status, _, body) = send(&s.router, bearer("DELETE", &path, &second, None)).await;
    assert_envelope(status, &body, 404);
}

#[tokio::test]
async fn fcm_routes_validate_input_and_callers() {
    let s = setup().await;
    let t = common_users::create_user(&s.app, "val", None).await;
    assert_eq!(
        register(&s.router, &t, TOKEN_A, "blackberry").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        register(&s.router, &t, "short", "ios").await,
        StatusCode::BAD_REQUEST
    );
    let (status, _, body) = send(&s.router, bearer("DELETE", "/fcm/token", &t, None)).await;
    assert_envelope(status, &body, 400);

    let push = json!({ "username": "val", "title": "T", "body": "B" });
    let unauthenticated = Request::post("/fcm/send")
        .header("content-type", "application/json")
        .body(Body::from(push.to_string()))
        .expect("req");
    let (status, _, body) = send(&s.router, unauthenticated).await;
    assert_envelope(status, &body, 401);
    let (status, _, body) = send(&s.router, bearer("POST", "/fcm/send", &t, Some(push))).await;
    assert_envelope(status, &body, 401);
    let (status, _, body) = send(
        &s.router,
        basic_send(json!({ "username": "ghost", "title": "T", "body": "B" })),
    )
    .await;
    assert_envelope(status, &body, 404);
    let (status, _, body) = send(&s.router, basic_send(json!({ "username": "val", "title": "", "body": "B", "data": { "from": "x", "nested": {} } }))).await;
    assert_envelope(status, &body, 400);
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(3), "{body}");
    assert!(
        s.queue.sent().is_empty(),
        "nothing queued for refused requests"
    );
}

#[derive(Default)]
struct RecordingMailer(Mutex<Vec<(String, String, String)>>);

#[async_trait]
impl Mailer for RecordingMailer {
    async fn send_mail(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        _html: Option<&str>,
    ) -> Result<(), NotifyError> {
        self.0
            .lock()
            .expect("lock")
            .push((to.into(), subject.into(), text.into()));
        Ok(())
    }
}

#[tokio::test]
async fn the_sample_notifier_event_is_delivered_by_the_handler() {
    let s = setup().await;
    let fake = FakeFcm::start().await;
    let t = common_users::create_user(&s.app, "john_doe", None).await;
    register(&s.router, &t, TOKEN_A, "android").await;
    let mailer = Arc::new(RecordingMailer::default());
    let d = delivery(&s.app, &fake, Some(mailer.clone()));
    let event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(include_str!("../../events/notifier-sqs.json"))
            .expect("sample event parses");
    let res = d.handle_sqs(event).await;
    assert!(failures(&res).is_empty());
    let mails = mailer.0.lock().expect("lock").clone();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].0, "john@example.com");
    assert!(mails[0].2.contains("482913"));
    assert_eq!(fake.delivered().len(), 1);
    assert_eq!(fake.delivered()[0]["notification"]["title"], "Hi");
}

#[tokio::test]
async fn a_user_keeps_at_most_ten_devices_and_the_newest_registration_always_stays() {
    let s = setup().await;
    let t = common_users::create_user(&s.app, "gadgets", None).await;
    let tokens: Vec<String> = (0..12)
        .map(|i| format!("device-token-{i:02}-0123456789abcdef"))
        .collect();
    for tok in &tokens {
        assert_eq!(
            register(&s.router, &t, tok, "android").await,
            StatusCode::OK
        );
    }
    let kept = device_tokens(&s.app, "gadgets").await;
    assert_eq!(kept.len(), shared::devices::MAX_DEVICES);
    assert!(
        kept.contains(&tokens[11]),
        "the latest registration is kept: {kept:?}"
    );
    let owners = query_all(
        s.app.main.as_ref(),
        Query::pk(keys::user_devices_pk("gadgets")).prefix(keys::FCM_PREFIX),
    )
    .await
    .expect("query")
    .len();
    assert_eq!(owners, 10);
    for tok in tokens.iter().filter(|t| !kept.contains(t)) {
        let owner = keys::device_owner(&shared::devices::token_hash(tok));
        assert!(
            s.app.main.get(&owner).await.expect("get").is_none(),
            "pruned tokens lose their owner item"
        );
    }
}

#[tokio::test]
async fn a_rejected_access_token_is_refreshed_once_and_the_send_succeeds() {
    let s = setup().await;
    let fake = FakeFcm::start().await;
    let t = common_users::create_user(&s.app, "refresh", None).await;
    register(&s.router, &t, TOKEN_A, "ios").await;
    let n = Notification::Push {
        username: "refresh".into(),
        title: "t".into(),
        body: "b".into(),
        data: BTreeMap::new(),
    };
    let d = delivery(&s.app, &fake, None);
    assert!(failures(&d.handle_sqs(sqs_event(&[("m1", &n, 1)])).await).is_empty());
    fake.revoke_access_tokens();
    assert!(failures(&d.handle_sqs(sqs_event(&[("m2", &n, 1)])).await).is_empty());
    assert_eq!(fake.token_requests(), 2, "one refresh after the 401");
    assert_eq!(fake.delivered().len(), 2);
    assert_eq!(
        device_tokens(&s.app, "refresh").await,
        vec![TOKEN_A.to_owned()],
        "a 401 never deletes a token"
    );
}

#[tokio::test]
async fn deliveries_print_emf_metrics_per_channel() {
    shared::metrics::capture();
    let s = setup().await;
    let fake = FakeFcm::start().await;
    let t = common_users::create_user(&s.app, "emf", None).await;
    register(&s.router, &t, TOKEN_A, "android").await;
    let n = Notification::Push {
        username: "emf".into(),
        title: "t".into(),
        body: "b".into(),
        data: BTreeMap::new(),
    };
    let d = delivery(&s.app, &fake, None);
    assert!(failures(&d.handle_sqs(sqs_event(&[("m1", &n, 1)])).await).is_empty());
    fake.fail_with_500(true);
    assert_eq!(
        failures(&d.handle_sqs(sqs_event(&[("m2", &n, 1)])).await).len(),
        1
    );
    let lines = shared::metrics::captured();
    assert_emf(&lines, "NotificationsSent", 1, &[("Channel", "push")]);
    assert_emf(&lines, "NotificationsFailed", 1, &[("Channel", "push")]);
}
