//! The deployed binary refuses to start in aws mode without a usable `XENDIT_CALLBACK_TOKEN`: an
//! empty token must never fall back to the public local default (a forged callback with that
//! default would credit money).

use std::process::Command;
use std::time::Duration;

/// Runs the function binary with `env` (and nothing else from this process); its exit status
/// and stderr, or `None` when it was still running after a few seconds.
fn start(env: &[(&str, &str)]) -> Option<(bool, String)> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xendit-callback"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // A Runtime API nobody listens on: a function that passes its checks fails here instead.
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("AWS_LAMBDA_FUNCTION_NAME", "xendit-callback")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("RUST_LOG", "error");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the function");
    for _ in 0..100 {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Some((status.success(), err));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

const AWS: &[(&str, &str)] = &[
    ("USERSTATE_BACKEND", "aws"),
    ("MAIN_TABLE", "main"),
    ("LOGS_TABLE", "logs"),
    (
        "XENDIT_SECRET_KEY",
        "xnd_development_a-real-looking-key-0123456789abcdef",
    ),
    ("WS_MANAGEMENT_ENDPOINT", "https://ws.example.invalid/dev"),
];

#[test]
fn an_empty_callback_token_stops_the_function_at_start_with_a_clear_message() {
    for token in ["", "short", "local-callback-token"] {
        let mut env = AWS.to_vec();
        env.push(("XENDIT_CALLBACK_TOKEN", token));
        let (ok, stderr) = start(&env).expect("the function exits");
        assert!(!ok, "started with callback token {token:?}");
        assert!(
            stderr.contains("XENDIT_CALLBACK_TOKEN"),
            "the message names the variable ({token:?}): {stderr}"
        );
    }
}

#[test]
fn with_a_real_callback_token_the_function_gets_past_its_configuration() {
    let mut env = AWS.to_vec();
    env.push((
        "XENDIT_CALLBACK_TOKEN",
        "tokenFromTheXenditDashboard0123456789abcd",
    ));
    // It passes the checks and then waits on (or fails to reach) the Runtime API.
    if let Some((_, stderr)) = start(&env) {
        assert!(
            !stderr.contains("XENDIT_CALLBACK_TOKEN"),
            "refused a valid token: {stderr}"
        );
    }
}
