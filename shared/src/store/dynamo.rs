//! The DynamoDB adapter (aws-sdk-dynamodb). Renders the port's typed conditions and updates into
//! expressions with placeholder names (`#nN`) and values (`:vN`) — names and values are never
//! interpolated into expression text.
//!
//! Semantics kept in step with the local adapter (checked by the conformance suite):
//! - reads of the table (get, table queries) are strongly consistent; GSI queries cannot be;
//! - expired items (`ttl` attribute <= now, from the injected clock) are filtered out of get,
//!   query and delete results, because DynamoDB's TTL deletion lags;
//! - `Cond::Cmp` with `Ne` is false when the attribute is missing, as the port's `Cond::eval`;
//! - an [`Update`] is normalised before rendering so that one attribute appears in one clause only
//!   (DynamoDB refuses overlapping paths), with the port's order: SET, then ADD, then REMOVE;
//! - an update without actions is sent as a no-op `REMOVE` (DynamoDB wants at least one action),
//!   so it creates a missing item as the port says, in `update` and in transactions alike;
//! - a query without a limit reads every page; with a limit it sends `Limit` and turns
//!   `LastEvaluatedKey` into the port's cursor (which DynamoDB may return even when nothing follows).
//!
//! Known differences that remain (DynamoDB is stricter than the embedded store): key attributes
//! (table or GSI) cannot be empty strings; ordered comparisons (`<`, `>`, ...) against BOOL, NULL,
//! L or M values are refused (`Invalid`); an `ADD` whose result leaves the i64 range is stored by
//! DynamoDB (38-digit numbers) and then reads back as `Corrupt`, where the local store refuses it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, ConditionCheck, Delete,
    GlobalSecondaryIndex, KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType,
    Put, ReturnValue, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
    TransactWriteItem,
};

use super::value::AttrValue;
use super::{
    CmpOp, Cond, Item, Key, Page, Query, Scan, SkCond, StoreError, Table, TableDef, TxOp, Update,
    decode_cursor, encode_cursor, is_expired, validate_batch_get, validate_transaction,
};
use crate::clock::{ClockRef, SystemClock};

type AwsItem = HashMap<String, AttributeValue>;

/// Requests one [`Table::get_many`] makes at most while DynamoDB returns unprocessed keys.
const BATCH_GET_ATTEMPTS: u32 = 4;

/// An attribute the application never stores: an update without actions is sent as its `REMOVE`.
pub const NOOP_ATTR: &str = "__userstate_noop";

/// A DynamoDB table.
#[derive(Clone)]
pub struct DynamoTable {
    client: Client,
    def: &'static TableDef,
    name: Arc<str>,
    clock: ClockRef,
}

impl DynamoTable {
    /// A handle on table `name` shaped like `def`.
    pub fn new(client: Client, def: &'static TableDef, name: &str) -> Self {
        DynamoTable {
            client,
            def,
            name: Arc::from(name),
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `clock` to decide which items have expired (the system clock by default).
    pub fn with_clock(mut self, clock: ClockRef) -> Self {
        self.clock = clock;
        self
    }

    /// The physical table name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn now(&self) -> i64 {
        self.clock.epoch()
    }

    fn live(&self, item: Option<Item>, now: i64) -> Option<Item> {
        item.filter(|i| !is_expired(i, self.def.ttl, now))
    }

    fn key_map(&self, key: &Key) -> AwsItem {
        HashMap::from([
            (self.def.pk.to_owned(), AttributeValue::S(key.pk.clone())),
            (self.def.sk.to_owned(), AttributeValue::S(key.sk.clone())),
        ])
    }

    /// The key of an item to put, by the table's key attribute names.
    fn key_of(&self, item: &Item) -> Result<Key, StoreError> {
        match (item.get(self.def.pk), item.get(self.def.sk)) {
            (Some(AttrValue::S(pk)), Some(AttrValue::S(sk))) => {
                Ok(Key::new(pk.clone(), sk.clone()))
            }
            _ => Err(StoreError::Invalid(format!(
                "item lacks string {}/{}",
                self.def.pk, self.def.sk
            ))),
        }
    }

    fn check_update(&self, update: &Update) -> Result<Update, StoreError> {
        let norm = normalise_update(update)?;
        let touched = norm
            .set
            .iter()
            .map(|(n, _)| n)
            .chain(norm.add.iter().map(|(n, _)| n))
            .chain(&norm.remove);
        for n in touched {
            if n == self.def.pk || n == self.def.sk || n == NOOP_ATTR {
                return Err(StoreError::Invalid(format!(
                    "cannot update key attribute {n}"
                )));
            }
        }
        Ok(norm)
    }
}

// ---------------------------------------------------------------------------------------------
// Attribute values

/// Converts a port value into the SDK's attribute value.
pub fn to_aws(v: &AttrValue) -> AttributeValue {
    match v {
        AttrValue::S(s) => AttributeValue::S(s.clone()),
        AttrValue::N(n) => AttributeValue::N(n.to_string()),
        AttrValue::Bool(b) => AttributeValue::Bool(*b),
        AttrValue::Null => AttributeValue::Null(true),
        AttrValue::L(l) => AttributeValue::L(l.iter().map(to_aws).collect()),
        AttrValue::M(m) => {
            AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), to_aws(v))).collect())
        }
    }
}

/// Converts an SDK attribute value read from the table; numbers must be 64-bit integers and
/// binary or set types are not part of the port.
pub fn from_aws(v: &AttributeValue) -> Result<AttrValue, StoreError> {
    Ok(match v {
        AttributeValue::S(s) => AttrValue::S(s.clone()),
        AttributeValue::N(n) => AttrValue::N(
            n.parse::<i64>()
                .map_err(|_| StoreError::Corrupt(format!("number {n} is not a 64-bit integer")))?,
        ),
        AttributeValue::Bool(b) => AttrValue::Bool(*b),
        AttributeValue::Null(_) => AttrValue::Null,
        AttributeValue::L(l) => AttrValue::L(l.iter().map(from_aws).collect::<Result<_, _>>()?),
        AttributeValue::M(m) => AttrValue::M(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), from_aws(v)?)))
                .collect::<Result<_, StoreError>>()?,
        ),
        other => {
            return Err(StoreError::Corrupt(format!(
                "unsupported attribute type {other:?}"
            )));
        }
    })
}

/// Converts a whole item to the SDK's shape.
pub fn item_to_aws(item: &Item) -> AwsItem {
    item.iter().map(|(k, v)| (k.clone(), to_aws(v))).collect()
}

/// Converts a whole item read from the table.
pub fn item_from_aws(item: &AwsItem) -> Result<Item, StoreError> {
    item.iter()
        .map(|(k, v)| Ok((k.clone(), from_aws(v)?)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Expressions

/// How tightly a rendered condition binds (DynamoDB: comparisons and functions, then NOT, AND, OR).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Prec {
    Or,
    And,
    Not,
    Cmp,
    Atom,
}

/// Placeholder maps shared by the expressions of one request.
#[derive(Default)]
struct Expr {
    by_name: HashMap<String, String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn name(&mut self, n: &str) -> String {
        if let Some(p) = self.by_name.get(n) {
            return p.clone();
        }
        let p = format!("#n{}", self.by_name.len());
        self.by_name.insert(n.to_owned(), p.clone());
        self.names.insert(p.clone(), n.to_owned());
        p
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), v);
        p
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }

    /// Renders a condition. `pk` is the partition key attribute, used to spell constant
    /// true/false (an empty AND/OR) since the expression language has no literals.
    fn cond(&mut self, c: &Cond, pk: &str) -> String {
        self.cond_prec(c, pk).0
    }

    /// Renders a condition with its precedence, parenthesising children only where needed:
    /// DynamoDB refuses redundant parentheses such as `((a = :v))`.
    fn cond_prec(&mut self, c: &Cond, pk: &str) -> (String, Prec) {
        match c {
            Cond::Exists(n) => (format!("attribute_exists({})", self.name(n)), Prec::Atom),
            Cond::NotExists(n) => (
                format!("attribute_not_exists({})", self.name(n)),
                Prec::Atom,
            ),
            Cond::Cmp(n, op, v) => {
                let ty = type_code(v);
                let n = self.name(n);
                let v = self.value(to_aws(v));
                let ordered = |ex: &mut Expr, sym: &str| {
                    // An ordered comparison with a value of another type is false (DynamoDB and the
                    // port agree); the explicit type guard also keeps moto 5.2 from failing with
                    // HTTP 500 (a Python TypeError) on such comparisons.
                    let t = ex.value(AttributeValue::S(ty.to_owned()));
                    (
                        format!("attribute_type({n}, {t}) AND {n} {sym} {v}"),
                        Prec::And,
                    )
                };
                match op {
                    CmpOp::Eq => (format!("{n} = {v}"), Prec::Cmp),
                    // The port's `Ne` is false for a missing attribute, where DynamoDB's `<>` (and
                    // moto's) is true; say so explicitly.
                    CmpOp::Ne => (format!("attribute_exists({n}) AND {n} <> {v}"), Prec::And),
                    CmpOp::Lt => ordered(self, "<"),
                    CmpOp::Le => ordered(self, "<="),
                    CmpOp::Gt => ordered(self, ">"),
                    CmpOp::Ge => ordered(self, ">="),
                }
            }
            Cond::BeginsWith(n, p) => {
                let n = self.name(n);
                let v = self.value(AttributeValue::S(p.clone()));
                (format!("begins_with({n}, {v})"), Prec::Atom)
            }
            Cond::And(cs) if cs.is_empty() => {
                let k = self.name(pk);
                (
                    format!("attribute_exists({k}) OR attribute_not_exists({k})"),
                    Prec::Or,
                )
            }
            Cond::Or(cs) if cs.is_empty() => {
                let k = self.name(pk);
                (
                    format!("attribute_exists({k}) AND attribute_not_exists({k})"),
                    Prec::And,
                )
            }
            Cond::And(cs) if cs.len() == 1 => self.cond_prec(&cs[0], pk),
            Cond::Or(cs) if cs.len() == 1 => self.cond_prec(&cs[0], pk),
            Cond::And(cs) => (self.join(cs, " AND ", Prec::And, pk), Prec::And),
            Cond::Or(cs) => (self.join(cs, " OR ", Prec::Or, pk), Prec::Or),
            Cond::Not(c) => {
                let inner = self.wrapped(c, Prec::Atom, pk);
                (format!("NOT {inner}"), Prec::Not)
            }
        }
    }

    /// Renders `c`, in parentheses when it binds less tightly than `min`.
    fn wrapped(&mut self, c: &Cond, min: Prec, pk: &str) -> String {
        let (s, prec) = self.cond_prec(c, pk);
        if prec < min { format!("({s})") } else { s }
    }

    fn join(&mut self, cs: &[Cond], sep: &str, min: Prec, pk: &str) -> String {
        let parts: Vec<String> = cs.iter().map(|c| self.wrapped(c, min, pk)).collect();
        parts.join(sep)
    }

    /// Renders a normalised update (see [`normalise_update`]). An update without actions still
    /// creates a missing item in the port; DynamoDB needs at least one action (and moto 5.2 fails
    /// with HTTP 500 on an UpdateItem without one), so it becomes the no-op `REMOVE` of
    /// [`NOOP_ATTR`].
    fn update(&mut self, u: &Update) -> String {
        let mut clauses = Vec::new();
        if !u.set.is_empty() {
            let parts: Vec<String> = u
                .set
                .iter()
                .map(|(n, v)| {
                    let n = self.name(n);
                    let v = self.value(to_aws(v));
                    format!("{n} = {v}")
                })
                .collect();
            clauses.push(format!("SET {}", parts.join(", ")));
        }
        if !u.add.is_empty() {
            let parts: Vec<String> = u
                .add
                .iter()
                .map(|(n, d)| {
                    let n = self.name(n);
                    let v = self.value(AttributeValue::N(d.to_string()));
                    format!("{n} {v}")
                })
                .collect();
            clauses.push(format!("ADD {}", parts.join(", ")));
        }
        if !u.remove.is_empty() {
            let parts: Vec<String> = u.remove.iter().map(|n| self.name(n)).collect();
            clauses.push(format!("REMOVE {}", parts.join(", ")));
        }
        if clauses.is_empty() {
            clauses.push(format!("REMOVE {}", self.name(NOOP_ATTR)));
        }
        clauses.join(" ")
    }
}

/// DynamoDB's type descriptor of a value, for `attribute_type`.
fn type_code(v: &AttrValue) -> &'static str {
    match v {
        AttrValue::S(_) => "S",
        AttrValue::N(_) => "N",
        AttrValue::Bool(_) => "BOOL",
        AttrValue::Null => "NULL",
        AttrValue::L(_) => "L",
        AttrValue::M(_) => "M",
    }
}

/// Rewrites an update so each attribute appears in exactly one action, with the same result as
/// applying it in the port's order (SET, then ADD, then REMOVE; later SETs win; ADDs sum).
fn normalise_update(u: &Update) -> Result<Update, StoreError> {
    let removed: BTreeSet<&str> = u.remove.iter().map(String::as_str).collect();
    let mut set: Vec<(String, AttrValue)> = Vec::new();
    for (n, v) in &u.set {
        if removed.contains(n.as_str()) {
            continue;
        }
        match set.iter_mut().find(|(m, _)| m == n) {
            Some(slot) => slot.1 = v.clone(),
            None => set.push((n.clone(), v.clone())),
        }
    }
    let mut add: Vec<(String, i64)> = Vec::new();
    for (n, d) in &u.add {
        let overflow = || StoreError::Invalid(format!("numeric overflow on {n}"));
        if let Some(slot) = set.iter_mut().find(|(m, _)| m == n) {
            // SET then ADD of the same attribute: fold into the SET (as the port applies it).
            match &mut slot.1 {
                AttrValue::N(x) => *x = x.checked_add(*d).ok_or_else(overflow)?,
                _ => {
                    return Err(StoreError::Invalid(format!(
                        "ADD on non-number attribute {n}"
                    )));
                }
            }
            continue;
        }
        if removed.contains(n.as_str()) {
            // The attribute is removed afterwards anyway, so the ADD is dropped (the port would
            // refuse it only when the stored value is not a number).
            continue;
        }
        match add.iter_mut().find(|(m, _)| m == n) {
            Some(slot) => slot.1 = slot.1.checked_add(*d).ok_or_else(overflow)?,
            None => add.push((n.clone(), *d)),
        }
    }
    let mut remove: Vec<String> = Vec::new();
    for n in &u.remove {
        if !remove.contains(n) {
            remove.push(n.clone());
        }
    }
    Ok(Update { set, add, remove })
}

/// A sort-key condition in the form DynamoDB accepts (no empty-string key values):
/// `Ok(None)` when no item can match, so the query need not be sent.
fn normalise_sk(c: &SkCond) -> Option<SkCond> {
    let empty = |s: &String| s.is_empty();
    Some(match c {
        SkCond::BeginsWith(p) if empty(p) => SkCond::Any,
        SkCond::Gt(v) | SkCond::Ge(v) if empty(v) => SkCond::Any,
        SkCond::Eq(v) | SkCond::Lt(v) | SkCond::Le(v) if empty(v) => return None,
        SkCond::Between(a, b) if a > b || empty(b) => return None,
        SkCond::Between(a, b) if empty(a) => SkCond::Le(b.clone()),
        other => other.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// Errors

fn build_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(e.to_string())
}

/// Maps a service error code (and message) to the port's error.
fn from_code(code: Option<&str>, message: Option<&str>) -> StoreError {
    let msg = message.unwrap_or_default().to_owned();
    match code {
        Some("ConditionalCheckFailedException") => StoreError::ConditionFailed,
        Some("TransactionConflictException" | "TransactionInProgressException") => {
            StoreError::Conflict
        }
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded",
        ) => StoreError::Throttled,
        Some("ValidationException") => StoreError::Invalid(msg),
        Some(code) => StoreError::Unavailable(format!("{code}: {msg}")),
        None => StoreError::Unavailable(if msg.is_empty() {
            "unknown service error".into()
        } else {
            msg
        }),
    }
}

/// Classifies an SDK error: service errors by code, everything else (dispatch failure, timeout,
/// unreadable response, request construction) as unavailable.
fn classify<E, R>(err: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(e) => from_code(e.code(), e.message()),
        None => StoreError::Unavailable(DisplayErrorContext(err).to_string()),
    }
}

/// Maps the cancellation reasons of a cancelled transaction (ordered like the request).
fn cancellation(reasons: &[CancellationReason], message: Option<&str>) -> StoreError {
    let mut codes: Vec<String> = reasons
        .iter()
        .map(|r| r.code().unwrap_or("None").to_owned())
        .collect();
    if codes.is_empty() {
        // Fall back on the message, which lists the codes: "... reasons [ConditionalCheckFailed, None]".
        if let Some(list) = message
            .and_then(|m| m.rsplit_once('['))
            .and_then(|(_, l)| l.split_once(']'))
        {
            codes = list.0.split(',').map(|c| c.trim().to_owned()).collect();
        }
    }
    let failed: Vec<usize> = codes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.as_str() == "ConditionalCheckFailed")
        .map(|(i, _)| i)
        .collect();
    let has = |wanted: &[&str]| codes.iter().any(|c| wanted.contains(&c.as_str()));
    if !failed.is_empty() {
        StoreError::TransactionCanceled { failed }
    } else if has(&["TransactionConflict"]) {
        StoreError::Conflict
    } else if has(&[
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    ]) {
        StoreError::Throttled
    } else if has(&["ValidationError"]) {
        StoreError::Invalid(message.unwrap_or("transaction validation error").to_owned())
    } else {
        StoreError::Unavailable(format!(
            "transaction cancelled: {} [{}]",
            message.unwrap_or_default(),
            codes.join(", ")
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Table creation

/// Creates table `name` shaped like `def` (on-demand billing, string keys, every GSI with
/// projection ALL), waits until it is active, and enables TTL on `def.ttl`. Idempotent: an
/// existing table or an already enabled TTL is accepted.
/// Which of `names` do not exist (`DescribeTable` answers `ResourceNotFoundException`).
pub async fn missing_tables(client: &Client, names: &[&str]) -> Result<Vec<String>, StoreError> {
    let mut missing = Vec::new();
    for name in names {
        match client.describe_table().table_name(*name).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                missing.push((*name).to_owned());
            }
            Err(e) => return Err(classify(&e)),
        }
    }
    Ok(missing)
}

/// Creates table `name` with the layout `def` (keys, indexes, TTL), or leaves it as it is when
/// it exists: idempotent.
pub async fn create_table(client: &Client, def: &TableDef, name: &str) -> Result<(), StoreError> {
    let mut attrs: Vec<&str> = vec![def.pk, def.sk];
    for idx in def.indexes {
        for a in [idx.pk, idx.sk] {
            if !attrs.contains(&a) {
                attrs.push(a);
            }
        }
    }
    let key_schema = |pk: &str, sk: &str| -> Result<Vec<KeySchemaElement>, StoreError> {
        Ok(vec![
            KeySchemaElement::builder()
                .attribute_name(pk)
                .key_type(KeyType::Hash)
                .build()
                .map_err(build_err)?,
            KeySchemaElement::builder()
                .attribute_name(sk)
                .key_type(KeyType::Range)
                .build()
                .map_err(build_err)?,
        ])
    };
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(def.pk, def.sk)?));
    for a in attrs {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(a)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_err)?,
        );
    }
    for idx in def.indexes {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(idx.name)
                .set_key_schema(Some(key_schema(idx.pk, idx.sk)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(build_err)?,
        );
    }
    if let Err(e) = req.send().await
        && e.as_service_error().and_then(|s| s.code()) != Some("ResourceInUseException")
    {
        return Err(classify(&e));
    }
    wait_active(client, name).await?;

    let ttl = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| classify(&e))?;
    let enabled = ttl.time_to_live_description().is_some_and(|d| {
        matches!(
            d.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) && d.attribute_name() == Some(def.ttl)
    });
    if !enabled {
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(def.ttl)
            .build()
            .map_err(build_err)?;
        if let Err(e) = client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec)
            .send()
            .await
        {
            let already = e.as_service_error().is_some_and(|s| {
                s.code() == Some("ValidationException")
                    && s.message().unwrap_or_default().contains("already enabled")
            });
            if !already {
                return Err(classify(&e));
            }
        }
    }
    Ok(())
}

/// Polls until the table is ACTIVE (at once on emulators; a few seconds on AWS).
async fn wait_active(client: &Client, name: &str) -> Result<(), StoreError> {
    for _ in 0..300 {
        let out = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(StoreError::Unavailable(format!(
        "table {name} did not become active"
    )))
}

// ---------------------------------------------------------------------------------------------
// The port

#[async_trait]
impl Table for DynamoTable {
    fn def(&self) -> &'static TableDef {
        self.def
    }

    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&*self.name)
            .set_key(Some(self.key_map(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let item = out.item().map(item_from_aws).transpose()?;
        Ok(self.live(item, self.now()))
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        validate_batch_get(keys)?;
        let mut found: HashMap<Key, Item> = HashMap::with_capacity(keys.len());
        let mut pending: Vec<AwsItem> = keys.iter().map(|k| self.key_map(k)).collect();
        // DynamoDB may leave keys unprocessed under load; ask again for those (with a short
        // backoff), and give up as throttled rather than answer with holes.
        for attempt in 0..BATCH_GET_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&*self.name, request)
                .send()
                .await
                .map_err(|e| classify(&e))?;
            for aws in out
                .responses()
                .and_then(|r| r.get(&*self.name))
                .into_iter()
                .flatten()
            {
                let item = item_from_aws(aws)?;
                found.insert(self.key_of(&item)?, item);
            }
            pending = out
                .unprocessed_keys()
                .and_then(|u| u.get(&*self.name))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if pending.is_empty() {
                let now = self.now();
                return Ok(keys
                    .iter()
                    .map(|k| self.live(found.remove(k), now))
                    .collect());
            }
        }
        Err(StoreError::Throttled)
    }

    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        self.key_of(&item)?;
        let mut ex = Expr::default();
        let cond = cond.map(|c| ex.cond(&c, self.def.pk));
        self.client
            .put_item()
            .table_name(&*self.name)
            .set_item(Some(item_to_aws(&item)))
            .set_condition_expression(cond)
            .set_expression_attribute_names(ex.names())
            .set_expression_attribute_values(ex.values())
            .send()
            .await
            .map_err(|e| classify(&e))?;
        Ok(())
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        cond: Option<Cond>,
    ) -> Result<Item, StoreError> {
        let update = self.check_update(&update)?;
        let mut ex = Expr::default();
        let expr = ex.update(&update);
        let cond = cond.map(|c| ex.cond(&c, self.def.pk));
        let out = self
            .client
            .update_item()
            .table_name(&*self.name)
            .set_key(Some(self.key_map(key)))
            .update_expression(expr)
            .set_condition_expression(cond)
            .set_expression_attribute_names(ex.names())
            .set_expression_attribute_values(ex.values())
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        match out.attributes() {
            Some(a) => item_from_aws(a),
            // DynamoDB returns the written item (at least its key) for ALL_NEW; be defensive anyway.
            None => Ok(key.item()),
        }
    }

    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError> {
        let now = self.now();
        let mut ex = Expr::default();
        let cond = cond.map(|c| ex.cond(&c, self.def.pk));
        let out = self
            .client
            .delete_item()
            .table_name(&*self.name)
            .set_key(Some(self.key_map(key)))
            .set_condition_expression(cond)
            .set_expression_attribute_names(ex.names())
            .set_expression_attribute_values(ex.values())
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let old = out.attributes().map(item_from_aws).transpose()?;
        Ok(self.live(old, now))
    }

    // Over 80 lines: one Query becomes one paged DynamoDB request — the index's key attributes,
    // the cursor checked against them, the key condition, the page loop — and each part uses the
    // ones before it.
    async fn query(&self, q: Query) -> Result<Page, StoreError> {
        let (pk_attr, sk_attr, key_attrs) = match q.index {
            None => (self.def.pk, self.def.sk, vec![self.def.pk, self.def.sk]),
            Some(index) => {
                let idx = self
                    .def
                    .index(index)
                    .ok_or_else(|| StoreError::Invalid(format!("unknown index {index}")))?;
                (
                    idx.pk,
                    idx.sk,
                    vec![self.def.pk, self.def.sk, idx.pk, idx.sk],
                )
            }
        };
        // Decode and check the cursor before anything else: a tampered one is the client's fault.
        let mut start = match q.cursor.as_deref() {
            None => None,
            Some(c) => {
                let map = decode_cursor(c)?;
                let names: BTreeSet<&str> = map.keys().map(String::as_str).collect();
                let wanted: BTreeSet<&str> = key_attrs.iter().copied().collect();
                if names != wanted || map.get(pk_attr) != Some(&q.pk) {
                    return Err(StoreError::BadCursor);
                }
                Some(
                    map.into_iter()
                        .map(|(k, v)| (k, AttributeValue::S(v)))
                        .collect::<AwsItem>(),
                )
            }
        };
        // No item can have an empty key value in DynamoDB.
        let Some(sk) = normalise_sk(&q.sk).filter(|_| !q.pk.is_empty()) else {
            return Ok(Page::default());
        };
        let mut ex = Expr::default();
        let p = ex.name(pk_attr);
        let v = ex.value(AttributeValue::S(q.pk.clone()));
        let mut kce = format!("{p} = {v}");
        let s = |ex: &mut Expr, x: &String| ex.value(AttributeValue::S(x.clone()));
        let skc = match &sk {
            SkCond::Any => None,
            SkCond::Eq(x) => Some(("=", s(&mut ex, x))),
            SkCond::Lt(x) => Some(("<", s(&mut ex, x))),
            SkCond::Le(x) => Some(("<=", s(&mut ex, x))),
            SkCond::Gt(x) => Some((">", s(&mut ex, x))),
            SkCond::Ge(x) => Some((">=", s(&mut ex, x))),
            SkCond::BeginsWith(x) => {
                let n = ex.name(sk_attr);
                let x = s(&mut ex, x);
                kce.push_str(&format!(" AND begins_with({n}, {x})"));
                None
            }
            SkCond::Between(a, b) => {
                let n = ex.name(sk_attr);
                let a = s(&mut ex, a);
                let b = s(&mut ex, b);
                kce.push_str(&format!(" AND {n} BETWEEN {a} AND {b}"));
                None
            }
        };
        if let Some((op, x)) = skc {
            let n = ex.name(sk_attr);
            kce.push_str(&format!(" AND {n} {op} {x}"));
        }
        let limit = q.limit.map(|n| i32::try_from(n.max(1)).unwrap_or(i32::MAX));
        let now = self.now();
        let had_cursor = start.is_some();
        let mut items = Vec::new();
        loop {
            let out = self
                .client
                .query()
                .table_name(&*self.name)
                .set_index_name(q.index.map(str::to_owned))
                .key_condition_expression(&kce)
                .set_expression_attribute_names(ex.names())
                .set_expression_attribute_values(ex.values())
                .scan_index_forward(q.forward)
                .set_limit(limit)
                .set_exclusive_start_key(start.take())
                // Consistent reads are not available on GSIs.
                .consistent_read(q.index.is_none())
                .send()
                .await
                .map_err(|e| {
                    let err = classify(&e);
                    match err {
                        // DynamoDB refuses a start key that does not fit the query.
                        StoreError::Invalid(m)
                            if had_cursor && m.to_ascii_lowercase().contains("start") =>
                        {
                            StoreError::BadCursor
                        }
                        other => other,
                    }
                })?;
            for raw in out.items() {
                let item = item_from_aws(raw)?;
                if !is_expired(&item, self.def.ttl, now) {
                    items.push(item);
                }
            }
            let last = match out.last_evaluated_key() {
                Some(k) => k,
                None => {
                    return Ok(Page {
                        items,
                        cursor: None,
                    });
                }
            };
            if limit.is_some() {
                let mut key = BTreeMap::new();
                for (k, v) in last {
                    match v {
                        AttributeValue::S(s) => key.insert(k.clone(), s.clone()),
                        _ => {
                            return Err(StoreError::Corrupt(format!(
                                "non-string key attribute {k}"
                            )));
                        }
                    };
                }
                return Ok(Page {
                    items,
                    cursor: Some(encode_cursor(&key)),
                });
            }
            // No limit: the port reads the whole partition.
            start = Some(last.clone());
        }
    }

    async fn scan(&self, s: Scan) -> Result<Page, StoreError> {
        let start = match s.cursor.as_deref() {
            None => None,
            Some(c) => {
                let map = decode_cursor(c)?;
                let names: BTreeSet<&str> = map.keys().map(String::as_str).collect();
                if names != BTreeSet::from([self.def.pk, self.def.sk]) {
                    return Err(StoreError::BadCursor);
                }
                Some(
                    map.into_iter()
                        .map(|(k, v)| (k, AttributeValue::S(v)))
                        .collect::<AwsItem>(),
                )
            }
        };
        let mut ex = Expr::default();
        let n = ex.name(self.def.sk);
        let v = ex.value(AttributeValue::S(s.sk.clone()));
        let out = self
            .client
            .scan()
            .table_name(&*self.name)
            .filter_expression(format!("{n} = {v}"))
            .set_expression_attribute_names(ex.names())
            .set_expression_attribute_values(ex.values())
            .limit(i32::try_from(s.limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| match classify(&e) {
                StoreError::Invalid(m) if m.to_ascii_lowercase().contains("start") => {
                    StoreError::BadCursor
                }
                other => other,
            })?;
        let now = self.now();
        let mut items = Vec::new();
        for raw in out.items() {
            let item = item_from_aws(raw)?;
            if !is_expired(&item, self.def.ttl, now) {
                items.push(item);
            }
        }
        let cursor = match out.last_evaluated_key() {
            None => None,
            Some(last) => {
                let mut key = BTreeMap::new();
                for (k, v) in last {
                    let AttributeValue::S(s) = v else {
                        return Err(StoreError::Corrupt(format!("non-string key attribute {k}")));
                    };
                    key.insert(k.clone(), s.clone());
                }
                Some(encode_cursor(&key))
            }
        };
        Ok(Page { items, cursor })
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError> {
        validate_transaction(&ops)?;
        let mut items = Vec::with_capacity(ops.len());
        for op in ops {
            let mut ex = Expr::default();
            let item = match op {
                TxOp::Put { item, cond } => {
                    self.key_of(&item)?;
                    let cond = cond.map(|c| ex.cond(&c, self.def.pk));
                    let put = Put::builder()
                        .table_name(&*self.name)
                        .set_item(Some(item_to_aws(&item)))
                        .set_condition_expression(cond)
                        .set_expression_attribute_names(ex.names())
                        .set_expression_attribute_values(ex.values())
                        .build()
                        .map_err(build_err)?;
                    TransactWriteItem::builder().put(put).build()
                }
                TxOp::Update { key, update, cond } => {
                    let update = self.check_update(&update)?;
                    let expr = ex.update(&update);
                    let cond = cond.map(|c| ex.cond(&c, self.def.pk));
                    let upd = aws_sdk_dynamodb::types::Update::builder()
                        .table_name(&*self.name)
                        .set_key(Some(self.key_map(&key)))
                        .update_expression(expr)
                        .set_condition_expression(cond)
                        .set_expression_attribute_names(ex.names())
                        .set_expression_attribute_values(ex.values())
                        .build()
                        .map_err(build_err)?;
                    TransactWriteItem::builder().update(upd).build()
                }
                TxOp::Delete { key, cond } => {
                    let cond = cond.map(|c| ex.cond(&c, self.def.pk));
                    let del = Delete::builder()
                        .table_name(&*self.name)
                        .set_key(Some(self.key_map(&key)))
                        .set_condition_expression(cond)
                        .set_expression_attribute_names(ex.names())
                        .set_expression_attribute_values(ex.values())
                        .build()
                        .map_err(build_err)?;
                    TransactWriteItem::builder().delete(del).build()
                }
                TxOp::Check { key, cond } => {
                    let cond = ex.cond(&cond, self.def.pk);
                    let check = ConditionCheck::builder()
                        .table_name(&*self.name)
                        .set_key(Some(self.key_map(&key)))
                        .condition_expression(cond)
                        .set_expression_attribute_names(ex.names())
                        .set_expression_attribute_values(ex.values())
                        .build()
                        .map_err(build_err)?;
                    TransactWriteItem::builder().condition_check(check).build()
                }
            };
            items.push(item);
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    cancellation(c.cancellation_reasons(), c.message())
                }
                _ => classify(&e),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_conditions_with_placeholders_only() {
        let mut ex = Expr::default();
        let c = Cond::ge("balance", 15)
            .and(Cond::ne("status", "closed"))
            .and(Cond::BeginsWith("name".into(), "a".into()).or(Cond::item_absent().not()));
        let s = ex.cond(&c, "pk");
        assert_eq!(
            s,
            "attribute_type(#n0, :v1) AND #n0 >= :v0 AND attribute_exists(#n1) AND #n1 <> :v2 AND \
             (begins_with(#n2, :v3) OR NOT attribute_not_exists(#n3))"
        );
        assert_eq!(ex.names.get("#n0").map(String::as_str), Some("balance"));
        assert_eq!(ex.values.get(":v0"), Some(&AttributeValue::N("15".into())));
        assert_eq!(ex.values.get(":v1"), Some(&AttributeValue::S("N".into())));
        assert!(!s.contains("balance") && !s.contains("closed"));
    }

    #[test]
    fn parenthesises_only_where_needed() {
        let render = |c: Cond| Expr::default().cond(&c, "pk");
        assert_eq!(render(Cond::eq("a", 1).not()), "NOT (#n0 = :v0)");
        assert_eq!(
            render(Cond::ne("a", 1).not().not()),
            "NOT (NOT (attribute_exists(#n0) AND #n0 <> :v0))"
        );
        assert_eq!(
            render(
                Cond::Or(vec![
                    Cond::eq("a", 1).and(Cond::eq("b", 2)),
                    Cond::eq("c", 3)
                ])
                .and(Cond::item_exists())
            ),
            "(#n0 = :v0 AND #n1 = :v1 OR #n2 = :v2) AND attribute_exists(#n3)"
        );
        assert_eq!(
            render(Cond::And(vec![])),
            "attribute_exists(#n0) OR attribute_not_exists(#n0)"
        );
        assert_eq!(
            render(Cond::And(vec![Cond::eq("a", 1), Cond::Or(vec![])])),
            "#n0 = :v0 AND attribute_exists(#n1) AND attribute_not_exists(#n1)"
        );
        assert_eq!(
            render(Cond::Or(vec![Cond::And(vec![Cond::eq("a", 1)])])),
            "#n0 = :v0"
        );
        let deep = Cond::Not(Box::new(Cond::Or(vec![
            Cond::And(vec![]),
            Cond::Or(vec![Cond::gt("a", 1).not()]),
        ])));
        assert!(!render(deep).contains("(("));
    }

    #[test]
    fn renders_updates_in_three_clauses() {
        let u = Update::new().set("a", "x").add("b", -15).remove("c");
        let mut ex = Expr::default();
        assert_eq!(
            Some(ex.update(&normalise_update(&u).ok().unwrap_or_default())).as_deref(),
            Some("SET #n0 = :v0 ADD #n1 :v1 REMOVE #n2")
        );
        assert_eq!(ex.values.get(":v1"), Some(&AttributeValue::N("-15".into())));
        let mut ex = Expr::default();
        assert_eq!(ex.update(&Update::new()), "REMOVE #n0");
        assert_eq!(ex.names.get("#n0").map(String::as_str), Some(NOOP_ATTR));
    }

    #[test]
    fn normalises_overlapping_actions_like_the_port() {
        let u = Update::new()
            .set("a", 1)
            .set("a", 5)
            .add("a", 2)
            .add("b", 1)
            .add("b", 2)
            .set("c", "x")
            .remove("c");
        let n = normalise_update(&u).ok().unwrap_or_default();
        assert_eq!(n.set, vec![("a".to_string(), AttrValue::N(7))]);
        assert_eq!(n.add, vec![("b".to_string(), 3)]);
        assert_eq!(n.remove, vec!["c".to_string()]);
        // Same outcome as applying the original update.
        let mut direct = Item::new();
        assert!(u.apply(&mut direct).is_ok());
        let mut normalised = Item::new();
        assert!(n.apply(&mut normalised).is_ok());
        assert_eq!(direct, normalised);
        assert!(normalise_update(&Update::new().set("a", "s").add("a", 1)).is_err());
    }

    #[test]
    fn maps_values_both_ways() {
        let v = AttrValue::M(BTreeMap::from([
            ("n".to_string(), AttrValue::N(i64::MIN)),
            (
                "l".to_string(),
                AttrValue::L(vec![
                    AttrValue::Bool(true),
                    AttrValue::Null,
                    AttrValue::S(String::new()),
                ]),
            ),
        ]));
        assert_eq!(from_aws(&to_aws(&v)), Ok(v));
        assert!(matches!(
            from_aws(&AttributeValue::N("1.5".into())),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            from_aws(&AttributeValue::N("99999999999999999999".into())),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            from_aws(&AttributeValue::Ss(vec![])),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn maps_cancellation_reasons() {
        let r = |c: &str| CancellationReason::builder().code(c).build();
        assert_eq!(
            cancellation(
                &[
                    r("None"),
                    r("ConditionalCheckFailed"),
                    r("None"),
                    r("ConditionalCheckFailed")
                ],
                None
            ),
            StoreError::TransactionCanceled { failed: vec![1, 3] }
        );
        assert_eq!(
            cancellation(&[r("None"), r("TransactionConflict")], None),
            StoreError::Conflict
        );
        assert_eq!(
            cancellation(&[r("ThrottlingError")], None),
            StoreError::Throttled
        );
        assert_eq!(
            cancellation(
                &[],
                Some(
                    "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]"
                )
            ),
            StoreError::TransactionCanceled { failed: vec![1] }
        );
        assert_eq!(
            from_code(Some("ConditionalCheckFailedException"), None),
            StoreError::ConditionFailed
        );
        assert_eq!(
            from_code(Some("ThrottlingException"), None),
            StoreError::Throttled
        );
        assert!(matches!(
            from_code(Some("ValidationException"), Some("bad")),
            StoreError::Invalid(_)
        ));
        assert!(matches!(
            from_code(Some("InternalServerError"), None),
            StoreError::Unavailable(_)
        ));
    }

    #[test]
    fn normalises_sort_key_conditions() {
        assert_eq!(
            normalise_sk(&SkCond::BeginsWith(String::new())),
            Some(SkCond::Any)
        );
        assert_eq!(normalise_sk(&SkCond::Between("b".into(), "a".into())), None);
        assert_eq!(normalise_sk(&SkCond::Eq(String::new())), None);
        assert_eq!(
            normalise_sk(&SkCond::Gt("a".into())),
            Some(SkCond::Gt("a".into()))
        );
    }
}
