//! The `Table` conformance suite against DynamoDB — in practice the moto emulator the test script
//! starts. Configured from the environment only (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials).
//! Without `AWS_ENDPOINT_URL` the run is skipped, unless `USERSTATE_REQUIRE_EMULATOR=1`.

use std::sync::{Arc, Mutex};

use aws_config::BehaviorVersion;
use shared::clock::Clock;
use shared::store::dynamo::{DynamoTable, create_table};
use shared::store::schema::MAIN;
use shared::store::{Key, Table, TableRef};
use tests::conformance;

/// A client for the configured endpoint, or `None` (after a notice) when the run is skipped.
async fn client() -> Option<aws_sdk_dynamodb::Client> {
    if std::env::var("AWS_ENDPOINT_URL")
        .map(|v| v.trim().is_empty())
        .unwrap_or(true)
    {
        if std::env::var("USERSTATE_REQUIRE_EMULATOR").as_deref() == Ok("1") {
            panic!(
                "USERSTATE_REQUIRE_EMULATOR=1 but AWS_ENDPOINT_URL is not set: start the DynamoDB emulator"
            );
        }
        println!(
            "conformance[dynamodb]: SKIPPED — AWS_ENDPOINT_URL is not set (set it to a DynamoDB emulator)"
        );
        return None;
    }
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    Some(aws_sdk_dynamodb::Client::new(&config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_adapter_conforms() {
    let Some(client) = client().await else { return };
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let created = Arc::new(Mutex::new(Vec::<String>::new()));
    let report = conformance::run("dynamodb", |def| {
        let (client, created) = (client.clone(), created.clone());
        let name = format!(
            "conformance-{}-{}",
            &run_id[..8],
            uuid::Uuid::new_v4().simple()
        );
        async move {
            create_table(&client, def, &name).await?;
            // Creating twice is fine (idempotent).
            create_table(&client, def, &name).await?;
            created
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(name.clone());
            Ok(Arc::new(DynamoTable::new(client, def, &name)) as TableRef)
        }
    })
    .await;
    assert_eq!(report.passed.len(), conformance::case_names().len());
    let names = std::mem::take(&mut *created.lock().unwrap_or_else(|p| p.into_inner()));
    for name in names {
        let _ = client.delete_table().table_name(name).send().await;
    }
}

/// A table that does not exist is an unavailable store, not a missing item.
#[tokio::test]
async fn missing_table_is_unavailable() {
    let Some(client) = client().await else { return };
    let t = DynamoTable::new(client, &MAIN, "conformance-does-not-exist");
    let r = t.get(&Key::new("a", "b")).await;
    assert!(
        matches!(r, Err(shared::store::StoreError::Unavailable(_))),
        "got {r:?}"
    );
}

/// Expiry follows the injected clock, as in the local adapter.
#[tokio::test]
async fn expiry_follows_the_injected_clock() {
    let Some(client) = client().await else { return };
    let name = format!("conformance-clock-{}", uuid::Uuid::new_v4().simple());
    create_table(&client, &MAIN, &name)
        .await
        .expect("create table");
    let clock = shared::clock::ManualClock::new();
    let t = DynamoTable::new(client.clone(), &MAIN, &name).with_clock(Arc::new(clock.clone()));
    let mut item = Key::new("OTP#login#u", "CODE").item();
    item.insert(
        "ttl".into(),
        shared::store::AttrValue::N(clock.epoch() + 600),
    );
    t.put(item.clone(), None).await.expect("put");
    assert_eq!(
        t.get(&Key::new("OTP#login#u", "CODE")).await.expect("get"),
        Some(item)
    );
    clock.advance(chrono::Duration::seconds(601));
    assert_eq!(
        t.get(&Key::new("OTP#login#u", "CODE")).await.expect("get"),
        None
    );
    let page = t
        .query(shared::store::Query::pk("OTP#login#u"))
        .await
        .expect("query");
    assert!(page.items.is_empty());
    let _ = client.delete_table().table_name(name).send().await;
}
