//! Callbacks to the app (integrations.md §3 and §4.3), as Xendit sends them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::state::Simulator;

/// The invoice fields only present once it is paid.
const PAID_FIELDS: [&str; 6] = [
    "paid_amount",
    "paid_at",
    "payment_method",
    "payment_channel",
    "ewallet_type",
    "adjusted_received_amount",
];

/// The callback body Xendit sends for an invoice (integrations.md §3).
pub fn callback_payload(inv: &Value) -> Value {
    let mut body = json!({
        "id": inv["id"], "external_id": inv["external_id"], "user_id": inv["user_id"], "is_high": false,
        "status": inv["status"], "merchant_name": inv["merchant_name"], "amount": inv["amount"],
        "payer_email": inv["payer_email"], "description": inv["description"], "currency": inv["currency"],
        "created": inv["created"], "updated": inv["updated"],
    });
    for k in PAID_FIELDS {
        if !inv[k].is_null() {
            body[k] = inv[k].clone();
        }
    }
    body
}

/// Posts an invoice's callback to `/payment-callback`; the HTTP status it answered (0 when
/// unreachable).
pub(crate) async fn deliver_invoice(sim: &Simulator, inv: &Value) -> u16 {
    post(sim, "/payment-callback", &callback_payload(inv)).await
}

/// Posts a disbursement (as stored) to `/disbursement-callback`; the HTTP status it answered (0
/// when unreachable).
pub(crate) async fn deliver_disbursement(sim: &Simulator, d: &Value) -> u16 {
    post(sim, "/disbursement-callback", d).await
}

/// One callback with the callback token; the status it answered, 0 (logged) when unreachable. A
/// client per call: no pooled connection the app may have closed in between.
async fn post(sim: &Simulator, path: &str, body: &Value) -> u16 {
    let url = format!("{}{path}", sim.settings.callback_base_url);
    let res = reqwest::Client::new()
        .post(url)
        .header("x-callback-token", &sim.settings.callback_token)
        .json(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    match res {
        Ok(r) => r.status().as_u16(),
        Err(e) => {
            tracing::warn!(error = %e, path, "simulator could not deliver the callback");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_carries_payment_fields_only_once_paid() {
        let pending = json!({"id": "x1", "external_id": "e1", "status": "PENDING", "amount": 5});
        let body = callback_payload(&pending);
        assert_eq!(body["is_high"], false);
        assert_eq!(body["external_id"], "e1");
        assert!(body.get("paid_at").is_none());

        let mut paid = pending.clone();
        paid["status"] = "PAID".into();
        paid["paid_at"] = "2024-01-01T00:00:00.000Z".into();
        paid["paid_amount"] = 5.into();
        let body = callback_payload(&paid);
        assert_eq!(body["paid_at"], "2024-01-01T00:00:00.000Z");
        assert_eq!(body["paid_amount"], 5);
        assert!(body.get("payment_channel").is_none());
    }
}
