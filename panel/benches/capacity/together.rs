//! The capacity benchmark's `-- --together [--rounds N]`: the panel and
//! the floor measured in the same window. Each simulated camera streams
//! the same frames at the same moments to both servers, so a change of
//! this VM's speed weighs on both alike: measured one after the other,
//! nine runs of the same build at 32 cameras of 768x576 gave ratios from
//! 1.10x to 2.16x, as one 15 s window ran up to 40% slower than the next.
//!
//! The kernel threads' CPU cannot be told apart between the two servers,
//! so only each process's own is compared here; the `+kernel` figure
//! comes from the runs one after the other.

use bytes::Bytes;

use super::drive::{Target, drive_all};
use super::floor::start_floor;
use super::{Case, finish_panel, start_panel};

/// Runs `case` `n` times with the panel and the floor side by side, a line
/// a round, then the median ratio; `label` says how the panel runs.
pub fn together(case: Case, frames: &[Bytes], n: usize, label: &str) {
    println!(
        "{:>5} {:>10} {:>4} {:>9} {:>9} {:>6} {:>8} {:>10} {:>8} {:>7}   (panel, {label}, and floor in the same window)",
        "K", "frame", "fps", "sent", "recorded", "lost", "p99 ms", "cpu s/1k", "floor", "ratio"
    );
    let mut ratios = Vec::new();
    for _ in 0..n.max(1) {
        let floor_dir = tempfile::tempdir().unwrap();
        let (floor, floor_addr) = start_floor(floor_dir.path());
        let panel = start_panel(case);
        let targets = [
            panel.target(),
            Target {
                addr: floor_addr,
                pid: floor.0.id(),
                floor: true,
            },
        ];
        let [p, f] = drive_all(&targets, case, frames)[..] else {
            unreachable!("one result a target")
        };
        drop(floor);
        let o = finish_panel(panel, p);
        let floor_per_1000 = f.per_1000(f.cpu.process);
        let ratio = o.cpu_per_1000 / floor_per_1000.max(1e-9);
        ratios.push(ratio);
        println!(
            "{:>5} {:>10} {:>4} {:>9} {:>9} {:>6} {:>8} {:>10.3} {:>8.3} {:>6.2}x",
            case.k,
            format!("{}x{}", case.w, case.h),
            case.fps,
            o.sent,
            o.recorded,
            o.sent.saturating_sub(o.recorded),
            o.p99.map_or("-".into(), |v| format!("{v:.1}")),
            o.cpu_per_1000,
            floor_per_1000,
            ratio
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "   {} rounds, panel ({label}) and floor in the same window: the panel's process {:.2}x the floor's (median; rounds {:.2}x to {:.2}x)",
        ratios.len(),
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
}
