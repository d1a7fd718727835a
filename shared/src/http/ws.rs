//! `GET /ws?token=<JWT>`: the local server's WebSocket endpoint, fed by the in-process hub. A
//! missing or bad token is refused with 401 before the upgrade.

use axum::Router;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Query;
use crate::app::App;
use crate::auth::session;
use crate::error::{ApiError, Envelope};
use crate::ws::{Action, parse_action, reply};

/// The local WebSocket route (404 when the app has no in-process hub, i.e. on AWS).
pub fn openapi_router() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(upgrade))
}

/// The local WebSocket route.
pub fn router() -> Router<App> {
    openapi_router().split_for_parts().0
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct WsQuery {
    /// Session token from `POST /auth` (browsers cannot set headers on a WebSocket).
    #[serde(default)]
    token: Option<String>,
}

#[utoipa::path(
    get,
    path = "/ws",
    tag = "payment",
    params(WsQuery),
    responses(
        (status = 101, description = "Switching Protocols: a WebSocket carrying `{\"action\":\"subscribe\"|\"unsubscribe\"}` from the client and payment status messages (JSON text frames) to it"),
        (status = 400, description = "WebSocket upgrade required", body = Envelope),
        (status = 401, description = "Missing, invalid, expired or revoked session token", body = Envelope),
        (status = 404, description = "No WebSocket hub in this deployment (served by the WebSocket API)", body = Envelope),
    )
)]
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
