//! `marketing` route group: offers (list with JWT, create with an API key) and the FAQ (public
//! list; create/update/delete with an API key).

use axum::Router;
use axum::extract::State;
use http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::http::error::{ApiResult, Envelope};
use crate::http::extract::{ApiKeyHolder, AuthUser};
use crate::http::reply::Done;
use crate::http::{Json, Path};
use crate::marketing::faq::{Faq, FaqInput};
use crate::marketing::{Marketing, NewOffer, Offer};

#[utoipa::path(
    get,
    path = "/marketing-offer/list",
    tag = "marketing",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Offers for the caller", body = Vec<Offer>),
    )
)]
async fn list_offers(user: AuthUser, State(m): State<Marketing>) -> ApiResult<Json<Vec<Offer>>> {
    Ok(Json(m.list_for(&user.username).await?))
}

#[utoipa::path(
    post,
    path = "/marketing-offer",
    tag = "marketing",
    request_body = NewOffer,
    security(("basicAuth" = [])),
    responses(
        (status = 201, description = "Offer created", body = Offer),
    )
)]
async fn create_offer(
    _: ApiKeyHolder,
    State(m): State<Marketing>,
    Json(req): Json<NewOffer>,
) -> ApiResult<(StatusCode, Json<Offer>)> {
    Ok((StatusCode::CREATED, Json(m.create(&req).await?)))
}

#[utoipa::path(
    get,
    path = "/faq",
    tag = "marketing",
    responses(
        (status = 200, description = "Frequently asked questions", body = Vec<Faq>),
    )
)]
async fn list_faq(State(m): State<Marketing>) -> ApiResult<Json<Vec<Faq>>> {
    Ok(Json(m.faq_list().await?))
}

#[utoipa::path(
    post,
    path = "/faq",
    tag = "marketing",
    request_body = FaqInput,
    security(("basicAuth" = [])),
    responses(
        (status = 201, description = "FAQ created", body = Faq),
    )
)]
async fn create_faq(
    _: ApiKeyHolder,
    State(m): State<Marketing>,
    Json(req): Json<FaqInput>,
) -> ApiResult<(StatusCode, Json<Faq>)> {
    Ok((StatusCode::CREATED, Json(m.faq_create(&req).await?)))
}

#[utoipa::path(
    put,
    path = "/faq/{id}",
    tag = "marketing",
    request_body = FaqInput,
    params(("id" = i64, Path, description = "Record id")),
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "FAQ updated", body = Faq),
        (status = 404, description = "FAQ Not Found", body = Envelope),
    )
)]
async fn update_faq(
    _: ApiKeyHolder,
    State(m): State<Marketing>,
    Path(id): Path<i64>,
    Json(req): Json<FaqInput>,
) -> ApiResult<Json<Faq>> {
    Ok(Json(m.faq_update(id, &req).await?))
}

#[utoipa::path(
    delete,
    path = "/faq/{id}",
    tag = "marketing",
    params(("id" = i64, Path, description = "Record id")),
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "FAQ deleted: `{status, message}`", body = Done),
        (status = 404, description = "FAQ Not Found", body = Envelope),
    )
)]
async fn delete_faq(
    _: ApiKeyHolder,
    State(m): State<Marketing>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Done>> {
    m.faq_delete(id).await?;
    Ok(Done::new("FAQ deleted"))
}

/// The marketing route group, with its documentation.
pub fn openapi_router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_offers))
        .routes(routes!(create_offer))
        .routes(routes!(list_faq, create_faq))
        .routes(routes!(update_faq, delete_faq))
}

/// The marketing route group.
pub fn router() -> Router<App> {
    openapi_router().split_for_parts().0
}
