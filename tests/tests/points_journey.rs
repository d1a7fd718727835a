//! Black-box: the referral journey against the running local server — A signs up, B signs up
//! over HTTP with A's code (verification links read from the dev outbox), B pays through the
//! Xendit simulator, the callback is delivered again, and A's stats, points and history show the
//! bonus exactly once; then B redeems points into the wallet.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::server::Server;

struct Client {
    server: Server,
    http: reqwest::Client,
}

impl Client {
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

    async fn signup(&self, name: &str, code: Option<&str>) -> (StatusCode, Value) {
        let mut body = json!({"username": name, "password": "securePassword123",
            "email": format!("{name}@example.com"), "full_name": "Test User", "mode": "LINK"});
        if let Some(c) = code {
            body["referral_code"] = json!(c);
        }
        self.post("/signup", body, None).await
    }

    /// Follows the verification link in the outbox, then logs in; returns the token.
    async fn verify_and_login(&self, name: &str) -> String {
        let to = format!("{name}@example.com");
        let mut link = None;
        for _ in 0..50 {
            let (_, b) = self.get(&format!("/_dev/outbox?to={to}"), None).await;
            if let Some(body) = b
                .as_array()
                .and_then(|l| l.last())
                .and_then(|m| m["body"].as_str())
            {
                let at = body.find("token=").expect("link") + "token=".len();
                link = Some(
                    body[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                        .collect::<String>(),
                );
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let link = link.expect("a verification mail within 5 s");
        let (s, b) = self
            .post("/verify-sign-up", json!({ "token": link }), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, b) = self
            .post(
                "/auth",
                json!({"username": name, "password": "securePassword123"}),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["token"].as_str().expect("token").to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_over_http_is_pending_then_completed_once_by_the_first_payment() {
    let c = Client {
        server: Server::start(),
        http: reqwest::Client::new(),
    };
    let (s, b) = c.signup("anna", None).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let a = c.verify_and_login("anna").await;
    let (_, b) = c.get("/user/referral-code", Some(&a)).await;
    let code = b["referral_code"].as_str().expect("code").to_owned();

    let (s, b) = c.signup("nobody", Some("ZZZZ9999")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["message"], "Invalid Referral Code");

    let (s, b) = c.signup("ben", Some(&code)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, stats) = c.get("/referral/stats", Some(&a)).await;
    assert_eq!(
        stats,
        json!({"total_referrals": 1, "completed_referrals": 0, "pending_referrals": 1, "total_earned_points": 0})
    );
    let b_token = c.verify_and_login("ben").await;

    // B pays 2,000,000 (200 points at 1 per 10,000); the simulator delivers the callback, then
    // it is delivered once more.
    let (s, co) = c
        .post(
            "/payment-checkout",
            json!({ "amount": 2_000_000, "description": "Top up" }),
            Some(&b_token),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{co}");
    let xid = co["id"].as_str().expect("xendit id");
    let (s, paid) = c
        .post(&format!("/_dev/xendit/invoices/{xid}/pay"), json!({}), None)
        .await;
    assert_eq!(
        (s, paid["callback_status"].as_u64()),
        (StatusCode::OK, Some(200)),
        "{paid}"
    );
    let inv = co["invoice_id"].as_str().expect("invoice id");
    let (s, again) = c
        .post(
            &format!("/_dev/xendit/invoices/{inv}/callback"),
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        (s, again["callback_status"].as_u64()),
        (StatusCode::OK, Some(200)),
        "{again}"
    );

    let (_, stats) = c.get("/referral/stats", Some(&a)).await;
    assert_eq!(
        stats,
        json!({"total_referrals": 1, "completed_referrals": 1, "pending_referrals": 0, "total_earned_points": 50})
    );
    let (_, hist) = c.get("/referral/history", Some(&a)).await;
    assert_eq!(hist[0]["status"], "completed", "{hist}");
    let (_, w) = c.get("/balance", Some(&a)).await;
    assert_eq!(w["points"], 50);
    let (_, ph) = c.get("/points/history", Some(&a)).await;
    assert_eq!(ph["data"].as_array().map(Vec::len), Some(1), "{ph}");

    // B redeems 150 of its 200 points at 100 rupiah each.
    let (_, w) = c.get("/balance", Some(&b_token)).await;
    assert_eq!(
        (w["balance"].clone(), w["points"].clone()),
        (json!(2_000_000), json!(200))
    );
    let (s, r) = c
        .post("/points/redeem", json!({ "points": 150 }), Some(&b_token))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (r["balance"].clone(), r["points"].clone()),
        (json!(2_015_000), json!(50))
    );
    let (s, r) = c
        .post("/points/redeem", json!({ "points": 150 }), Some(&b_token))
        .await;
    assert_eq!(
        (s, r["message"].clone()),
        (StatusCode::BAD_REQUEST, json!("Insufficient Points"))
    );
    let (_, ph) = c.get("/points/history?limit=1", Some(&b_token)).await;
    assert_eq!(ph["data"][0]["type"], "DEBIT", "{ph}");
    assert!(ph["next_cursor"].is_string());
}
