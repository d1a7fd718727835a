//! A fake FCM HTTP v1 server speaking the real wire format: the OAuth token endpoint (verifies the
//! RS256 service-account assertion) and `messages:send` with Google error envelopes. Dead tokens
//! and a 500 mode are programmable; delivered messages are recorded.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

pub const PRIVATE_KEY: &str = r#"-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDLBw2XzzLLg9X9
ZQ/TQglO0pwqT8k9iCa3QTb0Vv1VpSt9KFie8PMLdtDeSs/nGXbshvuYFw22HYd4
PD/nSslxoEs37w3psTaeYhuYrDvBZ4F2XAJ0WPAe15fSjr2oKNoUAf0dW2wZP0tG
FAZkbCHr3s4IMJhgAe2paWGtRrIlurRpT+c+A7/wFAfN1fsnhusiV0Relmfv5dow
dXjA2ycr5FuCtOYeuFsnKLfHOEjiFUz+OjsEPdWrD1WJ1zTnlMpEii/QJEscpgBu
4PLs/jOi6sDRq1qbxRuXpAqg0S+/kq8cYVDgShPSl8+f8tccoF7zHQ1rKjnc7+vl
2th04jbzAgMBAAECggEAWVUypXQNaSAKtdLUikOZvd2Myk9OAG2af3LJ/+wQzzD8
eDca+2CQyKAQmmb3oLuDKOLh7FNkfJf0pjJ4echd58m8nxFoIUYQ/tKzStOp/VkS
TWaBy/jgOunpC0Q0bjv/bONNILA72cYQVHb2MxSjPlpMdK0RNtlSXgMY7/nV5CRA
oe4FreeAyYu9J2/x7sDT+HHjTWPIeoXKtJ71SqFwrnSQ3K6SyxhdMlbH3P1ACoWH
KMl6qPy/QcqQOQZej5niD9f8YmDSKLt1EF0JORMpnKsih2zSK/0B50vyEgH5UBjM
Nw7QSUFdPhTkfqw9cwWZCkFecrX6mU7NyMo5JyybPQKBgQDkp/jth98GmpuJOaG5
/UCfLMvX0rVjH8BYw8MjckJYQKXpVLN3jSbnIkKyIemnTLIKtQrIlgJSpLMyp5kj
vs2gWK9uomh3lPBtNpl4VWvrJRYKbMalwz36jYqtEhMTMfHJ4oeoFfEQzZLuMgdu
qWtnnDwfJZy29rsJ3qTPA8wO9QKBgQDjTn4pDVnvUFyCpvYxMCUUPHprz8CQNiKF
SYI2eEHyWt1dwScrxHCpOtpB5DRHE/tze6K+663CqfH+vx4Em0hBqHkKddcqJhSz
Zf+Hf8oL4GNkYch5hKwq4vDwGMNLESZT9mSr1JUQiUpMcJk44Z4fCXrRf6GEzi4b
xHpR2mUtRwKBgQCBGwbGt40KIYnotY3HgmNWfOir9+FLEsZ8WCx6ey1Sv03urVCY
FC7/Gq0l/1f6iqeMvCRWlbzCBRTZaSBiun1IKEsF4NWzj3khcU6+Tx0cLFiBkmGn
ftIkAn9msWnr0KuBHlMSaTEwF6L6s2zW4vouCl04CPivpih9riTIbpBtcQKBgFsu
96kcNAGuaQ34UDZ3K8isYiexlXvEW6DAVj3ni/zeuoKLo10JVnBsrXVVSCtjNrGi
3SxderzmU69vl2kdqaS9IqExmHjOAevddN40Qyb0gqqYF0W4FSC3HRQTuvP4EzoH
U2cixhF2IZn8aVrKFxY4RU6ZNoAB/bkh3jfLtl6tAoGAeLq7j/Bb6pCYRKU8rz9o
LKS45CYf+p0g8uGamiReo0usxprNiTlG7h2VSxAeybNO9AkKAXEFccY0mbAmv5uD
kzyVQsfaJRYE3UlpYpZ/cqOTcTlZg93Rdt9fBSwazrm6zmHCSgxR5/4w3utGW8Yq
HBtI+sWsjZO/KLITtmtyip0=
-----END PRIVATE KEY-----
"#;

pub const PUBLIC_KEY: &str = r#"-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAywcNl88yy4PV/WUP00IJ
TtKcKk/JPYgmt0E29Fb9VaUrfShYnvDzC3bQ3krP5xl27Ib7mBcNth2HeDw/50rJ
caBLN+8N6bE2nmIbmKw7wWeBdlwCdFjwHteX0o69qCjaFAH9HVtsGT9LRhQGZGwh
697OCDCYYAHtqWlhrUayJbq0aU/nPgO/8BQHzdX7J4brIldEXpZn7+XaMHV4wNsn
K+RbgrTmHrhbJyi3xzhI4hVM/jo7BD3Vqw9Vidc055TKRIov0CRLHKYAbuDy7P4z
ourA0atam8Ubl6QKoNEvv5KvHGFQ4EoT0pfPn/LXHKBe8x0Nayo53O/r5drYdOI2
8wIDAQAB
-----END PUBLIC KEY-----
"#;

pub const PROJECT: &str = "test-project";
pub const CLIENT_EMAIL: &str = "push@test-project.iam.gserviceaccount.com";

#[derive(Default)]
struct Inner {
    unregistered: Mutex<HashSet<String>>,
    invalid: Mutex<HashSet<String>>,
    fail_500: AtomicBool,
    /// Sends still to answer 429 QUOTA_EXCEEDED, and the `Retry-After` (seconds) they carry.
    throttled: AtomicUsize,
    retry_after: AtomicUsize,
    sends: AtomicUsize,
    delivered: Mutex<Vec<Value>>,
    issued: Mutex<HashSet<String>>,
    token_requests: AtomicUsize,
    token_uri: Mutex<String>,
}

/// A running fake; dropped with the test runtime.
#[derive(Clone)]
pub struct FakeFcm {
    pub base_url: String,
    inner: Arc<Inner>,
}

impl FakeFcm {
    pub async fn start() -> FakeFcm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let inner = Arc::new(Inner::default());
        *inner.token_uri.lock().expect("lock") = format!("{base_url}/token");
        let router = Router::new()
            .route("/token", post(token))
            .route("/v1/projects/{project}/messages:send", post(send))
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        FakeFcm { base_url, inner }
    }

    /// A service-account JSON whose `token_uri` points at this fake.
    pub fn service_account_json(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "test-key-1",
            "private_key": PRIVATE_KEY,
            "client_email": CLIENT_EMAIL,
            "token_uri": format!("{}/token", self.base_url),
        })
        .to_string()
    }

    /// FCM will answer 404 UNREGISTERED for this token.
    pub fn unregister(&self, token: &str) {
        self.inner
            .unregistered
            .lock()
            .expect("lock")
            .insert(token.to_owned());
    }
    /// FCM will answer 400 INVALID_ARGUMENT (on `message.token`) for this token.
    pub fn invalidate(&self, token: &str) {
        self.inner
            .invalid
            .lock()
            .expect("lock")
            .insert(token.to_owned());
    }
    /// Every send answers 500 INTERNAL while on.
    pub fn fail_with_500(&self, on: bool) {
        self.inner.fail_500.store(on, Ordering::SeqCst);
    }
    /// The next `n` sends answer 429 RESOURCE_EXHAUSTED (QUOTA_EXCEEDED) with `Retry-After: secs`.
    pub fn throttle(&self, n: usize, secs: usize) {
        self.inner.retry_after.store(secs, Ordering::SeqCst);
        self.inner.throttled.store(n, Ordering::SeqCst);
    }
    /// `messages:send` calls that got past authentication.
    pub fn sends(&self) -> usize {
        self.inner.sends.load(Ordering::SeqCst)
    }
    /// Forgets every access token issued so far (as if they had been revoked or expired early).
    pub fn revoke_access_tokens(&self) {
        self.inner.issued.lock().expect("lock").clear();
    }
    /// Messages accepted so far (the `message` objects).
    pub fn delivered(&self) -> Vec<Value> {
        self.inner.delivered.lock().expect("lock").clone()
    }
    /// How often the OAuth token endpoint was called.
    pub fn token_requests(&self) -> usize {
        self.inner.token_requests.load(Ordering::SeqCst)
    }
}

fn google_error(code: u16, status: &str, message: &str, details: Value) -> Response {
    let body = json!({ "error": { "code": code, "message": message, "status": status, "details": details } });
    (StatusCode::from_u16(code).expect("status"), Json(body)).into_response()
}

fn fcm_error(code: &str) -> Value {
    json!({ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code })
}

async fn token(
    State(s): State<Arc<Inner>>,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Response {
    s.token_requests.fetch_add(1, Ordering::SeqCst);
    let bad = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_grant", "error_description": why })),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return bad("unsupported grant_type");
    }
    let Some(assertion) = form.get("assertion") else {
        return bad("missing assertion");
    };
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).expect("public key");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    let token_uri = s.token_uri.lock().expect("lock").clone();
    v.set_audience(&[token_uri]);
    v.set_issuer(&[CLIENT_EMAIL]);
    let claims = match jsonwebtoken::decode::<Value>(assertion, &key, &v) {
        Ok(d) => d.claims,
        Err(e) => return bad(&format!("Invalid JWT Signature: {e}")),
    };
    let scope_ok = claims["scope"].as_str().is_some_and(|sc| {
        sc.split(' ')
            .any(|x| x.ends_with("/auth/firebase.messaging"))
    });
    let life = claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0);
    if !scope_ok || !(1..=3600).contains(&life) {
        return bad("Invalid JWT: scope or lifetime");
    }
    let n = s.token_requests.load(Ordering::SeqCst);
    let access = format!("fake-{n}");
    s.issued.lock().expect("lock").insert(access.clone());
    Json(json!({ "access_token": access, "expires_in": 3599, "token_type": "Bearer" }))
        .into_response()
}

async fn send(
    State(s): State<Arc<Inner>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Json<Value>,
) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if project != PROJECT || !s.issued.lock().expect("lock").contains(bearer) {
        return google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
            json!([]),
        );
    }
    let message = &body.0["message"];
    let targets = ["token", "topic", "condition"]
        .iter()
        .filter(|k| message.get(**k).is_some())
        .count();
    let data_ok = message.get("data").is_none_or(|d| {
        d.as_object()
            .is_some_and(|m| m.values().all(Value::is_string))
    });
    if targets != 1 || !data_ok {
        let v = json!([{ "@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{ "field": "message", "description": "bad payload" }] }]);
        return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.", v);
    }
    s.sends.fetch_add(1, Ordering::SeqCst);
    let throttled = s
        .throttled
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if throttled {
        let mut res = google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded.",
            json!([fcm_error("QUOTA_EXCEEDED")]),
        );
        let secs = s.retry_after.load(Ordering::SeqCst).to_string();
        res.headers_mut()
            .insert("retry-after", secs.parse().expect("header"));
        return res;
    }
    if s.fail_500.load(Ordering::SeqCst) {
        return google_error(
            500,
            "INTERNAL",
            "Internal error encountered.",
            json!([fcm_error("INTERNAL")]),
        );
    }
    let token = message["token"].as_str().unwrap_or_default().to_owned();
    if s.unregistered.lock().expect("lock").contains(&token) {
        return google_error(
            404,
            "NOT_FOUND",
            "Requested entity was not found.",
            json!([fcm_error("UNREGISTERED")]),
        );
    }
    if s.invalid.lock().expect("lock").contains(&token) {
        let details = json!([
            { "@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{ "field": "message.token", "description": "Invalid registration token" }] },
            fcm_error("INVALID_ARGUMENT")
        ]);
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            details,
        );
    }
    let mut delivered = s.delivered.lock().expect("lock");
    delivered.push(message.clone());
    Json(json!({ "name": format!("projects/{PROJECT}/messages/0:{}%31bd1c9631bd1c96", delivered.len()) })).into_response()
}
