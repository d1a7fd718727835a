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
use shared::domain::money::Money;
use shared::payments::invoice::{InvoiceRecord, NewInvoice};
use shared::store::counting::{Calls, CountingTable};
use shared::store::local::LocalStore;
use shared::store::schema::{LOGS, MAIN};
use shared::store::{TableRef, to_item};
use shared::wallet::{Change, EntryType, PointsChange};
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
        let queue = Arc::new(shared::delivery::local_queue(
            raw_main.clone(),
            clock.clone(),
        ));
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

    money_writes(&c, &token, &mut rows).await?;

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

fn with_key(mut req: Request<Body>, key: &str) -> Request<Body> {
    if let Ok(v) = http::HeaderValue::from_str(key) {
        req.headers_mut().insert("idempotency-key", v);
    }
    req
}

/// The money writes: debits (new, replayed and refused), a points redemption and a paid invoice's
/// callback (first delivery and a replay). Funds, points and the pending invoice are set up
/// outside the measured requests.
async fn money_writes(c: &Counted, token: &str, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let user = "calls_user";
    let credit = Change {
        kind: EntryType::Credit,
        amount: Money::from_rupiah(100_000),
        description: "bench setup".into(),
        reference_id: "bench".into(),
        funds: shared::wallet::Funds::Cash,
    };
    let points = PointsChange {
        kind: EntryType::Credit,
        points: shared::domain::Points::new(500),
        description: "bench setup".into(),
        reference_id: "bench".into(),
    };
    c.app
        .wallets()
        .apply_full(
            &shared::domain::Username::from_stored(user),
            Some(&credit),
            Some(&points),
            None,
            &[],
        )
        .await
        .map_err(|e| anyhow::anyhow!("setup credit: {e:?}"))?;

    let debit = || {
        post(
            "/balance/decrease",
            json!({"amount": 10_000, "description": "Purchase"}),
            Some(token),
        )
    };
    for (case, key, want) in [
        ("new Idempotency-Key", "bench-debit-1", StatusCode::OK),
        ("replayed Idempotency-Key", "bench-debit-1", StatusCode::OK),
    ] {
        let (row, body) = c
            .call("POST /balance/decrease", case, with_key(debit(), key))
            .await?;
        expect(&row, &body, want)?;
        rows.push(row);
    }
    let too_much = post(
        "/balance/decrease",
        json!({"amount": 10_000_000, "description": "Purchase"}),
        Some(token),
    );
    let (row, body) = c
        .call(
            "POST /balance/decrease",
            "insufficient balance",
            with_key(too_much, "bench-debit-2"),
        )
        .await?;
    expect(&row, &body, StatusCode::BAD_REQUEST)?;
    rows.push(row);

    let redeem = post("/points/redeem", json!({"points": 100}), Some(token));
    let (row, body) = c
        .call(
            "POST /points/redeem",
            "new Idempotency-Key",
            with_key(redeem, "bench-redeem-1"),
        )
        .await?;
    expect(&row, &body, StatusCode::OK)?;
    rows.push(row);

    let id = "inv_bench_0001";
    let invoice = InvoiceRecord::pending(
        NewInvoice {
            invoice_id: id.into(),
            username: user.into(),
            amount: 50_000,
            currency: "IDR".into(),
            description: "Top up balance".into(),
            payment_method: None,
            ewallet_type: None,
            xendit_id: "bench0000000000000000001".into(),
            invoice_url: "https://checkout.xendit.co/web/bench0000000000000000001".into(),
            expiry_date: "2099-01-01T00:00:00.000Z".into(),
        },
        c.app.clock.now(),
    );
    c.raw_main.put(to_item(&invoice)?, None).await?;
    let paid = json!({"id": "bench0000000000000000001", "external_id": id, "status": "PAID",
        "amount": 50_000, "paid_amount": 50_000, "paid_at": "2026-11-27T08:00:00.000Z",
        "payment_method": "BANK_TRANSFER", "payment_channel": "PERMATA", "currency": "IDR"});
    let callback_token = c
        .app
        .config
        .xendit_callback_token
        .as_ref()
        .expect("local token")
        .expose()
        .to_owned();
    for case in ["invoice paid", "replayed callback"] {
        let req = Request::post("/payment-callback")
            .header("content-type", "application/json")
            .header("x-callback-token", &callback_token)
            .body(Body::from(paid.to_string()))?;
        let (row, body) = c.call("POST /payment-callback", case, req).await?;
        expect(&row, &body, StatusCode::OK)?;
        rows.push(row);
    }
    Ok(())
}
