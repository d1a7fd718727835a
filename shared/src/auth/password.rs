//! Password hashing: argon2id (OWASP parameters m=19456 KiB, t=2, p=1) in PHC format. bcrypt
//! hashes imported from the original system (`$2a$`/`$2b$`/`$2y$`) still verify; [`needs_rehash`]
//! tells login to replace them (and argon2 hashes with outdated parameters) on the next success.
//! Hashing is CPU-bound, so the async wrappers run it on the blocking pool.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{ApiError, FieldError};

/// Memory cost in KiB.
pub const M_COST: u32 = 19_456;
/// Iterations.
pub const T_COST: u32 = 2;
/// Parallelism.
pub const P_COST: u32 = 1;
/// Shortest accepted password, in characters.
pub const MIN_LEN: usize = 8;
/// Longest accepted password, in characters (bounds hashing work).
pub const MAX_LEN: usize = 128;

fn argon2id() -> Result<Argon2<'static>, argon2::Error> {
    Ok(Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(M_COST, T_COST, P_COST, None)?,
    ))
}

/// Checks the length rule (8–128 characters); `field` names the offending input.
pub fn validate(field: &str, password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if (MIN_LEN..=MAX_LEN).contains(&n) {
        Ok(())
    } else {
        Err(ApiError::validation(vec![FieldError::new(
            field,
            format!("must be {MIN_LEN}-{MAX_LEN} characters"),
        )]))
    }
}

/// Hashes a password to an argon2id PHC string.
pub fn hash(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    let hasher = argon2id().map_err(|_| ApiError::internal())?;
    hasher
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            ApiError::internal()
        })
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
}

/// True when `password` matches the stored argon2 PHC string or legacy bcrypt hash. A stored
/// value in any other shape never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    if is_bcrypt(stored) {
        return bcrypt::verify(password, stored).unwrap_or(false);
    }
    match PasswordHash::new(stored) {
        // Verification takes algorithm and parameters from the PHC string itself.
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// True when the stored hash is not argon2id with the current parameters.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return true;
    }
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    !(params.m_cost() == M_COST && params.t_cost() == T_COST && params.p_cost() == P_COST)
}

/// [`hash`] on the blocking pool.
pub async fn hash_async(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|_| ApiError::internal())?
}

/// [`verify`] on the blocking pool.
pub async fn verify_async(password: String, stored: String) -> bool {
    tokio::task::spawn_blocking(move || verify(&password, &stored))
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_hash_uses_owasp_parameters_and_verifies() {
        let h = hash("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong horse battery", &h));
        assert!(!needs_rehash(&h));
    }

    #[test]
    fn legacy_bcrypt_verifies_and_needs_rehash() {
        let legacy = bcrypt::hash("legacyPass123", 4).expect("bcrypt");
        assert!(legacy.starts_with("$2"));
        assert!(verify("legacyPass123", &legacy));
        assert!(!verify("legacyPass124", &legacy));
        assert!(needs_rehash(&legacy));
        // The $2y$ spelling (PHP) is accepted too.
        let y = legacy.replacen("$2b$", "$2y$", 1);
        assert!(verify("legacyPass123", &y));
    }

    #[test]
    fn weaker_argon2_parameters_need_rehash() {
        let salt = SaltString::generate(&mut OsRng);
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 1, 1, None).expect("params"),
        )
        .hash_password(b"somePassword1", &salt)
        .expect("hash")
        .to_string();
        assert!(verify("somePassword1", &weak));
        assert!(needs_rehash(&weak));
    }

    #[test]
    fn garbage_hashes_never_match() {
        assert!(!verify("anything", ""));
        assert!(!verify("anything", "plaintext"));
        assert!(!verify("anything", "$2b$garbage"));
    }

    #[test]
    fn length_is_8_to_128_characters() {
        assert!(validate("password", "1234567").is_err());
        assert!(validate("password", "12345678").is_ok());
        assert!(validate("password", &"x".repeat(128)).is_ok());
        assert!(validate("password", &"x".repeat(129)).is_err());
        // Characters, not bytes.
        assert!(validate("password", &"é".repeat(100)).is_ok());
    }
}
