//! Bounded, resumable walks over one partition of a GSI, for scheduled jobs that must finish
//! within their time budget however large the partition grows: each run handles a bounded number
//! of items after the position the last run stopped at (kept as `WALK#{name}` / `POSITION`), and
//! starts over from the beginning once it reached the end — so every item is visited in turn.

use super::{Key, Query, SkCond, StoreError, Table, get_s};
use crate::store::Item;

/// A walk's position.
#[derive(Debug, Clone)]
pub struct Walk {
    key: Key,
    index: &'static str,
    sk_attr: &'static str,
    pk: String,
    after: Option<String>,
    reached_end: bool,
}

impl Walk {
    /// Resumes the walk `name` over partition `pk` of `index` (whose sort-key attribute is
    /// `sk_attr`) where the previous run stopped.
    pub async fn resume(
        table: &dyn Table,
        name: &str,
        index: &'static str,
        sk_attr: &'static str,
        pk: &str,
    ) -> Result<Walk, StoreError> {
        let key = Key::new(format!("WALK#{name}"), "POSITION");
        let after = table
            .get(&key)
            .await?
            .and_then(|i| get_s(&i, "after").map(str::to_owned));
        Ok(Walk {
            key,
            index,
            sk_attr,
            pk: pk.to_owned(),
            after,
            reached_end: false,
        })
    }

    /// Up to `n` items after the position (empty once the end was reached).
    pub async fn next(&mut self, table: &dyn Table, n: usize) -> Result<Vec<Item>, StoreError> {
        if self.reached_end || n == 0 {
            return Ok(Vec::new());
        }
        let mut q = Query::index(self.index, self.pk.clone()).limit(n);
        if let Some(after) = &self.after {
            q = q.sk(SkCond::Gt(after.clone()));
        }
        let page = table.query(q).await?;
        if page.cursor.is_none() || page.items.len() < n {
            self.reached_end = true;
        }
        Ok(page.items)
    }

    /// Records that `item` was handled: the next run continues after it.
    pub fn handled(&mut self, item: &Item) {
        if let Some(sk) = get_s(item, self.sk_attr) {
            self.after = Some(sk.to_owned());
        }
    }

    /// Whether this run saw the partition's last item.
    pub fn reached_end(&self) -> bool {
        self.reached_end
    }

    /// Stores the position for the next run: after the last handled item, or the beginning when
    /// this run went through to the end.
    pub async fn save(&self, table: &dyn Table, handled_all: bool) -> Result<(), StoreError> {
        if self.reached_end && handled_all {
            table.delete(&self.key, None).await?;
            return Ok(());
        }
        match &self.after {
            Some(after) => {
                let mut item = self.key.item();
                item.insert("after".into(), after.as_str().into());
                table.put(item, None).await
            }
            None => Ok(()),
        }
    }
}
