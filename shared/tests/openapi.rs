//! The OpenAPI document: generated from the same routers the server serves, complete (every
//! route documented, every documented operation served), and browsable at `/docs`.

mod common;
mod served;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use common::{assert_envelope, send};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use shared::App;
use shared::http::openapi::{documented_operations, undocumented_routes};
use tower::ServiceExt;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};

/// Every path of the original API's wire contract (and the paths this service adds). Probed so
/// that a route group merged into `routes()` without its documentation is caught.
const CONTRACT_PATHS: &[&str] = &[
    "/address/probe",
    "/address/list",
    "/address",
    "/address/set-default",
    "/balance",
    "/balance/decrease",
    "/bank/list",
    "/check-voucher-redemption",
    "/fcm/token",
    "/fcm/register",
    "/fcm/send",
    "/invoice/detail",
    "/invoice/detail/xendit",
    "/invoice/list/xendit",
    "/invoice/cancel/xendit",
    "/marketing-offer/list",
    "/marketing-offer",
    "/payment/list",
    "/payment-callback",
    "/payment-checkout",
    "/points/history",
    "/points/redeem",
    "/redeem-voucher",
    "/referral/history",
    "/referral/stats",
    "/sys/payment-checkout",
    "/user/profile",
    "/user/referral-code",
    "/user/update-profile-img",
    "/resources/probe",
    "/docs",
    "/openapi.json",
];

/// What `userstate serve` serves in local mode.
fn served(app: &App) -> Router {
    shared::http::finish(served::local_routes(app), app)
}

/// The document of what `userstate serve` serves in local mode: ours and the simulator's.
fn local_doc() -> utoipa::openapi::OpenApi {
    shared::http::openapi::openapi_with(Some(xendit_sim::openapi()))
}

fn get_req(uri: &str) -> Request<Body> {
    Request::builder()
        .uri(uri)
        .body(Body::empty())
        .expect("request")
}

async fn body_text(router: &Router, uri: &str) -> (StatusCode, http::HeaderMap, String) {
    let res = router
        .clone()
        .oneshot(get_req(uri))
        .await
        .expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = http_body_util::BodyExt::collect(res.into_body())
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        headers,
        String::from_utf8(bytes.to_vec()).expect("utf-8"),
    )
}

#[tokio::test]
async fn every_served_route_is_documented_and_every_documented_operation_is_served() {
    let app = App::for_tests();
    let doc = local_doc();
    let problems = undocumented_routes(&served(&app), &doc, CONTRACT_PATHS).await;
    assert!(
        problems.is_empty(),
        "router and document disagree: {problems:#?}"
    );
    // Deployed (no local-only group): the public routers against the document minus `dev`.
    let deployed = shared::http::finish(shared::http::routes(), &app);
    let public = shared::http::openapi::without_tag(shared::http::openapi(), "dev");
    let problems = undocumented_routes(&deployed, &public, CONTRACT_PATHS).await;
    assert!(
        problems.is_empty(),
        "public routers and document disagree: {problems:#?}"
    );
    // The check is not vacuous: it saw the auth group.
    let ops = documented_operations(&doc);
    assert!(ops.len() >= 15, "{ops:?}");
    assert!(ops.contains(&(http::Method::POST, "/signup".to_owned())));
    assert!(ops.contains(&(http::Method::GET, "/verify-sign-up".to_owned())));
    assert!(ops.contains(&(http::Method::POST, "/verify-sign-up".to_owned())));
}

#[tokio::test]
async fn a_route_added_without_documentation_fails_the_check() {
    async fn fixture() -> &'static str {
        "fixture"
    }
    let app = App::for_tests();
    let doc = shared::http::openapi();

    // A new path, served but absent from the document.
    let router = shared::http::openapi_router()
        .route("/fixture/undocumented", get(fixture))
        .split_for_parts()
        .0;
    let problems = undocumented_routes(
        &shared::http::finish(router, &app),
        &doc,
        &["/fixture/undocumented"],
    )
    .await;
    assert_eq!(
        problems,
        vec!["GET /fixture/undocumented: served but not documented".to_owned()]
    );

    // An extra method on a documented path.
    let router = shared::http::openapi_router()
        .route("/health", post(fixture))
        .split_for_parts()
        .0;
    let problems = undocumented_routes(&shared::http::finish(router, &app), &doc, &[]).await;
    assert_eq!(
        problems,
        vec!["POST /health: served but not documented".to_owned()]
    );
}

#[tokio::test]
async fn a_documented_operation_without_a_route_fails_the_check() {
    let app = App::for_tests();
    let mut doc = local_doc();
    doc.paths.paths.insert(
        "/fixture/{id}".to_owned(),
        PathItem::new(HttpMethod::Delete, OperationBuilder::new().build()),
    );
    let problems = undocumented_routes(&served(&app), &doc, &[]).await;
    assert_eq!(
        problems,
        vec!["DELETE /fixture/{id}: documented but not served".to_owned()]
    );
}

#[tokio::test]
async fn openapi_json_is_3_1_with_security_schemes_and_the_error_envelope() {
    let app = App::for_tests();
    let router = shared::http::finish(shared::http::routes(), &app);
    let (status, headers, doc) = send(&router, get_req("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[http::header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("application/json")
    );
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearerAuth"]["type"], "http");
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["basicAuth"]["scheme"], "basic");
    assert_eq!(schemes["callbackToken"]["type"], "apiKey");
    assert_eq!(schemes["callbackToken"]["in"], "header");
    assert_eq!(schemes["callbackToken"]["name"], "x-callback-token");

    let envelope = &doc["components"]["schemas"]["ErrorEnvelope"];
    let props = envelope["properties"].as_object().expect("properties");
    for field in ["status", "message", "errorCode", "errors"] {
        assert!(props.contains_key(field), "{field} in {envelope}");
    }
    assert_eq!(
        envelope["properties"]["errors"]["items"]["$ref"],
        "#/components/schemas/FieldError"
    );

    // Every 4xx/5xx of every operation is the envelope.
    let paths = doc["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (path, item) in paths {
        // The Xendit simulator (local only) stands in for Xendit and answers Xendit's errors.
        if path.starts_with("/_dev/xendit/") {
            continue;
        }
        for (method, op) in item.as_object().expect("item") {
            let responses = op["responses"].as_object().expect("responses");
            assert!(responses.contains_key("500"), "{method} {path}");
            for (code, res) in responses {
                if code.starts_with('4') || code.starts_with('5') {
                    assert_eq!(
                        res["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorEnvelope",
                        "{method} {path} {code}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 40, "{checked}");
    // Domain statuses and security are stated where they apply.
    assert!(doc["paths"]["/auth"]["post"]["responses"]["422"].is_object());
    assert!(doc["paths"]["/signup"]["post"]["responses"]["409"].is_object());
    assert!(doc["paths"]["/signup"]["post"]["responses"]["201"].is_object());
    assert_eq!(
        doc["paths"]["/update-pwd"]["post"]["security"],
        serde_json::json!([{ "bearerAuth": [] }])
    );
    assert!(doc["paths"]["/update-pwd"]["post"]["responses"]["401"].is_object());
    assert!(doc["paths"]["/update-pwd"]["post"]["responses"]["415"].is_object());
    assert!(
        doc["paths"]["/signup"]["post"]["requestBody"]["content"]["application/json"].is_object()
    );
}

#[tokio::test]
async fn docs_page_lists_every_operation_without_scripts_in_local_mode_only() {
    let app = App::for_tests();
    let (status, headers, html) = body_text(&served(&app), "/docs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[http::header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert!(!html.to_ascii_lowercase().contains("<script"), "no scripts");
    for (method, path) in documented_operations(&shared::http::openapi()) {
        let method = method.as_str().to_ascii_lowercase();
        assert!(
            html.contains(&format!(
                "<span class=\"m {method}\">{method}</span> <code>{path}</code>"
            )),
            "{method} {path} on the page"
        );
    }
    assert!(html.contains("ErrorEnvelope"));
    assert!(html.contains("bearerAuth"));

    let mut config = shared::config::Config::for_tests();
    config.backend = shared::config::Backend::Aws;
    let store =
        shared::store::local::LocalStore::memory(std::sync::Arc::new(shared::clock::SystemClock))
            .expect("store");
    let aws_like = App::with_local_store(
        config,
        &store,
        std::sync::Arc::new(shared::clock::SystemClock),
    );
    let (s, _, b) = send(&served(&aws_like), get_req("/docs")).await;
    assert_envelope(s, &b, 404);
}

#[tokio::test]
async fn deployed_openapi_json_leaves_out_the_local_only_routes() {
    let mut config = shared::config::Config::for_tests();
    config.backend = shared::config::Backend::Aws;
    let store =
        shared::store::local::LocalStore::memory(std::sync::Arc::new(shared::clock::SystemClock))
            .expect("store");
    let aws_like = App::with_local_store(
        config,
        &store,
        std::sync::Arc::new(shared::clock::SystemClock),
    );
    let deployed = shared::http::finish(shared::http::health::router(), &aws_like);
    let (s, _, doc) = send(&deployed, get_req("/openapi.json")).await;
    assert_eq!(s, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    assert!(!paths.contains_key("/_dev/outbox"), "{:?}", paths.keys());
    assert!(!paths.contains_key("/docs"));
    assert!(paths.contains_key("/signup") && paths.contains_key("/openapi.json"));

    let local = shared::http::finish(shared::http::routes(), &App::for_tests());
    let (_, _, doc) = send(&local, get_req("/openapi.json")).await;
    assert!(doc["paths"]["/_dev/outbox"]["get"].is_object());
    assert!(doc["paths"]["/docs"]["get"].is_object());
}

#[test]
fn docs_page_escapes_text_from_the_document() {
    let doc: Value = serde_json::json!({
        "info": {"title": "<b>t</b>", "version": "1"},
        "paths": {"/x": {"get": {"summary": "<script>alert(1)</script>", "responses": {}}}}
    });
    let html = shared::http::docs::render(&doc);
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;b&gt;t&lt;/b&gt;"));
}

#[test]
fn route_groups_register_routes_only_through_documented_routes_macro() {
    // A `.route(…)` on a plain router would serve a path the document does not know; the probe
    // check catches it only for the paths it knows to try, so the source is checked as well.
    // Runtime value first: a test binary reused from another clone's build must read this checkout.
    let root = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    );
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("src/http"))
        .expect("src/http")
        .map(|e| e.expect("entry").path())
        .collect();
    // The Xendit simulator (its own crate) registers the dev routes of `/_dev/xendit`.
    let sim = root.join("../infra/xendit-sim/src");
    files.extend(
        std::fs::read_dir(&sim)
            .expect("infra/xendit-sim/src")
            .map(|e| e.expect("entry").path()),
    );
    let mut offenders = Vec::new();
    let mut groups = 0;
    for path in files {
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        if text.contains("pub fn openapi_router()") {
            groups += 1;
        }
        // Unit tests may serve throwaway routers (a callback receiver); they are not app routes.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if [
                ".route(",
                ".nest(",
                ".route_service(",
                ".nest_service(",
                "routing::",
            ]
            .iter()
            .any(|p| code.contains(p))
            {
                offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        groups >= 11,
        "files with a group: health, auth, payment, ws, address, user, fcm, marketing, dev, the \
         simulator and the merged router: {groups}"
    );
    assert!(
        offenders.is_empty(),
        "undocumented route registrations: {offenders:#?}"
    );
}

#[tokio::test]
async fn payment_and_profile_operations_document_their_real_content_types_security_and_bounds() {
    let doc = serde_json::to_value(local_doc()).expect("json");
    let op = |path: &str, method: &str| doc["paths"][path][method].clone();
    let security = |path: &str, method: &str| op(path, method)["security"].to_string();

    // Multipart upload with a binary `profile_img`.
    let upload = op("/user/update-profile-img", "post");
    let form = &upload["requestBody"]["content"]["multipart/form-data"]["schema"];
    let form = if form["$ref"].is_string() {
        let name = form["$ref"]
            .as_str()
            .and_then(|r| r.rsplit('/').next())
            .expect("ref");
        doc["components"]["schemas"][name].clone()
    } else {
        form.clone()
    };
    assert_eq!(
        form["properties"]["profile_img"]["format"], "binary",
        "{form}"
    );
    assert!(upload["responses"]["413"].is_object());

    // Images are served as images; the WebSocket upgrades.
    let image = &op("/resources/user_profile_img/{file}", "get")["responses"]["200"]["content"];
    for ct in ["image/jpeg", "image/png", "image/webp"] {
        assert!(image[ct].is_object(), "{ct} in {image}");
    }
    assert!(op("/ws", "get")["responses"]["101"].is_object());

    // Security schemes per route kind.
    assert!(security("/payment-callback", "post").contains("callbackToken"));
    assert!(security("/payout-callback", "post").contains("callbackToken"));
    assert!(security("/sys/payment-checkout", "post").contains("basicAuth"));
    assert!(security("/fcm/send", "post").contains("basicAuth"));
    assert!(security("/balance/decrease", "post").contains("bearerAuth"));
    assert!(security("/user/profile", "put").contains("bearerAuth"));

    // Money is an integer with the accepted bounds; provider failures are documented.
    let decrease = &doc["components"]["schemas"]["DecreaseReq"]["properties"]["amount"];
    assert_eq!(decrease["type"], "integer", "{decrease}");
    assert_eq!(decrease["minimum"], 1);
    assert_eq!(decrease["maximum"], 1_000_000_000);
    assert!(op("/payment-checkout", "post")["responses"]["502"].is_object());

    // The simulator is documented, local only.
    assert_eq!(
        op("/_dev/xendit/invoices/{id}/pay", "post")["tags"],
        json!(["dev"])
    );
    let deployed: Value =
        serde_json::from_str(&shared::http::openapi::openapi_json(false)).expect("json");
    let paths = deployed["paths"].as_object().expect("paths");
    assert!(
        paths.keys().all(|p| !p.starts_with("/_dev/")),
        "{:?}",
        paths.keys()
    );
    assert!(paths.contains_key("/payment-checkout"));
}

/// `docs/openapi.json`, which the `health` function serves, is the generated deployed document.
/// `UPDATE_OPENAPI=1 cargo test -p shared --test openapi` rewrites it.
#[test]
fn the_published_document_is_the_generated_one() {
    let generated = shared::http::openapi::openapi_json(false);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write docs/openapi.json");
        return;
    }
    let published = std::fs::read_to_string(&path).expect("docs/openapi.json");
    assert!(
        published == generated,
        "docs/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p shared --test openapi`"
    );
    assert_eq!(
        shared::http::openapi::PUBLISHED,
        generated,
        "rebuild after updating the file"
    );
}

#[tokio::test]
async fn the_health_function_serves_the_published_document() {
    let app = App::for_tests();
    let health = shared::http::functions::HEALTH.app_router(&app);
    let (status, _, doc) = send(&health, get_req("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    let published: Value =
        serde_json::from_str(shared::http::openapi::PUBLISHED).expect("published JSON");
    assert_eq!(doc, published);
    assert!(doc["paths"]["/balance"]["get"].is_object());
}

/// Whether a response schema says what the body holds: a reference, a typed scalar or array, or
/// an object with properties (a bare `{}` or `{"type": "object"}` says nothing).
fn is_typed(schema: &Value) -> bool {
    let obj = schema.as_object();
    let has = |k: &str| obj.is_some_and(|o| o.contains_key(k));
    if has("$ref") || has("oneOf") || has("anyOf") || has("allOf") {
        return true;
    }
    match schema["type"].as_str() {
        Some("object") => has("properties") || has("additionalProperties"),
        Some("array") => is_typed(&schema["items"]),
        Some(_) => true,
        None => false,
    }
}

#[test]
fn every_response_body_of_the_published_document_has_a_typed_schema() {
    let doc: Value = serde_json::from_str(shared::http::openapi::PUBLISHED).expect("json");
    let mut untyped = Vec::new();
    let mut bodies = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let Some(responses) = op["responses"].as_object() else {
                continue;
            };
            for (code, r) in responses {
                for (ct, c) in r["content"].as_object().into_iter().flatten() {
                    bodies += 1;
                    if !is_typed(&c["schema"]) {
                        untyped.push(format!("{method} {path} {code} {ct}: {}", c["schema"]));
                    }
                }
            }
        }
    }
    assert!(bodies > 100, "the walk saw the bodies: {bodies}");
    assert!(untyped.is_empty(), "untyped response bodies: {untyped:#?}");
    // The check tells the two apart.
    assert!(!is_typed(&json!({"type": "object"})) && !is_typed(&json!({})));
    assert!(is_typed(&json!({"$ref": "#/components/schemas/X"})));
    assert!(!is_typed(&json!({"type": "array", "items": {}})));
}
