//! Secrets read at start from Secrets Manager (the moto emulator the test script starts): the
//! settings a function gets from `USERSTATE_SECRETS`, and a clear start failure, naming the secret
//! but never a value, when one cannot be read. Skipped without `AWS_ENDPOINT_URL`, unless
//! `USERSTATE_REQUIRE_EMULATOR=1`.

use shared::config::Config;
use shared::secrets;

#[tokio::test]
async fn settings_come_from_the_named_secrets_before_the_environment() {
    let Some(sdk) = tests::dynamo::emulator_sdk("secrets").await else {
        return;
    };
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let auth = format!("userstate/test-{suffix}");
    let xendit = format!("userstate/test-{suffix}/xendit");
    let jwt = "j".repeat(40);
    let key = format!("xnd_development_{}", "k".repeat(32));
    for (name, body) in [
        (&auth, serde_json::json!({ "SECRET_AUTH_CONFIG": jwt })),
        (
            &xendit,
            serde_json::json!({ "XENDIT_SECRET_KEY": key, "XENDIT_CALLBACK_TOKEN": "t".repeat(40) }),
        ),
    ] {
        sm.create_secret()
            .name(name)
            .secret_string(body.to_string())
            .send()
            .await
            .expect("create secret");
    }
    let ids = secrets::ids_from(Some(&format!("{auth},{xendit}")));
    let loaded = secrets::load(&sdk, &ids).await.expect("load");
    let mut names: Vec<&str> = loaded.names().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        vec![
            "SECRET_AUTH_CONFIG",
            "XENDIT_CALLBACK_TOKEN",
            "XENDIT_SECRET_KEY"
        ]
    );
    // The configuration a function builds: secrets first, then its environment.
    let env = |k: &str| match k {
        "USERSTATE_BACKEND" => Some("aws".to_owned()),
        "MAIN_TABLE" => Some("main".to_owned()),
        "LOGS_TABLE" => Some("logs".to_owned()),
        "XENDIT_SECRET_KEY" => Some("from-the-environment".to_owned()),
        _ => None,
    };
    let config = Config::from_lookup(|k| loaded.get(k).or_else(|| env(k))).expect("config");
    assert_eq!(
        config
            .xendit_secret_key
            .as_ref()
            .map(|s| s.expose().to_owned()),
        Some(key.clone())
    );

    // A secret that does not exist (or is not readable): the start fails naming it.
    let missing = format!("userstate/missing-{suffix}");
    let e = secrets::load(&sdk, &[auth.clone(), missing.clone()])
        .await
        .expect_err("missing secret");
    assert!(e.0.contains(&missing), "{}", e.0);
    assert!(!e.0.contains(&jwt) && !e.0.contains(&key), "{}", e.0);
}
