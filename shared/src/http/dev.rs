//! Local-mode-only developer endpoints: `GET /_dev/outbox?to=<email-or-phone>` shows the mail, SMS
//! and push messages the local queue delivered (newest last), so a verification link or an OTP can
//! be read without a provider; `GET /docs`, the API description as a page. `userstate serve`
//! merges this group only on the local backend, and the handlers refuse on any other backend as
//! well.

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::config::Backend;
use crate::error::{ApiError, Envelope};
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
async fn docs(State(app): State<App>) -> Result<Html<String>, ApiError> {
    if app.config.backend != Backend::Local {
        return Err(ApiError::not_found("Not Found"));
    }
    let doc = serde_json::to_value(crate::http::openapi()).map_err(|_| ApiError::internal())?;
    Ok(Html(crate::http::docs::render(&doc)))
}

/// The dev route group, with its documentation (merge only in local mode).
pub fn openapi_router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(outbox))
        .routes(routes!(docs))
}

/// The dev route group (merge only in local mode).
pub fn router() -> Router<App> {
    openapi_router().split_for_parts().0
}
