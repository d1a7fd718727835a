//! A table wrapper that refuses operations a function has not declared in
//! [`crate::permissions`] — the same grants its IAM policy carries.

use async_trait::async_trait;

use super::{Cond, Item, Key, Page, Query, StoreError, Table, TableDef, TableRef, TxOp, Update};
use crate::permissions::{TableAction, TableGrant};

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
