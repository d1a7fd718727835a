//! Business metrics as CloudWatch Embedded Metric Format lines: one JSON object per event on
//! stdout, which Lambda ships to CloudWatch Logs, where CloudWatch extracts the metrics — no API
//! call on the request path. Namespace `UserState`, dimension `Function` (the Lambda function's
//! name, `local` off Lambda), plus `Channel` for notifications.
//!
//! Hand-written rather than `metrics_cloudwatch_embedded`: that crate sits on the `metrics`
//! facade and its registry (a global recorder, histograms, flush on invocation end) for what is
//! here one `serde_json` line per event, and `serde_json` is already linked.

use std::cell::RefCell;

use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "UserState";

/// A metric's name, unit and value.
type Point = (&'static str, &'static str, i64);

/// One business event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric<'a> {
    LoginOk,
    LoginFailed,
    Signup,
    /// A paid invoice credited to a wallet: its amount in rupiah.
    PaymentCredited(i64),
    /// A debit of a wallet (`/balance/decrease`): its amount in rupiah.
    Debit(i64),
    CallbackDuplicate,
    CallbackUnknown,
    CallbackRejected,
    /// A mail, SMS or push handed to its provider (`email`, `sms`, `push`).
    NotificationSent(&'a str),
    NotificationFailed(&'a str),
}

impl Metric<'_> {
    /// Metric names and values, and the extra dimension.
    fn parts(&self) -> (Vec<Point>, Option<(&'static str, String)>) {
        let count = |name| vec![(name, "Count", 1)];
        match *self {
            Metric::LoginOk => (count("LoginsOk"), None),
            Metric::LoginFailed => (count("LoginsFailed"), None),
            Metric::Signup => (count("Signups"), None),
            Metric::PaymentCredited(rupiah) => (
                vec![
                    ("PaymentsCredited", "Count", 1),
                    ("PaymentsCreditedRupiah", "None", rupiah),
                ],
                None,
            ),
            Metric::Debit(rupiah) => (
                vec![("Debits", "Count", 1), ("DebitsRupiah", "None", rupiah)],
                None,
            ),
            Metric::CallbackDuplicate => (count("CallbacksDuplicate"), None),
            Metric::CallbackUnknown => (count("CallbacksUnknown"), None),
            Metric::CallbackRejected => (count("CallbacksRejected"), None),
            Metric::NotificationSent(c) => {
                (count("NotificationsSent"), Some(("Channel", c.to_owned())))
            }
            Metric::NotificationFailed(c) => (
                count("NotificationsFailed"),
                Some(("Channel", c.to_owned())),
            ),
        }
    }

    /// The EMF line of this event at `timestamp_ms` from `function`.
    pub fn line(&self, function: &str, timestamp_ms: i64) -> String {
        let (metrics, extra) = self.parts();
        let mut dims = vec!["Function"];
        let mut root = Map::new();
        root.insert("Function".into(), json!(function));
        if let Some((name, value)) = extra {
            dims.push(name);
            root.insert(name.into(), json!(value));
        }
        let defs: Vec<Value> = metrics
            .iter()
            .map(|(name, unit, _)| json!({ "Name": name, "Unit": unit }))
            .collect();
        for (name, _, value) in &metrics {
            root.insert((*name).into(), json!(value));
        }
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{ "Namespace": NAMESPACE, "Dimensions": [dims], "Metrics": defs }],
            }),
        );
        Value::Object(root).to_string()
    }
}

thread_local! {
    /// Lines captured on this thread instead of printed (tests).
    static CAPTURE: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Emits one event: prints its EMF line on Lambda (off Lambda there is no CloudWatch to read
/// it, and the local server's output stays readable), or keeps it when this thread captures.
pub fn emit(metric: Metric<'_>) {
    let on_lambda = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok();
    let capturing = CAPTURE.with(|c| c.borrow().is_some());
    if on_lambda.is_none() && !capturing {
        return;
    }
    let function = on_lambda.unwrap_or_else(|| "local".into());
    let line = metric.line(&function, chrono::Utc::now().timestamp_millis());
    let kept = CAPTURE.with(|c| match c.borrow_mut().as_mut() {
        Some(lines) => {
            lines.push(line.clone());
            true
        }
        None => false,
    });
    if !kept {
        println!("{line}");
    }
}

/// Starts keeping this thread's lines (tests drive a router on a current-thread runtime).
pub fn capture() {
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
}

/// The lines kept since [`capture`] (and keeps capturing).
pub fn captured() -> Vec<String> {
    CAPTURE.with(|c| {
        c.borrow_mut()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    })
}
