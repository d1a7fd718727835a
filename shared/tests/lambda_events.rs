//! Every HTTP API sample event in `events/` (what the README hands to `cargo lambda invoke`)
//! reaches a real route of the function it is named after, through that function's router.

mod common;
mod common_users;

use common::lambda_event;
use http::StatusCode;
use shared::App;
use shared::http::functions::{ALL, HttpFunction};

/// The function an event file belongs to: the longest function name the file name starts with.
fn function_of(file: &str) -> Option<&'static HttpFunction> {
    ALL.iter()
        .copied()
        .filter(|f| file == f.name || file.starts_with(&format!("{}-", f.name)))
        .max_by_key(|f| f.name.len())
}

/// `(file stem, event JSON)` of every API Gateway HTTP API (payload 2.0) event.
fn http_events() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("events dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("event file");
        let json: serde_json::Value = serde_json::from_str(&text).expect("event is JSON");
        if json["version"] == "2.0" && json["routeKey"].is_string() {
            let stem = path.file_stem().and_then(|s| s.to_str()).expect("name");
            out.push((stem.to_owned(), text));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn every_http_sample_event_reaches_a_route_of_its_function() {
    let events = http_events();
    assert!(events.len() >= 9, "sample events found: {}", events.len());
    let mut functions_covered = std::collections::BTreeSet::new();
    for (file, event) in &events {
        let function = function_of(file)
            .unwrap_or_else(|| panic!("events/{file}.json is not named after an HTTP function"));
        functions_covered.insert(function.name);
        if function.name == "xendit-callback" {
            continue; // needs a pending invoice and the callback token: payments.rs
        }
        let app = App::for_tests();
        let token = common_users::create_user(&app, "eventuser", Some("628123400011")).await;
        let (status, body) = lambda_event(&function.app_router(&app), event, &token).await;
        // The router's own fallbacks answer 404 "Not Found" / 405: the route is not in this function.
        let fallback = (status == StatusCode::NOT_FOUND && body["message"] == "Not Found")
            || status == StatusCode::METHOD_NOT_ALLOWED;
        assert!(
            !fallback,
            "events/{file}.json: no such route in `{}`: {status} {body}",
            function.name
        );
        // 502 is possible (no Xendit simulator behind this in-process app); a 500 is a bug.
        assert_ne!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "events/{file}.json: {body}"
        );
        assert_ne!(
            status,
            StatusCode::UNAUTHORIZED,
            "events/{file}.json: the token was not accepted: {body}"
        );
    }
    // Every HTTP function but the callback (whose event is checked with a signed invoice in
    // payments.rs) has a sample event.
    for f in ALL {
        if f.name != "xendit-callback" {
            assert!(
                functions_covered.contains(f.name),
                "no sample event for `{}`",
                f.name
            );
        }
    }
}

#[tokio::test]
async fn the_address_fcm_and_marketing_sample_events_succeed() {
    for file in ["address-list", "fcm-register", "marketing-offer-list"] {
        let event = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../events/{file}.json")),
        )
        .expect("event");
        let function = function_of(file).expect("function");
        let app = App::for_tests();
        let token = common_users::create_user(&app, "eventuser", Some("628123400012")).await;
        let (status, body) = lambda_event(&function.app_router(&app), &event, &token).await;
        assert_eq!(status, StatusCode::OK, "events/{file}.json: {body}");
    }
}

#[test]
fn event_files_map_to_the_longest_matching_function() {
    assert_eq!(
        function_of("xendit-callback").map(|f| f.name),
        Some("xendit-callback")
    );
    assert_eq!(
        function_of("payment-balance").map(|f| f.name),
        Some("payment")
    );
    assert_eq!(
        function_of("user-update-profile-img").map(|f| f.name),
        Some("user")
    );
    assert!(
        function_of("ws-connect").is_none(),
        "ws is not an HTTP function"
    );
    assert!(function_of("paymentx").is_none());
}
