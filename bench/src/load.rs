//! Warm load on the local server: a fixed number of connections, each sending its next request as
//! soon as the previous answer arrived (closed loop), for a bounded time, on loopback only.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};

use crate::stats::{Summary, summarize};

/// A request the load repeats.
#[derive(Clone, Debug)]
pub struct Target {
    /// Label in the report, e.g. `GET /verify`.
    pub label: String,
    pub method: reqwest::Method,
    pub url: String,
    pub bearer: Option<String>,
    pub body: Option<Value>,
}

/// Result of one load phase.
#[derive(Debug)]
pub struct LoadResult {
    pub label: String,
    pub concurrency: usize,
    pub elapsed: Duration,
    pub ok: u64,
    pub errors: u64,
    /// Latency of successful (2xx) answers.
    pub latency: Option<Summary>,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `concurrency` closed-loop connections against `target` for `duration`.
pub async fn run(
    target: &Target,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let client = client.clone();
        let t = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(4096);
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let mut req = client.request(t.method.clone(), &t.url);
                if let Some(b) = &t.bearer {
                    req = req.bearer_auth(b);
                }
                if let Some(body) = &t.body {
                    req = req.json(body);
                }
                let sent = Instant::now();
                match req.send().await {
                    Ok(res) => {
                        let ok = res.status().is_success();
                        // Read the whole body: the latency is to the last byte.
                        let body = res.bytes().await;
                        if ok && body.is_ok() {
                            lat.push(sent.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await?;
        all.extend(lat);
        errors += e;
    }
    let elapsed = start.elapsed();
    Ok(LoadResult {
        label: target.label.clone(),
        concurrency,
        elapsed,
        ok: all.len() as u64,
        errors,
        latency: summarize(&all),
    })
}

/// The local server under test (`userstate serve --memory`), killed on drop.
pub struct Server {
    child: std::process::Child,
    pub base: String,
    pub pid: u32,
}

impl Server {
    /// Starts `binary serve --memory --port 0` with request logging at `warn` and the login rate
    /// limits raised (the load logs in thousands of times from one address).
    pub async fn start(binary: &Path) -> anyhow::Result<Server> {
        Server::spawn(binary, &["--memory".as_ref()]).await
    }

    /// Like [`Server::start`], on a durable store in `data_dir` (read back after [`Server::stop`]).
    pub async fn start_durable(binary: &Path, data_dir: &Path) -> anyhow::Result<Server> {
        Server::spawn(binary, &["--data-dir".as_ref(), data_dir.as_os_str()]).await
    }

    async fn spawn(binary: &Path, store: &[&std::ffi::OsStr]) -> anyhow::Result<Server> {
        let mut child = std::process::Command::new(binary)
            .arg("serve")
            .args(store)
            .args(["--port", "0"])
            .env("RUST_LOG", "warn")
            .envs(RAISED_LIMITS.iter().copied())
            .env_remove("USERSTATE_BACKEND")
            .env_remove("API_PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("exec {}", binary.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().context("stdout")?;
        // Read the address line, then keep draining stdout so the server never blocks on a pipe.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let base = match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(base)) => base,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("server did not report its address within 30 s");
            }
        };
        Ok(Server { child, base, pid })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `(VmHWM, VmRSS)` of the server in KiB, from `/proc/<pid>/status`.
    pub fn memory_kib(&self) -> anyhow::Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .with_context(|| format!("{name} in /proc/{}/status", self.pid))
        };
        Ok((field("VmHWM:")?, field("VmRSS:")?))
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rate limits raised for load runs: every request comes from one address, and the accounts are
/// signed up and logged in far more often than the production limits allow.
pub const RAISED_LIMITS: [(&str, &str); 5] = [
    ("RATE_LIMIT_LOGIN_IP", "1000000000/60"),
    ("RATE_LIMIT_LOGIN_ACCOUNT", "1000000000/60"),
    ("RATE_LIMIT_SIGNUP_IP", "1000000/60"),
    ("RATE_LIMIT_OTP_IP", "1000000/60"),
    ("RATE_LIMIT_OTP_ID", "1000000/60"),
];

/// Credentials of the account the load uses.
pub const USERNAME: &str = "bench_user";
pub const PASSWORD: &str = "benchPassword123";

/// Creates and verifies an account through the public API and the dev outbox; returns a token.
pub async fn prepare_user(server: &Server) -> anyhow::Result<String> {
    signup_and_login(
        &server.base,
        USERNAME,
        PASSWORD,
        "bench@example.com",
        "628100200300",
    )
    .await
}

/// Signs an account up with OTP mode on the server at `base`, verifies it with the OTP from the
/// dev outbox and logs it in; returns a session token.
pub async fn signup_and_login(
    base: &str,
    username: &str,
    password: &str,
    email: &str,
    phone: &str,
) -> anyhow::Result<String> {
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{base}{p}");
    let res = http
        .post(url("/signup"))
        .json(
            &json!({"username": username, "password": password, "email": email,
            "full_name": "Bench User", "phone_number": phone, "mode": "OTP"}),
        )
        .send()
        .await?;
    let status = res.status();
    let body: Value = res.json().await?;
    if !status.is_success() {
        bail!("signup: {status} {body}");
    }
    let reg = body["token"]
        .as_str()
        .context("registration token")?
        .to_owned();
    let mut otp = None;
    for _ in 0..50 {
        let list: Value = http
            .get(url(&format!("/_dev/outbox?to={phone}")))
            .send()
            .await?
            .json()
            .await?;
        if let Some(text) = list
            .as_array()
            .and_then(|l| l.last())
            .and_then(|m| m["body"].as_str())
        {
            otp = text
                .split(|c: char| !c.is_ascii_digit())
                .find(|w| w.len() == 6)
                .map(str::to_owned);
            if otp.is_some() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let otp = otp.context("no OTP in the dev outbox")?;
    let res = http
        .post(url("/verify-sign-up"))
        .bearer_auth(&reg)
        .json(&json!({"otp": otp}))
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("verify-sign-up: {} {}", res.status(), res.text().await?);
    }
    let res = http
        .post(url("/auth"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await?;
    let status = res.status();
    let body: Value = res.json().await?;
    if !status.is_success() {
        bail!("login: {status} {body}");
    }
    Ok(body["token"].as_str().context("token")?.to_owned())
}

/// The authenticated read to load: `GET /balance` once the wallet group is on the server,
/// else `GET /verify` (JWT check plus session read).
pub async fn authenticated_read(server: &Server, token: &str) -> anyhow::Result<Target> {
    let http = reqwest::Client::new();
    let status = http
        .get(server.url("/balance"))
        .bearer_auth(token)
        .send()
        .await?
        .status();
    let path = if status.is_success() {
        "/balance"
    } else {
        "/verify"
    };
    Ok(Target {
        label: format!("GET {path}"),
        method: reqwest::Method::GET,
        url: server.url(path),
        bearer: Some(token.to_owned()),
        body: None,
    })
}

/// `POST /auth` with the bench account's valid credentials (an argon2id verification each).
pub fn login(server: &Server) -> Target {
    Target {
        label: "POST /auth".into(),
        method: reqwest::Method::POST,
        url: server.url("/auth"),
        bearer: None,
        body: Some(json!({"username": USERNAME, "password": PASSWORD})),
    }
}
