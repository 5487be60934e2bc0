//! The capacity benchmark's `-- --together [--rounds N] [--paced-floor]`:
//! the panel and the floor measured in the same window. Each simulated
//! camera streams the same frames at the same moments to both servers, so
//! a change of this VM's speed weighs on both alike: measured one after
//! the other, nine runs of the same build at 32 cameras of 768x576 gave
//! ratios from 1.10x to 2.16x, as one 15 s window ran up to 40% slower
//! than the next.
//!
//! The kernel threads' CPU cannot be told apart between the servers, so
//! only each process's own is compared here; the `+kernel` figure comes
//! from the runs one after the other. What the floor leaves to the
//! kernel's threads and the recorder does itself (starting writeback,
//! letting pages go, the periodic sync) is measured apart by
//! `--paced-floor`: a third server, the floor loop making those calls
//! too, in the same window.

use bytes::Bytes;

use super::drive::{Driven, Target, drive_all};
use super::floor::start_floor;
use super::{Case, finish_panel, start_panel};

/// Runs `case` `n` times with the panel and the floor side by side (and
/// the paced floor, if `paced`), a line a round, then the median ratios;
/// `label` says how the panel runs.
pub fn together(case: Case, frames: &[Bytes], n: usize, label: &str, paced: bool) {
    let paced_cols = if paced {
        format!(" {:>8} {:>9} {:>9}", "paced", "paced/fl", "to paced")
    } else {
        String::new()
    };
    let also = if paced { ", paced floor" } else { "" };
    println!(
        "{:>5} {:>10} {:>4} {:>9} {:>9} {:>6} {:>8} {:>10} {:>8} {:>7}{paced_cols}   (panel, {label}, and floor{also} in the same window)",
        "K", "frame", "fps", "sent", "recorded", "lost", "p99 ms", "cpu s/1k", "floor", "ratio"
    );
    let mut ratios = Vec::new();
    let mut paced_ratios = Vec::new();
    let mut to_paced = Vec::new();
    let step = cctv_engine::recorder::paced_step(
        case.k,
        cctv_engine::config::PanelConfig::default().writeback_step_kb * 1024,
    );
    for _ in 0..n.max(1) {
        let floor_dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let (floor, floor_addr) = start_floor(floor_dirs[0].path(), None);
        let paced_floor = paced.then(|| start_floor(floor_dirs[1].path(), Some(step)));
        let panel = start_panel(case);
        let mut targets = vec![panel.target(), floor_target(floor.0.id(), floor_addr)];
        if let Some((server, addr)) = &paced_floor {
            targets.push(floor_target(server.0.id(), *addr));
        }
        let driven = drive_all(&targets, case, frames);
        drop(floor);
        drop(paced_floor);
        let o = finish_panel(panel, driven[0]);
        let per_1000 = |d: &Driven| d.per_1000(d.cpu.process).max(1e-9);
        let floor_per_1000 = per_1000(&driven[1]);
        let ratio = o.cpu_per_1000 / floor_per_1000;
        ratios.push(ratio);
        let paced_cols = match driven.get(2) {
            Some(p) => {
                let p = per_1000(p);
                paced_ratios.push(p / floor_per_1000);
                to_paced.push(o.cpu_per_1000 / p);
                format!(
                    " {:>8.3} {:>8.2}x {:>8.2}x",
                    p,
                    p / floor_per_1000,
                    o.cpu_per_1000 / p
                )
            }
            None => String::new(),
        };
        println!(
            "{:>5} {:>10} {:>4} {:>9} {:>9} {:>6} {:>8} {:>10.3} {:>8.3} {:>6.2}x{paced_cols}",
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
    println!(
        "   {} rounds, panel ({label}) and floor in the same window: the panel's process {}",
        ratios.len(),
        spread(&mut ratios)
    );
    if paced {
        println!(
            "   the paced floor (the floor making the recorder's disk calls, {} MiB steps): {} the floor's; the panel {} the paced floor's",
            step >> 20,
            spread(&mut paced_ratios),
            spread(&mut to_paced)
        );
    }
}

fn floor_target(pid: u32, addr: std::net::SocketAddr) -> Target {
    Target {
        addr,
        pid,
        floor: true,
    }
}

/// "1.23x (median; rounds 1.20x to 1.30x)".
fn spread(ratios: &mut [f64]) -> String {
    ratios.sort_by(f64::total_cmp);
    format!(
        "{:.2}x (median; rounds {:.2}x to {:.2}x)",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    )
}
