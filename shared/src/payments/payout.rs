//! Bank accounts and payouts (Xendit Payouts API, `POST /v2/payouts`). Account numbers are
//! validated per bank code and only ever shown or logged masked (last 4 digits).
//!
//! A payout holds the funds first — ONE transaction: wallet debit (`balance >= amount`) + ledger
//! DEBIT + the `PAYOUT#{id}` item — then submits to Xendit with `Idempotency-key = payout id`
//! (`reference_id` = payout id, `channel_code` = `ID_{bank code}`). A definitive refusal releases
//! the hold (payout → FAILED + wallet credit + ledger CREDIT + `IDEM#payout-release#{id}`, one
//! transaction). An ambiguous failure (timeout, 5xx) keeps the hold and the payout unsubmitted (no
//! `xendit_id`); resubmitting with the same idempotency key is safe, and the sync does it. The
//! payout webhook (`payout.succeeded` / `payout.failed` / `payout.reversed`) — or the sync, polling
//! Xendit for PENDING payouts in the sparse `PAYOUT_PENDING` index — completes the payout or
//! releases the hold, exactly once; a reversal after success gives the funds back through the same
//! idempotency record, so a payout is credited back at most once whatever arrives.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::xendit::{CreatePayout, PayoutDestination, XPayout, Xendit, XenditError};
use crate::audit::{Audit, LogKind};
use crate::clock::{ClockRef, Deadline};
use crate::domain::account::Username;
use crate::domain::money::Money;
use crate::store::{
    Cond, Query, StoreError, TableRef, TxOp, Update, from_item, keys, query_all, schema::GSI1,
    schema::GSI2, to_item,
};
use crate::wallet::{Change, EntryType, Funds, Idem, Outcome, WalletError, Wallets};

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

/// Most bank accounts one user may register.
const MAX_ACCOUNTS: usize = 10;

/// Why a bank account cannot be registered.
#[derive(Debug, thiserror::Error)]
pub enum BankAccountError {
    /// The bank code is not one we disburse to.
    #[error("unsupported bank")]
    UnsupportedBank,
    /// The number does not fit the bank's rule: `min..=max` digits (an e-wallet's registered
    /// mobile number, starting `08`, when `ewallet`).
    #[error("bad account number for {code}")]
    BadNumber {
        code: String,
        min: usize,
        max: usize,
        ewallet: bool,
    },
    /// The holder name is empty or longer than 100 characters.
    #[error("bad account holder name")]
    BadHolder,
    /// The user already has [`MAX_ACCOUNTS`] accounts.
    #[error("too many bank accounts")]
    TooMany,
    /// The same bank and number is registered already.
    #[error("bank account already registered")]
    Exists,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validates an account number for a bank code; answers the upper-case code and the normalised
/// (digits only) number.
pub fn validate_account(
    bank_code: &str,
    number: &str,
) -> Result<(String, String), BankAccountError> {
    let code = bank_code.trim().to_uppercase();
    let Some((_, min, max)) = ACCOUNT_RULES.iter().find(|(c, _, _)| *c == code) else {
        return Err(BankAccountError::UnsupportedBank);
    };
    let digits: String = number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let ewallet = matches!(code.as_str(), "OVO" | "DANA" | "GOPAY");
    let ok = digits.chars().all(|c| c.is_ascii_digit())
        && (*min..=*max).contains(&digits.len())
        && (!ewallet || digits.starts_with("08"));
    if ok {
        Ok((code, digits))
    } else {
        Err(BankAccountError::BadNumber {
            code,
            min: *min,
            max: *max,
            ewallet,
        })
    }
}

/// A bank account to register, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBankAccount {
    bank_code: String,
    number: String,
    holder: String,
}

impl NewBankAccount {
    /// Checks the number against the bank's rule and the holder name (1-100 characters).
    pub fn parse(
        bank_code: &str,
        number: &str,
        holder: &str,
    ) -> Result<NewBankAccount, BankAccountError> {
        let (bank_code, number) = validate_account(bank_code, number)?;
        let holder = holder.trim();
        if holder.is_empty() || holder.chars().count() > 100 {
            return Err(BankAccountError::BadHolder);
        }
        Ok(NewBankAccount {
            bank_code,
            number,
            holder: holder.to_owned(),
        })
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

/// Payout status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
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

/// A payout to request, checked.
#[derive(Clone, Debug)]
pub struct PayoutRequest {
    pub bank_account_id: String,
    pub amount: Money,
    pub description: String,
    /// With an idempotency key the payout id is derived from it.
    pub idempotency_key: Option<String>,
}

/// Why a payout request or callback was refused.
#[derive(Debug, thiserror::Error)]
pub enum PayoutError {
    /// The user has no bank account with that id.
    #[error("bank account not found")]
    UnknownBankAccount,
    /// The idempotency key was used for another payout.
    #[error("idempotency key reused with a different request")]
    KeyReuse,
    /// Xendit refused the disbursement (the hold was released); its message, if any.
    #[error("payout rejected: {message}")]
    Rejected { message: String },
    /// The payout vanished between its hold and the read back.
    #[error("payout vanished")]
    Vanished,
    #[error(transparent)]
    Xendit(#[from] XenditError),
    #[error(transparent)]
    Wallet(#[from] WalletError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PayoutError {
    /// Whether the request was refused (rather than failing on our or the provider's side): the
    /// sync counts a refused resubmission as released. These are the errors answered with a 4xx.
    pub fn is_refusal(&self) -> bool {
        let store = |s: &StoreError| matches!(s, StoreError::BadCursor);
        match self {
            PayoutError::UnknownBankAccount
            | PayoutError::KeyReuse
            | PayoutError::Rejected { .. }
            | PayoutError::Xendit(XenditError::NotFound | XenditError::Rejected { .. }) => true,
            PayoutError::Wallet(w) => match w {
                WalletError::Insufficient
                | WalletError::InsufficientWithdrawable
                | WalletError::InsufficientPoints
                | WalletError::KeyReuse => true,
                WalletError::Store(s) => store(s),
                WalletError::Contended => false,
            },
            PayoutError::Store(s) => store(s),
            PayoutError::Vanished | PayoutError::Xendit(_) => false,
        }
    }
}

/// The payout webhook body (integrations.md §4.4, docs "Payout Webhook"): an event envelope
/// around the payout.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
pub struct PayoutWebhook {
    /// `payout.succeeded`, `payout.failed`, `payout.reversed`, ...
    pub event: String,
    #[serde(default)]
    pub business_id: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    pub data: XPayout,
}

/// What a payout webhook did. Every outcome answers 200 (Xendit stops retrying); the ones that
/// change nothing leave an audit entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayoutCallbackOutcome {
    /// The payout succeeded.
    Completed,
    /// The payout failed: its hold was released.
    Failed,
    /// The payout was reversed after it succeeded: the funds were given back.
    Reversed,
    /// Already in that state: nothing changed.
    AlreadyProcessed,
    /// A status on the way (ACCEPTED, REQUESTED, ...): nothing to do yet.
    InFlight,
    /// No payout of ours has that `reference_id` (audit `callback_unknown_payout`).
    Unknown,
    /// The amount or Xendit id is not the payout's (audit `callback_refused_mismatch`).
    Mismatch,
}

/// What Xendit reports about a payout, in terms of our funds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reported {
    /// SUCCEEDED: the money left.
    Succeeded,
    /// FAILED, CANCELLED, COMPLIANCE_REJECTED, EXPIRED: it never left (the failure code).
    Failed(String),
    /// REVERSED: it left, then came back to our Xendit balance.
    Reversed,
    /// Anything else: still on its way.
    InFlight,
}

/// The meaning of a Payouts API status (docs "Payout Status Lifecycle").
fn reported(x: &XPayout) -> Reported {
    match x.status.as_str() {
        "SUCCEEDED" => Reported::Succeeded,
        "FAILED" | "CANCELLED" | "COMPLIANCE_REJECTED" | "EXPIRED" => {
            Reported::Failed(x.failure_code.clone().unwrap_or_else(|| x.status.clone()))
        }
        "REVERSED" => Reported::Reversed,
        _ => Reported::InFlight,
    }
}

/// The Payouts API channel of a bank or e-wallet code (`BCA` → `ID_BCA`).
fn channel_code(bank_code: &str) -> String {
    format!("ID_{bank_code}")
}

/// What the sync did to pending payouts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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

/// The payout id: derived from the idempotency key when there is one, so a repeated request
/// answers the same payout (pure).
fn payout_id(username: &Username, key: Option<&str>) -> String {
    match key {
        Some(k) => {
            let h = Sha256::digest(format!("{}\n{k}", username.as_str()).as_bytes());
            format!(
                "po-{}",
                &h.iter().map(|b| format!("{b:02x}")).collect::<String>()[..32]
            )
        }
        None => format!("po-{}", uuid::Uuid::now_v7().simple()),
    }
}

/// The answer to a repeated request: the payout it made, unless the request differs.
fn replay(
    p: PayoutRecord,
    username: &Username,
    amount: Money,
    account: &str,
) -> Result<PayoutView, PayoutError> {
    if p.username != username.as_str()
        || p.amount != amount.rupiah()
        || p.bank_account_id != account
    {
        return Err(PayoutError::KeyReuse);
    }
    Ok(PayoutView::from(&p))
}

/// Bank accounts and payouts. Cheap to clone.
#[derive(Clone)]
pub struct Payouts {
    table: TableRef,
    clock: ClockRef,
    xendit: Xendit,
    wallets: Wallets,
    audit: Audit,
}

impl Payouts {
    /// The payouts on the main table.
    pub fn new(
        table: TableRef,
        clock: ClockRef,
        xendit: Xendit,
        wallets: Wallets,
        audit: Audit,
    ) -> Payouts {
        Payouts {
            table,
            clock,
            xendit,
            wallets,
            audit,
        }
    }

    /// Registers a bank account for a user (at most [`MAX_ACCOUNTS`], no duplicates).
    pub async fn register_account(
        &self,
        username: &Username,
        new: NewBankAccount,
    ) -> Result<BankAccountView, BankAccountError> {
        let existing = self.accounts(username).await?;
        if existing.len() >= MAX_ACCOUNTS {
            return Err(BankAccountError::TooMany);
        }
        if existing
            .iter()
            .any(|a| a.bank_code == new.bank_code && a.account_number == new.number)
        {
            return Err(BankAccountError::Exists);
        }
        let id = format!("ba-{}", uuid::Uuid::new_v4().simple());
        let k = keys::bank_account(username.as_str(), &id);
        let acct = BankAccount {
            pk: k.pk,
            sk: k.sk,
            id,
            bank_code: new.bank_code,
            account_number: new.number,
            account_holder_name: new.holder,
            created_at: self.clock.epoch(),
        };
        self.table
            .put(to_item(&acct)?, Some(Cond::item_absent()))
            .await?;
        let view = BankAccountView::from(&acct);
        self.audit
            .record(
                LogKind::Audit,
                &format!("bankacct:{}", acct.id),
                Some(username.as_str()),
                "bank_account_registered",
                serde_json::to_value(&view).unwrap_or_default(),
            )
            .await;
        Ok(view)
    }

    /// A user's bank accounts.
    pub async fn accounts(&self, username: &Username) -> Result<Vec<BankAccount>, StoreError> {
        let items = query_all(
            self.table.as_ref(),
            Query::pk(keys::user_pk(username.as_str())).prefix(keys::BANK_ACCOUNT_PREFIX),
        )
        .await?;
        items.iter().map(from_item).collect()
    }

    /// Reads a payout.
    pub async fn load(&self, id: &str) -> Result<Option<PayoutRecord>, StoreError> {
        crate::store::get_record(self.table.as_ref(), &keys::payout(id)).await
    }

    async fn log(&self, p: &PayoutRecord, event: &str) {
        let data = serde_json::json!({
            "payout_id": p.payout_id, "amount": p.amount, "status": p.status, "bank_code": p.bank_code,
            "account_number": mask(&p.account_number), "xendit_id": p.xendit_id, "failure_code": p.failure_code,
        });
        self.audit
            .record(
                LogKind::XenditPayout,
                &p.payout_id,
                Some(&p.username),
                event,
                data,
            )
            .await;
    }

    /// The stored form of a new, pending payout from `acct` (pure but for the clock).
    fn pending_record(
        &self,
        username: &Username,
        payout_id: &str,
        acct: &BankAccount,
        req: &PayoutRequest,
    ) -> PayoutRecord {
        let now = self.clock.now();
        let k = keys::payout(payout_id);
        let order = format!("{:013}#{payout_id}", now.timestamp_millis());
        PayoutRecord {
            pk: k.pk,
            sk: k.sk,
            payout_id: payout_id.to_owned(),
            username: username.as_str().to_owned(),
            amount: req.amount.rupiah(),
            bank_account_id: acct.id.clone(),
            bank_code: acct.bank_code.clone(),
            account_number: acct.account_number.clone(),
            account_holder_name: acct.account_holder_name.clone(),
            description: req.description.clone(),
            status: PayoutStatus::Pending,
            xendit_id: None,
            failure_code: None,
            created_at: now.timestamp(),
            updated_at: now.timestamp(),
            gsi1pk: keys::user_payouts_gsi(username.as_str()),
            gsi1sk: order.clone(),
            gsi2pk: Some(keys::PENDING_PAYOUTS_GSI_PK.into()),
            gsi2sk: Some(order),
        }
    }

    /// Requests a payout: hold the funds, then submit. With an idempotency key the payout id is
    /// derived from it, so a repeated request answers the same payout and holds nothing more.
    pub async fn request(
        &self,
        username: &Username,
        req: PayoutRequest,
    ) -> Result<PayoutView, PayoutError> {
        let payout_id = payout_id(username, req.idempotency_key.as_deref());
        let account = req.bank_account_id.as_str();
        if let Some(existing) = self.load(&payout_id).await? {
            return replay(existing, username, req.amount, account);
        }
        let acct: BankAccount = match self
            .table
            .get(&keys::bank_account(username.as_str(), account))
            .await?
        {
            Some(i) => from_item(&i)?,
            None => return Err(PayoutError::UnknownBankAccount),
        };
        let rec = self.pending_record(username, &payout_id, &acct, &req);
        let change = Change {
            kind: EntryType::Debit,
            amount: req.amount,
            description: format!(
                "Payout {payout_id} to {} {}",
                acct.bank_code,
                mask(&acct.account_number)
            ),
            reference_id: payout_id.clone(),
            funds: Funds::Withdrawal,
        };
        let put = TxOp::Put {
            item: to_item(&rec)?,
            cond: Some(Cond::item_absent()),
        };
        match self.wallets.apply(username, &change, None, &[put]).await? {
            Outcome::Applied { .. } => {}
            Outcome::ExtraRefused(_) | Outcome::Replayed { .. } => {
                let existing = self.load(&payout_id).await?.ok_or(PayoutError::Vanished)?;
                return replay(existing, username, req.amount, account);
            }
        }
        self.log(&rec, "requested").await;
        self.submit(rec).await
    }

    /// Creates the payout at Xendit, or finds the one a previous submission with the same
    /// idempotency key created.
    async fn create_at_xendit(&self, rec: &PayoutRecord) -> Result<XPayout, XenditError> {
        let req = CreatePayout {
            reference_id: rec.payout_id.clone(),
            channel_code: channel_code(&rec.bank_code),
            channel_properties: PayoutDestination {
                account_number: rec.account_number.clone(),
                account_holder_name: rec.account_holder_name.clone(),
            },
            amount: rec.amount,
            currency: "IDR".into(),
            description: rec.description.clone(),
        };
        match self.xendit.create_payout(&req, &rec.payout_id).await {
            Err(XenditError::Rejected { status, code, .. })
                if code == "DUPLICATE_TRANSACTION_ERROR" || status == 409 =>
            {
                self.xendit
                    .payouts_by_reference(&rec.payout_id)
                    .await?
                    .into_iter()
                    .next()
                    .ok_or(XenditError::Unavailable("duplicate without a match".into()))
            }
            other => other,
        }
    }

    /// Submits a held payout to Xendit (safe to repeat: same idempotency key).
    pub async fn submit(&self, rec: PayoutRecord) -> Result<PayoutView, PayoutError> {
        match self.create_at_xendit(&rec).await {
            Ok(d) => {
                let update = Update::new()
                    .set("xendit_id", d.id.as_str())
                    .set("updated_at", self.clock.epoch());
                let item = self
                    .table
                    .update(
                        &keys::payout(&rec.payout_id),
                        update,
                        Some(Cond::item_exists()),
                    )
                    .await?;
                let p: PayoutRecord = from_item(&item)?;
                self.log(&p, "submitted").await;
                Ok(PayoutView::from(&p))
            }
            Err(XenditError::Rejected { code, message, .. }) => {
                let reason = if code.is_empty() {
                    "REJECTED".to_owned()
                } else {
                    code
                };
                self.release(&rec, &reason).await?;
                tracing::info!(
                    payout_id = rec.payout_id,
                    reason,
                    "payout refused by xendit"
                );
                Err(PayoutError::Rejected { message })
            }
            Err(e) => {
                // Ambiguous: the hold stays and the payout stays unsubmitted for the sync to
                // resubmit.
                self.log(&rec, "submit_unconfirmed").await;
                Err(e.into())
            }
        }
    }

    /// Releases a PENDING payout's hold: payout → FAILED + credit back, exactly once.
    pub async fn release(
        &self,
        rec: &PayoutRecord,
        failure_code: &str,
    ) -> Result<bool, PayoutError> {
        self.give_back(rec, failure_code, PayoutStatus::Pending)
            .await
    }

    /// Gives back the funds of a COMPLETED payout Xendit reversed: payout → FAILED (`REVERSED`)
    /// and the credit back, through the same idempotency record as a release, so a payout's funds
    /// come back at most once.
    pub async fn reverse(&self, rec: &PayoutRecord) -> Result<bool, PayoutError> {
        self.give_back(rec, "REVERSED", PayoutStatus::Completed)
            .await
    }

    /// Payout `from` → FAILED with `failure_code`, plus the credit back, in one transaction.
    async fn give_back(
        &self,
        rec: &PayoutRecord,
        failure_code: &str,
        from: PayoutStatus,
    ) -> Result<bool, PayoutError> {
        let op = TxOp::Update {
            key: keys::payout(&rec.payout_id),
            update: Update::new()
                .set("status", PayoutStatus::Failed.as_str())
                .set("failure_code", failure_code)
                .set("updated_at", self.clock.epoch())
                .remove("gsi2pk")
                .remove("gsi2sk"),
            cond: Some(Cond::eq("status", from.as_str())),
        };
        let change = Change {
            kind: EntryType::Credit,
            amount: Money::from_rupiah(rec.amount),
            description: match from {
                PayoutStatus::Completed => {
                    format!("Payout {} reversed: funds returned", rec.payout_id)
                }
                _ => format!("Payout {} failed: funds released", rec.payout_id),
            },
            reference_id: rec.payout_id.clone(),
            funds: Funds::Cash,
        };
        let idem = Idem {
            scope: "payout-release".into(),
            key: rec.payout_id.clone(),
            fingerprint: rec.payout_id.clone(),
        };
        let owner = Username::from_stored(rec.username.as_str());
        let released = matches!(
            self.wallets
                .apply(&owner, &change, Some(&idem), &[op])
                .await?,
            Outcome::Applied { .. }
        );
        if released {
            let mut failed = rec.clone();
            failed.status = PayoutStatus::Failed;
            failed.failure_code = Some(failure_code.to_owned());
            let event = if from == PayoutStatus::Completed {
                "reversed"
            } else {
                "released"
            };
            self.log(&failed, event).await;
        }
        Ok(released)
    }

    /// Applies a payout webhook: succeeded, failed (hold released) or reversed (funds given
    /// back), each exactly once. The payout's state is taken from `data.status`, whatever the
    /// event name.
    pub async fn on_callback(
        &self,
        body: PayoutWebhook,
    ) -> Result<PayoutCallbackOutcome, PayoutError> {
        let x = body.data;
        let Some(rec) = self.load(&x.reference_id).await? else {
            tracing::error!(
                reference_id = x.reference_id,
                "payout webhook for a payout we do not hold"
            );
            self.audit
                .record(
                    LogKind::XenditPayout,
                    &x.reference_id,
                    None,
                    "callback_unknown_payout",
                    serde_json::json!({ "xendit_id": x.id, "event": body.event }),
                )
                .await;
            return Ok(PayoutCallbackOutcome::Unknown);
        };
        self.log(&rec, "callback_received").await;
        if x.amount != rec.amount || rec.xendit_id.as_deref().is_some_and(|id| id != x.id) {
            self.log(&rec, "callback_refused_mismatch").await;
            return Ok(PayoutCallbackOutcome::Mismatch);
        }
        let outcome = |changed: bool, then: PayoutCallbackOutcome| {
            if changed {
                then
            } else {
                PayoutCallbackOutcome::AlreadyProcessed
            }
        };
        Ok(match reported(&x) {
            Reported::Succeeded => outcome(
                self.complete(&rec, &x.id).await?,
                PayoutCallbackOutcome::Completed,
            ),
            Reported::Failed(code) => outcome(
                self.release(&rec, &code).await?,
                PayoutCallbackOutcome::Failed,
            ),
            Reported::Reversed => {
                outcome(self.reverse(&rec).await?, PayoutCallbackOutcome::Reversed)
            }
            Reported::InFlight => PayoutCallbackOutcome::InFlight,
        })
    }

    /// Marks a PENDING payout COMPLETED (the funds stay debited), exactly once.
    pub async fn complete(&self, rec: &PayoutRecord, xendit_id: &str) -> Result<bool, StoreError> {
        let update = Update::new()
            .set("status", PayoutStatus::Completed.as_str())
            .set("xendit_id", xendit_id)
            .set("updated_at", self.clock.epoch())
            .remove("gsi2pk")
            .remove("gsi2sk");
        let cond = Cond::eq("status", PayoutStatus::Pending.as_str());
        match self
            .table
            .update(&keys::payout(&rec.payout_id), update, Some(cond))
            .await
        {
            Ok(_) => {
                let mut done = rec.clone();
                done.status = PayoutStatus::Completed;
                done.xendit_id = Some(xendit_id.to_owned());
                self.log(&done, "completed").await;
                Ok(true)
            }
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A page of the user's payouts, newest first.
    pub async fn list_own(
        &self,
        username: &Username,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<(Vec<PayoutView>, Option<String>), StoreError> {
        let page = self
            .table
            .query(
                Query::index(GSI1, keys::user_payouts_gsi(username.as_str()))
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

    /// Settles one submitted, PENDING payout as Xendit reports it: `Some(true)` completed,
    /// `Some(false)` released, `None` nothing changed (still on its way). A payout already
    /// reversed when the sync first sees it never completes here: its hold is released.
    async fn settle_reported(
        &self,
        rec: &PayoutRecord,
        x: &XPayout,
    ) -> Result<Option<bool>, PayoutError> {
        let changed = match reported(x) {
            Reported::Succeeded => self.complete(rec, &x.id).await?.then_some(true),
            Reported::Failed(code) => self.release(rec, &code).await?.then_some(false),
            Reported::Reversed => self.release(rec, "REVERSED").await?.then_some(false),
            Reported::InFlight => None,
        };
        Ok(changed)
    }

    /// Reconciles PENDING payouts (run by the sync): resubmits unconfirmed ones with their
    /// idempotency key, and settles submitted ones Xendit reports final (a lost webhook). Nothing new is started past `deadline`.
    pub async fn reconcile_pending(&self, deadline: Deadline) -> Result<PayoutSync, StoreError> {
        let items = query_all(
            self.table.as_ref(),
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
            let Some(xendit_id) = rec.xendit_id.clone() else {
                match self.submit(rec).await {
                    Ok(_) => out.submitted += 1,
                    Err(e) if e.is_refusal() => out.released += 1,
                    Err(_) => out.errors += 1,
                }
                continue;
            };
            let found = match self.xendit.payouts_by_reference(&rec.payout_id).await {
                Ok(list) => list,
                Err(e) => {
                    tracing::warn!(payout_id = rec.payout_id, error = %e, "sync: payout lookup failed");
                    out.errors += 1;
                    continue;
                }
            };
            let Some(d) = found.into_iter().find(|d| d.id == xendit_id) else {
                out.errors += 1;
                continue;
            };
            match self.settle_reported(&rec, &d).await {
                Ok(Some(true)) => out.completed += 1,
                Ok(Some(false)) => out.released += 1,
                Ok(None) => {}
                Err(_) => out.errors += 1,
            }
        }
        Ok(out)
    }
}
