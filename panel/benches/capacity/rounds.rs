//! The capacity benchmark's `-- --rounds N`: each case's panel and floor
//! measured in turn, N times, for the ratio of CPU per frame with this
//! VM's speed drifting between runs. Each round's ratio compares two
//! windows a minute apart at most; the median of the rounds is printed.

use bytes::Bytes;

use super::floor::run_floor;
use super::{Case, run_panel, table};

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Runs `case` `n` times, a row a round, then the medians.
pub fn rounds(case: Case, frames: &[Bytes], n: usize) {
    let mut own = Vec::new();
    let mut all = Vec::new();
    let mut panel = Vec::new();
    let mut floor = Vec::new();
    for _ in 0..n.max(1) {
        let o = run_panel(case, frames);
        let f = run_floor(case, frames);
        table::row(case, &o, f);
        own.push(o.cpu_per_1000 / f.cpu_per_1000.max(1e-9));
        all.push(o.all_per_1000 / f.all_per_1000.max(1e-9));
        panel.push(o.cpu_per_1000);
        floor.push(f.cpu_per_1000);
    }
    let (own, own_lo, own_hi) = median(own);
    let (all, all_lo, all_hi) = median(all);
    let (panel, panel_lo, panel_hi) = median(panel);
    let (floor, floor_lo, floor_hi) = median(floor);
    println!(
        "   {n} rounds, panel and floor in turn: the process alone {own:.2}x the floor (median; rounds {own_lo:.2}x to {own_hi:.2}x), \
         with the kernel's share {all:.2}x ({all_lo:.2}x to {all_hi:.2}x); \
         the panel {panel:.3} cpu s per 1000 frames ({panel_lo:.3} to {panel_hi:.3}), the floor {floor:.3} ({floor_lo:.3} to {floor_hi:.3})"
    );
}
