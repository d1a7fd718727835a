//! Callbacks to the app (integrations.md §3 and §4.4), as Xendit sends them.

use std::sync::Arc;
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
/// unreachable). A failure is re-delivered on Xendit's schedule.
pub(crate) async fn deliver_invoice(sim: &Arc<Simulator>, inv: &Value) -> u16 {
    deliver(sim, "/payment-callback", callback_payload(inv)).await
}

/// The payout webhook Xendit sends (docs "Payout Webhook"): an event envelope around the payout.
pub fn payout_webhook(p: &Value) -> Value {
    let event = match p["status"].as_str() {
        Some("SUCCEEDED") => "payout.succeeded",
        Some("REVERSED") => "payout.reversed",
        _ => "payout.failed",
    };
    json!({ "event": event, "business_id": p["business_id"], "created": p["updated"], "data": p })
}

/// Posts a payout's webhook to `/payout-callback`; the HTTP status it answered (0 when
/// unreachable). A failure is re-delivered on Xendit's schedule.
pub(crate) async fn deliver_payout(sim: &Arc<Simulator>, p: &Value) -> u16 {
    deliver(sim, "/payout-callback", payout_webhook(p)).await
}

/// Xendit's automatic re-deliveries of a callback that did not get a 2xx: the wait before each,
/// relative to the one before — 15 min, 45 min, 2 h, 3 h, 6 h, 12 h, 24 h in all
/// (docs.xendit.co/apidocs/webhook-behavior). A delivery that timed out (no answer in 30 s) is
/// not retried automatically, as at Xendit.
pub const RETRY_SCHEDULE_MINUTES: [u64; 6] = [15, 45, 120, 180, 360, 720];

/// What one delivery attempt got.
#[derive(Clone, Copy)]
struct Attempt {
    /// The HTTP status; 0 when there was none.
    status: u16,
    timed_out: bool,
}

impl Attempt {
    fn finished(self) -> bool {
        (200..300).contains(&self.status) || self.timed_out
    }
}

/// Delivers `body` to `path`; on failure keeps re-delivering it in the background on Xendit's
/// schedule (divided by [`crate::SimSettings::retry_speedup`]). Every attempt is recorded.
async fn deliver(sim: &Arc<Simulator>, path: &'static str, body: Value) -> u16 {
    let first = post(sim, path, &body).await;
    let id = body.get("data").map_or(&body["id"], |d| &d["id"]).clone();
    sim.record_delivery(path, &id, 0, first.status);
    if !first.finished() {
        let sim = sim.clone();
        tokio::spawn(async move {
            for (n, minutes) in RETRY_SCHEDULE_MINUTES.iter().enumerate() {
                let wait = Duration::from_secs(minutes * 60) / sim.settings.retry_speedup.max(1);
                tokio::time::sleep(wait).await;
                let again = post(&sim, path, &body).await;
                sim.record_delivery(path, &id, n + 1, again.status);
                if again.finished() {
                    break;
                }
            }
        });
    }
    first.status
}

/// One callback with the callback token (unreachable or timed out: logged). A client per call:
/// no pooled connection the app may have closed in between.
async fn post(sim: &Simulator, path: &str, body: &Value) -> Attempt {
    let url = format!("{}{path}", sim.settings.callback_base_url);
    let res = reqwest::Client::new()
        .post(url)
        .header("x-callback-token", &sim.settings.callback_token)
        .json(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    match res {
        Ok(r) => Attempt {
            status: r.status().as_u16(),
            timed_out: false,
        },
        Err(e) => {
            tracing::warn!(error = %e, path, "simulator could not deliver the callback");
            Attempt {
                status: 0,
                timed_out: e.is_timeout(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A callback receiver that answers `answers` in turn, then 200.
    async fn receiver(answers: Vec<u16>) -> String {
        let left = Arc::new(std::sync::Mutex::new(answers.into_iter()));
        let app = axum::Router::new().route(
            "/payment-callback",
            axum::routing::post(move || {
                let left = left.clone();
                async move {
                    let next = left.lock().map(|mut l| l.next()).unwrap_or(None);
                    axum::http::StatusCode::from_u16(next.unwrap_or(200))
                        .unwrap_or(axum::http::StatusCode::OK)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    fn sim(base: String) -> Arc<Simulator> {
        let mut settings = crate::SimSettings::new("k", "t", base);
        // 24 h of retries in about 24 ms.
        settings.retry_speedup = 3_600_000;
        Arc::new(Simulator::new(settings))
    }

    async fn attempts_after_a_while(sim: &Simulator) -> Vec<(u64, u64)> {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sim.deliveries()
            .iter()
            .map(|d| {
                (
                    d["attempt"].as_u64().unwrap_or(99),
                    d["status"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn a_failed_callback_is_redelivered_on_xendits_schedule_until_it_gets_a_2xx() {
        let sim = sim(receiver(vec![500, 503]).await);
        let inv = json!({"id": "x1", "external_id": "e1", "status": "PAID", "amount": 5});
        assert_eq!(deliver_invoice(&sim, &inv).await, 500);
        assert_eq!(
            attempts_after_a_while(&sim).await,
            vec![(0, 500), (1, 503), (2, 200)]
        );
    }

    #[tokio::test]
    async fn a_callback_that_never_succeeds_is_retried_six_times_then_given_up() {
        let sim = sim(receiver(vec![401; 20]).await);
        let inv = json!({"id": "x1", "external_id": "e1", "status": "PAID", "amount": 5});
        deliver_invoice(&sim, &inv).await;
        let got = attempts_after_a_while(&sim).await;
        assert_eq!(got.len(), 1 + RETRY_SCHEDULE_MINUTES.len(), "{got:?}");
        assert!(got.iter().all(|(_, s)| *s == 401));
    }

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
