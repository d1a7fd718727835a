//! The functions' AWS endpoint: a proxy in front of moto that checks every call against the
//! calling function's template policy ([`super::iam`]), counts calls (DynamoDB per request),
//! keeps the mail SES was asked to send, and forwards what is allowed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

use super::iam::{Call, KeyNames, Policy, calls};
use super::runtime::Directory;
use super::template::Env;

/// What the proxy saw.
#[derive(Default)]
struct Report {
    /// (function, action) → allowed calls.
    calls: BTreeMap<(String, String), u64>,
    /// Denied calls, in order.
    denied: Vec<Json>,
    /// request id → DynamoDB calls made while serving it.
    dynamodb: HashMap<String, u32>,
    /// `SendEmail` requests (destination, subject, text), newest last.
    mail: Vec<Json>,
}

pub struct AwsProxy {
    pub env: Env,
    pub keys: KeyNames,
    pub policies: HashMap<String, Policy>,
    pub directory: Arc<Directory>,
    upstream: String,
    http: reqwest::Client,
    report: Mutex<Report>,
}

/// A refused call: who, what, on what.
pub struct Denied(pub Json);

impl AwsProxy {
    pub fn new(
        env: Env,
        keys: KeyNames,
        policies: HashMap<String, Policy>,
        directory: Arc<Directory>,
        upstream: String,
    ) -> AwsProxy {
        AwsProxy {
            env,
            keys,
            policies,
            directory,
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            report: Mutex::new(Report::default()),
        }
    }

    /// Checks `calls` made by the holder of `access_key`; records them (or the denial).
    pub fn authorize(&self, access_key: &str, calls: &[Call]) -> Result<(), Denied> {
        let who = self.directory.lookup(access_key);
        let Some((function, request)) = who else {
            return Err(self.deny(access_key, None, calls.first()));
        };
        let policy = self.policies.get(&function);
        for c in calls {
            if !policy.is_some_and(|p| p.allows(c)) {
                return Err(self.deny(&function, request.as_deref(), Some(c)));
            }
        }
        if let Ok(mut r) = self.report.lock() {
            for c in calls {
                *r.calls
                    .entry((function.clone(), c.action.clone()))
                    .or_default() += 1;
            }
            if let Some(req) = request
                && calls.iter().any(|c| c.action.starts_with("dynamodb:"))
            {
                *r.dynamodb.entry(req).or_default() += 1;
            }
        }
        Ok(())
    }

    fn deny(&self, function: &str, request: Option<&str>, call: Option<&Call>) -> Denied {
        let (action, resource) =
            call.map_or(("?", "?"), |c| (c.action.as_str(), c.resource.as_str()));
        tracing::error!(
            function,
            action,
            resource,
            "AWS call NOT ALLOWED by the function's template policy"
        );
        let record = json!({
            "function": function, "request_id": request, "action": action,
            "resource": resource, "leading_keys": call.map(|c| c.leading_keys.clone()),
        });
        if let Ok(mut r) = self.report.lock() {
            r.denied.push(record.clone());
        }
        Denied(record)
    }

    /// DynamoDB calls made while serving `request_id` (and forgets them).
    pub fn take_dynamodb_calls(&self, request_id: &str) -> u32 {
        self.report
            .lock()
            .ok()
            .and_then(|mut r| r.dynamodb.remove(request_id))
            .unwrap_or(0)
    }

    pub fn summary(&self) -> Json {
        let Ok(r) = self.report.lock() else {
            return Json::Null;
        };
        let mut calls = serde_json::Map::new();
        for ((f, a), n) in &r.calls {
            let entry = calls.entry(f.clone()).or_insert_with(|| json!({}));
            entry[a] = json!(n);
        }
        json!({ "calls": calls, "denied": r.denied })
    }

    pub fn mail(&self) -> Json {
        self.report
            .lock()
            .map(|r| Json::Array(r.mail.iter().rev().cloned().collect()))
            .unwrap_or(Json::Null)
    }

    fn keep_mail(&self, body: &[u8]) {
        let b: Json = serde_json::from_slice(body).unwrap_or(Json::Null);
        let simple = &b["Content"]["Simple"];
        let record = json!({
            "to": b["Destination"]["ToAddresses"],
            "from": b["FromEmailAddress"],
            "subject": simple["Subject"]["Data"],
            "text": simple["Body"]["Text"]["Data"],
            "html": simple["Body"]["Html"]["Data"],
        });
        if let Ok(mut r) = self.report.lock() {
            r.mail.push(record);
        }
    }
}

/// `Credential=AKID/date/region/service/aws4_request` of a SigV4 `Authorization` header.
pub fn credential(headers: &HeaderMap) -> Option<(String, String)> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let cred = auth.split("Credential=").nth(1)?.split(',').next()?;
    let mut parts = cred.split('/');
    let key = parts.next()?.to_owned();
    let service = parts.nth(2)?.to_owned();
    Some((key, service))
}

/// Any request to the stack's AWS endpoint.
pub async fn handle(
    State(proxy): State<Arc<AwsProxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((key, service)) = credential(&headers) else {
        return (StatusCode::FORBIDDEN, "unsigned request").into_response();
    };
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    let path = uri.path();
    let found = match calls(
        &proxy.env,
        &proxy.keys,
        &service,
        method.as_str(),
        path,
        target,
        &body,
    ) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "AWS call the stack cannot check");
            return denied_response(&service, &json!({ "error": e.to_string() }));
        }
    };
    if let Err(Denied(record)) = proxy.authorize(&key, &found) {
        return denied_response(&service, &record);
    }
    if service == "ses" {
        proxy.keep_mail(&body);
    }
    let url = format!(
        "{}{}",
        proxy.upstream,
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut req = proxy.http.request(method, url).body(body);
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    match req.send().await {
        Ok(res) => {
            let status = res.status();
            let mut out = HeaderMap::new();
            for (k, v) in res.headers() {
                if k != "transfer-encoding" && k != "connection" && k != "content-length" {
                    out.append(k, v.clone());
                }
            }
            let bytes = res.bytes().await.unwrap_or_default();
            (status, out, bytes).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("moto: {e}")).into_response(),
    }
}

/// AWS's answer to a call no policy allows (JSON protocols; S3 answers XML).
fn denied_response(service: &str, record: &Json) -> Response {
    let message = format!(
        "User: arn:aws:sts::000000000000:assumed-role/{f}-role/{f} is not authorized to perform: \
         {a} on resource: {r} because no identity-based policy allows the {a} action \
         (userstate stack: template.yaml does not grant it)",
        f = record["function"].as_str().unwrap_or("?"),
        a = record["action"].as_str().unwrap_or("?"),
        r = record["resource"].as_str().unwrap_or("?"),
    );
    if service == "s3" {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"
        );
        return (
            StatusCode::FORBIDDEN,
            [("content-type", "application/xml")],
            xml,
        )
            .into_response();
    }
    let status = if service == "dynamodb" || service == "sqs" || service == "secretsmanager" {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::FORBIDDEN
    };
    let body = json!({ "__type": "AccessDeniedException", "message": message });
    (
        status,
        [
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amzn-errortype", "AccessDeniedException"),
        ],
        body.to_string(),
    )
        .into_response()
}
