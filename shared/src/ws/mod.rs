//! Real-time payment status: the `WsPush` port and its adapters. Locally an in-process hub feeds
//! the server's `/ws` endpoint; on AWS, connections of the API Gateway WebSocket API are stored as
//! `WSCONN#{id}` (GSI1 `WSUSER#{u}` while subscribed) and reached with `post_to_connection`.
//!
//! Messages in: `{"action":"subscribe:payment"}` / `{"action":"unsubscribe:payment"}` — always for
//! the connection's own (token) user. Messages out: `{"event":"payment:status:update","data":{…}}`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

use crate::app::App;
use crate::auth::session;
use crate::error::ApiError;
use crate::store::{
    Cond, Query, StoreError, TableRef, Update, get_s, keys, query_all, schema::GSI1,
};

/// Delivers a message to every subscribed connection of a user. Delivery is best effort: a failure
/// is logged, never returned (a status change must not fail because a browser went away).
#[async_trait]
pub trait WsPush: Send + Sync + 'static {
    async fn publish(&self, username: &str, message: &str);
}

/// Shared handle to the port.
pub type WsPushRef = std::sync::Arc<dyn WsPush>;

/// The payload of a status change.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PaymentStatus {
    pub invoice_id: String,
    pub status: String,
    pub amount: i64,
    pub paid_at: Option<String>,
}

/// Tells a user's subscribers that an invoice changed status.
pub async fn emit_payment_status(app: &App, username: &str, data: &PaymentStatus) {
    let msg = serde_json::json!({ "event": "payment:status:update", "data": data }).to_string();
    app.ws.publish(username, &msg).await;
}

/// An action a client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Subscribe,
    Unsubscribe,
}

#[derive(Deserialize)]
struct ClientMessage {
    action: String,
    #[serde(default)]
    username: Option<String>,
}

/// Parses a client message for a connection of `owner`. A `username` other than the owner is refused.
pub fn parse_action(owner: &str, text: &str) -> Result<Action, String> {
    let msg: ClientMessage =
        serde_json::from_str(text).map_err(|_| "invalid message".to_owned())?;
    if let Some(u) = msg.username.as_deref() {
        if !u.eq_ignore_ascii_case(owner) {
            return Err("forbidden: you may only subscribe to your own payments".into());
        }
    }
    match msg.action.as_str() {
        "subscribe:payment" => Ok(Action::Subscribe),
        "unsubscribe:payment" => Ok(Action::Unsubscribe),
        _ => Err("unknown action".into()),
    }
}

/// The reply to a client message.
pub fn reply(result: &Result<Action, String>) -> String {
    match result {
        Ok(Action::Subscribe) => {
            serde_json::json!({"event": "subscribed", "data": {"channel": "payment"}})
        }
        Ok(Action::Unsubscribe) => {
            serde_json::json!({"event": "unsubscribed", "data": {"channel": "payment"}})
        }
        Err(m) => serde_json::json!({"event": "error", "data": {"message": m}}),
    }
    .to_string()
}

// ---------------------------------------------------------------------------------------------
// Local: in-process hub.

/// In-process hub: per user, the senders of subscribed local WebSocket connections.
#[derive(Default)]
pub struct LocalHub {
    subs: Mutex<HashMap<String, HashMap<u64, UnboundedSender<String>>>>,
    next: AtomicU64,
}

impl LocalHub {
    /// A fresh connection id.
    pub fn connection_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
    pub fn subscribe(&self, username: &str, conn: u64, tx: UnboundedSender<String>) {
        let mut subs = self.subs.lock().unwrap_or_else(|p| p.into_inner());
        subs.entry(username.to_owned())
            .or_default()
            .insert(conn, tx);
    }
    pub fn unsubscribe(&self, username: &str, conn: u64) {
        let mut subs = self.subs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = subs.get_mut(username) {
            m.remove(&conn);
            if m.is_empty() {
                subs.remove(username);
            }
        }
    }
    /// Number of subscribed connections of a user.
    pub fn subscribers(&self, username: &str) -> usize {
        self.subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(username)
            .map_or(0, HashMap::len)
    }
}

#[async_trait]
impl WsPush for LocalHub {
    async fn publish(&self, username: &str, message: &str) {
        let mut subs = self.subs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = subs.get_mut(username) {
            m.retain(|_, tx| tx.send(message.to_owned()).is_ok());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AWS: API Gateway WebSocket API.

/// Pushes through the API Gateway Management API; gone connections are deleted.
pub struct ApiGatewayPush {
    client: aws_sdk_apigatewaymanagement::Client,
    main: TableRef,
}

impl ApiGatewayPush {
    pub fn new(client: aws_sdk_apigatewaymanagement::Client, main: TableRef) -> Self {
        ApiGatewayPush { client, main }
    }
}

#[async_trait]
impl WsPush for ApiGatewayPush {
    async fn publish(&self, username: &str, message: &str) {
        let conns = match query_all(
            self.main.as_ref(),
            Query::index(GSI1, keys::ws_user_gsi(username)),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "could not read websocket connections");
                return;
            }
        };
        for item in conns {
            let Some(id) = get_s(&item, "connection_id") else {
                continue;
            };
            let res = self
                .client
                .post_to_connection()
                .connection_id(id)
                .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(
                    message.as_bytes().to_vec(),
                ))
                .send()
                .await;
            if let Err(e) = res {
                let gone = e.as_service_error().is_some_and(|s| s.is_gone_exception());
                if gone {
                    if let Err(e) = self.main.delete(&keys::ws_connection(id), None).await {
                        tracing::warn!(error = %e, "could not delete gone websocket connection");
                    }
                } else {
                    tracing::warn!(error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&e), "post_to_connection failed");
                }
            }
        }
    }
}

/// Stored connection lifetime (API Gateway closes connections after 2 hours).
const CONNECTION_TTL_SECS: i64 = 2 * 3600 + 600;

/// `$connect`: authenticates the `?token=` JWT and stores the connection for its user.
pub async fn connect(
    app: &App,
    connection_id: &str,
    token: Option<&str>,
) -> Result<String, ApiError> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(ApiError::unauthorized)?;
    let claims = session::check(app, token).await?;
    let now = app.clock.epoch();
    let mut item = keys::ws_connection(connection_id).item();
    item.insert("connection_id".into(), connection_id.into());
    item.insert("username".into(), claims.user.as_str().into());
    item.insert("connected_at".into(), now.into());
    item.insert("ttl".into(), (now + CONNECTION_TTL_SECS).into());
    app.main.put(item, None).await?;
    Ok(claims.user)
}

/// `$disconnect`: forgets the connection.
pub async fn disconnect(app: &App, connection_id: &str) -> Result<(), ApiError> {
    app.main
        .delete(&keys::ws_connection(connection_id), None)
        .await?;
    Ok(())
}

/// `$default`: a client message on a stored connection; returns the reply to send.
pub async fn message(app: &App, connection_id: &str, body: &str) -> Result<String, ApiError> {
    let key = keys::ws_connection(connection_id);
    let item = app
        .main
        .get(&key)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let owner = get_s(&item, "username")
        .ok_or_else(ApiError::unauthorized)?
        .to_owned();
    let action = parse_action(&owner, body);
    let update = match action {
        Ok(Action::Subscribe) => Some(
            Update::new()
                .set("gsi1pk", keys::ws_user_gsi(&owner))
                .set("gsi1sk", connection_id),
        ),
        Ok(Action::Unsubscribe) => Some(Update::new().remove("gsi1pk").remove("gsi1sk")),
        Err(_) => None,
    };
    if let Some(u) = update {
        match app.main.update(&key, u, Some(Cond::item_exists())).await {
            Ok(_) => {}
            Err(StoreError::ConditionFailed) => return Err(ApiError::unauthorized()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(reply(&action))
}

/// The `ws` function: one API Gateway WebSocket event (`$connect`, `$disconnect`, `$default`).
/// A refused `$connect` answers 401, which makes API Gateway refuse the upgrade.
pub async fn handle_event(
    app: &App,
    event: aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest,
) -> aws_lambda_events::apigw::ApiGatewayProxyResponse {
    let ctx = &event.request_context;
    let conn = ctx.connection_id.clone().unwrap_or_default();
    let route = ctx.route_key.as_deref().unwrap_or("$default");
    let result: Result<String, ApiError> = if conn.is_empty() {
        Err(ApiError::bad_request("missing connection id"))
    } else {
        match route {
            "$connect" => connect(app, &conn, event.query_string_parameters.first("token"))
                .await
                .map(|_| String::new()),
            "$disconnect" => disconnect(app, &conn).await.map(|_| String::new()),
            _ => message(app, &conn, event.body.as_deref().unwrap_or("")).await,
        }
    };
    let (status, body) = match result {
        Ok(body) => (200, body),
        Err(e) => (
            i64::from(e.status.as_u16()),
            serde_json::json!({"event": "error", "data": {"message": e.message}}).to_string(),
        ),
    };
    let mut res = aws_lambda_events::apigw::ApiGatewayProxyResponse::default();
    res.status_code = status;
    res.body = Some(aws_lambda_events::encodings::Body::Text(body));
    res
}
