//! Local Xendit simulator (a dev tool: the local server and tests mount it; no Lambda links it),
//! served under `/_dev/xendit`. It speaks Xendit's invoice wire format (integrations.md §2) with
//! Basic auth on the configured secret key, serves a hosted-checkout page with Pay / Expire
//! buttons, and delivers the real callback payload (§3) with the configured `x-callback-token` to
//! `{callback_base_url}/payment-callback`.
//!
//! Control routes (scripts and tests): `POST /_dev/xendit/invoices/{id}/pay` (`{paid_amount?,
//! method?, status?: "PAID"|"SETTLED", deliver?: bool}`; only a method the invoice offers), `/expire` (`{deliver?}`), `/callback` (re-deliver
//! the current state), `POST /_dev/xendit/payouts/{id}/succeed|fail|reverse` (`{failure_code?,
//! deliver?}`, webhook to `/payout-callback`), and `POST /_dev/xendit/faults`
//! `{mode: "none"|"error500"|"timeout"|"timeout_after"|"rate_limit", route?: "create_invoice"|
//! "get_invoice"|"list_invoices"|"expire_invoice"|"payouts", count?}` (the next `count` calls of
//! that route, or all until changed). Invoices past `expiry_date` read as EXPIRED; `expire!`
//! refuses anything not PENDING; `rate_limit_per_minute` answers 429 past the budget; a callback
//! without a 2xx answer is re-delivered on Xendit's schedule. State lives in memory, and in `SimSettings::state_file`
//! when one is given (the local server keeps it next to its durable store).
//!
//! The simulator is the *other side* of the app's Xendit client: it knows nothing of the app and
//! keeps its own wire shapes. Mount it with [`mount`] (or merge [`router`]) before the app wraps
//! its routes with its common layers, and merge [`openapi`] into the app's document.

mod auth;
mod callback;
mod control;
mod error;
mod extract;
mod invoices;
mod page;
mod payouts;
mod state;

use std::sync::Arc;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

pub use callback::{callback_payload, payout_webhook};
pub use state::{Fault, FaultPlan, Now, Route, SimSettings, Simulator};

/// Where the simulator's routes live (the app's Xendit base URL in local mode is
/// `{public_base_url}/_dev/xendit`).
pub const PREFIX: &str = "/_dev/xendit";

/// The simulator's routes with their documentation (all tagged `dev`). Errors of the Xendit API
/// routes are Xendit-shaped (`{error_code, message}`), not envelopes: the simulator stands in for
/// Xendit.
pub fn openapi_router() -> OpenApiRouter<Arc<Simulator>> {
    OpenApiRouter::new()
        .merge(invoices::routes())
        .merge(payouts::routes())
        .merge(control::routes())
        .merge(page::routes())
}

/// The simulator's routes over `sim`, mergeable into a router of any state.
pub fn router<S: Clone + Send + Sync + 'static>(sim: Arc<Simulator>) -> Router<S> {
    openapi_router().split_for_parts().0.with_state(sim)
}

/// The simulator's part of an OpenAPI document (paths and schemas; security scheme names as the
/// app's document defines them).
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi_router().split_for_parts().1
}

/// `routes` plus a fresh simulator built from `settings`: what the local server and the test
/// servers mount.
pub fn mount<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    settings: SimSettings,
) -> Router<S> {
    routes.merge(router(Arc::new(Simulator::new(settings))))
}
