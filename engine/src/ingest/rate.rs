//! Per-address connection rate limit: a token bucket for each peer IP, so
//! one noisy host cannot crowd out the cameras, and a cap on how many
//! addresses are remembered.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Addresses remembered at most; beyond this, idle ones are forgotten.
const MAX_TRACKED: usize = 65_536;

#[derive(Debug)]
pub struct RateLimit {
    burst: f64,
    per_sec: f64,
    peers: HashMap<IpAddr, Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// Refused since the last time a refusal was reported.
    refused: u64,
    reported: Option<Instant>,
}

/// What to do with a new connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refuse; `report` carries how many were refused since the last report,
    /// at most once every 10 s per address.
    Refuse {
        report: Option<u64>,
    },
}

impl RateLimit {
    pub fn new(burst: u32, per_minute: u32) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_sec: f64::from(per_minute.max(1)) / 60.0,
            peers: HashMap::new(),
        }
    }

    pub fn check(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        if self.peers.len() >= MAX_TRACKED && !self.peers.contains_key(&ip) {
            let (burst, per_sec) = (self.burst, self.per_sec);
            // Forget addresses whose bucket has refilled: they lose nothing.
            self.peers
                .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < burst);
            if self.peers.len() >= MAX_TRACKED {
                return Verdict::Refuse { report: None };
            }
        }
        let b = self.peers.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            at: now,
            refused: 0,
            reported: None,
        });
        b.tokens =
            (b.tokens + now.duration_since(b.at).as_secs_f64() * self.per_sec).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Verdict::Allow;
        }
        b.refused += 1;
        let due = b
            .reported
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10));
        if due {
            b.reported = Some(now);
            Verdict::Refuse {
                report: Some(std::mem::take(&mut b.refused)),
            }
        } else {
            Verdict::Refuse { report: None }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_sustained_rate() {
        let mut r = RateLimit::new(3, 60);
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let other: IpAddr = "10.0.0.6".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(r.check(ip, t0), Verdict::Allow);
        }
        assert_eq!(r.check(ip, t0), Verdict::Refuse { report: Some(1) });
        assert_eq!(r.check(ip, t0), Verdict::Refuse { report: None });
        // Another address is not held back by the first.
        assert_eq!(r.check(other, t0), Verdict::Allow);
        // One per second comes back.
        let t1 = t0 + Duration::from_millis(1100);
        assert_eq!(r.check(ip, t1), Verdict::Allow);
        assert!(matches!(r.check(ip, t1), Verdict::Refuse { .. }));
        // Refusals are reported at most once every 10 s, with their count.
        let t2 = t1 + Duration::from_secs(10);
        let verdicts: Vec<Verdict> = (0..20).map(|_| r.check(ip, t2)).collect();
        assert_eq!(
            verdicts[..3],
            [Verdict::Allow, Verdict::Allow, Verdict::Allow]
        );
        assert_eq!(verdicts[3], Verdict::Refuse { report: Some(3) });
        assert!(
            verdicts[4..]
                .iter()
                .all(|v| *v == Verdict::Refuse { report: None })
        );
        let t3 = t2 + Duration::from_secs(10);
        for _ in 0..3 {
            assert_eq!(r.check(ip, t3), Verdict::Allow);
        }
        assert_eq!(r.check(ip, t3), Verdict::Refuse { report: Some(17) });
    }
}
