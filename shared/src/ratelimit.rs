//! Fixed-window rate limits on DynamoDB counters (`RATE#{bucket}#{window}`, TTL = window end).
//! A window always ends, so a real user is slowed down, never locked out for good.

use crate::app::App;
use crate::error::ApiError;
use crate::store::{Cond, Key, StoreError, Update, get_n, keys};

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

    /// Parses `MAX/SECONDS`, e.g. `10/300`.
    pub fn parse(s: &str) -> Option<Limit> {
        let (max, secs) = s.trim().split_once('/')?;
        let (max, secs) = (
            max.trim().parse::<i64>().ok()?,
            secs.trim().parse::<i64>().ok()?,
        );
        (max >= 1 && (1..=86_400 * 7).contains(&secs)).then_some(Limit {
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

/// Counts one event in `bucket`; 429 (with `Retry-After` = rest of the window) once the count
/// passes the limit.
pub async fn hit(app: &App, bucket: &str, limit: Limit) -> Result<(), ApiError> {
    let now = app.clock.epoch();
    let (w, end) = limit.window(now);
    let update = Update::new().add("count", 1).set("ttl", end);
    let item = app
        .main
        .update(&keys::rate(bucket, w), update, None)
        .await?;
    if get_n(&item, "count").unwrap_or(0) > limit.max {
        return Err(ApiError::too_many_requests((end - now).max(1) as u64));
    }
    Ok(())
}

/// One attempt counted against a limit by [`take`], before the work it limits.
#[must_use = "a slot is either kept (the attempt failed) or given back"]
#[derive(Debug)]
pub struct Slot {
    key: Key,
}

impl Slot {
    /// Gives the slot back: the attempt succeeded, and only failures count against the limit.
    /// Best effort (a lost refund only counts one success as a failure).
    pub async fn give_back(self, app: &App) {
        let update = Update::new().add("count", -1);
        match app
            .main
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

/// Takes one slot in `bucket` BEFORE the work it limits: a conditional increment that refuses
/// (429, `Retry-After` = rest of the window) once `max` slots are taken in the current window.
/// However many requests race, at most `max` get a slot per window; the count never passes `max`.
/// The caller gives the slot back when the attempt succeeds ([`Slot::give_back`]), so only
/// failures count: a flood of wrong guesses throttles the account until the window ends, never
/// longer.
pub async fn take(app: &App, bucket: &str, limit: Limit) -> Result<Slot, ApiError> {
    let now = app.clock.epoch();
    let (w, end) = limit.window(now);
    let key = keys::rate(bucket, w);
    let update = Update::new().add("count", 1).set("ttl", end);
    let room = Cond::NotExists("count".into()).or(Cond::lt("count", limit.max));
    match app.main.update(&key, update, Some(room)).await {
        Ok(_) => Ok(Slot { key }),
        Err(StoreError::ConditionFailed) => {
            Err(ApiError::too_many_requests((end - now).max(1) as u64))
        }
        Err(e) => Err(e.into()),
    }
}

/// Forgets every slot taken in `bucket`'s current window (after the owner proved who they are
/// another way, e.g. a password reset by mail).
pub async fn clear(app: &App, bucket: &str, limit: Limit) -> Result<(), ApiError> {
    let (w, _) = limit.window(app.clock.epoch());
    app.main.delete(&keys::rate(bucket, w), None).await?;
    Ok(())
}

/// 429 when `bucket` has already reached the limit in the current window, without counting.
pub async fn check(app: &App, bucket: &str, limit: Limit) -> Result<(), ApiError> {
    let now = app.clock.epoch();
    let (w, end) = limit.window(now);
    let count = app
        .main
        .get(&keys::rate(bucket, w))
        .await?
        .and_then(|i| get_n(&i, "count"))
        .unwrap_or(0);
    if count >= limit.max {
        return Err(ApiError::too_many_requests((end - now).max(1) as u64));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let app = App::for_tests_with_clock(clock.clone());
        let limit = Limit::new(10, 300);
        let tasks: Vec<_> = (0..60)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { take(&app, "t:race", limit).await })
            })
            .collect();
        let mut slots = Vec::new();
        let mut refused = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(s) => slots.push(s),
                Err(e) => {
                    assert_eq!(e.status.as_u16(), 429);
                    refused += 1;
                }
            }
        }
        assert_eq!((slots.len(), refused), (10, 50));
        slots.pop().expect("a slot").give_back(&app).await;
        let again = take(&app, "t:race", limit)
            .await
            .expect("a refunded slot is free");
        again.keep();
        assert!(take(&app, "t:race", limit).await.is_err(), "full again");
        clear(&app, "t:race", limit).await.expect("clear");
        take(&app, "t:race", limit).await.expect("cleared").keep();
        for s in slots {
            s.keep();
        }
    }

    #[tokio::test]
    async fn the_counter_refuses_past_the_limit_and_a_new_window_allows_again() {
        let clock = std::sync::Arc::new(crate::clock::ManualClock::new());
        let app = App::for_tests_with_clock(clock.clone());
        let limit = Limit::new(3, 60);
        for _ in 0..3 {
            hit(&app, "t:a", limit).await.expect("within limit");
        }
        let err = hit(&app, "t:a", limit)
            .await
            .expect_err("fourth is refused");
        assert_eq!(err.status.as_u16(), 429);
        assert!(err.retry_after.is_some_and(|s| (1..=60).contains(&s)));
        assert!(check(&app, "t:a", limit).await.is_err());
        hit(&app, "t:b", limit)
            .await
            .expect("other buckets are independent");
        clock.advance(chrono::Duration::seconds(61));
        hit(&app, "t:a", limit)
            .await
            .expect("the next window starts afresh");
        check(&app, "t:a", limit)
            .await
            .expect("and is below the limit");
    }
}
