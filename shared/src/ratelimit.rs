//! Fixed-window rate limits on DynamoDB counters (`RATE#{bucket}#{window}`, TTL = window end).
//! A window always ends, so a real user is slowed down, never locked out for good. Also the
//! bounds of the password-hashing queue ([`HashLimits`]): limits are plain values here, so the
//! configuration can carry them without depending on the services that apply them.

use crate::clock::ClockRef;
use crate::store::{Cond, Key, StoreError, TableRef, Update, get_n, keys};

/// At most `max` events per `window_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub max: i64,
    pub window_secs: i64,
}

impl Limit {
    pub const fn new(max: i64, window_secs: i64) -> Self {
        Limit { max, window_secs }
    }

    /// Parses `MAX/SECONDS`, e.g. `10/300`; windows up to a year (the referral cap counts per
    /// 30 days).
    pub fn parse(s: &str) -> Option<Limit> {
        let (max, secs) = s.trim().split_once('/')?;
        let (max, secs) = (
            max.trim().parse::<i64>().ok()?,
            secs.trim().parse::<i64>().ok()?,
        );
        (max >= 1 && (1..=86_400 * 366).contains(&secs)).then_some(Limit {
            max,
            window_secs: secs,
        })
    }

    /// The window number and its end (epoch seconds) at `now`.
    fn window(&self, now: i64) -> (i64, i64) {
        let w = now.div_euclid(self.window_secs);
        (w, (w + 1) * self.window_secs)
    }
}

/// Bounds on password work waiting for a hashing thread (`HASH_QUEUE_MAX`,
/// `HASH_INFLIGHT_PER_CLIENT`), enforced by [`crate::auth::password::HashGate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashLimits {
    /// Most hashes queued or running in this process; past it, requests are refused (503).
    pub queue_max: usize,
    /// Most hashes one client (an address, an account) may have queued or running; past it, its
    /// requests are refused (429), so one flooding client cannot delay everyone else.
    pub per_client: usize,
}

impl Default for HashLimits {
    /// Eight per hashing thread (one thread per core), four per client.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        HashLimits {
            queue_max: 8 * cores,
            per_client: 4,
        }
    }
}

/// Why an event was refused.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// The limit is reached; the window ends in `retry_after` seconds.
    #[error("rate limit reached; retry after {retry_after}s")]
    Exceeded { retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RateLimitError {
    fn exceeded(end: i64, now: i64) -> Self {
        RateLimitError::Exceeded {
            retry_after: (end - now).max(1) as u64,
        }
    }
}

/// The counters behind every rate limit, on the main table. Cheap to clone.
#[derive(Clone)]
pub struct RateLimiter {
    table: TableRef,
    clock: ClockRef,
}

impl RateLimiter {
    /// Counters on `table`, windows by `clock`.
    pub fn new(table: TableRef, clock: ClockRef) -> RateLimiter {
        RateLimiter { table, clock }
    }

    /// Counts one event in `bucket`; refused (with the rest of the window as retry delay) once
    /// the count passes the limit.
    pub async fn hit(&self, bucket: &str, limit: Limit) -> Result<(), RateLimitError> {
        let now = self.clock.epoch();
        let (w, end) = limit.window(now);
        let update = Update::new().add("count", 1).set("ttl", end);
        let item = self
            .table
            .update(&keys::rate(bucket, w), update, None)
            .await?;
        if get_n(&item, "count").unwrap_or(0) > limit.max {
            return Err(RateLimitError::exceeded(end, now));
        }
        Ok(())
    }

    /// Takes one slot in `bucket` BEFORE the work it limits: a conditional increment that
    /// refuses (retry delay = rest of the window) once `max` slots are taken in the current
    /// window. However many requests race, at most `max` get a slot per window; the count never
    /// passes `max`. The caller gives the slot back when the attempt succeeds
    /// ([`Slot::give_back`]), so only failures count: a flood of wrong guesses throttles the
    /// account until the window ends, never longer.
    pub async fn take(&self, bucket: &str, limit: Limit) -> Result<Slot, RateLimitError> {
        let now = self.clock.epoch();
        let (w, end) = limit.window(now);
        let key = keys::rate(bucket, w);
        let update = Update::new().add("count", 1).set("ttl", end);
        let room = Cond::NotExists("count".into()).or(Cond::lt("count", limit.max));
        match self.table.update(&key, update, Some(room)).await {
            Ok(_) => Ok(Slot { key }),
            Err(StoreError::ConditionFailed) => Err(RateLimitError::exceeded(end, now)),
            Err(e) => Err(e.into()),
        }
    }

    /// Forgets every slot taken in `bucket`'s current window (after the owner proved who they
    /// are another way, e.g. a password reset by mail).
    pub async fn clear(&self, bucket: &str, limit: Limit) -> Result<(), StoreError> {
        let (w, _) = limit.window(self.clock.epoch());
        self.table.delete(&keys::rate(bucket, w), None).await?;
        Ok(())
    }

    /// Refused when `bucket` has already reached the limit in the current window, without
    /// counting.
    pub async fn check(&self, bucket: &str, limit: Limit) -> Result<(), RateLimitError> {
        let now = self.clock.epoch();
        let (w, end) = limit.window(now);
        let count = self
            .table
            .get(&keys::rate(bucket, w))
            .await?
            .and_then(|i| get_n(&i, "count"))
            .unwrap_or(0);
        if count >= limit.max {
            return Err(RateLimitError::exceeded(end, now));
        }
        Ok(())
    }
}

/// One attempt counted against a limit by [`RateLimiter::take`], before the work it limits.
#[must_use = "a slot is either kept (the attempt failed) or given back"]
#[derive(Debug)]
pub struct Slot {
    key: Key,
}

impl Slot {
    /// Gives the slot back: the attempt succeeded, and only failures count against the limit.
    /// Best effort (a lost refund only counts one success as a failure).
    pub async fn give_back(self, limiter: &RateLimiter) {
        let update = Update::new().add("count", -1);
        match limiter
            .table
            .update(&self.key, update, Some(Cond::gt("count", 0)))
            .await
        {
            Ok(_) | Err(StoreError::ConditionFailed) => {}
            Err(e) => tracing::debug!(error = %e, "could not give a rate-limit slot back"),
        }
    }

    /// Keeps the slot counted (the attempt failed).
    pub fn keep(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(clock: ClockRef) -> RateLimiter {
        let store = crate::store::local::LocalStore::memory(clock.clone()).expect("memory store");
        let table: TableRef = std::sync::Arc::new(store.table(&crate::store::schema::MAIN, "main"));
        RateLimiter::new(table, clock)
    }

    #[test]
    fn limits_parse_from_max_slash_seconds() {
        assert_eq!(Limit::parse("10/300"), Some(Limit::new(10, 300)));
        assert_eq!(Limit::parse(" 5 / 60 "), Some(Limit::new(5, 60)));
        assert_eq!(Limit::parse("0/60"), None);
        assert_eq!(Limit::parse("10"), None);
        assert_eq!(Limit::parse("x/60"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn taken_slots_never_exceed_the_limit_under_parallel_attempts_and_refunds_free_them() {
        let clock = std::sync::Arc::new(crate::clock::ManualClock::new());
        let counters = limiter(clock.clone());
        let limit = Limit::new(10, 300);
        let tasks: Vec<_> = (0..60)
            .map(|_| {
                let counters = counters.clone();
                tokio::spawn(async move { counters.take("t:race", limit).await })
            })
            .collect();
        let mut slots = Vec::new();
        let mut refused = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(s) => slots.push(s),
                Err(e) => {
                    assert!(matches!(e, RateLimitError::Exceeded { .. }), "{e}");
                    refused += 1;
                }
            }
        }
        assert_eq!((slots.len(), refused), (10, 50));
        slots.pop().expect("a slot").give_back(&counters).await;
        let again = counters
            .take("t:race", limit)
            .await
            .expect("a refunded slot is free");
        again.keep();
        assert!(counters.take("t:race", limit).await.is_err(), "full again");
        counters.clear("t:race", limit).await.expect("clear");
        counters
            .take("t:race", limit)
            .await
            .expect("cleared")
            .keep();
        for s in slots {
            s.keep();
        }
    }

    #[tokio::test]
    async fn the_counter_refuses_past_the_limit_and_a_new_window_allows_again() {
        let clock = std::sync::Arc::new(crate::clock::ManualClock::new());
        let counters = limiter(clock.clone());
        let limit = Limit::new(3, 60);
        for _ in 0..3 {
            counters.hit("t:a", limit).await.expect("within limit");
        }
        let err = counters
            .hit("t:a", limit)
            .await
            .expect_err("fourth is refused");
        let RateLimitError::Exceeded { retry_after } = err else {
            panic!("not a rate limit: {err}");
        };
        assert!((1..=60).contains(&retry_after));
        assert!(counters.check("t:a", limit).await.is_err());
        counters
            .hit("t:b", limit)
            .await
            .expect("other buckets are independent");
        clock.advance(chrono::Duration::seconds(61));
        counters
            .hit("t:a", limit)
            .await
            .expect("the next window starts afresh");
        counters
            .check("t:a", limit)
            .await
            .expect("and is below the limit");
    }
}
