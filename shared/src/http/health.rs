//! `GET /health`: liveness, as the original documented it; and `GET /openapi.json`, the API
//! description (served by the health function so every deployment answers it).

use axum::Extension;
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

/// The shape of `GET /openapi.json`: an OpenAPI 3.1 document (its parts are described by the
/// OpenAPI specification itself, so they are open objects here).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // only its schema is used
pub struct OpenApiDocument {
    /// The OpenAPI version, `3.1.0`.
    #[schema(example = "3.1.0")]
    openapi: String,
    /// Title, version and description of this API.
    #[schema(value_type = Object)]
    info: serde_json::Value,
    /// Every operation, by path.
    #[schema(value_type = Object)]
    paths: serde_json::Value,
    /// Schemas and security schemes.
    #[schema(value_type = Option<Object>)]
    components: Option<serde_json::Value>,
}

/// Renders the OpenAPI document (`true`: with the local-only operations). The local server's
/// renderer adds the documentation of the tools it mounts (the Xendit simulator).
#[derive(Clone)]
pub struct GenerateDocument(pub std::sync::Arc<dyn Fn(bool) -> String + Send + Sync>);

/// This API's OpenAPI 3.1 document. The local server ([`crate::http::routes`]) generates it from
/// the handlers (with the local-only operations in local mode); the `health` function serves the
/// published copy, `docs/openapi.json`, so its binary does not carry every route group's handlers
/// and schemas only to describe them (a test keeps the copy equal to the generated document).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = OpenApiDocument))
)]
async fn openapi_json(
    State(app): State<App>,
    generate: Option<Extension<GenerateDocument>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let local = app.config.backend == crate::config::Backend::Local;
    let body: std::borrow::Cow<'static, str> = match generate {
        Some(Extension(GenerateDocument(render))) => render(local).into(),
        None => crate::http::openapi::PUBLISHED.into(),
    };
    ([(http::header::CONTENT_TYPE, "application/json")], body).into_response()
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
