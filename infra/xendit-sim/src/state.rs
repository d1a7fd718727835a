//! The simulator's settings and in-memory state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A source of the current time (tests that move the app's clock by hand pass theirs).
pub type Now = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What the simulator needs to know about the app it stands in front of.
#[derive(Clone)]
pub struct SimSettings {
    /// The Xendit secret key the simulated API accepts (Basic auth user, empty password).
    pub secret_key: String,
    /// The `x-callback-token` sent with every callback.
    pub callback_token: String,
    /// Base URL of the app that receives the callbacks (`/payment-callback`,
    /// `/payout-callback`).
    pub callback_base_url: String,
    /// Base URL the simulator is reached at by a browser, for `invoice_url`
    /// (`{public_base_url}/_dev/xendit/web/{id}`).
    pub public_base_url: String,
    /// The app's Xendit client timeout: the `timeout` fault answers only after it (plus 1 s).
    pub client_timeout: Duration,
    /// The current time (invoice `created`, `expiry_date`, `paid_at`, ...); a PENDING invoice
    /// whose `expiry_date` has passed reads as EXPIRED, as at Xendit.
    pub now: Now,
    /// Xendit's per-key request budget (60 a minute in test mode, 600 live): past it the API
    /// routes answer 429 `RATE_LIMIT_EXCEEDED` with `Retry-After` until the minute ends. `None`
    /// (the default) means unlimited.
    pub rate_limit_per_minute: Option<u32>,
    /// How much faster than Xendit's schedule (15 min, 45 min, 2 h, 3 h, 6 h, 12 h) a failed
    /// callback is re-delivered: 1 (the default) is real time; tests compress it.
    pub retry_speedup: u32,
    /// Where the simulated invoices and payouts are kept across restarts (the local server puts
    /// it next to its durable store); `None` keeps them in memory only.
    pub state_file: Option<std::path::PathBuf>,
}

impl SimSettings {
    /// Settings for an app at `base_url` (callbacks and hosted pages on the same server), with
    /// a 10 s client timeout and the system clock.
    pub fn new(
        secret_key: impl Into<String>,
        callback_token: impl Into<String>,
        base_url: impl Into<String>,
    ) -> Self {
        let base_url = base_url.into();
        SimSettings {
            secret_key: secret_key.into(),
            callback_token: callback_token.into(),
            callback_base_url: base_url.clone(),
            public_base_url: base_url,
            client_timeout: Duration::from_secs(10),
            now: Arc::new(Utc::now),
            rate_limit_per_minute: None,
            retry_speedup: 1,
            state_file: None,
        }
    }
}

/// A fault the simulator injects into its Xendit API routes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    #[default]
    None,
    /// Answer 500 `SERVER_ERROR` without doing anything.
    Error500,
    /// Answer only after the client's timeout has passed, without doing anything.
    Timeout,
    /// Do what was asked (the invoice is created, expired, ...), then answer only after the
    /// client's timeout: the ambiguous failure where the client cannot tell whether it happened.
    TimeoutAfter,
    /// Answer 429 `RATE_LIMIT_EXCEEDED` with `Retry-After: 1`, without doing anything.
    RateLimit,
}

/// A group of the simulated Xendit API's routes a fault can be aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `POST /v2/invoices`.
    CreateInvoice,
    /// `GET /v2/invoices/{id}`.
    GetInvoice,
    /// `GET /v2/invoices`.
    ListInvoices,
    /// `POST /invoices/{id}/expire!`.
    ExpireInvoice,
    /// The payout routes and the bank list.
    Payouts,
}

/// The fault in effect: which routes it hits (all when `route` is `None`) and how many more calls
/// it hits (until changed when `remaining` is `None`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub mode: Fault,
    pub route: Option<Route>,
    pub remaining: Option<u32>,
}

/// Requests answered in the current minute, for [`SimSettings::rate_limit_per_minute`].
#[derive(Default)]
struct Window {
    minute: i64,
    used: u32,
}

/// Payouts by id, and the idempotency keys already used (key -> payout id).
#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Payouts {
    pub by_id: HashMap<String, Value>,
    pub keys: HashMap<String, String>,
}

/// Simulator state: settings, the simulated invoices and payouts, the injected fault.
pub struct Simulator {
    pub(crate) settings: SimSettings,
    invoices: Mutex<HashMap<String, Value>>,
    payouts: Mutex<Payouts>,
    fault: Mutex<FaultPlan>,
    window: Mutex<Window>,
    deliveries: Mutex<Vec<Value>>,
    /// What the state file last got (reads go through the same paths as writes: unchanged
    /// state is not written again).
    saved: Mutex<String>,
}

/// A poisoned lock still holds consistent maps (every update is a single insert or field write).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What [`SimSettings::state_file`] holds.
#[derive(Default, Serialize, Deserialize)]
struct Saved {
    invoices: HashMap<String, Value>,
    payouts: Payouts,
}

impl Simulator {
    /// A simulator with the invoices and payouts of its state file, if any (empty otherwise).
    pub fn new(settings: SimSettings) -> Self {
        let saved: Saved = settings
            .state_file
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| match serde_json::from_slice(&b) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "simulator state file unreadable; starting empty");
                    None
                }
            })
            .unwrap_or_default();
        Simulator {
            settings,
            invoices: Mutex::new(saved.invoices),
            payouts: Mutex::new(saved.payouts),
            fault: Mutex::default(),
            window: Mutex::default(),
            deliveries: Mutex::default(),
            saved: Mutex::default(),
        }
    }

    /// Writes the invoices and payouts to the state file (atomically: a temporary file renamed
    /// over it). Called with the lock of the part that changed held, the other one taken here.
    fn save(&self, invoices: &HashMap<String, Value>, payouts: &Payouts) {
        let Some(path) = &self.settings.state_file else {
            return;
        };
        let text = serde_json::json!({ "invoices": invoices, "payouts": payouts }).to_string();
        let mut last = lock(&self.saved);
        if *last == text {
            return;
        }
        let tmp = path.with_extension("json.tmp");
        let written = std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, path));
        if written.is_ok() {
            *last = text;
        }
        if let Err(e) = written {
            tracing::warn!(error = %e, path = %path.display(), "could not save the simulator state");
        }
    }

    /// The fault plan now in effect.
    pub fn fault(&self) -> FaultPlan {
        *lock(&self.fault)
    }

    /// Sets the fault all Xendit API routes inject until changed.
    pub fn set_fault(&self, mode: Fault) {
        self.plan_fault(FaultPlan {
            mode,
            route: None,
            remaining: None,
        });
    }

    /// Sets the fault plan of the Xendit API routes.
    pub fn plan_fault(&self, plan: FaultPlan) {
        *lock(&self.fault) = plan;
    }

    /// The fault a call of `route` meets now (counting it against the plan's `remaining`).
    pub(crate) fn take_fault(&self, route: Route) -> Fault {
        let mut plan = lock(&self.fault);
        if plan.mode == Fault::None || plan.route.is_some_and(|r| r != route) {
            return Fault::None;
        }
        match plan.remaining {
            Some(0) => {
                *plan = FaultPlan::default();
                Fault::None
            }
            Some(n) => {
                plan.remaining = Some(n - 1);
                plan.mode
            }
            None => plan.mode,
        }
    }

    /// Notes one callback delivery attempt (0 = the first, then Xendit's retries).
    pub(crate) fn record_delivery(&self, path: &str, id: &Value, attempt: usize, status: u16) {
        lock(&self.deliveries).push(serde_json::json!({
            "path": path, "id": id, "attempt": attempt, "status": status, "at": self.iso(0),
        }));
    }

    /// Every callback delivery attempt so far, oldest first.
    pub fn deliveries(&self) -> Vec<Value> {
        lock(&self.deliveries).clone()
    }

    /// Counts one request against the per-minute budget; the seconds to wait when it is spent.
    pub(crate) fn over_rate(&self) -> Option<u64> {
        // Real time, not the app's clock: a client waits `Retry-After` in real time.
        self.over_rate_at(Utc::now().timestamp())
    }

    /// [`Simulator::over_rate`] at `now` (epoch seconds).
    fn over_rate_at(&self, now: i64) -> Option<u64> {
        let limit = self.settings.rate_limit_per_minute?;
        let mut w = lock(&self.window);
        if w.minute != now / 60 {
            *w = Window {
                minute: now / 60,
                used: 0,
            };
        }
        if w.used >= limit {
            return Some(u64::try_from(60 - now % 60).unwrap_or(1));
        }
        w.used += 1;
        None
    }

    /// Runs `f` on the invoices by Xendit id.
    /// Invoices past their `expiry_date` are expired first, as Xendit does on its own (without
    /// a callback: Xendit sends EXPIRED callbacks only when that dashboard option is on).
    pub(crate) fn invoices<R>(&self, f: impl FnOnce(&mut HashMap<String, Value>) -> R) -> R {
        let now = self.iso(0);
        let mut m = lock(&self.invoices);
        for inv in m.values_mut() {
            let due = inv["expiry_date"]
                .as_str()
                .is_some_and(|d| d < now.as_str());
            if inv["status"] == "PENDING" && due {
                inv["status"] = "EXPIRED".into();
                inv["updated"] = inv["expiry_date"].clone();
            }
        }
        let out = f(&mut m);
        if self.settings.state_file.is_some() {
            self.save(&m, &lock(&self.payouts));
        }
        out
    }

    /// Runs `f` on the payouts.
    pub(crate) fn payouts<R>(&self, f: impl FnOnce(&mut Payouts) -> R) -> R {
        // Lock order: invoices, then payouts (as `invoices` takes them).
        let invoices = lock(&self.invoices);
        let mut payouts = lock(&self.payouts);
        let out = f(&mut payouts);
        if self.settings.state_file.is_some() {
            self.save(&invoices, &payouts);
        }
        out
    }

    /// One invoice by Xendit id.
    pub(crate) fn invoice(&self, id: &str) -> Option<Value> {
        self.invoices(|m| m.get(id).cloned())
    }

    /// Finds an invoice by Xendit id or by external id; returns its Xendit id.
    pub(crate) fn resolve(&self, id: &str) -> Option<String> {
        self.invoices(|m| resolve_in(m, id))
    }

    /// Now plus `offset_secs`, as Xendit writes times (`2024-01-01T00:00:00.000Z`).
    pub(crate) fn iso(&self, offset_secs: i64) -> String {
        ((self.settings.now)() + chrono::Duration::seconds(offset_secs))
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

/// The key of the object `id` names in `m`: `id` itself, or the id of the object whose
/// `external_id` is `id`.
pub(crate) fn resolve_in(m: &HashMap<String, Value>, id: &str) -> Option<String> {
    resolve_by(m, id, "external_id")
}

/// The key of the object in `m` whose key is `id`, or whose `field` (our reference) is `id`.
pub(crate) fn resolve_by(m: &HashMap<String, Value>, id: &str, field: &str) -> Option<String> {
    if m.contains_key(id) {
        return Some(id.to_owned());
    }
    m.iter()
        .find(|(_, v)| v[field] == id)
        .map(|(k, _)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_per_minute_budget_calls_are_told_to_wait_for_the_window() {
        let mut settings = SimSettings::new("k", "t", "http://127.0.0.1:9");
        settings.rate_limit_per_minute = Some(2);
        let sim = Simulator::new(settings);
        let minute = 60 * 30_000_000; // the start of a minute
        assert_eq!(sim.over_rate_at(minute + 10), None);
        assert_eq!(sim.over_rate_at(minute + 20), None);
        assert_eq!(
            sim.over_rate_at(minute + 45),
            Some(15),
            "wait for the next window"
        );
        assert_eq!(sim.over_rate_at(minute + 61), None, "a new window");
        let unlimited = Simulator::new(SimSettings::new("k", "t", "http://127.0.0.1:9"));
        assert!((0..100).all(|_| unlimited.over_rate().is_none()));
    }

    #[test]
    fn a_fault_for_n_calls_hits_only_its_route_and_only_n_times() {
        let sim = Simulator::new(SimSettings::new("k", "t", "http://127.0.0.1:9"));
        sim.plan_fault(FaultPlan {
            mode: Fault::Error500,
            route: Some(Route::CreateInvoice),
            remaining: Some(2),
        });
        assert_eq!(sim.take_fault(Route::GetInvoice), Fault::None);
        assert_eq!(sim.take_fault(Route::CreateInvoice), Fault::Error500);
        assert_eq!(sim.take_fault(Route::CreateInvoice), Fault::Error500);
        assert_eq!(sim.take_fault(Route::CreateInvoice), Fault::None);
        assert_eq!(sim.fault(), FaultPlan::default());
    }
}
