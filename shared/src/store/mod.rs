//! The `Table` port: a DynamoDB-shaped table (get, put, update, delete with typed conditions; queries
//! by partition key with sort-key conditions, on the table or a GSI, with pagination; all-or-nothing
//! transactions of up to 100 items). Two adapters: [`local`] (embedded, redb) and [`dynamo`].
//!
//! Semantics both adapters share (and the conformance suite checks):
//! - a failed condition changes nothing (`StoreError::ConditionFailed`);
//! - a transaction with any failed condition applies nothing (`StoreError::TransactionCanceled`);
//! - an item whose `ttl` (epoch seconds) is in the past is never returned by `get` or `query`,
//!   though — as in DynamoDB, whose TTL deletion lags — conditions still see it until it is replaced;
//! - `update` creates a missing item unless a condition forbids it, and returns the item as written.

pub mod counting;
pub mod dynamo;
pub mod expr;
pub mod faulty;
pub mod keys;
pub mod local;
pub mod policy;
pub mod schema;
pub mod steps;
pub mod unconfigured;
pub mod value;
pub mod walk;

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;

pub use expr::{CmpOp, Cond, Update};
pub use schema::{IndexDef, TableDef};
pub use steps::{Names, Steps};
pub use value::{AttrValue, Item, from_item, get_n, get_s, to_item};

/// Largest transaction DynamoDB accepts.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// Storage failures, in terms the domain can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A single-item write's condition was false; nothing changed.
    #[error("conditional check failed")]
    ConditionFailed,
    /// A transaction was cancelled because the conditions of these operations (by index) failed;
    /// nothing was applied.
    #[error("transaction cancelled: conditions failed at {failed:?}")]
    TransactionCanceled { failed: Vec<usize> },
    /// A concurrent transaction touched the same items; safe to retry.
    #[error("transaction conflict")]
    Conflict,
    /// The store is throttling; safe to retry later.
    #[error("throttled")]
    Throttled,
    /// The store could not be reached or failed internally.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The request itself was invalid (a bug in the caller).
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// A pagination cursor was malformed or tampered with (the client's fault).
    #[error("invalid cursor")]
    BadCursor,
    /// A stored item did not have the expected shape.
    #[error("corrupt item: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True when the caller may retry the same request.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Conflict | StoreError::Throttled | StoreError::Unavailable(_)
        )
    }
    /// True when a transaction failed because the condition of operation `index` was false.
    pub fn failed_at(&self, index: usize) -> bool {
        matches!(self, StoreError::TransactionCanceled { failed } if failed.contains(&index))
    }
}

/// A primary key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// The key of an item (its `pk` and `sk` string attributes).
    pub fn of(item: &Item) -> Result<Key, StoreError> {
        match (get_s(item, "pk"), get_s(item, "sk")) {
            (Some(pk), Some(sk)) => Ok(Key::new(pk, sk)),
            _ => Err(StoreError::Invalid("item lacks string pk/sk".into())),
        }
    }

    /// Starts an item holding just this key.
    pub fn item(&self) -> Item {
        let mut i = Item::new();
        i.insert("pk".into(), AttrValue::S(self.pk.clone()));
        i.insert("sk".into(), AttrValue::S(self.sk.clone()));
        i
    }
}

/// A condition on the sort key of a query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SkCond {
    #[default]
    Any,
    Eq(String),
    BeginsWith(String),
    /// Inclusive on both ends, as DynamoDB's BETWEEN.
    Between(String, String),
    Lt(String),
    Le(String),
    Gt(String),
    Ge(String),
}

impl SkCond {
    /// Whether a sort-key value satisfies the condition.
    pub fn matches(&self, sk: &str) -> bool {
        match self {
            SkCond::Any => true,
            SkCond::Eq(v) => sk == v,
            SkCond::BeginsWith(p) => sk.starts_with(p.as_str()),
            SkCond::Between(a, b) => sk >= a.as_str() && sk <= b.as_str(),
            SkCond::Lt(v) => sk < v.as_str(),
            SkCond::Le(v) => sk <= v.as_str(),
            SkCond::Gt(v) => sk > v.as_str(),
            SkCond::Ge(v) => sk >= v.as_str(),
        }
    }
}

/// A query by partition key, on the table (`index: None`) or a GSI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub index: Option<&'static str>,
    pub pk: String,
    pub sk: SkCond,
    /// Page size; `None` reads the whole partition.
    pub limit: Option<usize>,
    /// Ascending sort-key order when true.
    pub forward: bool,
    /// Cursor from a previous page.
    pub cursor: Option<String>,
}

impl Query {
    /// Everything under a partition key, ascending.
    pub fn pk(pk: impl Into<String>) -> Self {
        Query {
            index: None,
            pk: pk.into(),
            sk: SkCond::Any,
            limit: None,
            forward: true,
            cursor: None,
        }
    }
    /// Everything under a partition key of an index, ascending.
    pub fn index(index: &'static str, pk: impl Into<String>) -> Self {
        Query {
            index: Some(index),
            ..Query::pk(pk)
        }
    }
    pub fn sk(mut self, sk: SkCond) -> Self {
        self.sk = sk;
        self
    }
    pub fn prefix(self, p: impl Into<String>) -> Self {
        self.sk(SkCond::BeginsWith(p.into()))
    }
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
    pub fn descending(mut self) -> Self {
        self.forward = false;
        self
    }
    pub fn after(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }
}

/// A bounded pass over the whole table for items of one kind (their sort key equals `sk`: every
/// `WALLET`, every `INFO`): each page evaluates at most `limit` items in key order (DynamoDB's
/// hash order on AWS) and answers those that match, so a page may be empty and still have a
/// cursor; a pass ends when the cursor is `None`. For jobs that must visit every user
/// (reconciliation), never for request paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    pub sk: String,
    pub limit: usize,
    pub cursor: Option<String>,
}

/// One page of results; `cursor` is `Some` when more items may follow.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    pub cursor: Option<String>,
}

/// One operation in a transaction. At most one operation per key.
#[derive(Clone, Debug, PartialEq)]
pub enum TxOp {
    Put {
        item: Item,
        cond: Option<Cond>,
    },
    Update {
        key: Key,
        update: Update,
        cond: Option<Cond>,
    },
    Delete {
        key: Key,
        cond: Option<Cond>,
    },
    Check {
        key: Key,
        cond: Cond,
    },
}

impl TxOp {
    /// The key the operation touches.
    pub fn key(&self) -> Result<Key, StoreError> {
        match self {
            TxOp::Put { item, .. } => Key::of(item),
            TxOp::Update { key, .. } | TxOp::Delete { key, .. } | TxOp::Check { key, .. } => {
                Ok(key.clone())
            }
        }
    }
}

/// Checks the rules DynamoDB enforces on a transaction before anything runs.
pub fn validate_transaction(ops: &[TxOp]) -> Result<(), StoreError> {
    if ops.is_empty() || ops.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::Invalid(format!(
            "a transaction holds 1..={MAX_TRANSACTION_ITEMS} operations, got {}",
            ops.len()
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for op in ops {
        if !seen.insert(op.key()?) {
            return Err(StoreError::Invalid(
                "two operations on the same item in one transaction".into(),
            ));
        }
    }
    Ok(())
}

/// Most keys one [`Table::get_many`] reads (DynamoDB's `BatchGetItem` limit).
pub const MAX_BATCH_GET_KEYS: usize = 100;

/// Checks a batch read before it is sent: 1..=100 keys, none twice (DynamoDB refuses both).
pub fn validate_batch_get(keys: &[Key]) -> Result<(), StoreError> {
    if keys.is_empty() || keys.len() > MAX_BATCH_GET_KEYS {
        return Err(StoreError::Invalid(format!(
            "a batch read holds 1..={MAX_BATCH_GET_KEYS} keys, got {}",
            keys.len()
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    if !keys.iter().all(|k| seen.insert(k)) {
        return Err(StoreError::Invalid(
            "the same key twice in one batch read".into(),
        ));
    }
    Ok(())
}

/// The port. Implementations are cheap to clone behind an `Arc`.
#[async_trait]
pub trait Table: Send + Sync + 'static {
    /// The table's definition.
    fn def(&self) -> &'static TableDef;
    /// Reads one item (expired items read as absent).
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;
    /// Reads up to [`MAX_BATCH_GET_KEYS`] items in one request (DynamoDB `BatchGetItem`, strongly
    /// consistent), answered in the order of `keys`; absent or expired items read as `None`.
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError>;
    /// Writes a whole item, replacing any existing one, if `cond` holds.
    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError>;
    /// Applies update actions if `cond` holds; returns the item as written.
    async fn update(
        &self,
        key: &Key,
        update: Update,
        cond: Option<Cond>,
    ) -> Result<Item, StoreError>;
    /// Deletes an item if `cond` holds; returns the old item if there was one.
    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError>;
    /// Reads one page of a partition.
    async fn query(&self, query: Query) -> Result<Page, StoreError>;
    /// Reads one page of a [`Scan`] (consistent, expired items skipped).
    async fn scan(&self, scan: Scan) -> Result<Page, StoreError>;
    /// Applies all operations or none.
    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError>;
}

/// A shared handle to a table.
pub type TableRef = Arc<dyn Table>;

/// The answer of a batch read of `N` keys as an array, in key order.
pub fn batch_array<const N: usize>(
    items: Vec<Option<Item>>,
) -> Result<[Option<Item>; N], StoreError> {
    <[Option<Item>; N]>::try_from(items)
        .map_err(|_| StoreError::Invalid("batch read answered out of shape".into()))
}

/// Reads `N` items in one request ([`Table::get_many`]), in key order.
pub async fn get_array<const N: usize>(
    table: &dyn Table,
    keys: &[Key; N],
) -> Result<[Option<Item>; N], StoreError> {
    batch_array(table.get_many(keys).await?)
}

/// Reads one item as a record (`None` when absent or expired).
pub async fn get_record<T: serde::de::DeserializeOwned>(
    table: &dyn Table,
    key: &Key,
) -> Result<Option<T>, StoreError> {
    table
        .get(key)
        .await?
        .map(|item| from_item(&item))
        .transpose()
}

/// Reads every page of a query (for bounded partitions only).
pub async fn query_all(table: &dyn Table, mut query: Query) -> Result<Vec<Item>, StoreError> {
    let mut out = Vec::new();
    loop {
        let page = table.query(query.clone()).await?;
        out.extend(page.items);
        match page.cursor {
            Some(c) => query.cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// True when the item carries a TTL that has passed at `now` (epoch seconds).
pub fn is_expired(item: &Item, ttl_attr: &str, now: i64) -> bool {
    matches!(item.get(ttl_attr), Some(AttrValue::N(t)) if *t <= now)
}

/// Encodes a last-evaluated key (string attributes only) as an opaque URL-safe cursor.
pub fn encode_cursor(key: &std::collections::BTreeMap<String, String>) -> String {
    let json = serde_json::to_vec(key).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a cursor produced by [`encode_cursor`]; a tampered cursor is an invalid request.
pub fn decode_cursor(
    cursor: &str,
) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::BadCursor)?;
    serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)
}
