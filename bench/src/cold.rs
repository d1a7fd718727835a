//! Cold init of a Lambda function binary: the time from `exec` to its first
//! `GET /2018-06-01/runtime/invocation/next` on a local Lambda Runtime API emulator. That call is
//! the end of the function's init phase (config read, SDK clients built, router assembled).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use tokio::sync::mpsc;

use crate::stats::{Summary, summarize};

/// What the emulator saw.
#[derive(Debug)]
enum Event {
    /// The runtime asked for its first invocation (init is over).
    Next(Instant),
    /// The runtime reported an init failure (body as sent).
    InitError(String),
}

/// A minimal Lambda Runtime API: records `next` calls and init errors, never hands out an event.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    events: mpsc::UnboundedReceiver<Event>,
}

impl RuntimeApi {
    /// Starts the emulator on a free loopback port.
    pub async fn start() -> anyhow::Result<RuntimeApi> {
        let (tx, events) = mpsc::unbounded_channel();
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(tx)
            .route("/", post(get_secret_value));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(RuntimeApi { addr, events })
    }

    fn drain(&mut self) {
        while self.events.try_recv().is_ok() {}
    }
}

async fn next(State(tx): State<mpsc::UnboundedSender<Event>>) -> http::StatusCode {
    let _ = tx.send(Event::Next(Instant::now()));
    // Hold the long poll (as Lambda does between invocations); the bench kills the process first.
    tokio::time::sleep(Duration::from_secs(30)).await;
    http::StatusCode::NO_CONTENT
}

async fn init_error(State(tx): State<mpsc::UnboundedSender<Event>>, body: String) -> &'static str {
    let _ = tx.send(Event::InitError(body));
    "{}"
}

/// Secrets Manager's `GetSecretValue` (JSON protocol, `X-Amz-Target:
/// secretsmanager.GetSecretValue`) for the secrets the template creates, so a function's
/// run-time secret loading is part of the measured init (a loopback round trip: on AWS it is an
/// in-region HTTPS call).
async fn get_secret_value(body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    let id = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["SecretId"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let secret = match id.as_str() {
        "userstate/dev" => serde_json::json!({
            "SECRET_AUTH_CONFIG": "bench-secret-bench-secret-bench-secret-0123",
        }),
        "userstate/dev/xendit" => serde_json::json!({
            "XENDIT_SECRET_KEY": "xnd_development_bench_0123456789abcdef",
            "XENDIT_CALLBACK_TOKEN": "bench-callback-token-0123456789abcdef",
        }),
        "userstate/dev/notifier" => serde_json::json!({ "SMSVIROTOKEN": "bench-sms-token" }),
        _ => {
            let body = serde_json::json!({
                "__type": "ResourceNotFoundException",
                "message": "Secrets Manager can't find the specified secret.",
            });
            return (http::StatusCode::BAD_REQUEST, body.to_string()).into_response();
        }
    };
    let body = serde_json::json!({
        "ARN": format!("arn:aws:secretsmanager:ap-southeast-1:000000000000:secret:{id}-AbCdEf"),
        "Name": id, "SecretString": secret.to_string(), "VersionId": "bench-1",
        "VersionStages": ["AWSCURRENT"], "CreatedDate": 1_764_000_000.0,
    });
    (
        [(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

/// The secrets `template.yaml` names in a function's `USERSTATE_SECRETS`.
fn secrets_of(function: &str) -> &'static str {
    match function {
        "health" => "",
        "payment" => "userstate/dev,userstate/dev/xendit",
        "xendit-callback" | "xendit-sync" => "userstate/dev/xendit",
        "notifier" => "userstate/dev/notifier",
        _ => "userstate/dev",
    }
}

/// The environment Lambda gives a `provided.al2023` function, plus the app's aws-mode settings
/// as the template gives them: secrets are named (`USERSTATE_SECRETS`) and read at start from
/// the emulator's Secrets Manager endpoint. Credentials are dummies; the other SDK clients are
/// built during init but make no request before an invocation.
pub fn lambda_env(function: &str, runtime_api: SocketAddr) -> Vec<(String, String)> {
    let fixed = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        (
            "AWS_LAMBDA_FUNCTION_NAME",
            format!("userstate-dev-{function}"),
        ),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/userstate-dev-{function}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/11/27/[$LATEST]bench".into(),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("_HANDLER", "bootstrap".into()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("AWS_REGION", "ap-southeast-1".into()),
        ("AWS_DEFAULT_REGION", "ap-southeast-1".into()),
        ("AWS_ACCESS_KEY_ID", "AKIDBENCHDUMMY".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench-dummy-secret".into()),
        ("AWS_SESSION_TOKEN", "bench-dummy-session".into()),
        ("TZ", ":UTC".into()),
        ("USERSTATE_BACKEND", "aws".into()),
        ("USERSTATE_SECRETS", secrets_of(function).into()),
        (
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            format!("http://{runtime_api}/"),
        ),
        ("MAIN_TABLE", "userstate-dev-main".into()),
        ("LOGS_TABLE", "userstate-dev-logs".into()),
        (
            "NOTIFY_QUEUE_URL",
            "https://sqs.ap-southeast-1.amazonaws.com/000000000000/userstate-dev-notify".into(),
        ),
        ("PUBLIC_BASE_URL", "https://api.example.com".into()),
        ("IMAGE_BUCKET", "userstate-dev-images".into()),
        (
            "WS_MANAGEMENT_ENDPOINT",
            "https://abc123.execute-api.ap-southeast-1.amazonaws.com/dev".into(),
        ),
        ("API_URL_SMSVIRO", "https://sms.example.com".into()),
        ("MAIL_FROM", "no-reply@example.com".into()),
    ];
    fixed.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Starts `binary` `runs` times (after one discarded warm-up start) and returns the init times.
pub async fn measure(
    api: &mut RuntimeApi,
    function: &str,
    binary: &Path,
    runs: usize,
) -> anyhow::Result<Vec<Duration>> {
    if !binary.is_file() {
        bail!("{} is not a file", binary.display());
    }
    let env = lambda_env(function, api.addr);
    let mut out = Vec::with_capacity(runs);
    for i in 0..=runs {
        api.drain();
        let mut cmd = std::process::Command::new(binary);
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("exec {}", binary.display()))?;
        // The emulator stamps the `next` call itself; polling here only notices an early exit.
        let deadline = started + Duration::from_secs(10);
        let event = loop {
            if let Ok(e) = tokio::time::timeout(Duration::from_millis(5), api.events.recv()).await {
                break e;
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!("exited ({status}) before asking for an invocation");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("no `next` call within 10 s");
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        match event {
            Some(Event::Next(at)) => {
                if i > 0 {
                    out.push(at.saturating_duration_since(started));
                }
            }
            Some(Event::InitError(body)) => bail!("init failed: {body}"),
            None => bail!("runtime API emulator stopped"),
        }
    }
    Ok(out)
}

/// One function's result: init times, or why it did not start.
pub struct Row {
    pub function: String,
    pub summary: Result<Summary, String>,
}

/// Measures every `(function, binary)` and returns one row each.
pub async fn run(
    binaries: &[(String, std::path::PathBuf)],
    runs: usize,
) -> anyhow::Result<Vec<Row>> {
    let mut api = RuntimeApi::start().await?;
    let mut rows = Vec::new();
    for (function, binary) in binaries {
        let summary = match measure(&mut api, function, binary, runs).await {
            Ok(samples) => summarize(&samples)
                .context("no samples")
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        rows.push(Row {
            function: function.clone(),
            summary,
        });
    }
    Ok(rows)
}
