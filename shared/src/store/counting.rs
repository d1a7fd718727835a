//! A [`Table`] wrapper that counts calls per operation: how many DynamoDB requests a route costs
//! (each port call is one DynamoDB API call: `GetItem`, `BatchGetItem`, `PutItem`, `UpdateItem`,
//! `DeleteItem`, `Query` page, `TransactWriteItems`). Used by the call-budget tests and the benchmark.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::expr::{Cond, Update};
use super::schema::TableDef;
use super::value::Item;
use super::{Key, Page, Query, Scan, StoreError, Table, TableRef, TxOp};

/// Calls made through a [`CountingTable`] (failed calls count too: they cost a request).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Calls {
    pub get: u64,
    /// `BatchGetItem` requests (however many keys each reads).
    pub batch_get: u64,
    pub put: u64,
    pub update: u64,
    pub delete: u64,
    pub query: u64,
    pub transact: u64,
    /// Items written by all transactions together.
    pub transact_items: u64,
}

impl Calls {
    /// Every call (one DynamoDB request each).
    pub fn total(&self) -> u64 {
        self.reads() + self.writes()
    }
    /// `get`, `batch_get` and `query` calls.
    pub fn reads(&self) -> u64 {
        self.get + self.batch_get + self.query
    }
    /// `put`, `update`, `delete` and `transact` calls.
    pub fn writes(&self) -> u64 {
        self.put + self.update + self.delete + self.transact
    }
    /// The calls made since `earlier`.
    pub fn since(&self, earlier: &Calls) -> Calls {
        Calls {
            get: self.get - earlier.get,
            batch_get: self.batch_get - earlier.batch_get,
            put: self.put - earlier.put,
            update: self.update - earlier.update,
            delete: self.delete - earlier.delete,
            query: self.query - earlier.query,
            transact: self.transact - earlier.transact,
            transact_items: self.transact_items - earlier.transact_items,
        }
    }
}

impl std::fmt::Display for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (n, name) in [
            (self.get, "get"),
            (self.batch_get, "batch get"),
            (self.query, "query"),
            (self.put, "put"),
            (self.update, "update"),
            (self.delete, "delete"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {name}"));
            }
        }
        if self.transact > 0 {
            parts.push(format!(
                "{} transact ({} items)",
                self.transact, self.transact_items
            ));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

#[derive(Default)]
struct Counters {
    get: AtomicU64,
    batch_get: AtomicU64,
    put: AtomicU64,
    update: AtomicU64,
    delete: AtomicU64,
    query: AtomicU64,
    transact: AtomicU64,
    transact_items: AtomicU64,
}

/// Wraps a table and counts the calls made through it. Clones share the counters.
#[derive(Clone)]
pub struct CountingTable {
    inner: TableRef,
    counters: Arc<Counters>,
}

impl CountingTable {
    pub fn new(inner: TableRef) -> Self {
        CountingTable {
            inner,
            counters: Arc::new(Counters::default()),
        }
    }

    /// The calls counted so far.
    pub fn calls(&self) -> Calls {
        let c = &self.counters;
        Calls {
            get: c.get.load(Ordering::Relaxed),
            batch_get: c.batch_get.load(Ordering::Relaxed),
            put: c.put.load(Ordering::Relaxed),
            update: c.update.load(Ordering::Relaxed),
            delete: c.delete.load(Ordering::Relaxed),
            query: c.query.load(Ordering::Relaxed),
            transact: c.transact.load(Ordering::Relaxed),
            transact_items: c.transact_items.load(Ordering::Relaxed),
        }
    }

    fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }
}

#[async_trait]
impl Table for CountingTable {
    fn def(&self) -> &'static TableDef {
        self.inner.def()
    }

    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        Self::bump(&self.counters.get, 1);
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        Self::bump(&self.counters.batch_get, 1);
        self.inner.get_many(keys).await
    }

    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        Self::bump(&self.counters.put, 1);
        self.inner.put(item, cond).await
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        cond: Option<Cond>,
    ) -> Result<Item, StoreError> {
        Self::bump(&self.counters.update, 1);
        self.inner.update(key, update, cond).await
    }

    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError> {
        Self::bump(&self.counters.delete, 1);
        self.inner.delete(key, cond).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        Self::bump(&self.counters.query, 1);
        self.inner.query(query).await
    }

    async fn scan(&self, scan: Scan) -> Result<Page, StoreError> {
        Self::bump(&self.counters.query, 1);
        self.inner.scan(scan).await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError> {
        Self::bump(&self.counters.transact, 1);
        Self::bump(&self.counters.transact_items, ops.len() as u64);
        self.inner.transact(ops).await
    }
}
