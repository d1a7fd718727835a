//! Time as a dependency, so expiry rules (OTP, sessions, invoices, TTL) can be tested without sleeping.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Epoch seconds.
    fn epoch(&self) -> i64 {
        self.now().timestamp()
    }
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests move by hand.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    /// Starts at the current real time.
    pub fn new() -> Self {
        ManualClock(Arc::new(Mutex::new(Utc::now())))
    }
    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Shared clock handle.
pub type ClockRef = Arc<dyn Clock>;

/// A point in (monotonic) time by which a job must stop starting new work.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(std::time::Instant);

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: std::time::Duration) -> Deadline {
        Deadline(std::time::Instant::now() + budget)
    }
    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        std::time::Instant::now() >= self.0
    }
    /// Time left (zero once passed).
    pub fn left(&self) -> std::time::Duration {
        self.0.saturating_duration_since(std::time::Instant::now())
    }
}
