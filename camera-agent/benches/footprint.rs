//! The agent's footprint on a camera host, builds side by side: resident
//! memory, shared libraries and CPU per frame while streaming the test
//! pattern at 1280x720@15 to a receiver on loopback.
//!
//! `scripts/agent-footprint.sh` builds the binaries and runs this with
//! `NAME=PATH` arguments, the first being the one the others are compared
//! with. Run alone (`cargo bench -p camera-agent --bench footprint`), it
//! measures the release build next to this bench (`target/release/camera-agent`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cctv_protocol::{Codec, Message, Welcome};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::time::timeout;
use tokio_util::codec::Framed;

const SECRET: cctv_protocol::auth::Secret = cctv_protocol::auth::Secret::from_bytes([0x42; 32]);
const WARM_UP: Duration = Duration::from_secs(4);
const MEASURE: Duration = Duration::from_secs(20);
const FPS: u32 = 15;
const SOURCE: &str = "test-pattern:1280x720";

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// user+sys CPU seconds of a process.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// A `/proc/PID/status` value in MB (`VmRSS`, `VmHWM`).
fn status_mb(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Shared libraries the binary loads, as `ldd` lists them.
fn shared_libraries(bin: &str) -> usize {
    let out = Command::new("ldd").arg(bin).output().expect("run ldd");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(".so"))
        .count()
}

struct Footprint {
    name: String,
    rss_mb: f64,
    peak_mb: f64,
    libraries: usize,
    cores: f64,
    fps: f64,
    ms_per_frame: f64,
}

/// Streams from `bin` to a receiver here and measures it.
async fn measure(name: &str, bin: &str) -> Footprint {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let agent = Kill(
        Command::new(bin)
            .args(["--panel", &format!("127.0.0.1:{port}"), "--plain-tcp"])
            .args(["--secret", &SECRET.to_hex(), "--camera-id", "bench"])
            .args(["--source", SOURCE, "--fps", &FPS.to_string()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}")),
    );
    let pid = agent.0.id();
    let (stream, _) = timeout(Duration::from_secs(20), listener.accept())
        .await
        .expect("the agent connects")
        .unwrap();
    let mut conn = Framed::new(stream, Codec::default());
    let Some(Ok(Message::Hello(_))) = conn.next().await else {
        panic!("{name}: no Hello");
    };
    let server = cctv_protocol::auth::ServerHandshake::new([7; 32]);
    conn.send(server.challenge()).await.unwrap();
    let answer = conn.next().await.unwrap().unwrap();
    server
        .check(
            answer,
            |_| cctv_protocol::auth::CameraKey::Known(SECRET),
            &mut Default::default(),
        )
        .expect("the agent proves its secret");
    conn.send(Message::Welcome(Welcome {
        panel_version: "footprint bench".into(),
        heartbeat_ms: 1000,
    }))
    .await
    .unwrap();
    let mut frames = 0u64;
    let mut counting = false;
    let started = Instant::now();
    let (mut cpu0, mut t0) = (0.0, Instant::now());
    loop {
        if !counting && started.elapsed() >= WARM_UP {
            (counting, cpu0, t0) = (true, cpu_secs(pid), Instant::now());
        }
        if counting && t0.elapsed() >= MEASURE {
            break;
        }
        match timeout(Duration::from_secs(5), conn.next()).await {
            Ok(Some(Ok(Message::Frame(_)))) if counting => frames += 1,
            Ok(Some(Ok(_))) => {}
            other => panic!("{name}: the stream ended: {other:?}"),
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid) - cpu0;
    Footprint {
        name: name.to_string(),
        rss_mb: status_mb(pid, "VmRSS:"),
        peak_mb: status_mb(pid, "VmHWM:"),
        libraries: shared_libraries(bin),
        cores: cpu / wall,
        fps: frames as f64 / wall,
        ms_per_frame: cpu * 1000.0 / frames.max(1) as f64,
    }
}

fn main() {
    let mut builds: Vec<(String, String)> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .filter_map(|a| {
            let (n, p) = a.split_once('=')?;
            Some((n.to_string(), p.to_string()))
        })
        .collect();
    if builds.is_empty() {
        let bin = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/release/camera-agent"
        );
        builds.push(("release".into(), bin.into()));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let results: Vec<Footprint> = builds
        .iter()
        .map(|(name, bin)| rt.block_on(measure(name, bin)))
        .collect();
    println!(
        "\ncamera-agent streaming {SOURCE} at {FPS} fps, {MEASURE:?} after {WARM_UP:?} of warm-up"
    );
    println!(
        "{:<10} {:>8} {:>8} {:>6} {:>7} {:>6} {:>9} {:>10}",
        "build", "RSS MB", "peak MB", "libs", "cores", "fps", "ms/frame", "vs first"
    );
    let base = &results[0];
    for r in &results {
        println!(
            "{:<10} {:>8.1} {:>8.1} {:>6} {:>7.3} {:>6.1} {:>9.2} {:>9.2}x",
            r.name,
            r.rss_mb,
            r.peak_mb,
            r.libraries,
            r.cores,
            r.fps,
            r.ms_per_frame,
            r.ms_per_frame / base.ms_per_frame.max(1e-9),
        );
    }
    println!(
        "targets for the lean build: under 20 MB resident, at most 40 libraries, no more CPU per frame than before"
    );
}
