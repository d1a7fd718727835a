//! Fresh tables on the DynamoDB emulator for tests that run on the DynamoDB adapter.

use std::sync::Arc;

use aws_config::BehaviorVersion;
use shared::store::TableRef;
use shared::store::dynamo::{DynamoTable, create_table};
use shared::store::schema::{LOGS, MAIN};

/// The emulator's client, or `None` when `AWS_ENDPOINT_URL` is not set (the test is skipped, and
/// says so, unless `USERSTATE_REQUIRE_EMULATOR=1`, which makes it fail instead).
pub async fn client(suite: &str) -> Option<aws_sdk_dynamodb::Client> {
    Some(aws_sdk_dynamodb::Client::new(&emulator_sdk(suite).await?))
}

/// The SDK configuration for the emulator (moto serves every AWS service the tests use), or
/// `None` as [`client`] says.
pub async fn emulator_sdk(suite: &str) -> Option<aws_config::SdkConfig> {
    if std::env::var("AWS_ENDPOINT_URL")
        .map(|v| v.trim().is_empty())
        .unwrap_or(true)
    {
        assert_ne!(
            std::env::var("USERSTATE_REQUIRE_EMULATOR").as_deref(),
            Ok("1"),
            "USERSTATE_REQUIRE_EMULATOR=1 but AWS_ENDPOINT_URL is not set"
        );
        println!("{suite}[emulator]: SKIPPED — AWS_ENDPOINT_URL is not set");
        return None;
    }
    Some(aws_config::defaults(BehaviorVersion::latest()).load().await)
}

/// A fresh main and logs table (unique names per call), and their names.
pub async fn fresh_tables(
    client: &aws_sdk_dynamodb::Client,
    prefix: &str,
) -> (TableRef, TableRef, Vec<String>) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (main, logs) = (
        format!("{prefix}-main-{}", &run[..12]),
        format!("{prefix}-logs-{}", &run[..12]),
    );
    create_table(client, &MAIN, &main)
        .await
        .expect("main table");
    create_table(client, &LOGS, &logs)
        .await
        .expect("logs table");
    (
        Arc::new(DynamoTable::new(client.clone(), &MAIN, &main)),
        Arc::new(DynamoTable::new(client.clone(), &LOGS, &logs)),
        vec![main, logs],
    )
}
