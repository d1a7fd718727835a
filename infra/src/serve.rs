//! `userstate serve`: all route groups in one axum server, with the local stand-ins.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use shared::config::{Backend, Config};

/// Flags of `serve` (each also readable from the environment).
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "API_PORT")]
    port: Option<u16>,
    /// Address to bind.
    #[arg(long, env = "USERSTATE_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Directory of the durable local store.
    #[arg(long, env = "USERSTATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Keep everything in memory (nothing survives a restart).
    #[arg(long)]
    memory: bool,
    /// Register an API key at start, `holder:key` (repeatable; local mode only).
    #[arg(long = "api-key", value_name = "HOLDER:KEY")]
    api_keys: Vec<String>,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::from_env()?;
    if let Some(port) = args.port {
        config.api_port = port;
    }
    if args.memory {
        config.data_dir = None;
    } else if let Some(dir) = args.data_dir {
        config.data_dir = Some(dir);
    }
    if config.backend == Backend::Aws {
        let missing = shared::store::dynamo::missing_tables(
            &dynamo_client().await,
            &[config.main_table.as_str(), config.logs_table.as_str()],
        )
        .await?;
        if !missing.is_empty() {
            anyhow::bail!(
                "DynamoDB tables missing: {} — create them with `userstate tables create` (or \
                 deploy template.yaml), or point MAIN_TABLE / LOGS_TABLE at existing ones",
                missing.join(", ")
            );
        }
    }
    if config.backend == Backend::Aws && !args.api_keys.is_empty() {
        anyhow::bail!(
            "--api-key is for local mode only; use `userstate api-key create` against AWS"
        );
    }
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), config.api_port))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {}:{}: {e}; if another process uses that port, pick another \
                 with --port <n> (or API_PORT; 0 picks a free one)",
                args.host,
                config.api_port
            )
        })?;
    let addr = listener.local_addr()?;
    if std::env::var_os("PUBLIC_BASE_URL").is_none() {
        config.public_base_url = format!("http://{}:{}", display_host(&args.host), addr.port());
        if std::env::var_os("XENDIT_BASE_URL").is_none() && config.backend == Backend::Local {
            config.xendit_base_url = format!("{}/_dev/xendit", config.public_base_url);
        }
    }
    let app = shared::App::from_config(config).await?;
    for spec in &args.api_keys {
        let (holder, key) = spec
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("--api-key takes holder:key"))?;
        app.api_keys()
            .register(holder, key, "registered by serve --api-key", true)
            .await?;
    }
    let routes = if app.config.backend == Backend::Local {
        // Banks and payment types, so `/bank/list` and `/payment/list` answer out of the box.
        app.catalog().seed().await?;
        local_routes(&app)
    } else {
        shared::http::routes()
    };
    let router = shared::http::finish(routes, &app);
    let store = match &app.config.data_dir {
        Some(d) => d.display().to_string(),
        None => "memory".into(),
    };
    tracing::info!(%addr, store, "userstate listening");
    // Black-box tests and scripts read this line to find the port.
    println!("listening on http://{addr}");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await?;
    Ok(())
}

/// What the local backend serves: every route group, the dev group, and the Xendit simulator
/// (answering with the app's own key and callback token, calling back into this server, on the
/// app's clock), with `/openapi.json` and `/docs` describing the simulator too.
pub fn local_routes(app: &shared::App) -> axum::Router<shared::App> {
    let routes = shared::http::local_routes(xendit_sim::openapi());
    xendit_sim::mount(routes, sim_settings(&app.config, app.clock.clone()))
}

/// The simulator's settings for an app configured by `config`.
pub fn sim_settings(config: &Config, clock: shared::clock::ClockRef) -> xendit_sim::SimSettings {
    let secret = |s: &Option<shared::config::Secret>| {
        s.as_ref().map_or(String::new(), |s| s.expose().to_owned())
    };
    let mut settings = xendit_sim::SimSettings::new(
        secret(&config.xendit_secret_key),
        secret(&config.xendit_callback_token),
        config.public_base_url.clone(),
    );
    settings.client_timeout = std::time::Duration::from_millis(config.xendit_timeout_ms);
    settings.now = std::sync::Arc::new(move || clock.now());
    // Next to the durable store, so a restart keeps the invoices the store refers to payable.
    settings.state_file = config.data_dir.as_ref().map(|d| d.join("xendit-sim.json"));
    settings
}

fn display_host(host: &str) -> &str {
    if host == "0.0.0.0" { "127.0.0.1" } else { host }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// A DynamoDB client from the environment (region, credentials, `AWS_ENDPOINT_URL`).
pub async fn dynamo_client() -> aws_sdk_dynamodb::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&sdk)
}
