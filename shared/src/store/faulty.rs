//! Test support: a [`Table`] wrapper that injects storage faults (throttling, outages) on a chosen
//! call or operation kind, and keeps a ledger of every key written through it so a test can list
//! what a request left behind.
//!
//! ```ignore
//! let faulty = FaultyTable::wrap(store.table(&MAIN, "main"));
//! let app = App::assemble(config, faulty.clone(), logs, clock);
//! faulty.fail(Trigger::Op(Op::Transact), Fault::Throttled);
//! // … drive a request, expect 503 …
//! assert!(faulty.items().await?.iter().all(|i| !is_account_item(i)));
//! ```
//!
//! An injected fault is returned *instead of* calling the inner table, as when DynamoDB throttles
//! or cannot be reached: the operation had no effect.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    Cond, Item, Key, Page, Query, Scan, StoreError, Table, TableDef, TableRef, TxOp, Update,
};

/// A kind of table operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Get,
    Put,
    Update,
    Delete,
    Query,
    Transact,
}

/// The failure to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `StoreError::Throttled` (DynamoDB `ProvisionedThroughputExceeded` / `ThrottlingException`).
    Throttled,
    /// `StoreError::Unavailable` (network error, 5xx from the service).
    Unavailable,
}

impl Fault {
    fn error(self) -> StoreError {
        match self {
            Fault::Throttled => StoreError::Throttled,
            Fault::Unavailable => StoreError::Unavailable("injected fault".into()),
        }
    }
}

/// When to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The n-th call (1-based) of any kind counted from when the fault was armed; once.
    NthCall(usize),
    /// The n-th call (1-based) of this kind counted from when the fault was armed; once.
    NthOf(Op, usize),
    /// Every call of this kind until [`FaultyTable::clear`].
    Op(Op),
    /// Every call until [`FaultyTable::clear`].
    Always,
}

#[derive(Default)]
struct State {
    armed: Option<(Trigger, Fault)>,
    /// Calls since arming: all kinds, and of the trigger's kind.
    seen_all: usize,
    seen_kind: usize,
    /// Every call made, in order (`true` when a fault was injected).
    calls: Vec<(Op, bool)>,
    /// Keys written successfully through this wrapper.
    written: BTreeSet<Key>,
}

/// The wrapper. Cheap to share: build it with [`FaultyTable::wrap`] and pass the `Arc` as the
/// app's table.
pub struct FaultyTable {
    inner: TableRef,
    state: Mutex<State>,
}

impl FaultyTable {
    /// Wraps a table; no fault is armed.
    pub fn wrap(inner: impl Table) -> Arc<FaultyTable> {
        Self::wrap_ref(Arc::new(inner))
    }

    /// Wraps a shared table; no fault is armed.
    pub fn wrap_ref(inner: TableRef) -> Arc<FaultyTable> {
        Arc::new(FaultyTable {
            inner,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock only happens in a failing test; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Arms a fault (replacing any armed one) and restarts the call counters.
    pub fn fail(&self, trigger: Trigger, fault: Fault) {
        let mut s = self.state();
        s.armed = Some((trigger, fault));
        s.seen_all = 0;
        s.seen_kind = 0;
    }

    /// Disarms.
    pub fn clear(&self) {
        self.state().armed = None;
    }

    /// The calls made so far, in order, each with whether a fault was injected.
    pub fn calls(&self) -> Vec<(Op, bool)> {
        self.state().calls.clone()
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> usize {
        self.state().calls.iter().filter(|(_, f)| *f).count()
    }

    /// Every key ever written through this wrapper.
    pub fn written_keys(&self) -> Vec<Key> {
        self.state().written.iter().cloned().collect()
    }

    /// The items that currently exist under every key ever written through this wrapper (read
    /// from the inner table, so injected faults do not apply): "list the table" for tests.
    pub async fn items(&self) -> Result<Vec<Item>, StoreError> {
        let keys = self.written_keys();
        let mut out = Vec::new();
        for key in keys {
            if let Some(item) = self.inner.get(&key).await? {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// Counts the call; `Some(error)` when a fault fires for it.
    fn check(&self, op: Op) -> Option<StoreError> {
        let mut s = self.state();
        s.seen_all += 1;
        let fire = match s.armed {
            None => None,
            Some((trigger, fault)) => {
                let fires = match trigger {
                    Trigger::Always => true,
                    Trigger::Op(kind) => kind == op,
                    Trigger::NthCall(n) => s.seen_all == n,
                    Trigger::NthOf(kind, n) => {
                        if kind == op {
                            s.seen_kind += 1;
                            s.seen_kind == n
                        } else {
                            false
                        }
                    }
                };
                fires.then_some(fault)
            }
        };
        if fire.is_some() && matches!(s.armed, Some((Trigger::NthCall(_) | Trigger::NthOf(..), _)))
        {
            s.armed = None;
        }
        s.calls.push((op, fire.is_some()));
        fire.map(Fault::error)
    }

    fn record(&self, keys: impl IntoIterator<Item = Key>) {
        self.state().written.extend(keys);
    }
}

#[async_trait]
impl Table for FaultyTable {
    fn def(&self) -> &'static TableDef {
        self.inner.def()
    }

    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        if let Some(e) = self.check(Op::Get) {
            return Err(e);
        }
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        if let Some(e) = self.check(Op::Get) {
            return Err(e);
        }
        self.inner.get_many(keys).await
    }

    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        if let Some(e) = self.check(Op::Put) {
            return Err(e);
        }
        let key = Key::of(&item)?;
        self.inner.put(item, cond).await?;
        self.record([key]);
        Ok(())
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        cond: Option<Cond>,
    ) -> Result<Item, StoreError> {
        if let Some(e) = self.check(Op::Update) {
            return Err(e);
        }
        let item = self.inner.update(key, update, cond).await?;
        self.record([key.clone()]);
        Ok(item)
    }

    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError> {
        if let Some(e) = self.check(Op::Delete) {
            return Err(e);
        }
        self.inner.delete(key, cond).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        if let Some(e) = self.check(Op::Query) {
            return Err(e);
        }
        self.inner.query(query).await
    }

    async fn scan(&self, scan: Scan) -> Result<Page, StoreError> {
        if let Some(e) = self.check(Op::Query) {
            return Err(e);
        }
        self.inner.scan(scan).await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError> {
        if let Some(e) = self.check(Op::Transact) {
            return Err(e);
        }
        let keys: Vec<Key> = ops
            .iter()
            .filter(|op| matches!(op, TxOp::Put { .. } | TxOp::Update { .. }))
            .filter_map(|op| op.key().ok())
            .collect();
        self.inner.transact(ops).await?;
        self.record(keys);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::store::local::LocalStore;
    use crate::store::schema::MAIN;
    use crate::store::value::AttrValue;

    fn item(pk: &str) -> Item {
        let mut i = Item::new();
        i.insert("pk".into(), AttrValue::S(pk.into()));
        i.insert("sk".into(), AttrValue::S("X".into()));
        i
    }

    fn table() -> Arc<FaultyTable> {
        let store = LocalStore::memory(Arc::new(SystemClock)).expect("store");
        FaultyTable::wrap(store.table(&MAIN, "main"))
    }

    #[tokio::test]
    async fn nth_of_kind_fires_once_on_that_kind_only_and_has_no_effect() {
        let t = table();
        t.fail(Trigger::NthOf(Op::Put, 2), Fault::Throttled);
        assert!(t.get(&Key::new("a", "X")).await.is_ok());
        assert!(t.put(item("a"), None).await.is_ok());
        assert_eq!(t.put(item("b"), None).await, Err(StoreError::Throttled));
        assert!(t.put(item("c"), None).await.is_ok(), "fires once");
        assert_eq!(t.injected(), 1);
        let pks: Vec<String> = t.written_keys().into_iter().map(|k| k.pk).collect();
        assert_eq!(pks, vec!["a", "c"], "the faulted put wrote nothing");
        assert_eq!(t.items().await.expect("items").len(), 2);
    }

    #[tokio::test]
    async fn op_trigger_fires_until_cleared() {
        let t = table();
        t.fail(Trigger::Op(Op::Transact), Fault::Unavailable);
        for _ in 0..3 {
            let ops = vec![TxOp::Put {
                item: item("t"),
                cond: None,
            }];
            assert!(matches!(
                t.transact(ops).await,
                Err(StoreError::Unavailable(_))
            ));
        }
        assert!(t.put(item("p"), None).await.is_ok(), "other kinds pass");
        t.clear();
        let ops = vec![TxOp::Put {
            item: item("t"),
            cond: None,
        }];
        assert!(t.transact(ops).await.is_ok());
        assert_eq!(t.injected(), 3);
    }
}
