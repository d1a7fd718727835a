//! `userstate serve` in aws mode on the DynamoDB emulator: a start without the tables fails,
//! naming them and the command that creates them; `userstate tables create` (idempotent) makes
//! the next start pass. Skipped without `AWS_ENDPOINT_URL` unless `USERSTATE_REQUIRE_EMULATOR=1`.

use tests::server::{Options, Server, binary};

#[tokio::test]
async fn serve_names_missing_tables_and_tables_create_makes_it_start() {
    if tests::dynamo::emulator_sdk("serve-aws").await.is_none() {
        return;
    }
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (main, logs) = (format!("serve-main-{run}"), format!("serve-logs-{run}"));
    let env = [
        ("USERSTATE_BACKEND", "aws".to_owned()),
        ("MAIN_TABLE", main.clone()),
        ("LOGS_TABLE", logs.clone()),
        ("SECRET_AUTH_CONFIG", "s".repeat(40)),
        ("RUST_LOG", "off".to_owned()),
    ];
    let cli = |args: &[&str]| {
        std::process::Command::new(binary())
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("userstate runs")
    };
    let out = cli(&["serve", "--port", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "starts without its tables: {err}");
    assert!(
        err.contains(&main) && err.contains(&logs),
        "names both: {err}"
    );
    assert!(err.contains("userstate tables create"), "says how: {err}");

    for _ in 0..2 {
        let out = cli(&["tables", "create"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let s = Server::start_with(Options {
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        ..Options::default()
    });
    let res = reqwest::get(s.url("/health")).await.expect("health");
    assert_eq!(res.status(), 200);
}
