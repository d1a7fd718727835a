//! The SMS gateway and SES adapters against small fakes speaking their wire formats.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use shared::config::Secret;
use shared::notify::NotifyError;
use shared::notify::ses::SesMailer;
use shared::notify::sms::SmsViro;

type Log = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

/// Serves `router` on a random port; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    base
}

/// An SMSViro fake that answers 200 with `body`, whatever was sent.
async fn fake_sms_body(body: Value) -> String {
    let router = Router::new().route(
        "/restapi/sms/1/text/advanced",
        post(move || async move { axum::Json(body) }),
    );
    serve(router).await
}

/// An SMSViro fake: answers with `status` and an Infobip-shaped body with `group`.
async fn fake_sms(status: u16, group: &'static str) -> (String, Log) {
    let log: Log = Arc::default();
    let handler = move |State(log): State<Log>, headers: HeaderMap, body: axum::Json<Value>| async move {
        log.lock().expect("lock").push((headers, body.0.clone()));
        let to = body.0["messages"][0]["destinations"][0]["to"].clone();
        let reply = json!({ "bulkId": "b1", "messages": [{ "to": to, "messageId": "m1", "smsCount": 1,
            "status": { "groupId": 1, "groupName": group, "id": 26, "name": "PENDING_ACCEPTED", "description": "sent" } }] });
        (
            StatusCode::from_u16(status).expect("status"),
            axum::Json(reply),
        )
    };
    let router = Router::new()
        .route("/restapi/sms/1/text/advanced", post(handler))
        .with_state(log.clone());
    (serve(router).await, log)
}

#[tokio::test]
async fn sms_is_sent_in_the_gateway_wire_format() {
    let (base, log) = fake_sms(200, "PENDING").await;
    let sms = SmsViro::new(&base, Secret::new("sms-api-key"), "USERSTATE").expect("client");
    sms.send("628123456789", "Your code is 123456")
        .await
        .expect("sent");
    let (headers, body) = log.lock().expect("lock")[0].clone();
    assert_eq!(headers["authorization"], "App sms-api-key");
    assert_eq!(
        body,
        json!({ "messages": [{ "from": "USERSTATE", "destinations": [{ "to": "628123456789" }], "text": "Your code is 123456" }] })
    );
}

#[tokio::test]
async fn a_2xx_answer_the_client_does_not_recognise_is_retried_not_counted_as_sent() {
    for body in [
        json!({}),
        json!({"result": "ok"}),
        json!({"messages": [{"to": "628123456789", "messageId": "m1"}]}),
        json!({"messages": [{"status": {"groupName": "SOMETHING_NEW"}}]}),
    ] {
        let base = fake_sms_body(body.clone()).await;
        let sms = SmsViro::new(&base, Secret::new("k"), "US").expect("client");
        let sent = sms.send("628123456789", "Your code is 123456").await;
        match sent {
            Err(NotifyError::Transient(why)) => {
                assert!(
                    !why.contains("123456") && !why.contains("628123456789"),
                    "{why}"
                )
            }
            other => panic!("{body}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn sms_rejections_are_permanent_and_gateway_errors_transient() {
    let (base, _) = fake_sms(200, "REJECTED").await;
    let sms = SmsViro::new(&base, Secret::new("k"), "US").expect("client");
    assert!(matches!(
        sms.send("628123456789", "x").await,
        Err(NotifyError::Permanent(_))
    ));
    let (base, _) = fake_sms(500, "PENDING").await;
    let sms = SmsViro::new(&base, Secret::new("k"), "US").expect("client");
    assert!(matches!(
        sms.send("628123456789", "x").await,
        Err(NotifyError::Transient(_))
    ));
    let (base, _) = fake_sms(400, "PENDING").await;
    let sms = SmsViro::new(&base, Secret::new("k"), "US").expect("client");
    assert!(matches!(
        sms.send("628123456789", "x").await,
        Err(NotifyError::Permanent(_))
    ));
}

/// An SES v2 fake: `POST /v2/email/outbound-emails`; answers `status` (with an error type header
/// when not 200).
async fn fake_ses(status: u16, error_type: &'static str) -> (String, Log) {
    let log: Log = Arc::default();
    let handler = move |State(log): State<Log>, headers: HeaderMap, body: String| async move {
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        log.lock().expect("lock").push((headers, v));
        if status == 200 {
            (
                StatusCode::OK,
                [("x-amzn-errortype", "")],
                axum::Json(json!({ "MessageId": "ses-1" })),
            )
        } else {
            (
                StatusCode::from_u16(status).expect("status"),
                [("x-amzn-errortype", error_type)],
                axum::Json(json!({ "message": "failed" })),
            )
        }
    };
    let router = Router::new()
        .route("/v2/email/outbound-emails", post(handler))
        .with_state(log.clone());
    (serve(router).await, log)
}

fn ses_client(base: &str) -> aws_sdk_sesv2::Client {
    let conf = aws_sdk_sesv2::Config::builder()
        .behavior_version(aws_sdk_sesv2::config::BehaviorVersion::latest())
        .region(aws_sdk_sesv2::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sesv2::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .endpoint_url(base)
        .build();
    aws_sdk_sesv2::Client::from_conf(conf)
}

#[tokio::test]
async fn mail_is_sent_through_ses_v2_with_text_and_html() {
    let (base, log) = fake_ses(200, "").await;
    let mailer = SesMailer::new(ses_client(&base), "no-reply@userstate.test");
    mailer
        .send(
            "john@example.com",
            "Verify",
            "Code 482913",
            Some("<b>Code 482913</b>"),
        )
        .await
        .expect("sent");
    let (headers, body) = log.lock().expect("lock")[0].clone();
    assert!(
        headers["authorization"]
            .to_str()
            .unwrap_or_default()
            .starts_with("AWS4-HMAC-SHA256"),
        "SigV4 signed"
    );
    assert_eq!(body["FromEmailAddress"], "no-reply@userstate.test");
    assert_eq!(
        body["Destination"]["ToAddresses"],
        json!(["john@example.com"])
    );
    let simple = &body["Content"]["Simple"];
    assert_eq!(simple["Subject"]["Data"], "Verify");
    assert_eq!(simple["Body"]["Text"]["Data"], "Code 482913");
    assert_eq!(simple["Body"]["Html"]["Data"], "<b>Code 482913</b>");
}

#[tokio::test]
async fn ses_rejections_are_permanent_and_throttling_transient() {
    let (base, _) = fake_ses(400, "MessageRejected").await;
    let mailer = SesMailer::new(ses_client(&base), "no-reply@userstate.test");
    assert!(matches!(
        mailer.send("a@b.co", "s", "t", None).await,
        Err(NotifyError::Permanent(_))
    ));
    let (base, _) = fake_ses(429, "TooManyRequestsException").await;
    let mailer = SesMailer::new(ses_client(&base), "no-reply@userstate.test");
    assert!(matches!(
        mailer.send("a@b.co", "s", "t", None).await,
        Err(NotifyError::Transient(_))
    ));
}

#[tokio::test]
async fn an_unreachable_sms_gateway_is_a_transient_failure() {
    // A port that was just free: connection refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let sms = SmsViro::new(&base, Secret::new("k"), "US").expect("client");
    assert!(matches!(
        sms.send("628123456789", "x").await,
        Err(NotifyError::Transient(_))
    ));
}
