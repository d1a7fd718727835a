//! The `payment` route group: balance, checkout, invoices, the sync trigger — and, as its own
//! router, the Xendit callback (served by the `xendit-callback` function URL).

use axum::Router;
use axum::extract::{FromRef, FromRequestParts, State};
use http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiKeyHolder, AuthUser};
use super::reply::Done;
use super::{IdempotencyKey, Json, Query};
use crate::app::App;
use crate::domain::account::Username;
use crate::domain::money::Money;
use crate::http::error::{ApiError, Envelope, FieldError};
use crate::payments::callback::{CallbackBody, CallbackOutcome, Callbacks};
use crate::payments::catalog::{BankKind, BankView, Catalog, PaymentTypeView};
use crate::payments::invoice::{
    CheckoutRequest, CheckoutResponse, InvoiceError, Invoices, OwnInvoice, PublicInvoice,
};
use crate::payments::payer::Payers;
use crate::payments::payout::{
    BankAccountView, NewBankAccount, PayoutCallbackOutcome, PayoutRequest, PayoutView,
    PayoutWebhook, Payouts,
};
use crate::payments::sync::{Summary, XenditSync};
use crate::payments::voucher::{
    NewVoucher, Redeemed, RedemptionStatus, VoucherCode, VoucherSpec, VoucherView, Vouchers,
};
use crate::payments::xendit::XInvoice;
use crate::wallet::{Debit, Outcome, Wallets};

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
        .routes(routes!(payout_callback))
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

/// A request carrying the configured `x-callback-token` (compared in constant time); a refused
/// one is logged and answered 401.
#[derive(Debug, Clone, Copy)]
pub struct CallbackToken;

impl<S: Send + Sync> FromRequestParts<S> for CallbackToken
where
    Callbacks: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let callbacks = Callbacks::from_ref(state);
        let given = parts
            .headers
            .get("x-callback-token")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if callbacks.accepts(given) {
            Ok(CallbackToken)
        } else {
            callbacks.log_rejected_token().await;
            Err(ApiError::unauthorized())
        }
    }
}

/// `{status: true, data}` answers.
macro_rules! data_answer {
    ($(#[$doc:meta])* $name:ident, $ty:ty) => {
        $(#[$doc])*
        #[derive(Serialize, ToSchema)]
        pub struct $name {
            #[schema(example = true)]
            status: bool,
            data: $ty,
        }

        impl From<$ty> for $name {
            fn from(data: $ty) -> Self {
                $name { status: true, data }
            }
        }
    };
}

data_answer!(
    /// The reconciliation summary of a sync run.
    SyncRun,
    Summary
);
data_answer!(
    /// Whether the caller redeemed a voucher.
    VoucherState,
    RedemptionStatus
);
data_answer!(
    /// Banks of a type.
    BankList,
    Vec<BankView>
);
data_answer!(
    /// Active payment types.
    PaymentTypeList,
    Vec<PaymentTypeView>
);
data_answer!(
    /// Banks refreshed from Xendit.
    BanksRefreshed,
    RefreshCount
);
data_answer!(
    /// The caller's bank accounts (numbers masked).
    BankAccountList,
    Vec<BankAccountView>
);
data_answer!(
    /// A requested payout (funds held).
    PayoutRequested,
    PayoutView
);

/// How many disbursement banks a refresh wrote.
#[derive(Serialize, ToSchema)]
pub struct RefreshCount {
    banks: usize,
}

/// The wallet: balance, points and the withdrawable part of the balance.
#[derive(Serialize, ToSchema)]
pub struct Balance {
    balance: i64,
    points: i64,
    /// The balance minus its bonus part (redeemed points can be spent, not paid out).
    withdrawable_balance: i64,
}

/// A debited wallet.
#[derive(Serialize, ToSchema)]
pub struct BalanceDecreased {
    #[schema(example = true)]
    status: bool,
    message: &'static str,
    /// The balance after the debit.
    balance: i64,
    amount: i64,
    transaction_id: String,
}

/// A page of the caller's invoices, newest first.
#[derive(Serialize, ToSchema)]
pub struct InvoicePage {
    #[schema(example = true)]
    status: bool,
    data: Vec<OwnInvoice>,
    /// Pass as `cursor` to read the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// A page of the caller's payouts, newest first.
#[derive(Serialize, ToSchema)]
pub struct PayoutPage {
    #[schema(example = true)]
    status: bool,
    data: Vec<PayoutView>,
    /// Pass as `cursor` to read the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// A cancelled invoice.
#[derive(Serialize, ToSchema)]
pub struct InvoiceCancelled {
    #[schema(example = true)]
    status: bool,
    message: &'static str,
    data: OwnInvoice,
}

/// A redeemed voucher: the discount for the calling service to apply.
#[derive(Serialize, ToSchema)]
pub struct VoucherRedeemed {
    #[schema(example = true)]
    status: bool,
    message: &'static str,
    data: Redeemed,
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
        (status = 200, description = "Processed (idempotent): `{status, message}`", body = Done),
        (status = 404, description = "Invoice Not Found", body = Envelope),
    )
)]
async fn payment_callback_at_root(
    token: CallbackToken,
    state: State<Callbacks>,
    body: Json<CallbackBody>,
) -> Result<Json<Done>, ApiError> {
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

/// A page size: 1-100, 20 by default.
fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation(vec![FieldError::new(
            "limit",
            "must be between 1 and 100",
        )]));
    }
    Ok(limit)
}

#[utoipa::path(
    get,
    path = "/balance",
    tag = "payment",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Wallet balance and points: `{balance, points, withdrawable_balance}` (the part of the balance that came from redeemed points can be spent, not paid out)", body = Balance),
    )
)]
async fn balance(
    user: AuthUser,
    State(wallets): State<Wallets>,
) -> Result<Json<Balance>, ApiError> {
    let w = wallets.read(&user.username).await?;
    Ok(Json(Balance {
        balance: w.balance,
        points: w.points,
        withdrawable_balance: w.withdrawable(),
    }))
}

#[derive(Deserialize, ToSchema)]
struct DecreaseReq {
    /// Whole rupiah.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    amount: i64,
    #[serde(default)]
    description: Option<String>,
}

impl DecreaseReq {
    fn into_debit(self, idempotency_key: Option<String>) -> Result<Debit, ApiError> {
        Ok(Debit {
            amount: Money::positive("amount", self.amount)?,
            description: description(self.description, "Balance decrease")?,
            idempotency_key,
        })
    }
}

#[utoipa::path(
    post,
    path = "/balance/decrease",
    tag = "payment",
    request_body = DecreaseReq,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for a repeated key (1-128 visible characters)")),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Debited: `{status, message, balance, amount, transaction_id}`", body = BalanceDecreased),
        (status = 400, description = "Invalid amount/description, bad Idempotency-Key, or Insufficient Balance", body = Envelope),
        (status = 422, description = "Idempotency-Key was used with a different request", body = Envelope),
    )
)]
async fn decrease(
    user: AuthUser,
    State(wallets): State<Wallets>,
    IdempotencyKey(key): IdempotencyKey,
    Json(req): Json<DecreaseReq>,
) -> Result<Json<BalanceDecreased>, ApiError> {
    let debit = req.into_debit(key)?;
    let (balance, entry_id) = match wallets.debit(&user.username, &debit).await? {
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
    Ok(Json(BalanceDecreased {
        status: true,
        message: "Balance Decreased",
        balance: balance.rupiah(),
        amount: debit.amount.rupiah(),
        transaction_id: entry_id,
    }))
}

#[derive(Deserialize, ToSchema)]
struct CheckoutReq {
    /// Whole rupiah.
    #[schema(minimum = 1, maximum = 999_999_999)]
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
            amount: Money::positive_up_to(
                "amount",
                self.amount,
                crate::payments::invoice::INVOICE_MAX_AMOUNT,
            )?,
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
    State(invoices): State<Invoices>,
    Json(req): Json<CheckoutReq>,
) -> Result<Json<CheckoutResponse>, ApiError> {
    let req = req.parse()?;
    Ok(Json(invoices.checkout(&user.username, req).await?))
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
    State(payers): State<Payers>,
    State(invoices): State<Invoices>,
    Json(req): Json<SysCheckoutReq>,
) -> Result<Json<CheckoutResponse>, ApiError> {
    let username = Username::parse(&req.username)?;
    let parsed = req.rest.parse()?;
    payers.require_active(&username).await?;
    tracing::info!(holder, "system checkout");
    Ok(Json(invoices.checkout(&username, parsed).await?))
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
    State(invoices): State<Invoices>,
    Query(q): Query<InvoiceQuery>,
) -> Result<Json<PublicInvoice>, ApiError> {
    match invoices.load_visible(q.invoice_id.trim()).await? {
        Some(r) => Ok(Json(PublicInvoice::from(&r))),
        None => Err(InvoiceError::NotFound.into()),
    }
}

#[utoipa::path(
    get,
    path = "/invoice/detail/xendit",
    tag = "payment",
    params(InvoiceQuery),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The invoice as Xendit has it", body = XInvoice),
        (status = 400, description = "Refused by Xendit", body = Envelope),
        (status = 404, description = "Invoice Not Found (or not the caller's)", body = Envelope),
        (status = 422, description = "Refused by Xendit", body = Envelope),
        (status = 502, description = "Payment provider unavailable", body = Envelope),
    )
)]
async fn detail_xendit(
    user: AuthUser,
    State(invoices): State<Invoices>,
    Query(q): Query<InvoiceQuery>,
) -> Result<Json<XInvoice>, ApiError> {
    Ok(Json(
        invoices
            .at_xendit(&user.username, q.invoice_id.trim())
            .await?,
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
        (status = 200, description = "The caller's invoices, newest first: `{status, data: [OwnInvoice], next_cursor}`", body = InvoicePage),
    )
)]
async fn list(
    user: AuthUser,
    State(invoices): State<Invoices>,
    Query(q): Query<ListQuery>,
) -> Result<Json<InvoicePage>, ApiError> {
    let limit = page_limit(q.limit)?;
    let (data, next_cursor) = invoices
        .list_own(&user.username, limit, q.cursor.filter(|c| !c.is_empty()))
        .await?;
    Ok(Json(InvoicePage {
        status: true,
        data,
        next_cursor,
    }))
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
        (status = 200, description = "Invoice Cancelled: `{status, message, data: OwnInvoice}`", body = InvoiceCancelled),
        (status = 400, description = "Invoice Already Paid, or refused by Xendit", body = Envelope),
        (status = 404, description = "Invoice Not Found", body = Envelope),
        (status = 422, description = "Refused by Xendit", body = Envelope),
        (status = 502, description = "Payment provider unavailable", body = Envelope),
    )
)]
async fn cancel(
    user: AuthUser,
    State(invoices): State<Invoices>,
    Json(req): Json<CancelReq>,
) -> Result<Json<InvoiceCancelled>, ApiError> {
    let rec = invoices
        .cancel(&user.username, req.invoice_id.trim())
        .await?;
    Ok(Json(InvoiceCancelled {
        status: true,
        message: "Invoice Cancelled",
        data: OwnInvoice::from(&rec),
    }))
}

#[utoipa::path(
    post,
    path = "/sys/xendit-sync",
    tag = "payment",
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Reconciliation summary: `{status, data}`", body = SyncRun),
        (status = 502, description = "Payment provider unavailable", body = Envelope),
    )
)]
async fn sync_now(
    ApiKeyHolder(holder): ApiKeyHolder,
    State(sync): State<XenditSync>,
) -> Result<Json<SyncRun>, ApiError> {
    tracing::info!(holder, "xendit sync triggered");
    Ok(Json(sync.run().await?.into()))
}

/// The answer's wording for what an invoice callback did.
fn callback_message(o: CallbackOutcome) -> &'static str {
    match o {
        CallbackOutcome::Recorded => "Payment Recorded",
        CallbackOutcome::Expired => "Invoice Expired",
        CallbackOutcome::AlreadyProcessed => "Already Processed",
        CallbackOutcome::Ignored => "Ignored",
        CallbackOutcome::AmountMismatch => "Amount Mismatch Held For Review",
        CallbackOutcome::Unknown => "Unknown Invoice Logged",
        CallbackOutcome::IdMismatch => "Invoice Id Mismatch Logged",
    }
}

#[utoipa::path(
    post,
    path = "/payment-callback",
    tag = "payment",
    request_body = CallbackBody,
    security(("callbackToken" = [])),
    responses(
        (status = 200, description = "Processed, or logged and deliberately ignored (idempotent; Xendit stops retrying): `{status, message}`", body = Done),
        (status = 400, description = "Malformed body", body = Envelope),
        (status = 502, description = "Xendit could not confirm an invoice to adopt (Xendit retries)", body = Envelope),
        (status = 503, description = "Storage unavailable (Xendit retries)", body = Envelope),
    )
)]
async fn payment_callback(
    _token: CallbackToken,
    State(callbacks): State<Callbacks>,
    Json(body): Json<CallbackBody>,
) -> Result<Json<Done>, ApiError> {
    let outcome = callbacks.handle(body).await?;
    Ok(Done::new(callback_message(outcome)))
}

impl TryFrom<NewVoucher> for VoucherSpec {
    type Error = ApiError;

    /// Checks a submitted definition: the code, the discount and both dates first (each on its
    /// own), then the window and the limits together.
    fn try_from(req: NewVoucher) -> Result<VoucherSpec, ApiError> {
        let code = VoucherCode::parse(&req.code)?;
        let discount = Money::positive("discount_amount", req.discount_amount)?;
        let valid_from = parse_time("valid_from", &req.valid_from)?;
        let valid_until = parse_time("valid_until", &req.valid_until)?;
        let mut problems = Vec::new();
        if valid_until <= valid_from {
            problems.push(FieldError::new("valid_until", "must be after valid_from"));
        }
        if !(1..=10_000_000).contains(&req.total_limit) {
            problems.push(FieldError::new(
                "total_limit",
                "must be between 1 and 10000000",
            ));
        }
        let per_user_limit = req.per_user_limit.unwrap_or(1);
        if !(1..=1000).contains(&per_user_limit) {
            problems.push(FieldError::new(
                "per_user_limit",
                "must be between 1 and 1000",
            ));
        }
        if !problems.is_empty() {
            return Err(ApiError::validation(problems));
        }
        Ok(VoucherSpec {
            code,
            discount,
            valid_from,
            valid_until,
            total_limit: req.total_limit,
            per_user_limit,
        })
    }
}

/// An RFC 3339 date-time as epoch seconds.
fn parse_time(field: &str, raw: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.timestamp())
        .map_err(|_| {
            ApiError::validation(vec![FieldError::new(
                field,
                "must be an RFC 3339 date-time",
            )])
        })
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
    State(vouchers): State<Vouchers>,
    Json(req): Json<NewVoucher>,
) -> Result<Json<VoucherView>, ApiError> {
    let v = vouchers.create(VoucherSpec::try_from(req)?).await?;
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
    State(vouchers): State<Vouchers>,
    Query(q): Query<VoucherQuery>,
) -> Result<Json<VoucherView>, ApiError> {
    let code = VoucherCode::parse(&q.voucher_code)?;
    Ok(Json(vouchers.show(&code).await?))
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
        (status = 200, description = "Voucher Redeemed: `{status, message, data}`", body = VoucherRedeemed),
        (status = 400, description = "Invalid input, Voucher Expired or Voucher Quota Exceeded", body = Envelope),
        (status = 403, description = "Account is Disabled", body = Envelope),
        (status = 404, description = "Account does not exist or Voucher Not Found", body = Envelope),
        (status = 409, description = "Voucher Already Redeemed", body = Envelope),
    )
)]
async fn voucher_redeem(
    _holder: ApiKeyHolder,
    State(payers): State<Payers>,
    State(vouchers): State<Vouchers>,
    Json(req): Json<RedeemReq>,
) -> Result<Json<VoucherRedeemed>, ApiError> {
    let username = Username::parse(&req.username)?;
    let code = VoucherCode::parse(&req.voucher_code)?;
    payers.require_active(&username).await?;
    let data = vouchers.redeem(&username, &code).await?;
    Ok(Json(VoucherRedeemed {
        status: true,
        message: "Voucher Redeemed",
        data,
    }))
}

#[utoipa::path(
    get,
    path = "/check-voucher-redemption",
    tag = "voucher",
    params(VoucherQuery),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Whether the caller redeemed it: `{status, data}`", body = VoucherState),
        (status = 404, description = "Voucher Not Found", body = Envelope),
    )
)]
async fn voucher_check(
    user: AuthUser,
    State(vouchers): State<Vouchers>,
    Query(q): Query<VoucherQuery>,
) -> Result<Json<VoucherState>, ApiError> {
    let code = VoucherCode::parse(&q.voucher_code)?;
    Ok(Json(vouchers.check(&user.username, &code).await?.into()))
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
        (status = 200, description = "Banks of a type: `{status, data}`", body = BankList),
    )
)]
async fn bank_list(
    State(catalog): State<Catalog>,
    Json(req): Json<BankListReq>,
) -> Result<Json<BankList>, ApiError> {
    let kind = match req.kind {
        Some(k) => BankKind::parse(&k)?,
        None => BankKind::Disbursement,
    };
    Ok(Json(catalog.banks(kind).await?.into()))
}

#[utoipa::path(
    get,
    path = "/payment/list",
    tag = "payment",
    responses(
        (status = 200, description = "Payment types: `{status, data}`", body = PaymentTypeList),
    )
)]
async fn payment_list(State(catalog): State<Catalog>) -> Result<Json<PaymentTypeList>, ApiError> {
    Ok(Json(catalog.payment_types().await?.into()))
}

#[utoipa::path(
    post,
    path = "/sys/bank/refresh",
    tag = "payout",
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Banks refreshed from Xendit: `{status, data: {banks}}`", body = BanksRefreshed),
        (status = 400, description = "Refused by Xendit", body = Envelope),
        (status = 422, description = "Refused by Xendit", body = Envelope),
        (status = 502, description = "Payment provider unavailable", body = Envelope),
    )
)]
async fn bank_refresh(
    _holder: ApiKeyHolder,
    State(catalog): State<Catalog>,
) -> Result<Json<BanksRefreshed>, ApiError> {
    let banks = catalog.refresh_from_xendit().await?;
    Ok(Json(RefreshCount { banks }.into()))
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
    State(payouts): State<Payouts>,
    Json(req): Json<BankAccountReq>,
) -> Result<Json<BankAccountView>, ApiError> {
    let new = NewBankAccount::parse(
        &req.bank_code,
        &req.account_number,
        &req.account_holder_name,
    )?;
    Ok(Json(payouts.register_account(&user.username, new).await?))
}

#[utoipa::path(
    get,
    path = "/bank-account/list",
    tag = "payout",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The caller's bank accounts (masked): `{status, data}`", body = BankAccountList),
    )
)]
async fn bank_account_list(
    user: AuthUser,
    State(payouts): State<Payouts>,
) -> Result<Json<BankAccountList>, ApiError> {
    let list: Vec<BankAccountView> = payouts
        .accounts(&user.username)
        .await?
        .iter()
        .map(BankAccountView::from)
        .collect();
    Ok(Json(list.into()))
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

impl PayoutReq {
    fn into_request(self, idempotency_key: Option<String>) -> Result<PayoutRequest, ApiError> {
        Ok(PayoutRequest {
            amount: Money::positive("amount", self.amount)?,
            description: description(self.description, "Payout")?,
            bank_account_id: self.bank_account_id.trim().to_owned(),
            idempotency_key,
        })
    }
}

#[utoipa::path(
    post,
    path = "/payout",
    tag = "payout",
    request_body = PayoutReq,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for a repeated key (1-128 visible characters)")),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Payout requested, funds held: `{status, data}`", body = PayoutRequested),
        (status = 400, description = "Invalid amount, bad Idempotency-Key, Insufficient Balance, Insufficient Withdrawable Balance (part of the balance came from points), or refused by Xendit", body = Envelope),
        (status = 404, description = "Bank Account Not Found", body = Envelope),
        (status = 422, description = "Idempotency-Key was used with a different request, or refused by Xendit", body = Envelope),
        (status = 502, description = "Payment provider unavailable", body = Envelope),
    )
)]
async fn payout_request(
    user: AuthUser,
    State(payouts): State<Payouts>,
    IdempotencyKey(key): IdempotencyKey,
    Json(req): Json<PayoutReq>,
) -> Result<Json<PayoutRequested>, ApiError> {
    let req = req.into_request(key)?;
    Ok(Json(payouts.request(&user.username, req).await?.into()))
}

#[utoipa::path(
    get,
    path = "/payout/list",
    tag = "payout",
    params(ListQuery),
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The caller's payouts, newest first: `{status, data, next_cursor}`", body = PayoutPage),
    )
)]
async fn payout_list(
    user: AuthUser,
    State(payouts): State<Payouts>,
    Query(q): Query<ListQuery>,
) -> Result<Json<PayoutPage>, ApiError> {
    let limit = page_limit(q.limit)?;
    let (data, next_cursor) = payouts
        .list_own(&user.username, limit, q.cursor.filter(|c| !c.is_empty()))
        .await?;
    Ok(Json(PayoutPage {
        status: true,
        data,
        next_cursor,
    }))
}

#[utoipa::path(
    post,
    path = "/payout-callback",
    tag = "payout",
    request_body = PayoutWebhook,
    security(("callbackToken" = [])),
    responses(
        (status = 200, description = "Processed, or logged and deliberately ignored (idempotent; Xendit stops retrying): `{status, message}`", body = Done),
        (status = 400, description = "Malformed body", body = Envelope),
        (status = 503, description = "Storage unavailable (Xendit retries)", body = Envelope),
    )
)]
async fn payout_callback(
    _token: CallbackToken,
    State(payouts): State<Payouts>,
    Json(body): Json<PayoutWebhook>,
) -> Result<Json<Done>, ApiError> {
    let message = match payouts.on_callback(body).await? {
        PayoutCallbackOutcome::Completed => "Payout Completed",
        PayoutCallbackOutcome::Failed => "Payout Failed",
        PayoutCallbackOutcome::Reversed => "Payout Reversed",
        PayoutCallbackOutcome::AlreadyProcessed => "Already Processed",
        PayoutCallbackOutcome::InFlight => "Ignored",
        PayoutCallbackOutcome::Unknown => "Unknown Payout Logged",
        PayoutCallbackOutcome::Mismatch => "Payout Mismatch Logged",
    };
    Ok(Done::new(message))
}
