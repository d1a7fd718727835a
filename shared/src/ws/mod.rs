//! Real-time payment status. Connections — of the API Gateway WebSocket API on AWS, of the local
//! server's `/ws` locally — are stored as `WSCONN#{id}` with their user and session (GSI1
//! `WSUSER#{u}` while subscribed). A publish reaches only connections whose session is still live
//! (checked in one batch read with the account, like every request): a connection of a session
//! that was logged off or revoked, or of a deactivated account, gets nothing and is closed and
//! forgotten instead. The [`WsSender`] port delivers to one connection: the API Gateway Management
//! API on AWS, the in-process [`LocalHub`] locally.
//!
//! Messages in: `{"action":"subscribe:payment"}` / `{"action":"unsubscribe:payment"}` — always for
//! the connection's own (token) user. Messages out: `{"event":"payment:status:update","data":{…}}`.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

use crate::app::App;
use crate::auth::session;
use crate::error::ApiError;
use crate::store::{Cond, Item, Query, StoreError, Update, get_s, keys, query_all, schema::GSI1};

/// Why a message did not reach a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsSendError {
    /// The connection no longer exists (API Gateway `GoneException`): forget it.
    #[error("connection gone")]
    Gone,
    /// Any other failure (logged; the connection is kept).
    #[error("{0}")]
    Failed(String),
}

/// The port: delivers to, or closes, one connection.
#[async_trait]
pub trait WsSender: Send + Sync + 'static {
    async fn post(&self, connection_id: &str, message: &str) -> Result<(), WsSendError>;
    /// Closes a connection (best effort; a gone one is fine).
    async fn close(&self, connection_id: &str);
}

/// Shared handle to the port.
pub type WsSenderRef = std::sync::Arc<dyn WsSender>;

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
    publish(app, username, &msg).await;
}

/// Delivers `message` to every subscribed connection of `username` whose session is live; closes
/// and forgets the others, and forgets gone ones. Best effort: failures are logged, never returned
/// (a status change must not fail because a browser went away).
pub async fn publish(app: &App, username: &str, message: &str) {
    let conns = match query_all(
        app.main.as_ref(),
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
    let conns: Vec<(String, String)> = conns
        .iter()
        .filter_map(|item| {
            let id = get_s(item, "connection_id")?;
            Some((
                id.to_owned(),
                get_s(item, "sid").unwrap_or_default().to_owned(),
            ))
        })
        .collect();
    if conns.is_empty() {
        return;
    }
    let sids: Vec<&str> = conns.iter().map(|(_, sid)| sid.as_str()).collect();
    let live = match session::live(app, username, &sids).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "could not check websocket sessions");
            return;
        }
    };
    for ((id, _), live) in conns.iter().zip(live) {
        if !live {
            tracing::info!(connection_id = %id, "closing a websocket whose session was revoked");
            app.ws.close(id).await;
            forget(app, id).await;
            continue;
        }
        match app.ws.post(id, message).await {
            Ok(()) => {}
            Err(WsSendError::Gone) => forget(app, id).await,
            Err(WsSendError::Failed(e)) => {
                tracing::warn!(connection_id = %id, error = %e, "websocket post failed")
            }
        }
    }
}

/// Deletes a stored connection (logged, never returned).
async fn forget(app: &App, connection_id: &str) {
    if let Err(e) = app
        .main
        .delete(&keys::ws_connection(connection_id), None)
        .await
    {
        tracing::warn!(error = %e, "could not delete websocket connection");
    }
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
    if let Some(u) = msg.username.as_deref()
        && !u.eq_ignore_ascii_case(owner)
    {
        return Err("forbidden: you may only subscribe to your own payments".into());
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

/// What the local hub hands a connection's writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Text(String),
    /// Close the socket.
    Close,
}

/// In-process hub: the writers of the local server's open WebSocket connections, by id.
#[derive(Default)]
pub struct LocalHub {
    conns: Mutex<HashMap<String, UnboundedSender<Outgoing>>>,
}

impl LocalHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, UnboundedSender<Outgoing>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Registers the writer of an open connection.
    pub fn attach(&self, connection_id: &str, tx: UnboundedSender<Outgoing>) {
        self.lock().insert(connection_id.to_owned(), tx);
    }
    /// Forgets a closed connection.
    pub fn detach(&self, connection_id: &str) {
        self.lock().remove(connection_id);
    }
    /// Number of open connections.
    pub fn open(&self) -> usize {
        self.lock().len()
    }
}

#[async_trait]
impl WsSender for LocalHub {
    async fn post(&self, connection_id: &str, message: &str) -> Result<(), WsSendError> {
        let mut conns = self.lock();
        let sent = conns
            .get(connection_id)
            .is_some_and(|tx| tx.send(Outgoing::Text(message.to_owned())).is_ok());
        if sent {
            Ok(())
        } else {
            conns.remove(connection_id);
            Err(WsSendError::Gone)
        }
    }
    async fn close(&self, connection_id: &str) {
        if let Some(tx) = self.lock().remove(connection_id) {
            let _ = tx.send(Outgoing::Close);
        }
    }
}

/// The sender of a function without a WebSocket endpoint: nothing is delivered (and nothing
/// forgotten: the connections belong to a deployment that has one).
pub struct UnconfiguredWs;

#[async_trait]
impl WsSender for UnconfiguredWs {
    async fn post(&self, _: &str, _: &str) -> Result<(), WsSendError> {
        Err(WsSendError::Failed(
            "WS_MANAGEMENT_ENDPOINT is not configured".into(),
        ))
    }
    async fn close(&self, _: &str) {}
}

// ---------------------------------------------------------------------------------------------
// AWS: API Gateway WebSocket API.

/// Delivers through the API Gateway Management API (`PostToConnection`, `DeleteConnection`).
pub struct ApiGatewayPush {
    client: aws_sdk_apigatewaymanagement::Client,
}

impl ApiGatewayPush {
    pub fn new(client: aws_sdk_apigatewaymanagement::Client) -> Self {
        ApiGatewayPush { client }
    }
}

#[async_trait]
impl WsSender for ApiGatewayPush {
    async fn post(&self, connection_id: &str, message: &str) -> Result<(), WsSendError> {
        let res = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(
                message.as_bytes().to_vec(),
            ))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_gone_exception()) => {
                Err(WsSendError::Gone)
            }
            Err(e) => Err(WsSendError::Failed(
                aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&e).to_string(),
            )),
        }
    }
    async fn close(&self, connection_id: &str) {
        let res = self
            .client
            .delete_connection()
            .connection_id(connection_id)
            .send()
            .await;
        if let Err(e) = res
            && !e.as_service_error().is_some_and(|s| s.is_gone_exception())
        {
            tracing::warn!(
                error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&e),
                "delete_connection failed"
            );
        }
    }
}

/// Stored connection lifetime (API Gateway closes connections after 2 hours).
const CONNECTION_TTL_SECS: i64 = 2 * 3600 + 600;

/// Stores an open connection of `username`'s session `sid`.
pub async fn register(
    app: &App,
    connection_id: &str,
    username: &str,
    sid: &str,
) -> Result<(), StoreError> {
    let now = app.clock.epoch();
    let mut item = keys::ws_connection(connection_id).item();
    item.insert("connection_id".into(), connection_id.into());
    item.insert("username".into(), username.into());
    item.insert("sid".into(), sid.into());
    item.insert("connected_at".into(), now.into());
    item.insert("ttl".into(), (now + CONNECTION_TTL_SECS).into());
    app.main.put(item, None).await
}

/// `$connect`: authenticates the `?token=` JWT and stores the connection for its user and session.
pub async fn connect(
    app: &App,
    connection_id: &str,
    token: Option<&str>,
) -> Result<String, ApiError> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(ApiError::unauthorized)?;
    let claims = session::check(app, token).await?;
    register(app, connection_id, &claims.user, &claims.sid).await?;
    Ok(claims.user)
}

/// `$disconnect`: forgets the connection.
pub async fn disconnect(app: &App, connection_id: &str) -> Result<(), ApiError> {
    app.main
        .delete(&keys::ws_connection(connection_id), None)
        .await?;
    Ok(())
}

/// The owner of a stored connection, if its session is still live; a connection of a revoked
/// session is forgotten (`None`).
async fn live_owner(
    app: &App,
    item: &Item,
    connection_id: &str,
) -> Result<Option<String>, ApiError> {
    let Some(owner) = get_s(item, "username") else {
        return Ok(None);
    };
    let sid = get_s(item, "sid").unwrap_or_default();
    let live = session::live(app, owner, &[sid])
        .await?
        .first()
        .copied()
        .unwrap_or(false);
    if !live {
        forget(app, connection_id).await;
        return Ok(None);
    }
    Ok(Some(owner.to_owned()))
}

/// `$default`: a client message on a stored connection; returns the reply to send. A connection
/// whose session was revoked since it connected is forgotten and refused (401).
pub async fn message(app: &App, connection_id: &str, body: &str) -> Result<String, ApiError> {
    let key = keys::ws_connection(connection_id);
    let item = app
        .main
        .get(&key)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let owner = live_owner(app, &item, connection_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
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

/// Whether a stored connection's session is still live (the local endpoint re-checks it
/// periodically and closes the socket once it is not).
pub async fn still_live(app: &App, connection_id: &str) -> Result<bool, ApiError> {
    let Some(item) = app.main.get(&keys::ws_connection(connection_id)).await? else {
        return Ok(false);
    };
    Ok(live_owner(app, &item, connection_id).await?.is_some())
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
