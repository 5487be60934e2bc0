//! Counters the engine keeps about itself for benchmarks and operators:
//! the capture-to-disk latency of recorded frames, as a histogram of
//! atomic buckets (no lock, no allocation per frame).

use std::sync::atomic::{AtomicU64, Ordering};

/// Bucket upper bounds in microseconds: 0.5 ms steps to 10 ms, then coarser.
const BOUNDS_US: [i64; 40] = [
    500,
    1_000,
    1_500,
    2_000,
    2_500,
    3_000,
    4_000,
    5_000,
    6_000,
    7_000,
    8_000,
    9_000,
    10_000,
    12_500,
    15_000,
    17_500,
    20_000,
    25_000,
    30_000,
    40_000,
    50_000,
    60_000,
    70_000,
    80_000,
    90_000,
    100_000,
    125_000,
    150_000,
    200_000,
    250_000,
    300_000,
    400_000,
    500_000,
    750_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    30_000_000,
    i64::MAX,
];

#[derive(Debug)]
pub struct Latency {
    buckets: [AtomicU64; 40],
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Latency {
    pub fn record(&self, us: i64) {
        let i = BOUNDS_US.partition_point(|b| *b < us.max(0));
        self.buckets[i.min(BOUNDS_US.len() - 1)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The bucket bound at or under which `q` (0..1) of the samples fall, in ms.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let want = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Some(BOUNDS_US[i].min(60_000_000) as f64 / 1000.0);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_land_in_the_right_bucket() {
        let l = Latency::default();
        for _ in 0..98 {
            l.record(800);
        }
        l.record(45_000);
        l.record(2_000_000);
        assert_eq!(l.count(), 100);
        assert_eq!(l.quantile_ms(0.5), Some(1.0));
        assert_eq!(l.quantile_ms(0.99), Some(50.0));
        assert_eq!(l.quantile_ms(1.0), Some(2000.0));
    }
}
