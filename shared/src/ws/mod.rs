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

/// An action a client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Subscribe,
    Unsubscribe,
    /// A keep-alive (API Gateway closes a connection idle for 10 minutes); answered `pong`.
    Ping,
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
        "ping" => Ok(Action::Ping),
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
        Ok(Action::Ping) => serde_json::json!({"event": "pong"}),
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
    /// Close the socket with 1001 "Going away" (idle or too old, as API Gateway does).
    GoingAway,
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
