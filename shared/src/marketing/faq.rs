//! FAQ entries: public list ordered by `order` then id, each with a category; managed with API keys.

use serde::{Deserialize, Serialize};

use super::{Marketing, MarketingError, text};
use crate::domain::{FieldError, InvalidInput};
use crate::store::{Cond, Query, StoreError, from_item, keys, query_all, schema::GSI1, to_item};

/// Largest `order` value (keeps the zero-padded sort key ordered).
const MAX_ORDER: i64 = 999_999;
const DEFAULT_CATEGORY: &str = "General";

/// A FAQ entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Faq {
    pub id: i64,
    pub question: String,
    pub answer: String,
    pub category: String,
    pub order: i64,
}

/// `FAQ#{id}` / `FAQ`, indexed under GSI1 `FAQS` by order then id.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct FaqRecord {
    pk: String,
    sk: String,
    #[serde(flatten)]
    faq: Faq,
    updated_at: i64,
    gsi1pk: String,
    gsi1sk: String,
}

/// Create or update body; on update, absent fields keep their value.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct FaqInput {
    pub question: Option<String>,
    pub answer: Option<String>,
    pub category: Option<String>,
    pub order: Option<i64>,
}

/// Merges input over a base entry and validates the result.
fn merge(id: i64, base: Option<&Faq>, input: &FaqInput) -> Result<Faq, MarketingError> {
    let mut errors = Vec::new();
    let pick = |new: &Option<String>, old: Option<&String>| new.clone().or_else(|| old.cloned());
    let question = text(
        &mut errors,
        "question",
        pick(&input.question, base.map(|b| &b.question)).as_deref(),
        300,
    );
    let answer = text(
        &mut errors,
        "answer",
        pick(&input.answer, base.map(|b| &b.answer)).as_deref(),
        5000,
    );
    let category =
        pick(&input.category, base.map(|b| &b.category)).unwrap_or_else(|| DEFAULT_CATEGORY.into());
    let category = text(&mut errors, "category", Some(&category), 50);
    let order = input.order.or(base.map(|b| b.order)).unwrap_or(0);
    if !(0..=MAX_ORDER).contains(&order) {
        errors.push(FieldError::new(
            "order",
            format!("must be between 0 and {MAX_ORDER}"),
        ));
    }
    if errors.is_empty() {
        Ok(Faq {
            id,
            question,
            answer,
            category,
            order,
        })
    } else {
        Err(InvalidInput::Fields(errors).into())
    }
}

impl Marketing {
    fn faq_record(&self, faq: Faq) -> FaqRecord {
        let key = keys::faq(&faq.id.to_string());
        let gsi1sk = format!("{:06}#{:010}", faq.order, faq.id);
        FaqRecord {
            pk: key.pk,
            sk: key.sk,
            faq,
            updated_at: self.clock.epoch(),
            gsi1pk: keys::FAQS_GSI_PK.into(),
            gsi1sk,
        }
    }

    /// Every entry, by `order` then id.
    pub async fn faq_list(&self) -> Result<Vec<Faq>, MarketingError> {
        let items = query_all(self.table.as_ref(), Query::index(GSI1, keys::FAQS_GSI_PK)).await?;
        items
            .iter()
            .map(|i| {
                from_item::<FaqRecord>(i)
                    .map(|r| r.faq)
                    .map_err(MarketingError::from)
            })
            .collect()
    }

    /// Adds an entry.
    pub async fn faq_create(&self, input: &FaqInput) -> Result<Faq, MarketingError> {
        let draft = merge(0, None, input)?;
        let id = self.next_id("FAQ").await?;
        let rec = self.faq_record(Faq { id, ..draft });
        self.table
            .put(to_item(&rec)?, Some(Cond::item_absent()))
            .await?;
        Ok(rec.faq)
    }

    /// Changes an entry (absent fields unchanged).
    pub async fn faq_update(&self, id: i64, input: &FaqInput) -> Result<Faq, MarketingError> {
        let item = self
            .table
            .get(&keys::faq(&id.to_string()))
            .await?
            .ok_or(MarketingError::FaqNotFound)?;
        let old: FaqRecord = from_item(&item)?;
        let rec = self.faq_record(merge(id, Some(&old.faq), input)?);
        match self
            .table
            .put(to_item(&rec)?, Some(Cond::item_exists()))
            .await
        {
            Ok(()) => Ok(rec.faq),
            Err(StoreError::ConditionFailed) => Err(MarketingError::FaqNotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes an entry.
    pub async fn faq_delete(&self, id: i64) -> Result<(), MarketingError> {
        match self
            .table
            .delete(&keys::faq(&id.to_string()), Some(Cond::item_exists()))
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::ConditionFailed) => Err(MarketingError::FaqNotFound),
            Err(e) => Err(e.into()),
        }
    }
}
