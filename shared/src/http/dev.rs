//! Local-mode-only developer endpoints: `GET /_dev/outbox?to=<email-or-phone>` shows the mail, SMS
//! and push messages the local queue delivered (newest last), so a verification link or an OTP can
//! be read without a provider. `userstate serve` merges this group only on the local backend, and
//! the handler refuses on any other backend as well.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;

use crate::app::App;
use crate::config::Backend;
use crate::error::ApiError;
use crate::http::{Json, Query};
use crate::notify::local::{self, OutboxEntry};

#[derive(Deserialize)]
struct OutboxQuery {
    to: String,
}

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

/// The dev route group (merge only in local mode).
pub fn router() -> Router<App> {
    Router::new().route("/_dev/outbox", get(outbox))
}
