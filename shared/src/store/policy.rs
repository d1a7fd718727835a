//! A table wrapper that refuses operations outside a grant, and the grant's value types. The
//! grants themselves (one per function, the same its IAM policy carries) are declared in
//! `crate::permissions` and passed in as values.

use async_trait::async_trait;

use super::{
    Cond, Item, Key, Page, Query, Scan, StoreError, Table, TableDef, TableRef, TxOp, Update,
};

/// DynamoDB item actions the port's operations need (transactions need the per-item actions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableAction {
    GetItem,
    /// [`crate::store::Table::get_many`].
    BatchGetItem,
    PutItem,
    UpdateItem,
    DeleteItem,
    Query,
    ConditionCheckItem,
    /// [`crate::store::Table::scan`].
    Scan,
}

impl TableAction {
    /// The IAM action name.
    pub fn iam(self) -> &'static str {
        match self {
            TableAction::GetItem => "dynamodb:GetItem",
            TableAction::BatchGetItem => "dynamodb:BatchGetItem",
            TableAction::PutItem => "dynamodb:PutItem",
            TableAction::UpdateItem => "dynamodb:UpdateItem",
            TableAction::DeleteItem => "dynamodb:DeleteItem",
            TableAction::Query => "dynamodb:Query",
            TableAction::ConditionCheckItem => "dynamodb:ConditionCheckItem",
            TableAction::Scan => "dynamodb:Scan",
        }
    }
}

/// Actions allowed only on items whose partition key starts with one of `prefixes` (IAM
/// `ForAllValues:StringLike` on `dynamodb:LeadingKeys`, each prefix followed by `*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scoped {
    pub actions: &'static [TableAction],
    pub prefixes: &'static [&'static str],
}

impl Scoped {
    /// Whether `action` on partition key `pk` is within this scope.
    pub fn allows(&self, action: TableAction, pk: &str) -> bool {
        self.actions.contains(&action) && self.prefixes.iter().any(|p| pk.starts_with(p))
    }
}

/// Grants on one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableGrant {
    /// Actions allowed on any item.
    pub actions: &'static [TableAction],
    /// Whether queries on the table's GSIs are allowed (`{table}/index/*`).
    pub indexes: bool,
    /// Actions allowed only on some partitions.
    pub scoped: &'static [Scoped],
}

impl TableGrant {
    /// No access at all.
    pub const NONE: TableGrant = TableGrant {
        actions: &[],
        indexes: false,
        scoped: &[],
    };

    /// Whether `action` is allowed on some item.
    pub fn allows(&self, action: TableAction) -> bool {
        self.actions.contains(&action) || self.scoped.iter().any(|s| s.actions.contains(&action))
    }

    /// Whether `action` is allowed on an item of partition `pk`.
    pub fn allows_on(&self, action: TableAction, pk: &str) -> bool {
        self.actions.contains(&action) || self.scoped.iter().any(|s| s.allows(action, pk))
    }
}

/// Wraps a table with a function's grant on it.
pub struct PolicyTable {
    inner: TableRef,
    grant: TableGrant,
    function: &'static str,
}

impl PolicyTable {
    pub fn new(inner: TableRef, grant: TableGrant, function: &'static str) -> Self {
        PolicyTable {
            inner,
            grant,
            function,
        }
    }

    /// Refuses `action` unless granted on partition `pk`.
    fn allow_on(&self, action: TableAction, pk: &str) -> Result<(), StoreError> {
        if self.grant.allows_on(action, pk) {
            return Ok(());
        }
        tracing::error!(
            function = self.function,
            action = action.iam(),
            table = self.inner.def().resource,
            pk,
            "undeclared table action on this partition"
        );
        Err(StoreError::Invalid(format!(
            "function `{}` does not declare {} on {} items under {pk:?} (shared/src/permissions.rs)",
            self.function,
            action.iam(),
            self.inner.def().resource
        )))
    }

    fn allow(&self, action: TableAction) -> Result<(), StoreError> {
        if self.grant.allows(action) {
            Ok(())
        } else {
            tracing::error!(
                function = self.function,
                action = action.iam(),
                table = self.inner.def().resource,
                "undeclared table action"
            );
            Err(StoreError::Invalid(format!(
                "function `{}` does not declare {} on {} (shared/src/permissions.rs)",
                self.function,
                action.iam(),
                self.inner.def().resource
            )))
        }
    }
}

#[async_trait]
impl Table for PolicyTable {
    fn def(&self) -> &'static TableDef {
        self.inner.def()
    }
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.allow_on(TableAction::GetItem, &key.pk)?;
        self.inner.get(key).await
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        for k in keys {
            self.allow_on(TableAction::BatchGetItem, &k.pk)?;
        }
        self.inner.get_many(keys).await
    }
    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        self.allow_on(TableAction::PutItem, &Key::of(&item)?.pk)?;
        self.inner.put(item, cond).await
    }
    async fn update(
        &self,
        key: &Key,
        update: Update,
        cond: Option<Cond>,
    ) -> Result<Item, StoreError> {
        self.allow_on(TableAction::UpdateItem, &key.pk)?;
        self.inner.update(key, update, cond).await
    }
    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError> {
        self.allow_on(TableAction::DeleteItem, &key.pk)?;
        self.inner.delete(key, cond).await
    }
    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        match query.index {
            None => self.allow_on(TableAction::Query, &query.pk)?,
            Some(_) => self.allow(TableAction::Query)?,
        }
        if query.index.is_some() && !self.grant.indexes {
            return Err(StoreError::Invalid(format!(
                "function `{}` does not declare index queries on {}",
                self.function,
                self.inner.def().resource
            )));
        }
        self.inner.query(query).await
    }
    async fn scan(&self, scan: Scan) -> Result<Page, StoreError> {
        // A scan reads every partition: only an unscoped grant allows it.
        self.allow(TableAction::Scan)?;
        self.inner.scan(scan).await
    }
    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError> {
        for op in &ops {
            let action = match op {
                TxOp::Put { .. } => TableAction::PutItem,
                TxOp::Update { .. } => TableAction::UpdateItem,
                TxOp::Delete { .. } => TableAction::DeleteItem,
                TxOp::Check { .. } => TableAction::ConditionCheckItem,
            };
            self.allow_on(action, &op.key()?.pk)?;
        }
        self.inner.transact(ops).await
    }
}
