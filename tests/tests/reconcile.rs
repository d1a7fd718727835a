//! Money reconciliation on the embedded store and on DynamoDB (emulator): see
//! `tests/src/reconcile.rs`.

use std::sync::Arc;

use shared::clock::SystemClock;
use shared::store::local::LocalStore;
use shared::store::schema::{LOGS, MAIN};

#[tokio::test]
async fn reconciliation_finds_the_one_corrupted_wallet_on_the_embedded_store() {
    let store = LocalStore::memory(Arc::new(SystemClock)).expect("store");
    let main = Arc::new(store.table(&MAIN, "main"));
    let logs = Arc::new(store.table(&LOGS, "logs"));
    tests::reconcile::scenario(main, logs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_finds_the_one_corrupted_wallet_on_dynamodb() {
    let Some(client) = tests::dynamo::client("reconcile").await else {
        return;
    };
    let (main, logs, _) = tests::dynamo::fresh_tables(&client, "reconcile").await;
    tests::reconcile::scenario(main, logs).await;
}
