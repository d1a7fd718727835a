//! The DynamoDB adapter (aws-sdk-dynamodb). Renders the port's typed conditions and updates into
//! expressions with placeholder names and values.

// PLACEHOLDER — being replaced by the full adapter (helper task). Keeps the crate compiling meanwhile.
use super::{Cond, Item, Key, Page, Query, StoreError, Table, TableDef, TxOp, Update};
use async_trait::async_trait;

/// A DynamoDB table.
#[derive(Clone)]
pub struct DynamoTable {
    client: aws_sdk_dynamodb::Client,
    def: &'static TableDef,
    name: std::sync::Arc<str>,
}

impl DynamoTable {
    /// A handle on table `name` shaped like `def`.
    pub fn new(client: aws_sdk_dynamodb::Client, def: &'static TableDef, name: &str) -> Self {
        DynamoTable { client, def, name: std::sync::Arc::from(name) }
    }
}

#[async_trait]
impl Table for DynamoTable {
    fn def(&self) -> &'static TableDef {
        self.def
    }
    async fn get(&self, _key: &Key) -> Result<Option<Item>, StoreError> {
        let _ = (&self.client, &self.name);
        Err(StoreError::Unavailable("not implemented".into()))
    }
    async fn put(&self, _item: Item, _cond: Option<Cond>) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not implemented".into()))
    }
    async fn update(&self, _key: &Key, _u: Update, _cond: Option<Cond>) -> Result<Item, StoreError> {
        Err(StoreError::Unavailable("not implemented".into()))
    }
    async fn delete(&self, _key: &Key, _cond: Option<Cond>) -> Result<Option<Item>, StoreError> {
        Err(StoreError::Unavailable("not implemented".into()))
    }
    async fn query(&self, _q: Query) -> Result<Page, StoreError> {
        Err(StoreError::Unavailable("not implemented".into()))
    }
    async fn transact(&self, _ops: Vec<TxOp>) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not implemented".into()))
    }
}
