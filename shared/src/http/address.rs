//! `address` route group: the caller's delivery addresses (JWT). Another user's id is a 404.

use axum::Router;
use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::address::{Address, AddressInput, Addresses};
use crate::app::App;
use crate::http::error::{ApiError, ApiResult, Envelope, FieldError};
use crate::http::extract::AuthUser;
use crate::http::reply::Done;
use crate::http::{Json, Path};

#[utoipa::path(
    get,
    path = "/address/list",
    tag = "address",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The caller's addresses", body = Vec<Address>),
    )
)]
async fn list(user: AuthUser, State(addresses): State<Addresses>) -> ApiResult<Json<Vec<Address>>> {
    Ok(Json(addresses.list(&user.username).await?))
}

#[utoipa::path(
    post,
    path = "/address",
    tag = "address",
    request_body = AddressInput,
    security(("bearerAuth" = [])),
    responses(
        (status = 201, description = "Address created", body = Address),
        (status = 400, description = "Invalid address, or too many addresses", body = Envelope),
    )
)]
async fn create(
    user: AuthUser,
    State(addresses): State<Addresses>,
    Json(input): Json<AddressInput>,
) -> ApiResult<(StatusCode, Json<Address>)> {
    let valid = input.validate()?;
    Ok((
        StatusCode::CREATED,
        Json(addresses.create(&user.username, &valid).await?),
    ))
}

#[utoipa::path(
    put,
    path = "/address/{id}",
    tag = "address",
    request_body = AddressInput,
    params(("id" = i64, Path, description = "Record id")),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Address updated", body = Address),
        (status = 404, description = "Address Not Found", body = Envelope),
    )
)]
async fn update(
    user: AuthUser,
    State(addresses): State<Addresses>,
    Path(id): Path<i64>,
    Json(input): Json<AddressInput>,
) -> ApiResult<Json<Address>> {
    let valid = input.validate()?;
    Ok(Json(addresses.update(&user.username, id, &valid).await?))
}

#[utoipa::path(
    delete,
    path = "/address/{id}",
    tag = "address",
    params(("id" = i64, Path, description = "Record id")),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Address deleted", body = Done),
        (status = 404, description = "Address Not Found", body = Envelope),
    )
)]
async fn delete(
    user: AuthUser,
    State(addresses): State<Addresses>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Done>> {
    addresses.delete(&user.username, id).await?;
    Ok(Done::new("Address deleted"))
}

#[derive(Deserialize, ToSchema)]
struct SetDefault {
    /// Address id (a positive integer, or its decimal string).
    #[schema(value_type = i64)]
    id: Option<Value>,
}

/// The id as a positive integer; the original's clients send a number, a numeric string is tolerated.
fn parse_id(v: Option<Value>) -> Result<i64, ApiError> {
    let id = match v {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    id.filter(|&n| n > 0).ok_or_else(|| {
        ApiError::validation(vec![FieldError::new("id", "must be a positive integer")])
    })
}

#[utoipa::path(
    post,
    path = "/address/set-default",
    tag = "address",
    request_body = SetDefault,
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The new default address", body = Address),
        (status = 404, description = "Address Not Found", body = Envelope),
    )
)]
async fn set_default(
    user: AuthUser,
    State(addresses): State<Addresses>,
    Json(req): Json<SetDefault>,
) -> ApiResult<Json<Address>> {
    let id = parse_id(req.id)?;
    Ok(Json(addresses.set_default(&user.username, id).await?))
}

/// The address route group, with its documentation.
pub fn openapi_router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(create))
        .routes(routes!(set_default))
        .routes(routes!(update, delete))
}

/// The address route group.
pub fn router() -> Router<App> {
    openapi_router().split_for_parts().0
}
