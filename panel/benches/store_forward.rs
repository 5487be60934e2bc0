//! What an outage costs, measured: a real agent (release build) streams a
//! 768x576 test pattern at 10 fps through a fault-injecting proxy into an
//! engine; the proxy blackholes the route for 10 s, 60 s and 10 min. For
//! each outage it prints, side by side: frames captured during it (the
//! agent's own frame log), frames of it recorded (ffprobe on the
//! recordings), frames lost, how long after the route came back a frame
//! captured after it reached the wall, how long the backfill took (the
//! agent's own measure), the spool on disk when the route came back, and
//! the agent's CPU and disk writes while streaming, while spooling and
//! while backfilling. A last run streams with and without a spool for the
//! same time: the spool's own cost.
//!
//! Run: `cargo bench -p panel --bench store_forward` (about 15 minutes);
//! `-- 10,60` for the shorter outages only.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::forward::*;
use support::proxy::{Fault, FaultProxy};
use support::*;

const SOURCE: &str = "test-pattern:768x576";

/// CPU seconds (user + system) and bytes written of a process so far.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat; 12 and 13 after the command's ')'.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let written = io
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (cpu, written)
}

/// CPU (share of one core) and MB/s written over a stretch.
struct Stretch {
    cpu: f64,
    write_mb_s: f64,
}

fn between(a: (f64, u64), b: (f64, u64), secs: f64) -> Stretch {
    Stretch {
        cpu: (b.0 - a.0) / secs,
        write_mb_s: b.1.saturating_sub(a.1) as f64 / 1e6 / secs,
    }
}

/// The process's use over the next `secs`, and its totals at the end.
async fn measure(pid: u32, secs: u64) -> (Stretch, (f64, u64)) {
    let t = Instant::now();
    let a = usage(pid);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let b = usage(pid);
    (between(a, b, t.elapsed().as_secs_f64()), b)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

struct Outcome {
    outage: u64,
    captured: usize,
    recorded: usize,
    to_live: f64,
    backfill_secs: f64,
    spool_mb: f64,
    streaming: Stretch,
    spooling: Stretch,
    backfilling: Stretch,
}

/// The agent's own "backfill done: N frames (X MB) in T s".
fn backfill_secs(stderr: &Path) -> f64 {
    let text = std::fs::read_to_string(stderr).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("backfill done"))
        .filter_map(|l| {
            let tail = l.split(" in ").nth(1)?;
            tail.split_whitespace().next()?.parse::<f64>().ok()
        })
        .next_back()
        .unwrap_or(f64::NAN)
}

async fn outage(secs: u64) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.segment_secs = 60;
    let recordings = cfg.recordings_dir.clone();
    let engine = start_engine(cfg).await;
    let mut creds = enroll(&engine, "door", "Door").await;
    let proxy = FaultProxy::start(creds.addr).await;
    creds.addr = proxy.addr;
    let log = dir.path().join("frames.log");
    let spool = dir.path().join("spool");
    let stderr = dir.path().join("agent.log");
    let child = std::process::Command::new(agent_binary())
        .args(creds.agent_args())
        .args(["--source", SOURCE, "--fps", "10", "--no-analysis"])
        .args(["--max-backoff", "1", "--spool-dir"])
        .arg(&spool)
        .arg("--frame-log")
        .arg(&log)
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let agent = Proc(child);
    let pid = agent.0.id();
    until_frames(&engine, "door", 20).await;
    let (streaming, u1) = measure(pid, 10).await;

    proxy.set(Fault::Blackhole);
    let cut_us = cctv_engine::time::now_us();
    let t1 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let u2 = usage(pid);
    let spooling = between(u1, u2, t1.elapsed().as_secs_f64());
    let spool_mb = dir_bytes(&spool.join("door")) as f64 / 1e6;

    let back = Instant::now();
    let back_us = cctv_engine::time::now_us();
    proxy.set(Fault::Pass);
    wait_for(Duration::from_secs(30), "a live frame", async || {
        engine
            .camera("door")
            .filter(|c| c.last_frame_us.is_some_and(|t| t >= back_us))
            .map(|_| ())
    })
    .await;
    let to_live = back.elapsed().as_secs_f64();
    let agent_log = until_acked(&log, back_us, Duration::from_secs(secs.max(60) * 2)).await;
    let u3 = usage(pid);
    let backfilling = between(u2, u3, back.elapsed().as_secs_f64());
    agent.signal("TERM");
    let rows = finished_recordings(&engine, "door").await;
    let times = probed_times(&recordings, &rows);
    engine.shutdown().await;

    let in_outage: Vec<i64> = agent_log
        .captured
        .values()
        .copied()
        .filter(|t| (cut_us..back_us).contains(t))
        .collect();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    let recorded = in_outage
        .iter()
        .filter(|t| {
            let i = sorted.partition_point(|r| *r < **t - 1_000);
            sorted.get(i).is_some_and(|r| (r - **t).abs() <= 1_000)
        })
        .count();
    Outcome {
        outage: secs,
        captured: in_outage.len(),
        recorded,
        to_live,
        backfill_secs: backfill_secs(&stderr),
        spool_mb,
        streaming,
        spooling,
        backfilling,
    }
}

/// The agent's CPU and disk writes streaming for `secs`, with a spool or
/// without.
async fn steady(secs: u64, spool: bool) -> Stretch {
    let dir = tempfile::tempdir().unwrap();
    let engine = start_engine(config(dir.path())).await;
    let creds = enroll(&engine, "door", "Door").await;
    let mut cmd = std::process::Command::new(agent_binary());
    cmd.args(creds.agent_args())
        .args(["--source", SOURCE, "--fps", "10", "--no-analysis"])
        .env("RUST_LOG", "warn");
    if spool {
        cmd.arg("--spool-dir").arg(dir.path().join("spool"));
    } else {
        cmd.arg("--no-spool");
    }
    let agent = Proc(cmd.spawn().unwrap());
    until_frames(&engine, "door", 20).await;
    let (s, _) = measure(agent.0.id(), secs).await;
    drop(agent);
    engine.shutdown().await;
    s
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let outages: Vec<u64> = std::env::args()
        .skip(1)
        .find(|a| a.chars().all(|c| c.is_ascii_digit() || c == ','))
        .map(|a| a.split(',').filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 60, 600]);
    let built = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "camera-agent"])
        .status()
        .expect("run cargo build");
    assert!(built.success(), "cannot build camera-agent");
    let mut results = Vec::new();
    for secs in &outages {
        eprintln!("outage of {secs} s ...");
        results.push(outage(*secs).await);
    }
    println!("{SOURCE} at 10 fps, through a blackhole of the route");
    println!(
        "{:>7} {:>9} {:>9} {:>6} {:>11} {:>11} {:>9}   agent CPU (% of a core) and disk writes (MB/s)",
        "outage", "captured", "recorded", "lost", "live after", "backfill", "spool"
    );
    println!(
        "{:>77}   {:>17} {:>17} {:>17}",
        "", "streaming", "spooling", "backfilling"
    );
    for r in &results {
        let cell = |s: &Stretch| format!("{:>5.1}% {:>5.2} MB/s", s.cpu * 100.0, s.write_mb_s);
        println!(
            "{:>6}s {:>9} {:>9} {:>6} {:>9.2} s {:>9.1} s {:>6.0} MB   {:>17} {:>17} {:>17}",
            r.outage,
            r.captured,
            r.recorded,
            r.captured - r.recorded,
            r.to_live,
            r.backfill_secs,
            r.spool_mb,
            cell(&r.streaming),
            cell(&r.spooling),
            cell(&r.backfilling),
        );
    }
    let with = steady(30, true).await;
    let without = steady(30, false).await;
    println!();
    println!("30 s of streaming, the same agent:");
    println!("{:<16} {:>14} {:>16}", "", "CPU (% core)", "disk writes");
    for (name, s) in [("without a spool", &without), ("with a spool", &with)] {
        println!(
            "{:<16} {:>13.1}% {:>11.2} MB/s",
            name,
            s.cpu * 100.0,
            s.write_mb_s
        );
    }
    println!(
        "the spool costs {:+.1} points of a core ({:.2}x) while the panel acknowledges every frame",
        (with.cpu - without.cpu) * 100.0,
        with.cpu / without.cpu.max(1e-9)
    );
}
