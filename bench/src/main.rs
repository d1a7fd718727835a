//! `userstate-bench`: measurements for docs/BENCHMARKS.md, each printed as a Markdown section.
//! Normally run by `scripts/bench.sh`, which builds the binaries and assembles the file.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bench::stats::ms;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "userstate-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Cold init of Lambda binaries against a local Runtime API emulator.
    ColdInit {
        /// `name=path/to/bootstrap` (repeatable).
        #[arg(long = "function", value_name = "NAME=PATH", required = true)]
        functions: Vec<String>,
        /// Measured starts per function (after one discarded warm-up start).
        #[arg(long, default_value_t = 30)]
        runs: usize,
    },
    /// Warm load on `userstate serve --memory`, and its peak RSS.
    Load {
        /// The `userstate` binary (a release build).
        #[arg(long)]
        server: PathBuf,
        /// Seconds per phase.
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        /// Connection counts, one phase each per route.
        #[arg(long, value_delimiter = ',', default_value = "64,8")]
        concurrency: Vec<usize>,
    },
    /// DynamoDB calls per request of the main routes (in-process, counted at the table port).
    Calls,
    /// Mixed workload (logins, reads, checkouts paid through the simulator, replayed callbacks,
    /// debits with replayed Idempotency-Keys) on `userstate serve --data-dir`, then every wallet
    /// reconciled against its stored ledger. Fails when any answer was a 5xx, a 4xx was not an
    /// envelope, or a wallet does not reconcile.
    Mixed {
        /// The `userstate` binary.
        #[arg(long)]
        server: PathBuf,
        /// Seconds of load.
        #[arg(long, default_value_t = 60)]
        duration: u64,
        /// Closed-loop connections.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Accounts the connections share.
        #[arg(long, default_value_t = 8)]
        users: usize,
        /// Also write the Markdown report to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::ColdInit { functions, runs } => cold_init(functions, runs).await,
        Command::Load {
            server,
            seconds,
            concurrency,
        } => load(server, Duration::from_secs(seconds), concurrency).await,
        Command::Calls => calls().await,
        Command::Mixed {
            server,
            duration,
            concurrency,
            users,
            out,
        } => {
            let options = bench::mixed::Options {
                duration: Duration::from_secs(duration),
                concurrency,
                users,
            };
            mixed(server, options, out).await
        }
    }
}

async fn cold_init(functions: Vec<String>, runs: usize) -> anyhow::Result<()> {
    let mut bins = Vec::new();
    for f in functions {
        let (name, path) = f.split_once('=').context("--function takes NAME=PATH")?;
        bins.push((name.to_owned(), PathBuf::from(path)));
    }
    let rows = bench::cold::run(&bins, runs).await?;
    println!("| function | starts | min ms | median ms | p90 ms | max ms | target ≤ 20 ms |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for r in rows {
        let s = match r.summary {
            Ok(s) => s,
            Err(e) => {
                println!("| {} | did not start: {e} | | | | | MISSED |", r.function);
                continue;
            }
        };
        let met = if s.p50 <= Duration::from_millis(20) {
            "met"
        } else {
            "MISSED"
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {met} |",
            r.function,
            s.n,
            ms(s.min),
            ms(s.p50),
            ms(s.p90),
            ms(s.max)
        );
    }
    Ok(())
}

async fn load(server: PathBuf, duration: Duration, concurrency: Vec<usize>) -> anyhow::Result<()> {
    use bench::load;
    let srv = load::Server::start(&server).await?;
    let (hwm0, _) = srv.memory_kib()?;
    let token = load::prepare_user(&srv).await?;
    let read = load::authenticated_read(&srv, &token).await?;
    let login = load::login(&srv);
    let mut results = Vec::new();
    for target in [&read, &login] {
        for &c in &concurrency {
            let r = load::run(target, c, duration).await?;
            let (hwm, _) = srv.memory_kib()?;
            results.push((r, hwm));
        }
    }
    let (hwm, rss) = srv.memory_kib()?;
    srv.stop();

    println!(
        "| route | connections | seconds | requests ok | errors | req/s | p50 ms | p90 ms | p99 ms | max ms | peak RSS so far |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (r, hwm) in &results {
        let l = r.latency;
        let f = |pick: fn(&bench::stats::Summary) -> Duration| {
            l.as_ref().map(|s| ms(pick(s))).unwrap_or("-".into())
        };
        println!(
            "| {} | {} | {:.1} | {} | {} | {:.0} | {} | {} | {} | {} | {:.1} MiB |",
            r.label,
            r.concurrency,
            r.elapsed.as_secs_f64(),
            r.ok,
            r.errors,
            r.rps(),
            f(|s| s.p50),
            f(|s| s.p90),
            f(|s| s.p99),
            f(|s| s.max),
            *hwm as f64 / 1024.0
        );
    }
    println!();
    println!(
        "Server memory: {:.1} MiB peak RSS (VmHWM) over the whole run; {:.1} MiB at start; {:.1} MiB resident at the end.",
        hwm as f64 / 1024.0,
        hwm0 as f64 / 1024.0,
        rss as f64 / 1024.0
    );
    if let Some((r, _)) = results
        .iter()
        .find(|(r, _)| r.label == read.label && r.concurrency == 64)
        && let Some(s) = r.latency
    {
        let met = if s.p99 <= Duration::from_millis(2) {
            "met"
        } else {
            "MISSED"
        };
        println!();
        println!(
            "Target `{}` p99 ≤ 2 ms at 64 connections: {} ms — {met}.",
            read.label,
            ms(s.p99)
        );
    }
    Ok(())
}

async fn calls() -> anyhow::Result<()> {
    let rows = bench::calls::measure().await?;
    println!("| route | case | status | main table | logs table | total |");
    println!("|---|---|---:|---|---|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.route,
            r.case,
            r.status.as_u16(),
            r.main,
            r.logs,
            r.main.total() + r.logs.total()
        );
    }
    Ok(())
}

async fn mixed(
    server: PathBuf,
    options: bench::mixed::Options,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    use bench::{load, mixed};
    let dir = std::env::temp_dir().join(format!("userstate-mixed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let result = async {
        let srv = load::Server::start_durable(&server, &dir).await?;
        let accounts = mixed::prepare(&srv.base, options.users).await?;
        let run = mixed::run(&srv.base, &accounts, &options).await?;
        srv.stop();
        let checks = mixed::reconcile(&dir, &run).await?;
        Ok::<_, anyhow::Error>((run, checks))
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let (run, checks) = result?;
    let text = mixed::report(&run, &checks);
    print!("{text}");
    if let Some(path) = out {
        std::fs::write(&path, &text).with_context(|| format!("write {}", path.display()))?;
    }
    let bad = run.total(|o| o.server_errors + o.bad_envelopes + o.callback_not_ok)
        + run.total(|o| o.replay_mismatches)
        + checks.iter().filter(|c| !c.reconciled()).count() as u64;
    if bad > 0 {
        anyhow::bail!("mixed workload: {bad} failures (see the report)");
    }
    Ok(())
}
