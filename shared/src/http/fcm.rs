//! `fcm` route group: device tokens (JWT) and admin push (Basic, queued → 202).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::devices::{self, Devices, Pushes, Registration};
use crate::domain::Username;
use crate::http::error::{ApiError, ApiResult, Envelope, FieldError};
use crate::http::extract::{ApiKeyHolder, AuthUser};
use crate::http::reply::Done;
use crate::http::{Json, Query};

#[utoipa::path(
    post,
    path = "/fcm/register",
    tag = "fcm",
    request_body = Registration,
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Token registered: `{status, message}`", body = Done),
    )
)]
async fn register(
    user: AuthUser,
    State(devices): State<Devices>,
    Json(req): Json<Registration>,
) -> ApiResult<Json<Done>> {
    let device = req.parse()?;
    devices.register(&user.username, &device).await?;
    Ok(Done::new("Token registered"))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TokenQuery {
    token: Option<String>,
}

#[utoipa::path(
    delete,
    path = "/fcm/token",
    tag = "fcm",
    params(TokenQuery),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Token removed: `{status, message}`", body = Done),
        (status = 404, description = "Token Not Found", body = Envelope),
    )
)]
async fn remove(
    user: AuthUser,
    State(registered): State<Devices>,
    Query(q): Query<TokenQuery>,
) -> ApiResult<Json<Done>> {
    let token = devices::parse_token(q.token.as_deref())?;
    registered.unregister(&user.username, &token).await?;
    Ok(Done::new("Token removed"))
}

#[derive(Deserialize, ToSchema)]
struct SendReq {
    username: Option<String>,
    title: Option<String>,
    body: Option<String>,
    /// String, number or boolean values (sent as strings).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
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

/// An admin push as checked.
struct PushRequest {
    username: Username,
    title: String,
    body: String,
    data: BTreeMap<String, String>,
}

/// Validates a push request; FCM wants string data values, so numbers and
/// booleans are stringified.
fn validate(req: SendReq) -> Result<PushRequest, ApiError> {
    let mut errors = Vec::new();
    let username = req.username.as_deref().map(Username::parse);
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
        Some(username) if errors.is_empty() => Ok(PushRequest {
            username,
            title,
            body,
            data,
        }),
        _ => Err(ApiError::validation(errors)),
    }
}

#[utoipa::path(
    post,
    path = "/fcm/send",
    tag = "fcm",
    request_body = SendReq,
    security(("basicAuth" = [])),
    responses(
        (status = 202, description = "Notification queued: `{status, message}`", body = Done),
        (status = 404, description = "Account does not exist", body = Envelope),
    )
)]
async fn send(
    _caller: ApiKeyHolder,
    State(pushes): State<Pushes>,
    Json(req): Json<SendReq>,
) -> ApiResult<(StatusCode, Json<Done>)> {
    let push = validate(req)?;
    pushes
        .queue(&push.username, push.title, push.body, push.data)
        .await?;
    Ok((StatusCode::ACCEPTED, Done::new("Notification queued")))
}

/// The fcm route group, with its documentation.
pub fn openapi_router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(remove))
        .routes(routes!(send))
}

/// The fcm route group.
pub fn router() -> Router<App> {
    openapi_router().split_for_parts().0
}
