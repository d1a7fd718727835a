//! Structured JSON logs (tracing) with the request id on every line.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

/// The Lambda functions' log filter: `RUST_LOG` as comma-separated `level` and `target=level`
/// directives (e.g. `warn,shared=debug`), else Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `info`.
/// A plain target filter, not `EnvFilter`: the span and field matchers of `EnvFilter` bring a regex
/// engine into every function binary, and a function never needs them.
pub fn lambda_filter(rust_log: Option<&str>, lambda_level: Option<&str>) -> Targets {
    let parsed = rust_log
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| v.parse::<Targets>().ok());
    parsed.unwrap_or_else(|| {
        let level = lambda_level
            .and_then(|l| l.trim().to_ascii_lowercase().parse::<LevelFilter>().ok())
            .unwrap_or(LevelFilter::INFO);
        Targets::new().with_default(level)
    })
}

/// Installs the JSON subscriber once (see [`lambda_filter`]). Safe to call twice.
pub fn init() {
    let filter = lambda_filter(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
    );
    // The span list carries the Lambda runtime's invocation span (`requestId`, `xrayTraceId`)
    // into every line logged while handling an invocation, so one request's lines can be found
    // by its X-Ray trace id as well as its request id.
    let format = fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_target(false)
        .without_time();
    let _ = tracing_subscriber::registry()
        .with(format)
        .with(filter)
        .try_init();
}

/// Installs the local CLI's subscriber: JSON lines (as the functions log) when stdout is not a
/// terminal or `USERSTATE_LOG_FORMAT=json`, human-readable text on a terminal or with
/// `USERSTATE_LOG_FORMAT=text`.
pub fn init_cli() {
    use std::io::IsTerminal;
    let json = match std::env::var("USERSTATE_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => !std::io::stdout().is_terminal(),
    };
    if json {
        return init();
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = fmt().with_env_filter(filter).with_target(false).try_init();
}

#[cfg(test)]
mod tests {
    use super::lambda_filter;
    use tracing::Level;

    #[test]
    fn rust_log_directives_filter_by_target() {
        let f = lambda_filter(Some("warn,shared::wallet=debug"), Some("ERROR"));
        assert!(f.would_enable("shared::wallet", &Level::DEBUG));
        assert!(!f.would_enable("shared::auth", &Level::INFO));
        assert!(f.would_enable("shared::auth", &Level::WARN));
    }

    #[test]
    fn lambda_log_level_applies_without_rust_log_and_info_is_the_default() {
        let f = lambda_filter(None, Some("ERROR"));
        assert!(!f.would_enable("shared", &Level::WARN));
        assert!(f.would_enable("shared", &Level::ERROR));
        let f = lambda_filter(Some(""), None);
        assert!(f.would_enable("shared", &Level::INFO));
        assert!(!f.would_enable("shared", &Level::DEBUG));
        // An unreadable RUST_LOG falls back rather than silencing the function.
        let f = lambda_filter(Some("shared=loud"), Some("debug"));
        assert!(f.would_enable("shared", &Level::DEBUG));
    }
}
