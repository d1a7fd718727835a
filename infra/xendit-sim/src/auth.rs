//! The door of the simulated Xendit API: Basic auth with the secret key, then the injected fault.

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::error::XErr;
use crate::state::{Fault, Route, Simulator};

/// Checks Basic auth against the configured secret key, the per-minute budget and the fault
/// planned for `route`. A [`Pass`] lets the call through; the handler ends with
/// [`Pass::answer`], which holds the answer back for a `timeout_after` fault.
pub(crate) async fn gate(sim: &Simulator, headers: &HeaderMap, route: Route) -> Result<Pass, XErr> {
    check_key(&sim.settings.secret_key, headers)?;
    if let Some(wait) = sim.over_rate() {
        return Err(rate_limited(wait));
    }
    match sim.take_fault(route) {
        Fault::None => Ok(Pass { late: false }),
        Fault::TimeoutAfter => Ok(Pass { late: true }),
        Fault::Error500 => Err(server_error("simulated failure")),
        Fault::RateLimit => Err(rate_limited(1)),
        Fault::Timeout => {
            past_client_timeout(sim).await;
            Err(server_error("simulated timeout"))
        }
    }
}

/// A call let through by [`gate`].
#[must_use]
pub(crate) struct Pass {
    late: bool,
}

impl Pass {
    /// `out`, or — under a `timeout_after` fault — nothing until the client has given up.
    pub(crate) async fn answer<T>(self, sim: &Simulator, out: T) -> Result<T, XErr> {
        if self.late {
            past_client_timeout(sim).await;
            return Err(server_error("simulated timeout after the change was made"));
        }
        Ok(out)
    }
}

async fn past_client_timeout(sim: &Simulator) {
    tokio::time::sleep(sim.settings.client_timeout + std::time::Duration::from_secs(1)).await;
}

/// 429 `RATE_LIMIT_EXCEEDED` with `Retry-After` (seconds), as Xendit answers past its budget.
fn rate_limited(retry_after: u64) -> XErr {
    XErr::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMIT_EXCEEDED",
        "Rate limit exceeded, retry later",
    )
    .retry_after(retry_after)
}

/// Xendit's Basic auth: the secret key as user, empty password (compared in constant time).
fn check_key(secret_key: &str, headers: &HeaderMap) -> Result<(), XErr> {
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{secret_key}:"));
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(XErr::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_API_KEY",
            "API key is invalid",
        ))
    }
}

fn server_error(message: &str) -> XErr {
    XErr::new(StatusCode::INTERNAL_SERVER_ERROR, "SERVER_ERROR", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:"));
        h.insert(
            header::AUTHORIZATION,
            format!("Basic {v}").parse().expect("header"),
        );
        h
    }

    #[test]
    fn only_the_secret_key_with_an_empty_password_opens_the_api() {
        assert!(check_key("xnd_key", &basic("xnd_key")).is_ok());
        assert_eq!(
            check_key("xnd_key", &basic("other"))
                .expect_err("wrong key")
                .code(),
            "INVALID_API_KEY"
        );
        assert!(check_key("xnd_key", &HeaderMap::new()).is_err());
    }
}
