//! The embedded adapter: an ordered store on redb, durable on disk under a data dir or in memory.
//! Every write runs in one redb write transaction (redb serialises writers), so conditions and
//! multi-item transactions are atomic; reads use MVCC snapshots. GSIs are maintained as separate
//! redb tables keyed `(index pk, index sk, pk, sk)`; items without both index attributes are not
//! indexed (sparse, as in DynamoDB).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};

use super::{
    Cond, Item, Key, Page, Query, Scan, SkCond, StoreError, Table, TableDef, TxOp, Update,
    decode_cursor, encode_cursor, get_s, is_expired, validate_batch_get, validate_transaction,
};
use crate::clock::ClockRef;

type ItemsDef<'a> = TableDefinition<'a, (&'static str, &'static str), &'static [u8]>;
/// The items table opened for reading.
type ItemsRead = redb::ReadOnlyTable<(&'static str, &'static str), &'static [u8]>;
type K2<'a> = (&'a str, &'a str);
type IndexTableDef<'a> =
    TableDefinition<'a, (&'static str, &'static str, &'static str, &'static str), ()>;

/// One embedded database holding any number of tables.
#[derive(Clone)]
pub struct LocalStore {
    db: Arc<Database>,
    clock: ClockRef,
}

impl LocalStore {
    /// Opens (or creates) a durable store at `dir/userstate.redb`.
    pub fn open(dir: &Path, clock: ClockRef) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        let path = dir.join("userstate.redb");
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Unavailable(format!(
                "the local store {} is open in another process (another `userstate serve`?): \
                 stop that one, or start with --data-dir <another dir> or --memory",
                path.display()
            )),
            other => StoreError::Unavailable(format!("{}: {other}", path.display())),
        })?;
        Ok(LocalStore {
            db: Arc::new(db),
            clock,
        })
    }

    /// A store that lives in memory only (tests, `serve --memory`).
    pub fn memory(clock: ClockRef) -> Result<Self, StoreError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(unavailable)?;
        Ok(LocalStore {
            db: Arc::new(db),
            clock,
        })
    }

    /// A handle to one table of this store.
    pub fn table(&self, def: &'static TableDef, name: &str) -> LocalTable {
        LocalTable {
            store: self.clone(),
            def,
            name: Arc::from(name),
        }
    }
}

/// A table inside a [`LocalStore`].
#[derive(Clone)]
pub struct LocalTable {
    store: LocalStore,
    def: &'static TableDef,
    name: Arc<str>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn encode(item: &Item) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(item).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn decode(bytes: &[u8]) -> Result<Item, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Names of the redb tables backing one logical table.
struct Names {
    items: String,
    indexes: Vec<(&'static super::IndexDef, String)>,
}

impl LocalTable {
    fn names(&self) -> Names {
        Names {
            items: format!("items:{}", self.name),
            indexes: self
                .def
                .indexes
                .iter()
                .map(|i| (i, format!("gsi:{}:{}", self.name, i.name)))
                .collect(),
        }
    }

    fn now(&self) -> i64 {
        self.store.clock.epoch()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&LocalTable) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(unavailable)?
    }

    fn read_item(
        &self,
        tx: &WriteTransaction,
        names: &Names,
        key: &Key,
    ) -> Result<Option<Item>, StoreError> {
        let t = tx
            .open_table(ItemsDef::new(&names.items))
            .map_err(unavailable)?;
        let got = t
            .get((key.pk.as_str(), key.sk.as_str()))
            .map_err(unavailable)?;
        got.map(|g| decode(g.value())).transpose()
    }

    /// Writes (or, with `None`, removes) an item and keeps every index in step.
    fn write_item(
        &self,
        tx: &WriteTransaction,
        names: &Names,
        key: &Key,
        old: Option<&Item>,
        new: Option<&Item>,
    ) -> Result<(), StoreError> {
        {
            let mut t = tx
                .open_table(ItemsDef::new(&names.items))
                .map_err(unavailable)?;
            match new {
                Some(item) => {
                    let bytes = encode(item)?;
                    t.insert((key.pk.as_str(), key.sk.as_str()), bytes.as_slice())
                        .map_err(unavailable)?;
                }
                None => {
                    t.remove((key.pk.as_str(), key.sk.as_str()))
                        .map_err(unavailable)?;
                }
            }
        }
        for (idx, name) in &names.indexes {
            let mut t = tx
                .open_table(IndexTableDef::new(name))
                .map_err(unavailable)?;
            let entry = |i: &Item| match (get_s(i, idx.pk), get_s(i, idx.sk)) {
                (Some(a), Some(b)) => Some((a.to_owned(), b.to_owned())),
                _ => None,
            };
            if let Some((a, b)) = old.and_then(entry) {
                t.remove((a.as_str(), b.as_str(), key.pk.as_str(), key.sk.as_str()))
                    .map_err(unavailable)?;
            }
            if let Some((a, b)) = new.and_then(entry) {
                t.insert(
                    (a.as_str(), b.as_str(), key.pk.as_str(), key.sk.as_str()),
                    (),
                )
                .map_err(unavailable)?;
            }
        }
        Ok(())
    }

    /// Runs `ops` in one write transaction; commits only when every condition held.
    fn apply(&self, ops: Vec<TxOp>, single: bool) -> Result<Option<Item>, StoreError> {
        // Key attributes cannot be updated (DynamoDB refuses it too): the item would no longer
        // carry the key it is stored under.
        for op in &ops {
            if let TxOp::Update { update, .. } = op {
                let mut touched = update
                    .set
                    .iter()
                    .map(|(n, _)| n)
                    .chain(update.add.iter().map(|(n, _)| n))
                    .chain(&update.remove);
                if let Some(n) =
                    touched.find(|n| n.as_str() == self.def.pk || n.as_str() == self.def.sk)
                {
                    return Err(StoreError::Invalid(format!(
                        "cannot update key attribute {n}"
                    )));
                }
            }
        }
        let names = self.names();
        let tx = self.store.db.begin_write().map_err(unavailable)?;
        // First pass: evaluate every condition against the state before the transaction.
        let mut current = Vec::with_capacity(ops.len());
        let mut failed = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let key = op.key()?;
            let old = self.read_item(&tx, &names, &key)?;
            let cond = match op {
                TxOp::Put { cond, .. } | TxOp::Update { cond, .. } | TxOp::Delete { cond, .. } => {
                    cond.as_ref()
                }
                TxOp::Check { cond, .. } => Some(cond),
            };
            if cond.is_some_and(|c| !c.eval(old.as_ref())) {
                failed.push(i);
            }
            current.push((key, old));
        }
        if !failed.is_empty() {
            tx.abort().map_err(unavailable)?;
            return Err(if single {
                StoreError::ConditionFailed
            } else {
                StoreError::TransactionCanceled { failed }
            });
        }
        // Second pass: apply.
        let mut result = None;
        for (op, (key, old)) in ops.into_iter().zip(current) {
            match op {
                TxOp::Put { mut item, .. } => {
                    item.insert("pk".into(), key.pk.clone().into());
                    item.insert("sk".into(), key.sk.clone().into());
                    self.write_item(&tx, &names, &key, old.as_ref(), Some(&item))?;
                    result = Some(item);
                }
                TxOp::Update { update, .. } => {
                    let mut item = old.clone().unwrap_or_else(|| key.item());
                    update.apply(&mut item)?;
                    self.write_item(&tx, &names, &key, old.as_ref(), Some(&item))?;
                    result = Some(item);
                }
                TxOp::Delete { .. } => {
                    if old.is_some() {
                        self.write_item(&tx, &names, &key, old.as_ref(), None)?;
                    }
                    result = old;
                }
                TxOp::Check { .. } => {}
            }
        }
        tx.commit().map_err(unavailable)?;
        Ok(result)
    }

    fn get_sync(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let mut items = self.get_many_sync(std::slice::from_ref(key))?;
        Ok(items.pop().flatten())
    }

    /// This table's items in a fresh read snapshot; `None` while nothing was ever written.
    fn read_items(&self) -> Result<Option<ItemsRead>, StoreError> {
        let names = self.names();
        let tx = self.store.db.begin_read().map_err(unavailable)?;
        match tx.open_table(ItemsDef::new(&names.items)) {
            Ok(t) => Ok(Some(t)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Reads the keys from one snapshot, in order.
    fn get_many_sync(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        let Some(t) = self.read_items()? else {
            return Ok(vec![None; keys.len()]);
        };
        let now = self.now();
        keys.iter()
            .map(|key| {
                let got = t
                    .get((key.pk.as_str(), key.sk.as_str()))
                    .map_err(unavailable)?;
                let item = got.map(|g| decode(g.value())).transpose()?;
                Ok(item.filter(|i| !is_expired(i, self.def.ttl, now)))
            })
            .collect()
    }

    // Over 80 lines: the local mirror of the DynamoDB adapter's `query` (range, filter, limit,
    // cursor in the same order), kept side by side with it for the conformance suite.
    /// One page of a [`Scan`]: up to `limit` items evaluated in key order after the cursor.
    fn scan_sync(&self, s: &Scan) -> Result<Page, StoreError> {
        let after = match s.cursor.as_deref().map(decode_cursor).transpose()? {
            Some(c) => match (c.get("pk"), c.get("sk")) {
                (Some(pk), Some(sk)) if c.len() == 2 => Some((pk.clone(), sk.clone())),
                _ => return Err(StoreError::BadCursor),
            },
            None => None,
        };
        let now = self.now();
        let Some(items_t) = self.read_items()? else {
            return Ok(Page::default());
        };
        let lo: Bound<K2> = match &after {
            Some((pk, sk)) => Bound::Excluded((pk.as_str(), sk.as_str())),
            None => Bound::Unbounded,
        };
        let range = items_t
            .range::<K2>((lo, Bound::Unbounded))
            .map_err(unavailable)?;
        let (mut items, mut evaluated, mut last) = (Vec::new(), 0, None);
        for entry in range {
            if evaluated == s.limit.max(1) {
                let (pk, sk): (String, String) = last.take().unwrap_or_default();
                let cursor = std::collections::BTreeMap::from([
                    ("pk".to_owned(), pk),
                    ("sk".to_owned(), sk),
                ]);
                return Ok(Page {
                    items,
                    cursor: Some(encode_cursor(&cursor)),
                });
            }
            let (k, v) = entry.map_err(unavailable)?;
            let (pk, sk) = k.value();
            evaluated += 1;
            last = Some((pk.to_owned(), sk.to_owned()));
            if sk == s.sk {
                let item = decode(v.value())?;
                if !is_expired(&item, self.def.ttl, now) {
                    items.push(item);
                }
            }
        }
        Ok(Page {
            items,
            cursor: None,
        })
    }

    fn query_sync(&self, q: &Query) -> Result<Page, StoreError> {
        let limit = q.limit.unwrap_or(usize::MAX).max(1);
        let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
        let now = self.now();
        let names = self.names();
        let tx = self.store.db.begin_read().map_err(unavailable)?;
        let items_t = match tx.open_table(ItemsDef::new(&names.items)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Page::default()),
            Err(e) => return Err(unavailable(e)),
        };
        let mut out: Vec<Item> = Vec::new();
        let mut more = false;
        let end = format!("{}\0", q.pk);
        let mut push = |item: Item, out: &mut Vec<Item>| -> bool {
            if is_expired(&item, self.def.ttl, now) {
                return true;
            }
            if out.len() == limit {
                more = true;
                return false;
            }
            out.push(item);
            true
        };
        match q.index {
            None => {
                let cursor_sk = match &after {
                    Some(c) => Some(c.get("sk").cloned().ok_or(StoreError::BadCursor)?),
                    None => None,
                };
                let (lo, hi): (Bound<K2>, Bound<K2>) = match (&cursor_sk, q.forward) {
                    (Some(sk), true) => (
                        Bound::Excluded((q.pk.as_str(), sk.as_str())),
                        Bound::Excluded((end.as_str(), "")),
                    ),
                    (Some(sk), false) => (
                        Bound::Included((q.pk.as_str(), "")),
                        Bound::Excluded((q.pk.as_str(), sk.as_str())),
                    ),
                    (None, _) => (
                        Bound::Included((q.pk.as_str(), "")),
                        Bound::Excluded((end.as_str(), "")),
                    ),
                };
                let range = items_t.range::<K2>((lo, hi)).map_err(unavailable)?;
                let iter: Box<dyn Iterator<Item = _>> = if q.forward {
                    Box::new(range)
                } else {
                    Box::new(range.rev())
                };
                for entry in iter {
                    let (k, v) = entry.map_err(unavailable)?;
                    if !q.sk.matches(k.value().1) {
                        if sk_passed(&q.sk, k.value().1, q.forward) {
                            break;
                        }
                        continue;
                    }
                    if !push(decode(v.value())?, &mut out) {
                        break;
                    }
                }
            }
            Some(index) => {
                let idx = self
                    .def
                    .index(index)
                    .ok_or_else(|| StoreError::Invalid(format!("unknown index {index}")))?;
                let name = names
                    .indexes
                    .iter()
                    .find(|(i, _)| i.name == idx.name)
                    .map(|(_, n)| n.clone())
                    .ok_or_else(|| StoreError::Invalid(format!("unknown index {index}")))?;
                let idx_t = match tx.open_table(IndexTableDef::new(&name)) {
                    Ok(t) => t,
                    Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Page::default()),
                    Err(e) => return Err(unavailable(e)),
                };
                let c = match &after {
                    Some(c) => Some((
                        c.get(idx.sk).cloned().ok_or(StoreError::BadCursor)?,
                        c.get("pk").cloned().ok_or(StoreError::BadCursor)?,
                        c.get("sk").cloned().ok_or(StoreError::BadCursor)?,
                    )),
                    None => None,
                };
                type K4<'a> = (&'a str, &'a str, &'a str, &'a str);
                let start: K4 = (q.pk.as_str(), "", "", "");
                let stop: K4 = (end.as_str(), "", "", "");
                let (lo, hi): (Bound<K4>, Bound<K4>) = match (&c, q.forward) {
                    (Some((s, p, k)), true) => (
                        Bound::Excluded((q.pk.as_str(), s.as_str(), p.as_str(), k.as_str())),
                        Bound::Excluded(stop),
                    ),
                    (Some((s, p, k)), false) => (
                        Bound::Included(start),
                        Bound::Excluded((q.pk.as_str(), s.as_str(), p.as_str(), k.as_str())),
                    ),
                    (None, _) => (Bound::Included(start), Bound::Excluded(stop)),
                };
                let range = idx_t.range::<K4>((lo, hi)).map_err(unavailable)?;
                let iter: Box<dyn Iterator<Item = _>> = if q.forward {
                    Box::new(range)
                } else {
                    Box::new(range.rev())
                };
                for entry in iter {
                    let (k, _) = entry.map_err(unavailable)?;
                    let (_, isk, pk, sk) = k.value();
                    if !q.sk.matches(isk) {
                        if sk_passed(&q.sk, isk, q.forward) {
                            break;
                        }
                        continue;
                    }
                    let Some(v) = items_t.get((pk, sk)).map_err(unavailable)? else {
                        continue;
                    };
                    if !push(decode(v.value())?, &mut out) {
                        break;
                    }
                }
            }
        }
        let cursor = if more {
            out.last().map(|last| cursor_of(self.def, q.index, last))
        } else {
            None
        };
        Ok(Page { items: out, cursor })
    }
}

/// True when iteration has moved beyond every sort key the condition could match.
fn sk_passed(cond: &SkCond, sk: &str, forward: bool) -> bool {
    match (cond, forward) {
        (SkCond::BeginsWith(p), true) => sk > p.as_str() && !sk.starts_with(p.as_str()),
        (SkCond::Eq(v) | SkCond::Le(v) | SkCond::Lt(v), true) => sk > v.as_str(),
        (SkCond::Between(_, b), true) => sk > b.as_str(),
        (SkCond::BeginsWith(p), false) => sk < p.as_str(),
        (SkCond::Eq(v) | SkCond::Ge(v) | SkCond::Gt(v), false) => sk < v.as_str(),
        (SkCond::Between(a, _), false) => sk < a.as_str(),
        _ => false,
    }
}

/// The cursor of an item: its table key plus the queried index's key, as DynamoDB's LastEvaluatedKey.
pub(crate) fn cursor_of(def: &TableDef, index: Option<&str>, item: &Item) -> String {
    let mut names = vec![def.pk, def.sk];
    if let Some(idx) = index.and_then(|i| def.index(i)) {
        names.push(idx.pk);
        names.push(idx.sk);
    }
    let key: BTreeMap<String, String> = names
        .into_iter()
        .filter_map(|n| get_s(item, n).map(|v| (n.to_owned(), v.to_owned())))
        .collect();
    encode_cursor(&key)
}

#[async_trait]
impl Table for LocalTable {
    fn def(&self) -> &'static TableDef {
        self.def
    }

    // Point reads run on the calling task: a redb read is an MVCC snapshot served from its page
    // cache in microseconds, less than a hop to the blocking pool and back costs. Writes (which
    // may fsync) and scans go to the blocking pool.
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.get_sync(key)
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        validate_batch_get(keys)?;
        self.get_many_sync(keys)
    }

    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        Key::of(&item)?;
        self.blocking(move |t| t.apply(vec![TxOp::Put { item, cond }], true).map(|_| ()))
            .await
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        cond: Option<Cond>,
    ) -> Result<Item, StoreError> {
        let key = key.clone();
        self.blocking(move |t| {
            t.apply(vec![TxOp::Update { key, update, cond }], true)?
                .ok_or_else(|| StoreError::Invalid("update produced no item".into()))
        })
        .await
    }

    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError> {
        let key = key.clone();
        let now = self.now();
        let ttl = self.def.ttl;
        let old = self
            .blocking(move |t| t.apply(vec![TxOp::Delete { key, cond }], true))
            .await?;
        Ok(old.filter(|i| !is_expired(i, ttl, now)))
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.blocking(move |t| t.query_sync(&query)).await
    }

    async fn scan(&self, scan: Scan) -> Result<Page, StoreError> {
        self.blocking(move |t| t.scan_sync(&scan)).await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError> {
        validate_transaction(&ops)?;
        self.blocking(move |t| t.apply(ops, false).map(|_| ()))
            .await
    }
}
