//! Xendit's Payouts API (`/v2/payouts`, integrations.md §4.4) and the bank list, plus the control
//! routes that move a payout to its final status and deliver its webhook.

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
use crate::callback::{deliver_payout, payout_webhook};
use crate::error::XErr;
use crate::extract::{Path, Query};
use crate::invoices::parse;
use crate::state::Route;
use crate::state::{Simulator, resolve_by};

/// The destination of a payout.
#[derive(Deserialize)]
struct Destination {
    account_number: String,
    account_holder_name: String,
}

/// `POST /v2/payouts` as the app's Xendit client sends it.
#[derive(Deserialize)]
struct CreatePayout {
    reference_id: String,
    channel_code: String,
    channel_properties: Destination,
    amount: i64,
    currency: String,
    #[serde(default)]
    description: Option<String>,
}

/// The channels the simulated account can pay out to, with Xendit's per-channel limits
/// (`GET /payouts_channels` `amount_limits`; the simulator's values, not a bank's).
const CHANNELS: [(&str, i64, i64); 12] = [
    ("ID_BCA", 10_000, 100_000_000),
    ("ID_BNI", 10_000, 100_000_000),
    ("ID_BRI", 10_000, 100_000_000),
    ("ID_MANDIRI", 10_000, 100_000_000),
    ("ID_PERMATA", 10_000, 100_000_000),
    ("ID_BSI", 10_000, 100_000_000),
    ("ID_CIMB", 10_000, 100_000_000),
    ("ID_DANAMON", 10_000, 100_000_000),
    ("ID_BTN", 10_000, 100_000_000),
    ("ID_OVO", 10_000, 10_000_000),
    ("ID_DANA", 10_000, 10_000_000),
    ("ID_GOPAY", 10_000, 10_000_000),
];

/// The payout's checks, as Xendit answers them (400s with its error codes).
fn check(req: &CreatePayout) -> Result<(), XErr> {
    if req.reference_id.is_empty() || req.channel_properties.account_number.is_empty() {
        return Err(XErr::validation(
            "reference_id and channel_properties.account_number are required",
        ));
    }
    if req.currency != "IDR" {
        return Err(XErr::validation("currency must be IDR"));
    }
    let Some((_, min, max)) = CHANNELS.iter().find(|(c, _, _)| *c == req.channel_code) else {
        return Err(XErr::new(
            StatusCode::BAD_REQUEST,
            "CHANNEL_CODE_NOT_SUPPORTED_ERROR",
            format!("{} is not supported", req.channel_code),
        ));
    };
    if req.amount < *min {
        return Err(XErr::new(
            StatusCode::BAD_REQUEST,
            "RECIPIENT_AMOUNT_ERROR",
            format!("amount must be at least {min}"),
        ));
    }
    if req.amount > *max {
        return Err(XErr::new(
            StatusCode::BAD_REQUEST,
            "MAXIMUM_TRANSFER_LIMIT_ERROR",
            format!("amount must be at most {max}"),
        ));
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/_dev/xendit/v2/payouts",
    tag = "dev",
    request_body(content = Object, description = "Xendit create-payout request; `Idempotency-key` header (required)"),
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "Xendit payout (`ACCEPTED`)", body = Object),
        (status = 400, description = "Invalid request, channel not supported, amount out of the channel's limits, or the idempotency key reused (Xendit error `{error_code, message}`)", body = Object),
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
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return Err(XErr::validation("Idempotency-key header is required"));
    };
    let req: CreatePayout = parse(&body)?;
    check(&req)?;
    let id = format!("disb-{}", uuid::Uuid::new_v4().simple());
    let now = sim.iso(0);
    let p = json!({
        "id": id, "business_id": "5f0000000000000000000001", "reference_id": req.reference_id,
        "amount": req.amount, "currency": req.currency, "channel_code": req.channel_code,
        "channel_properties": {
            "account_number": req.channel_properties.account_number,
            "account_holder_name": req.channel_properties.account_holder_name,
        },
        "description": req.description, "status": "ACCEPTED",
        "created": now, "updated": now, "estimated_arrival_time": sim.iso(3_600),
    });
    sim.payouts(|st| {
        if st.keys.contains_key(&key) {
            return Err(XErr::new(
                StatusCode::BAD_REQUEST,
                "DUPLICATE_TRANSACTION_ERROR",
                "idempotency key already used",
            ));
        }
        st.keys.insert(key, id.clone());
        st.by_id.insert(id, p.clone());
        Ok(())
    })?;
    pass.answer(&sim, Json(p)).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    reference_id: String,
}

#[utoipa::path(
    get,
    path = "/_dev/xendit/v2/payouts",
    tag = "dev",
    params(ListQuery),
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "`{data: [payout], has_more, links}`", body = Object),
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
) -> Result<Json<Value>, XErr> {
    let pass = gate(&sim, &headers, Route::Payouts).await?;
    let found: Vec<Value> = sim.payouts(|st| {
        st.by_id
            .values()
            .filter(|p| p["reference_id"] == q.reference_id.as_str())
            .cloned()
            .collect()
    });
    pass.answer(
        &sim,
        Json(json!({ "data": found, "has_more": false, "links": [] })),
    )
    .await
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

/// The body of `succeed` / `fail` / `reverse`.
#[derive(Deserialize, Default)]
struct FinishBody {
    failure_code: Option<String>,
    deliver: Option<bool>,
}

/// The status a payout is moved to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    Failed,
    Reversed,
}

/// Moves a payout (by id or reference id) on: ACCEPTED to SUCCEEDED or FAILED, SUCCEEDED to
/// REVERSED.
fn finish_in(
    sim: &Simulator,
    id: &str,
    to: Outcome,
    failure_code: Option<String>,
) -> Result<Value, XErr> {
    let now = sim.iso(0);
    sim.payouts(|st| {
        let p = resolve_by(&st.by_id, id, "reference_id")
            .and_then(|k| st.by_id.get_mut(&k))
            .ok_or_else(|| {
                XErr::new(StatusCode::NOT_FOUND, "DATA_NOT_FOUND", "Payout not found")
            })?;
        let from = p["status"].as_str().unwrap_or_default().to_owned();
        let next = match (from.as_str(), to) {
            ("ACCEPTED", Outcome::Succeeded) => "SUCCEEDED",
            ("ACCEPTED", Outcome::Failed) => {
                p["failure_code"] = failure_code
                    .unwrap_or_else(|| "REJECTED_BY_CHANNEL".into())
                    .into();
                "FAILED"
            }
            ("SUCCEEDED", Outcome::Reversed) => "REVERSED",
            _ => {
                return Err(XErr::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_STATUS_TRANSITION",
                    format!("payout is {from}"),
                ));
            }
        };
        p["status"] = next.into();
        p["updated"] = now.into();
        Ok(p.clone())
    })
}

async fn finish(
    sim: &Arc<Simulator>,
    id: &str,
    to: Outcome,
    body: &Bytes,
) -> Result<Json<Value>, XErr> {
    let b: FinishBody = serde_json::from_slice(body).unwrap_or_default();
    let p = finish_in(sim, id, to, b.failure_code)?;
    let callback_status = if b.deliver.unwrap_or(true) {
        Some(deliver_payout(sim, &p).await)
    } else {
        None
    };
    Ok(Json(
        json!({ "payout": p, "webhook": payout_webhook(&p), "callback_status": callback_status }),
    ))
}

#[utoipa::path(
    post,
    path = "/_dev/xendit/payouts/{id}/succeed",
    tag = "dev",
    params(("id" = String, Path, description = "Payout id or our reference id")),
    request_body(content = Object, description = "`{deliver?: bool}`"),
    responses(
        (status = 200, description = "`{payout, webhook, callback_status}`", body = Object),
        (status = 400, description = "Not ACCEPTED (Xendit error)", body = Object),
        (status = 404, description = "Payout not found, or not in local mode (Xendit error)", body = Object),
    )
)]
async fn succeed(
    State(sim): State<Arc<Simulator>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, XErr> {
    finish(&sim, &id, Outcome::Succeeded, &body).await
}

#[utoipa::path(
    post,
    path = "/_dev/xendit/payouts/{id}/fail",
    tag = "dev",
    params(("id" = String, Path, description = "Payout id or our reference id")),
    request_body(content = Object, description = "`{failure_code?, deliver?: bool}`"),
    responses(
        (status = 200, description = "`{payout, webhook, callback_status}`", body = Object),
        (status = 400, description = "Not ACCEPTED (Xendit error)", body = Object),
        (status = 404, description = "Payout not found, or not in local mode (Xendit error)", body = Object),
    )
)]
async fn fail(
    State(sim): State<Arc<Simulator>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, XErr> {
    finish(&sim, &id, Outcome::Failed, &body).await
}

#[utoipa::path(
    post,
    path = "/_dev/xendit/payouts/{id}/reverse",
    tag = "dev",
    params(("id" = String, Path, description = "Payout id or our reference id")),
    request_body(content = Object, description = "`{deliver?: bool}`"),
    responses(
        (status = 200, description = "`{payout, webhook, callback_status}`", body = Object),
        (status = 400, description = "Not SUCCEEDED (Xendit error)", body = Object),
        (status = 404, description = "Payout not found, or not in local mode (Xendit error)", body = Object),
    )
)]
async fn reverse(
    State(sim): State<Arc<Simulator>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, XErr> {
    finish(&sim, &id, Outcome::Reversed, &body).await
}

/// The payout routes.
pub(crate) fn routes() -> OpenApiRouter<Arc<Simulator>> {
    OpenApiRouter::new()
        .routes(routes!(banks))
        .routes(routes!(create, list))
        .routes(routes!(succeed))
        .routes(routes!(fail))
        .routes(routes!(reverse))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(channel: &str, amount: i64) -> CreatePayout {
        CreatePayout {
            reference_id: "po-1".into(),
            channel_code: channel.into(),
            channel_properties: Destination {
                account_number: "1234567890".into(),
                account_holder_name: "A".into(),
            },
            amount,
            currency: "IDR".into(),
            description: None,
        }
    }

    #[test]
    fn channels_and_their_limits_are_checked_like_xendit() {
        assert!(check(&req("ID_BCA", 10_000)).is_ok());
        assert_eq!(
            check(&req("ID_BCA", 9_999)).expect_err("min").code(),
            "RECIPIENT_AMOUNT_ERROR"
        );
        assert_eq!(
            check(&req("ID_OVO", 10_000_001)).expect_err("max").code(),
            "MAXIMUM_TRANSFER_LIMIT_ERROR"
        );
        assert_eq!(
            check(&req("BCA", 10_000)).expect_err("channel").code(),
            "CHANNEL_CODE_NOT_SUPPORTED_ERROR"
        );
    }
}
