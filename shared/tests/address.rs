//! Address book: default invariant under concurrency, ownership, cap and validation.

mod common;
mod common_users;

use axum::Router;
use axum::body::Body;
use common::{assert_envelope, send};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use shared::App;

fn setup() -> (App, Router) {
    let app = App::for_tests();
    let router = shared::http::finish(shared::http::routes(), &app);
    (app, router)
}

fn req(method: &str, path: &str, token: &str, body: Option<Value>) -> Request<Body> {
    let b = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    }
    .expect("request")
}

fn addr(label: &str, is_default: bool) -> Value {
    json!({
        "label": label,
        "recipient_name": "John Doe",
        "phone_number": "628123456789",
        "address": "Jl. Example No. 123, Jakarta",
        "is_default": is_default
    })
}

async fn list(r: &Router, token: &str) -> Vec<Value> {
    let (status, _, body) = send(r, req("GET", "/address/list", token, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().expect("array").clone()
}

async fn create(r: &Router, token: &str, label: &str, is_default: bool) -> i64 {
    let (status, _, body) = send(
        r,
        req("POST", "/address", token, Some(addr(label, is_default))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_i64().expect("id")
}

fn default_ids(list: &[Value]) -> Vec<i64> {
    list.iter()
        .filter(|a| a["is_default"] == true)
        .filter_map(|a| a["id"].as_i64())
        .collect()
}

#[tokio::test]
async fn first_address_becomes_default_and_set_default_moves_it() {
    let (app, r) = setup();
    let t = common_users::create_user(&app, "alice", None).await;
    let a = create(&r, &t, "Home", false).await;
    let b = create(&r, &t, "Office", false).await;
    assert_eq!(
        default_ids(&list(&r, &t).await),
        vec![a],
        "first address is the default"
    );

    let (status, _, body) = send(
        &r,
        req("POST", "/address/set-default", &t, Some(json!({ "id": b }))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(default_ids(&list(&r, &t).await), vec![b]);

    let c = create(&r, &t, "Parents", true).await;
    let all = list(&r, &t).await;
    assert_eq!(
        default_ids(&all),
        vec![c],
        "creating with is_default clears the old default"
    );
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["label"], "Home");
    assert_eq!(all[0]["phone_number"], "628123456789");
}

#[tokio::test]
async fn deleting_the_default_promotes_the_oldest_remaining_address() {
    let (app, r) = setup();
    let t = common_users::create_user(&app, "bob", None).await;
    let a = create(&r, &t, "A", false).await;
    let b = create(&r, &t, "B", false).await;
    let c = create(&r, &t, "C", true).await;
    let (status, _, _) = send(&r, req("DELETE", &format!("/address/{c}"), &t, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(default_ids(&list(&r, &t).await), vec![a]);
    send(&r, req("DELETE", &format!("/address/{a}"), &t, None)).await;
    assert_eq!(default_ids(&list(&r, &t).await), vec![b]);
    send(&r, req("DELETE", &format!("/address/{b}"), &t, None)).await;
    assert!(list(&r, &t).await.is_empty());
    let meta = app
        .addresses()
        .meta(&shared::domain::Username::from_stored("bob"))
        .await
        .expect("meta");
    assert_eq!((meta.count, meta.default_id), (0, None));
    let d = create(&r, &t, "D", false).await;
    assert_eq!(
        default_ids(&list(&r, &t).await),
        vec![d],
        "first address after emptying is default again"
    );
    assert!(d > c, "ids are never reused");
}

#[tokio::test]
async fn update_replaces_fields_and_clearing_the_default_flag_keeps_the_invariant() {
    let (app, r) = setup();
    let t = common_users::create_user(&app, "carol", None).await;
    let a = create(&r, &t, "A", false).await;
    let b = create(&r, &t, "B", false).await;
    let mut body = addr("Renamed", false);
    body["phone_number"] = json!("0812-1111-2222");
    let (status, _, out) = send(&r, req("PUT", &format!("/address/{a}"), &t, Some(body))).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["label"], "Renamed");
    assert_eq!(out["phone_number"], "6281211112222");
    assert_eq!(
        out["is_default"], true,
        "the only default cannot be unset by an update"
    );
    let (status, _, _) = send(
        &r,
        req("PUT", &format!("/address/{b}"), &t, Some(addr("B", true))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(default_ids(&list(&r, &t).await), vec![b]);
}

#[tokio::test]
async fn the_twenty_first_address_is_refused_with_a_clear_400() {
    let (app, r) = setup();
    let t = common_users::create_user(&app, "dave", None).await;
    for i in 0..20 {
        create(&r, &t, &format!("L{i}"), false).await;
    }
    let (status, _, body) = send(
        &r,
        req("POST", "/address", &t, Some(addr("One too many", false))),
    )
    .await;
    assert_envelope(status, &body, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("at most 20"),
        "{body}"
    );
    assert_eq!(list(&r, &t).await.len(), 20);
}

#[tokio::test]
async fn invalid_fields_are_reported_per_field() {
    let (app, r) = setup();
    let t = common_users::create_user(&app, "erin", None).await;
    let bad = json!({ "label": "", "recipient_name": "x".repeat(101), "phone_number": "12345", "address": "Jl" });
    let (status, _, body) = send(&r, req("POST", "/address", &t, Some(bad))).await;
    assert_envelope(status, &body, 400);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for f in ["label", "recipient_name", "phone_number", "address"] {
        assert!(fields.contains(&f), "{f} missing in {body}");
    }
    let (status, _, body) = send(
        &r,
        req("POST", "/address", &t, Some(json!({ "label": "Home" }))),
    )
    .await;
    assert_envelope(status, &body, 400);
    let (status, _, body) = send(
        &r,
        req(
            "POST",
            "/address/set-default",
            &t,
            Some(json!({ "id": "abc" })),
        ),
    )
    .await;
    assert_envelope(status, &body, 400);
    let (status, _, body) = send(&r, req("DELETE", "/address/abc", &t, None)).await;
    assert_envelope(status, &body, 400);
    let (status, _, body) = send(&r, req("GET", "/address/list", "not-a-token", None)).await;
    assert_envelope(status, &body, 401);
    assert!(list(&r, &t).await.is_empty());
}

#[tokio::test]
async fn cross_user_access_on_every_address_route_is_404_and_changes_nothing() {
    let (app, r) = setup();
    let owner = common_users::create_user(&app, "owner", None).await;
    let intruder = common_users::create_user(&app, "intruder", None).await;
    let a = create(&r, &owner, "Home", false).await;
    let b = create(&r, &owner, "Office", false).await;
    let own = create(&r, &intruder, "Mine", false).await;
    assert_eq!(
        own, 1,
        "ids are per user, so the intruder's id space overlaps the owner's"
    );
    let before = list(&r, &owner).await;
    let meta_before = app
        .addresses()
        .meta(&shared::domain::Username::from_stored("owner"))
        .await
        .expect("meta");

    for id in [b, 99] {
        let attempts = [
            req(
                "PUT",
                &format!("/address/{id}"),
                &intruder,
                Some(addr("Hacked", true)),
            ),
            req("DELETE", &format!("/address/{id}"), &intruder, None),
            req(
                "POST",
                "/address/set-default",
                &intruder,
                Some(json!({ "id": id })),
            ),
        ];
        for attempt in attempts {
            let (status, _, body) = send(&r, attempt).await;
            assert_envelope(status, &body, 404);
        }
    }
    // The intruder's list never shows the owner's addresses.
    let theirs = list(&r, &intruder).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["label"], "Mine");

    assert_eq!(
        list(&r, &owner).await,
        before,
        "owner's addresses unchanged"
    );
    let meta_after = app
        .addresses()
        .meta(&shared::domain::Username::from_stored("owner"))
        .await
        .expect("meta");
    assert_eq!(meta_after.version, meta_before.version, "no write happened");
    assert_eq!(default_ids(&before), vec![a]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_default_survives_50_random_parallel_operations() {
    let (app, r) = setup();
    let t = common_users::create_user(&app, "racer", None).await;
    for i in 0..3 {
        create(&r, &t, &format!("Seed{i}"), false).await;
    }
    let mut tasks = Vec::new();
    for i in 0..50 {
        let r = r.clone();
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let id = rand::random_range(1..=12);
            let request = match rand::random_range(0..4) {
                0 => req(
                    "POST",
                    "/address",
                    &t,
                    Some(addr(&format!("P{i}"), rand::random())),
                ),
                1 => req(
                    "PUT",
                    &format!("/address/{id}"),
                    &t,
                    Some(addr(&format!("U{i}"), rand::random())),
                ),
                2 => req("DELETE", &format!("/address/{id}"), &t, None),
                _ => req(
                    "POST",
                    "/address/set-default",
                    &t,
                    Some(json!({ "id": id })),
                ),
            };
            let (status, _, body) = send(&r, request).await;
            (status, body)
        }));
    }
    let mut ok = 0;
    for task in tasks {
        let (status, body) = task.await.expect("task");
        let capped = status == StatusCode::BAD_REQUEST
            && body["message"]
                .as_str()
                .is_some_and(|m| m.contains("at most 20"));
        assert!(
            matches!(status.as_u16(), 200 | 201 | 404) || capped,
            "every operation either applies, finds no such address or hits the cap: {status} {body}"
        );
        ok += usize::from(status.is_success());
    }
    assert!(ok > 0, "some operations applied");
    let all = list(&r, &t).await;
    let meta = app
        .addresses()
        .meta(&shared::domain::Username::from_stored("racer"))
        .await
        .expect("meta");
    assert_eq!(
        meta.count as usize,
        all.len(),
        "ADDRMETA count matches the stored addresses"
    );
    if all.is_empty() {
        assert_eq!(meta.default_id, None);
    } else {
        let defaults = default_ids(&all);
        assert_eq!(defaults.len(), 1, "exactly one default in {all:?}");
        assert_eq!(
            meta.default_id,
            Some(defaults[0]),
            "ADDRMETA points at the default"
        );
    }
}
