//! Black-box: profile, addresses, profile image (stored on disk, served back, surviving a restart),
//! device tokens and admin push, offers and FAQ against the running local server.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::server::{Options, Server};

const API_KEY: &str = "ops:ops-key-0123456789abcdef0123456789";

use tests::journey::PNG;

struct Client {
    server: Server,
    http: reqwest::Client,
}

impl Client {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        auth: Option<String>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, self.server.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn outbox(&self, to: &str, n: usize) -> Vec<Value> {
        for _ in 0..50 {
            let (_, b) = self
                .call("GET", &format!("/_dev/outbox?to={to}"), None, None)
                .await;
            let list = b.as_array().cloned().unwrap_or_default();
            if list.len() >= n {
                return list;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no message for {to}");
    }

    /// Signs up through the API (OTP read from the dev outbox) and logs in.
    async fn user(&self, username: &str, phone: &str) -> String {
        let signup = json!({"username": username, "password": "securePassword123", "email": format!("{username}@example.com"),
            "full_name": "Journey User", "phone_number": phone, "mode": "OTP"});
        let (s, b) = self.call("POST", "/signup", Some(signup), None).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let reg = b["token"].as_str().expect("registration token").to_owned();
        let sms = self.outbox(phone, 1).await;
        let text = sms[0]["body"].as_str().expect("body");
        let otp: String = text
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .expect("otp")
            .to_owned();
        let (s, b) = self
            .call(
                "POST",
                "/verify-sign-up",
                Some(json!({"otp": otp})),
                Some(format!("Bearer {reg}")),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, b) = self
            .call(
                "POST",
                "/auth",
                Some(json!({"username": username, "password": "securePassword123"})),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        format!("Bearer {}", b["token"].as_str().expect("token"))
    }
}

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(API_KEY)
    )
}

fn start(dir: &std::path::Path) -> Client {
    let server = Server::start_with(Options {
        data_dir: Some(dir.to_owned()),
        api_keys: vec![API_KEY.into()],
        env: vec![],
    });
    Client {
        server,
        http: reqwest::Client::new(),
    }
}

#[tokio::test]
async fn profile_addresses_image_push_and_offers_against_the_running_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = start(dir.path());
    let me = c.user("journey", "628123450001").await;

    let (s, b) = c.call("GET", "/user/profile", None, Some(me.clone())).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (
            b["username"].as_str(),
            b["balance"].as_i64(),
            b["profile_img"].is_null()
        ),
        (Some("journey"), Some(0), true)
    );
    assert!(b["referral_code"].is_string());

    let addr = json!({"label": "Home", "recipient_name": "J", "phone_number": "628123450001", "address": "Jl. Example No. 1"});
    let (s, b) = c
        .call("POST", "/address", Some(addr.clone()), Some(me.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, list) = c.call("GET", "/address/list", None, Some(me.clone())).await;
    assert_eq!(list[0]["is_default"], true);

    // Upload: multipart built by hand (a file named .txt; the content decides).
    let url = tests::journey::upload_profile_png(
        &c.http,
        &c.server.url("/user/update-profile-img"),
        &me,
        "x.txt",
        "text/plain",
    )
    .await;
    assert!(url.starts_with(&c.server.base), "{url}");
    let file = url.rsplit('/').next().expect("file name").to_owned();
    let on_disk = dir
        .path()
        .join("resources")
        .join("user_profile_img")
        .join(&file);
    assert_eq!(std::fs::read(&on_disk).expect("stored on disk"), PNG);

    let (s, _) = c
        .call(
            "POST",
            "/fcm/register",
            Some(json!({"token": "device-token-0123456789-abcdef", "device_type": "android"})),
            Some(me.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let push = json!({"username": "journey", "title": "Hello", "body": "From the journey", "data": {"k": 1}});
    let (s, b) = c.call("POST", "/fcm/send", Some(push), Some(basic())).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let delivered = c.outbox("journey", 1).await;
    assert_eq!(
        (
            delivered[0]["channel"].as_str(),
            delivered[0]["subject"].as_str()
        ),
        (Some("push"), Some("Hello"))
    );

    let offer =
        json!({"title": "Summer Sale", "description": "Get 50% off!", "valid_until": "2999-12-31"});
    let (s, b) = c
        .call("POST", "/marketing-offer", Some(offer), Some(basic()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, offers) = c
        .call("GET", "/marketing-offer/list", None, Some(me.clone()))
        .await;
    assert_eq!(offers[0]["title"], "Summer Sale");
    let (s, _) = c
        .call(
            "POST",
            "/faq",
            Some(json!({"question": "Q?", "answer": "A.", "category": "General"})),
            Some(basic()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, faq) = c.call("GET", "/faq", None, None).await;
    assert_eq!(faq[0]["question"], "Q?");

    // After a restart on the same data dir the image is still served, byte-identical.
    c.server.stop();
    let c = start(dir.path());
    let res = c
        .http
        .get(c.server.url(&format!("/resources/user_profile_img/{file}")))
        .send()
        .await
        .expect("image");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.bytes().await.expect("bytes").as_ref(), PNG);
}
