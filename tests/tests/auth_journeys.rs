//! Black-box: account journeys against the running local server, reading OTPs and links from the
//! dev outbox (`GET /_dev/outbox`).

use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::server::Server;

struct Client {
    server: Server,
    http: reqwest::Client,
}

impl Client {
    fn start() -> Client {
        Client {
            server: Server::start(),
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.post(self.server.url(path)).json(&body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(self.server.url(path));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Polls the outbox (delivery is asynchronous) until `to` has at least `n` messages.
    async fn outbox(&self, to: &str, n: usize) -> Vec<Value> {
        for _ in 0..30 {
            let (s, b) = self.get(&format!("/_dev/outbox?to={to}"), None).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            let list = b.as_array().cloned().unwrap_or_default();
            if list.len() >= n {
                return list;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no message for {to} within 3 s");
    }

    async fn login(&self, user: &str, pwd: &str) -> (StatusCode, Value) {
        self.post("/auth", json!({"username": user, "password": pwd}), None)
            .await
    }
}

use tests::journey::six_digits as otp_in;

fn token_in(body: &str) -> String {
    let at = match body.find("token=") {
        Some(i) => i + "token=".len(),
        None => {
            body.find("reset token in the app: ").expect("a token")
                + "reset token in the app: ".len()
        }
    };
    body[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

#[tokio::test]
async fn otp_signup_to_logoff_against_the_running_server() {
    let c = Client::start();
    let signup = json!({"username": "john_doe", "password": "securePassword123", "email": "john@example.com",
        "full_name": "John Doe", "phone_number": "628123456789", "mode": "OTP"});
    let (s, b) = c.post("/signup", signup, None).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let reg = b["token"].as_str().expect("registration token").to_owned();

    let sms = c.outbox("628123456789", 1).await;
    assert_eq!(sms[0]["channel"], "sms");
    let otp = otp_in(sms[0]["body"].as_str().expect("body"));
    let (s, b) = c
        .post("/verify-sign-up", json!({"otp": otp}), Some(&reg))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let (s, b) = c.login("john_doe", "securePassword123").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let token = b["token"].as_str().expect("token").to_owned();
    let (s, _) = c.get("/verify", Some(&token)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = c.get("/extend", Some(&token)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let extended = b["token"].as_str().expect("token").to_owned();
    let (s, _) = c.get("/logoff", Some(&extended)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = c.get("/verify", Some(&token)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert_eq!(b["errorCode"], 401);
}

#[tokio::test]
async fn link_signup_from_the_mailed_link_then_login_against_the_running_server() {
    let c = Client::start();
    let signup = json!({"username": "linky", "password": "securePassword123", "email": "linky@example.com",
        "full_name": "Linky", "mode": "LINK"});
    let (s, b) = c.post("/signup", signup, None).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = c.login("linky", "securePassword123").await;
    assert_eq!(
        (s, b["message"].as_str()),
        (StatusCode::FORBIDDEN, Some("Account is Not Confirmed"))
    );

    let mail = c.outbox("linky@example.com", 1).await;
    let body = mail[0]["body"].as_str().expect("body");
    let link = body
        .split_whitespace()
        .find(|w| w.contains("/verify-sign-up?token="))
        .expect("link");
    assert!(
        link.starts_with(&c.server.base),
        "link points at this server: {link}"
    );
    // Opened from a mail client: a plain GET of the link.
    let res = c.http.get(link).send().await.expect("open link");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.expect("page").contains("Account verified"));

    let (s, b) = c.login("linky@example.com", "securePassword123").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["token"].is_string());
}

#[tokio::test]
async fn password_reset_against_the_running_server_and_the_token_works_once() {
    let c = Client::start();
    let signup = json!({"username": "resetter", "password": "securePassword123", "email": "reset@example.com",
        "full_name": "Reset", "mode": "LINK"});
    c.post("/signup", signup, None).await;
    let mail = c.outbox("reset@example.com", 1).await;
    let link_token = token_in(mail[0]["body"].as_str().expect("body"));
    let (s, b) = c
        .post("/verify-sign-up", json!({"token": link_token}), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let (s, _) = c
        .post(
            "/request-reset-pwd",
            json!({"email": "reset@example.com"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let mail = c.outbox("reset@example.com", 2).await;
    let reset = token_in(mail[1]["body"].as_str().expect("body"));
    let (s, b) = c
        .post(
            "/reset-pwd",
            json!({"password": "newPassword456"}),
            Some(&reset),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = c
        .post(
            "/reset-pwd",
            json!({"password": "thirdPassword789"}),
            Some(&reset),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = c.login("resetter", "newPassword456").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn update_pwd_and_deactivate_against_the_running_server() {
    let c = Client::start();
    let signup = json!({"username": "mover", "password": "securePassword123", "email": "mover@example.com",
        "full_name": "Mover", "phone_number": "081234567001", "mode": "OTP"});
    let (s, b) = c.post("/signup", signup, None).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let reg = b["token"].as_str().expect("token").to_owned();
    let sms = c.outbox("6281234567001", 1).await;
    let (s, _) = c
        .post(
            "/verify-sign-up",
            json!({"otp": otp_in(sms[0]["body"].as_str().expect("body"))}),
            Some(&reg),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let (_, b) = c.login("mover", "securePassword123").await;
    let mine = b["token"].as_str().expect("token").to_owned();
    let (_, b) = c.login("mover", "securePassword123").await;
    let other = b["token"].as_str().expect("token").to_owned();
    let change = json!({"old_password": "securePassword123", "new_password": "changedPass123"});
    let (s, b) = c.post("/update-pwd", change, Some(&mine)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        c.get("/verify", Some(&other)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(c.get("/verify", Some(&mine)).await.0, StatusCode::OK);

    let (s, b) = c
        .post(
            "/deactivate",
            json!({"reason": "No longer needed"}),
            Some(&mine),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        c.get("/verify", Some(&mine)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, b) = c.login("mover", "changedPass123").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(b["message"], "Account is Disabled");
}
