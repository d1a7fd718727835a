//! The `payment` route group: balance, checkout, invoices, the sync trigger — and, as its own
//! router, the Xendit callback (served by the `xendit-callback` function URL).

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Json, Query};
use crate::app::App;
use crate::auth::extract::{ApiKeyHolder, AuthUser};
use crate::domain::account::{AccountStatus, LoginRecord, Username};
use crate::domain::money::Money;
use crate::error::{ApiError, FieldError};
use crate::payments::callback::{self, CallbackBody, CallbackToken};
use crate::payments::catalog;
use crate::payments::invoice::{
    self, CheckoutRequest, CheckoutResponse, OwnInvoice, PublicInvoice,
};
use crate::payments::payout::{self, BankAccountView, DisbursementCallback};
use crate::payments::sync;
use crate::payments::voucher::{self, NewVoucher, VoucherView};
use crate::store::keys;
use crate::wallet::{self, Change, EntryType, Idem, Outcome};

/// The payment route group.
pub fn router() -> Router<App> {
    Router::new()
        .route("/balance", get(balance))
        .route("/balance/decrease", post(decrease))
        .route("/payment-checkout", post(checkout))
        .route("/sys/payment-checkout", post(sys_checkout))
        .route("/invoice/detail", get(detail))
        .route("/invoice/detail/xendit", get(detail_xendit))
        .route("/invoice/list/xendit", get(list))
        .route("/invoice/cancel/xendit", post(cancel))
        .route("/sys/xendit-sync", post(sync_now))
        .route("/sys/voucher", post(voucher_create).get(voucher_show))
        .route("/redeem-voucher", post(voucher_redeem))
        .route("/check-voucher-redemption", get(voucher_check))
        .route("/bank/list", post(bank_list))
        .route("/payment/list", get(payment_list))
        .route("/sys/bank/refresh", post(bank_refresh))
        .route("/bank-account", post(bank_account_add))
        .route("/bank-account/list", get(bank_account_list))
        .route("/payout", post(payout_request))
        .route("/payout/list", get(payout_list))
}

/// The Xendit callback as the local server and the HTTP API serve it.
pub fn callback_router() -> Router<App> {
    Router::new()
        .route("/payment-callback", post(payment_callback))
        .route("/disbursement-callback", post(disbursement_callback))
}

/// The `xendit-callback` function's router: behind a Lambda function URL the callback arrives at
/// `/` (the URL itself is what is configured at Xendit), so both paths are served.
pub fn callback_function_router() -> Router<App> {
    callback_router().route("/", post(payment_callback))
}

const MAX_DESCRIPTION: usize = 255;

fn description(d: Option<String>, default: &str) -> Result<String, ApiError> {
    let d = d
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default.to_owned());
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::validation(vec![FieldError::new(
            "description",
            "must be at most 255 characters",
        )]));
    }
    Ok(d)
}

async fn balance(user: AuthUser, State(app): State<App>) -> Result<Json<Value>, ApiError> {
    let w = wallet::read(&app, &user.username).await?;
    Ok(Json(json!({ "balance": w.balance, "points": w.points })))
}

#[derive(Deserialize)]
struct DecreaseReq {
    amount: i64,
    #[serde(default)]
    description: Option<String>,
}

async fn decrease(
    user: AuthUser,
    State(app): State<App>,
    headers: HeaderMap,
    Json(req): Json<DecreaseReq>,
) -> Result<Json<Value>, ApiError> {
    let amount = Money::positive("amount", req.amount)?;
    let description = description(req.description, "Balance decrease")?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 128);
            Some(
                k.ok_or_else(|| {
                    ApiError::bad_request("Idempotency-Key must be 1-128 visible characters")
                })?
                .to_owned(),
            )
        }
    };
    let idem = key.map(|k| Idem {
        scope: format!("decrease:{}", user.username),
        key: k,
        fingerprint: format!("{}|{description}", amount.rupiah()),
    });
    let change = Change {
        kind: EntryType::Debit,
        amount,
        description,
        reference_id: format!("debit-{}", uuid::Uuid::new_v4().simple()),
    };
    let (balance, entry_id) =
        match wallet::apply(&app, &user.username, &change, idem.as_ref(), &[]).await? {
            Outcome::Applied {
                balance_after,
                entry_id,
                ..
            }
            | Outcome::Replayed {
                balance_after,
                entry_id,
            } => (balance_after, entry_id),
            Outcome::ExtraRefused(_) => return Err(ApiError::internal()),
        };
    Ok(Json(json!({
        "status": true,
        "message": "Balance Decreased",
        "balance": balance.rupiah(),
        "amount": amount.rupiah(),
        "transaction_id": entry_id,
    })))
}

#[derive(Deserialize)]
struct CheckoutReq {
    amount: i64,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    payment_method: Option<String>,
    #[serde(default)]
    ewallet_type: Option<String>,
}

fn short_code(field: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    match v.map(|s| s.trim().to_uppercase()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) if s.len() <= 32 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            Ok(Some(s))
        }
        Some(_) => Err(ApiError::validation(vec![FieldError::new(
            field,
            "must be a payment code such as EWALLET or OVO",
        )])),
    }
}

impl CheckoutReq {
    fn parse(self) -> Result<CheckoutRequest, ApiError> {
        Ok(CheckoutRequest {
            amount: Money::positive("amount", self.amount)?,
            description: description(self.description, "Top up")?,
            payment_method: short_code("payment_method", self.payment_method)?,
            ewallet_type: short_code("ewallet_type", self.ewallet_type)?,
        })
    }
}

async fn checkout(
    user: AuthUser,
    State(app): State<App>,
    Json(req): Json<CheckoutReq>,
) -> Result<Json<CheckoutResponse>, ApiError> {
    let req = req.parse()?;
    Ok(Json(invoice::checkout(&app, &user.username, req).await?))
}

#[derive(Deserialize)]
struct SysCheckoutReq {
    username: String,
    #[serde(flatten)]
    rest: CheckoutReq,
}

async fn sys_checkout(
    ApiKeyHolder(holder): ApiKeyHolder,
    State(app): State<App>,
    Json(req): Json<SysCheckoutReq>,
) -> Result<Json<CheckoutResponse>, ApiError> {
    let username = Username::parse(&req.username)?;
    let parsed = req.rest.parse()?;
    require_active(&app, username.as_str()).await?;
    tracing::info!(holder, "system checkout");
    Ok(Json(
        invoice::checkout(&app, username.as_str(), parsed).await?,
    ))
}

#[derive(Deserialize)]
struct InvoiceQuery {
    invoice_id: String,
}

async fn detail(
    State(app): State<App>,
    Query(q): Query<InvoiceQuery>,
) -> Result<Json<PublicInvoice>, ApiError> {
    match invoice::load(&app, q.invoice_id.trim()).await? {
        Some(r) => Ok(Json(PublicInvoice::from(&r))),
        None => Err(ApiError::not_found("Invoice Not Found")),
    }
}

async fn detail_xendit(
    user: AuthUser,
    State(app): State<App>,
    Query(q): Query<InvoiceQuery>,
) -> Result<Json<Value>, ApiError> {
    let rec = invoice::load_owned(&app, &user.username, q.invoice_id.trim()).await?;
    let x = app.xendit.get_invoice(&rec.xendit_id).await?;
    Ok(Json(
        serde_json::to_value(&x).map_err(|_| ApiError::internal())?,
    ))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    cursor: Option<String>,
}

async fn list(
    user: AuthUser,
    State(app): State<App>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation(vec![FieldError::new(
            "limit",
            "must be between 1 and 100",
        )]));
    }
    let (items, next): (Vec<OwnInvoice>, Option<String>) = invoice::list_own(
        &app,
        &user.username,
        limit,
        q.cursor.filter(|c| !c.is_empty()),
    )
    .await?;
    Ok(Json(
        json!({ "status": true, "data": items, "next_cursor": next }),
    ))
}

#[derive(Deserialize)]
struct CancelReq {
    invoice_id: String,
}

async fn cancel(
    user: AuthUser,
    State(app): State<App>,
    Json(req): Json<CancelReq>,
) -> Result<Json<Value>, ApiError> {
    let rec = invoice::cancel(&app, &user.username, req.invoice_id.trim()).await?;
    Ok(Json(
        json!({ "status": true, "message": "Invoice Cancelled", "data": OwnInvoice::from(&rec) }),
    ))
}

async fn sync_now(
    ApiKeyHolder(holder): ApiKeyHolder,
    State(app): State<App>,
) -> Result<Json<Value>, ApiError> {
    tracing::info!(holder, "xendit sync triggered");
    let summary = sync::run(&app).await?;
    Ok(Json(json!({ "status": true, "data": summary })))
}

async fn payment_callback(
    _token: CallbackToken,
    State(app): State<App>,
    Json(body): Json<CallbackBody>,
) -> Result<Json<Value>, ApiError> {
    let message = callback::handle(&app, body).await?;
    Ok(Json(json!({ "status": true, "message": message })))
}

async fn voucher_create(
    ApiKeyHolder(holder): ApiKeyHolder,
    State(app): State<App>,
    Json(req): Json<NewVoucher>,
) -> Result<Json<VoucherView>, ApiError> {
    let v = voucher::create(&app, req).await?;
    tracing::info!(holder, code = v.code, "voucher created");
    Ok(Json(v))
}

#[derive(Deserialize)]
struct VoucherQuery {
    voucher_code: String,
}

async fn voucher_show(
    _holder: ApiKeyHolder,
    State(app): State<App>,
    Query(q): Query<VoucherQuery>,
) -> Result<Json<VoucherView>, ApiError> {
    let code = voucher::parse_code(&q.voucher_code)?;
    match voucher::load(&app, &code).await? {
        Some(d) => Ok(Json(VoucherView::from(&d))),
        None => Err(ApiError::not_found("Voucher Not Found")),
    }
}

#[derive(Deserialize)]
struct RedeemReq {
    username: String,
    voucher_code: String,
}

async fn voucher_redeem(
    _holder: ApiKeyHolder,
    State(app): State<App>,
    Json(req): Json<RedeemReq>,
) -> Result<Json<Value>, ApiError> {
    let username = Username::parse(&req.username)?;
    let code = voucher::parse_code(&req.voucher_code)?;
    require_active(&app, username.as_str()).await?;
    let r = voucher::redeem(&app, username.as_str(), &code).await?;
    Ok(Json(
        json!({ "status": true, "message": "Voucher Redeemed", "data": r }),
    ))
}

async fn voucher_check(
    user: AuthUser,
    State(app): State<App>,
    Query(q): Query<VoucherQuery>,
) -> Result<Json<Value>, ApiError> {
    let code = voucher::parse_code(&q.voucher_code)?;
    let r = voucher::check(&app, &user.username, &code).await?;
    Ok(Json(json!({ "status": true, "data": r })))
}

#[derive(Deserialize)]
struct BankListReq {
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

async fn bank_list(
    State(app): State<App>,
    Json(req): Json<BankListReq>,
) -> Result<Json<Value>, ApiError> {
    let kind = req.kind.unwrap_or_else(|| "DISBURSEMENT".into());
    Ok(Json(
        json!({ "status": true, "data": catalog::banks(&app, &kind).await? }),
    ))
}

async fn payment_list(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "status": true, "data": catalog::payment_types(&app).await? }),
    ))
}

async fn bank_refresh(
    _holder: ApiKeyHolder,
    State(app): State<App>,
) -> Result<Json<Value>, ApiError> {
    let n = catalog::refresh_from_xendit(&app).await?;
    Ok(Json(json!({ "status": true, "data": { "banks": n } })))
}

#[derive(Deserialize)]
struct BankAccountReq {
    bank_code: String,
    account_number: String,
    account_holder_name: String,
}

async fn bank_account_add(
    user: AuthUser,
    State(app): State<App>,
    Json(req): Json<BankAccountReq>,
) -> Result<Json<BankAccountView>, ApiError> {
    let v = payout::register_account(
        &app,
        &user.username,
        &req.bank_code,
        &req.account_number,
        &req.account_holder_name,
    )
    .await?;
    Ok(Json(v))
}

async fn bank_account_list(
    user: AuthUser,
    State(app): State<App>,
) -> Result<Json<Value>, ApiError> {
    let list: Vec<BankAccountView> = payout::accounts(&app, &user.username)
        .await?
        .iter()
        .map(BankAccountView::from)
        .collect();
    Ok(Json(json!({ "status": true, "data": list })))
}

#[derive(Deserialize)]
struct PayoutReq {
    bank_account_id: String,
    amount: i64,
    #[serde(default)]
    description: Option<String>,
}

async fn payout_request(
    user: AuthUser,
    State(app): State<App>,
    headers: HeaderMap,
    Json(req): Json<PayoutReq>,
) -> Result<Json<Value>, ApiError> {
    let amount = Money::positive("amount", req.amount)?;
    let description = description(req.description, "Payout")?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 128)
                .ok_or_else(|| {
                    ApiError::bad_request("Idempotency-Key must be 1-128 visible characters")
                })?
                .to_owned(),
        ),
    };
    let v = payout::request(
        &app,
        &user.username,
        req.bank_account_id.trim(),
        amount,
        description,
        key.as_deref(),
    )
    .await?;
    Ok(Json(json!({ "status": true, "data": v })))
}

async fn payout_list(
    user: AuthUser,
    State(app): State<App>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation(vec![FieldError::new(
            "limit",
            "must be between 1 and 100",
        )]));
    }
    let (items, next) = payout::list_own(
        &app,
        &user.username,
        limit,
        q.cursor.filter(|c| !c.is_empty()),
    )
    .await?;
    Ok(Json(
        json!({ "status": true, "data": items, "next_cursor": next }),
    ))
}

async fn disbursement_callback(
    _token: CallbackToken,
    State(app): State<App>,
    Json(body): Json<DisbursementCallback>,
) -> Result<Json<Value>, ApiError> {
    let message = payout::on_callback(&app, body).await?;
    Ok(Json(json!({ "status": true, "message": message })))
}

/// A system route acting on behalf of a user: the account must exist and be active.
async fn require_active(app: &App, username: &str) -> Result<(), ApiError> {
    let Some(item) = app.main.get(&keys::login(username)).await? else {
        return Err(ApiError::not_found("Account does not exist"));
    };
    let login: LoginRecord = crate::store::from_item(&item)?;
    if login.disabled || login.status != AccountStatus::Active {
        return Err(ApiError::forbidden("Account is Disabled"));
    }
    Ok(())
}
