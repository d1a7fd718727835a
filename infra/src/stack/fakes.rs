//! Providers the stack's functions reach instead of the real ones, speaking their wire formats:
//! the SMS gateway (`POST /restapi/sms/1/text/advanced`, Infobip-style status groups; numbers
//! can be made to fail with a 500) and FCM HTTP v1 (the OAuth token endpoint, which verifies the
//! RS256 service-account assertion with the generated key's public half, and `messages:send`
//! with Google's error envelope for unregistered tokens).

use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, KeyPair};
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value as Json, json};

pub const FCM_PROJECT: &str = "userstate-stack";
const CLIENT_EMAIL: &str = "push@userstate-stack.iam.gserviceaccount.com";

#[derive(Default)]
struct Record {
    sms: Vec<Json>,
    failing: Vec<String>,
    push: Vec<Json>,
    dead_tokens: Vec<String>,
    access_tokens: Vec<String>,
}

/// The fakes' shared state.
#[derive(Clone)]
pub struct Fakes {
    record: Arc<Mutex<Record>>,
    /// DER `RSAPublicKey` of the service account's key.
    public_key: Arc<Vec<u8>>,
    /// The service-account JSON the notifier's secret carries.
    pub service_account: Json,
}

impl Fakes {
    /// Generates the service account's RSA key; `control_url` is where the token endpoint is.
    pub fn new(control_url: &str) -> anyhow::Result<Fakes> {
        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| anyhow::anyhow!("cannot generate the FCM fake's RSA key"))?;
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key)
            .map_err(|_| anyhow::anyhow!("cannot encode the FCM fake's RSA key"))?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        );
        let service_account = json!({
            "type": "service_account",
            "project_id": FCM_PROJECT,
            "private_key_id": "stack",
            "private_key": pem,
            "client_email": CLIENT_EMAIL,
            "token_uri": format!("{control_url}/_stack/fcm/token"),
        });
        Ok(Fakes {
            record: Arc::new(Mutex::new(Record::default())),
            public_key: Arc::new(key.public_key().as_ref().to_vec()),
            service_account,
        })
    }

    pub fn routes(self) -> Router {
        Router::new()
            .route("/restapi/sms/1/text/advanced", post(sms_send))
            .route("/_stack/sms", get(sms_list))
            .route("/_stack/sms/fail", post(sms_fail))
            .route("/_stack/fcm/token", post(fcm_token))
            .route("/v1/projects/{project}/messages:send", post(fcm_send))
            .route("/_stack/push", get(push_list))
            .route("/_stack/push/unregister", post(push_unregister))
            .with_state(self)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Record) -> T) -> Option<T> {
        self.record.lock().ok().map(|mut r| f(&mut r))
    }

    /// Checks an RS256 JWT assertion against the service account's public key and claims.
    fn assertion_ok(&self, jwt: &str) -> bool {
        let mut parts = jwt.rsplitn(2, '.');
        let (Some(sig), Some(signed)) = (parts.next(), parts.next()) else {
            return false;
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (Ok(sig), Some(claims)) = (b64.decode(sig), signed.split('.').nth(1)) else {
            return false;
        };
        let key = signature::UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            self.public_key.as_slice(),
        );
        if key.verify(signed.as_bytes(), &sig).is_err() {
            return false;
        }
        let claims: Json = b64
            .decode(claims)
            .ok()
            .and_then(|c| serde_json::from_slice(&c).ok())
            .unwrap_or(Json::Null);
        let now = chrono::Utc::now().timestamp();
        claims["iss"] == CLIENT_EMAIL
            && claims["aud"] == self.service_account["token_uri"]
            && claims["scope"]
                .as_str()
                .is_some_and(|s| s.contains("firebase.messaging"))
            && claims["exp"].as_i64().is_some_and(|e| e > now)
    }
}

async fn sms_send(State(f): State<Fakes>, body: axum::Json<Json>) -> Response {
    let msg = &body["messages"][0];
    let to = msg["destinations"][0]["to"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let id = uuid::Uuid::new_v4().to_string();
    let failing = f.with(|r| {
        if r.failing.contains(&to) {
            return true;
        }
        r.sms
            .push(json!({"to": to, "from": msg["from"], "text": msg["text"], "messageId": id}));
        false
    });
    if failing != Some(false) {
        let body = json!({"requestError": {"serviceException": {"messageId": "GENERAL_ERROR", "text": "outage"}}});
        return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response();
    }
    axum::Json(json!({"messages": [{"to": to, "messageId": id,
        "status": {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED",
                   "description": "Message sent to next instance"}}]}))
    .into_response()
}

async fn sms_list(State(f): State<Fakes>) -> axum::Json<Json> {
    let list = f
        .with(|r| r.sms.iter().rev().cloned().collect())
        .unwrap_or_default();
    axum::Json(Json::Array(list))
}

async fn sms_fail(State(f): State<Fakes>, body: axum::Json<Json>) -> StatusCode {
    if let Some(to) = body["to"].as_str() {
        f.with(|r| r.failing.push(to.to_owned()));
    }
    StatusCode::NO_CONTENT
}

fn google_error(status: StatusCode, message: &str, fcm_code: Option<&str>) -> Response {
    let mut error = json!({"code": status.as_u16(), "message": message,
        "status": status.canonical_reason().unwrap_or("").to_ascii_uppercase().replace(' ', "_")});
    if let Some(code) = fcm_code {
        error["details"] = json!([{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]);
    }
    (status, axum::Json(json!({ "error": error }))).into_response()
}

async fn fcm_token(
    State(f): State<Fakes>,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Response {
    let grant = form.get("grant_type").map(String::as_str);
    let assertion = form.get("assertion").map(String::as_str).unwrap_or("");
    if grant != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") || !f.assertion_ok(assertion) {
        let body = json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let token = format!("ya29.stack-{}", uuid::Uuid::new_v4().simple());
    f.with(|r| r.access_tokens.push(token.clone()));
    axum::Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

async fn fcm_send(
    State(f): State<Fakes>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: axum::Json<Json>,
) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let known = f
        .with(|r| r.access_tokens.contains(&bearer))
        .unwrap_or(false);
    if !known || project != FCM_PROJECT {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials.",
            None,
        );
    }
    let message = &body["message"];
    let device = message["token"].as_str().unwrap_or_default().to_owned();
    let dead = f.with(|r| r.dead_tokens.contains(&device)).unwrap_or(false);
    if dead {
        return google_error(
            StatusCode::NOT_FOUND,
            "Requested entity was not found.",
            Some("UNREGISTERED"),
        );
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    f.with(|r| r.push.push(json!({"to": device, "message": message})));
    axum::Json(json!({"name": format!("projects/{project}/messages/{id}")})).into_response()
}

async fn push_list(State(f): State<Fakes>) -> axum::Json<Json> {
    let list = f
        .with(|r| r.push.iter().rev().cloned().collect())
        .unwrap_or_default();
    axum::Json(Json::Array(list))
}

async fn push_unregister(State(f): State<Fakes>, body: axum::Json<Json>) -> StatusCode {
    if let Some(t) = body["token"].as_str() {
        f.with(|r| r.dead_tokens.push(t.to_owned()));
    }
    StatusCode::NO_CONTENT
}
