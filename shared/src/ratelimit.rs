//! Fixed-window rate limits on DynamoDB counters (`RATE#{bucket}#{window}`, TTL = window end).
//! A window always ends, so a real user is slowed down, never locked out for good.

use crate::app::App;
use crate::error::ApiError;
use crate::store::{Update, get_n, keys};

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

/// 429 when `bucket` has already reached the limit in the current window, without counting.
/// (Login uses this per account and counts only failures, so guessing cannot lock the owner out
/// beyond the window.)
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
