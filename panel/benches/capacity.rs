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
//! prints the median ratio. `-- --audio` runs each case again with every
//! agent sending its sound (20 ms Opus packets) and prints the cost of
//! sound side by side.
//! `-- --postgres` runs each case again with the catalog on a PostgreSQL
//! server started for the run (as several recording servers share one) and
//! prints both side by side.

mod common;
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

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use cctv_engine::catalog::{Catalog, Location};
use common::{Kill, cpu_secs, frames, free_port, peak_rss_mb, wait_listening};
use floor::{floor_server, run_floor};
use machine::{dirty_mb, kernel_threads_between, kernel_threads_secs};
use table::{header, row};
use tokio::io::AsyncWriteExt;

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

/// Bytes of one simulated Opus packet (24 kbit/s, 20 ms).
const OPUS_BYTES: usize = 60;
/// `Audio` on the wire: header, capture time, samples, level, packet.
const AUDIO_WIRE_BYTES: usize = cctv_protocol::HEADER_LEN + 11 + OPUS_BYTES;

/// The catalog of the panel under test, when not its own SQLite file.
static DATABASE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// The panel's certificate, for agents of a TLS case.
static PIN: std::sync::Mutex<Option<cctv_protocol::tls::Fingerprint>> = std::sync::Mutex::new(None);

/// One simulated agent: Hello (and Welcome unless `floor`), then frames at `fps`.
async fn agent(
    addr: std::net::SocketAddr,
    i: usize,
    case: Case,
    frames: std::sync::Arc<Vec<Bytes>>,
    stop: Instant,
    floor: bool,
) -> u64 {
    let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
        return 0;
    };
    let _ = tcp.set_nodelay(true);
    let pin = *PIN.lock().unwrap();
    let mut s: Box<dyn cctv_engine::tls::Io> = match pin.filter(|_| case.tls && !floor) {
        None => Box::new(tcp),
        Some(f) => {
            let connector = tokio_rustls::TlsConnector::from(cctv_protocol::tls::client_config(
                cctv_protocol::tls::Pin::Fixed(f),
            ));
            match connector
                .connect(cctv_protocol::tls::panel_server_name(), tcp)
                .await
            {
                Ok(t) => Box::new(t),
                Err(_) => return 0,
            }
        }
    };
    let hello = cctv_protocol::Hello {
        camera_id: format!("cam{i:03}"),
        name: format!("Camera {i}"),
        agent_version: if case.audio { "bench +audio" } else { "bench" }.into(),
        width: case.w,
        height: case.h,
        fps_milli: case.fps * 1000,
        credentials: Bytes::new(),
    };
    if floor {
        // The floor server only counts bytes: no handshake.
        let bytes = cctv_protocol::encode_to_bytes(
            &cctv_protocol::Message::Hello(hello),
            &Default::default(),
        )
        .unwrap();
        if s.write_all(&bytes).await.is_err() {
            return 0;
        }
    } else {
        match common::handshake(s, hello).await {
            Some(conn) => s = conn.into_inner(),
            None => return 0,
        }
    }
    // Spread agents over the frame interval, as real cameras would be.
    let period = Duration::from_micros(1_000_000 / u64::from(case.fps));
    tokio::time::sleep(period.mul_f64(i as f64 / case.k as f64)).await;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = 0u64;
    let mut head = BytesMut::with_capacity(28);
    let mut sound = tokio::time::interval(Duration::from_millis(20));
    sound.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < stop {
        if case.audio {
            let packet = tokio::select! {
                _ = tick.tick() => false,
                _ = sound.tick() => true,
            };
            if packet {
                head.clear();
                head.put_slice(&cctv_protocol::MAGIC);
                head.put_u8(cctv_protocol::VERSION);
                head.put_u8(cctv_protocol::MessageType::Audio.code());
                head.put_u16(0);
                head.put_u32(11 + OPUS_BYTES as u32);
                head.put_u64(cctv_protocol::now_us());
                head.put_u16(960);
                head.put_u8(20);
                head.put_slice(&[0xfc; OPUS_BYTES]);
                if s.write_all(&head).await.is_err() {
                    break;
                }
                continue;
            }
        } else {
            tick.tick().await;
        }
        let jpeg = &frames[(sent as usize + i) % frames.len()];
        head.clear();
        head.put_slice(&cctv_protocol::MAGIC);
        head.put_u8(cctv_protocol::VERSION);
        head.put_u8(cctv_protocol::MessageType::Frame.code());
        head.put_u16(0);
        head.put_u32(16 + jpeg.len() as u32);
        head.put_u64(sent);
        head.put_u64(cctv_protocol::now_us());
        if s.write_all(&head).await.is_err() || s.write_all(jpeg).await.is_err() {
            break;
        }
        sent += 1;
    }
    let _ = s.shutdown().await;
    sent
}

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

/// What a measurement cost: the server process's CPU seconds, and with
/// the kernel threads' (those that write its files back).
#[derive(Clone, Copy)]
struct Cpu {
    process: f64,
    with_kernel: f64,
    /// The page cache's dirty MB as the window ended (before `sync`).
    dirty_mb: f64,
}

/// Drives K agents at `addr` for warm-up + measure; returns (sent in total,
/// sent during the measurement, the CPU it cost `pid` during it).
fn drive(
    addr: std::net::SocketAddr,
    case: Case,
    frames: &[Bytes],
    pid: u32,
    floor: bool,
) -> (u64, u64, Cpu) {
    // No measurement starts with another run's dirty pages still waiting
    // to be written back.
    let _ = Command::new("sync").status();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let frames = std::sync::Arc::new(frames.to_vec());
    let stop = Instant::now() + WARMUP + MEASURE;
    let tasks: Vec<_> = (0..case.k)
        .map(|i| rt.spawn(agent(addr, i, case, frames.clone(), stop, floor)))
        .collect();
    std::thread::sleep(WARMUP);
    // The `+kernel` figure counts the writeback of what the window wrote,
    // all of it and no more: what the warm-up wrote is on disk before the
    // window starts, and the window's own is written back (`sync`) before
    // it is read. The server's process figure is the window alone.
    let _ = Command::new("sync").status();
    let t0 = Instant::now();
    let (c0, k0) = (cpu_secs(pid), kernel_threads_secs());
    std::thread::sleep(stop.saturating_duration_since(Instant::now()));
    let (c1, dirty_mb) = (cpu_secs(pid), dirty_mb());
    let window = t0.elapsed();
    let sent: u64 = rt.block_on(async {
        let mut n = 0;
        for t in tasks {
            n += t.await.unwrap_or(0);
        }
        n
    });
    let _ = Command::new("sync").status();
    let k1 = kernel_threads_secs();
    let in_window = (sent as f64 * window.as_secs_f64() / (WARMUP + MEASURE).as_secs_f64()) as u64;
    let cpu = Cpu {
        process: c1 - c0,
        // The server's own part of the writeback: the window's only.
        with_kernel: (c1 - c0) + kernel_threads_between(&k0, &k1),
        dirty_mb,
    };
    (sent, in_window, cpu)
}

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
    *PIN.lock().unwrap() = pin;
    if UNPACED.load(std::sync::atomic::Ordering::Relaxed) {
        let mut c = std::fs::read_to_string(&cfg).unwrap();
        c.push_str("writeback_step_kb = 0\n");
        std::fs::write(&cfg, c).unwrap();
    }
    let (panel, addr) = serve(&cfg, port, Some(&stats));
    let pid = panel.0.id();
    let (sent, in_window, cpu) = drive(addr, case, frames, pid, false);
    let dirty_mb = cpu.dirty_mb;
    std::thread::sleep(Duration::from_millis(1500));
    let rss_mb = peak_rss_mb(pid);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let mut panel = panel;
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
        cpu_per_1000: cpu.process / (in_window as f64 / 1000.0),
        all_per_1000: cpu.with_kernel / (in_window as f64 / 1000.0),
        cores: cpu.process / MEASURE.as_secs_f64(),
        rss_mb,
        mb_s: bytes as f64 / 1e6 / (WARMUP + MEASURE).as_secs_f64(),
        dirty_mb,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--floor-server") {
        floor_server(args[2].parse().unwrap(), Path::new(&args[3]));
        return;
    }
    let sweep = args.iter().any(|a| a == "--sweep");
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
    header();
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
