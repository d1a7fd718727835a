//! Black-box, as deployed: `userstate stack` runs template.yaml's function binaries behind
//! emulated API Gateway (HTTP API payload 2.0, the callback's function URL, the WebSocket API
//! and its Management API), the notifier's SQS event source and the sync schedule, on moto,
//! with every AWS call checked against the calling function's template policy. One user
//! journey through all of it (see docs/STACK.md).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::SinkExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use tests::journey::{PNG, Ws, six_digits};
const PASSWORD: &str = "securePassword123";
const ORIGIN: &str = "http://localhost:3000";
const API_KEY: &str = "ops:stack-ops-key-0123456789abcdef0123";

struct Stack {
    child: Child,
    info: Value,
    http: reqwest::Client,
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds every function binary (debug) and starts the stack on free ports.
fn start() -> Stack {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "--bins"])
        .current_dir(&root)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the function binaries failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin_dir = target.join("debug");
    let mut child = Command::new(bin_dir.join("userstate"))
        .args([
            "stack",
            "--port",
            "0",
            "--queue-visibility",
            "1",
            "--api-key",
            API_KEY,
            "--bin-dir",
        ])
        .arg(&bin_dir)
        .arg("--template")
        .arg(root.join("template.yaml"))
        .env("USERSTATE_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("userstate stack starts");
    // The functions' log lines (the stack prints them to stderr, prefixed with the binary).
    let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stderr = child.stderr.take().expect("stderr");
    let sink = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if let Ok(mut l) = sink.lock() {
                l.push(line);
            }
        }
    });
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            match serde_json::from_str::<Value>(&line) {
                Ok(v) if v.get("http_api").is_some() => {
                    let _ = tx.send(v);
                }
                _ => eprintln!("{line}"),
            }
        }
    });
    let info = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the stack prints its endpoints");
    Stack {
        child,
        info,
        http: reqwest::Client::new(),
        logs,
    }
}

impl Stack {
    fn at(&self, key: &str, path: &str) -> String {
        format!("{}{path}", self.info[key].as_str().expect("endpoint"))
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        bearer: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.parse().expect("method"), self.at("http_api", path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn control(&self, path: &str) -> Value {
        self.http
            .get(self.at("control", path))
            .send()
            .await
            .expect("control")
            .json()
            .await
            .expect("json")
    }

    /// Polls the stack's SMS capture (or SES mailbox) until a text to `to` arrives.
    async fn message_to(&self, path: &str, to: &str) -> Value {
        for _ in 0..100 {
            let list = self.control(path).await;
            let found = list.as_array().into_iter().flatten().find(|m| {
                m["to"] == to
                    || m["to"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == to))
            });
            if let Some(m) = found {
                return m.clone();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("no message to {to} at {path} within 20 s");
    }

    async fn moto_sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(self.info["moto"].as_str().expect("moto"))
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "t",
            ))
            .load()
            .await
    }
}

async fn next_json(ws: &mut Ws) -> Value {
    tests::journey::next_json_within(ws, 20).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_journey_through_the_deployed_template_on_emulated_aws() {
    if tests::dynamo::emulator_sdk("stack_journey").await.is_none() {
        return;
    }
    let s = start();

    // A browser may send Idempotency-Key and read Retry-After / x-request-id (API Gateway answers
    // the preflight from the template's CorsConfiguration).
    let pre = s
        .http
        .request(
            reqwest::Method::OPTIONS,
            s.at("http_api", "/balance/decrease"),
        )
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,idempotency-key",
        )
        .send()
        .await
        .expect("preflight");
    assert_eq!(pre.status(), StatusCode::NO_CONTENT);
    let allowed = pre.headers()["access-control-allow-headers"]
        .to_str()
        .expect("text")
        .to_owned();
    assert!(allowed.contains("idempotency-key"), "{allowed}");
    assert_eq!(pre.headers()["access-control-allow-origin"], ORIGIN);
    let health = s
        .http
        .get(s.at("http_api", "/health"))
        .header("origin", ORIGIN)
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), StatusCode::OK);
    let exposed = health.headers()["access-control-expose-headers"]
        .to_str()
        .expect("text")
        .to_owned();
    assert!(
        exposed.contains("retry-after") && exposed.contains("x-request-id"),
        "{exposed}"
    );

    // The README's smoke test of a deployed stack passes against this one.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let smoke = Command::new("bash")
        .arg(root.join("scripts/smoke.sh"))
        .arg(s.info["http_api"].as_str().expect("api"))
        .output()
        .expect("smoke.sh runs");
    assert!(
        smoke.status.success(),
        "{}",
        String::from_utf8_lossy(&smoke.stdout)
    );

    // OTP signup: the code arrives by SMS through the queue and the notifier.
    let phone = "628123400001";
    let (st, b) = s
        .call("POST", "/signup", Some(json!({"username": "stacker", "password": PASSWORD,
            "email": "stacker@example.com", "full_name": "Stack Er", "phone_number": phone, "mode": "OTP"})), None)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let reg = b["token"].as_str().expect("registration token").to_owned();
    let sms = s.message_to("/_stack/sms", phone).await;
    let otp = six_digits(sms["text"].as_str().expect("text"));
    let (st, b) = s
        .call(
            "POST",
            "/verify-sign-up",
            Some(json!({"otp": otp})),
            Some(&reg),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");

    // LINK signup: the link arrives by SES mail and verifies when followed.
    let (st, b) = s
        .call(
            "POST",
            "/signup",
            Some(json!({"username": "john_doe", "password": PASSWORD,
            "email": "linker@example.com", "full_name": "Link Er", "mode": "LINK"})),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let mail = s.message_to("/_stack/mail", "linker@example.com").await;
    let text = format!(
        "{} {}",
        mail["text"].as_str().unwrap_or(""),
        mail["html"].as_str().unwrap_or("")
    );
    let start_at = text.find("http").expect("a link");
    let link: String = text[start_at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
        .collect();
    assert!(
        link.starts_with(s.info["http_api"].as_str().expect("api"))
            && link.contains("/verify-sign-up?token="),
        "{link}"
    );
    let res = s.http.get(&link).send().await.expect("follow the link");
    assert!(res.status().is_success(), "{}", res.status());
    let (st, b) = s
        .call(
            "POST",
            "/auth",
            Some(json!({"username": "john_doe", "password": PASSWORD})),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");

    // The README's `cargo lambda invoke` flow against the stack's Invoke API: three functions
    // in one session on one store, the login event's token substituted into the balance event.
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let event = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(events.join(name)).expect("event"))
            .expect("json")
    };
    let invoke = |function: &str, body: Value| {
        let url = s.at(
            "control",
            &format!("/2015-03-31/functions/{function}/invocations"),
        );
        let http = s.http.clone();
        async move {
            let res = http.post(url).json(&body).send().await.expect("invoke");
            let failed = res.headers().contains_key("x-amz-function-error");
            (
                res.status(),
                failed,
                res.json::<Value>().await.expect("payload"),
            )
        }
    };
    let (st, failed, health) = invoke("health", event("health.json")).await;
    assert_eq!(
        (st, failed, health["statusCode"].as_u64()),
        (StatusCode::OK, false, Some(200)),
        "{health}"
    );
    let (_, _, login) = invoke("auth", event("auth-login.json")).await;
    assert_eq!(login["statusCode"], 200, "{login}");
    let login_body: Value =
        serde_json::from_str(login["body"].as_str().expect("body")).expect("json");
    let jwt = login_body["token"].as_str().expect("token").to_owned();
    let balance_event = event("payment-balance.json")
        .to_string()
        .replace("<jwt-from-POST-/auth>", &jwt);
    let (_, _, balance) = invoke(
        "payment",
        serde_json::from_str(&balance_event).expect("json"),
    )
    .await;
    assert_eq!(balance["statusCode"], 200, "{balance}");
    let (st, _, _) = invoke("no-such-function", json!({})).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Login, profile and address.
    let (st, b) = s
        .call(
            "POST",
            "/auth",
            Some(json!({"username": "stacker", "password": PASSWORD})),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let token = b["token"].as_str().expect("token").to_owned();
    let (st, b) = s.call("GET", "/user/profile", None, Some(&token)).await;
    assert_eq!(
        (st, b["username"].as_str()),
        (StatusCode::OK, Some("stacker")),
        "{b}"
    );
    let addr = json!({"label": "Home", "recipient_name": "S", "phone_number": phone, "address": "Jl. Stack No. 1"});
    let (st, b) = s.call("POST", "/address", Some(addr), Some(&token)).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let (_, list) = s.call("GET", "/address/list", None, Some(&token)).await;
    assert_eq!(list[0]["label"], "Home", "{list}");

    // Push: a registered device receives an admin push through the queue, the notifier and
    // FCM (the fake checks the service account's signed assertion).
    let device = "stack-device-token-0123456789-abcdef";
    let (st, b) = s
        .call(
            "POST",
            "/fcm/register",
            Some(json!({"token": device, "device_type": "android"})),
            Some(&token),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, API_KEY);
    let res = s
        .http
        .post(s.at("http_api", "/fcm/send"))
        .header("authorization", format!("Basic {basic}"))
        .json(&json!({"username": "stacker", "title": "Hello", "body": "From the stack", "data": {"k": "1"}}))
        .send()
        .await
        .expect("push");
    let st = res.status();
    assert_eq!(
        st,
        StatusCode::ACCEPTED,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let push = s.message_to("/_stack/push", device).await;
    assert_eq!(push["message"]["notification"]["title"], "Hello", "{push}");

    // Image upload to S3, served from the stable /resources URL (not a presigned one).
    let url = tests::journey::upload_profile_png(
        &s.http,
        &s.at("http_api", "/user/update-profile-img"),
        &format!("Bearer {token}"),
        "me.png",
        "image/png",
    )
    .await;
    assert!(
        url.starts_with(&s.at("http_api", "/resources/user_profile_img/")),
        "{url}"
    );
    assert!(!url.contains("X-Amz-"), "not presigned: {url}");
    let img = s.http.get(&url).send().await.expect("image");
    assert_eq!(img.status(), StatusCode::OK);
    assert_eq!(img.bytes().await.expect("bytes").as_ref(), PNG);

    // The WebSocket API: $connect refuses a missing token; a subscriber gets its reply.
    let ws_base = s.info["websocket"].as_str().expect("ws").to_owned();
    match tokio_tungstenite::connect_async(ws_base.clone()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert!(r.status().is_client_error(), "{}", r.status())
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("$connect must refuse a connection without a token"),
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{ws_base}?token={token}"))
        .await
        .expect("ws");
    ws.send(Message::Text(
        json!({"action": "subscribe:payment"}).to_string().into(),
    ))
    .await
    .expect("send");
    assert_eq!(next_json(&mut ws).await["event"], "subscribed");

    // Checkout, paid at the simulator; its callback reaches the callback function through the
    // function URL, and 20 parallel re-deliveries credit nothing more.
    let (st, co) = s
        .call(
            "POST",
            "/payment-checkout",
            Some(json!({"amount": 200_000, "description": "Top up"})),
            Some(&token),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{co}");
    let xendit_id = co["id"].as_str().expect("xendit id").to_owned();
    let invoice_id = co["invoice_id"].as_str().expect("invoice id").to_owned();
    let paid: Value = s
        .http
        .post(s.at("xendit", &format!("/invoices/{xendit_id}/pay")))
        .send()
        .await
        .expect("pay")
        .json()
        .await
        .expect("json");
    assert_eq!(paid["callback_status"], 200, "{paid}");
    let replays = futures::future::join_all((0..20).map(|_| {
        let url = s.at("xendit", &format!("/invoices/{xendit_id}/callback"));
        let http = s.http.clone();
        async move {
            http.post(url)
                .send()
                .await
                .expect("replay")
                .json::<Value>()
                .await
                .expect("json")
        }
    }))
    .await;
    assert!(
        replays.iter().all(|r| r["callback_status"] == 200),
        "{replays:?}"
    );
    let (_, bal) = s.call("GET", "/balance", None, Some(&token)).await;
    assert_eq!(bal["balance"], 200_000, "credited exactly once: {bal}");
    let ev = next_json(&mut ws).await;
    assert_eq!(
        (ev["event"].as_str(), ev["data"]["status"].as_str()),
        (Some("payment:status:update"), Some("PAID")),
        "{ev}"
    );
    assert_eq!(ev["data"]["invoice_id"], invoice_id.as_str());

    // 100 parallel debits of 3 000: exactly the 66 the balance affords succeed.
    let debits = futures::future::join_all((0..100).map(|i| {
        let http = s.http.clone();
        let url = s.at("http_api", "/balance/decrease");
        let token = token.clone();
        async move {
            http.post(url)
                .bearer_auth(token)
                .header("idempotency-key", format!("stack-debit-{i}"))
                .json(&json!({"amount": 3_000, "description": "Purchase"}))
                .send()
                .await
                .expect("debit")
                .status()
        }
    }))
    .await;
    let ok = debits.iter().filter(|st| **st == StatusCode::OK).count();
    let refused = debits
        .iter()
        .filter(|st| **st == StatusCode::BAD_REQUEST)
        .count();
    assert_eq!((ok, refused), (66, 34), "{debits:?}");
    let (_, bal) = s.call("GET", "/balance", None, Some(&token)).await;
    assert_eq!(bal["balance"], 2_000, "{bal}");

    // The schedule: a pending invoice that expired at Xendit (no callback) is expired by the
    // next scheduled sync.
    let (st, co) = s
        .call(
            "POST",
            "/payment-checkout",
            Some(json!({"amount": 10_000, "description": "Later"})),
            Some(&token),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{co}");
    let pending = co["invoice_id"].as_str().expect("invoice id").to_owned();
    let expired = s
        .http
        .post(s.at(
            "xendit",
            &format!("/invoices/{}/expire", co["id"].as_str().expect("id")),
        ))
        .json(&json!({"deliver": false}))
        .send()
        .await
        .expect("expire");
    assert_eq!(expired.status(), StatusCode::OK);
    let tick = s
        .http
        .post(s.at("control", "/_stack/tick"))
        .send()
        .await
        .expect("tick");
    let tick_status = tick.status();
    assert_eq!(
        tick_status,
        StatusCode::OK,
        "{}",
        tick.text().await.unwrap_or_default()
    );
    let (_, detail) = s
        .call(
            "GET",
            &format!("/invoice/detail?invoice_id={pending}"),
            None,
            None,
        )
        .await;
    assert_eq!(detail["status"], "EXPIRED", "{detail}");

    // A failing SMS gateway: the notifier reports the message failed, the queue redelivers it
    // and after maxReceiveCount (5) receives it is in the dead-letter queue.
    let unlucky = "628123400009";
    let fail = s
        .http
        .post(s.at("control", "/_stack/sms/fail"))
        .json(&json!({"to": unlucky}))
        .send()
        .await
        .expect("fail");
    assert!(fail.status().is_success());
    let (st, b) = s
        .call("POST", "/signup", Some(json!({"username": "unlucky", "password": PASSWORD,
            "email": "unlucky@example.com", "full_name": "Un Lucky", "phone_number": unlucky, "mode": "OTP"})), None)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let sqs = aws_sdk_sqs::Client::new(&s.moto_sdk().await);
    let dlq = s.info["resources"]["NotifyDeadLetterQueue"]
        .as_str()
        .expect("dlq url")
        .to_owned();
    let mut dead = Vec::new();
    for _ in 0..60 {
        let got = sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive from the DLQ");
        dead.extend(got.messages.unwrap_or_default());
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(dead.len(), 1, "the failing SMS is dead-lettered");
    let receives = dead[0]
        .attributes
        .as_ref()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        })
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    assert!(receives >= 5, "dead-lettered after {receives} receives");
    let body = dead[0].body.clone().unwrap_or_default();
    assert!(
        !body.contains(unlucky),
        "the queued job carries no phone number in clear: {body}"
    );

    // No secret value is in any function's configuration; every AWS call of every function was
    // one its template policy allows.
    let functions = s.control("/_stack/functions").await;
    let sm = aws_sdk_secretsmanager::Client::new(&s.moto_sdk().await);
    let stack = s.info["stack"].as_str().expect("stack").to_owned();
    let listed = sm.list_secrets().send().await.expect("secrets");
    let mut values = Vec::new();
    for secret in listed
        .secret_list()
        .iter()
        .filter(|x| x.name().is_some_and(|n| n.starts_with(&stack)))
    {
        let v = sm
            .get_secret_value()
            .secret_id(secret.name().unwrap_or_default())
            .send()
            .await
            .expect("value");
        let parsed: Value =
            serde_json::from_str(v.secret_string().unwrap_or("{}")).expect("json secret");
        values.extend(
            parsed
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(_, v)| v.as_str().map(str::to_owned)),
        );
    }
    assert!(values.len() >= 4, "{values:?}");
    // No function logged a secret, a session token, an OTP or a phone number in clear, and the
    // lines logged during an invocation carry its X-Ray trace id.
    let lines = s.logs.lock().map(|l| l.clone()).unwrap_or_default();
    let function_lines: Vec<&String> = lines.iter().filter(|l| l.starts_with('[')).collect();
    assert!(
        function_lines.len() > 50,
        "{} function log lines",
        function_lines.len()
    );
    for line in &function_lines {
        for v in values.iter().map(String::as_str).chain([
            token.as_str(),
            otp.as_str(),
            jwt.as_str(),
            phone,
            unlucky,
        ]) {
            assert!(
                !line.contains(v),
                "a log line holds a secret, token, OTP or phone number: {line}"
            );
        }
    }
    assert!(
        function_lines.iter().any(|l| l.starts_with("[payment]")
            && l.contains("finished processing request")
            && l.contains("xrayTraceId")),
        "the payment function's access lines carry the trace id"
    );
    for (name, f) in functions.as_object().expect("functions") {
        let env = f["environment"].to_string();
        for v in &values {
            assert!(
                !env.contains(v.as_str()),
                "{name}'s environment holds a secret value"
            );
        }
        assert!(
            env.len() < 2_048,
            "{name}'s environment is {} bytes",
            env.len()
        );
    }
    let calls = s.control("/_stack/calls").await;
    assert_eq!(
        calls["denied"],
        json!([]),
        "every AWS call was allowed: {calls}"
    );
    for (function, action) in [
        ("AuthFunction", "dynamodb:PutItem"),
        ("AuthFunction", "sqs:SendMessage"),
        ("NotifierFunction", "ses:SendEmail"),
        ("UserFunction", "s3:PutObject"),
        ("XenditCallbackFunction", "secretsmanager:GetSecretValue"),
        ("WsFunction", "execute-api:ManageConnections"),
    ] {
        let n = calls["calls"][function][action].as_u64().unwrap_or(0);
        assert!(n > 0, "{function} made no {action} call: {calls}");
    }

    // And the check can fail: a call the health function's policy does not grant is refused
    // with AWS's AccessDeniedException and recorded with the function named.
    let conf = aws_sdk_dynamodb::config::Builder::from(&s.moto_sdk().await)
        .endpoint_url(s.info["aws_endpoint"].as_str().expect("aws endpoint"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "STACKHEALTHFUNCTION000",
            "x",
            None,
            None,
            "t",
        ))
        .build();
    let main = s.info["resources"]["MainTable"]
        .as_str()
        .expect("table")
        .to_owned();
    let err = aws_sdk_dynamodb::Client::from_conf(conf)
        .get_item()
        .table_name(&main)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("USER#stacker".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("PROFILE".into()),
        )
        .send()
        .await
        .expect_err("health may not read the main table");
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("AccessDeniedException")
    );
    let calls = s.control("/_stack/calls").await;
    assert_eq!(calls["denied"][0]["function"], "HealthFunction", "{calls}");
    assert_eq!(calls["denied"][0]["action"], "dynamodb:GetItem", "{calls}");
}
