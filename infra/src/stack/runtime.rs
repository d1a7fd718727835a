//! Functions as Lambda runs them: each instance is the function's binary in its own process,
//! talking to its own Lambda Runtime API (`/2018-06-01/runtime/...`) on a loopback port, with
//! only the environment the template gives it plus Lambda's own variables. An instance handles
//! one invocation at a time; a function starts more instances under load, up to a bound (its
//! reserved concurrency when the template sets one), and an invocation past its `Timeout` ends
//! the instance, as on Lambda.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value as Json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// What the template says about one function, resolved.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Logical id (`AuthFunction`).
    pub logical: String,
    /// Physical name (`{stack}-AuthFunction`).
    pub name: String,
    /// `BuildProperties.Binary`.
    pub binary: String,
    pub path: PathBuf,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub memory_mb: u32,
    pub max_instances: usize,
}

/// How an invocation failed.
#[derive(Debug, Clone)]
pub enum InvokeError {
    /// The handler returned an error (`/invocation/{id}/error`): Lambda's `Unhandled`.
    Function { kind: String, message: String },
    /// Init failed or the process died.
    Crashed(String),
    /// Past the function's timeout.
    Timeout(Duration),
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvokeError::Function { kind, message } => write!(f, "{kind}: {message}"),
            InvokeError::Crashed(why) => write!(f, "the function's process failed: {why}"),
            InvokeError::Timeout(t) => {
                write!(f, "Task timed out after {:.2} seconds", t.as_secs_f64())
            }
        }
    }
}

type Reply = oneshot::Sender<Result<Json, InvokeError>>;

struct Invocation {
    id: String,
    event: Json,
    deadline_ms: u64,
    reply: Reply,
}

/// Which invocation each instance (by access key id) is running, for the IAM proxy's report.
#[derive(Default)]
pub struct Directory {
    instances: Mutex<HashMap<String, (String, Option<String>)>>,
}

impl Directory {
    /// The function (logical id) and current request id of the instance holding `access_key`.
    pub fn lookup(&self, access_key: &str) -> Option<(String, Option<String>)> {
        self.instances.lock().ok()?.get(access_key).cloned()
    }
    fn set(&self, key: &str, function: &str, current: Option<String>) {
        if let Ok(mut m) = self.instances.lock() {
            m.insert(key.to_owned(), (function.to_owned(), current));
        }
    }
}

/// A function and its instances.
pub struct Function {
    pub spec: Spec,
    idle: Mutex<Vec<Arc<Instance>>>,
    slots: Arc<Semaphore>,
    started: AtomicUsize,
    directory: Arc<Directory>,
    seq: AtomicU64,
    /// Extra variables every instance gets (Lambda's own, the local endpoints).
    base_env: Vec<(String, String)>,
}

struct Instance {
    key: String,
    tx: mpsc::Sender<Invocation>,
    alive: Arc<std::sync::atomic::AtomicBool>,
    /// Notified when the process exits (an invocation not yet taken by `next` fails then).
    died: Arc<tokio::sync::Notify>,
    /// Ends the process (timeouts, shutdown); the watcher task owns the child.
    kill: Mutex<Option<oneshot::Sender<()>>>,
}

impl Function {
    pub fn new(spec: Spec, base_env: Vec<(String, String)>, directory: Arc<Directory>) -> Function {
        let slots = Arc::new(Semaphore::new(spec.max_instances.max(1)));
        Function {
            spec,
            idle: Mutex::new(Vec::new()),
            slots,
            started: AtomicUsize::new(0),
            directory,
            seq: AtomicU64::new(0),
            base_env,
        }
    }

    /// Instances started so far.
    pub fn instances_started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    /// Invokes the function with `event` (synchronously, as API Gateway and the SQS poller do)
    /// and returns its response payload.
    pub async fn invoke(&self, event: Json) -> Result<Json, InvokeError> {
        self.invoke_traced(event).await.1
    }

    /// [`Function::invoke`], also returning the invocation's request id (the AWS calls the
    /// IAM proxy counted are filed under it).
    pub async fn invoke_traced(&self, event: Json) -> (String, Result<Json, InvokeError>) {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let id = format!(
            "{:08x}-{n:04x}-4000-8000-{:012x}",
            rand_u32(),
            now_ms() & 0xffff_ffff_ffff
        );
        let outcome = self.run_as(&id, event).await;
        (id, outcome)
    }

    async fn run_as(&self, id: &str, event: Json) -> Result<Json, InvokeError> {
        let id = id.to_owned();
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| InvokeError::Crashed("stack stopping".into()))?;
        let instance = match self.take_idle() {
            Some(i) => i,
            None => self.start_instance().await?,
        };
        let deadline_ms = now_ms() + self.spec.timeout.as_millis() as u64;
        let (reply, answer) = oneshot::channel();
        self.directory
            .set(&instance.key, &self.spec.logical, Some(id.clone()));
        let sent = instance
            .tx
            .send(Invocation {
                id,
                event,
                deadline_ms,
                reply,
            })
            .await;
        if sent.is_err() {
            return Err(InvokeError::Crashed("instance gone".into()));
        }
        let notify = instance.died.clone();
        let crashed =
            || InvokeError::Crashed(format!("{} exited (its log is above)", self.spec.binary));
        let outcome = {
            let died = notify.notified();
            if !instance.alive.load(Ordering::Relaxed) {
                Err(crashed())
            } else {
                tokio::select! {
                r = tokio::time::timeout(self.spec.timeout, answer) => match r {
                    Ok(Ok(r)) => r,
                    Ok(Err(_)) => Err(crashed()),
                    Err(_) => Err(InvokeError::Timeout(self.spec.timeout)),
                },
                () = died => Err(crashed()),
                }
            }
        };
        self.directory.set(&instance.key, &self.spec.logical, None);
        let keep = instance.alive.load(Ordering::Relaxed)
            && !matches!(
                outcome,
                Err(InvokeError::Timeout(_) | InvokeError::Crashed(_))
            );
        if keep {
            if let Ok(mut idle) = self.idle.lock() {
                idle.push(instance);
            }
        } else {
            instance.kill();
        }
        outcome
    }

    fn take_idle(&self) -> Option<Arc<Instance>> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(i) = idle.pop() {
            if i.alive.load(Ordering::Relaxed) {
                return Some(i);
            }
        }
        None
    }

    async fn start_instance(&self) -> Result<Arc<Instance>, InvokeError> {
        let n = self.started.fetch_add(1, Ordering::Relaxed);
        let key = access_key(&self.spec.logical, n);
        let (tx, rx) = mpsc::channel::<Invocation>(1);
        let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let api = RuntimeApi {
            rx: Arc::new(tokio::sync::Mutex::new(rx)),
            current: Arc::new(Mutex::new(None)),
            function_arn: format!(
                "arn:aws:lambda:{}:{}:function:{}",
                env_of(&self.base_env, "AWS_REGION"),
                env_of(&self.base_env, "STACK_ACCOUNT"),
                self.spec.name
            ),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| InvokeError::Crashed(format!("runtime API: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| InvokeError::Crashed(e.to_string()))?;
        let current = api.current.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, api.router()).await;
        });
        let mut cmd = tokio::process::Command::new(&self.spec.path);
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(self.spec.env.iter().map(|(k, v)| (k, v)))
            .envs(
                self.base_env
                    .iter()
                    .filter(|(k, _)| k != "STACK_ACCOUNT")
                    .map(|(k, v)| (k, v)),
            )
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.spec.name)
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                self.spec.memory_mb.to_string(),
            )
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", self.spec.name),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("[$LATEST]{key}"))
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("_HANDLER", "bootstrap")
            .env("TZ", ":UTC")
            .env("AWS_ACCESS_KEY_ID", &key)
            .env("AWS_SECRET_ACCESS_KEY", "stack-local-secret")
            .env("AWS_SESSION_TOKEN", "stack-local-session")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent; it asks the
        // kernel to end the function's process when the stack's process dies (even by SIGKILL),
        // so no instance outlives the stack.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            InvokeError::Crashed(format!("cannot start {}: {e}", self.spec.path.display()))
        })?;
        for out in [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let name = self.spec.binary.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    eprintln!("[{name}] {line}");
                }
            });
        }
        self.directory.set(&key, &self.spec.logical, None);
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let died = Arc::new(tokio::sync::Notify::new());
        let instance = Arc::new(Instance {
            key,
            tx,
            alive: alive.clone(),
            died: died.clone(),
            kill: Mutex::new(Some(kill_tx)),
        });
        // The watcher owns the process: when it exits, the instance is dead and its current
        // invocation fails (an init error or a crash), as Lambda reports it.
        let name = self.spec.name.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                _ = kill_rx => { let _ = child.kill().await; "killed".to_owned() }
            };
            alive.store(false, Ordering::Relaxed);
            died.notify_waiters();
            let pending = current.lock().ok().and_then(|mut c| c.take());
            if let Some((_, reply)) = pending {
                let _ = reply.send(Err(InvokeError::Crashed(format!(
                    "{name} exited: {status}"
                ))));
            }
        });
        Ok(instance)
    }
}

impl Instance {
    fn kill(&self) {
        self.alive.store(false, Ordering::Relaxed);
        if let Some(tx) = self.kill.lock().ok().and_then(|mut k| k.take()) {
            let _ = tx.send(());
        }
    }
}

/// The access key id an instance signs with: names the function and the instance.
fn access_key(logical: &str, n: usize) -> String {
    format!("STACK{}{n:03}", logical.to_ascii_uppercase())
}

fn env_of<'a>(env: &'a [(String, String)], key: &str) -> &'a str {
    env.iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn rand_u32() -> u32 {
    rand::random()
}

/// One instance's Runtime API.
#[derive(Clone)]
struct RuntimeApi {
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Invocation>>>,
    current: Arc<Mutex<Option<(String, Reply)>>>,
    function_arn: String,
}

impl RuntimeApi {
    fn router(self) -> Router {
        Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(self)
    }

    fn finish(&self, id: Option<&str>, outcome: Result<Json, InvokeError>) -> StatusCode {
        let taken = self.current.lock().ok().and_then(|mut c| match (&*c, id) {
            (Some((cur, _)), Some(id)) if cur != id => None,
            _ => c.take(),
        });
        match taken {
            Some((_, reply)) => {
                let _ = reply.send(outcome);
                StatusCode::ACCEPTED
            }
            None => StatusCode::BAD_REQUEST,
        }
    }
}

async fn next(State(api): State<RuntimeApi>) -> Response {
    let Some(inv) = api.rx.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let mut put = |k: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            headers.insert(k, v);
        }
    };
    put("lambda-runtime-aws-request-id", &inv.id);
    put("lambda-runtime-deadline-ms", &inv.deadline_ms.to_string());
    put("lambda-runtime-invoked-function-arn", &api.function_arn);
    put(
        "lambda-runtime-trace-id",
        &format!(
            "Root=1-{:08x}-{:024x};Sampled=0",
            now_ms() / 1000,
            rand::random::<u64>()
        ),
    );
    put("content-type", "application/json");
    if let Ok(mut c) = api.current.lock() {
        *c = Some((inv.id, inv.reply));
    }
    (headers, inv.event.to_string()).into_response()
}

async fn response(
    State(api): State<RuntimeApi>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    let payload = serde_json::from_str(&body).unwrap_or(Json::String(body));
    api.finish(Some(&id), Ok(payload))
}

async fn error(State(api): State<RuntimeApi>, Path(id): Path<String>, body: String) -> StatusCode {
    api.finish(Some(&id), Err(function_error(&body)))
}

async fn init_error(State(api): State<RuntimeApi>, body: String) -> StatusCode {
    let e = function_error(&body);
    api.finish(None, Err(InvokeError::Crashed(format!("init failed: {e}"))));
    StatusCode::ACCEPTED
}

fn function_error(body: &str) -> InvokeError {
    let v: Json = serde_json::from_str(body).unwrap_or(Json::Null);
    InvokeError::Function {
        kind: v["errorType"].as_str().unwrap_or("Unhandled").to_owned(),
        message: v["errorMessage"].as_str().unwrap_or(body).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "function binary" that is a shell script.
    fn script(name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("stack-runtime-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn function(path: PathBuf, timeout: Duration) -> Function {
        let spec = Spec {
            logical: "TestFunction".into(),
            name: "stack-test-TestFunction".into(),
            binary: "test".into(),
            path,
            env: Vec::new(),
            timeout,
            memory_mb: 128,
            max_instances: 1,
        };
        Function::new(spec, Vec::new(), Arc::new(Directory::default()))
    }

    #[tokio::test]
    async fn an_invocation_past_the_timeout_fails_and_ends_the_instance() {
        // Takes its invocation, then never answers.
        let body = r#"curl -s "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/next" >/dev/null; sleep 30"#;
        let f = function(script("slow", body), Duration::from_millis(1500));
        let started = std::time::Instant::now();
        let err = f.invoke(serde_json::json!({})).await.unwrap_err();
        assert!(matches!(err, InvokeError::Timeout(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(
            err.to_string()
                .starts_with("Task timed out after 1.50 seconds"),
            "{err}"
        );
        // The next invocation gets a new instance.
        let _ = f.invoke(serde_json::json!({})).await;
        assert_eq!(f.instances_started(), 2);
    }

    #[tokio::test]
    async fn a_function_that_dies_at_init_fails_its_invocation_at_once() {
        let f = function(
            script("crash", "echo broken config >&2; exit 3"),
            Duration::from_secs(30),
        );
        let started = std::time::Instant::now();
        let err = f.invoke(serde_json::json!({})).await.unwrap_err();
        assert!(matches!(err, InvokeError::Crashed(_)), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "answered, not left hanging"
        );
    }

    #[tokio::test]
    async fn a_handler_error_is_reported_with_its_type() {
        let body = r#"id=$(curl -s -D - -o /dev/null "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/next" | tr -d '\r' | sed -n 's/^lambda-runtime-aws-request-id: //p')
curl -s -X POST -d '{"errorType":"Boom","errorMessage":"it broke"}' "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/$id/error" >/dev/null
sleep 30"#;
        let f = function(script("error", body), Duration::from_secs(10));
        match f.invoke(serde_json::json!({})).await {
            Err(InvokeError::Function { kind, message }) => {
                assert_eq!((kind.as_str(), message.as_str()), ("Boom", "it broke"));
            }
            other => panic!("expected a function error, got {other:?}"),
        }
    }
}
