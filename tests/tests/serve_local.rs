//! Black-box: the local server from the CLI.

use tests::server::{Options, Server};

#[tokio::test]
async fn health_answers_on_the_running_server() {
    let s = Server::start();
    let res = reqwest::get(s.url("/health")).await.expect("request");
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["status"], "OK");
}

#[tokio::test]
async fn unknown_route_answers_with_the_envelope() {
    let s = Server::start();
    let res = reqwest::get(s.url("/definitely/not/here"))
        .await
        .expect("request");
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["status"], false);
    assert_eq!(body["errorCode"], 404);
}

#[tokio::test]
async fn data_written_survives_a_restart_with_a_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        data_dir: Some(dir.path().to_path_buf()),
        api_keys: vec!["ops:first-key-0123456789".into()],
        ..Options::default()
    };
    let s = Server::start_with(opts);
    s.stop();
    // The API key registered by the first run must still be stored after a kill and restart.
    // It starts again on the same data dir; the running server holds the database lock, so
    // read the stored keys through the CLI after stopping it.
    let s = Server::start_with(Options {
        data_dir: Some(dir.path().to_path_buf()),
        ..Options::default()
    });
    s.stop();
    let out = std::process::Command::new(tests::server::binary())
        .args(["api-key", "list"])
        .env("USERSTATE_DATA_DIR", dir.path())
        .output()
        .expect("list runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "api-key list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("\"holder\":\"ops\""),
        "holder missing after restart: {text}"
    );
}

/// Runs `userstate serve` with `args` (and a backtrace requested) and expects it to fail at
/// start; its stderr.
fn failing_start(args: &[&str]) -> String {
    let out = std::process::Command::new(tests::server::binary())
        .arg("serve")
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LOG", "off")
        .output()
        .expect("userstate runs");
    assert!(!out.status.success(), "the start must fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn start_up_failures_name_what_where_and_the_fix_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let held = Server::start_with(Options {
        data_dir: Some(dir.path().to_path_buf()),
        ..Options::default()
    });
    let data_dir = dir.path().to_string_lossy().into_owned();
    let err = failing_start(&["--data-dir", &data_dir, "--port", "0"]);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(&data_dir), "names the store: {err}");
    assert!(
        err.contains("--data-dir") && err.contains("another process"),
        "says what to do: {err}"
    );
    assert!(!err.contains("backtrace"), "{err}");

    let port = held.base.rsplit(':').next().expect("port").to_owned();
    let err = failing_start(&["--memory", "--port", &port]);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(&format!(":{port}")), "names the port: {err}");
    assert!(err.contains("--port"), "says what to do: {err}");
    assert!(!err.contains("backtrace"), "{err}");
}

#[tokio::test]
async fn logs_are_json_lines_with_one_access_line_per_request_when_stdout_is_not_a_terminal() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(tests::server::binary())
        .args(["serve", "--memory", "--port", "0"])
        .env("RUST_LOG", "info")
        .env_remove("USERSTATE_LOG_FORMAT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("userstate serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = || rx.recv_timeout(std::time::Duration::from_secs(60));
    let base = loop {
        let line = next().expect("a line before the address");
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.trim().to_owned();
        }
    };
    let res = reqwest::get(format!("{base}/health?token=secret-in-query"))
        .await
        .expect("health");
    assert_eq!(res.status(), 200);
    let access = loop {
        let line = next().expect("an access line");
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            assert!(line.starts_with("listening on"), "not JSON: {line}");
            continue;
        };
        if v["span"]["path"] == "/health" && v["fields"]["status"].is_number() {
            break (v, line);
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let (v, line) = access;
    assert_eq!(v["fields"]["status"], 200, "{line}");
    assert_eq!(v["level"], "INFO", "{line}");
    assert!(
        v["span"]["request_id"]
            .as_str()
            .is_some_and(|id| id.len() >= 32),
        "{line}"
    );
    assert!(
        !line.contains("secret-in-query"),
        "query strings are not logged: {line}"
    );
}
