//! The hardening scenarios on DynamoDB (the moto emulator the test script starts): a session is
//! opened only in a transaction that checks the account's credential version, guessing slots are
//! conditional increments, the open-invoice count is reserved with the invoice — all of which must
//! hold on DynamoDB's conditions and transactions as on the embedded store. Skipped without
//! `AWS_ENDPOINT_URL` unless `USERSTATE_REQUIRE_EMULATOR=1`.

#[path = "../../shared/tests/scenarios/mod.rs"]
mod scenarios;

use std::sync::Arc;

use scenarios::{Scene, race_config};
use shared::App;
use shared::clock::SystemClock;
use shared::config::Config;
use shared::store::TableRef;

/// Fresh tables on the emulator, or `None` (skipped) without one.
async fn tables() -> Option<(TableRef, TableRef)> {
    let client = tests::dynamo::client("hardening").await?;
    let (main, logs, _) = tests::dynamo::fresh_tables(&client, "hard").await;
    Some((main, logs))
}

async fn scene(tweak: impl FnOnce(&mut Config)) -> Option<Scene> {
    let (main, logs) = tables().await?;
    Some(
        Scene::serve(tweak, move |config| {
            App::assemble(config, main, logs, Arc::new(SystemClock))
        })
        .await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_sixteen_logins_racing_a_reset_a_password_change_and_a_deactivation_leave_no_live_session()
 {
    let Some(scene) = scene(race_config).await else {
        return;
    };
    scenarios::logins_racing_revocations_leave_no_live_session(&scene, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_sixty_parallel_wrong_passwords_verify_at_most_the_limit() {
    let Some(scene) = scene(|_| {}).await else {
        return;
    };
    scenarios::wrong_passwords_from_many_addresses_verify_at_most_the_limit(&scene, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_the_open_invoice_cap_holds_under_16_parallel_checkouts() {
    let Some(scene) = scene(|c| c.max_open_invoices = 10).await else {
        return;
    };
    scenarios::parallel_checkouts_respect_the_open_invoice_cap(&scene, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_aliases_of_one_mailbox_cannot_hold_two_accounts_and_referral_caps_hold() {
    let Some(scene) = scene(|c| {
        c.points.referral_cap = shared::ratelimit::Limit::new(1, 30 * 86_400);
        c.points.referral_min_payment = 1;
    })
    .await
    else {
        return;
    };
    scenarios::aliases_and_referral_caps(&scene).await;
}
