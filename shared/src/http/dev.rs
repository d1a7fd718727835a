//! Local-mode-only developer endpoints: `GET /_dev/outbox?to=<email-or-phone>` shows the mail, SMS
//! and push messages the local queue delivered (newest last), so a verification link or an OTP can
//! be read without a provider; `GET /docs`, the API description as a page. `POST /_dev/users`
//! `{username}` creates an active user with an empty wallet and answers a token (scripts and
//! black-box payment journeys). The Xendit simulator (`/_dev/xendit`) is its own crate,
//! `infra/xendit-sim`, which the local server mounts next to this group. `userstate serve` merges
//! this group only on the local backend, and the handlers refuse on any other backend as well.

use axum::extract::State;
use axum::response::Html;
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::config::Backend;
use crate::devtools::DevUsers;
use crate::domain::account::Username;
use crate::http::error::{ApiError, Envelope};
use crate::http::health::GenerateDocument;
use crate::http::{Json, Query};
use crate::notify::local::{self, OutboxEntry};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct OutboxQuery {
    /// E-mail address, phone number or username the messages went to.
    to: String,
}

/// Messages the local queue delivered to `to` (local mode only).
#[utoipa::path(
    get,
    path = "/_dev/outbox",
    tag = "dev",
    params(OutboxQuery),
    responses(
        (status = 200, description = "Delivered messages, oldest first", body = Vec<OutboxEntry>),
        (status = 404, description = "Not in local mode", body = Envelope),
    )
)]
async fn outbox(
    State(app): State<App>,
    Query(q): Query<OutboxQuery>,
) -> Result<Json<Vec<OutboxEntry>>, ApiError> {
    if app.config.backend != Backend::Local {
        return Err(ApiError::not_found("Not Found"));
    }
    let to = q.to.trim().to_lowercase();
    app.queue.flush().await;
    Ok(Json(local::read(&app.main, &to).await?))
}

/// This API's documentation as a browsable page (local mode only).
#[utoipa::path(
    get,
    path = "/docs",
    tag = "dev",
    responses(
        (status = 200, description = "The OpenAPI document rendered as HTML", content_type = "text/html", body = String),
        (status = 404, description = "Not in local mode", body = Envelope),
    )
)]
async fn docs(
    State(app): State<App>,
    generate: Option<Extension<GenerateDocument>>,
) -> Result<Html<String>, ApiError> {
    if app.config.backend != Backend::Local {
        return Err(ApiError::not_found("Not Found"));
    }
    let json = match generate {
        Some(Extension(GenerateDocument(render))) => render(true),
        None => crate::http::openapi::openapi_json(true),
    };
    let doc: serde_json::Value = serde_json::from_str(&json).map_err(|_| ApiError::internal())?;
    Ok(Html(crate::http::docs::render(&doc)))
}

/// The dev route group, with its documentation (merge only in local mode).
pub fn openapi_router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(outbox))
        .routes(routes!(docs))
        .routes(routes!(create_user))
}

/// The dev route group (merge only in local mode).
pub fn router() -> Router<App> {
    openapi_router().split_for_parts().0
}

#[derive(Deserialize, ToSchema)]
struct NewUser {
    username: String,
}

/// The created user and a session token for it.
#[derive(Serialize, ToSchema)]
struct NewUserToken {
    username: String,
    token: String,
}

/// Creates an active user with an empty wallet and answers a session token (local mode only).
#[utoipa::path(
    post,
    path = "/_dev/users",
    tag = "dev",
    request_body = NewUser,
    responses(
        (status = 200, description = "The user exists and is signed in", body = NewUserToken),
        (status = 400, description = "Invalid username", body = Envelope),
        (status = 404, description = "Not in local mode", body = Envelope),
        (status = 409, description = "Username is already registered", body = Envelope),
    )
)]
async fn create_user(
    State(app): State<App>,
    Json(req): Json<NewUser>,
) -> Result<Json<NewUserToken>, ApiError> {
    if app.config.backend != Backend::Local {
        return Err(ApiError::not_found("Not Found"));
    }
    let username = Username::parse(&req.username)?;
    DevUsers::new(app.main.clone(), app.clock.clone())
        .create_active_user(&username)
        .await?;
    let issued = app.sessions().issue(&username, false).await?;
    Ok(Json(NewUserToken {
        username: username.as_str().to_owned(),
        token: issued.token,
    }))
}
