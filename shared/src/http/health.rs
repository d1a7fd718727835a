//! `GET /health`: liveness, as the original documented it.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::SecondsFormat;
use serde::Serialize;

use crate::app::App;

/// The health answer.
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    /// ISO-8601 UTC.
    pub timestamp: String,
    /// Seconds since this process started.
    pub uptime: f64,
}

async fn health(State(app): State<App>) -> Json<Health> {
    Json(Health {
        status: "OK",
        timestamp: app.clock.now().to_rfc3339_opts(SecondsFormat::Millis, true),
        uptime: app.started.elapsed().as_secs_f64(),
    })
}

/// The health route group.
pub fn router() -> Router<App> {
    Router::new().route("/health", get(health))
}
