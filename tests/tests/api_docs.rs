//! Black-box: the running local server serves its OpenAPI document and the `/docs` page, and the
//! page obeys the content security policy (no scripts at all).

use reqwest::StatusCode;
use serde_json::Value;
use tests::server::Server;

#[tokio::test]
async fn running_server_serves_openapi_json_and_a_script_free_docs_page() {
    let server = Server::start();
    let http = reqwest::Client::new();

    let res = http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/health",
        "/auth",
        "/signup",
        "/verify-sign-up",
        "/_dev/outbox",
        "/docs",
    ] {
        assert!(paths.contains_key(p), "{p} documented");
    }

    let res = http.get(server.url("/docs")).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let html = res.text().await.expect("text");
    assert!(!html.to_ascii_lowercase().contains("<script"));
    for p in paths.keys() {
        assert!(
            html.contains(&format!("<code>{p}</code>")),
            "{p} on the page"
        );
    }
}
