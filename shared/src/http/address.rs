//! `address` route group: the caller's delivery addresses (JWT). Another user's id is a 404.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post, put};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::address::{self, Address, AddressInput};
use crate::app::App;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::{Json, Path};

async fn list(user: AuthUser, State(app): State<App>) -> ApiResult<Json<Vec<Address>>> {
    Ok(Json(address::list(&app, &user.username).await?))
}

async fn create(
    user: AuthUser,
    State(app): State<App>,
    Json(input): Json<AddressInput>,
) -> ApiResult<(StatusCode, Json<Address>)> {
    let valid = input.validate()?;
    Ok((
        StatusCode::CREATED,
        Json(address::create(&app, &user.username, &valid).await?),
    ))
}

async fn update(
    user: AuthUser,
    State(app): State<App>,
    Path(id): Path<i64>,
    Json(input): Json<AddressInput>,
) -> ApiResult<Json<Address>> {
    let valid = input.validate()?;
    Ok(Json(
        address::update(&app, &user.username, id, &valid).await?,
    ))
}

async fn delete(
    user: AuthUser,
    State(app): State<App>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    address::delete(&app, &user.username, id).await?;
    Ok(Json(
        json!({ "status": true, "message": "Address deleted" }),
    ))
}

#[derive(Deserialize)]
struct SetDefault {
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

async fn set_default(
    user: AuthUser,
    State(app): State<App>,
    Json(req): Json<SetDefault>,
) -> ApiResult<Json<Address>> {
    let id = parse_id(req.id)?;
    Ok(Json(address::set_default(&app, &user.username, id).await?))
}

/// The address route group.
pub fn router() -> Router<App> {
    Router::new()
        .route("/address/list", get(list))
        .route("/address", post(create))
        .route("/address/set-default", post(set_default))
        .route("/address/{id}", put(update).delete(delete))
}
