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
use crate::ws::{LocalHub, Outgoing};

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
    let Some(hub) = app.ws_hub.clone() else {
        return Err(ApiError::not_found("Not Found"));
    };
    let token = q
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(ApiError::unauthorized)?;
    let claims = session::check(&app, &token).await?;
    let ws = ws.map_err(|_| ApiError::bad_request("WebSocket upgrade required"))?;
    let conn = format!("local-{}", uuid::Uuid::new_v4().simple());
    crate::ws::register(&app, &conn, &claims.user, &claims.sid).await?;
    Ok(ws
        .on_upgrade(move |socket| serve(app, hub, conn, socket))
        .into_response())
}

/// One open local connection: client messages go through the same handling as the `ws` function's
/// `$default`, published events arrive through the hub, and the session is re-checked every
/// `WS_SESSION_RECHECK_SECS`: once it is revoked (logoff, password change or reset, deactivation)
/// the socket is closed.
async fn serve(app: App, hub: std::sync::Arc<LocalHub>, conn: String, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Outgoing>();
    hub.attach(&conn, tx.clone());
    let mut writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            match out {
                Outgoing::Text(text) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Outgoing::Close => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
            }
        }
    });
    let mut recheck =
        tokio::time::interval(std::time::Duration::from_secs(app.config.ws_recheck_secs));
    recheck.tick().await;
    loop {
        tokio::select! {
            _ = &mut writer => break,
            _ = recheck.tick() => {
                if !crate::ws::still_live(&app, &conn).await.unwrap_or(true) {
                    let _ = tx.send(Outgoing::Close);
                }
            }
            msg = stream.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                match crate::ws::message(&app, &conn, &text).await {
                    Ok(reply) => {
                        let _ = tx.send(Outgoing::Text(reply));
                    }
                    Err(e) => {
                        let reply = serde_json::json!({"event": "error", "data": {"message": e.message}});
                        let _ = tx.send(Outgoing::Text(reply.to_string()));
                        if e.status == http::StatusCode::UNAUTHORIZED {
                            let _ = tx.send(Outgoing::Close);
                        }
                    }
                }
            }
        }
    }
    hub.detach(&conn);
    writer.abort();
    if let Err(e) = crate::ws::disconnect(&app, &conn).await {
        tracing::debug!(error = %e.message, "could not forget a closed local websocket");
    }
}
