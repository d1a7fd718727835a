//! Marketing offers (global or targeted to one user, listed while active and unexpired) and the FAQ.
//! Both keep the original's integer ids (an atomic counter item).

pub mod faq;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::ClockRef;
use crate::domain::{FieldError, InvalidInput, Username};
use crate::store::{
    Cond, Query, SkCond, StoreError, TableRef, Update, from_item, get_n, keys, query_all,
    schema::GSI1, to_item,
};

/// Sort key on the offers index: expiry first, so a range query skips expired offers.
fn offer_gsi_sk(valid_until: i64, id: i64) -> String {
    format!("{valid_until:012}#{id:010}")
}

/// An offer as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Offer {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub image_url: Option<String>,
    /// ISO-8601 UTC with milliseconds, as the original.
    pub valid_until: String,
    pub is_active: bool,
}

/// `OFFER#{id}` / `OFFER`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct OfferRecord {
    pk: String,
    sk: String,
    id: i64,
    /// Target user; `None` = everyone.
    username: Option<String>,
    title: String,
    description: String,
    image_url: Option<String>,
    /// Epoch seconds.
    valid_until: i64,
    is_active: bool,
    created_at: i64,
    gsi1pk: String,
    gsi1sk: String,
}

impl OfferRecord {
    fn view(&self) -> Offer {
        let valid_until = DateTime::<Utc>::from_timestamp(self.valid_until, 0)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
            .unwrap_or_default();
        Offer {
            id: self.id,
            title: self.title.clone(),
            description: self.description.clone(),
            image_url: self.image_url.clone(),
            valid_until,
            is_active: self.is_active,
        }
    }
}

/// `POST /marketing-offer` body.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct NewOffer {
    pub title: Option<String>,
    pub description: Option<String>,
    pub image_url: Option<String>,
    /// `YYYY-MM-DD` (the end of that day, UTC) or an RFC 3339 date-time.
    pub valid_until: Option<String>,
    /// Target user; absent = every user.
    pub username: Option<String>,
    pub is_active: Option<bool>,
}

/// Checks a required text field's length.
pub(crate) fn text(
    errors: &mut Vec<FieldError>,
    field: &str,
    v: Option<&str>,
    max: usize,
) -> String {
    let s = v.map(str::trim).unwrap_or_default();
    if s.is_empty() || s.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be 1-{max} characters"),
        ));
    }
    s.to_owned()
}

fn parse_valid_until(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return d.and_hms_opt(23, 59, 59).map(|t| t.and_utc().timestamp());
    }
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.timestamp())
}

fn valid_image_url(u: &str) -> bool {
    u.len() <= 500
        && !u.chars().any(|c| c.is_whitespace() || c.is_control())
        && (u.starts_with("https://")
            || u.starts_with("http://")
            || (u.starts_with('/') && !u.starts_with("//")))
}

/// Why a marketing change or read failed.
#[derive(Debug, thiserror::Error)]
pub enum MarketingError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error("FAQ not found")]
    FaqNotFound,
    /// A counter item without its value.
    #[error("id counter is malformed")]
    BadCounter,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Offers and FAQ: the main table and the clock.
#[derive(Clone)]
pub struct Marketing {
    table: TableRef,
    clock: ClockRef,
}

impl Marketing {
    pub fn new(table: TableRef, clock: ClockRef) -> Self {
        Marketing { table, clock }
    }

    /// Hands out the next integer id of a counter.
    pub async fn next_id(&self, name: &str) -> Result<i64, MarketingError> {
        let item = self
            .table
            .update(&keys::counter(name), Update::new().add("value", 1), None)
            .await?;
        get_n(&item, "value").ok_or(MarketingError::BadCounter)
    }

    /// Creates an offer after validating every field (the expiry must lie in the future and a target
    /// user must exist).
    pub async fn create(&self, req: &NewOffer) -> Result<Offer, MarketingError> {
        let mut errors = Vec::new();
        let title = text(&mut errors, "title", req.title.as_deref(), 150);
        let description = text(&mut errors, "description", req.description.as_deref(), 2000);
        let image_url = req
            .image_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned);
        if image_url.as_deref().is_some_and(|u| !valid_image_url(u)) {
            errors.push(FieldError::new(
                "image_url",
                "must be an http(s) URL or an absolute path",
            ));
        }
        let now = self.clock.epoch();
        let valid_until = match req.valid_until.as_deref().map(parse_valid_until) {
            Some(Some(t)) if t > now => Some(t),
            Some(Some(_)) => {
                errors.push(FieldError::new("valid_until", "must be in the future"));
                None
            }
            _ => {
                errors.push(FieldError::new(
                    "valid_until",
                    "must be a date (YYYY-MM-DD) or an ISO-8601 date-time",
                ));
                None
            }
        };
        let username = match req
            .username
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            None => None,
            Some(u) => match crate::domain::Username::parse(u) {
                Ok(u) if self.table.get(&keys::info(u.as_str())).await?.is_some() => {
                    Some(u.as_str().to_owned())
                }
                _ => {
                    errors.push(FieldError::new("username", "no such user"));
                    None
                }
            },
        };
        let Some(valid_until) = valid_until.filter(|_| errors.is_empty()) else {
            return Err(InvalidInput::Fields(errors).into());
        };
        let id = self.next_id("OFFER").await?;
        let key = keys::offer(&id.to_string());
        let rec = OfferRecord {
            pk: key.pk,
            sk: key.sk,
            id,
            username,
            title,
            description,
            image_url,
            valid_until,
            is_active: req.is_active.unwrap_or(true),
            created_at: now,
            gsi1pk: keys::OFFERS_GSI_PK.into(),
            gsi1sk: offer_gsi_sk(valid_until, id),
        };
        self.table
            .put(to_item(&rec)?, Some(Cond::item_absent()))
            .await?;
        Ok(rec.view())
    }

    /// Active, unexpired offers for everyone or for this user, soonest-expiring first.
    pub async fn list_for(&self, username: &Username) -> Result<Vec<Offer>, MarketingError> {
        let now = self.clock.epoch();
        // Every sort key of an offer expiring at or before `now` sorts below `{now}#~`.
        let q = Query::index(GSI1, keys::OFFERS_GSI_PK).sk(SkCond::Gt(format!("{now:012}#~")));
        let items = query_all(self.table.as_ref(), q).await?;
        let mut out = Vec::new();
        for item in &items {
            let rec: OfferRecord = from_item(item)?;
            let for_me = rec
                .username
                .as_deref()
                .is_none_or(|u| u == username.as_str());
            if rec.is_active && rec.valid_until > now && for_me {
                out.push(rec.view());
            }
        }
        Ok(out)
    }
}
