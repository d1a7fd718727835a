//! Order statistics over samples (nearest-rank percentiles on a sorted copy).

use std::time::Duration;

/// Summary of a sample of durations.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub n: usize,
    pub min: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

/// Nearest-rank percentile `p` (0..=100) of sorted samples; `None` when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Summarises samples; `None` when there are none.
pub fn summarize(samples: &[Duration]) -> Option<Summary> {
    let mut s = samples.to_vec();
    s.sort_unstable();
    let total: Duration = s.iter().sum();
    Some(Summary {
        n: s.len(),
        min: *s.first()?,
        p50: percentile(&s, 50.0)?,
        p90: percentile(&s, 90.0)?,
        p99: percentile(&s, 99.0)?,
        max: *s.last()?,
        mean: total / s.len() as u32,
    })
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_of_one_to_hundred_are_the_ranks() {
        let s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let sum = summarize(&s).expect("non-empty");
        assert_eq!(sum.p50, Duration::from_millis(50));
        assert_eq!(sum.p90, Duration::from_millis(90));
        assert_eq!(sum.p99, Duration::from_millis(99));
        assert_eq!(sum.max, Duration::from_millis(100));
        assert_eq!(sum.min, Duration::from_millis(1));
    }

    #[test]
    fn no_samples_have_no_summary() {
        assert!(summarize(&[]).is_none());
    }
}
