//! The wait a provider asks for when it turns a request away (429 / 503).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The longest wait a header may ask for and still be believed (a larger one is clamped).
const MAX_BELIEVED: Duration = Duration::from_secs(3_600);

/// The wait in a `Retry-After`-style header value: delay-seconds (whole or, as Xendit's
/// `Rate-Limit-Reset`, fractional) or an HTTP-date (RFC 9110 §10.2.3), relative to `now`.
pub fn parse_wait(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(MAX_BELIEVED.as_secs_f64())));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some(
        (at - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_BELIEVED),
    )
}

/// The wait the first of `names` present in `headers` asks for.
pub fn wait_from(
    headers: &reqwest::header::HeaderMap,
    names: &[&str],
    now: DateTime<Utc>,
) -> Option<Duration> {
    names.iter().find_map(|n| {
        headers
            .get(*n)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_wait(v, now))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_fractions_and_http_dates_are_understood() {
        let now = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(parse_wait("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_wait("58.5", now), Some(Duration::from_millis(58_500)));
        assert_eq!(
            parse_wait("Fri, 04 Dec 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_wait("Fri, 04 Dec 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_wait("99999999", now), Some(MAX_BELIEVED));
        assert_eq!(parse_wait("-1", now), None);
        assert_eq!(parse_wait("soon", now), None);
    }
}
