//! Local Xendit simulator (dev tool, local backend only), mounted under `/_dev/xendit`. It speaks
//! Xendit's invoice wire format (integrations.md §2) with Basic auth on the configured secret key,
//! serves a hosted-checkout page with Pay / Expire buttons, and delivers the real callback payload
//! (§3) with the configured `x-callback-token` to `{PUBLIC_BASE_URL}/payment-callback`.
//!
//! Control routes (scripts and tests): `POST /_dev/xendit/invoices/{id}/pay` (`{paid_amount?,
//! status?: "PAID"|"SETTLED", deliver?: bool}`), `/expire` (`{deliver?}`), `/callback` (re-deliver the
//! current state), `POST /_dev/xendit/disbursements/{id}/complete|fail` (`{failure_code?, deliver?}`,
//! callback to `/disbursement-callback`), and `POST /_dev/xendit/faults` `{mode: "none"|"error500"|"timeout"}`.
//! State lives in memory: a restart forgets simulated invoices.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use chrono::SecondsFormat;
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::xendit::{CreateInvoice, XBank};
use crate::app::App;
use crate::config::Backend;
use crate::http::{Path, Query};

/// A fault the simulator injects into its Xendit API routes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    #[default]
    None,
    /// Answer 500 `SERVER_ERROR`.
    Error500,
    /// Answer only after the client's timeout has passed.
    Timeout,
}

/// Simulator state.
#[derive(Default)]
pub struct Simulator {
    invoices: Mutex<HashMap<String, Value>>,
    /// Disbursements by id, and idempotency keys already used.
    disbursements: Mutex<(HashMap<String, Value>, HashMap<String, String>)>,
    fault: Mutex<Fault>,
}

impl Simulator {
    fn fault(&self) -> Fault {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Value>) -> R) -> R {
        f(&mut self.invoices.lock().unwrap_or_else(|p| p.into_inner()))
    }
    /// Finds an invoice by Xendit id or by external id; returns its Xendit id.
    fn resolve(&self, id: &str) -> Option<String> {
        self.with(|m| {
            if m.contains_key(id) {
                return Some(id.to_owned());
            }
            m.values()
                .find(|v| v["external_id"] == id)
                .and_then(|v| v["id"].as_str().map(str::to_owned))
        })
    }
}

/// A Xendit-shaped error answer (`{error_code, message}`).
struct XErr {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for XErr {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({ "error_code": self.code, "message": self.message })),
        )
            .into_response()
    }
}

fn xerr(status: StatusCode, code: &'static str, message: &str) -> XErr {
    XErr {
        status,
        code,
        message: message.to_owned(),
    }
}

fn iso(app: &App, offset_secs: i64) -> String {
    (app.clock.now() + chrono::Duration::seconds(offset_secs))
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The Xendit key the local app uses (the simulator only runs in local mode, which always has one).
fn local_key(app: &App) -> &str {
    app.config
        .xendit_secret_key
        .as_ref()
        .map_or("", crate::config::Secret::expose)
}

/// The callback token the simulator sends (the app's own).
fn local_token(app: &App) -> &str {
    app.config
        .xendit_callback_token
        .as_ref()
        .map_or("", crate::config::Secret::expose)
}

/// Checks local mode, Basic auth with the configured secret, and injected faults.
async fn gate(app: &App, headers: &HeaderMap) -> Result<(), XErr> {
    if app.config.backend != Backend::Local {
        return Err(xerr(StatusCode::NOT_FOUND, "NOT_FOUND", "not found"));
    }
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{}:", local_key(app)));
    let given = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .unwrap_or("");
    if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(xerr(
            StatusCode::UNAUTHORIZED,
            "INVALID_API_KEY",
            "API key is invalid",
        ));
    }
    match app.simulator.fault() {
        Fault::None => Ok(()),
        Fault::Error500 => Err(xerr(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SERVER_ERROR",
            "simulated failure",
        )),
        Fault::Timeout => {
            tokio::time::sleep(Duration::from_millis(app.config.xendit_timeout_ms + 1_000)).await;
            Err(xerr(
                StatusCode::INTERNAL_SERVER_ERROR,
                "SERVER_ERROR",
                "simulated timeout",
            ))
        }
    }
}

fn local_only(app: &App) -> Result<(), XErr> {
    if app.config.backend == Backend::Local {
        Ok(())
    } else {
        Err(xerr(StatusCode::NOT_FOUND, "NOT_FOUND", "not found"))
    }
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
async fn create(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = gate(&app, &headers).await {
        return r.into_response();
    }
    let req: CreateInvoice = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return xerr(
                StatusCode::BAD_REQUEST,
                "API_VALIDATION_ERROR",
                &e.to_string(),
            )
            .into_response();
        }
    };
    if req.external_id.is_empty() || req.amount <= 0 {
        return xerr(
            StatusCode::BAD_REQUEST,
            "API_VALIDATION_ERROR",
            "external_id and a positive amount are required",
        )
        .into_response();
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..24].to_owned();
    let inv = json!({
        "id": id,
        "external_id": req.external_id,
        "user_id": "5f0000000000000000000001",
        "status": "PENDING",
        "merchant_name": "UserState Local",
        "amount": req.amount,
        "payer_email": req.payer_email,
        "description": req.description,
        "invoice_url": format!("{}/_dev/xendit/web/{id}", app.config.public_base_url),
        "expiry_date": iso(&app, req.invoice_duration.unwrap_or(86_400)),
        "currency": req.currency.unwrap_or_else(|| "IDR".into()),
        "available_ewallets": [{"ewallet_type": "OVO"}, {"ewallet_type": "DANA"}, {"ewallet_type": "SHOPEEPAY"}],
        "payment_methods": req.payment_methods,
        "created": iso(&app, 0),
        "updated": iso(&app, 0),
    });
    app.simulator.with(|m| m.insert(id, inv.clone()));
    axum::Json(inv).into_response()
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
async fn get_one(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = gate(&app, &headers).await {
        return r.into_response();
    }
    match app.simulator.with(|m| m.get(&id).cloned()) {
        Some(v) => axum::Json(v).into_response(),
        None => xerr(
            StatusCode::NOT_FOUND,
            "INVOICE_NOT_FOUND_ERROR",
            "Invoice not found",
        )
        .into_response(),
    }
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
async fn list(State(app): State<App>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    if let Err(r) = gate(&app, &headers).await {
        return r.into_response();
    }
    let mut all: Vec<Value> = app.simulator.with(|m| {
        m.values()
            .filter(|v| {
                q.external_id
                    .as_deref()
                    .is_none_or(|e| v["external_id"] == e)
            })
            .cloned()
            .collect()
    });
    all.sort_by(|a, b| b["created"].as_str().cmp(&a["created"].as_str()));
    all.truncate(q.limit.unwrap_or(10).min(100));
    axum::Json(all).into_response()
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
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = gate(&app, &headers).await {
        return r.into_response();
    }
    match transition(&app, &id, "EXPIRED", None) {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r.into_response(),
    }
}

#[utoipa::path(
    get,
    path = "/_dev/xendit/available_disbursements_banks",
    tag = "dev",
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Xendit bank list", body = Object),
        (status = 400, description = "Invalid request (Xendit error `{error_code, message}`)", body = Object),
        (status = 401, description = "INVALID_API_KEY: Basic auth must be the configured Xendit secret key as user, empty password", body = Object),
        (status = 404, description = "Not in local mode, or no such object (Xendit error)", body = Object),
        (status = 500, description = "Injected fault (`/_dev/xendit/faults`)", body = Object),
    )
)]
async fn banks(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(r) = gate(&app, &headers).await {
        return r.into_response();
    }
    let banks: Vec<XBank> = [
        ("Bank Central Asia (BCA)", "BCA"),
        ("Bank Negara Indonesia (BNI)", "BNI"),
        ("Bank Rakyat Indonesia (BRI)", "BRI"),
        ("Bank Mandiri", "MANDIRI"),
        ("Bank Permata", "PERMATA"),
        ("Bank Syariah Indonesia (BSI)", "BSI"),
        ("CIMB Niaga", "CIMB"),
        ("OVO", "OVO"),
        ("DANA", "DANA"),
    ]
    .into_iter()
    .map(|(name, code)| XBank {
        name: name.into(),
        code: code.into(),
        can_disburse: true,
        can_name_validate: true,
    })
    .collect();
    axum::Json(banks).into_response()
}

/// Moves an invoice to PAID/SETTLED/EXPIRED, as Xendit's rules allow.
fn transition(app: &App, id: &str, to: &str, paid_amount: Option<i64>) -> Result<Value, XErr> {
    let Some(xid) = app.simulator.resolve(id) else {
        return Err(xerr(
            StatusCode::NOT_FOUND,
            "INVOICE_NOT_FOUND_ERROR",
            "Invoice not found",
        ));
    };
    let now = iso(app, 0);
    app.simulator.with(|m| {
        let inv = m.get_mut(&xid).ok_or_else(|| {
            xerr(
                StatusCode::NOT_FOUND,
                "INVOICE_NOT_FOUND_ERROR",
                "Invoice not found",
            )
        })?;
        let cur = inv["status"].as_str().unwrap_or("").to_owned();
        match (cur.as_str(), to) {
            ("EXPIRED", "EXPIRED") => {}
            ("PENDING", "EXPIRED") => {
                inv["status"] = "EXPIRED".into();
            }
            ("PAID" | "SETTLED", "EXPIRED") => {
                return Err(xerr(
                    StatusCode::BAD_REQUEST,
                    "INVOICE_ALREADY_PAID_ERROR",
                    "Invoice is already paid",
                ));
            }
            ("PENDING", "PAID" | "SETTLED") | ("PAID", "SETTLED") => {
                let amount = inv["amount"].as_i64().unwrap_or(0);
                inv["status"] = to.into();
                inv["paid_at"] = now.clone().into();
                inv["paid_amount"] = paid_amount.unwrap_or(amount).into();
                inv["adjusted_received_amount"] = paid_amount.unwrap_or(amount).into();
                inv["payment_method"] = "EWALLET".into();
                inv["payment_channel"] = "OVO".into();
                inv["ewallet_type"] = "OVO".into();
            }
            (_, _) => {
                return Err(xerr(
                    StatusCode::BAD_REQUEST,
                    "INVALID_STATUS_TRANSITION",
                    &format!("invoice is {cur}"),
                ));
            }
        }
        inv["updated"] = now.clone().into();
        Ok(inv.clone())
    })
}

/// The callback body Xendit sends for an invoice (integrations.md §3).
pub fn callback_payload(inv: &Value) -> Value {
    let mut body = json!({
        "id": inv["id"], "external_id": inv["external_id"], "user_id": inv["user_id"], "is_high": false,
        "status": inv["status"], "merchant_name": inv["merchant_name"], "amount": inv["amount"],
        "payer_email": inv["payer_email"], "description": inv["description"], "currency": inv["currency"],
        "created": inv["created"], "updated": inv["updated"],
    });
    for k in [
        "paid_amount",
        "paid_at",
        "payment_method",
        "payment_channel",
        "ewallet_type",
        "adjusted_received_amount",
    ] {
        if !inv[k].is_null() {
            body[k] = inv[k].clone();
        }
    }
    body
}

/// Posts the callback to our endpoint; returns the HTTP status it answered (0 when unreachable).
async fn deliver(app: &App, inv: &Value) -> u16 {
    let url = format!("{}/payment-callback", app.config.public_base_url);
    let res = reqwest::Client::new()
        .post(url)
        .header("x-callback-token", local_token(app))
        .json(&callback_payload(inv))
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    match res {
        Ok(r) => r.status().as_u16(),
        Err(e) => {
            tracing::warn!(error = %e, "simulator could not deliver the callback");
            0
        }
    }
}

#[derive(Deserialize, Default)]
struct ControlBody {
    paid_amount: Option<i64>,
    status: Option<String>,
    deliver: Option<bool>,
}

fn control_body(body: &Bytes) -> ControlBody {
    serde_json::from_slice(body).unwrap_or_default()
}

async fn control(app: &App, id: &str, to: &str, body: ControlBody) -> Response {
    if let Err(r) = local_only(app) {
        return r.into_response();
    }
    let inv = match transition(app, id, to, body.paid_amount) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let callback_status = if body.deliver.unwrap_or(true) {
        Some(deliver(app, &inv).await)
    } else {
        None
    };
    axum::Json(json!({ "invoice": inv, "callback_status": callback_status })).into_response()
}

#[utoipa::path(
    post,
    path = "/_dev/xendit/invoices/{id}/pay",
    tag = "dev",
    params(("id" = String, Path, description = "Xendit invoice id (or external id where stated)")),
    request_body(content = Object, description = "`{paid_amount?, status?: \"PAID\"|\"SETTLED\", deliver?: bool}`"),
    responses(
        (status = 200, description = "`{invoice, callback_status}` (the callback's HTTP status, 0 if undeliverable, null if not delivered)", body = Object),
        (status = 400, description = "Transition not allowed (Xendit error)", body = Object),
        (status = 404, description = "Invoice not found, or not in local mode (Xendit error)", body = Object),
    )
)]
async fn pay(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> Response {
    let b = control_body(&body);
    let to = if b.status.as_deref() == Some("SETTLED") {
        "SETTLED"
    } else {
        "PAID"
    };
    control(&app, &id, to, b).await
}

#[utoipa::path(
    post,
    path = "/_dev/xendit/invoices/{id}/expire",
    tag = "dev",
    params(("id" = String, Path, description = "Xendit invoice id (or external id where stated)")),
    request_body(content = Object, description = "`{deliver?: bool}`"),
    responses(
        (status = 200, description = "`{invoice, callback_status}`", body = Object),
        (status = 400, description = "Transition not allowed (Xendit error)", body = Object),
        (status = 404, description = "Invoice not found, or not in local mode (Xendit error)", body = Object),
    )
)]
async fn ctl_expire(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> Response {
    control(&app, &id, "EXPIRED", control_body(&body)).await
}

#[utoipa::path(
    post,
    path = "/_dev/xendit/invoices/{id}/callback",
    tag = "dev",
    params(("id" = String, Path, description = "Xendit invoice id or external id")),
    responses(
        (status = 200, description = "`{invoice, callback_status}`", body = Object),
        (status = 404, description = "Invoice not found, or not in local mode (Xendit error)", body = Object),
    )
)]
async fn redeliver(State(app): State<App>, Path(id): Path<String>) -> Response {
    if let Err(r) = local_only(&app) {
        return r.into_response();
    }
    let inv = app
        .simulator
        .resolve(&id)
        .and_then(|x| app.simulator.with(|m| m.get(&x).cloned()));
    match inv {
        Some(inv) => {
            let status = deliver(&app, &inv).await;
            axum::Json(json!({ "invoice": inv, "callback_status": status })).into_response()
        }
        None => xerr(
            StatusCode::NOT_FOUND,
            "INVOICE_NOT_FOUND_ERROR",
            "Invoice not found",
        )
        .into_response(),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
struct FaultBody {
    mode: Fault,
}

#[utoipa::path(
    post,
    path = "/_dev/xendit/faults",
    tag = "dev",
    request_body = FaultBody,
    responses(
        (status = 200, description = "`{mode}` now in effect for the Xendit API routes", body = Object),
        (status = 400, description = "Invalid mode", body = crate::error::Envelope),
        (status = 404, description = "Not in local mode (Xendit error)", body = Object),
    )
)]
async fn faults(
    State(app): State<App>,
    crate::http::Json(b): crate::http::Json<FaultBody>,
) -> Response {
    if let Err(r) = local_only(&app) {
        return r.into_response();
    }
    *app.simulator
        .fault
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = b.mode;
    axum::Json(json!({ "mode": format!("{:?}", b.mode).to_lowercase() })).into_response()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[utoipa::path(
    get,
    path = "/_dev/xendit/web/{id}",
    tag = "dev",
    params(("id" = String, Path, description = "Xendit invoice id (or external id where stated)")),
    responses(
        (status = 200, description = "Hosted checkout page with Pay / Expire buttons", content_type = "text/html", body = String),
        (status = 404, description = "Invoice not found, or not in local mode (Xendit error)", body = Object),
    )
)]
async fn web(State(app): State<App>, Path(id): Path<String>) -> Response {
    if let Err(r) = local_only(&app) {
        return r.into_response();
    }
    let Some(inv) = app.simulator.with(|m| m.get(&id).cloned()) else {
        return xerr(
            StatusCode::NOT_FOUND,
            "INVOICE_NOT_FOUND_ERROR",
            "Invoice not found",
        )
        .into_response();
    };
    let s = |k: &str| esc(inv[k].as_str().unwrap_or(""));
    let id = esc(&id);
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Xendit simulator: invoice {id}</title></head>\
<body><h1>Local Xendit checkout</h1><dl><dt>Invoice</dt><dd>{id}</dd><dt>Reference</dt><dd>{ext}</dd>\
<dt>Amount</dt><dd>{cur} {amount}</dd><dt>Description</dt><dd>{desc}</dd><dt>Status</dt><dd id=\"status\">{status}</dd>\
<dt>Expires</dt><dd>{exp}</dd></dl>\
<form method=\"post\" action=\"/_dev/xendit/invoices/{id}/pay\"><button type=\"submit\">Pay</button></form>\
<form method=\"post\" action=\"/_dev/xendit/invoices/{id}/expire\"><button type=\"submit\">Expire</button></form>\
</body></html>",
        ext = s("external_id"),
        cur = s("currency"),
        amount = inv["amount"].as_i64().unwrap_or(0),
        desc = s("description"),
        status = s("status"),
        exp = s("expiry_date"),
    );
    Html(page).into_response()
}

// ---- Disbursements (integrations.md §4.1–4.3)

#[utoipa::path(
    post,
    path = "/_dev/xendit/disbursements",
    tag = "dev",
    request_body(content = Object, description = "Xendit create-disbursement request; `X-IDEMPOTENCY-KEY` header"),
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Xendit disbursement", body = Object),
        (status = 400, description = "Invalid request (Xendit error `{error_code, message}`)", body = Object),
        (status = 401, description = "INVALID_API_KEY: Basic auth must be the configured Xendit secret key as user, empty password", body = Object),
        (status = 404, description = "Not in local mode, or no such object (Xendit error)", body = Object),
        (status = 500, description = "Injected fault (`/_dev/xendit/faults`)", body = Object),
    )
)]
async fn disb_create(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = gate(&app, &headers).await {
        return r.into_response();
    }
    let req: super::xendit::CreateDisbursement = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return xerr(
                StatusCode::BAD_REQUEST,
                "API_VALIDATION_ERROR",
                &e.to_string(),
            )
            .into_response();
        }
    };
    if req.amount <= 0 || req.external_id.is_empty() || req.account_number.is_empty() {
        return xerr(
            StatusCode::BAD_REQUEST,
            "API_VALIDATION_ERROR",
            "invalid disbursement",
        )
        .into_response();
    }
    let key = headers
        .get("x-idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let id = format!("disb-{}", uuid::Uuid::new_v4().simple());
    let now = iso(&app, 0);
    let d = json!({
        "id": id, "user_id": "5f0000000000000000000001", "external_id": req.external_id, "amount": req.amount,
        "bank_code": req.bank_code, "account_holder_name": req.account_holder_name,
        "disbursement_description": req.description, "status": "PENDING", "created": now, "updated": now,
    });
    let mut st = app
        .simulator
        .disbursements
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(k) = key {
        if st.1.contains_key(&k) {
            return xerr(
                StatusCode::BAD_REQUEST,
                "DUPLICATE_TRANSACTION_ERROR",
                "idempotency key already used",
            )
            .into_response();
        }
        st.1.insert(k, id.clone());
    }
    st.0.insert(id, d.clone());
    axum::Json(d).into_response()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DisbQuery {
    external_id: String,
}

#[utoipa::path(
    get,
    path = "/_dev/xendit/disbursements",
    tag = "dev",
    params(DisbQuery),
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Xendit disbursements", body = Object),
        (status = 400, description = "Invalid request (Xendit error `{error_code, message}`)", body = Object),
        (status = 401, description = "INVALID_API_KEY: Basic auth must be the configured Xendit secret key as user, empty password", body = Object),
        (status = 404, description = "Not in local mode, or no such object (Xendit error)", body = Object),
        (status = 500, description = "Injected fault (`/_dev/xendit/faults`)", body = Object),
    )
)]
async fn disb_list(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<DisbQuery>,
) -> Response {
    if let Err(r) = gate(&app, &headers).await {
        return r.into_response();
    }
    let st = app
        .simulator
        .disbursements
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let found: Vec<Value> =
        st.0.values()
            .filter(|d| d["external_id"] == q.external_id.as_str())
            .cloned()
            .collect();
    axum::Json(found).into_response()
}

#[derive(Deserialize, Default)]
struct DisbControl {
    failure_code: Option<String>,
    deliver: Option<bool>,
}

async fn disb_finish(app: &App, id: &str, to: &str, body: &Bytes) -> Response {
    if let Err(r) = local_only(app) {
        return r.into_response();
    }
    let b: DisbControl = serde_json::from_slice(body).unwrap_or_default();
    let d = {
        let mut st = app
            .simulator
            .disbursements
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let key = if st.0.contains_key(id) {
            Some(id.to_owned())
        } else {
            st.0.values()
                .find(|d| d["external_id"] == id)
                .and_then(|d| d["id"].as_str().map(str::to_owned))
        };
        let Some(d) = key.and_then(|k| st.0.get_mut(&k)) else {
            return xerr(
                StatusCode::NOT_FOUND,
                "DATA_NOT_FOUND_ERROR",
                "Disbursement not found",
            )
            .into_response();
        };
        if d["status"] != "PENDING" {
            return xerr(
                StatusCode::BAD_REQUEST,
                "INVALID_STATUS_TRANSITION",
                "disbursement is final",
            )
            .into_response();
        }
        d["status"] = to.into();
        d["updated"] = iso(app, 0).into();
        if to == "FAILED" {
            d["failure_code"] = b
                .failure_code
                .clone()
                .unwrap_or_else(|| "REJECTED_BY_BANK".into())
                .into();
        }
        d.clone()
    };
    let callback_status = if b.deliver.unwrap_or(true) {
        let url = format!("{}/disbursement-callback", app.config.public_base_url);
        let res = reqwest::Client::new()
            .post(url)
            .header("x-callback-token", local_token(app))
            .json(&d)
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        Some(res.map(|r| r.status().as_u16()).unwrap_or(0))
    } else {
        None
    };
    axum::Json(json!({ "disbursement": d, "callback_status": callback_status })).into_response()
}

#[utoipa::path(
    post,
    path = "/_dev/xendit/disbursements/{id}/complete",
    tag = "dev",
    params(("id" = String, Path, description = "Disbursement id")),
    request_body(content = Object, description = "`{deliver?: bool}`"),
    responses(
        (status = 200, description = "`{disbursement, callback_status}`", body = Object),
        (status = 400, description = "Disbursement is final (Xendit error)", body = Object),
        (status = 404, description = "Disbursement not found, or not in local mode (Xendit error)", body = Object),
    )
)]
async fn disb_complete(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> Response {
    disb_finish(&app, &id, "COMPLETED", &body).await
}

#[utoipa::path(
    post,
    path = "/_dev/xendit/disbursements/{id}/fail",
    tag = "dev",
    params(("id" = String, Path, description = "Disbursement id")),
    request_body(content = Object, description = "`{failure_code?, deliver?: bool}`"),
    responses(
        (status = 200, description = "`{disbursement, callback_status}`", body = Object),
        (status = 400, description = "Disbursement is final (Xendit error)", body = Object),
        (status = 404, description = "Disbursement not found, or not in local mode (Xendit error)", body = Object),
    )
)]
async fn disb_fail(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> Response {
    disb_finish(&app, &id, "FAILED", &body).await
}

/// The simulator's routes with their documentation (all tagged `dev`; answer 404 unless the
/// backend is local). Errors of the Xendit API routes are Xendit-shaped (`{error_code, message}`),
/// not envelopes: the simulator stands in for Xendit.
pub fn openapi_router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(create_with_slash))
        .routes(routes!(get_one))
        .routes(routes!(api_expire))
        .routes(routes!(banks))
        .routes(routes!(web))
        .routes(routes!(pay))
        .routes(routes!(ctl_expire))
        .routes(routes!(redeliver))
        .routes(routes!(faults))
        .routes(routes!(disb_create, disb_list))
        .routes(routes!(disb_complete))
        .routes(routes!(disb_fail))
}

/// The simulator's routes (answer 404 unless the backend is local).
pub fn router() -> Router<App> {
    openapi_router().split_for_parts().0
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
async fn create_with_slash(state: State<App>, headers: HeaderMap, body: Bytes) -> Response {
    create(state, headers, body).await
}
