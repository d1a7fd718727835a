//! Xendit's invoice API (integrations.md §2): create, read, list, expire; and the invoice status
//! rules the control routes use too.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::gate;
use crate::error::XErr;
use crate::extract::{Path, Query};
use crate::state::Route;
use crate::state::{Simulator, resolve_in};

/// Xendit's largest IDR invoice amount.
const MAX_INVOICE_AMOUNT: i64 = 999_999_999;

/// `POST /v2/invoices` as the app's Xendit client sends it.
#[derive(Deserialize)]
struct CreateInvoice {
    external_id: String,
    amount: i64,
    description: Option<String>,
    payer_email: Option<String>,
    invoice_duration: Option<i64>,
    currency: Option<String>,
    payment_methods: Option<Vec<String>>,
}

/// Parses a Xendit request body; refuses like Xendit (400 `API_VALIDATION_ERROR`).
pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, XErr> {
    serde_json::from_slice(body).map_err(|e| XErr::validation(e.to_string()))
}

/// A new PENDING invoice for `req` (id, times and hosted-page URL filled in).
fn new_invoice(sim: &Simulator, req: CreateInvoice) -> Value {
    let id = uuid::Uuid::new_v4().simple().to_string()[..24].to_owned();
    json!({
        "id": id,
        "external_id": req.external_id,
        "user_id": "5f0000000000000000000001",
        "status": "PENDING",
        "merchant_name": "UserState Local",
        "amount": req.amount,
        "payer_email": req.payer_email,
        "description": req.description,
        "invoice_url": format!("{}{}/web/{id}", sim.settings.public_base_url, crate::PREFIX),
        "expiry_date": sim.iso(req.invoice_duration.unwrap_or(86_400)),
        "currency": req.currency.unwrap_or_else(|| "IDR".into()),
        "available_ewallets": [{"ewallet_type": "OVO"}, {"ewallet_type": "DANA"}, {"ewallet_type": "SHOPEEPAY"}],
        "payment_methods": req.payment_methods,
        "created": sim.iso(0),
        "updated": sim.iso(0),
    })
}

#[utoipa::path(
    post,
    path = "/_dev/xendit/v2/invoices",
    tag = "dev",
    request_body(content = Object, description = "Xendit create-invoice request"),
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Xendit invoice", body = Object),
        (status = 400, description = "Invalid request (Xendit error `{error_code, message}`)", body = Object),
        (status = 401, description = "INVALID_API_KEY: Basic auth must be the configured Xendit secret key as user, empty password", body = Object),
        (status = 404, description = "Not in local mode, or no such object (Xendit error)", body = Object),
        (status = 500, description = "Injected fault (`/_dev/xendit/faults`)", body = Object),
    )
)]
async fn create(
    State(sim): State<Arc<Simulator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, XErr> {
    let pass = gate(&sim, &headers, Route::CreateInvoice).await?;
    let req: CreateInvoice = parse(&body)?;
    if req.external_id.is_empty() || req.amount <= 0 {
        return Err(XErr::validation(
            "external_id and a positive amount are required",
        ));
    }
    if req.amount > MAX_INVOICE_AMOUNT {
        return Err(XErr::validation(
            "amount must be less than or equal to 999999999",
        ));
    }
    let inv = new_invoice(&sim, req);
    let id = inv["id"].as_str().unwrap_or_default().to_owned();
    sim.invoices(|m| m.insert(id, inv.clone()));
    pass.answer(&sim, Json(inv)).await
}

/// `create` under the trailing-slash spelling some Xendit clients use.
#[utoipa::path(
    post,
    path = "/_dev/xendit/v2/invoices/",
    tag = "dev",
    request_body(content = Object, description = "Xendit create-invoice request"),
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Xendit invoice", body = Object),
        (status = 401, description = "INVALID_API_KEY (Xendit error)", body = Object),
        (status = 404, description = "Not in local mode (Xendit error)", body = Object),
    )
)]
async fn create_with_slash(
    state: State<Arc<Simulator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, XErr> {
    create(state, headers, body).await
}

#[utoipa::path(
    get,
    path = "/_dev/xendit/v2/invoices/{id}",
    tag = "dev",
    params(("id" = String, Path, description = "Xendit invoice id (or external id where stated)")),
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Xendit invoice", body = Object),
        (status = 400, description = "Invalid request (Xendit error `{error_code, message}`)", body = Object),
        (status = 401, description = "INVALID_API_KEY: Basic auth must be the configured Xendit secret key as user, empty password", body = Object),
        (status = 404, description = "Not in local mode, or no such object (Xendit error)", body = Object),
        (status = 500, description = "Injected fault (`/_dev/xendit/faults`)", body = Object),
    )
)]
async fn get_one(
    State(sim): State<Arc<Simulator>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, XErr> {
    let pass = gate(&sim, &headers, Route::GetInvoice).await?;
    let inv = sim.invoice(&id).ok_or_else(XErr::invoice_not_found)?;
    pass.answer(&sim, Json(inv)).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    external_id: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/_dev/xendit/v2/invoices",
    tag = "dev",
    params(ListQuery),
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Xendit invoices, newest first", body = Object),
        (status = 400, description = "Invalid request (Xendit error `{error_code, message}`)", body = Object),
        (status = 401, description = "INVALID_API_KEY: Basic auth must be the configured Xendit secret key as user, empty password", body = Object),
        (status = 404, description = "Not in local mode, or no such object (Xendit error)", body = Object),
        (status = 500, description = "Injected fault (`/_dev/xendit/faults`)", body = Object),
    )
)]
async fn list(
    State(sim): State<Arc<Simulator>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Value>>, XErr> {
    let pass = gate(&sim, &headers, Route::ListInvoices).await?;
    let wanted = |v: &Value| {
        q.external_id
            .as_deref()
            .is_none_or(|e| v["external_id"] == e)
    };
    let mut all: Vec<Value> = sim.invoices(|m| m.values().filter(|v| wanted(v)).cloned().collect());
    all.sort_by(|a, b| b["created"].as_str().cmp(&a["created"].as_str()));
    all.truncate(q.limit.unwrap_or(10).min(100));
    pass.answer(&sim, Json(all)).await
}

#[utoipa::path(
    post,
    path = "/_dev/xendit/invoices/{id}/expire!",
    tag = "dev",
    params(("id" = String, Path, description = "Xendit invoice id (or external id where stated)")),
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "The expired Xendit invoice", body = Object),
        (status = 400, description = "Invalid request (Xendit error `{error_code, message}`)", body = Object),
        (status = 401, description = "INVALID_API_KEY: Basic auth must be the configured Xendit secret key as user, empty password", body = Object),
        (status = 404, description = "Not in local mode, or no such object (Xendit error)", body = Object),
        (status = 500, description = "Injected fault (`/_dev/xendit/faults`)", body = Object),
    )
)]
async fn api_expire(
    State(sim): State<Arc<Simulator>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, XErr> {
    let pass = gate(&sim, &headers, Route::ExpireInvoice).await?;
    let inv = expire_pending(&sim, &id)?;
    pass.answer(&sim, Json(inv)).await
}

/// The API's expire: only a PENDING invoice can be expired; a PAID, SETTLED or already EXPIRED
/// one answers 404 `INVOICE_NOT_FOUND_ERROR` (Xendit finds no expirable invoice by that id;
/// the exact code is unconfirmed, clients must read the invoice back on any failure).
fn expire_pending(sim: &Simulator, id: &str) -> Result<Value, XErr> {
    let now = sim.iso(0);
    sim.invoices(|m| {
        let inv = m.get_mut(id).ok_or_else(XErr::invoice_not_found)?;
        if inv["status"] != "PENDING" {
            return Err(XErr::invoice_not_found());
        }
        apply(inv, Target::Expired, Paying::default(), &now)?;
        Ok(inv.clone())
    })
}

/// The status an invoice is moved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Paid,
    Settled,
    Expired,
}

impl Target {
    fn as_str(self) -> &'static str {
        match self {
            Target::Paid => "PAID",
            Target::Settled => "SETTLED",
            Target::Expired => "EXPIRED",
        }
    }
}

/// Moves the invoice `id` (Xendit or external id) to `to`, as Xendit's rules allow; the invoice
/// as it now is.
/// How a payer pays: the amount (in full when `None`) and the channel (`None`: the first the
/// invoice offers).
#[derive(Clone, Copy, Default)]
pub(crate) struct Paying<'a> {
    pub amount: Option<i64>,
    pub method: Option<&'a str>,
}

pub(crate) fn transition(
    sim: &Simulator,
    id: &str,
    to: Target,
    paid: Paying<'_>,
) -> Result<Value, XErr> {
    let now = sim.iso(0);
    sim.invoices(|m| {
        let xid = resolve_in(m, id).ok_or_else(XErr::invoice_not_found)?;
        let inv = m.get_mut(&xid).ok_or_else(XErr::invoice_not_found)?;
        apply(inv, to, paid, &now)?;
        Ok(inv.clone())
    })
}

/// The status rule: PENDING may be paid, settled or expired, PAID may be settled; expiring an
/// expired invoice changes nothing; a paid one cannot expire.
fn apply(inv: &mut Value, to: Target, paid: Paying<'_>, now: &str) -> Result<(), XErr> {
    let cur = inv["status"].as_str().unwrap_or("").to_owned();
    match (cur.as_str(), to) {
        ("EXPIRED", Target::Expired) => {}
        ("PENDING", Target::Expired) => inv["status"] = to.as_str().into(),
        ("PAID" | "SETTLED", Target::Expired) => {
            return Err(XErr::new(
                StatusCode::BAD_REQUEST,
                "INVOICE_ALREADY_PAID_ERROR",
                "Invoice is already paid",
            ));
        }
        ("PENDING", Target::Paid | Target::Settled) => {
            let method = method_used(inv, paid.method)?;
            mark_paid(inv, to, paid.amount, &method, now);
        }
        ("PAID", Target::Settled) => inv["status"] = to.as_str().into(),
        (_, _) => {
            return Err(XErr::new(
                StatusCode::BAD_REQUEST,
                "INVALID_STATUS_TRANSITION",
                format!("invoice is {cur}"),
            ));
        }
    }
    inv["updated"] = now.into();
    Ok(())
}

/// The e-wallets the simulated checkout page offers (as `available_ewallets`).
const EWALLETS: [&str; 4] = ["OVO", "DANA", "SHOPEEPAY", "LINKAJA"];

/// The payment method a payer used: `method` (a channel code such as `OVO` or `BCA`), else the
/// first one the invoice offers (`payment_methods`), else OVO. A method the invoice does not
/// offer cannot be used, as on Xendit's checkout page.
fn method_used(inv: &Value, method: Option<&str>) -> Result<String, XErr> {
    let offered: Option<Vec<String>> = inv["payment_methods"].as_array().map(|a| {
        a.iter()
            .filter_map(|m| m.as_str().map(str::to_uppercase))
            .collect()
    });
    let chosen = match (method, offered.as_deref()) {
        (Some(m), _) => m.to_uppercase(),
        (None, Some([first, ..])) => first.clone(),
        (None, _) => "OVO".to_owned(),
    };
    if offered.is_some_and(|o| !o.contains(&chosen)) {
        return Err(XErr::new(
            StatusCode::BAD_REQUEST,
            "UNAVAILABLE_PAYMENT_METHOD_ERROR",
            format!("{chosen} is not offered by this invoice"),
        ));
    }
    Ok(chosen)
}

/// The payment fields of a paid invoice (paid in full unless `paid_amount` says otherwise),
/// reporting the method actually used.
fn mark_paid(inv: &mut Value, to: Target, paid_amount: Option<i64>, method: &str, now: &str) {
    let paid = paid_amount.unwrap_or(inv["amount"].as_i64().unwrap_or(0));
    inv["status"] = to.as_str().into();
    inv["paid_at"] = now.into();
    inv["paid_amount"] = paid.into();
    inv["adjusted_received_amount"] = paid.into();
    inv["payment_channel"] = method.into();
    if EWALLETS.contains(&method) {
        inv["payment_method"] = "EWALLET".into();
        inv["ewallet_type"] = method.into();
    } else {
        inv["payment_method"] = "BANK_TRANSFER".into();
    }
}

/// The invoice API routes.
pub(crate) fn routes() -> OpenApiRouter<Arc<Simulator>> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(create_with_slash))
        .routes(routes!(get_one))
        .routes(routes!(api_expire))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2024-01-01T00:00:00.000Z";

    fn invoice(status: &str) -> Value {
        json!({"id": "x1", "external_id": "e1", "status": status, "amount": 5_000})
    }

    #[test]
    fn a_pending_invoice_is_paid_in_full_unless_told_otherwise() {
        let mut inv = invoice("PENDING");
        apply(&mut inv, Target::Paid, Paying::default(), NOW).expect("paid");
        assert_eq!(inv["status"], "PAID");
        assert_eq!(inv["paid_amount"], 5_000);
        assert_eq!(inv["paid_at"], NOW);
        assert_eq!(inv["updated"], NOW);

        let mut inv = invoice("PENDING");
        apply(
            &mut inv,
            Target::Settled,
            Paying {
                amount: Some(4_000),
                method: None,
            },
            NOW,
        )
        .expect("settled");
        assert_eq!(inv["status"], "SETTLED");
        assert_eq!(inv["adjusted_received_amount"], 4_000);
    }

    #[test]
    fn a_paid_invoice_settles_but_never_expires_and_expiry_is_idempotent() {
        let mut inv = invoice("PAID");
        let err = apply(&mut inv, Target::Expired, Paying::default(), NOW).expect_err("paid");
        assert_eq!(err.code(), "INVOICE_ALREADY_PAID_ERROR");
        apply(&mut inv, Target::Settled, Paying::default(), NOW).expect("settles");

        let mut inv = invoice("EXPIRED");
        apply(&mut inv, Target::Expired, Paying::default(), NOW).expect("again");
        assert_eq!(inv["status"], "EXPIRED");
        let err = apply(&mut inv, Target::Paid, Paying::default(), NOW).expect_err("expired");
        assert_eq!(err.code(), "INVALID_STATUS_TRANSITION");
    }

    #[test]
    fn a_payer_can_only_use_a_method_the_invoice_offers_and_the_method_used_is_reported() {
        let mut inv = invoice("PENDING");
        inv["payment_methods"] = json!(["DANA"]);
        let ovo = Paying {
            amount: None,
            method: Some("OVO"),
        };
        let err = apply(&mut inv.clone(), Target::Paid, ovo, NOW).expect_err("not offered");
        assert_eq!(err.code(), "UNAVAILABLE_PAYMENT_METHOD_ERROR");
        apply(&mut inv, Target::Paid, Paying::default(), NOW).expect("paid with DANA");
        assert_eq!(inv["payment_channel"], "DANA");
        assert_eq!(inv["ewallet_type"], "DANA");
        assert_eq!(inv["payment_method"], "EWALLET");
        let mut open = invoice("PENDING");
        let bca = Paying {
            amount: None,
            method: Some("bca"),
        };
        apply(&mut open, Target::Paid, bca, NOW).expect("any method when none is restricted");
        assert_eq!(open["payment_method"], "BANK_TRANSFER");
        assert_eq!(open["payment_channel"], "BCA");
        assert!(open.get("ewallet_type").is_none());
    }
}
