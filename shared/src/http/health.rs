//! `GET /health`: liveness, as the original documented it; and `GET /openapi.json`, the API
//! description (served by the health function so every deployment answers it).

use axum::Router;
use axum::extract::State;
use chrono::SecondsFormat;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::http::Json;

/// The health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "OK")]
    pub status: &'static str,
    /// ISO-8601 UTC.
    #[schema(example = "2024-01-01T00:00:00.000Z")]
    pub timestamp: String,
    /// Seconds since this process started.
    pub uptime: f64,
}

/// Liveness.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses((status = 200, description = "The process is up", body = Health))
)]
async fn health(State(app): State<App>) -> Json<Health> {
    Json(Health {
        status: "OK",
        timestamp: app.clock.now().to_rfc3339_opts(SecondsFormat::Millis, true),
        uptime: app.started.elapsed().as_secs_f64(),
    })
}

/// This API's OpenAPI 3.1 document, generated from the handlers.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
async fn openapi_json(State(app): State<App>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let local = app.config.backend == crate::config::Backend::Local;
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        crate::http::openapi::openapi_json(local),
    )
        .into_response()
}

/// The health route group, with its documentation.
pub fn openapi_router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(openapi_json))
}

/// The health route group.
pub fn router() -> Router<App> {
    openapi_router().split_for_parts().0
}
