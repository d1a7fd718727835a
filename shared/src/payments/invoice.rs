//! Checkout invoices: creation (Xendit first, then one conditional put — never half-written),
//! settlement exactly once (status change + wallet credit + ledger + idempotency record in one
//! transaction, shared by the callback and the sync), expiry, cancellation and the views clients see.
//!
//! Built on `wallet`, `points` (the rate points are earned at) and `referral` (a payment may
//! complete the payer's referral); none of them knows of payments.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::xendit::{CreateInvoice, XInvoice, XStatus, Xendit, XenditError};
use crate::audit::{Audit, LogKind};
use crate::clock::ClockRef;
use crate::domain::account::Username;
use crate::domain::money::Money;
use crate::points::EarnRate;
use crate::referral::{Completion, ReferralStep, Referrals};
use crate::store::{
    AttrValue, Cond, Steps, StoreError, TableRef, TxOp, Update, from_item, get_s, keys, to_item,
};
use crate::wallet::{
    self, Change, EntryType, Funds, Idem, Outcome, PointsChange, WalletError, WalletRead, Wallets,
};
use crate::ws::PaymentStatus;

/// The largest invoice Xendit creates, in rupiah (its `amount` limit for IDR invoices).
pub const INVOICE_MAX_AMOUNT: i64 = 999_999_999;

/// How long a checkout may take to learn its Xendit id before the sync settles it: longer than
/// the create call can take (`XENDIT_TIMEOUT_MS`, at most 120 s, plus the client's rate-limit
/// retries of at most 2 × 10 s). An intent older than this with no Xendit id was left by a
/// create that failed ambiguously or a request that crashed.
pub const CREATE_GRACE: chrono::Duration = chrono::Duration::minutes(5);
/// How long an abandoned checkout intent is kept (so a very late callback for it still finds
/// its owner) before the table's TTL removes it.
const ABANDONED_KEEP: chrono::Duration = chrono::Duration::days(30);

/// Local invoice status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pending,
    Paid,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Paid => "PAID",
            Status::Expired => "EXPIRED",
        }
    }
}

/// `INVOICE#{id}`: one checkout. `gsi1` lists a user's invoices newest first; the sparse `gsi2`
/// holds it only while PENDING (read by the sync).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InvoiceRecord {
    pub pk: String,
    pub sk: String,
    /// Our id, sent to Xendit as `external_id`.
    pub invoice_id: String,
    pub username: String,
    pub amount: i64,
    pub currency: String,
    pub description: String,
    #[serde(default)]
    pub payment_method: Option<String>,
    #[serde(default)]
    pub ewallet_type: Option<String>,
    pub status: Status,
    pub xendit_id: String,
    pub invoice_url: String,
    pub expiry_date: String,
    #[serde(default)]
    pub paid_at: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub gsi1pk: String,
    pub gsi1sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2sk: Option<String>,
}

/// An invoice Xendit has just created for a user, before it is stored.
pub struct NewInvoice {
    pub invoice_id: String,
    pub username: String,
    pub amount: i64,
    pub currency: String,
    pub description: String,
    pub payment_method: Option<String>,
    pub ewallet_type: Option<String>,
    pub xendit_id: String,
    pub invoice_url: String,
    pub expiry_date: String,
}

impl InvoiceRecord {
    /// The stored form of a new, pending invoice: its key and its index entries (the user's
    /// invoices by creation time; the pending ones by expiry, for the sync) follow from its fields.
    pub fn pending(new: NewInvoice, now: chrono::DateTime<chrono::Utc>) -> InvoiceRecord {
        let key = keys::invoice(&new.invoice_id);
        InvoiceRecord {
            pk: key.pk,
            sk: key.sk,
            gsi1pk: keys::user_invoices_gsi(&new.username),
            gsi1sk: format!("{:013}#{}", now.timestamp_millis(), new.invoice_id),
            gsi2pk: Some(keys::PENDING_INVOICES_GSI_PK.into()),
            gsi2sk: Some(format!("{}#{}", new.expiry_date, new.invoice_id)),
            invoice_id: new.invoice_id,
            username: new.username,
            amount: new.amount,
            currency: new.currency,
            description: new.description,
            payment_method: new.payment_method,
            ewallet_type: new.ewallet_type,
            status: Status::Pending,
            xendit_id: new.xendit_id,
            invoice_url: new.invoice_url,
            expiry_date: new.expiry_date,
            paid_at: None,
            created_at: now.timestamp(),
            updated_at: now.timestamp(),
        }
    }

    /// The real-time event payload of this invoice.
    pub fn status_event(&self) -> PaymentStatus {
        PaymentStatus {
            invoice_id: self.invoice_id.clone(),
            status: self.status.as_str().into(),
            amount: self.amount,
            paid_at: self.paid_at.clone(),
        }
    }
}

/// What a checkout asks for.
#[derive(Clone, Debug)]
pub struct CheckoutRequest {
    pub amount: Money,
    pub description: String,
    pub payment_method: Option<String>,
    pub ewallet_type: Option<String>,
}

/// The checkout answer.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckoutResponse {
    pub invoice_id: String,
    pub external_id: String,
    /// Xendit's invoice id.
    pub id: String,
    pub invoice_url: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub expiry_date: String,
    pub description: String,
}

/// The public view of an invoice (no personal data).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublicInvoice {
    pub invoice_id: String,
    pub status: Status,
    pub amount: i64,
    pub currency: String,
    pub expiry_date: String,
    pub paid_at: Option<String>,
}

impl From<&InvoiceRecord> for PublicInvoice {
    fn from(r: &InvoiceRecord) -> Self {
        PublicInvoice {
            invoice_id: r.invoice_id.clone(),
            status: r.status,
            amount: r.amount,
            currency: r.currency.clone(),
            expiry_date: r.expiry_date.clone(),
            paid_at: r.paid_at.clone(),
        }
    }
}

/// The owner's view in listings.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OwnInvoice {
    pub invoice_id: String,
    pub external_id: String,
    pub xendit_id: String,
    pub status: Status,
    pub amount: i64,
    pub currency: String,
    pub description: String,
    pub payment_method: Option<String>,
    pub invoice_url: String,
    pub expiry_date: String,
    pub paid_at: Option<String>,
    pub created_at: i64,
}

impl From<&InvoiceRecord> for OwnInvoice {
    fn from(r: &InvoiceRecord) -> Self {
        OwnInvoice {
            invoice_id: r.invoice_id.clone(),
            external_id: r.invoice_id.clone(),
            xendit_id: r.xendit_id.clone(),
            status: r.status,
            amount: r.amount,
            currency: r.currency.clone(),
            description: r.description.clone(),
            payment_method: r.payment_method.clone(),
            invoice_url: r.invoice_url.clone(),
            expiry_date: r.expiry_date.clone(),
            paid_at: r.paid_at.clone(),
            created_at: r.created_at,
        }
    }
}

/// Where a payment's status change is announced in real time (the WebSocket push to the payer's
/// subscribed connections; [`crate::realtime::Realtime`] implements it). Best effort: failures
/// are the implementation's to log.
#[async_trait::async_trait]
pub trait StatusPush: Send + Sync + 'static {
    /// Tells `username`'s subscribers that an invoice changed status.
    async fn payment_status(&self, username: &str, status: &PaymentStatus);
}

/// Shared handle to the status push.
pub type StatusPushRef = std::sync::Arc<dyn StatusPush>;

/// The settings of [`Invoices`], copied out of the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvoiceSettings {
    /// `INVOICE_DURATION_SECS`: how long a checkout invoice stays payable.
    pub duration_secs: i64,
    /// `MAX_OPEN_INVOICES`: pending invoices one user may hold.
    pub max_open: i64,
}

/// Why a checkout was not made.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// The user holds `MAX_OPEN_INVOICES` pending invoices.
    #[error("too many open invoices")]
    TooManyOpen,
    /// Xendit answered for another invoice than the one asked for.
    #[error("xendit answered a different invoice")]
    ProviderMismatch,
    #[error(transparent)]
    Xendit(#[from] XenditError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a settlement did not complete.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    /// The invoice kept changing under the settlement.
    #[error("settlement gave up under contention")]
    Contended,
    /// Xendit could not be asked what it holds.
    #[error(transparent)]
    Xendit(#[from] XenditError),
    #[error(transparent)]
    Wallet(#[from] WalletError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an invoice request of its owner failed.
#[derive(Debug, thiserror::Error)]
pub enum InvoiceError {
    /// No such invoice, or not the caller's.
    #[error("invoice not found")]
    NotFound,
    /// A paid invoice cannot be cancelled.
    #[error("invoice already paid")]
    AlreadyPaid,
    #[error(transparent)]
    Xendit(#[from] XenditError),
    #[error(transparent)]
    Settle(#[from] SettleError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn payment_methods(req: &CheckoutRequest) -> Option<Vec<String>> {
    match (req.payment_method.as_deref(), req.ewallet_type.as_deref()) {
        (Some(m), Some(e)) if m.eq_ignore_ascii_case("EWALLET") && !e.is_empty() => {
            Some(vec![e.to_uppercase()])
        }
        _ => None,
    }
}

/// The steps of reserving a checkout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reserve {
    /// The invoice, before Xendit knows it (no `xendit_id` yet).
    Intent,
    /// The owner's open-invoice count, below `MAX_OPEN_INVOICES`.
    Count,
}

/// What a settlement or expiry did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The status changed (and, for PAID, the wallet was credited).
    Changed,
    /// Already in that state, or a later state wins: nothing changed.
    Unchanged,
}

/// The parts of a settlement besides the wallet change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Settle {
    /// The invoice's status change (and the owner's open-invoice count when it was PENDING).
    Invoice,
    /// Completing the payer's pending referral.
    Referral(ReferralStep),
}

/// The invoice → PAID change of a settlement, conditional on the status read in `rec` (a PENDING
/// invoice also leaves the owner's open-invoice count). A payment that arrives after a local
/// expiry still counts: Xendit took the money.
fn paid_ops(rec: &InvoiceRecord, paid_at: &str, now: i64) -> Vec<TxOp> {
    let mut ops = vec![TxOp::Update {
        key: keys::invoice(&rec.invoice_id),
        update: Update::new()
            .set("status", Status::Paid.as_str())
            .set("paid_at", paid_at)
            .set("updated_at", now)
            .remove("gsi2pk")
            .remove("gsi2sk"),
        cond: Some(Cond::item_exists().and(Cond::eq("status", rec.status.as_str()))),
    }];
    if rec.status == Status::Pending {
        ops.push(open_invoices_op(&rec.username, -1));
    }
    ops
}

/// Changes a user's count of PENDING invoices (no condition: it moves in the same transactions
/// as the invoices themselves).
fn open_invoices_op(username: &str, by: i64) -> TxOp {
    TxOp::Update {
        key: keys::open_invoices(username),
        update: Update::new().add("open", by),
        cond: None,
    }
}

/// The wallet side of a paid invoice (pure): the credit, its idempotency guard on Xendit's id,
/// and the points the payment earns.
fn credit_of(rec: &InvoiceRecord, earn: EarnRate) -> (Change, Idem, Option<PointsChange>) {
    let change = Change {
        kind: EntryType::Credit,
        amount: Money::from_rupiah(rec.amount),
        description: format!("Top up via Xendit invoice {}", rec.invoice_id),
        reference_id: rec.invoice_id.clone(),
        funds: Funds::Cash,
    };
    let idem = Idem {
        scope: "xendit".into(),
        key: rec.xendit_id.clone(),
        fingerprint: rec.invoice_id.clone(),
    };
    let earned = earn.earned_for(Money::from_rupiah(rec.amount));
    let points = (earned.value() > 0).then(|| PointsChange {
        kind: EntryType::Credit,
        points: earned,
        description: format!("Points for payment {}", rec.invoice_id),
        reference_id: rec.invoice_id.clone(),
    });
    (change, idem, points)
}

fn iso_now(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Checkout invoices: creation at Xendit, settlement exactly once, expiry, cancellation and the
/// owner's views. Cheap to clone.
#[derive(Clone)]
pub struct Invoices {
    table: TableRef,
    clock: ClockRef,
    xendit: Xendit,
    wallets: Wallets,
    referrals: Referrals,
    audit: Audit,
    push: StatusPushRef,
    earn: EarnRate,
    settings: InvoiceSettings,
}

/// The ports and settings [`Invoices`] is built from.
pub struct InvoicePorts {
    pub table: TableRef,
    pub clock: ClockRef,
    pub xendit: Xendit,
    pub wallets: Wallets,
    pub referrals: Referrals,
    pub audit: Audit,
    pub push: StatusPushRef,
    pub earn: EarnRate,
    pub settings: InvoiceSettings,
}

impl Invoices {
    /// The invoices on the main table.
    pub fn new(p: InvoicePorts) -> Invoices {
        Invoices {
            table: p.table,
            clock: p.clock,
            xendit: p.xendit,
            wallets: p.wallets,
            referrals: p.referrals,
            audit: p.audit,
            push: p.push,
            earn: p.earn,
            settings: p.settings,
        }
    }

    /// Reads an invoice by our id.
    pub async fn load(&self, invoice_id: &str) -> Result<Option<InvoiceRecord>, StoreError> {
        crate::store::get_record(self.table.as_ref(), &keys::invoice(invoice_id)).await
    }

    /// Reads an invoice clients may see: a checkout intent whose Xendit invoice is not known (yet)
    /// is "not found", as it is absent from the owner's list.
    pub async fn load_visible(
        &self,
        invoice_id: &str,
    ) -> Result<Option<InvoiceRecord>, StoreError> {
        Ok(self
            .load(invoice_id)
            .await?
            .filter(|r| !r.xendit_id.is_empty()))
    }

    /// Reads an invoice owned by `username`; someone else's invoice is "not found".
    pub async fn load_owned(
        &self,
        username: &Username,
        invoice_id: &str,
    ) -> Result<InvoiceRecord, InvoiceError> {
        match self.load_visible(invoice_id).await? {
            Some(r) if r.username == username.as_str() => Ok(r),
            _ => Err(InvoiceError::NotFound),
        }
    }

    /// The owner's invoice as Xendit has it.
    pub async fn at_xendit(
        &self,
        username: &Username,
        invoice_id: &str,
    ) -> Result<XInvoice, InvoiceError> {
        let rec = self.load_owned(username, invoice_id).await?;
        Ok(self.provider_invoice(&rec.xendit_id).await?)
    }

    /// Gives up a reserved checkout that Xendit refused (it holds no invoice for it): the intent
    /// and its place in the open-invoice count go in one transaction.
    async fn release(&self, username: &str, invoice_id: &str) {
        let ops = vec![
            TxOp::Delete {
                key: keys::invoice(invoice_id),
                cond: Some(
                    Cond::eq("status", Status::Pending.as_str()).and(Cond::eq("xendit_id", "")),
                ),
            },
            open_invoices_op(username, -1),
        ];
        if let Err(e) = self.table.transact(ops).await {
            tracing::error!(error = %e, invoice_id, "could not release a checkout reservation");
        }
    }

    /// Stores `intent` and counts it against its owner's `MAX_OPEN_INVOICES`, in one
    /// transaction.
    async fn reserve(&self, intent: &InvoiceRecord) -> Result<(), CheckoutError> {
        let mut steps = Steps::new();
        steps
            .push(
                Reserve::Intent,
                TxOp::Put {
                    item: to_item(intent)?,
                    cond: Some(Cond::item_absent()),
                },
            )
            .push(
                Reserve::Count,
                TxOp::Update {
                    key: keys::open_invoices(&intent.username),
                    update: Update::new().add("open", 1),
                    cond: Some(
                        Cond::NotExists("open".into()).or(Cond::lt("open", self.settings.max_open)),
                    ),
                },
            );
        let (ops, names) = steps.split();
        match self.table.transact(ops).await {
            Ok(()) => Ok(()),
            Err(e) if names.failed(&e, Reserve::Count) => Err(CheckoutError::TooManyOpen),
            Err(e) => Err(e.into()),
        }
    }

    /// Asks Xendit to create the reserved invoice. A refusal or a different answer releases the
    /// reservation. An ambiguous failure (timeout, lost connection, 5xx: Xendit may have created
    /// it) is resolved by looking the invoice up by `external_id`: found, it is adopted; not
    /// found (or the lookup fails too), the intent stays for the sync to settle after
    /// [`CREATE_GRACE`], and the caller gets the error.
    async fn create_at_xendit(
        &self,
        username: &Username,
        invoice_id: &str,
        req: &CheckoutRequest,
        payer_email: Option<String>,
    ) -> Result<XInvoice, CheckoutError> {
        let create = CreateInvoice {
            external_id: invoice_id.to_owned(),
            amount: req.amount.rupiah(),
            description: Some(req.description.clone()),
            payer_email,
            invoice_duration: Some(self.settings.duration_secs),
            currency: Some("IDR".into()),
            payment_methods: payment_methods(req),
        };
        let audit = |event: &'static str, e: &XenditError| {
            self.audit.record(
                LogKind::XenditCheckout,
                invoice_id,
                Some(username.as_str()),
                event,
                serde_json::json!({ "amount": req.amount.rupiah(), "error": e.to_string() }),
            )
        };
        let x = match self.xendit.create_invoice(&create).await {
            Ok(x) => x,
            Err(e) if e.is_ambiguous() => {
                match self.find_at_xendit(invoice_id, req.amount.rupiah()).await {
                    Ok(Some(x)) => {
                        tracing::warn!(invoice_id, error = %e, "checkout: create failed ambiguously; adopting the invoice xendit holds");
                        audit("create_adopted", &e).await;
                        x
                    }
                    found => {
                        if let Err(le) = found {
                            tracing::warn!(invoice_id, error = %le, "checkout: lookup after an ambiguous create failed");
                        }
                        audit("create_unresolved", &e).await;
                        return Err(e.into());
                    }
                }
            }
            Err(e) => {
                self.release(username.as_str(), invoice_id).await;
                audit("create_failed", &e).await;
                return Err(e.into());
            }
        };
        if !is_billed(&x, invoice_id, req.amount.rupiah()) {
            tracing::error!(invoice_id, "xendit answered a different invoice than asked");
            self.release(username.as_str(), invoice_id).await;
            return Err(CheckoutError::ProviderMismatch);
        }
        Ok(x)
    }

    /// The invoice Xendit holds for our `invoice_id` at `amount`, if any
    /// (`GET /v2/invoices?external_id=`).
    pub async fn find_at_xendit(
        &self,
        invoice_id: &str,
        amount: i64,
    ) -> Result<Option<XInvoice>, XenditError> {
        let found = self.xendit.list_invoices(Some(invoice_id), 10).await?;
        Ok(found.into_iter().find(|x| is_billed(x, invoice_id, amount)))
    }

    /// Adopts `x` for the intent `rec` only when it is the invoice billed: our id as its
    /// `external_id`, and our amount.
    pub async fn adopt_matching(
        &self,
        rec: &InvoiceRecord,
        x: &XInvoice,
    ) -> Result<Option<InvoiceRecord>, StoreError> {
        if !is_billed(x, &rec.invoice_id, rec.amount) {
            return Ok(None);
        }
        self.adopt(rec, x).await
    }

    /// Gives an intent (no Xendit id yet) the id, URL and expiry of the invoice Xendit created
    /// for it; returns the record as stored. Conditional on the intent still having no Xendit
    /// id, so racing adopters (the checkout, the sync, a callback) agree on one; `None` when
    /// another id won.
    pub async fn adopt(
        &self,
        rec: &InvoiceRecord,
        x: &XInvoice,
    ) -> Result<Option<InvoiceRecord>, StoreError> {
        let mut created = Update::new()
            .set("xendit_id", x.id.as_str())
            .set("invoice_url", x.invoice_url.as_str())
            .set("expiry_date", x.expiry_date.as_str())
            .set("currency", x.currency.as_deref().unwrap_or("IDR"))
            .set("updated_at", self.clock.epoch());
        let mut cond = Cond::eq("xendit_id", "");
        if rec.status == Status::Pending {
            created = created.set("gsi2sk", format!("{}#{}", x.expiry_date, rec.invoice_id));
            cond = cond.and(Cond::eq("status", Status::Pending.as_str()));
        }
        match self
            .table
            .update(&keys::invoice(&rec.invoice_id), created, Some(cond))
            .await
        {
            Ok(item) => Ok(Some(from_item(&item)?)),
            Err(StoreError::ConditionFailed) => Ok(self
                .load(&rec.invoice_id)
                .await?
                .filter(|now| now.xendit_id == x.id)),
            Err(e) => Err(e),
        }
    }

    /// Gives the intent Xendit's id and URL; when that fails, expires the orphan at Xendit (best
    /// effort) and releases the reservation.
    async fn record_created(
        &self,
        username: &Username,
        intent: &InvoiceRecord,
        x: &XInvoice,
    ) -> Result<(), CheckoutError> {
        let invoice_id = intent.invoice_id.as_str();
        let failed = match self.adopt(intent, x).await {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => StoreError::ConditionFailed,
            Err(e) => e,
        };
        tracing::error!(error = %failed, invoice_id, "invoice not stored after xendit accepted it; expiring it there");
        if let Err(xe) = self.xendit.expire_invoice(&x.id).await {
            tracing::error!(error = %xe, invoice_id, "could not expire the orphan invoice at xendit");
        }
        self.release(username.as_str(), invoice_id).await;
        Err(failed.into())
    }

    /// Settles an intent whose checkout never learnt its Xendit id (older than
    /// [`CREATE_GRACE`]): adopts the invoice Xendit holds for it, or, when Xendit holds none,
    /// abandons it (EXPIRED, off the open-invoice count, kept for [`ABANDONED_KEEP`] so a late
    /// callback still finds its owner). Returns the adopted record.
    pub async fn settle_intent(
        &self,
        rec: &InvoiceRecord,
    ) -> Result<Option<(InvoiceRecord, XInvoice)>, SettleError> {
        let found = self.find_at_xendit(&rec.invoice_id, rec.amount).await?;
        let Some(x) = found else {
            self.abandon(rec).await?;
            return Ok(None);
        };
        Ok(self.adopt(rec, &x).await?.map(|adopted| (adopted, x)))
    }

    /// Marks an intent with no Xendit invoice EXPIRED and takes it off its owner's open-invoice
    /// count, in one transaction (conditional on it still being a PENDING intent).
    async fn abandon(&self, rec: &InvoiceRecord) -> Result<(), StoreError> {
        let keep_until = (self.clock.now() + ABANDONED_KEEP).timestamp();
        let ops = vec![
            TxOp::Update {
                key: keys::invoice(&rec.invoice_id),
                update: Update::new()
                    .set("status", Status::Expired.as_str())
                    .set("updated_at", self.clock.epoch())
                    .set("ttl", keep_until)
                    .remove("gsi2pk")
                    .remove("gsi2sk"),
                cond: Some(
                    Cond::eq("status", Status::Pending.as_str()).and(Cond::eq("xendit_id", "")),
                ),
            },
            open_invoices_op(&rec.username, -1),
        ];
        match self.table.transact(ops).await {
            Ok(()) => {}
            // Adopted or abandoned meanwhile.
            Err(e) if e.failed_at(0) => return Ok(()),
            Err(e) => return Err(e),
        }
        self.audit
            .record(
                LogKind::XenditCheckout,
                &rec.invoice_id,
                Some(&rec.username),
                "abandoned",
                serde_json::json!({ "amount": rec.amount }),
            )
            .await;
        Ok(())
    }

    /// Creates an invoice for `username`. First, in one transaction, the invoice is stored as an
    /// intent (no Xendit id yet) and counted against the user's `MAX_OPEN_INVOICES` (refused past
    /// it, so the cap holds however many checkouts race); then Xendit creates it (our id as
    /// `external_id`) and the intent gets Xendit's id and URL. A refusal releases the
    /// reservation; a store failure after Xendit accepted expires the orphan there (best effort).
    pub async fn checkout(
        &self,
        username: &Username,
        req: CheckoutRequest,
    ) -> Result<CheckoutResponse, CheckoutError> {
        let invoice_id = format!("inv-{}", uuid::Uuid::now_v7().simple());
        let payer_email = match self.table.get(&keys::info(username.as_str())).await? {
            Some(info) => get_s(&info, "email").map(str::to_owned),
            None => None,
        };
        let now = self.clock.now();
        let expected_expiry = iso_now(now + chrono::Duration::seconds(self.settings.duration_secs));
        let mut intent = InvoiceRecord::pending(
            NewInvoice {
                invoice_id: invoice_id.clone(),
                username: username.as_str().to_owned(),
                amount: req.amount.rupiah(),
                currency: "IDR".into(),
                description: req.description.clone(),
                payment_method: req.payment_method.clone(),
                ewallet_type: req.ewallet_type.clone(),
                xendit_id: String::new(),
                invoice_url: String::new(),
                expiry_date: expected_expiry,
            },
            now,
        );
        // Until Xendit's id is known the intent sorts in the pending index by the end of its
        // grace, so the sync's overdue step settles it soon after if the checkout cannot.
        intent.gsi2sk = Some(format!("{}#{}", iso_now(now + CREATE_GRACE), invoice_id));
        self.reserve(&intent).await?;
        let x = self
            .create_at_xendit(username, &invoice_id, &req, payer_email)
            .await?;
        let currency = x.currency.clone().unwrap_or_else(|| "IDR".into());
        self.record_created(username, &intent, &x).await?;
        self.audit
            .record(
                LogKind::XenditCheckout,
                &invoice_id,
                Some(username.as_str()),
                "created",
                serde_json::json!({
                    "invoice_id": invoice_id, "external_id": invoice_id, "xendit_id": x.id, "amount": x.amount,
                    "status": "PENDING", "payment_method": req.payment_method, "description": req.description,
                    "invoice_url": x.invoice_url, "expiry_date": x.expiry_date,
                }),
            )
            .await;
        Ok(CheckoutResponse {
            invoice_id: invoice_id.clone(),
            external_id: invoice_id,
            id: x.id,
            invoice_url: x.invoice_url,
            amount: x.amount,
            currency,
            status: "PENDING".into(),
            expiry_date: x.expiry_date,
            description: req.description,
        })
    }

    /// The first read of a settlement, in one batch: the idempotency record, the wallet and (when
    /// this payment can qualify a referral) whether the payer was referred — then the pending
    /// referral it completes, if any.
    async fn settle_read(
        &self,
        rec: &InvoiceRecord,
        payer: &Username,
        idem: &Idem,
    ) -> Result<(WalletRead, Option<Completion>), StoreError> {
        let qualifies = self.referrals.qualifies(Money::from_rupiah(rec.amount));
        let mut read_keys = wallet::read_keys(payer, idem).to_vec();
        if qualifies {
            read_keys.push(keys::referred_by(&rec.username));
        }
        let mut read = self.table.get_many(&read_keys).await?;
        let referred = if qualifies {
            read.pop().flatten()
        } else {
            None
        };
        let wallet_read = WalletRead::from_items(read)?;
        let completion = match referred {
            Some(item) => {
                let by = Some(from_item(&item)?);
                self.referrals
                    .pending_completion(payer, by, &rec.invoice_id)
                    .await?
            }
            None => None,
        };
        Ok((wallet_read, completion))
    }

    /// The operations a settlement adds to the wallet write: the invoice → PAID change, then the
    /// referral completion (rewarded or not).
    fn settle_extra(
        &self,
        rec: &InvoiceRecord,
        paid_at: &str,
        now: i64,
        completion: Option<&Completion>,
        rewarded: bool,
    ) -> Result<Steps<Settle>, StoreError> {
        let mut extra = Steps::new();
        extra.extend(Settle::Invoice, paid_ops(rec, paid_at, now));
        if let Some(c) = completion {
            let (ops, names) = self.referrals.steps(c, rewarded)?.split();
            for (i, op) in ops.into_iter().enumerate() {
                let step = names.at(i).unwrap_or(ReferralStep::Referral);
                extra.push(Settle::Referral(step), op);
            }
        }
        Ok(extra)
    }

    /// Logs and announces a credited invoice.
    async fn announce_paid(
        &self,
        rec: &InvoiceRecord,
        payer: &Username,
        paid_at: String,
        balance: Money,
        source: &str,
    ) {
        self.audit
            .record(
                LogKind::XenditCallback,
                &rec.invoice_id,
                Some(&rec.username),
                "credited",
                serde_json::json!({ "source": source, "amount": rec.amount, "balance_after": balance.rupiah() }),
            )
            .await;
        let mut paid = rec.clone();
        paid.status = Status::Paid;
        paid.paid_at = Some(paid_at);
        self.push
            .payment_status(payer.as_str(), &paid.status_event())
            .await;
    }

    /// Credits a paid invoice exactly once: invoice → PAID, wallet credit, ledger entry, points
    /// earned and `IDEM#xendit#{xendit_id}` — plus, for a payment of at least
    /// `REFERRAL_MIN_PAYMENT`, the completion of the payer's pending referral — all in one
    /// transaction. Used by the callback, the sync and cancel.
    pub async fn settle_paid(
        &self,
        rec: &InvoiceRecord,
        paid_at: Option<String>,
        source: &str,
    ) -> Result<Applied, SettleError> {
        let applied = self.credit_paid(rec, paid_at, source).await?;
        if applied == Applied::Changed {
            crate::metrics::emit(crate::metrics::Metric::PaymentCredited(rec.amount));
        }
        Ok(applied)
    }

    async fn credit_paid(
        &self,
        rec: &InvoiceRecord,
        paid_at: Option<String>,
        source: &str,
    ) -> Result<Applied, SettleError> {
        if rec.status == Status::Paid {
            return Ok(Applied::Unchanged);
        }
        let payer = Username::from_stored(rec.username.as_str());
        let now = self.clock.now();
        let paid_at = paid_at.unwrap_or_else(|| iso_now(now));
        let (change, idem, pchange) = credit_of(rec, self.earn);
        let (first, mut completion) = self.settle_read(rec, &payer, &idem).await?;
        let mut wallet_read = Some(first);
        let mut rewarded = completion.as_ref().is_some_and(|c| c.rewardable());
        let mut rec = rec.clone();
        for _ in 0..4 {
            let extra = self.settle_extra(
                &rec,
                &paid_at,
                now.timestamp(),
                completion.as_ref(),
                rewarded,
            )?;
            let (extra, names) = extra.split();
            let outcome = match wallet_read.take() {
                Some(read) => {
                    self.wallets
                        .apply_full_read(
                            &payer,
                            Some(&change),
                            pchange.as_ref(),
                            &idem,
                            &extra,
                            read,
                        )
                        .await?
                }
                None => {
                    self.wallets
                        .apply_full(&payer, Some(&change), pchange.as_ref(), Some(&idem), &extra)
                        .await?
                }
            };
            match outcome {
                Outcome::Applied { balance_after, .. } => {
                    self.announce_paid(&rec, &payer, paid_at, balance_after, source)
                        .await;
                    return Ok(Applied::Changed);
                }
                Outcome::Replayed { .. } => return Ok(Applied::Unchanged),
                Outcome::ExtraRefused(i) => match names.at(i) {
                    // Another payment completed the referral meanwhile: settle without it.
                    Some(Settle::Referral(ReferralStep::Referral)) => completion = None,
                    // The referrer reached the cap: complete the referral without a bonus.
                    Some(Settle::Referral(_)) => rewarded = false,
                    // The invoice's status changed meanwhile (expired, or paid by a racing
                    // callback).
                    Some(Settle::Invoice) | None => match self.load(&rec.invoice_id).await? {
                        Some(now_rec) if now_rec.status != Status::Paid => rec = now_rec,
                        _ => return Ok(Applied::Unchanged),
                    },
                },
            }
        }
        Err(SettleError::Contended)
    }

    /// Marks a PENDING invoice EXPIRED (a PAID one never goes back), and takes it off the owner's
    /// open-invoice count, in one transaction.
    pub async fn mark_expired(
        &self,
        rec: &InvoiceRecord,
        source: &str,
    ) -> Result<Applied, StoreError> {
        if rec.status != Status::Pending {
            return Ok(Applied::Unchanged);
        }
        #[derive(Clone, Copy, PartialEq)]
        enum Step {
            StillPending,
            OpenCount,
        }
        let now = self.clock.epoch();
        let mut steps = crate::store::Steps::new();
        steps
            .push(
                Step::StillPending,
                TxOp::Update {
                    key: keys::invoice(&rec.invoice_id),
                    update: Update::new()
                        .set("status", Status::Expired.as_str())
                        .set("updated_at", now)
                        .remove("gsi2pk")
                        .remove("gsi2sk"),
                    cond: Some(Cond::eq("status", Status::Pending.as_str())),
                },
            )
            .push(Step::OpenCount, open_invoices_op(&rec.username, -1));
        let (ops, names) = steps.split();
        match self.table.transact(ops).await {
            Ok(()) => {}
            // Settled or expired meanwhile by the callback, the sync or a cancel.
            Err(e) if names.failed(&e, Step::StillPending) => return Ok(Applied::Unchanged),
            Err(e) => return Err(e),
        }
        self.audit
            .record(
                LogKind::XenditCallback,
                &rec.invoice_id,
                Some(&rec.username),
                "expired",
                serde_json::json!({ "source": source }),
            )
            .await;
        let mut expired = rec.clone();
        expired.status = Status::Expired;
        self.push
            .payment_status(&rec.username, &expired.status_event())
            .await;
        Ok(Applied::Changed)
    }

    /// Brings a local invoice in line with Xendit's view of it. A paid invoice is credited only
    /// when Xendit reports it paid as billed ([`paid_as_billed`]), the rule the callback applies
    /// too; otherwise it is held for review ([`Invoices::hold_mismatch`]).
    pub async fn reconcile(
        &self,
        rec: &InvoiceRecord,
        x: &XInvoice,
        source: &str,
    ) -> Result<Applied, SettleError> {
        if x.status.is_paid() {
            if paid_as_billed(rec, x.amount, x.paid_amount) {
                self.settle_paid(rec, x.paid_at.clone(), source).await
            } else {
                Ok(self
                    .hold_mismatch(rec, x.amount, x.paid_amount, source)
                    .await?)
            }
        } else if x.status == XStatus::Expired {
            Ok(self.mark_expired(rec, source).await?)
        } else {
            Ok(Applied::Unchanged)
        }
    }

    /// A paid invoice whose amounts differ from what we billed: nothing is credited (neither the
    /// billed amount, which was not received, nor a partial one, which the user did not ask
    /// for), the invoice leaves the sync's pending index so no later run credits it either, and
    /// the mismatch is written once as the audit event `amount_mismatch` and logged at error
    /// level for the alarm. It stays PENDING for the user until an operator resolves it.
    pub async fn hold_mismatch(
        &self,
        rec: &InvoiceRecord,
        amount: i64,
        paid_amount: Option<i64>,
        source: &str,
    ) -> Result<Applied, StoreError> {
        if rec.status != Status::Pending {
            return Ok(Applied::Unchanged);
        }
        let held = self
            .table
            .update(
                &keys::invoice(&rec.invoice_id),
                Update::new()
                    .set("amount_mismatch", paid_amount.unwrap_or(amount))
                    .set("updated_at", self.clock.epoch())
                    .remove("gsi2pk")
                    .remove("gsi2sk"),
                Some(
                    Cond::eq("status", Status::Pending.as_str())
                        .and(Cond::NotExists("amount_mismatch".into())),
                ),
            )
            .await;
        match held {
            Ok(_) => {}
            Err(StoreError::ConditionFailed) => return Ok(Applied::Unchanged),
            Err(e) => return Err(e),
        }
        tracing::error!(
            invoice_id = rec.invoice_id,
            billed = rec.amount,
            amount,
            paid_amount,
            source,
            "amount_mismatch: paid invoice held for review, nothing credited"
        );
        self.audit
            .record(
                LogKind::XenditCallback,
                &rec.invoice_id,
                Some(&rec.username),
                "amount_mismatch",
                serde_json::json!({
                    "source": source, "billed": rec.amount, "amount": amount,
                    "paid_amount": paid_amount,
                }),
            )
            .await;
        Ok(Applied::Changed)
    }

    /// Xendit's invoice `xendit_id`.
    pub async fn provider_invoice(&self, xendit_id: &str) -> Result<XInvoice, XenditError> {
        self.xendit.get_invoice(xendit_id).await
    }

    /// Cancels the owner's PENDING invoice: expire at Xendit, then locally. When Xendit refuses
    /// (it answers 404 for an invoice that is no longer PENDING: PAID, SETTLED or EXPIRED) or the
    /// answer is lost, the invoice is read back and reconciled: a paid one is credited (once)
    /// and the cancel refused, an expired one answers EXPIRED.
    pub async fn cancel(
        &self,
        username: &Username,
        invoice_id: &str,
    ) -> Result<InvoiceRecord, InvoiceError> {
        let rec = self.load_owned(username, invoice_id).await?;
        match rec.status {
            Status::Paid => return Err(InvoiceError::AlreadyPaid),
            Status::Expired => return Ok(rec),
            Status::Pending => {}
        }
        match self.xendit.expire_invoice(&rec.xendit_id).await {
            Ok(_) => {
                self.mark_expired(&rec, "cancel").await?;
            }
            Err(e @ XenditError::Auth(_)) => return Err(e.into()),
            Err(e) => {
                let Ok(x) = self.provider_invoice(&rec.xendit_id).await else {
                    return Err(e.into());
                };
                self.reconcile(&rec, &x, "cancel").await?;
                if x.status.is_paid() {
                    return Err(InvoiceError::AlreadyPaid);
                }
                if x.status != XStatus::Expired {
                    // Still payable at Xendit: the cancel did not happen.
                    return Err(e.into());
                }
            }
        }
        let now = self.load(invoice_id).await?.ok_or(InvoiceError::NotFound)?;
        if now.status == Status::Paid {
            return Err(InvoiceError::AlreadyPaid);
        }
        Ok(now)
    }

    /// A page of the owner's invoices, newest first.
    pub async fn list_own(
        &self,
        username: &Username,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<(Vec<OwnInvoice>, Option<String>), StoreError> {
        let q = crate::store::Query::index(
            crate::store::schema::GSI1,
            keys::user_invoices_gsi(username.as_str()),
        )
        .descending()
        .limit(limit)
        .after(cursor);
        let page = self.table.query(q).await?;
        let items = page
            .items
            .iter()
            .filter(|i| matches!(i.get("sk"), Some(AttrValue::S(s)) if s == "INVOICE"))
            // A checkout still being created at Xendit (or abandoned mid-way) is not shown.
            .filter(|i| !matches!(i.get("xendit_id"), Some(AttrValue::S(s)) if s.is_empty()))
            .map(|i| from_item::<InvoiceRecord>(i).map(|r| OwnInvoice::from(&r)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, page.cursor))
    }
}

/// Whether `x` is the invoice we billed: our id as its `external_id`, our amount. The one check
/// before an invoice Xendit answered with, or one found by lookup, is taken as ours.
fn is_billed(x: &XInvoice, invoice_id: &str, amount: i64) -> bool {
    x.external_id == invoice_id && x.amount == amount
}

/// The amount rule of every path that credits an invoice (callback, sync, cancel): Xendit must
/// report it paid for exactly what we billed — `amount` as billed, and `paid_amount` (when
/// given) equal to it.
pub fn paid_as_billed(rec: &InvoiceRecord, amount: i64, paid_amount: Option<i64>) -> bool {
    amount == rec.amount && paid_amount.unwrap_or(amount) == rec.amount
}
