//! API keys for service-to-service calls (`Authorization: Basic base64(holder:key)`).
//! A key is 32 random bytes shown once; only its SHA-256 is stored. Hashes imported from the
//! original system (bcrypt) still verify and are replaced by SHA-256 on first successful use.

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::ClockRef;
use crate::store::{
    Cond, Query, StoreError, TableRef, Update, from_item, keys, query_all, schema::GSI1, to_item,
};

const SHA_PREFIX: &str = "sha256:";

/// `last_used_at` is written at most once per this many seconds per key: an operator sees when
/// a key was last used to the hour, and a busy key costs one write an hour, not one per call.
const LAST_USED_EVERY_SECS: i64 = 3600;

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

/// Why a key could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    /// The holder name breaks [`valid_holder`].
    #[error("invalid holder name")]
    InvalidHolder,
    /// A key for the holder exists and was not to be replaced.
    #[error("API key holder already exists")]
    HolderExists,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Holders are short identifiers (no `:` — it separates holder from key in Basic auth).
pub fn valid_holder(holder: &str) -> bool {
    (1..=64).contains(&holder.len())
        && holder
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The API keys on the main table. Cheap to clone.
#[derive(Clone)]
pub struct ApiKeys {
    table: TableRef,
    clock: ClockRef,
}

impl ApiKeys {
    /// The keys stored in `table`.
    pub fn new(table: TableRef, clock: ClockRef) -> ApiKeys {
        ApiKeys { table, clock }
    }

    /// Creates (or, with `replace`, rotates) a key; returns the plaintext key, which is never
    /// stored.
    pub async fn create(
        &self,
        holder: &str,
        description: &str,
        replace: bool,
    ) -> Result<String, ApiKeyError> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        self.register(holder, &key, description, replace).await?;
        Ok(key)
    }

    /// Stores a given key (local `serve --api-key holder:key`, imports).
    pub async fn register(
        &self,
        holder: &str,
        key: &str,
        description: &str,
        replace: bool,
    ) -> Result<(), ApiKeyError> {
        if !valid_holder(holder) {
            return Err(ApiKeyError::InvalidHolder);
        }
        let hash = format!("{SHA_PREFIX}{}", sha256_hex(key));
        self.store_hash(holder, &hash, description, replace).await
    }

    /// Stores a hash as is (bcrypt hashes from the original system's `api_key` table).
    pub async fn store_hash(
        &self,
        holder: &str,
        hash: &str,
        description: &str,
        replace: bool,
    ) -> Result<(), ApiKeyError> {
        let k = keys::api_key(holder);
        let rec = ApiKeyRecord {
            pk: k.pk,
            sk: k.sk,
            holder: holder.to_owned(),
            hash: hash.to_owned(),
            description: description.to_owned(),
            created_at: self.clock.epoch(),
            last_used_at: None,
            gsi1pk: keys::API_KEYS_GSI_PK.into(),
            gsi1sk: holder.to_owned(),
        };
        let cond = (!replace).then(Cond::item_absent);
        match self.table.put(to_item(&rec)?, cond).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed) => Err(ApiKeyError::HolderExists),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks `holder:key`; upgrades a legacy bcrypt hash after a successful check.
    pub async fn verify(&self, holder: &str, key: &str) -> Result<bool, StoreError> {
        if !valid_holder(holder) || key.is_empty() || key.len() > 256 {
            return Ok(false);
        }
        let Some(item) = self.table.get(&keys::api_key(holder)).await? else {
            // Spend comparable time so unknown holders are not distinguishable by timing.
            let _ = sha256_hex(key)
                .as_bytes()
                .ct_eq(sha256_hex(holder).as_bytes());
            return Ok(false);
        };
        let rec: ApiKeyRecord = from_item(&item)?;
        let ok = match rec.hash.strip_prefix(SHA_PREFIX) {
            Some(hex) => bool::from(sha256_hex(key).as_bytes().ct_eq(hex.as_bytes())),
            None => {
                let ok = bcrypt::verify(key, &rec.hash).unwrap_or(false);
                if ok {
                    self.upgrade_legacy(holder, key, rec.hash).await;
                }
                ok
            }
        };
        if ok {
            self.touch(holder, rec.last_used_at).await;
        }
        Ok(ok)
    }

    /// Records the use of a verified key, at most once per [`LAST_USED_EVERY_SECS`] (best
    /// effort: a failed write never fails the request). Conditional, so concurrent requests
    /// write once and a key revoked meanwhile is not brought back as a partial item.
    async fn touch(&self, holder: &str, last: Option<i64>) {
        let now = self.clock.epoch();
        if last.is_some_and(|t| now - t < LAST_USED_EVERY_SECS) {
            return;
        }
        let stale = Cond::Not(Box::new(Cond::ge(
            "last_used_at",
            now - LAST_USED_EVERY_SECS + 1,
        )));
        let res = self
            .table
            .update(
                &keys::api_key(holder),
                Update::new().set("last_used_at", now),
                Some(Cond::And(vec![Cond::item_exists(), stale])),
            )
            .await;
        if let Err(e) = res
            && e != StoreError::ConditionFailed
        {
            tracing::warn!(error = %e, "could not record an api key's last use");
        }
    }

    /// Replaces a verified legacy hash with SHA-256 (best effort: the key stays valid either
    /// way).
    async fn upgrade_legacy(&self, holder: &str, key: &str, legacy: String) {
        let upgraded = format!("{SHA_PREFIX}{}", sha256_hex(key));
        let res = self
            .table
            .update(
                &keys::api_key(holder),
                Update::new().set("hash", upgraded),
                Some(Cond::eq("hash", legacy)),
            )
            .await;
        if let Err(e) = res
            && e != StoreError::ConditionFailed
        {
            tracing::warn!(error = %e, "could not upgrade legacy api key hash");
        }
    }

    /// Lists every key's metadata.
    pub async fn list(&self) -> Result<Vec<ApiKeyInfo>, StoreError> {
        let q = Query::index(GSI1, keys::API_KEYS_GSI_PK);
        let items = query_all(self.table.as_ref(), q).await?;
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
    pub async fn revoke(&self, holder: &str) -> Result<bool, StoreError> {
        let gone = self.table.delete(&keys::api_key(holder), None).await?;
        Ok(gone.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::local::LocalStore;
    use std::sync::Arc;

    fn keys() -> (ApiKeys, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        let store = LocalStore::memory(clock.clone()).expect("store");
        let table: TableRef = Arc::new(store.table(&crate::store::schema::MAIN, "main"));
        (ApiKeys::new(table, clock.clone()), clock)
    }

    async fn last_used(k: &ApiKeys) -> Option<i64> {
        k.list().await.expect("list")[0].last_used_at
    }

    #[tokio::test]
    async fn last_used_at_is_written_on_use_at_most_once_an_hour() {
        let (k, clock) = keys();
        k.register("ops", "ops-key-0123456789", "", false)
            .await
            .expect("register");
        assert_eq!(last_used(&k).await, None);
        assert!(!k.verify("ops", "wrong").await.expect("verify"));
        assert_eq!(last_used(&k).await, None, "a failed check is not a use");
        assert!(k.verify("ops", "ops-key-0123456789").await.expect("verify"));
        let first = last_used(&k).await.expect("recorded");
        clock.advance(chrono::Duration::minutes(30));
        assert!(k.verify("ops", "ops-key-0123456789").await.expect("verify"));
        assert_eq!(last_used(&k).await, Some(first), "throttled");
        clock.advance(chrono::Duration::minutes(31));
        assert!(k.verify("ops", "ops-key-0123456789").await.expect("verify"));
        assert_eq!(last_used(&k).await, Some(first + 61 * 60));
    }

    #[tokio::test]
    async fn a_use_racing_a_revocation_does_not_bring_the_key_back() {
        let (k, _) = keys();
        k.register("ops", "ops-key-0123456789", "", false)
            .await
            .expect("register");
        assert!(k.revoke("ops").await.expect("revoke"));
        k.touch("ops", None).await;
        assert!(k.list().await.expect("list").is_empty());
    }
}
