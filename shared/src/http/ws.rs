//! `GET /ws?token=<JWT>`: the local server's WebSocket endpoint, fed by the in-process hub. A
//! missing or bad token is refused with 401 before the upgrade.

use axum::Router;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;

use super::Query;
use crate::app::App;
use crate::auth::session;
use crate::error::ApiError;
use crate::ws::{Action, parse_action, reply};

/// The local WebSocket route (404 when the app has no in-process hub, i.e. on AWS).
pub fn router() -> Router<App> {
    Router::new().route("/ws", get(upgrade))
}

#[derive(Deserialize)]
struct WsQuery {
    #[serde(default)]
    token: Option<String>,
}

async fn upgrade(
    State(app): State<App>,
    Query(q): Query<WsQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    if app.ws_hub.is_none() {
        return Err(ApiError::not_found("Not Found"));
    }
    let token = q
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(ApiError::unauthorized)?;
    let claims = session::check(&app, &token).await?;
    let ws = ws.map_err(|_| ApiError::bad_request("WebSocket upgrade required"))?;
    Ok(ws
        .on_upgrade(move |socket| serve(app, claims.user, socket))
        .into_response())
}

async fn serve(app: App, user: String, socket: WebSocket) {
    let Some(hub) = app.ws_hub.clone() else {
        return;
    };
    let conn = hub.connection_id();
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(msg)) = stream.next().await {
        let text = match msg {
            Message::Text(t) => t.to_string(),
            Message::Close(_) => break,
            _ => continue,
        };
        let action = parse_action(&user, &text);
        match action {
            Ok(Action::Subscribe) => hub.subscribe(&user, conn, tx.clone()),
            Ok(Action::Unsubscribe) => hub.unsubscribe(&user, conn),
            Err(_) => {}
        }
        if tx.send(reply(&action)).is_err() {
            break;
        }
    }
    hub.unsubscribe(&user, conn);
    drop(tx);
    writer.abort();
}
