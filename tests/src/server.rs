//! Starts the real `userstate serve` binary on a free loopback port for black-box tests.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// A running local server; killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Data dir when started durable (kept alive for restarts).
    pub data_dir: Option<PathBuf>,
}

fn workspace_root() -> PathBuf {
    // The runtime value (set by cargo and nextest) names the checkout being tested; the
    // compile-time one may name another clone that built into the same shared target dir.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("..")
}

/// Builds the CLI once per test process and returns its path.
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("USERSTATE_BIN") {
            return PathBuf::from(p);
        }
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-q", "-p", "infra", "--bin", "userstate"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the userstate binary failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        target.join("debug").join("userstate")
    })
    .clone()
}

/// Options for a server start.
#[derive(Default, Clone)]
pub struct Options {
    /// Durable store directory; `None` runs `--memory`.
    pub data_dir: Option<PathBuf>,
    /// `holder:key` pairs registered at start.
    pub api_keys: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl Server {
    /// Starts an in-memory server.
    pub fn start() -> Server {
        Server::start_with(Options::default())
    }

    /// Starts a server with options and waits until it listens.
    pub fn start_with(opts: Options) -> Server {
        let mut cmd = Command::new(binary());
        cmd.arg("serve").args(["--port", "0"]);
        match &opts.data_dir {
            Some(d) => {
                cmd.arg("--data-dir").arg(d);
            }
            None => {
                cmd.arg("--memory");
            }
        }
        for k in &opts.api_keys {
            cmd.args(["--api-key", k]);
        }
        cmd.env(
            "RUST_LOG",
            std::env::var("TEST_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        );
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("userstate serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                panic!("userstate serve did not report its address within 60 s");
            }
        };
        Server {
            child,
            base,
            data_dir: opts.data_dir,
        }
    }

    /// URL of a path on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the server (SIGKILL: durability must not depend on a clean shutdown).
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
