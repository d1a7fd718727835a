//! Profile: read with wallet figures, name change, verified phone change with phone uniqueness,
//! referral code, profile image upload (sniffed, capped) and serving.

mod common;
mod common_users;

use axum::Router;
use axum::body::Body;
use common::{assert_envelope, send};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use shared::App;
use tower::ServiceExt;

fn setup() -> (App, Router) {
    let app = App::for_tests();
    let router = shared::http::finish(shared::http::routes(), &app);
    (app, router)
}

fn get(path: &str, token: &str) -> Request<Body> {
    Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("req")
}

fn put_json(path: &str, token: &str, body: Value) -> Request<Body> {
    Request::put(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("req")
}

const BOUNDARY: &str = "----userstate-test-boundary";

fn upload(
    token: &str,
    field: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> Request<Body> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    Request::post("/user/update-profile-img")
        .header("authorization", format!("Bearer {token}"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body))
        .expect("req")
}

/// A real 1×1 PNG (signature, IHDR, IDAT, IEND with valid CRCs).
fn png() -> Vec<u8> {
    vec![
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F,
        0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ]
}

/// Fetches a URL the profile handed out, through the router; returns status, content type, bytes.
async fn fetch(r: &Router, app: &App, url: &str) -> (StatusCode, String, Vec<u8>) {
    let path = url
        .strip_prefix(app.config.public_base_url.as_str())
        .expect("URL under the public base");
    let res = r
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).expect("req"))
        .await
        .expect("infallible");
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = res
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, ct, bytes)
}

#[tokio::test]
async fn profile_shows_the_documented_fields_with_balance_and_points() {
    let (app, r) = setup();
    let t = common_users::create_user(&app, "john_doe", Some("628123456789")).await;
    let (status, _, body) = send(&r, get("/user/profile", &t)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], "john_doe");
    assert_eq!(body["email"], "john_doe@example.com");
    assert_eq!(body["phone_number"], "628123456789");
    assert_eq!(body["profile_img"], Value::Null);
    assert_eq!(body["referral_code"], "REFJOHN_DOE");
    assert_eq!(
        (body["balance"].as_i64(), body["points"].as_i64()),
        (Some(50_000), Some(150))
    );
    let (status, _, body) = send(&r, get("/user/referral-code", &t)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "referral_code": "REFJOHN_DOE" }));
    let (status, _, body) = send(&r, get("/user/profile", "garbage")).await;
    assert_envelope(status, &body, 401);
}

fn post_json(path: &str, token: &str, body: Value) -> Request<Body> {
    Request::post(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("req")
}

/// The code last sent to `phone` (the local queue delivers into the dev outbox).
async fn code_sent_to(app: &App, phone: &str) -> String {
    app.queue.flush().await;
    let sms = shared::notify::local::read(&app.main, phone)
        .await
        .expect("outbox");
    let text = sms.last().map(|m| m.body.clone()).unwrap_or_default();
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code sent to {phone}: {sms:?}"))
        .to_owned()
}

async fn guard_owner(app: &App, phone: &str) -> Option<String> {
    app.main
        .get(&shared::store::keys::phone_guard(phone))
        .await
        .expect("get")
        .and_then(|i| shared::store::get_s(&i, "username").map(str::to_owned))
}

#[tokio::test]
async fn a_phone_change_takes_effect_only_with_the_code_sent_to_the_new_number() {
    let (app, r) = setup();
    let a = common_users::create_user(&app, "anna", Some("628111111111")).await;
    common_users::create_user(&app, "bert", Some("628222222222")).await;

    // The name changes at once; the number does not: it waits for its code.
    let (status, _, body) = send(
        &r,
        put_json(
            "/user/profile",
            &a,
            json!({ "full_name": "Anna B", "phone_number": "08133333333" }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["full_name"], "Anna B");
    assert_eq!(body["phone_number"], "628111111111");
    assert_eq!(body["pending_phone_number"], "628133333333");
    assert_eq!(
        guard_owner(&app, "628133333333").await,
        None,
        "not claimed yet"
    );

    // A wrong code changes nothing; the right one moves the number and its guard.
    let code = code_sent_to(&app, "628133333333").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, _, body) = send(
        &r,
        post_json("/user/profile/phone/verify", &a, json!({ "otp": wrong })),
    )
    .await;
    assert_envelope(status, &body, 400);
    assert_eq!(body["message"], "Invalid OTP");
    let (status, _, body) = send(
        &r,
        post_json("/user/profile/phone/verify", &a, json!({ "otp": code })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["phone_number"], "628133333333");
    assert_eq!(body["pending_phone_number"], Value::Null);
    assert_eq!(
        guard_owner(&app, "628133333333").await.as_deref(),
        Some("anna")
    );
    assert_eq!(
        guard_owner(&app, "628111111111").await,
        None,
        "the old number is free"
    );
    // The code works once.
    let (status, _, body) = send(
        &r,
        post_json("/user/profile/phone/verify", &a, json!({ "otp": code })),
    )
    .await;
    assert_envelope(status, &body, 400);
}

#[tokio::test]
async fn a_phone_change_answers_the_same_for_registered_and_free_numbers_and_claims_neither() {
    let (app, r) = setup();
    let a = common_users::create_user(&app, "cara", None).await;
    common_users::create_user(&app, "dirk", Some("628222222222")).await;
    let mut answers = Vec::new();
    for phone in ["628222222222", "628444444444"] {
        let (status, _, mut body) = send(
            &r,
            put_json("/user/profile", &a, json!({ "phone_number": phone })),
        )
        .await;
        body["pending_phone_number"] = Value::Null;
        answers.push((status, body));
    }
    assert_eq!(answers[0], answers[1], "registered vs free: {answers:?}");
    assert_eq!(answers[0].0, StatusCode::OK);
    // Nothing observable changed: dirk keeps his number, nobody holds the free one.
    assert_eq!(
        guard_owner(&app, "628222222222").await.as_deref(),
        Some("dirk")
    );
    assert_eq!(guard_owner(&app, "628444444444").await, None);
    let (_, _, profile) = send(&r, get("/user/profile", &a)).await;
    assert_eq!(profile["phone_number"], Value::Null);
    // Only whoever proves they hold a registered number learns it is taken.
    let (_, _, _) = send(
        &r,
        put_json(
            "/user/profile",
            &a,
            json!({ "phone_number": "628222222222" }),
        ),
    )
    .await;
    let code = code_sent_to(&app, "628222222222").await;
    let (status, _, body) = send(
        &r,
        post_json("/user/profile/phone/verify", &a, json!({ "otp": code })),
    )
    .await;
    assert_envelope(status, &body, 409);
    assert_eq!(body["message"], "Phone number is already registered");
    assert_eq!(
        guard_owner(&app, "628222222222").await.as_deref(),
        Some("dirk")
    );
}

#[tokio::test]
async fn an_unverified_claim_on_a_number_never_blocks_its_owners_otp_signup() {
    let (app, r) = setup();
    let squatter = common_users::create_user(&app, "squat", None).await;
    // The squatter asks for the victim's number (the code goes to the victim, who ignores it) …
    let (status, _, _) = send(
        &r,
        put_json(
            "/user/profile",
            &squatter,
            json!({ "phone_number": "628555555555" }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // … and also gives it in a LINK signup and in a pending OTP signup.
    for (name, mode) in [("linker", "LINK"), ("otpsquat", "OTP")] {
        let body = json!({"username": name, "password": "securePassword123",
            "email": format!("{name}@example.com"), "full_name": "X",
            "phone_number": "628555555555", "mode": mode});
        let req = Request::post("/signup")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("req");
        let (status, _, body) = send(&r, req).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // The owner signs up with it in OTP mode, verifies it and holds it.
    app.queue.flush().await;
    let before = shared::notify::local::read(&app.main, "628555555555")
        .await
        .expect("outbox");
    let body = json!({"username": "owner", "password": "securePassword123",
        "email": "owner@example.com", "full_name": "Owner", "phone_number": "0855-5555-555",
        "mode": "OTP"});
    let req = Request::post("/signup")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("req");
    let (status, _, body) = send(&r, req).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let registration = body["token"].as_str().expect("token").to_owned();
    app.queue.flush().await;
    let after = shared::notify::local::read(&app.main, "628555555555")
        .await
        .expect("outbox");
    let sms = after
        .iter()
        .find(|m| !before.contains(m))
        .expect("the owner's code");
    let code: String = sms
        .body
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("six digits")
        .to_owned();
    let req = Request::post("/verify-sign-up")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {registration}"))
        .body(Body::from(json!({ "otp": code }).to_string()))
        .expect("req");
    let (status, _, body) = send(&r, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        guard_owner(&app, "628555555555").await.as_deref(),
        Some("owner")
    );
}

#[tokio::test]
async fn profile_update_validates_its_fields() {
    let (app, r) = setup();
    let t = common_users::create_user(&app, "vera", None).await;
    let (status, _, body) = send(
        &r,
        put_json("/user/profile", &t, json!({ "phone_number": "12345" })),
    )
    .await;
    assert_envelope(status, &body, 400);
    assert_eq!(body["message"], "PhoneFormatErr");
    let (status, _, body) = send(
        &r,
        put_json("/user/profile", &t, json!({ "full_name": "" })),
    )
    .await;
    assert_envelope(status, &body, 400);
    let (status, _, body) = send(&r, put_json("/user/profile", &t, json!({}))).await;
    assert_envelope(status, &body, 400);
    let (status, _, body) = send(
        &r,
        put_json(
            "/user/profile",
            &t,
            json!({ "phone_number": "628155555555" }),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a user without a phone can add one: {body}"
    );
}

#[tokio::test]
async fn a_real_png_is_accepted_and_served_back_byte_identical() {
    let (app, r) = setup();
    let t = common_users::create_user(&app, "pic", None).await;
    let (status, _, body) = send(
        &r,
        upload(&t, "profile_img", "me.jpg", "image/jpeg", &png()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["profile_img"].as_str().expect("url").to_owned();
    assert!(
        url.ends_with(".png"),
        "stored by sniffed type, not by the claimed name: {url}"
    );
    let (_, _, profile) = send(&r, get("/user/profile", &t)).await;
    assert_eq!(profile["profile_img"], url.as_str());
    let (status, ct, bytes) = fetch(&r, &app, &url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct, "image/png");
    assert_eq!(bytes, png());

    // A second upload replaces the first; the old file is gone.
    let (status, _, body) = send(
        &r,
        upload(&t, "profile_img", "again.png", "image/png", &png()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let url2 = body["profile_img"].as_str().expect("url").to_owned();
    assert_ne!(url, url2);
    assert_eq!(fetch(&r, &app, &url).await.0, StatusCode::NOT_FOUND);
    assert_eq!(fetch(&r, &app, &url2).await.2, png());
}

#[tokio::test]
async fn an_uploaded_jpeg_with_an_exif_gps_block_is_served_without_it() {
    // A camera JPEG (made with Pillow): EXIF with a GPS IFD, the maker, orientation 6.
    let original = include_bytes!("fixtures/exif-gps.jpg");
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    // GPSLatitude: tag 2, RATIONAL, 3 values (a big-endian TIFF).
    let latitude = [0x00, 0x02, 0x00, 0x05, 0x00, 0x00, 0x00, 0x03];
    assert!(contains(original, b"SecretPhoneMaker") && contains(original, &latitude));
    let (app, r) = setup();
    let t = common_users::create_user(&app, "traveller", None).await;
    let (status, _, body) = send(
        &r,
        upload(&t, "profile_img", "holiday.jpg", "image/jpeg", original),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["profile_img"].as_str().expect("url").to_owned();
    let (status, ct, served) = fetch(&r, &app, &url).await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "image/jpeg"));
    assert!(
        !contains(&served, b"SecretPhoneMaker"),
        "EXIF maker removed"
    );
    assert!(!contains(&served, &latitude), "no GPS latitude left");
    // Still a JPEG that shows the right way up: the scan data and the orientation stay.
    assert!(served.starts_with(&[0xFF, 0xD8]) && served.ends_with(&[0xFF, 0xD9]));
    let orientation = [0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00];
    assert!(contains(&served, &orientation), "orientation 6 kept");
    assert!(served.len() < original.len());
}

#[tokio::test]
async fn a_text_file_named_png_is_rejected_400() {
    let (app, r) = setup();
    let t = common_users::create_user(&app, "txt", None).await;
    let (status, _, body) = send(
        &r,
        upload(
            &t,
            "profile_img",
            "me.png",
            "image/png",
            b"just some text, honest",
        ),
    )
    .await;
    assert_envelope(status, &body, 400);
    let (_, _, profile) = send(&r, get("/user/profile", &t)).await;
    assert_eq!(profile["profile_img"], Value::Null);
}

#[tokio::test]
async fn a_three_mib_upload_is_rejected_413_envelope() {
    let (app, r) = setup();
    let t = common_users::create_user(&app, "big", None).await;
    let mut bytes = png();
    bytes.resize(3 * 1024 * 1024, 0);
    let (status, _, body) = send(
        &r,
        upload(&t, "profile_img", "big.png", "image/png", &bytes),
    )
    .await;
    assert_envelope(status, &body, 413);
    // Just over the image cap but within the body limit: the explicit size check answers.
    bytes.truncate(2 * 1024 * 1024 + 10);
    let (status, _, body) = send(
        &r,
        upload(&t, "profile_img", "big.png", "image/png", &bytes),
    )
    .await;
    assert_envelope(status, &body, 413);
}

#[tokio::test]
async fn an_upload_without_the_profile_img_field_is_400() {
    let (app, r) = setup();
    let t = common_users::create_user(&app, "nofield", None).await;
    let (status, _, body) = send(&r, upload(&t, "avatar", "me.png", "image/png", &png())).await;
    assert_envelope(status, &body, 400);
    assert_eq!(body["errors"][0]["field"], "profile_img");
    let not_multipart = Request::post("/user/update-profile-img")
        .header("authorization", format!("Bearer {t}"))
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .expect("req");
    let (status, _, body) = send(&r, not_multipart).await;
    assert_envelope(status, &body, 400);
}

#[tokio::test]
async fn only_generated_image_names_are_served() {
    let (_, r) = setup();
    for path in [
        "/resources/user_profile_img/..%2F..%2Fetc%2Fpasswd",
        "/resources/user_profile_img/john_doe.jpg",
        "/resources/user_profile_img/0123456789abcdef0123456789abcdef.png",
    ] {
        let (status, _, body) =
            send(&r, Request::get(path).body(Body::empty()).expect("req")).await;
        assert_envelope(status, &body, 404);
    }
}

#[tokio::test]
async fn a_base64_multipart_api_gateway_event_uploads_the_image() {
    let (app, r) = setup();
    let t = common_users::create_user(&app, "lambda_user", None).await;
    let event = include_str!("../../events/user-update-profile-img.json")
        .replace("<jwt-from-POST-/auth>", &t);
    let req =
        lambda_http::request::from_str(&event).expect("event parses as an API Gateway v2 request");
    let (parts, body) = req.into_parts();
    let body = match body {
        lambda_http::Body::Binary(b) => Body::from(b),
        other => panic!("API Gateway base64 bodies arrive as binary, got {other:?}"),
    };
    let (status, _, json) = send(&r, Request::from_parts(parts, body)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let url = json["profile_img"].as_str().expect("url");
    assert_eq!(fetch(&r, &app, url).await.2, png());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_uploads_leave_exactly_the_current_image_stored() {
    use shared::store::schema::{LOGS, MAIN};
    let clock: shared::clock::ClockRef = std::sync::Arc::new(shared::clock::SystemClock);
    let config = shared::config::Config::for_tests();
    let store = shared::store::local::LocalStore::memory(clock.clone()).expect("store");
    let blobs = std::sync::Arc::new(shared::blobs::MemoryBlobs::new(&config.public_base_url));
    let app = App::assemble_with_ports(
        config.clone(),
        std::sync::Arc::new(store.table(&MAIN, &config.main_table)),
        std::sync::Arc::new(store.table(&LOGS, &config.logs_table)),
        clock,
        std::sync::Arc::new(shared::notify::memory::MemoryQueue::new()),
        blobs.clone(),
    );
    let r = shared::http::finish(shared::http::routes(), &app);
    let t = common_users::create_user(&app, "racer", None).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (r, t) = (r.clone(), t.clone());
            tokio::spawn(async move {
                send(&r, upload(&t, "profile_img", "p.png", "image/png", &png()))
                    .await
                    .0
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("task"), StatusCode::OK);
    }
    let (_, _, profile) = send(&r, get("/user/profile", &t)).await;
    let current = profile["profile_img"]
        .as_str()
        .expect("url")
        .rsplit('/')
        .next()
        .expect("file")
        .to_owned();
    assert_eq!(
        blobs.names(),
        vec![format!("user_profile_img/{current}")],
        "no orphaned uploads"
    );
}

#[tokio::test]
async fn reading_the_profile_is_one_batch_read() {
    let base = App::for_tests();
    common_users::create_user(&base, "counted", Some("628123400000")).await;
    let counting = shared::store::counting::CountingTable::new(base.main.clone());
    let app = App::assemble_with_ports(
        base.config.clone(),
        std::sync::Arc::new(counting.clone()),
        base.logs.clone(),
        base.clock.clone(),
        base.queue.clone(),
        base.blobs.clone(),
    );
    let profile = app
        .profiles()
        .get(&shared::domain::Username::from_stored("counted"))
        .await
        .expect("profile");
    assert_eq!(profile.balance, 50_000);
    let calls = counting.calls();
    assert_eq!(
        (calls.batch_get, calls.total()),
        (1, 1),
        "INFO + WALLET in one BatchGetItem, got {calls}"
    );
}
