//! `userstate`: the local server and operator tooling.

mod dlq;
mod import;
mod serve;
mod stack;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: request handling allocates and frees many small buffers per
/// request, and the measured `GET /balance` throughput under load is higher with it
/// (docs/BENCHMARKS.md). Only this binary; the Lambda functions keep the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// UserState: accounts, wallet and payments — local server and operator tools.
#[derive(Parser)]
#[command(name = "userstate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every route group in one local server (embedded store, in-process stand-ins).
    Serve(serve::ServeArgs),
    /// Run template.yaml locally as deployed: every function's binary behind emulated API Gateway
    /// (HTTP, function URL, WebSocket), SQS and the schedule, on moto, IAM-checked (docs/STACK.md).
    Stack(stack::StackArgs),
    /// Manage API keys for Basic-auth (`/sys/*`, admin) routes.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Run the Xendit sync once: check PENDING invoices at Xendit, credit paid ones, expire the rest.
    /// (Against a running local server use `POST /sys/xendit-sync`: it holds the store and the simulator.)
    Sync,
    /// Prove wallets against their ledgers (balance = ledger sum, points = points-ledger sum),
    /// resuming the current pass; reports mismatches, never changes money. Exits non-zero when it
    /// found one.
    Reconcile {
        /// Wallets to check in this run at most.
        #[arg(long, default_value_t = 100_000)]
        max_wallets: usize,
    },
    /// Dead-letter queues.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Write the default banks and payment types (idempotent).
    Seed,
    /// DynamoDB tables (aws mode: on an account, or on an emulator via `AWS_ENDPOINT_URL`).
    #[command(subcommand)]
    Tables(TablesCommand),
    /// Import users, balances and history from the original PostgreSQL (and MongoDB exports).
    /// Idempotent and resumable; see docs/IMPORT.md.
    Import(import::ImportArgs),
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Move every message of the queue's dead-letter queue back to the queue (found from its
    /// redrive policy); safe to run twice.
    Redrive {
        /// The queue whose DLQ is drained (default: the notification queue).
        #[arg(long, env = "NOTIFY_QUEUE_URL")]
        queue: String,
    },
}

#[derive(Subcommand)]
enum TablesCommand {
    /// Create `MAIN_TABLE` and `LOGS_TABLE` as the template defines them (idempotent: existing
    /// tables are left as they are).
    Create,
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create a key and print it once.
    Create {
        #[arg(long)]
        holder: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Replace an existing key of the same holder (rotation).
        #[arg(long)]
        replace: bool,
    },
    /// List holders (never keys or hashes).
    List,
    /// Revoke a holder's key.
    Revoke {
        #[arg(long)]
        holder: String,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shared::telemetry::init_cli();
    // One line saying what failed and what to do; no backtrace (it tells an operator nothing).
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("userstate: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Stack(args) => stack::run(args).await,
        Command::ApiKey(cmd) => api_key(cmd).await,
        Command::Import(args) => import::run(args).await,
        Command::Seed => {
            let app = shared::App::from_env().await?;
            let (banks, types) = app.catalog().seed().await?;
            println!("seeded {banks} banks and {types} payment types");
            Ok(())
        }
        Command::Tables(TablesCommand::Create) => tables_create().await,
        Command::Dlq(DlqCommand::Redrive { queue }) => {
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .load()
                .await;
            let moved = dlq::redrive(&aws_sdk_sqs::Client::new(&sdk), &queue).await?;
            println!("moved {moved} message(s) back to {queue}");
            Ok(())
        }
        Command::Reconcile { max_wallets } => {
            let app = shared::App::from_env().await?;
            let budget = shared::reconcile::Budget {
                max_wallets,
                deadline: shared::clock::Deadline::after(std::time::Duration::from_secs(3600)),
            };
            let report = app.reconciler().run(budget).await?;
            println!("{}", serde_json::to_string(&report)?);
            match report.mismatches.len() {
                0 => Ok(()),
                n => anyhow::bail!(
                    "{n} wallet(s) do not match their ledgers (logged to the logs table; \
                     docs/OPERATIONS.md, \"A wallet does not match its ledger\")"
                ),
            }
        }
        Command::Sync => {
            let app = shared::App::from_env().await?;
            let summary = app.sync().run().await?;
            println!("{}", serde_json::to_string(&summary)?);
            match summary.total_errors() {
                0 => Ok(()),
                n => anyhow::bail!(
                    "the sync finished with {n} errors (see the log); against a running local \
                     server use `POST /sys/xendit-sync`, which has the simulator"
                ),
            }
        }
    }
}

async fn api_key(cmd: ApiKeyCommand) -> anyhow::Result<()> {
    let app = shared::App::from_env().await?;
    match cmd {
        ApiKeyCommand::Create {
            holder,
            description,
            replace,
        } => {
            let key = app
                .api_keys()
                .create(&holder, &description, replace)
                .await?;
            println!("{holder}:{key}");
            eprintln!("Store this key now: it is not shown again.");
        }
        ApiKeyCommand::List => {
            for k in app.api_keys().list().await? {
                println!("{}", serde_json::to_string(&k)?);
            }
        }
        ApiKeyCommand::Revoke { holder } => {
            if app.api_keys().revoke(&holder).await? {
                println!("revoked {holder}");
            } else {
                anyhow::bail!("no API key for holder {holder}");
            }
        }
    }
    Ok(())
}

async fn tables_create() -> anyhow::Result<()> {
    let config = shared::config::Config::from_env()?;
    if config.backend != shared::config::Backend::Aws {
        anyhow::bail!(
            "local mode keeps its data in the embedded store and has no tables to create; set \
             USERSTATE_BACKEND=aws (and AWS_ENDPOINT_URL for an emulator)"
        );
    }
    let client = serve::dynamo_client().await;
    for (def, name) in [
        (&shared::store::schema::MAIN, &config.main_table),
        (&shared::store::schema::LOGS, &config.logs_table),
    ] {
        shared::store::dynamo::create_table(&client, def, name).await?;
        println!("table {name}: ready");
    }
    Ok(())
}
