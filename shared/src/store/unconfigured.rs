//! The table of a function that has no storage (`health`): every call fails as unavailable.
//! Wiring it instead of the DynamoDB adapter keeps the AWS SDK out of such a binary and its init.

use async_trait::async_trait;

use super::expr::{Cond, Update};
use super::schema::TableDef;
use super::value::Item;
use super::{Key, Page, Query, Scan, StoreError, Table, TxOp};

/// A table this process was built without; see the module docs.
pub struct UnconfiguredTable(pub &'static TableDef);

impl UnconfiguredTable {
    fn refuse<T>(&self) -> Result<T, StoreError> {
        Err(StoreError::Unavailable(format!(
            "this function has no access to the {} table",
            self.0.default_name
        )))
    }
}

#[async_trait]
impl Table for UnconfiguredTable {
    fn def(&self) -> &'static TableDef {
        self.0
    }
    async fn get(&self, _: &Key) -> Result<Option<Item>, StoreError> {
        self.refuse()
    }
    async fn get_many(&self, _: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        self.refuse()
    }
    async fn put(&self, _: Item, _: Option<Cond>) -> Result<(), StoreError> {
        self.refuse()
    }
    async fn update(&self, _: &Key, _: Update, _: Option<Cond>) -> Result<Item, StoreError> {
        self.refuse()
    }
    async fn delete(&self, _: &Key, _: Option<Cond>) -> Result<Option<Item>, StoreError> {
        self.refuse()
    }
    async fn query(&self, _: Query) -> Result<Page, StoreError> {
        self.refuse()
    }
    async fn scan(&self, _: Scan) -> Result<Page, StoreError> {
        self.refuse()
    }
    async fn transact(&self, _: Vec<TxOp>) -> Result<(), StoreError> {
        self.refuse()
    }
}
