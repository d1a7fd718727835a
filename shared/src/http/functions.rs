//! Which routes each HTTP Lambda function serves — the one mapping the function binaries use to
//! build their routers and the template check reads, so `template.yaml`'s API events and what a
//! function actually answers cannot drift apart.

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::app::App;

/// Function names served over HTTP (HTTP API events or a function URL).
pub const HTTP_FUNCTIONS: &[&str] = &[
    "health",
    "auth",
    "user",
    "address",
    "fcm",
    "marketing",
    "payment",
    "points",
    "xendit-callback",
];

/// The documented router of an HTTP function.
pub fn openapi_router(function: &str) -> Option<OpenApiRouter<App>> {
    Some(match function {
        "health" => super::health::openapi_router(),
        "auth" => super::auth::openapi_router(),
        "user" => super::user::openapi_router(),
        "address" => super::address::openapi_router(),
        "fcm" => super::fcm::openapi_router(),
        "marketing" => super::marketing::openapi_router(),
        "payment" => super::payment::openapi_router(),
        "points" => super::points::openapi_router(),
        "xendit-callback" => super::payment::callback_function_openapi_router(),
        _ => return None,
    })
}

/// The router an HTTP function serves (before [`super::finish`]).
pub fn router(function: &str) -> Option<Router<App>> {
    openapi_router(function).map(|r| r.split_for_parts().0)
}

/// The finished router (common layers included) of an HTTP function: what its binary serves.
pub fn app_router(function: &str, app: &App) -> Result<Router, crate::config::ConfigError> {
    router(function)
        .map(|r| super::finish(r, app))
        .ok_or_else(|| crate::config::ConfigError(format!("`{function}` is not an HTTP function")))
}
