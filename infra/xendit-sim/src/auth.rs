//! The door of the simulated Xendit API: Basic auth with the secret key, then the injected fault.

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::error::XErr;
use crate::state::{Fault, Simulator};

/// Checks Basic auth against the configured secret key and applies the injected fault.
pub(crate) async fn gate(sim: &Simulator, headers: &HeaderMap) -> Result<(), XErr> {
    check_key(&sim.settings.secret_key, headers)?;
    match sim.fault() {
        Fault::None => Ok(()),
        Fault::Error500 => Err(server_error("simulated failure")),
        Fault::Timeout => {
            tokio::time::sleep(sim.settings.client_timeout + std::time::Duration::from_secs(1))
                .await;
            Err(server_error("simulated timeout"))
        }
    }
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
