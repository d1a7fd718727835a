//! Control routes for scripts and tests: pay, expire or re-deliver an invoice, and set the fault
//! the Xendit API routes inject. They are not Xendit's API and take no Basic auth.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::callback::deliver_invoice;
use crate::error::XErr;
use crate::extract::{self, Path};
use crate::invoices::{Paying, Target, transition};
use crate::state::{Fault, FaultPlan, Route, Simulator};

/// The body of `pay` / `expire`; a missing or unreadable body means the defaults (paid in full,
/// callback delivered), as the hosted page's plain form posts send none.
#[derive(Deserialize, Default)]
struct ControlBody {
    paid_amount: Option<i64>,
    /// The channel the payer uses (`OVO`, `DANA`, `BCA`, ...); the invoice's first offered one
    /// when absent.
    method: Option<String>,
    status: Option<String>,
    deliver: Option<bool>,
}

fn control_body(body: &Bytes) -> ControlBody {
    serde_json::from_slice(body).unwrap_or_default()
}

/// Moves the invoice and, unless told not to, delivers its callback.
async fn control(
    sim: &Arc<Simulator>,
    id: &str,
    to: Target,
    body: ControlBody,
) -> Result<Json<Value>, XErr> {
    let paying = Paying {
        amount: body.paid_amount,
        method: body.method.as_deref(),
    };
    let inv = transition(sim, id, to, paying)?;
    let callback_status = if body.deliver.unwrap_or(true) {
        Some(deliver_invoice(sim, &inv).await)
    } else {
        None
    };
    Ok(Json(
        json!({ "invoice": inv, "callback_status": callback_status }),
    ))
}

#[utoipa::path(
    post,
    path = "/_dev/xendit/invoices/{id}/pay",
    tag = "dev",
    params(("id" = String, Path, description = "Xendit invoice id (or external id where stated)")),
    request_body(content = Object, description = "`{paid_amount?, method?, status?: \"PAID\"|\"SETTLED\", deliver?: bool}`"),
    responses(
        (status = 200, description = "`{invoice, callback_status}` (the callback's HTTP status, 0 if undeliverable, null if not delivered)", body = Object),
        (status = 400, description = "Transition not allowed (Xendit error)", body = Object),
        (status = 404, description = "Invoice not found, or not in local mode (Xendit error)", body = Object),
    )
)]
async fn pay(
    State(sim): State<Arc<Simulator>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, XErr> {
    let b = control_body(&body);
    let to = if b.status.as_deref() == Some("SETTLED") {
        Target::Settled
    } else {
        Target::Paid
    };
    control(&sim, &id, to, b).await
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
async fn ctl_expire(
    State(sim): State<Arc<Simulator>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, XErr> {
    control(&sim, &id, Target::Expired, control_body(&body)).await
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
async fn redeliver(
    State(sim): State<Arc<Simulator>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, XErr> {
    let inv = sim
        .resolve(&id)
        .and_then(|x| sim.invoice(&x))
        .ok_or_else(XErr::invoice_not_found)?;
    let status = deliver_invoice(&sim, &inv).await;
    Ok(Json(json!({ "invoice": inv, "callback_status": status })))
}

/// `{mode, route?, count?}`: the fault, the routes it hits (all when absent) and for how many
/// calls (until changed when absent).
#[derive(Deserialize, utoipa::ToSchema)]
struct FaultBody {
    mode: Fault,
    #[serde(default)]
    route: Option<Route>,
    #[serde(default)]
    count: Option<u32>,
}

#[utoipa::path(
    post,
    path = "/_dev/xendit/faults",
    tag = "dev",
    request_body = FaultBody,
    responses(
        (status = 200, description = "`{mode}` now in effect for the Xendit API routes", body = Object),
        (status = 400, description = "Invalid mode", body = Object),
        (status = 404, description = "Not in local mode (Xendit error)", body = Object),
    )
)]
async fn faults(
    State(sim): State<Arc<Simulator>>,
    extract::Json(b): extract::Json<FaultBody>,
) -> Json<Value> {
    sim.plan_fault(FaultPlan {
        mode: b.mode,
        route: b.route,
        remaining: b.count,
    });
    Json(json!({ "mode": b.mode, "route": b.route, "count": b.count }))
}

/// The control routes.
pub(crate) fn routes() -> OpenApiRouter<Arc<Simulator>> {
    OpenApiRouter::new()
        .routes(routes!(pay))
        .routes(routes!(ctl_expire))
        .routes(routes!(redeliver))
        .routes(routes!(faults))
}
