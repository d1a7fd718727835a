//! Referrals: a user who signs up with someone's referral code is recorded as a `pending`
//! referral of that referrer (`USER#{referrer}/REFERRAL#{ts}#{new}`, plus `USER#{new}/REFERRED_BY`
//! — one referrer per user) in the signup transaction. At the qualifying event
//! (`REFERRAL_QUALIFY_ON`: the referred user's first PAID invoice, or account verification) the
//! referral becomes `completed` and the referrer's bonus points are credited — in the same
//! transaction as that event, conditional on the referral still being `pending`, so exactly once.
//! Stats are computed from the referral items themselves, so they cannot drift from the history.
//!
//! Against farming: a payment qualifies only from `REFERRAL_MIN_PAYMENT` rupiah; a referrer is
//! rewarded for at most `REFERRAL_CAP` referrals per window (a conditional counter in the same
//! transaction); a referral between accounts that share a phone number or a device completes
//! without a bonus; and points redeem into bonus balance, which cannot be paid out (`wallet`).

//!
//! Built on [`crate::wallet`] (the referrer's points credit) and [`crate::devices`] (the device
//! part of the self-referral rule).

use serde::{Deserialize, Serialize};

use crate::clock::ClockRef;
use crate::devices::Devices;
use crate::domain::account::{UserInfo, Username};
use crate::domain::money::{Money, Points};
use crate::points;
use crate::store::{
    Cond, Key, Query, Steps, StoreError, TableRef, TxOp, Update, from_item, get_array, keys,
    query_all, to_item,
};
use crate::wallet::Wallets;

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
    /// How it completed: `rewarded`, `self_referral` or `capped` (no bonus for the last two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
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
    new_user: &Username,
    referrer: &str,
    code: &str,
    now_ms: i64,
) -> Result<Vec<TxOp>, StoreError> {
    let new_user = new_user.as_str();
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
        outcome: None,
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

/// The settings of [`Referrals`], copied out of the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReferralSettings {
    /// `REFERRAL_BONUS_POINTS`: points the referrer earns per completed referral.
    pub bonus: Points,
    /// `REFERRAL_CAP`: rewarded referrals per referrer per window…
    pub cap_max: i64,
    /// …of this many seconds.
    pub cap_window_secs: i64,
    /// `REFERRAL_QUALIFY_ON=first_payment`: a payment (rather than verification) qualifies.
    pub on_payment: bool,
    /// `REFERRAL_MIN_PAYMENT`: the smallest payment that qualifies.
    pub min_payment: Money,
}

/// The parts of a referral completion inside the qualifying event's transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferralStep {
    /// The referral item: pending → completed (fails when it completed meanwhile).
    Referral,
    /// The referrer's rewarded-referrals counter of the current window (fails at the cap).
    Cap,
    /// The referrer's points credit and its ledger entry.
    Bonus,
}

/// A pending referral that the qualifying event completes.
#[derive(Clone, Debug)]
pub struct Completion {
    key: Key,
    referrer: Username,
    referred: String,
    reference: String,
    /// Why no bonus is due at all (a self-referral), if so.
    unrewarded: Option<&'static str>,
}

impl Completion {
    /// Whether the referrer may be rewarded (before the cap is applied).
    pub fn rewardable(&self) -> bool {
        self.unrewarded.is_none()
    }
}

/// The referrals: records made at signup, completion at the qualifying event, history and stats.
/// Cheap to clone.
#[derive(Clone)]
pub struct Referrals {
    table: TableRef,
    clock: ClockRef,
    wallets: Wallets,
    devices: Devices,
    settings: ReferralSettings,
}

impl Referrals {
    /// The referrals on the main table.
    pub fn new(
        table: TableRef,
        clock: ClockRef,
        wallets: Wallets,
        devices: Devices,
        settings: ReferralSettings,
    ) -> Referrals {
        Referrals {
            table,
            clock,
            wallets,
            devices,
            settings,
        }
    }

    /// Whether a payment of `amount` completes the payer's pending referral
    /// (`REFERRAL_QUALIFY_ON=first_payment` and at least `REFERRAL_MIN_PAYMENT`).
    pub fn qualifies(&self, amount: Money) -> bool {
        self.settings.on_payment && amount >= self.settings.min_payment
    }

    /// Who referred `username`, if anyone.
    pub async fn referred_by(&self, username: &Username) -> Result<Option<ReferredBy>, StoreError> {
        crate::store::get_record(self.table.as_ref(), &keys::referred_by(username.as_str())).await
    }

    /// The deletes of a (never verified) user's referral records, for the transaction removing
    /// it.
    pub async fn removal_ops(&self, username: &Username) -> Result<Vec<TxOp>, StoreError> {
        let Some(by) = self.referred_by(username).await? else {
            return Ok(Vec::new());
        };
        Ok(vec![
            TxOp::Delete {
                key: keys::referred_by(username.as_str()),
                cond: None,
            },
            TxOp::Delete {
                key: Key::new(keys::user_pk(&by.referrer), by.referral_sk),
                cond: None,
            },
        ])
    }

    /// The operations completing the referral; with `rewarded`, also the cap counter and the
    /// referrer's bonus, else the referral completes with no bonus (`capped` or why not).
    pub fn steps(&self, c: &Completion, rewarded: bool) -> Result<Steps<ReferralStep>, StoreError> {
        let cfg = &self.settings;
        let rewarded = rewarded && c.unrewarded.is_none() && cfg.bonus > Points::ZERO;
        let bonus = if rewarded { cfg.bonus } else { Points::ZERO };
        let outcome = if rewarded {
            "rewarded"
        } else {
            c.unrewarded.unwrap_or("capped")
        };
        let now = self.clock.now();
        let mut steps = Steps::new();
        steps.push(
            ReferralStep::Referral,
            TxOp::Update {
                key: c.key.clone(),
                update: Update::new()
                    .set("status", COMPLETED)
                    .set("completed_ms", now.timestamp_millis())
                    .set("bonus_points", bonus.value())
                    .set("completed_by", c.reference.as_str())
                    .set("outcome", outcome),
                cond: Some(Cond::eq("status", PENDING)),
            },
        );
        if rewarded {
            let window = now.timestamp().div_euclid(cfg.cap_window_secs);
            steps.push(
                ReferralStep::Cap,
                TxOp::Update {
                    key: keys::referral_cap(c.referrer.as_str(), window),
                    update: Update::new()
                        .add("count", 1)
                        .set("ttl", (window + 1) * cfg.cap_window_secs),
                    cond: Some(Cond::NotExists("count".into()).or(Cond::lt("count", cfg.cap_max))),
                },
            );
            steps.extend(
                ReferralStep::Bonus,
                self.wallets.credit_points_ops(
                    &c.referrer,
                    bonus,
                    &format!("Referral bonus: {}", c.referred),
                    &c.referred,
                )?,
            );
        }
        Ok(steps)
    }

    /// When `referred` has a pending referral, the completion a qualifying event `reference`
    /// (invoice id, "verification") makes of it, with `by` (the referred user's `REFERRED_BY`
    /// item) already read (`None`: not referred).
    pub async fn pending_completion(
        &self,
        referred: &Username,
        by: Option<ReferredBy>,
        reference: &str,
    ) -> Result<Option<Completion>, StoreError> {
        let Some(by) = by else {
            return Ok(None);
        };
        let key = Key::new(keys::user_pk(&by.referrer), by.referral_sk.clone());
        let Some(item) = self.table.get(&key).await? else {
            return Ok(None);
        };
        let rec: ReferralRecord = from_item(&item)?;
        if rec.status != PENDING {
            return Ok(None);
        }
        let referrer = Username::from_stored(by.referrer.as_str());
        let unrewarded = self
            .is_self_referral(referred, &referrer)
            .await?
            .then_some("self_referral");
        Ok(Some(Completion {
            key,
            referrer,
            referred: referred.as_str().to_owned(),
            reference: reference.to_owned(),
            unrewarded,
        }))
    }

    /// True when the referred user and the referrer are plausibly one person: they gave the same
    /// phone number, one of them once held the other's number, or they registered the same
    /// device.
    pub async fn is_self_referral(
        &self,
        referred_user: &Username,
        referrer_user: &Username,
    ) -> Result<bool, StoreError> {
        let (referred, referrer) = (referred_user.as_str(), referrer_user.as_str());
        let [a, b] = get_array(
            self.table.as_ref(),
            &[keys::info(referred), keys::info(referrer)],
        )
        .await?;
        let phones = |item: Option<crate::store::Item>| -> Result<Vec<String>, StoreError> {
            let Some(item) = item else {
                return Ok(Vec::new());
            };
            let info: UserInfo = from_item(&item)?;
            Ok(info
                .phone_number
                .into_iter()
                .chain(info.unverified_phone)
                .collect())
        };
        let (mine, theirs) = (phones(a)?, phones(b)?);
        if mine.iter().any(|p| theirs.contains(p)) {
            return Ok(true);
        }
        let seen: Vec<Key> = mine
            .iter()
            .map(|p| keys::phone_seen(p, referrer))
            .chain(theirs.iter().map(|p| keys::phone_seen(p, referred)))
            .collect();
        if !seen.is_empty()
            && self
                .table
                .get_many(&seen)
                .await?
                .iter()
                .any(Option::is_some)
        {
            return Ok(true);
        }
        Ok(self
            .devices
            .shares_a_device(referred_user, referrer)
            .await?
            || self
                .devices
                .shares_a_device(referrer_user, referred)
                .await?)
    }

    /// Runs `ops` with the completion of `referred`'s pending referral (if any) in the same
    /// transaction. When the referrer reached the cap, the referral completes without a bonus;
    /// when only the referral part is refused (completed meanwhile), `ops` run alone.
    pub async fn transact_with_completion(
        &self,
        ops: Vec<TxOp>,
        referred: &Username,
        reference: &str,
    ) -> Result<(), StoreError> {
        let by = self.referred_by(referred).await?;
        let Some(completion) = self.pending_completion(referred, by, reference).await? else {
            return self.table.transact(ops).await;
        };
        let mut rewarded = completion.rewardable();
        for _ in 0..3 {
            let (extra, names) = self.steps(&completion, rewarded)?.split();
            let base = ops.len();
            let mut all = ops.clone();
            all.extend(extra);
            match self.table.transact(all).await {
                Err(StoreError::TransactionCanceled { failed })
                    if !failed.is_empty() && failed.iter().all(|i| *i >= base) =>
                {
                    let steps: Vec<ReferralStep> =
                        failed.iter().filter_map(|i| names.at(i - base)).collect();
                    if steps.contains(&ReferralStep::Referral) {
                        return self.table.transact(ops).await;
                    }
                    // Only the cap refused: complete it without a bonus.
                    rewarded = false;
                }
                other => return other,
            }
        }
        self.table.transact(ops).await
    }

    /// The referrals `username` made, newest first.
    pub async fn records(&self, username: &Username) -> Result<Vec<ReferralRecord>, StoreError> {
        let items = query_all(
            self.table.as_ref(),
            Query::pk(keys::user_pk(username.as_str()))
                .prefix(keys::REFERRAL_PREFIX)
                .descending(),
        )
        .await?;
        items.iter().map(from_item).collect()
    }

    /// `GET /referral/history`.
    pub async fn history(&self, username: &Username) -> Result<Vec<ReferralView>, StoreError> {
        Ok(self
            .records(username)
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
    pub async fn stats(&self, username: &Username) -> Result<Stats, StoreError> {
        let mut s = Stats::default();
        for r in self.records(username).await? {
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
}
