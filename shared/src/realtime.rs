//! Real-time payment status, the service over the [`crate::ws`] port. Connections — of the API
//! Gateway WebSocket API on AWS, of the local server's `/ws` locally — are stored as
//! `WSCONN#{id}` with their user and session (GSI1 `WSUSER#{u}` while subscribed). A publish
//! reaches only connections whose session is still live (checked in one batch read with the
//! account, like every request): a connection of a session that was logged off or revoked, or of a
//! deactivated account, gets nothing and is closed and forgotten instead.

use crate::auth::session::{SessionError, Sessions};
use crate::clock::ClockRef;
use crate::domain::Username;
use crate::store::{
    Cond, Item, Query, StoreError, TableRef, Update, get_s, keys, query_all, schema::GSI1,
};
use crate::ws::{Action, PaymentStatus, WsSendError, WsSenderRef, parse_action, reply};

/// Stored connection lifetime (API Gateway closes connections after 2 hours).
const CONNECTION_TTL_SECS: i64 = 2 * 3600 + 600;

/// Why a connection's request was refused.
#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    /// No token, an unknown connection, or a session that is no longer live.
    #[error("unauthorized")]
    Unauthorized,
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Connections and their subscriptions: the main table, the clock, the push port and the
/// sessions (every delivery re-checks the connection's session).
#[derive(Clone)]
pub struct Realtime {
    table: TableRef,
    clock: ClockRef,
    ws: WsSenderRef,
    sessions: Sessions,
}

impl Realtime {
    pub fn new(table: TableRef, clock: ClockRef, ws: WsSenderRef, sessions: Sessions) -> Self {
        Realtime {
            table,
            clock,
            ws,
            sessions,
        }
    }

    /// Tells a user's subscribers that an invoice changed status.
    pub async fn emit_payment_status(&self, username: &Username, data: &PaymentStatus) {
        let msg = serde_json::json!({ "event": "payment:status:update", "data": data }).to_string();
        self.publish(username, &msg).await;
    }

    /// Delivers `message` to every subscribed connection of `username` whose session is live; closes
    /// and forgets the others, and forgets gone ones. Best effort: failures are logged, never returned
    /// (a status change must not fail because a browser went away).
    pub async fn publish(&self, username: &Username, message: &str) {
        let conns = match query_all(
            self.table.as_ref(),
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
        let live = match self.sessions.live(username, &sids).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "could not check websocket sessions");
                return;
            }
        };
        for ((id, _), live) in conns.iter().zip(live) {
            if !live {
                tracing::info!(connection_id = %id, "closing a websocket whose session was revoked");
                self.ws.close(id).await;
                self.forget(id).await;
                continue;
            }
            self.send_to(id, message).await;
        }
    }

    /// Deletes a stored connection (logged, never returned).
    async fn forget(&self, connection_id: &str) {
        if let Err(e) = self
            .table
            .delete(&keys::ws_connection(connection_id), None)
            .await
        {
            tracing::warn!(error = %e, "could not delete websocket connection");
        }
    }

    /// Stores an open connection of `username`'s session `sid`.
    pub async fn register(
        &self,
        connection_id: &str,
        username: &Username,
        sid: &str,
    ) -> Result<(), StoreError> {
        let now = self.clock.epoch();
        let mut item = keys::ws_connection(connection_id).item();
        item.insert("connection_id".into(), connection_id.into());
        item.insert("username".into(), username.as_str().into());
        item.insert("sid".into(), sid.into());
        item.insert("connected_at".into(), now.into());
        item.insert("ttl".into(), (now + CONNECTION_TTL_SECS).into());
        self.table.put(item, None).await
    }

    /// `$connect`: authenticates the `?token=` JWT and stores the connection for its user and session.
    pub async fn connect(
        &self,
        connection_id: &str,
        token: Option<&str>,
    ) -> Result<Username, RealtimeError> {
        let (user, sid) = self.authenticate(token).await?;
        self.register(connection_id, &user, &sid).await?;
        Ok(user)
    }

    /// The user and session of a connection's `?token=`, if it is live.
    pub async fn authenticate(
        &self,
        token: Option<&str>,
    ) -> Result<(Username, String), RealtimeError> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(RealtimeError::Unauthorized)?;
        let claims = self.sessions.check(token).await?;
        Ok((Username::from_stored(claims.user), claims.sid))
    }

    /// `$disconnect`: forgets the connection.
    pub async fn disconnect(&self, connection_id: &str) -> Result<(), RealtimeError> {
        self.table
            .delete(&keys::ws_connection(connection_id), None)
            .await?;
        Ok(())
    }

    /// The owner of a stored connection, if its session is still live; a connection of a revoked
    /// session is forgotten (`None`).
    async fn live_owner(
        &self,
        item: &Item,
        connection_id: &str,
    ) -> Result<Option<Username>, RealtimeError> {
        let Some(owner) = get_s(item, "username").map(Username::from_stored) else {
            return Ok(None);
        };
        let sid = get_s(item, "sid").unwrap_or_default();
        let live = self
            .sessions
            .live(&owner, &[sid])
            .await?
            .first()
            .copied()
            .unwrap_or(false);
        if !live {
            self.forget(connection_id).await;
            return Ok(None);
        }
        Ok(Some(owner))
    }

    /// `$default`: a client message on a stored connection; returns the reply to send. A connection
    /// whose session was revoked since it connected is forgotten and refused (401).
    pub async fn message(&self, connection_id: &str, body: &str) -> Result<String, RealtimeError> {
        let key = keys::ws_connection(connection_id);
        let item = self
            .table
            .get(&key)
            .await?
            .ok_or(RealtimeError::Unauthorized)?;
        let owner = self
            .live_owner(&item, connection_id)
            .await?
            .ok_or(RealtimeError::Unauthorized)?;
        let action = parse_action(&owner, body);
        let update = match action {
            Ok(Action::Subscribe) => Some(
                Update::new()
                    .set("gsi1pk", keys::ws_user_gsi(&owner))
                    .set("gsi1sk", connection_id),
            ),
            Ok(Action::Unsubscribe) => Some(Update::new().remove("gsi1pk").remove("gsi1sk")),
            Ok(Action::Ping) | Err(_) => None,
        };
        if let Some(u) = update {
            match self.table.update(&key, u, Some(Cond::item_exists())).await {
                Ok(_) => {}
                Err(StoreError::ConditionFailed) => return Err(RealtimeError::Unauthorized),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(reply(&action))
    }

    /// Sends `message` to one connection through the WebSocket port (API Gateway's Management
    /// API on AWS): pushes and replies to client messages alike. Best effort: a connection gone
    /// meanwhile is forgotten, any other failure logged.
    pub async fn send_to(&self, connection_id: &str, message: &str) {
        match self.ws.post(connection_id, message).await {
            Ok(()) => {}
            Err(WsSendError::Gone) => self.forget(connection_id).await,
            Err(WsSendError::Failed(e)) => {
                tracing::warn!(connection_id, error = %e, "websocket post failed")
            }
        }
    }

    /// Whether a stored connection's session is still live (the local endpoint re-checks it
    /// periodically and closes the socket once it is not).
    pub async fn still_live(&self, connection_id: &str) -> Result<bool, RealtimeError> {
        let Some(item) = self.table.get(&keys::ws_connection(connection_id)).await? else {
            return Ok(false);
        };
        Ok(self.live_owner(&item, connection_id).await?.is_some())
    }
}

/// Payments announce status changes through this service.
#[async_trait::async_trait]
impl crate::payments::invoice::StatusPush for Realtime {
    async fn payment_status(&self, username: &str, status: &PaymentStatus) {
        self.emit_payment_status(&Username::from_stored(username), status)
            .await;
    }
}
