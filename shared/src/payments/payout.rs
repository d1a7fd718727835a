//! Bank accounts and payouts (Xendit legacy disbursements). Account numbers are validated per bank
//! code and only ever shown or logged masked (last 4 digits).
//!
//! A payout holds the funds first — ONE transaction: wallet debit (`balance >= amount`) + ledger
//! DEBIT + the `PAYOUT#{id}` item — then submits to Xendit with `X-IDEMPOTENCY-KEY = payout id`.
//! A definitive refusal releases the hold (payout → FAILED + wallet credit + ledger CREDIT +
//! `IDEM#payout-release#{id}`, one transaction). An ambiguous failure (timeout, 5xx) keeps the
//! hold and the payout unsubmitted (no `xendit_id`); resubmitting with the same idempotency key is
//! safe, and the sync does it. The disbursement callback — or the sync, polling Xendit for PENDING
//! payouts in the sparse `PAYOUT_PENDING` index — completes the payout or releases the hold,
//! exactly once.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::xendit::{CreateDisbursement, XDisbursement, XenditError};
use crate::app::App;
use crate::audit::{self, LogKind};
use crate::domain::money::Money;
use crate::error::{ApiError, FieldError};
use crate::store::{
    Cond, Query, StoreError, TxOp, Update, from_item, keys, query_all, schema::GSI1, schema::GSI2,
    to_item,
};
use crate::wallet::{self, Change, EntryType, Idem, Outcome};

/// Shows only the last 4 digits.
pub fn mask(number: &str) -> String {
    let n = number.chars().count();
    let tail: String = number.chars().skip(n.saturating_sub(4)).collect();
    format!("{}{tail}", "*".repeat(n.saturating_sub(4)))
}

/// Account-number rules per bank code: (code, min digits, max digits).
const ACCOUNT_RULES: [(&str, usize, usize); 12] = [
    ("BCA", 10, 10),
    ("BNI", 10, 10),
    ("BRI", 15, 15),
    ("MANDIRI", 13, 13),
    ("PERMATA", 10, 16),
    ("BSI", 10, 10),
    ("CIMB", 12, 14),
    ("DANAMON", 10, 12),
    ("BTN", 10, 16),
    // E-wallets take the registered mobile number (08…).
    ("OVO", 10, 13),
    ("DANA", 10, 13),
    ("GOPAY", 10, 13),
];

/// Validates an account number for a bank code; answers the normalised (digits only) number.
pub fn validate_account(bank_code: &str, number: &str) -> Result<String, ApiError> {
    let code = bank_code.trim().to_uppercase();
    let Some((_, min, max)) = ACCOUNT_RULES.iter().find(|(c, _, _)| *c == code) else {
        return Err(ApiError::validation(vec![FieldError::new(
            "bank_code",
            "is not a supported bank",
        )]));
    };
    let digits: String = number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let ewallet = matches!(code.as_str(), "OVO" | "DANA" | "GOPAY");
    let ok = digits.chars().all(|c| c.is_ascii_digit())
        && (*min..=*max).contains(&digits.len())
        && (!ewallet || digits.starts_with("08"));
    if ok {
        Ok(digits)
    } else {
        let msg = if ewallet {
            format!("must be the {min}-{max} digit mobile number (08…) registered with {code}")
        } else if min == max {
            format!("must be {min} digits for {code}")
        } else {
            format!("must be {min}-{max} digits for {code}")
        };
        Err(ApiError::validation(vec![FieldError::new(
            "account_number",
            msg,
        )]))
    }
}

/// `USER#{u}/BANKACCT#{id}`. The full number is stored (it is needed to disburse) but never shown.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BankAccount {
    pub pk: String,
    pub sk: String,
    pub id: String,
    pub bank_code: String,
    pub account_number: String,
    pub account_holder_name: String,
    pub created_at: i64,
}

/// The client view of a bank account.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BankAccountView {
    pub id: String,
    pub bank_code: String,
    pub account_number: String,
    pub account_holder_name: String,
}

impl From<&BankAccount> for BankAccountView {
    fn from(a: &BankAccount) -> Self {
        BankAccountView {
            id: a.id.clone(),
            bank_code: a.bank_code.clone(),
            account_number: mask(&a.account_number),
            account_holder_name: a.account_holder_name.clone(),
        }
    }
}

/// Registers a bank account for a user.
pub async fn register_account(
    app: &App,
    username: &str,
    bank_code: &str,
    number: &str,
    holder: &str,
) -> Result<BankAccountView, ApiError> {
    let number = validate_account(bank_code, number)?;
    let holder = holder.trim();
    if holder.is_empty() || holder.chars().count() > 100 {
        return Err(ApiError::validation(vec![FieldError::new(
            "account_holder_name",
            "is required (at most 100 characters)",
        )]));
    }
    let existing = accounts(app, username).await?;
    if existing.len() >= 10 {
        return Err(ApiError::bad_request("At most 10 bank accounts"));
    }
    let code = bank_code.trim().to_uppercase();
    if existing
        .iter()
        .any(|a| a.bank_code == code && a.account_number == number)
    {
        return Err(ApiError::conflict("Bank account already registered"));
    }
    let id = format!("ba-{}", uuid::Uuid::new_v4().simple());
    let k = keys::bank_account(username, &id);
    let acct = BankAccount {
        pk: k.pk,
        sk: k.sk,
        id,
        bank_code: code,
        account_number: number,
        account_holder_name: holder.to_owned(),
        created_at: app.clock.epoch(),
    };
    app.main
        .put(to_item(&acct)?, Some(Cond::item_absent()))
        .await?;
    let view = BankAccountView::from(&acct);
    audit::record(
        app,
        LogKind::Audit,
        &format!("bankacct:{}", acct.id),
        Some(username),
        "bank_account_registered",
        serde_json::to_value(&view).unwrap_or_default(),
    )
    .await;
    Ok(view)
}

/// A user's bank accounts.
pub async fn accounts(app: &App, username: &str) -> Result<Vec<BankAccount>, ApiError> {
    let items = query_all(
        app.main.as_ref(),
        Query::pk(keys::user_pk(username)).prefix(keys::BANK_ACCOUNT_PREFIX),
    )
    .await?;
    Ok(items.iter().map(from_item).collect::<Result<_, _>>()?)
}

/// Payout status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PayoutStatus {
    Pending,
    Completed,
    Failed,
}

impl PayoutStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::Pending => "PENDING",
            PayoutStatus::Completed => "COMPLETED",
            PayoutStatus::Failed => "FAILED",
        }
    }
}

/// `PAYOUT#{id}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PayoutRecord {
    pub pk: String,
    pub sk: String,
    pub payout_id: String,
    pub username: String,
    pub amount: i64,
    pub bank_account_id: String,
    pub bank_code: String,
    pub account_number: String,
    pub account_holder_name: String,
    pub description: String,
    pub status: PayoutStatus,
    #[serde(default)]
    pub xendit_id: Option<String>,
    #[serde(default)]
    pub failure_code: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub gsi1pk: String,
    pub gsi1sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2sk: Option<String>,
}

/// The client view of a payout (masked account).
#[derive(Clone, Debug, Serialize)]
pub struct PayoutView {
    pub payout_id: String,
    pub amount: i64,
    pub bank_code: String,
    pub account_number: String,
    pub account_holder_name: String,
    pub description: String,
    pub status: PayoutStatus,
    pub failure_code: Option<String>,
    pub created_at: i64,
}

impl From<&PayoutRecord> for PayoutView {
    fn from(p: &PayoutRecord) -> Self {
        PayoutView {
            payout_id: p.payout_id.clone(),
            amount: p.amount,
            bank_code: p.bank_code.clone(),
            account_number: mask(&p.account_number),
            account_holder_name: p.account_holder_name.clone(),
            description: p.description.clone(),
            status: p.status,
            failure_code: p.failure_code.clone(),
            created_at: p.created_at,
        }
    }
}

/// Reads a payout.
pub async fn load(app: &App, id: &str) -> Result<Option<PayoutRecord>, StoreError> {
    crate::store::get_record(app.main.as_ref(), &keys::payout(id)).await
}

async fn log(app: &App, p: &PayoutRecord, event: &str) {
    let data = serde_json::json!({
        "payout_id": p.payout_id, "amount": p.amount, "status": p.status, "bank_code": p.bank_code,
        "account_number": mask(&p.account_number), "xendit_id": p.xendit_id, "failure_code": p.failure_code,
    });
    audit::record(
        app,
        LogKind::XenditPayout,
        &p.payout_id,
        Some(&p.username),
        event,
        data,
    )
    .await;
}

/// Requests a payout: hold the funds, then submit. With an idempotency key the payout id is
/// derived from it, so a repeated request answers the same payout and holds nothing more.
pub async fn request(
    app: &App,
    username: &str,
    bank_account_id: &str,
    amount: Money,
    description: String,
    idempotency_key: Option<&str>,
) -> Result<PayoutView, ApiError> {
    let payout_id = match idempotency_key {
        Some(k) => {
            let h = Sha256::digest(format!("{username}\n{k}").as_bytes());
            format!(
                "po-{}",
                &h.iter().map(|b| format!("{b:02x}")).collect::<String>()[..32]
            )
        }
        None => format!("po-{}", uuid::Uuid::now_v7().simple()),
    };
    if let Some(existing) = load(app, &payout_id).await? {
        return replay(existing, username, amount, bank_account_id);
    }
    let acct: BankAccount = match app
        .main
        .get(&keys::bank_account(username, bank_account_id))
        .await?
    {
        Some(i) => from_item(&i)?,
        None => return Err(ApiError::not_found("Bank Account Not Found")),
    };
    let now = app.clock.now();
    let k = keys::payout(&payout_id);
    let rec = PayoutRecord {
        pk: k.pk,
        sk: k.sk,
        payout_id: payout_id.clone(),
        username: username.to_owned(),
        amount: amount.rupiah(),
        bank_account_id: acct.id.clone(),
        bank_code: acct.bank_code.clone(),
        account_number: acct.account_number.clone(),
        account_holder_name: acct.account_holder_name.clone(),
        description: description.clone(),
        status: PayoutStatus::Pending,
        xendit_id: None,
        failure_code: None,
        created_at: now.timestamp(),
        updated_at: now.timestamp(),
        gsi1pk: keys::user_payouts_gsi(username),
        gsi1sk: format!("{:013}#{payout_id}", now.timestamp_millis()),
        gsi2pk: Some(keys::PENDING_PAYOUTS_GSI_PK.into()),
        gsi2sk: Some(format!("{:013}#{payout_id}", now.timestamp_millis())),
    };
    let change = Change {
        kind: EntryType::Debit,
        amount,
        description: format!(
            "Payout {payout_id} to {} {}",
            acct.bank_code,
            mask(&acct.account_number)
        ),
        reference_id: payout_id.clone(),
        funds: crate::wallet::Funds::Withdrawal,
    };
    let put = TxOp::Put {
        item: to_item(&rec)?,
        cond: Some(Cond::item_absent()),
    };
    match wallet::apply(app, username, &change, None, &[put]).await? {
        Outcome::Applied { .. } => {}
        Outcome::ExtraRefused(_) | Outcome::Replayed { .. } => {
            let existing = load(app, &payout_id)
                .await?
                .ok_or_else(ApiError::internal)?;
            return replay(existing, username, amount, bank_account_id);
        }
    }
    log(app, &rec, "requested").await;
    submit(app, rec).await
}

fn replay(
    p: PayoutRecord,
    username: &str,
    amount: Money,
    account: &str,
) -> Result<PayoutView, ApiError> {
    if p.username != username || p.amount != amount.rupiah() || p.bank_account_id != account {
        return Err(ApiError::unprocessable(
            "Idempotency-Key was used with a different request",
        ));
    }
    Ok(PayoutView::from(&p))
}

/// Submits a held payout to Xendit (safe to repeat: same idempotency key).
pub async fn submit(app: &App, rec: PayoutRecord) -> Result<PayoutView, ApiError> {
    let req = CreateDisbursement {
        external_id: rec.payout_id.clone(),
        bank_code: rec.bank_code.clone(),
        account_holder_name: rec.account_holder_name.clone(),
        account_number: rec.account_number.clone(),
        description: rec.description.clone(),
        amount: rec.amount,
    };
    let found: Result<XDisbursement, XenditError> =
        match app.xendit.create_disbursement(&req, &rec.payout_id).await {
            Err(XenditError::Rejected { code, .. }) if code == "DUPLICATE_TRANSACTION_ERROR" => {
                match app
                    .xendit
                    .disbursements_by_external_id(&rec.payout_id)
                    .await
                {
                    Ok(list) => list
                        .into_iter()
                        .next()
                        .ok_or(XenditError::Unavailable("duplicate without a match".into())),
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
    match found {
        Ok(d) => {
            let update = Update::new()
                .set("xendit_id", d.id.as_str())
                .set("updated_at", app.clock.epoch());
            match app
                .main
                .update(
                    &keys::payout(&rec.payout_id),
                    update,
                    Some(Cond::item_exists()),
                )
                .await
            {
                Ok(item) => {
                    let p: PayoutRecord = from_item(&item)?;
                    log(app, &p, "submitted").await;
                    Ok(PayoutView::from(&p))
                }
                Err(e) => Err(e.into()),
            }
        }
        Err(XenditError::Rejected { code, message, .. }) => {
            let reason = if code.is_empty() {
                "REJECTED".to_owned()
            } else {
                code
            };
            release(app, &rec, &reason).await?;
            tracing::info!(
                payout_id = rec.payout_id,
                reason,
                "payout refused by xendit"
            );
            Err(ApiError::bad_request(if message.is_empty() {
                "Payout Rejected".into()
            } else {
                message
            }))
        }
        Err(e) => {
            // Ambiguous: the hold stays and the payout stays unsubmitted for the sync to resubmit.
            log(app, &rec, "submit_unconfirmed").await;
            Err(e.into())
        }
    }
}

/// Releases a PENDING payout's hold: payout → FAILED + credit back, exactly once.
pub async fn release(app: &App, rec: &PayoutRecord, failure_code: &str) -> Result<bool, ApiError> {
    let op = TxOp::Update {
        key: keys::payout(&rec.payout_id),
        update: Update::new()
            .set("status", PayoutStatus::Failed.as_str())
            .set("failure_code", failure_code)
            .set("updated_at", app.clock.epoch())
            .remove("gsi2pk")
            .remove("gsi2sk"),
        cond: Some(Cond::eq("status", PayoutStatus::Pending.as_str())),
    };
    let change = Change {
        kind: EntryType::Credit,
        amount: Money::from_rupiah(rec.amount),
        description: format!("Payout {} failed: funds released", rec.payout_id),
        reference_id: rec.payout_id.clone(),
        funds: crate::wallet::Funds::Cash,
    };
    let idem = Idem {
        scope: "payout-release".into(),
        key: rec.payout_id.clone(),
        fingerprint: rec.payout_id.clone(),
    };
    let released = matches!(
        wallet::apply(app, &rec.username, &change, Some(&idem), &[op]).await?,
        Outcome::Applied { .. }
    );
    if released {
        let mut failed = rec.clone();
        failed.status = PayoutStatus::Failed;
        failed.failure_code = Some(failure_code.to_owned());
        log(app, &failed, "released").await;
    }
    Ok(released)
}

/// The disbursement callback body (integrations.md §4.3).
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
pub struct DisbursementCallback {
    pub id: String,
    pub external_id: String,
    pub status: String,
    #[serde(deserialize_with = "super::xendit::de_amount")]
    pub amount: i64,
    #[serde(default)]
    pub failure_code: Option<String>,
}

/// Applies a disbursement callback: COMPLETED or FAILED (hold released), each exactly once.
pub async fn on_callback(app: &App, body: DisbursementCallback) -> Result<&'static str, ApiError> {
    let Some(rec) = load(app, &body.external_id).await? else {
        audit::record(
            app,
            LogKind::XenditPayout,
            &body.external_id,
            None,
            "callback_unknown_payout",
            serde_json::json!({ "xendit_id": body.id }),
        )
        .await;
        return Err(ApiError::not_found("Payout Not Found"));
    };
    log(app, &rec, "callback_received").await;
    if body.amount != rec.amount || rec.xendit_id.as_deref().is_some_and(|x| x != body.id) {
        log(app, &rec, "callback_refused_mismatch").await;
        return Err(ApiError::bad_request("Payout Mismatch"));
    }
    match body.status.as_str() {
        "COMPLETED" => Ok(if complete(app, &rec, &body.id).await? {
            "Payout Completed"
        } else {
            "Already Processed"
        }),
        "FAILED" => {
            let code = body.failure_code.unwrap_or_else(|| "FAILED".into());
            Ok(if release(app, &rec, &code).await? {
                "Payout Failed"
            } else {
                "Already Processed"
            })
        }
        _ => Err(ApiError::validation(vec![FieldError::new(
            "status",
            "must be COMPLETED or FAILED",
        )])),
    }
}

/// Marks a PENDING payout COMPLETED (the funds stay debited), exactly once.
pub async fn complete(app: &App, rec: &PayoutRecord, xendit_id: &str) -> Result<bool, ApiError> {
    let update = Update::new()
        .set("status", PayoutStatus::Completed.as_str())
        .set("xendit_id", xendit_id)
        .set("updated_at", app.clock.epoch())
        .remove("gsi2pk")
        .remove("gsi2sk");
    let cond = Cond::eq("status", PayoutStatus::Pending.as_str());
    match app
        .main
        .update(&keys::payout(&rec.payout_id), update, Some(cond))
        .await
    {
        Ok(_) => {
            let mut done = rec.clone();
            done.status = PayoutStatus::Completed;
            done.xendit_id = Some(xendit_id.to_owned());
            log(app, &done, "completed").await;
            Ok(true)
        }
        Err(StoreError::ConditionFailed) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A page of the user's payouts, newest first.
pub async fn list_own(
    app: &App,
    username: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<PayoutView>, Option<String>), ApiError> {
    let page = app
        .main
        .query(
            Query::index(GSI1, keys::user_payouts_gsi(username))
                .descending()
                .limit(limit)
                .after(cursor),
        )
        .await?;
    let items = page
        .items
        .iter()
        .map(|i| from_item::<PayoutRecord>(i).map(|p| PayoutView::from(&p)))
        .collect::<Result<_, _>>()?;
    Ok((items, page.cursor))
}

/// What the sync did to pending payouts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PayoutSync {
    /// Unconfirmed submissions now confirmed at Xendit.
    pub submitted: usize,
    pub completed: usize,
    /// Failed at Xendit (or refused on resubmission): hold released.
    pub released: usize,
    pub errors: usize,
    /// Some were left for the next run (the budget ran out).
    pub deferred: bool,
}

/// Reconciles PENDING payouts (run by the sync): resubmits unconfirmed ones with their idempotency
/// key, and settles submitted ones Xendit reports COMPLETED or FAILED (a lost callback). Nothing
/// new is started past `deadline`.
pub async fn reconcile_pending(
    app: &App,
    deadline: crate::clock::Deadline,
) -> Result<PayoutSync, ApiError> {
    let items = query_all(
        app.main.as_ref(),
        Query::index(GSI2, keys::PENDING_PAYOUTS_GSI_PK),
    )
    .await?;
    let mut out = PayoutSync::default();
    for i in &items {
        if deadline.passed() {
            out.deferred = true;
            break;
        }
        let rec: PayoutRecord = from_item(i)?;
        if rec.status != PayoutStatus::Pending {
            continue;
        }
        if rec.xendit_id.is_none() {
            match submit(app, rec).await {
                Ok(_) => out.submitted += 1,
                Err(e) if e.status.is_client_error() => out.released += 1,
                Err(_) => out.errors += 1,
            }
            continue;
        }
        let found = match app
            .xendit
            .disbursements_by_external_id(&rec.payout_id)
            .await
        {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(payout_id = rec.payout_id, error = %e, "sync: disbursement lookup failed");
                out.errors += 1;
                continue;
            }
        };
        let Some(d) = found
            .into_iter()
            .find(|d| Some(&d.id) == rec.xendit_id.as_ref())
        else {
            out.errors += 1;
            continue;
        };
        let changed = match d.status.as_str() {
            "COMPLETED" => complete(app, &rec, &d.id).await.map(|c| (c, true)),
            "FAILED" => release(app, &rec, d.failure_code.as_deref().unwrap_or("FAILED"))
                .await
                .map(|c| (c, false)),
            _ => Ok((false, false)),
        };
        match changed {
            Ok((true, true)) => out.completed += 1,
            Ok((true, false)) => out.released += 1,
            Ok(_) => {}
            Err(_) => out.errors += 1,
        }
    }
    Ok(out)
}
