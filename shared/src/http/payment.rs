//! The `payment` route group: balance, checkout, invoices, the sync trigger — and, as its own
//! router, the Xendit callback (served by the `xendit-callback` function URL).

use axum::Router;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{IdempotencyKey, Json, Query};
use crate::app::App;
use crate::auth::extract::{ApiKeyHolder, AuthUser};
use crate::domain::account::{AccountStatus, LoginRecord, Username};
use crate::domain::money::Money;
use crate::error::{ApiError, Envelope, FieldError};
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

/// The payment route group, with its documentation.
pub fn openapi_router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(balance))
        .routes(routes!(decrease))
        .routes(routes!(checkout))
        .routes(routes!(sys_checkout))
        .routes(routes!(detail))
        .routes(routes!(detail_xendit))
        .routes(routes!(list))
        .routes(routes!(cancel))
        .routes(routes!(sync_now))
        .routes(routes!(voucher_create, voucher_show))
        .routes(routes!(voucher_redeem))
        .routes(routes!(voucher_check))
        .routes(routes!(bank_list))
        .routes(routes!(payment_list))
        .routes(routes!(bank_refresh))
        .routes(routes!(bank_account_add))
        .routes(routes!(bank_account_list))
        .routes(routes!(payout_request))
        .routes(routes!(payout_list))
}

/// The payment route group.
pub fn router() -> Router<App> {
    openapi_router().split_for_parts().0
}

/// The Xendit callbacks, with their documentation (served by the local server and the HTTP API).
pub fn callback_openapi_router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(payment_callback))
        .routes(routes!(disbursement_callback))
}

/// The Xendit callback as the local server and the HTTP API serve it.
pub fn callback_router() -> Router<App> {
    callback_openapi_router().split_for_parts().0
}

/// The `xendit-callback` function's router: behind a Lambda function URL the callback arrives at
/// `/` (the URL itself is what is configured at Xendit), so both paths are served.
pub fn callback_function_router() -> Router<App> {
    callback_function_openapi_router().split_for_parts().0
}

/// [`callback_function_router`] with its documentation (the root path is the function URL's).
pub fn callback_function_openapi_router() -> OpenApiRouter<App> {
    callback_openapi_router().routes(routes!(payment_callback_at_root))
}

/// The payment callback at the root of the `xendit-callback` function URL (same as
/// `/payment-callback`; not part of the HTTP API's document).
#[utoipa::path(
    post,
    path = "/",
    tag = "payment",
    request_body = CallbackBody,
    security(("callbackToken" = [])),
    responses(
        (status = 200, description = "Processed (idempotent): `{status, message}`", body = Object),
        (status = 404, description = "Invoice Not Found", body = Envelope),
    )
)]
async fn payment_callback_at_root(
    token: CallbackToken,
    state: State<App>,
    body: Json<CallbackBody>,
) -> Result<Json<Value>, ApiError> {
    payment_callback(token, state, body).await
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

#[utoipa::path(
    get,
    path = "/balance",
    tag = "payment",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Wallet balance and points: `{balance, points, withdrawable_balance}` (the part of the balance that came from redeemed points can be spent, not paid out)", body = Object),
    )
)]
async fn balance(user: AuthUser, State(app): State<App>) -> Result<Json<Value>, ApiError> {
    let w = wallet::read(&app, &user.username).await?;
    Ok(Json(
        json!({ "balance": w.balance, "points": w.points, "withdrawable_balance": w.withdrawable() }),
    ))
}

#[derive(Deserialize, ToSchema)]
struct DecreaseReq {
    /// Whole rupiah.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    amount: i64,
    #[serde(default)]
    description: Option<String>,
}

#[utoipa::path(
    post,
    path = "/balance/decrease",
    tag = "payment",
    request_body = DecreaseReq,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for a repeated key (1-128 visible characters)")),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Debited: `{status, message, balance, amount, transaction_id}`", body = Object),
        (status = 400, description = "Invalid amount/description, bad Idempotency-Key, or Insufficient Balance", body = Envelope),
        (status = 422, description = "Idempotency-Key was used with a different request", body = Envelope),
    )
)]
async fn decrease(
    user: AuthUser,
    State(app): State<App>,
    IdempotencyKey(key): IdempotencyKey,
    Json(req): Json<DecreaseReq>,
) -> Result<Json<Value>, ApiError> {
    let amount = Money::positive("amount", req.amount)?;
    let description = description(req.description, "Balance decrease")?;
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
        funds: crate::wallet::Funds::Cash,
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
                ..
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

#[derive(Deserialize, ToSchema)]
struct CheckoutReq {
    /// Whole rupiah.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
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

#[utoipa::path(
    post,
    path = "/payment-checkout",
    tag = "payment",
    request_body = CheckoutReq,
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Invoice created at Xendit", body = CheckoutResponse),
        (status = 400, description = "Invalid amount, description or payment code; or refused by Xendit", body = Envelope),
        (status = 409, description = "Too Many Open Invoices: the user holds MAX_OPEN_INVOICES pending ones (pay, cancel or let one expire)", body = Envelope),
        (status = 422, description = "Refused by Xendit", body = Envelope),
        (status = 502, description = "Payment provider unavailable (no invoice was recorded)", body = Envelope),
    )
)]
async fn checkout(
    user: AuthUser,
    State(app): State<App>,
    Json(req): Json<CheckoutReq>,
) -> Result<Json<CheckoutResponse>, ApiError> {
    let req = req.parse()?;
    Ok(Json(invoice::checkout(&app, &user.username, req).await?))
}

#[derive(Deserialize, ToSchema)]
struct SysCheckoutReq {
    username: String,
    #[serde(flatten)]
    rest: CheckoutReq,
}

#[utoipa::path(
    post,
    path = "/sys/payment-checkout",
    tag = "payment",
    request_body = SysCheckoutReq,
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Invoice created at Xendit for the user", body = CheckoutResponse),
        (status = 400, description = "Invalid username, amount, description or payment code; or refused by Xendit", body = Envelope),
        (status = 403, description = "Account is Disabled", body = Envelope),
        (status = 404, description = "Account does not exist", body = Envelope),
        (status = 409, description = "Too Many Open Invoices for the user", body = Envelope),
        (status = 422, description = "Refused by Xendit", body = Envelope),
        (status = 502, description = "Payment provider unavailable (no invoice was recorded)", body = Envelope),
    )
)]
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct InvoiceQuery {
    invoice_id: String,
}

#[utoipa::path(
    get,
    path = "/invoice/detail",
    tag = "payment",
    params(InvoiceQuery),
    responses(
        (status = 200, description = "Public view of an invoice", body = PublicInvoice),
        (status = 404, description = "Invoice Not Found", body = Envelope),
    )
)]
async fn detail(
    State(app): State<App>,
    Query(q): Query<InvoiceQuery>,
) -> Result<Json<PublicInvoice>, ApiError> {
    match invoice::load(&app, q.invoice_id.trim()).await? {
        Some(r) => Ok(Json(PublicInvoice::from(&r))),
        None => Err(ApiError::not_found("Invoice Not Found")),
    }
}

#[utoipa::path(
    get,
    path = "/invoice/detail/xendit",
    tag = "payment",
    params(InvoiceQuery),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The invoice as Xendit has it", body = Object),
        (status = 400, description = "Refused by Xendit", body = Envelope),
        (status = 404, description = "Invoice Not Found (or not the caller's)", body = Envelope),
        (status = 422, description = "Refused by Xendit", body = Envelope),
        (status = 502, description = "Payment provider unavailable", body = Envelope),
    )
)]
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    #[serde(default)]
    /// Page size (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    #[serde(default)]
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/invoice/list/xendit",
    tag = "payment",
    params(ListQuery),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The caller's invoices, newest first: `{status, data: [OwnInvoice], next_cursor}`", body = Object),
    )
)]
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

#[derive(Deserialize, ToSchema)]
struct CancelReq {
    invoice_id: String,
}

#[utoipa::path(
    post,
    path = "/invoice/cancel/xendit",
    tag = "payment",
    request_body = CancelReq,
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Invoice Cancelled: `{status, message, data: OwnInvoice}`", body = Object),
        (status = 400, description = "Invoice Already Paid, or refused by Xendit", body = Envelope),
        (status = 404, description = "Invoice Not Found", body = Envelope),
        (status = 422, description = "Refused by Xendit", body = Envelope),
        (status = 502, description = "Payment provider unavailable", body = Envelope),
    )
)]
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

#[utoipa::path(
    post,
    path = "/sys/xendit-sync",
    tag = "payment",
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Reconciliation summary: `{status, data}`", body = Object),
        (status = 502, description = "Payment provider unavailable", body = Envelope),
    )
)]
async fn sync_now(
    ApiKeyHolder(holder): ApiKeyHolder,
    State(app): State<App>,
) -> Result<Json<Value>, ApiError> {
    tracing::info!(holder, "xendit sync triggered");
    let summary = sync::run(&app).await?;
    Ok(Json(json!({ "status": true, "data": summary })))
}

#[utoipa::path(
    post,
    path = "/payment-callback",
    tag = "payment",
    request_body = CallbackBody,
    security(("callbackToken" = [])),
    responses(
        (status = 200, description = "Processed (idempotent): `{status, message}`", body = Object),
        (status = 404, description = "Invoice Not Found", body = Envelope),
    )
)]
async fn payment_callback(
    _token: CallbackToken,
    State(app): State<App>,
    Json(body): Json<CallbackBody>,
) -> Result<Json<Value>, ApiError> {
    let message = callback::handle(&app, body).await?;
    Ok(Json(json!({ "status": true, "message": message })))
}

#[utoipa::path(
    post,
    path = "/sys/voucher",
    tag = "voucher",
    request_body = NewVoucher,
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Voucher created", body = VoucherView),
        (status = 409, description = "Voucher already exists", body = Envelope),
    )
)]
async fn voucher_create(
    ApiKeyHolder(holder): ApiKeyHolder,
    State(app): State<App>,
    Json(req): Json<NewVoucher>,
) -> Result<Json<VoucherView>, ApiError> {
    let v = voucher::create(&app, req).await?;
    tracing::info!(holder, code = v.code, "voucher created");
    Ok(Json(v))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct VoucherQuery {
    voucher_code: String,
}

#[utoipa::path(
    get,
    path = "/sys/voucher",
    tag = "voucher",
    params(VoucherQuery),
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Voucher definition and usage", body = VoucherView),
        (status = 404, description = "Voucher Not Found", body = Envelope),
    )
)]
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

#[derive(Deserialize, ToSchema)]
struct RedeemReq {
    username: String,
    voucher_code: String,
}

#[utoipa::path(
    post,
    path = "/redeem-voucher",
    tag = "voucher",
    request_body = RedeemReq,
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Voucher Redeemed: `{status, message, data}`", body = Object),
        (status = 400, description = "Invalid input, Voucher Expired or Voucher Quota Exceeded", body = Envelope),
        (status = 403, description = "Account is Disabled", body = Envelope),
        (status = 404, description = "Account does not exist or Voucher Not Found", body = Envelope),
        (status = 409, description = "Voucher Already Redeemed", body = Envelope),
    )
)]
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

#[utoipa::path(
    get,
    path = "/check-voucher-redemption",
    tag = "voucher",
    params(VoucherQuery),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Whether the caller redeemed it: `{status, data}`", body = Object),
        (status = 404, description = "Voucher Not Found", body = Envelope),
    )
)]
async fn voucher_check(
    user: AuthUser,
    State(app): State<App>,
    Query(q): Query<VoucherQuery>,
) -> Result<Json<Value>, ApiError> {
    let code = voucher::parse_code(&q.voucher_code)?;
    let r = voucher::check(&app, &user.username, &code).await?;
    Ok(Json(json!({ "status": true, "data": r })))
}

#[derive(Deserialize, ToSchema)]
struct BankListReq {
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

#[utoipa::path(
    post,
    path = "/bank/list",
    tag = "payout",
    request_body = BankListReq,
    responses(
        (status = 200, description = "Banks of a type: `{status, data}`", body = Object),
    )
)]
async fn bank_list(
    State(app): State<App>,
    Json(req): Json<BankListReq>,
) -> Result<Json<Value>, ApiError> {
    let kind = req.kind.unwrap_or_else(|| "DISBURSEMENT".into());
    Ok(Json(
        json!({ "status": true, "data": catalog::banks(&app, &kind).await? }),
    ))
}

#[utoipa::path(
    get,
    path = "/payment/list",
    tag = "payment",
    responses(
        (status = 200, description = "Payment types: `{status, data}`", body = Object),
    )
)]
async fn payment_list(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "status": true, "data": catalog::payment_types(&app).await? }),
    ))
}

#[utoipa::path(
    post,
    path = "/sys/bank/refresh",
    tag = "payout",
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Banks refreshed from Xendit: `{status, data: {banks}}`", body = Object),
        (status = 400, description = "Refused by Xendit", body = Envelope),
        (status = 422, description = "Refused by Xendit", body = Envelope),
        (status = 502, description = "Payment provider unavailable", body = Envelope),
    )
)]
async fn bank_refresh(
    _holder: ApiKeyHolder,
    State(app): State<App>,
) -> Result<Json<Value>, ApiError> {
    let n = catalog::refresh_from_xendit(&app).await?;
    Ok(Json(json!({ "status": true, "data": { "banks": n } })))
}

#[derive(Deserialize, ToSchema)]
struct BankAccountReq {
    bank_code: String,
    account_number: String,
    account_holder_name: String,
}

#[utoipa::path(
    post,
    path = "/bank-account",
    tag = "payout",
    request_body = BankAccountReq,
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Bank account registered (number masked)", body = BankAccountView),
        (status = 400, description = "Invalid bank code, number or holder name; or at most 10 bank accounts", body = Envelope),
        (status = 409, description = "Bank account already registered", body = Envelope),
    )
)]
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

#[utoipa::path(
    get,
    path = "/bank-account/list",
    tag = "payout",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The caller's bank accounts (masked): `{status, data}`", body = Object),
    )
)]
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

#[derive(Deserialize, ToSchema)]
struct PayoutReq {
    bank_account_id: String,
    /// Whole rupiah.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    amount: i64,
    #[serde(default)]
    description: Option<String>,
}

#[utoipa::path(
    post,
    path = "/payout",
    tag = "payout",
    request_body = PayoutReq,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for a repeated key (1-128 visible characters)")),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Payout requested, funds held: `{status, data}`", body = Object),
        (status = 400, description = "Invalid amount, bad Idempotency-Key, Insufficient Balance, Insufficient Withdrawable Balance (part of the balance came from points), or refused by Xendit", body = Envelope),
        (status = 404, description = "Bank Account Not Found", body = Envelope),
        (status = 422, description = "Idempotency-Key was used with a different request, or refused by Xendit", body = Envelope),
        (status = 502, description = "Payment provider unavailable", body = Envelope),
    )
)]
async fn payout_request(
    user: AuthUser,
    State(app): State<App>,
    IdempotencyKey(key): IdempotencyKey,
    Json(req): Json<PayoutReq>,
) -> Result<Json<Value>, ApiError> {
    let amount = Money::positive("amount", req.amount)?;
    let description = description(req.description, "Payout")?;
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

#[utoipa::path(
    get,
    path = "/payout/list",
    tag = "payout",
    params(ListQuery),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The caller's payouts, newest first: `{status, data, next_cursor}`", body = Object),
    )
)]
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

#[utoipa::path(
    post,
    path = "/disbursement-callback",
    tag = "payout",
    request_body = DisbursementCallback,
    security(("callbackToken" = [])),
    responses(
        (status = 200, description = "Processed (idempotent): `{status, message}`", body = Object),
        (status = 400, description = "Payout Mismatch", body = Envelope),
        (status = 404, description = "Payout Not Found", body = Envelope),
    )
)]
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
