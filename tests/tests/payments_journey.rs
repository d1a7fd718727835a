//! Black-box: the money path against the running local server — a user pays a checkout through
//! the Xendit simulator's hosted page flow, the callback credits the wallet, a WebSocket subscriber
//! hears about it, a debit follows, and the stored ledger reconciles with the balance.

use futures::SinkExt;
use serde_json::{Value, json};
use tests::server::{Options, Server};
use tokio_tungstenite::tungstenite::Message;

use tests::journey::Ws;

async fn next_json(ws: &mut Ws) -> Value {
    tests::journey::next_json_within(ws, 10).await
}

fn ws_url(s: &Server, token: Option<&str>) -> String {
    let base = s.base.replacen("http://", "ws://", 1);
    match token {
        Some(t) => format!("{base}/ws?token={t}"),
        None => format!("{base}/ws"),
    }
}

fn assert_refused_with_401(
    res: Result<
        (
            Ws,
            tokio_tungstenite::tungstenite::handshake::client::Response,
        ),
        tokio_tungstenite::tungstenite::Error,
    >,
) {
    match res {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        Err(other) => panic!("expected an HTTP 401 refusal, got {other}"),
        Ok(_) => panic!("the upgrade must be refused"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_checkout_credits_the_wallet_notifies_the_socket_and_reconciles_with_the_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start_with(Options {
        data_dir: Some(dir.path().to_path_buf()),
        ..Options::default()
    });
    let http = reqwest::Client::new();

    // A user (dev seeding route: local mode only).
    let user: Value = http
        .post(s.url("/_dev/users"))
        .json(&json!({ "username": "journey" }))
        .send()
        .await
        .expect("create user")
        .json()
        .await
        .expect("json");
    let token = user["token"].as_str().expect("token").to_owned();

    // The socket refuses a missing or bad token before the upgrade.
    assert_refused_with_401(tokio_tungstenite::connect_async(ws_url(&s, None)).await);
    assert_refused_with_401(tokio_tungstenite::connect_async(ws_url(&s, Some("not.a.jwt"))).await);

    // Subscribe; a payload naming someone else is refused.
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url(&s, Some(&token)))
        .await
        .expect("ws connects");
    ws.send(Message::Text(
        json!({ "action": "subscribe:payment", "username": "someone-else" })
            .to_string()
            .into(),
    ))
    .await
    .expect("send");
    assert_eq!(next_json(&mut ws).await["event"], "error");
    ws.send(Message::Text(
        json!({ "action": "subscribe:payment" }).to_string().into(),
    ))
    .await
    .expect("send");
    assert_eq!(next_json(&mut ws).await["event"], "subscribed");

    // Checkout.
    let co: Value = http
        .post(s.url("/payment-checkout"))
        .bearer_auth(&token)
        .json(&json!({ "amount": 50_000, "description": "Top up", "payment_method": "EWALLET", "ewallet_type": "OVO" }))
        .send()
        .await
        .expect("checkout")
        .json()
        .await
        .expect("json");
    let invoice_id = co["invoice_id"].as_str().expect("invoice id").to_owned();
    let xendit_id = co["id"].as_str().expect("xendit id").to_owned();
    assert_eq!(co["status"], "PENDING");

    // The hosted checkout page.
    let page = http
        .get(co["invoice_url"].as_str().expect("invoice_url"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    assert!(page.text().await.expect("html").contains(&invoice_id));

    // Pay at the simulator; it delivers the callback to /payment-callback.
    let paid: Value = http
        .post(s.url(&format!("/_dev/xendit/invoices/{xendit_id}/pay")))
        .send()
        .await
        .expect("pay")
        .json()
        .await
        .expect("json");
    assert_eq!(paid["callback_status"], 200, "{paid}");

    let balance: Value = http
        .get(s.url("/balance"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("balance")
        .json()
        .await
        .expect("json");
    assert_eq!(balance["balance"], 50_000);

    let ev = next_json(&mut ws).await;
    assert_eq!(ev["event"], "payment:status:update");
    assert_eq!(ev["data"]["invoice_id"], invoice_id.as_str());
    assert_eq!(ev["data"]["status"], "PAID");
    assert_eq!(ev["data"]["amount"], 50_000);

    let public: Value = http
        .get(s.url(&format!("/invoice/detail?invoice_id={invoice_id}")))
        .send()
        .await
        .expect("detail")
        .json()
        .await
        .expect("json");
    assert_eq!(public["status"], "PAID");

    // Spend some of it.
    let res = http
        .post(s.url("/balance/decrease"))
        .bearer_auth(&token)
        .header("idempotency-key", "journey-1")
        .json(&json!({ "amount": 12_500, "description": "Purchase" }))
        .send()
        .await
        .expect("decrease");
    assert_eq!(res.status(), 200);
    let too_much = http
        .post(s.url("/balance/decrease"))
        .bearer_auth(&token)
        .json(&json!({ "amount": 1_000_000, "description": "Too much" }))
        .send()
        .await
        .expect("decrease");
    assert_eq!(too_much.status(), 400);
    let body: Value = too_much.json().await.expect("json");
    assert_eq!(body["message"], "Insufficient Balance");
    let balance: Value = http
        .get(s.url("/balance"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("balance")
        .json()
        .await
        .expect("json");
    assert_eq!(balance["balance"], 37_500);

    // The stored ledger reconciles with the balance (read after the server is gone).
    drop(ws);
    s.stop();
    let mut config = shared::config::Config::for_tests();
    config.data_dir = Some(dir.path().to_path_buf());
    let app = shared::App::from_config(config)
        .await
        .expect("open the store");
    let sum = app
        .wallets()
        .ledger_sum(&shared::domain::Username::from_stored("journey"))
        .await
        .expect("ledger");
    assert_eq!(sum.rupiah(), 37_500);
    assert_eq!(
        app.wallets()
            .read(&shared::domain::Username::from_stored("journey"))
            .await
            .expect("wallet")
            .balance,
        37_500
    );
}

#[tokio::test]
async fn a_failing_provider_gives_a_502_envelope_on_the_running_server() {
    let s = Server::start();
    let http = reqwest::Client::new();
    let user: Value = http
        .post(s.url("/_dev/users"))
        .json(&json!({ "username": "unlucky" }))
        .send()
        .await
        .expect("user")
        .json()
        .await
        .expect("json");
    let token = user["token"].as_str().expect("token");
    let res = http
        .post(s.url("/_dev/xendit/faults"))
        .json(&json!({ "mode": "error500" }))
        .send()
        .await
        .expect("fault");
    assert_eq!(res.status(), 200);
    let res = http
        .post(s.url("/payment-checkout"))
        .bearer_auth(token)
        .json(&json!({ "amount": 10_000, "description": "x" }))
        .send()
        .await
        .expect("checkout");
    assert_eq!(res.status(), 502);
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        (body["status"].clone(), body["errorCode"].clone()),
        (json!(false), json!(502))
    );
    let list: Value = http
        .get(s.url("/invoice/list/xendit"))
        .bearer_auth(token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn the_checkout_pages_expire_button_expires_the_invoice_and_cancel_is_owner_only() {
    let s = Server::start();
    let http = reqwest::Client::new();
    let mut tokens = Vec::new();
    for name in ["owner", "stranger"] {
        let u: Value = http
            .post(s.url("/_dev/users"))
            .json(&json!({ "username": name }))
            .send()
            .await
            .expect("user")
            .json()
            .await
            .expect("json");
        tokens.push(u["token"].as_str().expect("token").to_owned());
    }
    let checkout = |amount: i64| {
        http.post(s.url("/payment-checkout"))
            .bearer_auth(&tokens[0])
            .json(&json!({ "amount": amount, "description": "x" }))
            .send()
    };
    let co: Value = checkout(5_000)
        .await
        .expect("checkout")
        .json()
        .await
        .expect("json");
    let id = co["invoice_id"].as_str().expect("id");
    // The page's Expire button is a plain HTML form post.
    let res = http
        .post(s.url(&format!(
            "/_dev/xendit/invoices/{}/expire",
            co["id"].as_str().expect("xid")
        )))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .expect("expire");
    assert_eq!(res.status(), 200);
    let detail: Value = http
        .get(s.url(&format!("/invoice/detail?invoice_id={id}")))
        .send()
        .await
        .expect("d")
        .json()
        .await
        .expect("json");
    assert_eq!(detail["status"], "EXPIRED");

    let co: Value = checkout(6_000)
        .await
        .expect("checkout")
        .json()
        .await
        .expect("json");
    let id = co["invoice_id"].as_str().expect("id");
    let res = http
        .post(s.url("/invoice/cancel/xendit"))
        .bearer_auth(&tokens[1])
        .json(&json!({ "invoice_id": id }))
        .send()
        .await
        .expect("cancel");
    assert_eq!(res.status(), 404);
    let res = http
        .post(s.url("/invoice/cancel/xendit"))
        .bearer_auth(&tokens[0])
        .json(&json!({ "invoice_id": id }))
        .send()
        .await
        .expect("cancel");
    assert_eq!(res.status(), 200);
    let detail: Value = http
        .get(s.url(&format!("/invoice/detail?invoice_id={id}")))
        .send()
        .await
        .expect("d")
        .json()
        .await
        .expect("json");
    assert_eq!(detail["status"], "EXPIRED");
    let banks: Value = http
        .post(s.url("/bank/list"))
        .json(&json!({ "type": "DISBURSEMENT" }))
        .send()
        .await
        .expect("banks")
        .json()
        .await
        .expect("json");
    assert!(
        !banks["data"].as_array().expect("data").is_empty(),
        "serve seeds the bank list"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_invoice_stays_payable_after_the_server_restarts_on_its_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        data_dir: Some(dir.path().to_path_buf()),
        ..Options::default()
    };
    let s = Server::start_with(opts.clone());
    let http = reqwest::Client::new();
    let user: Value = http
        .post(s.url("/_dev/users"))
        .json(&json!({ "username": "restarter" }))
        .send()
        .await
        .expect("create user")
        .json()
        .await
        .expect("json");
    let token = user["token"].as_str().expect("token").to_owned();
    let co: Value = http
        .post(s.url("/payment-checkout"))
        .bearer_auth(&token)
        .json(&json!({ "amount": 15_000, "description": "Top up" }))
        .send()
        .await
        .expect("checkout")
        .json()
        .await
        .expect("json");
    let invoice_id = co["invoice_id"].as_str().expect("invoice id").to_owned();
    let page_path = co["invoice_url"]
        .as_str()
        .and_then(|u| u.find("/_dev/").map(|i| u[i..].to_owned()))
        .expect("invoice_url on the simulator");
    s.stop();

    // Restarted (on another free port): the hosted page and the payment still work.
    let s = Server::start_with(opts);
    let page = http.get(s.url(&page_path)).send().await.expect("page");
    assert_eq!(page.status(), 200, "the invoice page survives the restart");
    let paid: Value = http
        .post(s.url(&format!("/_dev/xendit/invoices/{invoice_id}/pay")))
        .json(&json!({}))
        .send()
        .await
        .expect("pay")
        .json()
        .await
        .expect("json");
    assert_eq!(paid["callback_status"], 200, "{paid}");
    let balance: Value = http
        .get(s.url("/balance"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("balance")
        .json()
        .await
        .expect("json");
    assert_eq!(balance["balance"], 15_000, "{balance}");
}
