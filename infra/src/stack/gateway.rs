//! API Gateway as the template configures it: the HTTP API (payload format 2.0, routes from the
//! functions' `HttpApi` events, CORS answered from `CorsConfiguration`), function URLs, and the
//! WebSocket API (route selection, `$connect` refusal, the Management API with `GoneException`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;

use super::aws::{AwsProxy, credential};
use super::iam::Call;
use super::runtime::{Function, InvokeError};

/// One `HttpApi` route.
#[derive(Clone, Debug)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub function: String,
}

/// `CorsConfiguration` of the HTTP API.
#[derive(Clone, Debug, Default)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<String>,
    pub allow_credentials: bool,
}

impl Cors {
    fn allows(&self, origin: &str) -> bool {
        self.allow_origins.iter().any(|o| o == "*" || o == origin)
    }
}

pub type Functions = Arc<HashMap<String, Arc<Function>>>;

/// The HTTP API (or a function URL: one `$default` route, no CORS unless configured).
#[derive(Clone)]
pub struct HttpApi {
    pub api_id: String,
    pub domain: String,
    pub routes: Arc<Vec<Route>>,
    pub cors: Option<Arc<Cors>>,
    pub functions: Functions,
    pub proxy: Arc<AwsProxy>,
    pub account: String,
    pub seq: Arc<AtomicU64>,
}

/// Matches a request against the routes; greedy `{proxy+}` and `{name}` segments.
fn route<'a>(
    routes: &'a [Route],
    method: &str,
    path: &str,
) -> Option<(&'a Route, HashMap<String, String>)> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut best: Option<(&Route, HashMap<String, String>, usize)> = None;
    for r in routes {
        if r.method != method && r.method != "ANY" && r.method != "$default" {
            continue;
        }
        if r.method == "$default" {
            if best.is_none() {
                best = Some((r, HashMap::new(), 0));
            }
            continue;
        }
        let pat: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        let mut params = HashMap::new();
        let mut literal = 0;
        let mut ok = true;
        for (i, p) in pat.iter().enumerate() {
            if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix("+}")) {
                params.insert(
                    name.to_owned(),
                    segs.get(i..).map(|s| s.join("/")).unwrap_or_default(),
                );
                break;
            }
            let Some(s) = segs.get(i) else {
                ok = false;
                break;
            };
            if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                params.insert(name.to_owned(), (*s).to_owned());
            } else if p == s {
                literal += 1;
            } else {
                ok = false;
                break;
            }
            if i == pat.len() - 1 && segs.len() != pat.len() {
                ok = false;
            }
        }
        if ok
            && best
                .as_ref()
                .is_none_or(|b| literal > b.2 || b.0.method == "$default")
        {
            best = Some((r, params, literal));
        }
    }
    best.map(|(r, p, _)| (r, p))
}

/// Whether API Gateway passes a body of this type as text (else base64).
fn is_text(headers: &HeaderMap) -> bool {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    ct.is_empty()
        || ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.contains("x-www-form-urlencoded")
        || ct.contains("javascript")
}

impl HttpApi {
    fn request_id(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{:x}{n:06x}=", chrono::Utc::now().timestamp_millis())
    }

    /// The payload format 2.0 event of one request.
    #[allow(clippy::too_many_arguments)]
    pub fn event(
        &self,
        route_key: &str,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
        params: &HashMap<String, String>,
        source: SocketAddr,
        request_id: &str,
    ) -> Json {
        let mut hmap: serde_json::Map<String, Json> = serde_json::Map::new();
        let mut cookies = Vec::new();
        for (k, v) in headers {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            if k == "cookie" {
                cookies.extend(v.split(';').map(|c| Json::String(c.trim().to_owned())));
                continue;
            }
            match hmap.get_mut(k.as_str()) {
                Some(Json::String(existing)) => {
                    existing.push(',');
                    existing.push_str(&v);
                }
                _ => {
                    hmap.insert(k.as_str().to_owned(), Json::String(v));
                }
            }
        }
        hmap.insert("host".into(), json!(self.domain));
        hmap.insert("x-forwarded-for".into(), json!(source.ip().to_string()));
        hmap.insert("x-forwarded-port".into(), json!("443"));
        hmap.insert("x-forwarded-proto".into(), json!("https"));
        let query = uri.query().unwrap_or("");
        let mut qs: serde_json::Map<String, Json> = serde_json::Map::new();
        for (k, v) in url_pairs(query) {
            match qs.get_mut(&k) {
                Some(Json::String(existing)) => {
                    existing.push(',');
                    existing.push_str(&v);
                }
                _ => {
                    qs.insert(k, Json::String(v));
                }
            }
        }
        let now = chrono::Utc::now();
        let user_agent = headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut event = json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": uri.path(),
            "rawQueryString": query,
            "headers": hmap,
            "requestContext": {
                "accountId": self.account,
                "apiId": self.api_id,
                "domainName": self.domain,
                "domainPrefix": self.api_id,
                "http": {
                    "method": method.as_str(),
                    "path": uri.path(),
                    "protocol": "HTTP/1.1",
                    "sourceIp": source.ip().to_string(),
                    "userAgent": user_agent,
                },
                "requestId": request_id,
                "routeKey": route_key,
                "stage": "$default",
                "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
                "timeEpoch": now.timestamp_millis(),
            },
            "isBase64Encoded": false,
        });
        if !cookies.is_empty() {
            event["cookies"] = Json::Array(cookies);
        }
        if !qs.is_empty() {
            event["queryStringParameters"] = Json::Object(qs);
        }
        if !params.is_empty() {
            event["pathParameters"] = json!(params);
        }
        if !body.is_empty() {
            if is_text(headers) && std::str::from_utf8(body).is_ok() {
                event["body"] = json!(String::from_utf8_lossy(body));
            } else {
                event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
                event["isBase64Encoded"] = json!(true);
            }
        }
        event
    }
}

/// The decoded `key=value` pairs of a query string.
fn url_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A payload format 2.0 response as API Gateway turns it into HTTP.
pub fn http_response(payload: Json) -> Response {
    let Some(obj) = payload.as_object().filter(|o| o.contains_key("statusCode")) else {
        // No statusCode: API Gateway answers 200 with the payload as a JSON body.
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            payload.to_string(),
        )
            .into_response();
    };
    let status = obj["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = HeaderMap::new();
    let mut add = |k: &str, v: &str| {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::from_str(v)) {
            headers.append(k, v);
        }
    };
    if let Some(h) = obj.get("headers").and_then(Json::as_object) {
        for (k, v) in h {
            add(k, v.as_str().unwrap_or_default());
        }
    }
    if let Some(h) = obj.get("multiValueHeaders").and_then(Json::as_object) {
        for (k, vs) in h {
            for v in vs.as_array().into_iter().flatten() {
                add(k, v.as_str().unwrap_or_default());
            }
        }
    }
    for c in obj
        .get("cookies")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        add("set-cookie", c.as_str().unwrap_or_default());
    }
    let body = obj.get("body").and_then(Json::as_str).unwrap_or("");
    let body = if obj.get("isBase64Encoded").and_then(Json::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap_or_default()
    } else {
        body.as_bytes().to_vec()
    };
    (status, headers, body).into_response()
}

fn gateway_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

/// Every request to the HTTP API or a function URL.
pub async fn serve_http(
    State(api): State<HttpApi>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let origin = headers
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(cors) = &api.cors
        && method == Method::OPTIONS
        && origin.is_some()
        && headers.contains_key("access-control-request-method")
    {
        return preflight(cors, origin.as_deref().unwrap_or_default());
    }
    let started = Instant::now();
    let Some((route, params)) = route(&api.routes, method.as_str(), uri.path()) else {
        return gateway_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let route_key = if route.method == "$default" {
        "$default".to_owned()
    } else {
        format!("{} {}", route.method, route.path)
    };
    let Some(function) = api.functions.get(&route.function) else {
        return gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let request_id = api.request_id();
    let event = api.event(
        &route_key,
        &method,
        &uri,
        &headers,
        &body,
        &params,
        source,
        &request_id,
    );
    let (lambda_request, outcome) = function.invoke_traced(event).await;
    let (mut response, error) = match outcome {
        Ok(payload) => (http_response(payload), None),
        Err(e) => (
            gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
            Some(e),
        ),
    };
    if let Some(cors) = &api.cors {
        apply_cors(cors, origin.as_deref(), response.headers_mut());
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("apigw-requestid", v);
    }
    let dynamodb = api.proxy.take_dynamodb_calls(&lambda_request);
    tracing::info!(
        target: "stack",
        api = %api.api_id,
        route = %route_key,
        function = %route.function,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_millis() as u64,
        dynamodb,
        error = error.as_ref().map(InvokeError::to_string),
        "request"
    );
    response
}

fn preflight(cors: &Cors, origin: &str) -> Response {
    let mut headers = HeaderMap::new();
    if cors.allows(origin) {
        let mut put = |k: &'static str, v: String| {
            if let Ok(v) = HeaderValue::from_str(&v) {
                headers.insert(k, v);
            }
        };
        put("access-control-allow-origin", origin.to_owned());
        put("access-control-allow-methods", cors.allow_methods.join(","));
        put("access-control-allow-headers", cors.allow_headers.join(","));
        if let Some(m) = &cors.max_age {
            put("access-control-max-age", m.clone());
        }
        if cors.allow_credentials {
            put("access-control-allow-credentials", "true".into());
        }
    }
    (StatusCode::NO_CONTENT, headers).into_response()
}

/// API Gateway replaces the integration's CORS headers with its own.
fn apply_cors(cors: &Cors, origin: Option<&str>, headers: &mut HeaderMap) {
    let stale: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for k in stale {
        headers.remove(k);
    }
    let Some(origin) = origin.filter(|o| cors.allows(o)) else {
        return;
    };
    if let Ok(v) = HeaderValue::from_str(origin) {
        headers.insert("access-control-allow-origin", v);
    }
    if !cors.expose_headers.is_empty()
        && let Ok(v) = HeaderValue::from_str(&cors.expose_headers.join(","))
    {
        headers.insert("access-control-expose-headers", v);
    }
    if cors.allow_credentials {
        headers.insert(
            "access-control-allow-credentials",
            HeaderValue::from_static("true"),
        );
    }
}

// ------------------------------------------------------------------------------- WebSocket API

/// The WebSocket API: routes by key, the functions behind them, open connections.
#[derive(Clone)]
pub struct WsApi {
    pub api_id: String,
    pub stage: String,
    pub domain: String,
    /// `$request.body.<field>` of `RouteSelectionExpression`.
    pub selection_field: Option<String>,
    /// route key → (function logical id, whether the route has a route response).
    pub routes: Arc<HashMap<String, (String, bool)>>,
    pub functions: Functions,
    pub proxy: Arc<AwsProxy>,
    pub account: String,
    connections: Arc<Mutex<HashMap<String, Connection>>>,
    seq: Arc<AtomicU64>,
}

struct Connection {
    tx: mpsc::UnboundedSender<Message>,
    connected_at: i64,
    source_ip: String,
}

impl WsApi {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        api_id: String,
        stage: String,
        domain: String,
        selection_field: Option<String>,
        routes: HashMap<String, (String, bool)>,
        functions: Functions,
        proxy: Arc<AwsProxy>,
        account: String,
    ) -> WsApi {
        WsApi {
            api_id,
            stage,
            domain,
            selection_field,
            routes: Arc::new(routes),
            functions,
            proxy,
            account,
            connections: Arc::new(Mutex::new(HashMap::new())),
            seq: Arc::new(AtomicU64::new(0)),
        }
    }

    fn next_id(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let raw = format!("{:x}{n:04x}", chrono::Utc::now().timestamp_millis());
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
    }

    fn context(
        &self,
        route_key: &str,
        event_type: &str,
        connection_id: &str,
        connected_at: i64,
        ip: &str,
    ) -> Json {
        let now = chrono::Utc::now();
        json!({
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": self.next_id(),
            "requestTime": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": connected_at,
            "requestTimeEpoch": now.timestamp_millis(),
            "identity": { "sourceIp": ip },
            "requestId": self.next_id(),
            "domainName": self.domain,
            "connectionId": connection_id,
            "apiId": self.api_id,
        })
    }

    async fn invoke(&self, route_key: &str, event: Json) -> Option<Result<Json, InvokeError>> {
        let (function, _) = self.routes.get(route_key)?;
        let f = self.functions.get(function)?;
        Some(f.invoke(event).await)
    }
}

/// `GET /{stage}`: the handshake, after `$connect` allowed it.
pub async fn ws_connect(
    State(api): State<WsApi>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let id = api.next_id();
    let connected_at = chrono::Utc::now().timestamp_millis();
    let ip = source.ip().to_string();
    let mut hmap = serde_json::Map::new();
    let mut multi = serde_json::Map::new();
    for (k, v) in &headers {
        let name = canonical(k.as_str());
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        hmap.insert(name.clone(), json!(v));
        multi.insert(name, json!([v]));
    }
    let pairs = url_pairs(uri.query().unwrap_or(""));
    let mut event = json!({
        "headers": hmap,
        "multiValueHeaders": multi,
        "requestContext": api.context("$connect", "CONNECT", &id, connected_at, &ip),
        "isBase64Encoded": false,
    });
    if !pairs.is_empty() {
        let mut qs = serde_json::Map::new();
        let mut mqs = serde_json::Map::new();
        for (k, v) in pairs {
            qs.insert(k.clone(), json!(v));
            mqs.insert(k, json!([v]));
        }
        event["queryStringParameters"] = Json::Object(qs);
        event["multiValueQueryStringParameters"] = Json::Object(mqs);
    }
    let allowed = match api.invoke("$connect", event).await {
        None => Ok(()),
        Some(Ok(payload)) => {
            let status = payload["statusCode"].as_u64().unwrap_or(200);
            if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(http_response(payload))
            }
        }
        Some(Err(e)) => {
            tracing::warn!(target: "stack", error = %e, "$connect failed");
            Err(gateway_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
            ))
        }
    };
    if let Err(refused) = allowed {
        tracing::info!(target: "stack", route = "$connect", status = refused.status().as_u16(), "connection refused");
        return refused;
    }
    upgrade.on_upgrade(move |socket| connection(api, socket, id, connected_at, ip))
}

fn canonical(name: &str) -> String {
    name.split('-')
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

async fn connection(api: WsApi, socket: WebSocket, id: String, connected_at: i64, ip: String) {
    use futures::{SinkExt, StreamExt};
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    if let Ok(mut c) = api.connections.lock() {
        c.insert(
            id.clone(),
            Connection {
                tx: tx.clone(),
                connected_at,
                source_ip: ip.clone(),
            },
        );
    }
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
    });
    let (mut code, mut reason) = (1005u16, String::new());
    while let Some(Ok(msg)) = stream.next().await {
        let body = match msg {
            Message::Text(t) => t.to_string(),
            Message::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
            Message::Close(frame) => {
                if let Some(f) = frame {
                    code = f.code;
                    reason = f.reason.to_string();
                }
                break;
            }
            _ => continue,
        };
        let key = api
            .selection_field
            .as_ref()
            .and_then(|f| {
                serde_json::from_str::<Json>(&body)
                    .ok()?
                    .get(f)?
                    .as_str()
                    .map(str::to_owned)
            })
            .filter(|k| api.routes.contains_key(k))
            .unwrap_or_else(|| "$default".to_owned());
        let mut ctx = api.context(&key, "MESSAGE", &id, connected_at, &ip);
        ctx["messageId"] = json!(api.next_id());
        let request_id = ctx["requestId"].clone();
        let event = json!({ "requestContext": ctx, "body": body, "isBase64Encoded": false });
        let route_response = api.routes.get(&key).is_some_and(|r| r.1);
        match api.invoke(&key, event).await {
            None => {
                let _ = tx.send(Message::Text(
                    json!({"message": "Forbidden", "connectionId": id, "requestId": request_id})
                        .to_string()
                        .into(),
                ));
            }
            Some(Ok(payload)) if route_response => {
                let text = payload["body"]
                    .as_str()
                    .map_or_else(|| payload.to_string(), str::to_owned);
                let _ = tx.send(Message::Text(text.into()));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::warn!(target: "stack", route = %key, error = %e, "WebSocket route failed");
                let _ = tx.send(Message::Text(
                    json!({"message": "Internal server error", "connectionId": id, "requestId": request_id})
                        .to_string()
                        .into(),
                ));
            }
        }
    }
    if let Ok(mut c) = api.connections.lock() {
        c.remove(&id);
    }
    writer.abort();
    let mut ctx = api.context("$disconnect", "DISCONNECT", &id, connected_at, &ip);
    ctx["disconnectStatusCode"] = json!(code);
    ctx["disconnectReason"] = json!(reason);
    let event = json!({ "requestContext": ctx, "isBase64Encoded": false });
    if let Some(Err(e)) = api.invoke("$disconnect", event).await {
        tracing::warn!(target: "stack", error = %e, "$disconnect failed");
    }
}

/// The Management API (`POST|GET|DELETE /{stage}/@connections/{id}`), signed with the calling
/// function's credentials and checked against its `execute-api:ManageConnections` grant.
pub async fn manage(
    State(api): State<WsApi>,
    Path((stage, id)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = credential(&headers).map(|(k, _)| k).unwrap_or_default();
    let call = Call {
        action: "execute-api:ManageConnections".into(),
        resource: format!(
            "arn:aws:execute-api:{}:{}:{}/{stage}/{}/@connections/{id}",
            api.proxy.env.region, api.account, api.api_id, method
        ),
        leading_keys: Vec::new(),
    };
    if let Err(denied) = api.proxy.authorize(&key, &[call]) {
        return (
            StatusCode::FORBIDDEN,
            [("x-amzn-errortype", "AccessDeniedException")],
            json!({"message": format!("not allowed: {}", denied.0)}).to_string(),
        )
            .into_response();
    }
    let gone = || {
        (
            StatusCode::GONE,
            [
                ("x-amzn-errortype", "GoneException"),
                ("content-type", "application/json"),
            ],
            json!({"message": null}).to_string(),
        )
            .into_response()
    };
    let Ok(mut conns) = api.connections.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match method {
        Method::POST => match conns.get(&id) {
            Some(c)
                if c.tx
                    .send(Message::Text(
                        String::from_utf8_lossy(&body).into_owned().into(),
                    ))
                    .is_ok() =>
            {
                StatusCode::OK.into_response()
            }
            _ => gone(),
        },
        Method::DELETE => match conns.remove(&id) {
            Some(c) => {
                let _ = c.tx.send(Message::Close(None));
                StatusCode::NO_CONTENT.into_response()
            }
            None => gone(),
        },
        _ => match conns.get(&id) {
            Some(c) => {
                let at =
                    chrono::DateTime::from_timestamp_millis(c.connected_at).unwrap_or_default();
                Json::to_string(&json!({
                    "connectedAt": at.to_rfc3339(), "lastActiveAt": chrono::Utc::now().to_rfc3339(),
                    "identity": {"sourceIp": c.source_ip, "userAgent": ""},
                }))
                .into_response()
            }
            None => gone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: &str, path: &str) -> Route {
        Route {
            method: method.into(),
            path: path.into(),
            function: path.into(),
        }
    }

    #[test]
    fn routes_match_literal_first_then_parameters_and_greedy() {
        let routes = vec![
            r("GET", "/resources/{proxy+}"),
            r("GET", "/invoice/detail"),
            r("GET", "/user/{id}"),
            r("GET", "/user/me"),
        ];
        let (m, p) = route(&routes, "GET", "/resources/user_profile_img/a.png").unwrap();
        assert_eq!(m.path, "/resources/{proxy+}");
        assert_eq!(p["proxy"], "user_profile_img/a.png");
        assert_eq!(
            route(&routes, "GET", "/user/me").unwrap().0.path,
            "/user/me"
        );
        assert_eq!(route(&routes, "GET", "/user/7").unwrap().1["id"], "7");
        assert!(route(&routes, "POST", "/invoice/detail").is_none());
        assert!(route(&routes, "GET", "/invoice/detail/x").is_none());
    }

    #[test]
    fn payload_2_0_reads_as_the_lambda_event_type() {
        let api_event = json!({
            "version": "2.0", "routeKey": "GET /x", "rawPath": "/x", "rawQueryString": "a=1",
            "headers": {"host": "h"}, "queryStringParameters": {"a": "1"},
            "requestContext": {"accountId": "1", "apiId": "a", "domainName": "h", "domainPrefix": "a",
              "http": {"method": "GET", "path": "/x", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": ""},
              "requestId": "r", "routeKey": "GET /x", "stage": "$default", "time": "t", "timeEpoch": 1},
            "isBase64Encoded": false
        });
        let parsed: aws_lambda_events::apigw::ApiGatewayV2httpRequest =
            serde_json::from_value(api_event).unwrap();
        assert_eq!(parsed.raw_path.as_deref(), Some("/x"));
        assert_eq!(parsed.request_context.http.method, Method::GET);
    }

    #[test]
    fn cors_answers_preflights_from_the_configuration() {
        let cors = Cors {
            allow_origins: vec!["http://localhost:3000".into()],
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["idempotency-key".into()],
            expose_headers: vec!["retry-after".into()],
            max_age: Some("600".into()),
            allow_credentials: false,
        };
        let ok = preflight(&cors, "http://localhost:3000");
        assert_eq!(
            ok.headers()["access-control-allow-headers"],
            "idempotency-key"
        );
        let other = preflight(&cors, "http://evil.example");
        assert!(other.headers().get("access-control-allow-origin").is_none());
    }
}
