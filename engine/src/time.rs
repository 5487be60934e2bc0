//! Times as the panel shows and accepts them. Stored times are microseconds
//! since the Unix epoch (UTC); people read and type local time.

use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};

pub fn now_us() -> i64 {
    cctv_protocol::now_us() as i64
}

/// "2026-11-21 14:02:11" in local time.
pub fn local(us: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(us) {
        Some(t) => t
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        None => format!("@{us}"),
    }
}

/// "14:02:11" in local time.
pub fn local_clock(us: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(us) {
        Some(t) => t.with_timezone(&Local).format("%H:%M:%S").to_string(),
        None => format!("@{us}"),
    }
}

/// Text that [`parse`] cannot read as a time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadTime {
    #[error(
        "cannot read time {0:?}: use RFC 3339 (2026-11-21T14:02:00Z) or local YYYY-MM-DD HH:MM[:SS]"
    )]
    Unreadable(String),
    #[error("{0:?} does not exist in the local time zone")]
    NotLocal(String),
}

/// Parses RFC 3339 ("2026-11-21T14:02:11Z") or local "YYYY-MM-DD HH:MM[:SS]"
/// or a bare local date "YYYY-MM-DD" (midnight).
pub fn parse(s: &str) -> Result<i64, BadTime> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    let naive = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .or_else(|| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    });
    let naive = naive.ok_or_else(|| BadTime::Unreadable(s.to_string()))?;
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp_micros())
        .ok_or_else(|| BadTime::NotLocal(s.to_string()))
}

/// "2026-11-21" and "20261121T140211Z" (UTC) for directory and file names.
pub fn utc_day_and_stamp(us: i64) -> (String, String) {
    let t = DateTime::<Utc>::from_timestamp_micros(us).unwrap_or_default();
    (
        t.format("%Y-%m-%d").to_string(),
        t.format("%Y%m%dT%H%M%SZ").to_string(),
    )
}

/// A tick every `period`, on the same instants in every task that asks for
/// the same period (multiples of it since the process's first call): a
/// thousand cameras' checks wake the runtime once per tick, not a thousand
/// times at scattered instants.
pub fn aligned_interval(period: std::time::Duration) -> tokio::time::Interval {
    use std::sync::OnceLock;
    use tokio::time::{Instant, MissedTickBehavior};
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    let period = period.max(std::time::Duration::from_millis(1));
    let since = base.elapsed().as_nanos();
    let step = period.as_nanos();
    let next = base + std::time::Duration::from_nanos(((since / step + 1) * step) as u64);
    let mut tick = tokio::time::interval_at(next, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    tick
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_and_local_forms() {
        assert_eq!(parse("1970-01-01T00:00:01Z").unwrap(), 1_000_000);
        let a = parse("2026-11-21 14:02").unwrap();
        let b = parse("2026-11-21 14:02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            parse("2026-11-21").unwrap() + 14 * 3_600_000_000 + 120_000_000,
            a
        );
        assert!(parse("yesterday").is_err());
    }

    #[test]
    fn file_stamps_are_utc() {
        let (day, stamp) = utc_day_and_stamp(1_795_269_731_123_000);
        assert_eq!(day, "2026-11-21");
        assert_eq!(stamp, "20261121T140211Z");
    }

    #[tokio::test]
    async fn intervals_of_one_period_tick_on_the_same_instants() {
        let period = std::time::Duration::from_millis(40);
        let mut a = aligned_interval(period);
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
        let mut b = aligned_interval(period);
        let (ta, tb) = (a.tick().await, b.tick().await);
        // Made 15 ms apart (or more, on a busy machine), B's ticks are A's.
        let apart = tb.duration_since(ta).as_nanos();
        assert_eq!(apart % period.as_nanos(), 0, "{apart} ns apart");
        assert_eq!(a.tick().await, ta + period);
    }
}
