//! Capacity benchmark: how many cameras one panel holds. Starts a real
//! `panel serve` (recording on) and K simulated agents on loopback pushing
//! pre-encoded JPEG frames, and reports per (K, resolution, fps): frames
//! sent, recorded and lost, capture-to-disk latency p50/p99, the page
//! cache's dirty bytes as the case ends (`/proc/meminfo` Dirty), panel CPU
//! per 1,000 frames, peak RSS, MB/s written. In the same run it measures the
//! floor (the same bytes read from loopback sockets and appended to files by
//! the simplest loop) and prints the panel's CPU per frame as a ratio to it:
//! the process's own (`cpu s/1k`), and with the kernel's share (`+kernel`:
//! the process and every kernel thread, so writeback done by kernel
//! threads for the floor counts as it does for the panel).
//!
//! Run: `cargo bench -p panel --bench capacity` for the standard table, or
//! `cargo bench -p panel --bench capacity -- --sweep` to find the largest K
//! with nothing lost and p99 under 100 ms (768x576@10, 1280x720@15 and
//! 1920x1080@15), or `-- --profile [--case K WxH FPS]` to sample where the
//! panel's CPU goes (needs `perf`). `-- --writeback` runs each case first
//! with the recorder's writeback pacing off (`writeback_step_kb = 0`, the
//! kernel's default writeback alone), then paced, side by side.
//! `-- --rounds N` measures each case's panel and floor in turn N times and
//! prints the median ratio. `-- --together` measures the panel and the
//! floor in the same window instead (their processes' own CPU; with
//! `--rounds N`, N windows and the median; with `--writeback`, the
//! kernel's writeback alone first). `-- --audio` runs each case again
//! with every agent sending its sound (20 ms Opus packets) and prints the
//! cost of sound side by side.
//! With `--together`, `-- --paced-floor` and `-- --async-floor` add the
//! floor making the recorder's disk calls, and the same on a tokio
//! runtime, as more servers in the same window (`capacity/floor.rs`).
//! `-- --config LINE` adds a line to the panel's configuration (e.g.
//! `'writeback_step_kb = 1024'`) for every panel the run starts.
//! `-- --postgres` runs each case again with the catalog on a PostgreSQL
//! server started for the run (as several recording servers share one) and
//! prints both side by side.

mod common;
#[path = "capacity/drive.rs"]
mod drive;
#[path = "capacity/floor.rs"]
mod floor;
#[path = "capacity/machine.rs"]
mod machine;
#[path = "../tests/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;
#[path = "capacity/profile.rs"]
mod profile;
#[path = "capacity/rounds.rs"]
mod rounds;
#[path = "capacity/table.rs"]
mod table;
#[path = "capacity/together.rs"]
mod together;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use cctv_engine::catalog::{Catalog, Location};
use common::{Kill, frames, free_port, peak_rss_mb, wait_listening};
use drive::{AUDIO_WIRE_BYTES, Driven, Target, drive};
use floor::{floor_server, run_floor};
use table::{header, row};

const WARMUP: Duration = Duration::from_secs(3);
const MEASURE: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug)]
struct Case {
    /// Agents connect over TLS (else plain TCP).
    tls: bool,
    k: usize,
    w: u32,
    h: u32,
    fps: u32,
    /// Each agent also sends its sound: a 20 ms Opus packet of 60 bytes
    /// (24 kbit/s) every 20 ms.
    audio: bool,
}

impl Case {
    /// K agents over plain TCP, without sound.
    fn plain(k: usize, w: u32, h: u32, fps: u32) -> Self {
        Self {
            tls: false,
            k,
            w,
            h,
            fps,
            audio: false,
        }
    }
}

/// The catalog of the panel under test, when not its own SQLite file.
static DATABASE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

fn camera_ids(k: usize) -> Vec<String> {
    (0..k).map(|i| format!("cam{i:03}")).collect()
}

struct Outcome {
    sent: u64,
    recorded: u64,
    p50: Option<f64>,
    p99: Option<f64>,
    cpu_per_1000: f64,
    /// With the kernel threads' share (writeback, the journal).
    all_per_1000: f64,
    cores: f64,
    rss_mb: f64,
    mb_s: f64,
    /// The page cache's dirty bytes (`/proc/meminfo` Dirty) as the case ends.
    dirty_mb: f64,
}

/// `-- --writeback`: the recorder's writeback pacing is turned off for
/// the run that sets this (the kernel's default writeback alone).
static UNPACED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `-- --config LINE`: a line added to the panel's configuration (e.g.
/// `"writeback_step_kb = 1024"`), to measure another setting.
static EXTRA_CONFIG: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// `panel serve` on `cfg` (its figures to `stats`, if given), once it
/// listens on `port`.
fn serve(cfg: &Path, port: u16, stats: Option<&Path>) -> (Kill, std::net::SocketAddr) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_panel"));
    cmd.args(["serve", "--config"]).arg(cfg);
    if let Some(stats) = stats {
        cmd.arg("--stats").arg(stats);
    }
    let panel = Kill(
        cmd.env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start panel"),
    );
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(addr);
    (panel, addr)
}

fn run_panel(case: Case, frames: &[Bytes]) -> Outcome {
    let p = start_panel(case);
    let d = drive(p.target(), case, frames);
    finish_panel(p, d)
}

/// A `panel serve` started for a case, recording into its own directory.
struct Started {
    dir: tempfile::TempDir,
    panel: Kill,
    addr: std::net::SocketAddr,
    stats: std::path::PathBuf,
    database: Option<String>,
}

impl Started {
    /// Where the agents stream to.
    fn target(&self) -> Target {
        Target {
            addr: self.addr,
            pid: self.panel.0.id(),
            floor: false,
        }
    }
}

fn start_panel(case: Case) -> Started {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let stats = dir.path().join("stats.json");
    let database = DATABASE.lock().unwrap().clone();
    let (cfg, pin) = common::prepare_panel(
        dir.path(),
        port,
        &camera_ids(case.k),
        case.tls,
        database.as_deref(),
    );
    *drive::PIN.lock().unwrap() = pin;
    let unpaced = UNPACED
        .load(std::sync::atomic::Ordering::Relaxed)
        .then_some("writeback_step_kb = 0");
    let extra = EXTRA_CONFIG.lock().unwrap().clone();
    let mut c = std::fs::read_to_string(&cfg).unwrap();
    for line in unpaced.into_iter().chain(extra.as_deref()) {
        c.push_str(line);
        c.push('\n');
    }
    std::fs::write(&cfg, c).unwrap();
    let (panel, addr) = serve(&cfg, port, Some(&stats));
    Started {
        dir,
        panel,
        addr,
        stats,
        database,
    }
}

/// Stops the panel, and reads what it recorded and said of itself.
fn finish_panel(p: Started, d: Driven) -> Outcome {
    let Driven { sent, cpu, .. } = d;
    let Started {
        dir,
        mut panel,
        stats,
        database,
        ..
    } = p;
    let pid = panel.0.id();
    let dirty_mb = cpu.dirty_mb;
    std::thread::sleep(Duration::from_millis(1500));
    let rss_mb = peak_rss_mb(pid);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = panel.0.wait();
    let s: serde_json::Value = std::fs::read(&stats)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (recorded, bytes) = rt.block_on(async {
        let at = match &database {
            Some(url) => Location::parse(url),
            None => Location::Sqlite(dir.path().join("data/panel.db")),
        };
        let c = Catalog::connect(&at).await.unwrap();
        let rows = c.recordings(&Default::default()).await.unwrap();
        c.close().await;
        (
            rows.iter().map(|r| r.frames as u64).sum::<u64>(),
            rows.iter().map(|r| r.bytes as u64).sum::<u64>(),
        )
    });
    Outcome {
        sent,
        recorded,
        p50: s["latency_p50_ms"].as_f64(),
        p99: s["latency_p99_ms"].as_f64(),
        cpu_per_1000: d.per_1000(cpu.process),
        all_per_1000: d.per_1000(cpu.with_kernel),
        cores: cpu.process / MEASURE.as_secs_f64(),
        rss_mb,
        mb_s: bytes as f64 / 1e6 / (WARMUP + MEASURE).as_secs_f64(),
        dirty_mb,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--floor-server") {
        let which = floor::Loop::parse(&args[4..]);
        floor_server(args[2].parse().unwrap(), Path::new(&args[3]), which);
        return;
    }
    let sweep = args.iter().any(|a| a == "--sweep");
    if let Some(i) = args.iter().position(|a| a == "--config") {
        let line = args
            .get(i + 1)
            .expect("--config takes a line: -- --config 'writeback_step_kb = 1024'");
        *EXTRA_CONFIG.lock().unwrap() = Some(line.clone());
    }
    // `-- --case K WxH FPS`: one case only.
    let one = args.iter().position(|a| a == "--case").map(|i| {
        let k = args[i + 1].parse().expect("K");
        let (w, h) = args[i + 2].split_once('x').expect("WxH");
        Case::plain(
            k,
            w.parse().expect("W"),
            h.parse().expect("H"),
            args[i + 3].parse().expect("FPS"),
        )
    });
    // `-- --profile [--case K WxH FPS]`: where the panel's CPU goes.
    if args.iter().any(|a| a == "--profile") {
        let c = one.unwrap_or(Case::plain(64, 768, 576, 10));
        let tmp = tempfile::tempdir().unwrap();
        let (f, _) = frames(tmp.path(), c.w, c.h, 30);
        profile::profile(c, &f);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sets: Vec<(u32, u32)> = vec![(768, 576), (1280, 720), (1920, 1080)];
    let frame_sets: std::collections::HashMap<(u32, u32), Vec<Bytes>> = sets
        .iter()
        .map(|&(w, h)| ((w, h), frames(tmp.path(), w, h, 30).0))
        .collect();
    for (&(w, h), f) in &frame_sets {
        eprintln!(
            "{w}x{h}: {} frames, {:.0} KiB each",
            f.len(),
            f.iter().map(|b| b.len()).sum::<usize>() as f64 / f.len() as f64 / 1024.0
        );
    }
    println!();
    println!(
        "Capacity: panel serve with recording on, K loopback agents, {} s measured after {} s warm-up, {} cores",
        MEASURE.as_secs(),
        WARMUP.as_secs(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    // `-- --together`: the panel and the floor in the same window.
    let together = args.iter().any(|a| a == "--together");
    // With `--together`, `-- --paced-floor`: the floor making the
    // recorder's disk calls too, as another server in the same window;
    // `-- --async-floor`: those on a tokio runtime too.
    let floors = together::Floors {
        paced: args.iter().any(|a| a == "--paced-floor"),
        async_: args.iter().any(|a| a == "--async-floor"),
    };
    if !together {
        header();
    }
    let cases: Vec<Case> = if let Some(c) = one {
        vec![c]
    } else if sweep {
        Vec::new()
    } else {
        vec![
            Case::plain(16, 768, 576, 10),
            Case::plain(64, 768, 576, 10),
            Case::plain(16, 1280, 720, 15),
            Case::plain(8, 1920, 1080, 15),
        ]
    };
    // `-- --tls`: each case over plain TCP and over TLS, side by side.
    let tls = args.iter().any(|a| a == "--tls");
    // `-- --audio`: each case without and with sound, side by side.
    let audio = args.iter().any(|a| a == "--audio");
    // `-- --postgres`: each case on SQLite and on PostgreSQL, side by side.
    let pg = args
        .iter()
        .any(|a| a == "--postgres")
        .then(postgres::Postgres::start_durable);
    // `-- --writeback`: each case with the kernel's writeback alone, then
    // paced by the recorder (the default), side by side.
    let writeback = args.iter().any(|a| a == "--writeback");
    // `-- --rounds N`: each case's panel and floor N times in turn.
    let n_rounds = args.iter().position(|a| a == "--rounds").map(|i| {
        args.get(i + 1)
            .and_then(|n| n.parse::<usize>().ok())
            .expect("--rounds takes a count: -- --rounds 5")
    });
    let mut databases = 0;
    for case in cases {
        let f = &frame_sets[&(case.w, case.h)];
        if together {
            let n = n_rounds.unwrap_or(1);
            if writeback {
                UNPACED.store(true, std::sync::atomic::Ordering::Relaxed);
                together::together(case, f, n, "the kernel's writeback alone", floors);
                UNPACED.store(false, std::sync::atomic::Ordering::Relaxed);
            }
            together::together(case, f, n, "paced writeback", floors);
            continue;
        }
        if let Some(n) = n_rounds {
            rounds::rounds(case, f, n);
            continue;
        }
        let unpaced = writeback.then(|| {
            UNPACED.store(true, std::sync::atomic::Ordering::Relaxed);
            let o = run_panel(case, f);
            UNPACED.store(false, std::sync::atomic::Ordering::Relaxed);
            o
        });
        let o = run_panel(case, f);
        let floor = run_floor(case, f);
        if let Some(u) = &unpaced {
            table::row_labelled(case, u, floor, " kernel");
            row(case, &o, floor);
            table::compare("paced writeback", &o, u, "the kernel's alone");
        } else {
            row(case, &o, floor);
        }
        if audio {
            let a = run_panel(
                Case {
                    audio: true,
                    ..case
                },
                f,
            );
            row(
                Case {
                    audio: true,
                    ..case
                },
                &a,
                floor,
            );
            let jpeg = f.iter().map(|b| b.len()).sum::<usize>() as f64 / f.len() as f64;
            let video_kb_s = (jpeg + 28.0) * f64::from(case.fps) / 1000.0;
            let sound_kb_s = AUDIO_WIRE_BYTES as f64 * 50.0 / 1000.0;
            println!(
                "   Sound: {:.3} cpu s per 1000 frames against {:.3} without ({:.2}x), {:.3} cores against {:.3}; \
                 {:.1} kB/s a camera on the wire against {:.1} ({:+.1} %); {:.1} MB/s written against {:.1}; {:.0} MB RSS against {:.0}",
                a.cpu_per_1000,
                o.cpu_per_1000,
                a.cpu_per_1000 / o.cpu_per_1000.max(1e-9),
                a.cores,
                o.cores,
                video_kb_s + sound_kb_s,
                video_kb_s,
                100.0 * sound_kb_s / video_kb_s,
                a.mb_s,
                o.mb_s,
                a.rss_mb,
                o.rss_mb
            );
        }
        if let Some(pg) = &pg {
            databases += 1;
            *DATABASE.lock().unwrap() = Some(pg.new_database(&format!("bench{databases}")));
            let p = run_panel(case, f);
            *DATABASE.lock().unwrap() = None;
            table::row_labelled(case, &p, floor, " pg");
            table::compare("PostgreSQL catalog", &p, &o, "SQLite");
        }
        if tls {
            let t = run_panel(Case { tls: true, ..case }, f);
            row(Case { tls: true, ..case }, &t, floor);
            println!(
                "   TLS: {:.3} cpu s per 1000 frames against {:.3} over plain TCP ({:.2}x), {:.0} MB RSS against {:.0}",
                t.cpu_per_1000,
                o.cpu_per_1000,
                t.cpu_per_1000 / o.cpu_per_1000.max(1e-9),
                t.rss_mb,
                o.rss_mb
            );
        }
    }
    if sweep {
        let sd = [32, 64, 128, 256, 384, 512, 640, 768];
        let hd = [32, 64, 128, 192, 256, 320];
        let full_hd = [16, 32, 64, 96, 128, 160, 192];
        for (w, h, fps, ks) in [
            (768, 576, 10, &sd[..]),
            (1280, 720, 15, &hd[..]),
            (1920, 1080, 15, &full_hd[..]),
        ] {
            let f = &frame_sets[&(w, h)];
            let mut best = None;
            for &k in ks {
                let case = Case::plain(k, w, h, fps);
                let o = run_panel(case, f);
                let floor = run_floor(case, f);
                row(case, &o, floor);
                let ok = o.sent == o.recorded && o.p99.is_some_and(|p| p < 100.0);
                if !ok {
                    break;
                }
                best = Some((k, o.rss_mb / k as f64));
            }
            match best {
                Some((k, per)) => println!(
                    "largest K at {w}x{h}@{fps} with nothing lost and p99 < 100 ms: {k} ({per:.2} MB RSS per camera)"
                ),
                None => println!("{w}x{h}@{fps}: not even 32 cameras held"),
            }
        }
    }
}
