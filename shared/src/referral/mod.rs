//! Referrals: a user who signs up with someone's referral code is recorded as a `pending`
//! referral of that referrer (`USER#{referrer}/REFERRAL#{ts}#{new}`, plus `USER#{new}/REFERRED_BY`
//! — one referrer per user) in the signup transaction. At the qualifying event
//! (`REFERRAL_QUALIFY_ON`: the referred user's first PAID invoice, or account verification) the
//! referral becomes `completed` and the referrer's bonus points are credited — in the same
//! transaction as that event, conditional on the referral still being `pending`, so exactly once.
//! Stats are computed from the referral items themselves, so they cannot drift from the history.

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::points;
use crate::store::{
    Cond, Key, Query, StoreError, TxOp, Update, from_item, keys, query_all, to_item,
};

/// Status of a referral.
pub const PENDING: &str = "pending";
/// Status of a referral whose bonus was credited.
pub const COMPLETED: &str = "completed";

/// A referral made by `submitted_by` (the referrer) of `username` (the referred user).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReferralRecord {
    pub pk: String,
    pub sk: String,
    pub username: String,
    pub submitted_by: String,
    pub referral_code: String,
    pub status: String,
    pub created_ms: i64,
    #[serde(default)]
    pub completed_ms: Option<i64>,
    /// Points the referrer earned for it (0 while pending).
    #[serde(default)]
    pub bonus_points: i64,
}

/// `USER#{u}/REFERRED_BY`: who referred the user, and where that referral item is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReferredBy {
    pub pk: String,
    pub sk: String,
    pub referrer: String,
    pub referral_code: String,
    pub referral_sk: String,
}

/// One line of `GET /referral/history`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ReferralView {
    pub username: String,
    pub referral_code: String,
    pub status: String,
    pub created_at: String,
}

/// `GET /referral/stats`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Stats {
    pub total_referrals: i64,
    pub completed_referrals: i64,
    pub pending_referrals: i64,
    pub total_earned_points: i64,
}

/// The puts recording that `new_user` signed up with `referrer`'s `code`, for the signup
/// transaction (both conditional on being new: one referrer per user).
pub fn signup_ops(
    new_user: &str,
    referrer: &str,
    code: &str,
    now_ms: i64,
) -> Result<Vec<TxOp>, StoreError> {
    let rk = keys::referral(referrer, now_ms, new_user);
    let rec = ReferralRecord {
        pk: rk.pk,
        sk: rk.sk.clone(),
        username: new_user.to_owned(),
        submitted_by: referrer.to_owned(),
        referral_code: code.to_owned(),
        status: PENDING.into(),
        created_ms: now_ms,
        completed_ms: None,
        bonus_points: 0,
    };
    let bk = keys::referred_by(new_user);
    let by = ReferredBy {
        pk: bk.pk,
        sk: bk.sk,
        referrer: referrer.to_owned(),
        referral_code: code.to_owned(),
        referral_sk: rk.sk,
    };
    Ok(vec![
        TxOp::Put {
            item: to_item(&rec)?,
            cond: Some(Cond::item_absent()),
        },
        TxOp::Put {
            item: to_item(&by)?,
            cond: Some(Cond::item_absent()),
        },
    ])
}

/// Who referred `username`, if anyone.
pub async fn referred_by(app: &App, username: &str) -> Result<Option<ReferredBy>, StoreError> {
    crate::store::get_record(app.main.as_ref(), &keys::referred_by(username)).await
}

/// The deletes of a (never verified) user's referral records, for the transaction removing it.
pub async fn removal_ops(app: &App, username: &str) -> Result<Vec<TxOp>, StoreError> {
    let Some(by) = referred_by(app, username).await? else {
        return Ok(Vec::new());
    };
    Ok(vec![
        TxOp::Delete {
            key: keys::referred_by(username),
            cond: None,
        },
        TxOp::Delete {
            key: Key::new(keys::user_pk(&by.referrer), by.referral_sk),
            cond: None,
        },
    ])
}

/// When `referred` has a pending referral: the operations completing it (status
/// pending → completed, conditional) and crediting the referrer's bonus, to be added to the
/// qualifying event's transaction. `reference` names the event (invoice id, "verification").
pub async fn completion_ops(
    app: &App,
    referred: &str,
    reference: &str,
) -> Result<Option<Vec<TxOp>>, StoreError> {
    let by = referred_by(app, referred).await?;
    completion_ops_for(app, referred, by, reference).await
}

/// [`completion_ops`] with the referred user's `REFERRED_BY` item already read (`None`: not
/// referred).
pub async fn completion_ops_for(
    app: &App,
    referred: &str,
    by: Option<ReferredBy>,
    reference: &str,
) -> Result<Option<Vec<TxOp>>, StoreError> {
    let Some(by) = by else {
        return Ok(None);
    };
    let rkey = Key::new(keys::user_pk(&by.referrer), by.referral_sk.clone());
    let Some(item) = app.main.get(&rkey).await? else {
        return Ok(None);
    };
    let rec: ReferralRecord = from_item(&item)?;
    if rec.status != PENDING {
        return Ok(None);
    }
    let bonus = app.config.points.referral_bonus;
    let now = app.clock.now();
    let mut ops = vec![TxOp::Update {
        key: rkey,
        update: Update::new()
            .set("status", COMPLETED)
            .set("completed_ms", now.timestamp_millis())
            .set("bonus_points", bonus)
            .set("completed_by", reference),
        cond: Some(Cond::eq("status", PENDING)),
    }];
    if bonus > 0 {
        ops.extend(points::credit_ops(
            app,
            &by.referrer,
            bonus,
            &format!("Referral bonus: {referred}"),
            referred,
        )?);
    }
    Ok(Some(ops))
}

/// Runs `ops` with the completion of `referred`'s pending referral (if any) in the same
/// transaction. When only the referral part is refused (completed meanwhile), `ops` run alone.
pub async fn transact_with_completion(
    app: &App,
    ops: Vec<TxOp>,
    referred: &str,
    reference: &str,
) -> Result<(), StoreError> {
    let Some(extra) = completion_ops(app, referred, reference).await? else {
        return app.main.transact(ops).await;
    };
    let base = ops.len();
    let mut all = ops.clone();
    all.extend(extra);
    match app.main.transact(all).await {
        Err(StoreError::TransactionCanceled { failed })
            if !failed.is_empty() && failed.iter().all(|i| *i >= base) =>
        {
            app.main.transact(ops).await
        }
        other => other,
    }
}

/// The referrals `username` made, newest first.
pub async fn records(app: &App, username: &str) -> Result<Vec<ReferralRecord>, StoreError> {
    let items = query_all(
        app.main.as_ref(),
        Query::pk(keys::user_pk(username))
            .prefix(keys::REFERRAL_PREFIX)
            .descending(),
    )
    .await?;
    items.iter().map(from_item).collect()
}

/// `GET /referral/history`.
pub async fn history(app: &App, username: &str) -> Result<Vec<ReferralView>, StoreError> {
    Ok(records(app, username)
        .await?
        .iter()
        .map(|r| ReferralView {
            username: r.username.clone(),
            referral_code: r.referral_code.clone(),
            status: r.status.clone(),
            created_at: points::iso(r.created_ms),
        })
        .collect())
}

/// `GET /referral/stats`, computed from the same items as the history.
pub async fn stats(app: &App, username: &str) -> Result<Stats, StoreError> {
    let mut s = Stats::default();
    for r in records(app, username).await? {
        s.total_referrals += 1;
        if r.status == COMPLETED {
            s.completed_referrals += 1;
            s.total_earned_points += r.bonus_points;
        } else {
            s.pending_referrals += 1;
        }
    }
    Ok(s)
}
