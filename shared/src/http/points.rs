//! The `points` route group: points history and redemption, referral history and stats (JWT).

use axum::Router;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::AuthUser;
use super::{IdempotencyKey, Json, Query};
use crate::app::App;
use crate::domain::money::Points;
use crate::http::error::{ApiError, Envelope, FieldError};
use crate::points::{PointsView, Rewards};
use crate::referral::{ReferralView, Referrals, Stats};

/// The points route group, documented.
pub fn openapi_router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(history))
        .routes(routes!(redeem))
        .routes(routes!(referral_history))
        .routes(routes!(referral_stats))
}

/// The points route group.
pub fn router() -> Router<App> {
    openapi_router().split_for_parts().0
}

/// A page of the points ledger, newest first.
#[derive(Serialize, ToSchema)]
struct HistoryPage {
    status: bool,
    data: Vec<PointsView>,
    /// Pass as `cursor` to read the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// What a redemption did.
#[derive(Serialize, ToSchema)]
struct RedeemResponse {
    status: bool,
    message: String,
    points_redeemed: i64,
    /// Rupiah credited to the wallet.
    amount: i64,
    balance: i64,
    points: i64,
    transaction_id: String,
}

#[derive(Deserialize, IntoParams)]
struct PageQuery {
    /// Page size, 1-100 (default 20).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// Cursor from the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/points/history",
    tag = "points",
    params(PageQuery),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Points ledger entries, newest first", body = HistoryPage),
        (status = 400, description = "Invalid limit or cursor", body = Envelope),
    )
)]
async fn history(
    user: AuthUser,
    State(rewards): State<Rewards>,
    Query(q): Query<PageQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation(vec![FieldError::new(
            "limit",
            "must be between 1 and 100",
        )]));
    }
    let (items, next) = rewards
        .history(&user.username, limit, q.cursor.filter(|c| !c.is_empty()))
        .await?;
    Ok(Json(HistoryPage {
        status: true,
        data: items,
        next_cursor: next,
    }))
}

#[derive(Deserialize, ToSchema)]
struct RedeemReq {
    /// Points to convert into balance (at least `POINTS_REDEEM_MIN`).
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    points: i64,
}

#[utoipa::path(
    post,
    path = "/points/redeem",
    tag = "points",
    request_body = RedeemReq,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays answer the first result")),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Points converted into balance", body = RedeemResponse),
        (status = 400, description = "Insufficient Points, below the minimum, or invalid input", body = Envelope),
        (status = 422, description = "Idempotency-Key was used with a different request", body = Envelope),
    )
)]
async fn redeem(
    user: AuthUser,
    State(rewards): State<Rewards>,
    IdempotencyKey(key): IdempotencyKey,
    Json(req): Json<RedeemReq>,
) -> Result<Json<RedeemResponse>, ApiError> {
    let n = Points::positive("points", req.points)?;
    let r = rewards.redeem(&user.username, n, key).await?;
    Ok(Json(RedeemResponse {
        status: true,
        message: "Points Redeemed".into(),
        points_redeemed: r.points_redeemed,
        amount: r.amount,
        balance: r.balance,
        points: r.points,
        transaction_id: r.transaction_id,
    }))
}

#[utoipa::path(
    get,
    path = "/referral/history",
    tag = "points",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Users the caller referred", body = Vec<ReferralView>))
)]
async fn referral_history(
    user: AuthUser,
    State(referrals): State<Referrals>,
) -> Result<Json<Vec<ReferralView>>, ApiError> {
    Ok(Json(referrals.history(&user.username).await?))
}

#[utoipa::path(
    get,
    path = "/referral/stats",
    tag = "points",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Referral counts and bonus points earned", body = Stats))
)]
async fn referral_stats(
    user: AuthUser,
    State(referrals): State<Referrals>,
) -> Result<Json<Stats>, ApiError> {
    Ok(Json(referrals.stats(&user.username).await?))
}
