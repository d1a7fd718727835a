//! The `points` route group: points history and redemption, referral history and stats (JWT).

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Json, Query};
use crate::app::App;
use crate::auth::extract::AuthUser;
use crate::domain::money::Points;
use crate::error::{ApiError, FieldError};
use crate::points;
use crate::referral::{self, ReferralView, Stats};

/// The points route group.
pub fn router() -> Router<App> {
    Router::new()
        .route("/points/history", get(history))
        .route("/points/redeem", post(redeem))
        .route("/referral/history", get(referral_history))
        .route("/referral/stats", get(referral_stats))
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    cursor: Option<String>,
}

async fn history(
    user: AuthUser,
    State(app): State<App>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation(vec![FieldError::new(
            "limit",
            "must be between 1 and 100",
        )]));
    }
    let (items, next) = points::history(
        &app,
        &user.username,
        limit,
        q.cursor.filter(|c| !c.is_empty()),
    )
    .await?;
    Ok(Json(
        json!({ "status": true, "data": items, "next_cursor": next }),
    ))
}

#[derive(Deserialize)]
struct RedeemReq {
    points: i64,
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 128)
        .map(|k| Some(k.to_owned()))
        .ok_or_else(|| ApiError::bad_request("Idempotency-Key must be 1-128 visible characters"))
}

async fn redeem(
    user: AuthUser,
    State(app): State<App>,
    headers: HeaderMap,
    Json(req): Json<RedeemReq>,
) -> Result<Json<Value>, ApiError> {
    let n = Points::positive("points", req.points)?;
    let key = idempotency_key(&headers)?;
    let r = points::redeem(&app, &user.username, n, key).await?;
    Ok(Json(json!({
        "status": true,
        "message": "Points Redeemed",
        "points_redeemed": r.points_redeemed,
        "amount": r.amount,
        "balance": r.balance,
        "points": r.points,
        "transaction_id": r.transaction_id,
    })))
}

async fn referral_history(
    user: AuthUser,
    State(app): State<App>,
) -> Result<Json<Vec<ReferralView>>, ApiError> {
    Ok(Json(referral::history(&app, &user.username).await?))
}

async fn referral_stats(user: AuthUser, State(app): State<App>) -> Result<Json<Stats>, ApiError> {
    Ok(Json(referral::stats(&app, &user.username).await?))
}
