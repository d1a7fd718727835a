//! DynamoDB calls per request: the main routes driven in-process through the real router, on an
//! embedded store wrapped in [`CountingTable`]s (one port call = one DynamoDB request). The queue
//! writes its dev outbox through the unwrapped table: in aws mode that traffic goes to SQS.

use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use shared::App;
use shared::clock::{ClockRef, SystemClock};
use shared::notify::local::LocalQueue;
use shared::store::TableRef;
use shared::store::counting::{Calls, CountingTable};
use shared::store::local::LocalStore;
use shared::store::schema::{LOGS, MAIN};
use tower::ServiceExt;

/// Calls one request made on each table.
#[derive(Clone, Debug)]
pub struct Row {
    /// e.g. `GET /verify`.
    pub route: String,
    /// What the request did (which case of the route).
    pub case: String,
    pub status: StatusCode,
    pub main: Calls,
    pub logs: Calls,
}

/// An app whose tables count their calls.
pub struct Counted {
    pub app: App,
    pub router: Router,
    pub main: CountingTable,
    pub logs: CountingTable,
    raw_main: TableRef,
}

impl Counted {
    pub fn new() -> anyhow::Result<Counted> {
        let clock: ClockRef = Arc::new(SystemClock);
        let mut config = shared::config::Config::for_tests();
        config.data_dir = None;
        let store = LocalStore::memory(clock.clone())?;
        let raw_main: TableRef = Arc::new(store.table(&MAIN, &config.main_table));
        let raw_logs: TableRef = Arc::new(store.table(&LOGS, &config.logs_table));
        let main = CountingTable::new(raw_main.clone());
        let logs = CountingTable::new(raw_logs);
        let queue = Arc::new(LocalQueue::new(raw_main.clone(), clock.clone()));
        let app = App::assemble_with_queue(
            config,
            Arc::new(main.clone()),
            Arc::new(logs.clone()),
            clock,
            queue,
        );
        let router = shared::http::finish(shared::http::routes(), &app);
        Ok(Counted {
            app,
            router,
            main,
            logs,
            raw_main,
        })
    }

    /// Sends one request; returns the answer and the calls it made.
    pub async fn call(
        &self,
        route: &str,
        case: &str,
        req: Request<Body>,
    ) -> anyhow::Result<(Row, Value)> {
        self.app.queue.flush().await;
        let (m0, l0) = (self.main.calls(), self.logs.calls());
        let res = self.router.clone().oneshot(req).await?;
        let status = res.status();
        let bytes = res.into_body().collect().await?.to_bytes();
        // Audit writes may finish after the answer; let them land before reading the counters.
        self.app.queue.flush().await;
        let row = Row {
            route: route.into(),
            case: case.into(),
            status,
            main: self.main.calls().since(&m0),
            logs: self.logs.calls().since(&l0),
        };
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((row, body))
    }

    /// The newest 6-digit code sent to `phone` (read without counting).
    pub async fn latest_otp(&self, phone: &str) -> anyhow::Result<String> {
        self.app.queue.flush().await;
        let msgs = shared::notify::local::read(&self.raw_main, phone).await?;
        let last = msgs.last().context("an SMS was sent")?;
        last.body
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .map(str::to_owned)
            .context("6-digit code")
    }
}

pub fn post(path: &str, body: Value, bearer: Option<&str>) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/json");
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string()))
        .unwrap_or_else(|e| panic!("static request: {e}"))
}

pub fn get(path: &str, bearer: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::empty())
        .unwrap_or_else(|e| panic!("static request: {e}"))
}

fn expect(row: &Row, body: &Value, want: StatusCode) -> anyhow::Result<()> {
    if row.status != want {
        bail!(
            "{} ({}): expected {want}, got {} {body}",
            row.route,
            row.case,
            row.status
        );
    }
    Ok(())
}

/// Drives the main routes once each (an account's life: signup, verification, logins, session
/// routes) and returns the calls each made. Routes not on the router (404) are left out.
pub async fn measure() -> anyhow::Result<Vec<Row>> {
    let c = Counted::new()?;
    let mut rows = Vec::new();
    let phone = "628100200300";
    let pwd = "benchPassword123";

    let (row, body) = c
        .call("GET /health", "liveness", get("/health", None))
        .await?;
    expect(&row, &body, StatusCode::OK)?;
    rows.push(row);

    let signup = json!({"username": "calls_user", "password": pwd, "email": "calls@example.com",
        "full_name": "Calls User", "phone_number": phone, "mode": "OTP"});
    let (row, body) = c
        .call(
            "POST /signup",
            "new account, OTP mode",
            post("/signup", signup, None),
        )
        .await?;
    expect(&row, &body, StatusCode::CREATED)?;
    let reg = body["token"]
        .as_str()
        .context("registration token")?
        .to_owned();
    rows.push(row);

    let otp = c.latest_otp(phone).await?;
    let (row, body) = c
        .call(
            "POST /verify-sign-up",
            "correct OTP",
            post("/verify-sign-up", json!({"otp": otp}), Some(&reg)),
        )
        .await?;
    expect(&row, &body, StatusCode::OK)?;
    rows.push(row);

    let creds = json!({"username": "calls_user", "password": pwd});
    let (row, body) = c
        .call(
            "POST /auth",
            "valid credentials",
            post("/auth", creds.clone(), None),
        )
        .await?;
    expect(&row, &body, StatusCode::OK)?;
    let token = body["token"].as_str().context("token")?.to_owned();
    rows.push(row);

    let wrong = json!({"username": "calls_user", "password": "notThePassword1"});
    let (row, body) = c
        .call("POST /auth", "wrong password", post("/auth", wrong, None))
        .await?;
    expect(&row, &body, StatusCode::UNPROCESSABLE_ENTITY)?;
    rows.push(row);

    let unknown = json!({"username": "nobody_here", "password": pwd});
    let (row, body) = c
        .call("POST /auth", "unknown user", post("/auth", unknown, None))
        .await?;
    expect(&row, &body, StatusCode::UNPROCESSABLE_ENTITY)?;
    rows.push(row);

    let (row, body) = c
        .call("GET /verify", "valid session", get("/verify", Some(&token)))
        .await?;
    expect(&row, &body, StatusCode::OK)?;
    rows.push(row);

    for (route, path) in [
        ("GET /balance", "/balance"),
        ("GET /user/profile", "/user/profile"),
        ("GET /user/referral-code", "/user/referral-code"),
        ("GET /address/list", "/address/list"),
        ("GET /bank-account/list", "/bank-account/list"),
        ("GET /payment/list", "/payment/list"),
        ("GET /payout/list", "/payout/list"),
    ] {
        let (row, body) = c
            .call(route, "valid session", get(path, Some(&token)))
            .await?;
        expect(&row, &body, StatusCode::OK)?;
        rows.push(row);
    }

    let (row, body) = c
        .call("GET /extend", "valid session", get("/extend", Some(&token)))
        .await?;
    expect(&row, &body, StatusCode::OK)?;
    let extended = body["token"].as_str().context("extended token")?.to_owned();
    rows.push(row);

    let (row, body) = c
        .call(
            "GET /logoff",
            "valid session",
            get("/logoff", Some(&extended)),
        )
        .await?;
    expect(&row, &body, StatusCode::OK)?;
    rows.push(row);

    let (row, body) = c
        .call(
            "GET /verify",
            "revoked session",
            get("/verify", Some(&token)),
        )
        .await?;
    expect(&row, &body, StatusCode::UNAUTHORIZED)?;
    rows.push(row);

    let (row, body) = c
        .call("GET /verify", "no token", get("/verify", None))
        .await?;
    expect(&row, &body, StatusCode::UNAUTHORIZED)?;
    rows.push(row);

    Ok(rows)
}
