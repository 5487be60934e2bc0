//! Capped exponential backoff with jitter, for reconnecting to the panel.
//! Jitter spreads the reconnections of many agents after a panel restart.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, cap: Duration) -> Self {
        Self {
            initial: initial.min(cap),
            cap,
            attempt: 0,
        }
    }

    /// The ceiling of the next delay, before jitter: initial * 2^attempt, capped.
    fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(30));
        self.initial.saturating_mul(factor).min(self.cap)
    }

    /// The next delay: between half the ceiling and the ceiling, never above the cap.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let jitter = rand::rng().random_range(0.0..=1.0);
        half + half.mul_f64(jitter)
    }

    /// After a good connection, start again from the initial delay.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_never_past_it() {
        let cap = Duration::from_secs(5);
        let mut b = Backoff::new(Duration::from_millis(250), cap);
        let delays: Vec<Duration> = (0..20).map(|_| b.next_delay()).collect();
        assert!(delays[0] <= Duration::from_millis(250));
        assert!(delays[0] >= Duration::from_millis(125));
        assert!(delays.iter().all(|d| *d <= cap));
        assert!(delays[10..].iter().all(|d| *d >= cap / 2), "{delays:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(250));
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
            seen.insert(b.next_delay().as_micros());
        }
        assert!(seen.len() > 10, "delays should differ between agents");
    }
}
