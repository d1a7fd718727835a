//! Xendit's disbursement API (integrations.md §4.1–4.3) and the bank list, plus the control
//! routes that complete or fail a disbursement and deliver its callback.

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
use crate::callback::deliver_disbursement;
use crate::error::XErr;
use crate::extract::{Path, Query};
use crate::invoices::parse;
use crate::state::Route;
use crate::state::{Simulator, resolve_in};

/// `POST /disbursements` as the app's Xendit client sends it.
#[derive(Deserialize)]
struct CreateDisbursement {
    external_id: String,
    bank_code: String,
    account_holder_name: String,
    account_number: String,
    description: String,
    amount: i64,
}

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
async fn create(
    State(sim): State<Arc<Simulator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, XErr> {
    let pass = gate(&sim, &headers, Route::Payouts).await?;
    let req: CreateDisbursement = parse(&body)?;
    if req.amount <= 0 || req.external_id.is_empty() || req.account_number.is_empty() {
        return Err(XErr::validation("invalid disbursement"));
    }
    let key = headers
        .get("x-idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let id = format!("disb-{}", uuid::Uuid::new_v4().simple());
    let now = sim.iso(0);
    // Xendit does not echo the account number.
    let d = json!({
        "id": id, "user_id": "5f0000000000000000000001", "external_id": req.external_id,
        "amount": req.amount, "bank_code": req.bank_code,
        "account_holder_name": req.account_holder_name,
        "disbursement_description": req.description, "status": "PENDING",
        "created": now, "updated": now,
    });
    sim.disbursements(|st| {
        if let Some(k) = key {
            if st.keys.contains_key(&k) {
                return Err(XErr::new(
                    StatusCode::BAD_REQUEST,
                    "DUPLICATE_TRANSACTION_ERROR",
                    "idempotency key already used",
                ));
            }
            st.keys.insert(k, id.clone());
        }
        st.by_id.insert(id, d.clone());
        Ok(())
    })?;
    pass.answer(&sim, Json(d)).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    external_id: String,
}

#[utoipa::path(
    get,
    path = "/_dev/xendit/disbursements",
    tag = "dev",
    params(ListQuery),
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Xendit disbursements", body = Object),
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
    let pass = gate(&sim, &headers, Route::Payouts).await?;
    let found = sim.disbursements(|st| {
        st.by_id
            .values()
            .filter(|d| d["external_id"] == q.external_id.as_str())
            .cloned()
            .collect()
    });
    pass.answer(&sim, Json(found)).await
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
async fn banks(
    State(sim): State<Arc<Simulator>>,
    headers: HeaderMap,
) -> Result<Json<Vec<Value>>, XErr> {
    let pass = gate(&sim, &headers, Route::Payouts).await?;
    const BANKS: [(&str, &str); 9] = [
        ("Bank Central Asia (BCA)", "BCA"),
        ("Bank Negara Indonesia (BNI)", "BNI"),
        ("Bank Rakyat Indonesia (BRI)", "BRI"),
        ("Bank Mandiri", "MANDIRI"),
        ("Bank Permata", "PERMATA"),
        ("Bank Syariah Indonesia (BSI)", "BSI"),
        ("CIMB Niaga", "CIMB"),
        ("OVO", "OVO"),
        ("DANA", "DANA"),
    ];
    let banks = BANKS
        .into_iter()
        .map(|(name, code)| {
            json!({"name": name, "code": code, "can_disburse": true, "can_name_validate": true})
        })
        .collect();
    pass.answer(&sim, Json(banks)).await
}

/// The body of `complete` / `fail`.
#[derive(Deserialize, Default)]
struct FinishBody {
    failure_code: Option<String>,
    deliver: Option<bool>,
}

/// The final status a disbursement is moved to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    Failed,
}

/// Moves a PENDING disbursement (by id or external id) to its final status.
fn finish_in(
    sim: &Simulator,
    id: &str,
    to: Outcome,
    failure_code: Option<String>,
) -> Result<Value, XErr> {
    let now = sim.iso(0);
    sim.disbursements(|st| {
        let d = resolve_in(&st.by_id, id)
            .and_then(|k| st.by_id.get_mut(&k))
            .ok_or_else(|| {
                XErr::new(
                    StatusCode::NOT_FOUND,
                    "DATA_NOT_FOUND_ERROR",
                    "Disbursement not found",
                )
            })?;
        if d["status"] != "PENDING" {
            return Err(XErr::new(
                StatusCode::BAD_REQUEST,
                "INVALID_STATUS_TRANSITION",
                "disbursement is final",
            ));
        }
        d["updated"] = now.into();
        match to {
            Outcome::Completed => d["status"] = "COMPLETED".into(),
            Outcome::Failed => {
                d["status"] = "FAILED".into();
                d["failure_code"] = failure_code
                    .unwrap_or_else(|| "REJECTED_BY_BANK".into())
                    .into();
            }
        }
        Ok(d.clone())
    })
}

async fn finish(
    sim: &Arc<Simulator>,
    id: &str,
    to: Outcome,
    body: &Bytes,
) -> Result<Json<Value>, XErr> {
    let b: FinishBody = serde_json::from_slice(body).unwrap_or_default();
    let d = finish_in(sim, id, to, b.failure_code)?;
    let callback_status = if b.deliver.unwrap_or(true) {
        Some(deliver_disbursement(sim, &d).await)
    } else {
        None
    };
    Ok(Json(
        json!({ "disbursement": d, "callback_status": callback_status }),
    ))
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
async fn complete(
    State(sim): State<Arc<Simulator>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, XErr> {
    finish(&sim, &id, Outcome::Completed, &body).await
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
async fn fail(
    State(sim): State<Arc<Simulator>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, XErr> {
    finish(&sim, &id, Outcome::Failed, &body).await
}

/// The disbursement routes.
pub(crate) fn routes() -> OpenApiRouter<Arc<Simulator>> {
    OpenApiRouter::new()
        .routes(routes!(banks))
        .routes(routes!(create, list))
        .routes(routes!(complete))
        .routes(routes!(fail))
}
