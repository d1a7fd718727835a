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
use crate::http::error::{ApiError, Envelope};
use crate::realtime::{Realtime, RealtimeError};
use crate::ws::{LocalHub, Outgoing};

/// The local server's WebSocket endpoint: the realtime service, the in-process hub (none on
/// AWS, where the WebSocket API serves connections), how often a session is re-checked, and the
/// idle and total limits of a connection (API Gateway's: 10 minutes, 2 hours).
#[derive(Clone)]
pub struct LocalSockets {
    pub realtime: Realtime,
    pub hub: Option<std::sync::Arc<LocalHub>>,
    pub recheck_secs: u64,
    pub idle: std::time::Duration,
    pub max_age: std::time::Duration,
}

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
    State(local): State<LocalSockets>,
    Query(q): Query<WsQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let Some(hub) = local.hub.clone() else {
        return Err(ApiError::not_found("Not Found"));
    };
    let (user, sid) = local.realtime.authenticate(q.token.as_deref()).await?;
    let ws = ws.map_err(|_| ApiError::bad_request("WebSocket upgrade required"))?;
    let conn = format!("local-{}", uuid::Uuid::new_v4().simple());
    local.realtime.register(&conn, &user, &sid).await?;
    Ok(ws
        .on_upgrade(move |socket| serve(local, hub, conn, socket))
        .into_response())
}

/// One open local connection: client messages go through the same handling as the `ws` function's
/// `$default`, published events arrive through the hub, and the session is re-checked every
/// `WS_SESSION_RECHECK_SECS`: once it is revoked (logoff, password change or reset, deactivation)
/// the socket is closed. Like API Gateway, it is also closed (1001 "Going away") after
/// `WS_IDLE_TIMEOUT_SECS` without a client message and after `WS_MAX_CONNECTION_SECS` in all.
async fn serve(
    local: LocalSockets,
    hub: std::sync::Arc<LocalHub>,
    conn: String,
    socket: WebSocket,
) {
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
                Outgoing::GoingAway => {
                    let frame = axum::extract::ws::CloseFrame {
                        code: axum::extract::ws::close_code::AWAY,
                        reason: "Going away".into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    break;
                }
            }
        }
    });
    let mut recheck = tokio::time::interval(std::time::Duration::from_secs(local.recheck_secs));
    recheck.tick().await;
    let max_age = tokio::time::sleep(local.max_age);
    let idle = tokio::time::sleep(local.idle);
    tokio::pin!(max_age, idle);
    loop {
        tokio::select! {
            _ = &mut writer => break,
            () = &mut max_age => {
                let _ = tx.send(Outgoing::GoingAway);
                let _ = (&mut writer).await;
                break;
            }
            () = &mut idle => {
                let _ = tx.send(Outgoing::GoingAway);
                let _ = (&mut writer).await;
                break;
            }
            _ = recheck.tick() => {
                if !local.realtime.still_live(&conn).await.unwrap_or(true) {
                    let _ = tx.send(Outgoing::Close);
                }
            }
            msg = stream.next() => {
                idle.as_mut().reset(tokio::time::Instant::now() + local.idle);
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                match local.realtime.message(&conn, &text).await {
                    Ok(reply) => {
                        let _ = tx.send(Outgoing::Text(reply));
                    }
                    Err(e) => {
                        let e = ApiError::from(e);
                        let reply = error_event(&e);
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
    if let Err(e) = local.realtime.disconnect(&conn).await {
        tracing::debug!(error = %e, "could not forget a closed local websocket");
    }
}

/// The `{"event":"error"}` message a refused client message gets.
fn error_event(e: &ApiError) -> String {
    serde_json::json!({"event": "error", "data": {"message": e.message}}).to_string()
}

/// The `ws` function: one API Gateway WebSocket event (`$connect`, `$disconnect`, `$default`).
/// A refused `$connect` answers 401, which makes API Gateway refuse the upgrade.
pub async fn handle_event(
    realtime: &Realtime,
    event: aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest,
) -> aws_lambda_events::apigw::ApiGatewayProxyResponse {
    let ctx = &event.request_context;
    let conn = ctx.connection_id.clone().unwrap_or_default();
    let route = ctx.route_key.as_deref().unwrap_or("$default");
    let result: Result<String, ApiError> = if conn.is_empty() {
        Err(ApiError::bad_request("missing connection id"))
    } else {
        let r: Result<String, RealtimeError> = match route {
            "$connect" => realtime
                .connect(&conn, event.query_string_parameters.first("token"))
                .await
                .map(|_| String::new()),
            "$disconnect" => realtime.disconnect(&conn).await.map(|_| String::new()),
            // API Gateway drops what a `$default` integration answers (the route has no route
            // response), so the reply goes to the client through the Management API.
            _ => match realtime
                .message(&conn, event.body.as_deref().unwrap_or(""))
                .await
            {
                Ok(reply) => {
                    realtime.send_to(&conn, &reply).await;
                    Ok(String::new())
                }
                Err(e) => Err(e),
            },
        };
        r.map_err(ApiError::from)
    };
    let (status, body) = match result {
        Ok(body) => (200, body),
        Err(e) => (i64::from(e.status.as_u16()), error_event(&e)),
    };
    let mut res = aws_lambda_events::apigw::ApiGatewayProxyResponse::default();
    res.status_code = status;
    res.body = Some(aws_lambda_events::encodings::Body::Text(body));
    res
}
