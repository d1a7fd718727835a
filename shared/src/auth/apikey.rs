//! API keys for service-to-service calls (`Authorization: Basic base64(holder:key)`).
//! A key is 32 random bytes shown once; only its SHA-256 is stored. Hashes imported from the
//! original system (bcrypt) still verify and are replaced by SHA-256 on first successful use.

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::error::ApiError;
use crate::store::{
    Cond, Query, StoreError, Update, from_item, keys, query_all, schema::GSI1, to_item,
};

const SHA_PREFIX: &str = "sha256:";

/// A stored API key (hash only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub pk: String,
    pub sk: String,
    pub holder: String,
    /// `sha256:<hex>` or a legacy bcrypt hash.
    pub hash: String,
    #[serde(default)]
    pub description: String,
    pub created_at: i64,
    #[serde(default)]
    pub last_used_at: Option<i64>,
    pub gsi1pk: String,
    pub gsi1sk: String,
}

/// What `list` shows: never the hash.
#[derive(Clone, Debug, Serialize)]
pub struct ApiKeyInfo {
    pub holder: String,
    pub description: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub legacy_hash: bool,
}

fn sha256_hex(key: &str) -> String {
    let d = Sha256::digest(key.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Holders are short identifiers (no `:` — it separates holder from key in Basic auth).
pub fn valid_holder(holder: &str) -> bool {
    (1..=64).contains(&holder.len())
        && holder
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Creates (or, with `replace`, rotates) a key; returns the plaintext key, which is never stored.
pub async fn create(
    app: &App,
    holder: &str,
    description: &str,
    replace: bool,
) -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    register(app, holder, &key, description, replace).await?;
    Ok(key)
}

/// Stores a given key (local `serve --api-key holder:key`, imports).
pub async fn register(
    app: &App,
    holder: &str,
    key: &str,
    description: &str,
    replace: bool,
) -> Result<(), ApiError> {
    if !valid_holder(holder) {
        return Err(ApiError::bad_request(
            "holder must be 1-64 characters of A-Z a-z 0-9 - _ .",
        ));
    }
    store_hash(
        app,
        holder,
        &format!("{SHA_PREFIX}{}", sha256_hex(key)),
        description,
        replace,
    )
    .await
}

/// Stores a hash as is (bcrypt hashes from the original system's `api_key` table).
pub async fn store_hash(
    app: &App,
    holder: &str,
    hash: &str,
    description: &str,
    replace: bool,
) -> Result<(), ApiError> {
    let k = keys::api_key(holder);
    let rec = ApiKeyRecord {
        pk: k.pk,
        sk: k.sk,
        holder: holder.to_owned(),
        hash: hash.to_owned(),
        description: description.to_owned(),
        created_at: app.clock.epoch(),
        last_used_at: None,
        gsi1pk: keys::API_KEYS_GSI_PK.into(),
        gsi1sk: holder.to_owned(),
    };
    let cond = (!replace).then(Cond::item_absent);
    match app.main.put(to_item(&rec)?, cond).await {
        Ok(()) => Ok(()),
        Err(StoreError::ConditionFailed) => {
            Err(ApiError::conflict("API key holder already exists"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Checks `holder:key`; upgrades a legacy bcrypt hash after a successful check.
pub async fn verify(app: &App, holder: &str, key: &str) -> Result<bool, ApiError> {
    if !valid_holder(holder) || key.is_empty() || key.len() > 256 {
        return Ok(false);
    }
    let Some(item) = app.main.get(&keys::api_key(holder)).await? else {
        // Spend comparable time so unknown holders are not distinguishable by timing.
        let _ = sha256_hex(key)
            .as_bytes()
            .ct_eq(sha256_hex(holder).as_bytes());
        return Ok(false);
    };
    let rec: ApiKeyRecord = from_item(&item)?;
    if let Some(hex) = rec.hash.strip_prefix(SHA_PREFIX) {
        return Ok(bool::from(sha256_hex(key).as_bytes().ct_eq(hex.as_bytes())));
    }
    let ok = bcrypt::verify(key, &rec.hash).unwrap_or(false);
    if ok {
        let upgraded = format!("{SHA_PREFIX}{}", sha256_hex(key));
        let res = app
            .main
            .update(
                &keys::api_key(holder),
                Update::new().set("hash", upgraded),
                Some(Cond::eq("hash", rec.hash)),
            )
            .await;
        if let Err(e) = res
            && e != StoreError::ConditionFailed
        {
            tracing::warn!(error = %e, "could not upgrade legacy api key hash");
        }
    }
    Ok(ok)
}

/// Lists every key's metadata.
pub async fn list(app: &App) -> Result<Vec<ApiKeyInfo>, ApiError> {
    let items = query_all(app.main.as_ref(), Query::index(GSI1, keys::API_KEYS_GSI_PK)).await?;
    items
        .iter()
        .map(|i| {
            let r: ApiKeyRecord = from_item(i)?;
            Ok(ApiKeyInfo {
                legacy_hash: !r.hash.starts_with(SHA_PREFIX),
                holder: r.holder,
                description: r.description,
                created_at: r.created_at,
                last_used_at: r.last_used_at,
            })
        })
        .collect()
}

/// Revokes a key; false when there was none.
pub async fn revoke(app: &App, holder: &str) -> Result<bool, ApiError> {
    Ok(app
        .main
        .delete(&keys::api_key(holder), None)
        .await?
        .is_some())
}
