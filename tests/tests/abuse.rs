//! Black-box abuse: hostile bodies, content types, encodings, injection-looking strings, unicode
//! identifiers, header spoofing, token tampering and path traversal against the running server.
//! Every refusal is the error envelope with a 4xx, nothing is written, and nothing is a 5xx.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::server::{Options, Server};

const SECRET: &str = "abuse-test-secret-0123456789-abcdefghijklmnop";

struct Client {
    server: Server,
    http: reqwest::Client,
}

impl Client {
    fn start() -> Client {
        Client::start_with(Options::default())
    }

    fn start_with(mut opts: Options) -> Client {
        opts.env.push(("SECRET_AUTH_CONFIG".into(), SECRET.into()));
        Client {
            server: Server::start_with(opts),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        bearer: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.server.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.raw(
            reqwest::Method::POST,
            path,
            Some("application/json"),
            serde_json::to_vec(body).expect("json"),
            None,
        )
        .await
    }

    async fn get(&self, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
        self.raw(reqwest::Method::GET, path, None, Vec::new(), bearer)
            .await
    }

    async fn email_available(&self, email: &str) -> bool {
        let (s, b) = self.post("/check/email", &json!({ "email": email })).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["available"].as_bool().expect("available")
    }

    /// A verified, logged-in user: OTP signup, code from the dev outbox, verify, login.
    async fn session(&self, username: &str, phone: &str) -> String {
        let (s, b) = self
            .post(
                "/signup",
                &json!({
                    "username": username, "password": "Correct-horse-1",
                    "email": format!("{username}@example.com"), "full_name": "Abuse Test",
                    "phone_number": phone, "mode": "OTP"
                }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let reg = b["token"].as_str().expect("token").to_owned();
        let mut otp = None;
        for _ in 0..30 {
            let (_, list) = self.get(&format!("/_dev/outbox?to={phone}"), None).await;
            if let Some(body) = list
                .as_array()
                .and_then(|l| l.last())
                .map(|m| m["body"].clone())
            {
                otp = body
                    .as_str()
                    .and_then(|b| {
                        b.split(|c: char| !c.is_ascii_digit())
                            .find(|w| w.len() == 6)
                    })
                    .map(str::to_owned);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let otp = otp.expect("an OTP in the outbox");
        let (s, b) = self
            .raw(
                reqwest::Method::POST,
                "/verify-sign-up",
                Some("application/json"),
                serde_json::to_vec(&json!({ "otp": otp })).expect("json"),
                Some(&reg),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, b) = self
            .post(
                "/auth",
                &json!({"username": username, "password": "Correct-horse-1"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["token"].as_str().expect("token").to_owned()
    }
}

/// Asserts the error envelope and that the status is the expected 4xx.
#[track_caller]
fn assert_envelope(status: StatusCode, body: &Value, expected: u16) {
    assert_eq!(status.as_u16(), expected, "status; body = {body}");
    assert_envelope_4xx(status, body);
}

/// Asserts a 4xx error envelope (any 4xx).
#[track_caller]
fn assert_envelope_4xx(status: StatusCode, body: &Value) {
    assert!(
        status.is_client_error(),
        "expected a 4xx, got {status}: {body}"
    );
    assert_eq!(
        body["status"],
        Value::Bool(false),
        "envelope.status in {body}"
    );
    assert_eq!(
        body["errorCode"],
        status.as_u16(),
        "envelope.errorCode in {body}"
    );
    assert!(body["message"].is_string(), "envelope.message in {body}");
    assert!(body["errors"].is_array(), "envelope.errors in {body}");
}

fn signup_body(username: &str, email: &str) -> Value {
    json!({
        "username": username, "password": "Correct-horse-1", "email": email,
        "full_name": "Abuse Test", "mode": "LINK"
    })
}

#[tokio::test]
async fn json_nested_100k_levels_deep_is_a_quick_400_envelope() {
    let c = Client::start();
    for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
        let body = format!("{}1{}", open.repeat(100_000), close.repeat(100_000));
        for path in ["/signup", "/auth", "/check/email"] {
            let started = Instant::now();
            let (s, b) = c
                .raw(
                    reqwest::Method::POST,
                    path,
                    Some("application/json"),
                    body.clone().into_bytes(),
                    None,
                )
                .await;
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{path} took {:?}",
                started.elapsed()
            );
            assert_envelope(s, &b, 400);
        }
    }
    // The server is still fine afterwards.
    let (s, _) = c.get("/health", None).await;
    assert_eq!(s, StatusCode::OK);
}

/// Sends a request over a raw socket, writing the body while reading the answer (a server may
/// answer 413 from the headers and close before the body is through).
async fn raw_http(base: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len(),
    );
    wr.write_all(head.as_bytes()).await.expect("head");
    let writer = tokio::spawn(async move {
        for chunk in body.chunks(64 * 1024) {
            if wr.write_all(chunk).await.is_err() {
                return; // the server stopped reading: expected
            }
        }
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 10 s");
    writer.abort();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn ten_megabyte_bodies_are_413_envelopes_and_create_nothing() {
    let c = Client::start();
    let mut body = signup_body("bigbody", "bigbody@example.com");
    body["full_name"] = Value::String("x".repeat(10 * 1024 * 1024));
    let json_body = serde_json::to_vec(&body).expect("json");
    let mut padded = b"{\"username\":\"a\",\"password\":\"b\"}".to_vec();
    padded.extend(std::iter::repeat_n(b' ', 10 * 1024 * 1024));
    for (path, payload) in [
        ("/signup", json_body),
        ("/auth", vec![b'a'; 10 * 1024 * 1024]),
        ("/auth", padded),
    ] {
        let started = Instant::now();
        let (status, b) = raw_http(&c.server.base, path, payload).await;
        assert!(started.elapsed() < Duration::from_secs(10));
        let status = StatusCode::from_u16(status).expect("a status line");
        assert_envelope(status, &b, 413);
    }
    assert!(
        c.email_available("bigbody@example.com").await,
        "nothing written"
    );
}

#[tokio::test]
async fn wrong_content_types_are_415_envelopes_and_create_nothing() {
    let c = Client::start();
    let body = serde_json::to_vec(&signup_body("ctype", "ctype@example.com")).expect("json");
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/xml"),
        Some("application/jsonx"),
        Some("text/json"),
    ] {
        let (s, b) = c
            .raw(reqwest::Method::POST, "/signup", ct, body.clone(), None)
            .await;
        assert_envelope(s, &b, 415);
    }
    assert!(
        c.email_available("ctype@example.com").await,
        "nothing written"
    );
    // A form-encoded login is refused the same way.
    let (s, b) = c
        .raw(
            reqwest::Method::POST,
            "/auth",
            Some("application/x-www-form-urlencoded"),
            b"username=a&password=b".to_vec(),
            None,
        )
        .await;
    assert_envelope(s, &b, 415);
}

#[tokio::test]
async fn invalid_utf8_bodies_are_400_envelopes_and_create_nothing() {
    let c = Client::start();
    let mut bad_string = b"{\"username\":\"utf".to_vec();
    bad_string.extend([0xff, 0xfe, 0xc3]);
    bad_string.extend(
        b"\",\"password\":\"Correct-horse-1\",\"email\":\"utf8@example.com\",\"full_name\":\"x\"}",
    );
    for body in [
        vec![0xff, 0xfe, 0xfd],
        vec![0xef, 0xbb, 0xbf, b'{', b'}'], // a BOM before the JSON
        bad_string,
        b"{\"username\":\"\\ud800\"}".to_vec(), // a lone surrogate escape
    ] {
        for path in ["/signup", "/auth"] {
            let (s, b) = c
                .raw(
                    reqwest::Method::POST,
                    path,
                    Some("application/json"),
                    body.clone(),
                    None,
                )
                .await;
            assert_envelope(s, &b, 400);
        }
    }
    assert!(
        c.email_available("utf8@example.com").await,
        "nothing written"
    );
}

#[tokio::test]
async fn numbers_and_other_types_where_strings_are_expected_are_400_envelopes() {
    let c = Client::start();
    let weird: [Value; 9] = [
        json!(1e308),
        json!(-1),
        json!(0.5),
        json!(-9_223_372_036_854_775_808_i64),
        json!(18_446_744_073_709_551_615_u64),
        json!(true),
        json!(null),
        json!(["a"]),
        json!({"$gt": ""}),
    ];
    let base = signup_body("types", "types@example.com");
    for field in ["username", "password", "email", "full_name"] {
        for v in &weird {
            let mut body = base.clone();
            body[field] = v.clone();
            let (s, b) = c.post("/signup", &body).await;
            assert_envelope(s, &b, 400);
        }
    }
    // Numbers too large for any integer type, as raw JSON text.
    let (s, b) = c
        .raw(
            reqwest::Method::POST,
            "/auth",
            Some("application/json"),
            b"{\"username\": 1e999999, \"password\": -0.000000000000000000000001}".to_vec(),
            None,
        )
        .await;
    assert_envelope(s, &b, 400);
    // Duplicate keys are refused, not resolved silently.
    let (s, b) = c
        .raw(
            reqwest::Method::POST,
            "/auth",
            Some("application/json"),
            b"{\"username\":\"a\",\"username\":\"b\",\"password\":\"c\"}".to_vec(),
            None,
        )
        .await;
    assert_envelope(s, &b, 400);
    for field in ["username", "password"] {
        for v in &weird {
            let mut body = json!({"username": "someone", "password": "Correct-horse-1"});
            body[field] = v.clone();
            let (s, b) = c.post("/auth", &body).await;
            assert_envelope(s, &b, 400);
        }
    }
    assert!(
        c.email_available("types@example.com").await,
        "nothing written"
    );
}

const INJECTIONS: [&str; 10] = [
    "' OR 1=1 --",
    "\" OR \"\"=\"",
    "admin'--",
    "{\"$gt\":\"\"}",
    "{\"$ne\":null}",
    "USER#admin",
    "EMAIL#admin@example.com",
    "../../etc/passwd",
    "%00",
    "<script>alert(1)</script>",
];

#[tokio::test]
async fn injection_strings_in_every_signup_and_login_field_never_5xx_and_create_nothing() {
    let c = Client::start_with(Options {
        env: vec![
            ("RATE_LIMIT_SIGNUP_IP".into(), "1000/3600".into()),
            ("RATE_LIMIT_LOGIN_IP".into(), "1000/300".into()),
            ("RATE_LIMIT_LOGIN_ACCOUNT".into(), "1000/300".into()),
            ("RATE_LIMIT_CHECK_EMAIL_IP".into(), "1000/60".into()),
        ],
        ..Options::default()
    });
    // Victim account: injections must not log in as it nor alter it.
    let (s, b) = c
        .post("/signup", &signup_body("admin", "admin@example.com"))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    for (i, evil) in INJECTIONS.iter().enumerate() {
        // Identifier fields: the value is invalid, so a clean 400 and no account.
        for field in ["username", "email", "phone_number", "referral_code", "mode"] {
            let email = format!("inj{i}{field}@example.com");
            let mut body = signup_body(&format!("inj{i}_{field}"), &email);
            body[field] = Value::String((*evil).to_owned());
            let (s, b) = c.post("/signup", &body).await;
            if field == "email" && s == StatusCode::CREATED {
                // `EMAIL#admin@example.com` is a syntactically valid address: an account of its
                // own, which must not collide with the guard of `admin@example.com`.
                assert!(evil.contains('@'), "{evil} accepted as e-mail");
                let (s, b) = c.post("/signup", &body).await;
                assert_envelope(s, &b, 409);
                continue;
            }
            assert_envelope(s, &b, 400);
            let probe = if field == "email" {
                evil
            } else {
                email.as_str()
            };
            if field != "email" || probe.contains('@') {
                assert!(
                    c.email_available(probe).await,
                    "{field}={evil}: nothing written"
                );
            }
        }
        assert!(
            !c.email_available("admin@example.com").await,
            "the victim's e-mail is still taken"
        );
        // Free-text fields: stored as text, the signup behaves normally, exactly once.
        for field in ["full_name", "password"] {
            let email = format!("text{i}{field}@example.com");
            let mut body = signup_body(&format!("text{i}_{}", &field[..4]), &email);
            body[field] = Value::String(format!("{evil} {evil} {evil}"));
            let (s, b) = c.post("/signup", &body).await;
            assert_eq!(s, StatusCode::CREATED, "{field}={evil}: {b}");
            assert!(!c.email_available(&email).await);
            let (s, b) = c.post("/signup", &body).await;
            assert_envelope(s, &b, 409);
        }
        // Login: never a success, never a 5xx; the victim is untouched.
        for body in [
            json!({"username": evil, "password": evil}),
            json!({"username": "admin", "password": evil}),
            json!({"username": format!("admin{evil}"), "password": "Correct-horse-1"}),
        ] {
            let (s, b) = c.post("/auth", &body).await;
            assert_envelope(s, &b, 422);
        }
        let (s, b) = c.post("/check/email", &json!({ "email": evil })).await;
        assert!(s == StatusCode::OK || s.is_client_error(), "{s} {b}");
        if s.is_client_error() {
            assert_envelope_4xx(s, &b);
        }
    }
    // The victim still cannot log in before verification (403), i.e. nothing flipped its state.
    let (s, b) = c
        .post(
            "/auth",
            &json!({"username": "admin", "password": "Correct-horse-1"}),
        )
        .await;
    assert_envelope(s, &b, 403);
}

#[tokio::test]
async fn unicode_usernames_are_refused_and_emails_are_unique_after_case_folding_and_nfkc() {
    let c = Client::start();
    for username in [
        "jöhn",
        "ＪＯＨＮ",
        "john\u{200b}doe",
        "иван",
        "j\u{0301}ohn",
        "😀😀😀",
    ] {
        let (s, b) = c
            .post("/signup", &signup_body(username, "uni@example.com"))
            .await;
        assert_envelope(s, &b, 400);
        assert_eq!(b["errors"][0]["field"], "username", "{b}");
    }
    assert!(
        c.email_available("uni@example.com").await,
        "nothing written"
    );

    // ASCII case.
    let (s, b) = c.post("/signup", &signup_body("casea", "A@x.com")).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = c.post("/signup", &signup_body("caseb", "a@X.COM")).await;
    assert_envelope(s, &b, 409);
    assert!(!c.email_available("a@x.COM").await);

    // Non-ASCII case folding (Ö / ö) and surrounding whitespace.
    let (s, b) = c
        .post("/signup", &signup_body("unia", "JÖRG@Exämple.com"))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = c
        .post("/signup", &signup_body("unib", "  jörg@exÄmple.COM "))
        .await;
    assert_envelope(s, &b, 409);

    // Composed and decomposed accents, and full-width letters, are the same address.
    let (s, b) = c
        .post("/signup", &signup_body("nfca", "Jos\u{e9}@example.com"))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = c
        .post("/signup", &signup_body("nfcb", "jose\u{301}@example.com"))
        .await;
    assert_envelope(s, &b, 409);
    let (s, b) = c
        .post("/signup", &signup_body("wide", "john@example.com"))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = c
        .post(
            "/signup",
            &signup_body("widedup", "\u{ff4a}\u{ff4f}\u{ff48}\u{ff4e}@example.com"),
        )
        .await;
    assert_envelope(s, &b, 409);

    // Usernames are case-insensitive too.
    let (s, b) = c
        .post("/signup", &signup_body("MiXeD", "mixed1@example.com"))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = c
        .post("/signup", &signup_body("mixed", "mixed2@example.com"))
        .await;
    assert_envelope(s, &b, 409);

    // Control characters and spaces inside an e-mail are refused.
    for email in [
        "a b@example.com",
        "ab@exa\u{0000}mple.com",
        "ab@example.com\r\nBcc: x@y.z",
    ] {
        let (s, b) = c.post("/signup", &signup_body("ctrlmail", email)).await;
        assert_envelope(s, &b, 400);
    }
}

#[tokio::test]
async fn x_forwarded_for_spoofing_does_not_bypass_the_login_ip_limit() {
    let c = Client::start_with(Options {
        env: vec![("RATE_LIMIT_LOGIN_IP".into(), "5/300".into())],
        ..Options::default()
    });
    for i in 0..5 {
        let res = c
            .http
            .post(c.server.url("/auth"))
            .header("x-forwarded-for", format!("10.0.0.{i}"))
            .header("x-real-ip", format!("10.0.1.{i}"))
            .header("forwarded", format!("for=10.0.2.{i}"))
            .json(&json!({"username": format!("nobody{i}"), "password": "Wrong-password-1"}))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    for i in 5..8 {
        let res = c
            .http
            .post(c.server.url("/auth"))
            .header("x-forwarded-for", format!("192.168.{i}.1, 10.0.0.{i}"))
            .header("x-real-ip", format!("172.16.0.{i}"))
            .json(&json!({"username": format!("nobody{i}"), "password": "Wrong-password-1"}))
            .send()
            .await
            .expect("request");
        let status = res.status();
        assert!(res.headers().contains_key("retry-after"));
        let body: Value = res.json().await.expect("json");
        assert_envelope(status, &body, 429);
    }
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

#[tokio::test]
async fn tampered_jwts_are_401_envelopes() {
    let c = Client::start();
    let token = c.session("jwtowner", "628111000001").await;
    c.session("jwtvictim", "628111000002").await;
    let (s, b) = c.get("/verify", Some(&token)).await;
    assert_eq!(s, StatusCode::OK, "control: the real token works: {b}");

    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = decode_part(parts[0]);
    let claims = decode_part(parts[1]);
    assert_eq!(header["alg"], "HS256");

    let mut forged = Vec::new();
    // Payload changed (another user, agent rights, longer expiry), signature kept.
    for (k, v) in [
        ("user", json!("jwtvictim")),
        ("agent", json!(true)),
        (
            "exp",
            json!(claims["exp"].as_i64().expect("exp") + 86_400 * 365),
        ),
    ] {
        let mut c2 = claims.clone();
        c2[k] = v;
        forged.push(format!("{}.{}.{}", parts[0], b64json(&c2), parts[2]));
    }
    // alg none, with and without a signature; alg switched to HS512 / RS256.
    for alg in ["none", "None", "NONE"] {
        let h = json!({"alg": alg, "typ": "JWT"});
        forged.push(format!("{}.{}.", b64json(&h), parts[1]));
        forged.push(format!("{}.{}.{}", b64json(&h), parts[1], parts[2]));
    }
    for alg in ["HS512", "RS256"] {
        let h = json!({"alg": alg, "typ": "JWT"});
        forged.push(format!("{}.{}.{}", b64json(&h), parts[1], parts[2]));
    }
    // Signed with another key (same claims), and with the empty key.
    let claims_typed: shared::auth::token::Claims =
        serde_json::from_value(claims.clone()).expect("claims");
    for key in ["another-secret-of-sufficient-length-0123456789", ""] {
        forged.push(
            shared::auth::token::sign(&shared::config::Secret::new(key), &claims_typed)
                .expect("sign"),
        );
    }
    // Truncated / garbled signatures and structure.
    forged.push(format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        &parts[2][..parts[2].len() - 2]
    ));
    forged.push(format!("{}.{}", parts[0], parts[1]));
    forged.push(format!(
        "{}.{}.{}.{}",
        parts[0], parts[1], parts[2], parts[2]
    ));
    forged.push("not-a-jwt".into());

    for t in &forged {
        for path in ["/verify", "/extend"] {
            let (s, b) = c.get(path, Some(t)).await;
            assert_envelope(s, &b, 401);
        }
    }
    // Control: the same claims signed with the server's key are accepted, so the refusals above
    // are about the tampering, not about the claims.
    let resigned = shared::auth::token::sign(&shared::config::Secret::new(SECRET), &claims_typed)
        .expect("sign");
    let (s, b) = c.get("/verify", Some(&resigned)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["user"], "jwtowner");
}

#[tokio::test]
async fn path_traversal_attempts_are_404_envelopes() {
    let c = Client::start();
    for path in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "/resources/../../etc/passwd",
        "/resources/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/resources/user_profile_img/..%5c..%5cwindows%5cwin.ini",
        "/health/../../etc/passwd",
        "/auth%00",
        "/_dev/outbox/../../../etc/passwd",
    ] {
        let res = c
            .http
            .get(format!("{}{path}", c.server.base))
            .send()
            .await
            .expect("request");
        let status = res.status();
        let text = res.text().await.expect("text");
        assert!(!text.contains("root:"), "{path} leaked a file");
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_envelope_4xx(status, &body);
    }
    // A traversal string where a query value is expected is just data.
    let (s, b) = c.get("/_dev/outbox?to=..%2F..%2Fetc%2Fpasswd", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b, json!([]));
}

// ---- Money, callbacks and uploads --------------------------------------------------------------

const CALLBACK_TOKEN: &str = "abuse-callback-token-0123456789";

impl Client {
    /// An active user with an empty wallet (dev route) and its session token.
    async fn dev_user(&self, username: &str) -> String {
        let (s, b) = self
            .post("/_dev/users", &json!({ "username": username }))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["token"].as_str().expect("token").to_owned()
    }

    async fn post_auth(&self, path: &str, body: &Value, token: &str) -> (StatusCode, Value) {
        self.raw(
            reqwest::Method::POST,
            path,
            Some("application/json"),
            serde_json::to_vec(body).expect("json"),
            Some(token),
        )
        .await
    }

    async fn balance(&self, token: &str) -> i64 {
        let (s, b) = self.get("/balance", Some(token)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["balance"].as_i64().expect("integer balance")
    }

    async fn invoice_count(&self, token: &str) -> usize {
        let (s, b) = self
            .get("/invoice/list/xendit?limit=100", Some(token))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["data"].as_array().expect("data").len()
    }

    async fn callback(&self, body: &Value, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(self.server.url("/payment-callback"))
            .json(body);
        if let Some(t) = token {
            req = req.header("x-callback-token", t);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Checks out `amount`, marks it paid at the simulator without delivering the callback, and
    /// answers the callback payload Xendit would send.
    async fn paid_invoice_callback(&self, token: &str, amount: i64) -> Value {
        let (s, co) = self
            .post_auth("/payment-checkout", &json!({ "amount": amount }), token)
            .await;
        assert_eq!(s, StatusCode::OK, "{co}");
        let xid = co["id"].as_str().expect("xendit id");
        let (s, paid) = self
            .post(
                &format!("/_dev/xendit/invoices/{xid}/pay"),
                &json!({ "deliver": false }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{paid}");
        xendit_sim::callback_payload(&paid["invoice"])
    }
}

fn money_client() -> Client {
    Client::start_with(Options {
        env: vec![("XENDIT_CALLBACK_TOKEN".into(), CALLBACK_TOKEN.into())],
        ..Options::default()
    })
}

/// Amounts that are not a whole number of rupiah between 1 and 1 000 000 000, as JSON literals.
const BAD_AMOUNTS: &[&str] = &[
    "-1",
    "0",
    "-50000",
    "1.5",
    "0.01",
    "1e3",
    "1000000001",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "1e308",
    "\"100\"",
    "null",
    "true",
    "[100]",
];

#[tokio::test]
async fn negative_fractional_and_huge_amounts_are_400_envelopes_and_move_no_money() {
    let c = money_client();
    let t = c.dev_user("amountuser").await;
    let cb = c.paid_invoice_callback(&t, 50_000).await;
    let (s, b) = c.callback(&cb, Some(CALLBACK_TOKEN)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(c.balance(&t).await, 50_000);
    let invoices = c.invoice_count(&t).await;
    for amount in BAD_AMOUNTS {
        for path in ["/balance/decrease", "/payment-checkout", "/payout"] {
            let body =
                format!(r#"{{"amount":{amount},"description":"x","bank_account_id":"none"}}"#);
            let (s, b) = c
                .raw(
                    reqwest::Method::POST,
                    path,
                    Some("application/json"),
                    body.into_bytes(),
                    Some(&t),
                )
                .await;
            assert_envelope(s, &b, 400);
            assert!(
                !b.to_string().contains("9223372036854775807"),
                "{path} {amount}: {b}"
            );
        }
    }
    // Nothing moved, nothing was created at Xendit.
    assert_eq!(c.balance(&t).await, 50_000);
    assert_eq!(c.invoice_count(&t).await, invoices);
    // Control: a valid debit of the whole balance succeeds, one rupiah more does not.
    let (s, b) = c
        .post_auth("/balance/decrease", &json!({ "amount": 50_001 }), &t)
        .await;
    assert_envelope(s, &b, 400);
    let (s, b) = c
        .post_auth("/balance/decrease", &json!({ "amount": 50_000 }), &t)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(c.balance(&t).await, 0);
}

#[tokio::test]
async fn a_replayed_payment_callback_credits_once_and_a_wrong_token_is_401() {
    let c = money_client();
    let t = c.dev_user("replayuser").await;
    let cb = c.paid_invoice_callback(&t, 20_000).await;
    // Forged: wrong, empty or missing token; nothing is credited.
    for token in [Some("wrong-token"), Some(""), None] {
        let (s, b) = c.callback(&cb, token).await;
        assert_envelope(s, &b, 401);
    }
    assert_eq!(c.balance(&t).await, 0);
    // Delivered, then replayed (Xendit retries; an attacker replays): one credit.
    for _ in 0..3 {
        let (s, b) = c.callback(&cb, Some(CALLBACK_TOKEN)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    assert_eq!(c.balance(&t).await, 20_000);
    // The simulator's own redelivery is also a replay.
    let xid = cb["id"].as_str().expect("id");
    let (s, b) = c
        .post(&format!("/_dev/xendit/invoices/{xid}/callback"), &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["callback_status"], 200);
    assert_eq!(c.balance(&t).await, 20_000);
    // A tampered amount for the same invoice credits nothing. It is answered 2xx (a retry
    // could not change it; the receipt is in the logs table) and says the invoice was done.
    let mut more = cb.clone();
    more["paid_amount"] = json!(2_000_000);
    more["amount"] = json!(2_000_000);
    let (s, b) = c.callback(&more, Some(CALLBACK_TOKEN)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["message"], "Already Processed", "{b}");
    assert_eq!(c.balance(&t).await, 20_000);
}

#[tokio::test]
async fn traversal_in_profile_image_names_is_refused_without_leaking_files() {
    let c = Client::start();
    for name in [
        "..%2F..%2Fetc%2Fpasswd",
        "..%2f..%2f..%2f..%2fetc%2fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%5c..%5cwindows%5cwin.ini",
        "....%2F%2F....%2F%2Fetc%2Fpasswd",
        "%252e%252e%252fetc%252fpasswd",
        "..",
        "%2e%2e",
        "passwd%00.png",
        "0123456789abcdef0123456789abcdef.png%2F..%2F..%2Fetc%2Fpasswd",
        "0123456789abcdef0123456789abcdef.png",
    ] {
        let path = format!("/resources/user_profile_img/{name}");
        let res = c
            .http
            .get(format!("{}{path}", c.server.base))
            .send()
            .await
            .expect("request");
        let status = res.status();
        let text = res.text().await.expect("text");
        assert!(!text.contains("root:"), "{path} leaked a file");
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_envelope_4xx(status, &body);
    }
}

fn multipart(filename: &str, content_type: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----abuse-boundary-7d9f";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"profile_img\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn uploads_that_are_not_images_are_400_envelopes_whatever_their_name_says() {
    let c = Client::start();
    let t = c.dev_user("uploaduser").await;
    let png_magic_then_text = [&b"\x89PNG\r\n\x1a\n"[..], b"not really a png"].concat();
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "avatar.png",
            "image/png",
            b"hello, I am a text file\n".to_vec(),
        ),
        (
            "avatar.jpg",
            "image/jpeg",
            b"<?php system($_GET['c']); ?>".to_vec(),
        ),
        ("avatar.webp", "image/webp", b"RIFF....WEBX".to_vec()),
        (
            "avatar.png",
            "image/png",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec(),
        ),
        ("avatar.png", "image/png", png_magic_then_text),
        ("avatar.png", "image/png", Vec::new()),
    ];
    for (name, ct, bytes) in cases {
        let (content_type, body) = multipart(name, ct, &bytes);
        let (s, b) = c
            .raw(
                reqwest::Method::POST,
                "/user/update-profile-img",
                Some(&content_type),
                body,
                Some(&t),
            )
            .await;
        assert_envelope(s, &b, 400);
    }
    // Nothing was stored: the profile still has no image.
    let (s, b) = c.get("/user/profile", Some(&t)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["profile_img"].is_null() || b["profile_img"] == "", "{b}");
}
