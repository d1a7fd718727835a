//! HTTP surface: one router per route group, the layers every router shares, and extractors.

pub mod address;
pub mod auth;
pub mod dev;
pub mod docs;
pub mod error;
pub mod extract;
pub mod fcm;
pub mod functions;
pub mod health;
pub mod marketing;
pub mod openapi;
pub mod payment;
pub mod points;
pub mod reply;
pub mod state;
pub mod user;
pub mod ws;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::app::App;
use crate::http::error::ApiError;

pub use extract::{ClientIp, IdempotencyKey, Json, Path, Query};
pub use openapi::{openapi, openapi_router};

/// Every public HTTP route group merged: what the local server serves (plus `dev` in local
/// mode) and in-process tests exercise. A new group goes here AND in [`openapi::openapi_router`].
/// `/openapi.json` and `/docs` generate the document from the handlers.
pub fn routes() -> Router<App> {
    routes_documenting(groups(), None)
}

/// What the local server serves of this crate: [`routes`] plus the dev group, with
/// `/openapi.json` and `/docs` describing `tools` as well (routes another crate mounts next to
/// these: the Xendit simulator).
pub fn local_routes(tools: utoipa::openapi::OpenApi) -> Router<App> {
    routes_documenting(groups().merge(dev::router()), Some(tools))
}

fn routes_documenting(routes: Router<App>, tools: Option<utoipa::openapi::OpenApi>) -> Router<App> {
    let render = openapi::renderer(tools);
    routes.layer(axum::Extension(health::GenerateDocument(render)))
}

fn groups() -> Router<App> {
    Router::new()
        .merge(health::router())
        .merge(auth::router())
        .merge(payment::router())
        .merge(payment::callback_router())
        .merge(ws::router())
        .merge(address::router())
        .merge(user::router())
        .merge(fcm::router())
        .merge(marketing::router())
        .merge(points::router())
}

/// Header carrying the request id (set by us when the client or API Gateway did not).
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps a route group's router with everything a public endpoint needs: 404/405 envelopes,
/// body limit, CORS, security headers, request ids, tracing, panic-to-500.
pub fn finish(router: Router<App>, app: &App) -> Router {
    let limit = app.config.body_limit_bytes;
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(app.clone());
    let mut router = router
        .layer(middleware::from_fn(envelope_errors))
        .layer(cors(&app.config.origin_cors));
    for (name, value) in SECURITY_HEADERS {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    router
        .layer(CatchPanicLayer::custom(|_| ApiError::internal().into_response()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<Body>| {
                    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    // The path only: query strings may carry tokens (`/ws?token=`).
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                // One access line per request (status and latency, in the request's span).
                .on_response(
                    tower_http::trace::DefaultOnResponse::new()
                        .level(tracing::Level::INFO)
                        .latency_unit(tower_http::LatencyUnit::Millis),
                ),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
}

/// The Helmet default header set (no `X-Powered-By` to remove: we never send one).
const SECURITY_HEADERS: [(&str, &str); 12] = [
    (
        "content-security-policy",
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests",
    ),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("origin-agent-cluster", "?1"),
    ("referrer-policy", "no-referrer"),
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-dns-prefetch-control", "off"),
    ("x-download-options", "noopen"),
    ("x-frame-options", "SAMEORIGIN"),
    ("x-permitted-cross-domain-policies", "none"),
    ("x-xss-protection", "0"),
];

fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(CORS_ALLOW_HEADERS.map(HeaderName::from_static))
        .expose_headers(CORS_EXPOSE_HEADERS.map(HeaderName::from_static))
        .max_age(Duration::from_secs(600))
}

/// Request headers browser clients send (`Idempotency-Key` on money routes). On AWS the HTTP
/// API answers preflights itself, from the template's `CorsConfiguration`, which must allow at
/// least these (a test compares the two).
pub const CORS_ALLOW_HEADERS: [&str; 4] = [
    "authorization",
    "content-type",
    "idempotency-key",
    "x-request-id",
];

/// Response headers browser clients read (`Retry-After` on 429/503, the request id).
pub const CORS_EXPOSE_HEADERS: [&str; 2] = ["x-request-id", "retry-after"];

async fn not_found() -> ApiError {
    ApiError::not_found("Not Found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// Turns any error response that is not already JSON (framework rejections, layer errors) into
/// the envelope, so clients never see a bare text body.
async fn envelope_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return res;
    }
    let (parts, _) = res.into_parts();
    let mut out = ApiError::from_status(status).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}
