//! The capacity benchmark's table: one row per case, under one header.

use super::floor::Floor;
use super::{Case, Outcome};

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

pub fn row(case: Case, o: &Outcome, floor: Floor) {
    row_labelled(case, o, floor, "");
}

/// A row whose frame column also says `label` (e.g. " pg").
pub fn row_labelled(case: Case, o: &Outcome, floor: Floor, label: &str) {
    println!(
        "{:>5} {:>10} {:>4} {:>9} {:>9} {:>6} {:>8} {:>8} {:>8.0} {:>10.3} {:>8.3} {:>6.2}x {:>8.3} {:>8.3} {:>6.2}x {:>6.2} {:>8.0} {:>7.1}",
        case.k,
        format!(
            "{}x{}{}{}{label}",
            case.w,
            case.h,
            if case.tls { " tls" } else { "" },
            if case.audio { " +snd" } else { "" }
        ),
        case.fps,
        o.sent,
        o.recorded,
        o.sent.saturating_sub(o.recorded),
        fmt_ms(o.p50),
        fmt_ms(o.p99),
        o.dirty_mb,
        o.cpu_per_1000,
        floor.cpu_per_1000,
        o.cpu_per_1000 / floor.cpu_per_1000.max(1e-9),
        o.all_per_1000,
        floor.all_per_1000,
        o.all_per_1000 / floor.all_per_1000.max(1e-9),
        o.cores,
        o.rss_mb,
        o.mb_s
    );
}

pub fn header() {
    println!(
        "{:>5} {:>10} {:>4} {:>9} {:>9} {:>6} {:>8} {:>8} {:>8} {:>10} {:>8} {:>7} {:>8} {:>8} {:>7} {:>6} {:>8} {:>7}",
        "K",
        "frame",
        "fps",
        "sent",
        "recorded",
        "lost",
        "p50 ms",
        "p99 ms",
        "dirty MB",
        "cpu s/1k",
        "floor",
        "ratio",
        "+kernel",
        "floor",
        "ratio",
        "cores",
        "RSS MB",
        "MB/s"
    );
}

/// One outcome against another, in words: frames lost, p99, CPU per frame.
pub fn compare(what: &str, a: &Outcome, b: &Outcome, against: &str) {
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1} ms"));
    println!(
        "   {what}: {} frames lost against {} ({against}); p99 {} against {}; \
         {:.0} MB dirty against {:.0}; \
         {:.3} cpu s per 1000 frames against {:.3} ({:.2}x); {:.0} MB RSS against {:.0}",
        a.sent.saturating_sub(a.recorded),
        b.sent.saturating_sub(b.recorded),
        ms(a.p99),
        ms(b.p99),
        a.dirty_mb,
        b.dirty_mb,
        a.cpu_per_1000,
        b.cpu_per_1000,
        a.cpu_per_1000 / b.cpu_per_1000.max(1e-9),
        a.rss_mb,
        b.rss_mb
    );
}
