//! `userstate import`: the original PostgreSQL (+ mongoexport files) into the configured store.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use userstate_import::{self as import, Options, mongo};

#[derive(Args)]
pub struct ImportArgs {
    /// PostgreSQL URL of the original database (`postgres://user:pass@127.0.0.1:5432/userstate`);
    /// no TLS: connect on the host or through an SSH tunnel.
    #[arg(long, env = "USERSTATE_IMPORT_PG")]
    pg: String,
    /// Directory with `xendit_checkout_logs.json` / `xendit_payout_logs.json` (mongoexport JSON lines).
    #[arg(long)]
    mongo_dir: Option<PathBuf>,
    /// Read and compare only; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write the reconciliation report (JSON) here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Users written concurrently.
    #[arg(long, default_value_t = 16)]
    parallel: usize,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let client = import::pg::connect(&args.pg)
        .await
        .context("connecting to PostgreSQL")?;
    let mut src = import::pg::read(&client)
        .await
        .context("reading the original tables")?;
    if let Some(dir) = &args.mongo_dir {
        src.checkout_logs =
            mongo::read_collection(dir, "xendit_checkout_logs").map_err(anyhow::Error::msg)?;
        src.payout_logs =
            mongo::read_collection(dir, "xendit_payout_logs").map_err(anyhow::Error::msg)?;
    }
    let plan = import::plan(&src)?;
    eprintln!(
        "import: {} users to import, {} bad rows{}",
        plan.users.len(),
        plan.bad_rows.len(),
        if args.dry_run { " (dry run)" } else { "" }
    );
    let app = shared::App::from_env().await?;
    let report = import::execute(
        &app,
        plan,
        Options {
            dry_run: args.dry_run,
            progress_every: 100,
            parallel: args.parallel,
        },
    )
    .await?;
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    print!("{}", report.summary());
    if !report.balances.equal {
        anyhow::bail!("balance totals differ between the source and the store");
    }
    Ok(())
}
