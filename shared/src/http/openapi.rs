//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations.
//!
//! Every route group exposes `openapi_router() -> OpenApiRouter<App>`; its `router()` is the
//! axum half of the same value, so a route and its documentation cannot drift apart.
//! [`openapi_router`] merges every group (the local-only ones included) and [`openapi`] is its
//! document, completed with the security schemes and the error responses every operation can
//! produce. [`undocumented_routes`] checks a router against a document by probing it.
//!
//! Adding a route group `g`: annotate each handler with `#[utoipa::path(...)]` (request body,
//! responses with `body = Envelope` for its own 4xx, `security(("bearerAuth" = []))` /
//! `("basicAuth" = [])` / `("callbackToken" = [])`), build `g::openapi_router()` with one
//! `.routes(routes!(handler))` per path, keep `g::router()` as its `.split_for_parts().0`, and
//! merge it in [`openapi_router`] (here) and in `http::routes()`. Local-only operations carry the
//! `dev` tag.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;

use crate::app::App;
use crate::http::error::{Envelope, FieldError};

/// Security scheme names used in `security(...)` of the handlers.
pub const BEARER: &str = "bearerAuth";
pub const BASIC: &str = "basicAuth";
pub const CALLBACK_TOKEN: &str = "callbackToken";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "UserState API",
        description = "Accounts, sessions, wallet and Xendit payments, profiles and notifications. \
                       Every error is the envelope `ErrorEnvelope`."
    ),
    components(schemas(Envelope, FieldError)),
    tags(
        (name = "health", description = "Liveness and this document"),
        (name = "auth", description = "Signup, verification, login, passwords, sessions"),
        (name = "payment", description = "Wallet, Xendit checkout, invoices, callbacks, payment status WebSocket"),
        (name = "voucher", description = "Vouchers: definitions (API key) and redemption"),
        (name = "payout", description = "Banks, bank accounts, payouts (disbursements)"),
        (name = "user", description = "Profile, referral code, profile image"),
        (name = "address", description = "Delivery addresses"),
        (name = "fcm", description = "Push notification devices and sending"),
        (name = "marketing", description = "Marketing offers and FAQ"),
        (name = "dev", description = "Local mode only: developer aids and the Xendit simulator"),
    )
)]
struct ApiDoc;

/// Every route group with its documentation, local-only groups included.
pub fn openapi_router() -> OpenApiRouter<App> {
    use utoipa::OpenApi as _;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(super::health::openapi_router())
        .merge(super::auth::openapi_router())
        .merge(super::payment::openapi_router())
        .merge(super::payment::callback_openapi_router())
        .merge(super::ws::openapi_router())
        .merge(super::address::openapi_router())
        .merge(super::user::openapi_router())
        .merge(super::fcm::openapi_router())
        .merge(super::marketing::openapi_router())
        .merge(super::points::openapi_router())
        .merge(super::dev::openapi_router())
}

/// The complete document: every group's paths, the security schemes, and the error responses
/// the common layers add to every operation.
pub fn openapi() -> OpenApi {
    static DOC: OnceLock<OpenApi> = OnceLock::new();
    DOC.get_or_init(|| openapi_with(None)).clone()
}

/// [`openapi`] with the paths of `tools` (routes another crate mounts next to ours, such as the
/// Xendit simulator) merged in before the common responses are added.
pub fn openapi_with(tools: Option<OpenApi>) -> OpenApi {
    let mut doc = openapi_router().split_for_parts().1;
    if let Some(tools) = tools {
        doc.merge(tools);
    }
    add_security_schemes(&mut doc);
    add_common_responses(&mut doc);
    doc
}

/// The renderer `/openapi.json` and `/docs` use: [`openapi_json`], or, with `tools`, the same
/// rendering of [`openapi_with`] (each variant rendered once, on first use).
pub fn renderer(tools: Option<OpenApi>) -> Arc<dyn Fn(bool) -> String + Send + Sync> {
    let Some(tools) = tools else {
        return Arc::new(openapi_json);
    };
    let local = OnceLock::new();
    let deployed = OnceLock::new();
    Arc::new(move |is_local: bool| {
        let full = || openapi_with(Some(tools.clone()));
        if is_local {
            local.get_or_init(|| render(full())).clone()
        } else {
            deployed
                .get_or_init(|| render(without_tag(full(), LOCAL_ONLY_TAG)))
                .clone()
        }
    })
}

fn render(doc: OpenApi) -> String {
    doc.to_pretty_json().unwrap_or_else(|_| "{}".into())
}

/// The published document: `openapi_json(false)` as of the last `UPDATE_OPENAPI=1 cargo test -p
/// shared --test openapi` (that test fails when it differs from the generated one).
pub const PUBLISHED: &str = include_str!("../../../docs/openapi.json");

/// Tag of the operations served only by the local server (`/_dev/*`, `/docs`).
pub const LOCAL_ONLY_TAG: &str = "dev";

/// The document as served by `GET /openapi.json`: complete in local mode; without the local-only
/// (`dev`-tagged) operations otherwise, since those routes do not exist there.
pub fn openapi_json(local: bool) -> String {
    static LOCAL: OnceLock<String> = OnceLock::new();
    static DEPLOYED: OnceLock<String> = OnceLock::new();
    if local {
        LOCAL.get_or_init(|| render(openapi())).clone()
    } else {
        DEPLOYED
            .get_or_init(|| render(without_tag(openapi(), LOCAL_ONLY_TAG)))
            .clone()
    }
}

/// The document minus every operation carrying `tag` (and paths left empty).
pub fn without_tag(mut doc: OpenApi, tag: &str) -> OpenApi {
    let tagged = |op: &Option<Operation>| {
        op.as_ref()
            .and_then(|o| o.tags.as_ref())
            .is_some_and(|t| t.iter().any(|t| t == tag))
    };
    for item in doc.paths.paths.values_mut() {
        for slot in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
            &mut item.query,
        ] {
            if tagged(slot) {
                *slot = None;
            }
        }
        item.additional_operations
            .retain(|_, op| !op.tags.as_ref().is_some_and(|t| t.iter().any(|t| t == tag)));
    }
    doc.paths
        .paths
        .retain(|_, item| operations_mut(item).next().is_some());
    if let Some(tags) = doc.tags.as_mut() {
        tags.retain(|t| t.name != tag);
    }
    doc
}

fn add_security_schemes(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("Session token from `POST /auth` (or a registration / reset token where stated)"))
                .build(),
        ),
    );
    components.add_security_scheme(
        BASIC,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some("API key as `holder:key`"))
                .build(),
        ),
    );
    let mut callback = ApiKeyValue::new("x-callback-token");
    callback.description = Some("Xendit callback verification token".into());
    components.add_security_scheme(
        CALLBACK_TOKEN,
        SecurityScheme::ApiKey(ApiKey::Header(callback)),
    );
}

/// All operations of a path item.
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
        item.query.as_mut(),
    ]
    .into_iter()
    .flatten()
    .chain(item.additional_operations.values_mut())
}

/// The error responses the shared layers can give on any operation (`finish`: body limit,
/// content type, rejections of extractors, store outages, panics), documented once here
/// rather than on every handler. A handler's own description of a status wins.
fn add_common_responses(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
            let has_body = op.request_body.is_some();
            let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let secured = op
                .security
                .as_ref()
                .is_some_and(|s| s.iter().any(|r| r != &Default::default()));
            let mut add = |code: &str, description: &str| {
                op.responses
                    .responses
                    .entry(code.to_owned())
                    .or_insert_with(|| error_response(description).into());
            };
            if has_body || has_params {
                add(
                    "400",
                    "Invalid input (malformed JSON, wrong types, failed validation)",
                );
            }
            if has_body {
                add("413", "Payload Too Large");
                add("415", "Content-Type must be application/json");
            }
            if secured {
                add("401", "Missing, invalid, expired or revoked credentials");
            }
            add("500", "Internal Server Error");
            add(
                "503",
                "Service Unavailable (storage throttled or down; retry after `Retry-After`)",
            );
        }
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                .build(),
        )
        .build()
}

/// Every documented operation as `(METHOD, path template)`.
pub fn documented_operations(doc: &OpenApi) -> BTreeSet<(Method, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in &doc.paths.paths {
        let item = item.clone();
        let pairs = [
            (Method::GET, item.get.is_some()),
            (Method::PUT, item.put.is_some()),
            (Method::POST, item.post.is_some()),
            (Method::DELETE, item.delete.is_some()),
            (Method::OPTIONS, item.options.is_some()),
            (Method::HEAD, item.head.is_some()),
            (Method::PATCH, item.patch.is_some()),
            (Method::TRACE, item.trace.is_some()),
        ];
        for (method, present) in pairs {
            if present {
                out.insert((method, path.clone()));
            }
        }
    }
    out
}

/// The methods probed when looking for undocumented operations.
const PROBED_METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
];

/// A concrete URI for a path template: every `{param}` becomes `probe`.
fn concrete(template: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in template.chars() {
        match c {
            '{' => in_param = true,
            '}' if in_param => {
                in_param = false;
                out.push_str("probe");
            }
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

/// Whether a concrete path is an instance of a path template (`{param}` matches one segment).
fn matches_template(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}

/// Whether a response is the router's own "no such route" answer (`finish`'s 404 fallback, an
/// envelope saying "Not Found", or its 405), as opposed to an answer of a handler (a handler's
/// 404 says what was not found, or is not an envelope at all, like the simulator's HTML page).
async fn is_fallback(res: axum::response::Response) -> bool {
    let status = res.status();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return true;
    }
    if status != StatusCode::NOT_FOUND {
        return false;
    }
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .is_some_and(|m| m == "Not Found")
}

/// Checks a finished router (see [`super::finish`]) against a document by probing it:
/// every documented operation must reach a handler (not the 404 fallback nor a 405), and on
/// every documented path each other common method must be refused (an undocumented method
/// would be served). `extra_paths` are concrete paths that must NOT be served (e.g. candidate
/// paths from the wire contract not documented here). Returns the problems found, empty when
/// the router and the document agree.
pub async fn undocumented_routes(
    router: &Router,
    doc: &OpenApi,
    extra_paths: &[&str],
) -> Vec<String> {
    use tower::ServiceExt;
    let documented = documented_operations(doc);
    let mut problems = Vec::new();
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    let probe = |method: Method, uri: String| {
        let router = router.clone();
        async move {
            let req = Request::builder()
                .method(method)
                .uri(uri)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .map_err(|e| e.to_string())?;
            let res = router.oneshot(req).await.map_err(|e| e.to_string())?;
            Ok::<bool, String>(is_fallback(res).await)
        }
    };
    for path in paths {
        let uri = concrete(path);
        for method in PROBED_METHODS {
            let is_doc = documented.contains(&(method.clone(), path.clone()));
            match probe(method.clone(), uri.clone()).await {
                Ok(fallback) if is_doc && fallback => {
                    problems.push(format!("{method} {path}: documented but not served"))
                }
                Ok(fallback) if !is_doc && !fallback => {
                    problems.push(format!("{method} {path}: served but not documented"))
                }
                Ok(_) => {}
                Err(e) => problems.push(format!("{method} {path}: probe failed: {e}")),
            }
        }
    }
    for path in extra_paths {
        if documented.iter().any(|(_, p)| matches_template(p, path)) {
            continue;
        }
        for method in PROBED_METHODS {
            match probe(method.clone(), (*path).to_owned()).await {
                Ok(false) => problems.push(format!("{method} {path}: served but not documented")),
                Ok(true) => {}
                Err(e) => problems.push(format!("{method} {path}: probe failed: {e}")),
            }
        }
    }
    problems
}
