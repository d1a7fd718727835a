//! `fcm` route group: device tokens (JWT) and admin push (Basic, queued → 202).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::routing::{delete, post};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::auth::{ApiKeyHolder, AuthUser};
use crate::devices::{self, Registration};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::{Json, Query};
use crate::notify::Notification;

async fn register(
    user: AuthUser,
    State(app): State<App>,
    Json(req): Json<Registration>,
) -> ApiResult<Json<Value>> {
    devices::register(&app, &user.username, &req).await?;
    Ok(Json(
        json!({ "status": true, "message": "Token registered" }),
    ))
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn remove(
    user: AuthUser,
    State(app): State<App>,
    Query(q): Query<TokenQuery>,
) -> ApiResult<Json<Value>> {
    let token = devices::parse_token(q.token.as_deref())?;
    devices::unregister(&app, &user.username, &token).await?;
    Ok(Json(json!({ "status": true, "message": "Token removed" })))
}

#[derive(Deserialize)]
struct SendReq {
    username: Option<String>,
    title: Option<String>,
    body: Option<String>,
    #[serde(default)]
    data: Option<serde_json::Map<String, Value>>,
}

/// Keys FCM reserves in `data` (rejected by FCM with INVALID_ARGUMENT).
fn reserved(key: &str) -> bool {
    matches!(
        key,
        "from" | "message_type" | "notification" | "collapse_key" | "priority" | "ttl"
    ) || key.starts_with("google")
        || key.starts_with("gcm")
}

/// Validates a push request into the queued message; FCM wants string data values, so numbers and
/// booleans are stringified.
fn validate(req: SendReq) -> Result<Notification, ApiError> {
    let mut errors = Vec::new();
    let username = req
        .username
        .as_deref()
        .map(|u| crate::domain::Username::parse(u).map(|u| u.as_str().to_owned()));
    let username = match username {
        Some(Ok(u)) => Some(u),
        _ => {
            errors.push(FieldError::new("username", "must be an existing username"));
            None
        }
    };
    let mut text = |field: &str, v: Option<String>, max: usize| -> String {
        let s = v.unwrap_or_default().trim().to_owned();
        if s.is_empty() || s.chars().count() > max {
            errors.push(FieldError::new(
                field,
                format!("must be 1-{max} characters"),
            ));
        }
        s
    };
    let title = text("title", req.title, 200);
    let body = text("body", req.body, 2000);
    let mut data = BTreeMap::new();
    for (k, v) in req.data.unwrap_or_default() {
        let v = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                errors.push(FieldError::new(
                    format!("data.{k}"),
                    "must be a string, number or boolean",
                ));
                continue;
            }
        };
        if reserved(&k) || k.is_empty() {
            errors.push(FieldError::new(format!("data.{k}"), "is a reserved key"));
        }
        data.insert(k, v);
    }
    if data.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() > 4000 {
        errors.push(FieldError::new("data", "must be at most 4000 bytes"));
    }
    match username {
        Some(username) if errors.is_empty() => Ok(Notification::Push {
            username,
            title,
            body,
            data,
        }),
        _ => Err(ApiError::validation(errors)),
    }
}

async fn send(
    _caller: ApiKeyHolder,
    State(app): State<App>,
    Json(req): Json<SendReq>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let message = validate(req)?;
    let Notification::Push { username, .. } = &message else {
        return Err(ApiError::internal());
    };
    if app
        .main
        .get(&crate::store::keys::info(username))
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("Account does not exist"));
    }
    app.queue.send(&message).await.map_err(|e| {
        tracing::error!(error = %e, "could not enqueue push");
        ApiError::unavailable()
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "status": true, "message": "Notification queued" })),
    ))
}

/// The fcm route group.
pub fn router() -> Router<App> {
    Router::new()
        .route("/fcm/register", post(register))
        .route("/fcm/token", delete(remove))
        .route("/fcm/send", post(send))
}
