//! Structured JSON logs (tracing) with the request id on every line.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the JSON subscriber once; `RUST_LOG` filters (default `info`). Safe to call twice.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Installs a human-readable subscriber for the local CLI (`USERSTATE_LOG_FORMAT=json` keeps JSON).
pub fn init_cli() {
    if std::env::var("USERSTATE_LOG_FORMAT").as_deref() == Ok("json") {
        return init();
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = fmt().with_env_filter(filter).with_target(false).try_init();
}
