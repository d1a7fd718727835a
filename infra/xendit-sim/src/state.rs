//! The simulator's settings and in-memory state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
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
    /// `/disbursement-callback`).
    pub callback_base_url: String,
    /// Base URL the simulator is reached at by a browser, for `invoice_url`
    /// (`{public_base_url}/_dev/xendit/web/{id}`).
    pub public_base_url: String,
    /// The app's Xendit client timeout: the `timeout` fault answers only after it (plus 1 s).
    pub client_timeout: Duration,
    /// The current time (invoice `created`, `expiry_date`, `paid_at`, ...).
    pub now: Now,
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
        }
    }
}

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

/// Disbursements by id, and the idempotency keys already used (key -> disbursement id).
#[derive(Default)]
pub(crate) struct Disbursements {
    pub by_id: HashMap<String, Value>,
    pub keys: HashMap<String, String>,
}

/// Simulator state: settings, the simulated invoices and disbursements, the injected fault.
pub struct Simulator {
    pub(crate) settings: SimSettings,
    invoices: Mutex<HashMap<String, Value>>,
    disbursements: Mutex<Disbursements>,
    fault: Mutex<Fault>,
}

/// A poisoned lock still holds consistent maps (every update is a single insert or field write).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Simulator {
    /// An empty simulator.
    pub fn new(settings: SimSettings) -> Self {
        Simulator {
            settings,
            invoices: Mutex::default(),
            disbursements: Mutex::default(),
            fault: Mutex::default(),
        }
    }

    /// The fault now in effect.
    pub fn fault(&self) -> Fault {
        *lock(&self.fault)
    }

    /// Sets the fault the Xendit API routes inject.
    pub fn set_fault(&self, fault: Fault) {
        *lock(&self.fault) = fault;
    }

    /// Runs `f` on the invoices by Xendit id.
    pub(crate) fn invoices<R>(&self, f: impl FnOnce(&mut HashMap<String, Value>) -> R) -> R {
        f(&mut lock(&self.invoices))
    }

    /// Runs `f` on the disbursements.
    pub(crate) fn disbursements<R>(&self, f: impl FnOnce(&mut Disbursements) -> R) -> R {
        f(&mut lock(&self.disbursements))
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
    if m.contains_key(id) {
        return Some(id.to_owned());
    }
    m.values()
        .find(|v| v["external_id"] == id)
        .and_then(|v| v["id"].as_str().map(str::to_owned))
}
