//! The capacity benchmark's `-- --together [--rounds N] [--paced-floor]
//! [--async-floor]`: the panel and the floor measured in the same window.
//! Each simulated camera streams the same frames at the same moments to
//! every server, so a change of this VM's speed weighs on all alike:
//! measured one after the other, nine runs of the same build at 32
//! cameras of 768x576 gave ratios from 1.10x to 2.16x, as one 15 s window
//! ran up to 40% slower than the next.
//!
//! The kernel threads' CPU cannot be told apart between the servers, so
//! only each process's own is compared here; the `+kernel` figure comes
//! from the runs one after the other. What the floor leaves to the
//! kernel's threads and the recorder does itself (starting writeback,
//! letting pages go, the periodic sync) is measured apart by the paced
//! floor, and what a tokio runtime adds to that by the async floor (see
//! `floor::Loop`), each another server in the same window.

use bytes::Bytes;

use super::drive::{Driven, Target, drive_all};
use super::floor::{Loop, start_floor};
use super::{Case, finish_panel, start_panel};

/// The floors measured beside the panel and the floor.
#[derive(Clone, Copy)]
pub struct Floors {
    pub paced: bool,
    pub async_: bool,
}

/// Runs `case` `n` times with the panel, the floor and the other `floors`
/// side by side, a line a round, then the median ratios; `label` says how
/// the panel runs.
pub fn together(case: Case, frames: &[Bytes], n: usize, label: &str, floors: Floors) {
    let step = cctv_engine::recorder::paced_step(
        case.k,
        cctv_engine::config::PanelConfig::default().writeback_step_kb * 1024,
    );
    let mut loops = vec![Loop::Plain];
    loops.extend(floors.paced.then_some(Loop::Paced(step)));
    loops.extend(floors.async_.then_some(Loop::Async(step)));
    let others: String = loops[1..]
        .iter()
        .map(|l| format!(" {:>8} {:>8}", short(*l), "/floor"))
        .collect();
    let also: String = loops[1..]
        .iter()
        .map(|l| format!(", {}", l.name()))
        .collect();
    println!(
        "{:>5} {:>10} {:>4} {:>9} {:>9} {:>6} {:>8} {:>10} {:>8} {:>7}{others}   (panel, {label}, and floor{also} in the same window; CPU s per 1,000 frames)",
        "K", "frame", "fps", "sent", "recorded", "lost", "p99 ms", "cpu s/1k", "floor", "ratio"
    );
    // Per round: each server's CPU per 1,000 frames, the panel first.
    let mut rounds: Vec<Vec<f64>> = Vec::new();
    for _ in 0..n.max(1) {
        let dirs: Vec<_> = loops.iter().map(|_| tempfile::tempdir().unwrap()).collect();
        let servers: Vec<_> = loops
            .iter()
            .zip(&dirs)
            .map(|(l, d)| start_floor(d.path(), *l))
            .collect();
        let panel = start_panel(case);
        let mut targets = vec![panel.target()];
        targets.extend(servers.iter().map(|(server, addr)| Target {
            addr: *addr,
            pid: server.0.id(),
            floor: true,
        }));
        let driven = drive_all(&targets, case, frames);
        drop(servers);
        let o = finish_panel(panel, driven[0]);
        let per_1000 = |d: &Driven| d.per_1000(d.cpu.process).max(1e-9);
        let mut cpu = vec![o.cpu_per_1000.max(1e-9)];
        cpu.extend(driven[1..].iter().map(per_1000));
        let others: String = cpu[2..]
            .iter()
            .map(|c| format!(" {:>8.3} {:>7.2}x", c, c / cpu[1]))
            .collect();
        println!(
            "{:>5} {:>10} {:>4} {:>9} {:>9} {:>6} {:>8} {:>10.3} {:>8.3} {:>6.2}x{others}",
            case.k,
            format!("{}x{}", case.w, case.h),
            case.fps,
            o.sent,
            o.recorded,
            o.sent.saturating_sub(o.recorded),
            o.p99.map_or("-".into(), |v| format!("{v:.1}")),
            cpu[0],
            cpu[1],
            cpu[0] / cpu[1]
        );
        rounds.push(cpu);
    }
    let ratio = |a: usize, b: usize| spread(rounds.iter().map(|r| r[a] / r[b]).collect());
    println!(
        "   {} rounds, panel ({label}) and floor in the same window: the panel's process {} the floor's",
        rounds.len(),
        ratio(0, 1)
    );
    for (i, l) in loops.iter().enumerate().skip(1) {
        println!(
            "   the {}: {} the floor's; the panel {} the {}'s",
            l.name(),
            ratio(i + 1, 1),
            ratio(0, i + 1),
            l.name()
        );
    }
    if floors.paced && floors.async_ {
        println!(
            "   the async floor {} the paced floor's",
            ratio(loops.len(), 2)
        );
    }
}

fn short(l: Loop) -> &'static str {
    match l {
        Loop::Plain => "floor",
        Loop::Paced(_) => "paced",
        Loop::Async(_) => "async",
    }
}

/// "1.23x (median; rounds 1.20x to 1.30x)".
fn spread(mut ratios: Vec<f64>) -> String {
    ratios.sort_by(f64::total_cmp);
    format!(
        "{:.2}x (median; rounds {:.2}x to {:.2}x)",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    )
}
