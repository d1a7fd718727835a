//! Helpers for the in-process auth tests: an app on a manual clock, requests, and the dev outbox.
#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use shared::App;
use shared::clock::ManualClock;

use super::common::send;

pub struct Env {
    pub app: App,
    pub clock: ManualClock,
    pub router: Router,
}

pub fn env() -> Env {
    env_with(|_| {})
}

pub fn env_with(tweak: impl FnOnce(&mut shared::config::Config)) -> Env {
    let clock = ManualClock::new();
    let mut config = shared::config::Config::for_tests();
    tweak(&mut config);
    let store = shared::store::local::LocalStore::memory(Arc::new(clock.clone())).expect("store");
    let app = App::with_local_store(config, &store, Arc::new(clock.clone()));
    let router = shared::http::finish(shared::http::routes(), &app);
    Env { app, clock, router }
}

pub fn post(path: &str, body: Value, bearer: Option<&str>) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/json");
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).expect("request")
}

pub fn get(path: &str, bearer: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::empty()).expect("request")
}

impl Env {
    pub async fn call(&self, req: Request<Body>) -> (StatusCode, Value) {
        let (s, _, b) = send(&self.router, req).await;
        (s, b)
    }

    /// Signs up in OTP mode; returns the registration token.
    pub async fn signup_otp(&self, username: &str, email: &str, phone: &str) -> String {
        let body = json!({"username": username, "password": "securePassword123", "email": email,
            "full_name": "Test User", "phone_number": phone, "mode": "OTP"});
        let (s, b) = self.call(post("/signup", body, None)).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["token"].as_str().expect("registration token").to_owned()
    }

    /// Signs up in LINK mode; returns the registration token.
    pub async fn signup_link(&self, username: &str, email: &str) -> String {
        let body = json!({"username": username, "password": "securePassword123", "email": email,
            "full_name": "Test User", "mode": "LINK"});
        let (s, b) = self.call(post("/signup", body, None)).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["token"].as_str().expect("registration token").to_owned()
    }

    /// Messages delivered to `to`, oldest first.
    pub async fn outbox(&self, to: &str) -> Vec<shared::notify::local::OutboxEntry> {
        self.app.queue.flush().await;
        shared::notify::local::read(&self.app.main, to)
            .await
            .expect("outbox")
    }

    /// The 6-digit code in the newest SMS to `phone`.
    pub async fn latest_otp(&self, phone: &str) -> String {
        let msgs = self.outbox(phone).await;
        let last = msgs.last().expect("an SMS was sent");
        assert_eq!(last.channel, "sms");
        last.body
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .expect("6-digit code")
            .to_owned()
    }

    /// The `token=` value in the newest mail to `email`.
    pub async fn latest_mail_token(&self, email: &str) -> String {
        let msgs = self.outbox(email).await;
        let last = msgs.last().expect("a mail was sent");
        assert_eq!(last.channel, "email");
        let at = match last.body.find("token=") {
            Some(i) => i + "token=".len(),
            None => {
                last.body.find("reset token in the app: ").expect("a token")
                    + "reset token in the app: ".len()
            }
        };
        last.body[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }

    /// A verified (active) account with password `securePassword123`.
    pub async fn active_user(&self, username: &str, email: &str, phone: &str) {
        let reg = self.signup_otp(username, email, phone).await;
        let otp = self.latest_otp(phone).await;
        let (s, b) = self
            .call(post("/verify-sign-up", json!({"otp": otp}), Some(&reg)))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    /// Logs in; returns (status, body).
    pub async fn login(&self, username: &str, password: &str) -> (StatusCode, Value) {
        self.call(post(
            "/auth",
            json!({"username": username, "password": password}),
            None,
        ))
        .await
    }

    /// Logs in successfully; returns the token.
    pub async fn token(&self, username: &str, password: &str) -> String {
        let (s, b) = self.login(username, password).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["token"].as_str().expect("token").to_owned()
    }
}
