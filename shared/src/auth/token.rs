//! HS256 JWTs with the server secret. Claims keep the original `user` and `agent` and add
//! `sid` (the stored session), `iat` and `exp`. Only HS256 is accepted (no `alg: none`, no RS/HS
//! confusion).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::Secret;

/// The claims of a session token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Username.
    pub user: String,
    pub agent: bool,
    /// Session id (the `SESSION#{sid}` item).
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
}

/// Signs claims.
pub fn sign(secret: &Secret, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )
}

/// Verifies signature, algorithm and expiry at `now` (epoch seconds); `None` when anything is off.
pub fn verify(secret: &Secret, token: &str, now: i64) -> Option<Claims> {
    let mut v = Validation::new(Algorithm::HS256);
    v.algorithms = vec![Algorithm::HS256];
    v.required_spec_claims = ["exp", "iat"].into_iter().map(String::from).collect();
    // Expiry is checked below against the injected clock, not the wall clock.
    v.validate_exp = false;
    v.leeway = 0;
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.expose().as_bytes()),
        &v,
    )
    .ok()?;
    (data.claims.exp > now && data.claims.iat <= now + 60).then_some(data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn secret() -> Secret {
        Secret::new("0123456789abcdef0123456789abcdef")
    }

    fn claims(now: i64) -> Claims {
        Claims {
            user: "john_doe".into(),
            agent: false,
            sid: "s1".into(),
            iat: now,
            exp: now + 60,
        }
    }

    #[test]
    fn round_trips() {
        let t = sign(&secret(), &claims(1000)).expect("sign");
        assert_eq!(verify(&secret(), &t, 1001), Some(claims(1000)));
    }

    #[test]
    fn expired_is_refused() {
        let t = sign(&secret(), &claims(1000)).expect("sign");
        assert_eq!(verify(&secret(), &t, 1060), None);
    }

    #[test]
    fn other_key_is_refused() {
        let t = sign(
            &Secret::new("another-secret-another-secret-another"),
            &claims(1000),
        )
        .expect("sign");
        assert_eq!(verify(&secret(), &t, 1001), None);
    }

    #[test]
    fn alg_none_is_refused() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let body = serde_json::to_string(&claims(1000)).expect("json");
        let t = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&body));
        assert_eq!(verify(&secret(), &t, 1001), None);
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(verify(&secret(), "not.a.jwt", 1001), None);
        assert_eq!(verify(&secret(), "", 1001), None);
    }
}
