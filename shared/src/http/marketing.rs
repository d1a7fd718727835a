//! `marketing` route group: offers (list with JWT, create with an API key) and the FAQ (public
//! list; create/update/delete with an API key).

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post, put};
use http::StatusCode;
use serde_json::{Value, json};

use crate::app::App;
use crate::auth::{ApiKeyHolder, AuthUser};
use crate::error::ApiResult;
use crate::http::{Json, Path};
use crate::marketing::faq::{self, Faq, FaqInput};
use crate::marketing::{self, NewOffer, Offer};

async fn list_offers(user: AuthUser, State(app): State<App>) -> ApiResult<Json<Vec<Offer>>> {
    Ok(Json(marketing::list_for(&app, &user.username).await?))
}

async fn create_offer(
    _: ApiKeyHolder,
    State(app): State<App>,
    Json(req): Json<NewOffer>,
) -> ApiResult<(StatusCode, Json<Offer>)> {
    Ok((
        StatusCode::CREATED,
        Json(marketing::create(&app, &req).await?),
    ))
}

async fn list_faq(State(app): State<App>) -> ApiResult<Json<Vec<Faq>>> {
    Ok(Json(faq::list(&app).await?))
}

async fn create_faq(
    _: ApiKeyHolder,
    State(app): State<App>,
    Json(req): Json<FaqInput>,
) -> ApiResult<(StatusCode, Json<Faq>)> {
    Ok((StatusCode::CREATED, Json(faq::create(&app, &req).await?)))
}

async fn update_faq(
    _: ApiKeyHolder,
    State(app): State<App>,
    Path(id): Path<i64>,
    Json(req): Json<FaqInput>,
) -> ApiResult<Json<Faq>> {
    Ok(Json(faq::update(&app, id, &req).await?))
}

async fn delete_faq(
    _: ApiKeyHolder,
    State(app): State<App>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    faq::delete(&app, id).await?;
    Ok(Json(json!({ "status": true, "message": "FAQ deleted" })))
}

/// The marketing route group.
pub fn router() -> Router<App> {
    Router::new()
        .route("/marketing-offer/list", get(list_offers))
        .route("/marketing-offer", post(create_offer))
        .route("/faq", get(list_faq).post(create_faq))
        .route("/faq/{id}", put(update_faq).delete(delete_faq))
}
