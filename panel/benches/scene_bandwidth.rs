//! Bandwidth that follows the scene, measured: two real agents stream
//! `../shared/testdata/events/motion_still_walk_still.mp4` (26 s: still,
//! a walk from 8 to 18 s, still) into one engine at the same time, one
//! sending every frame (`--full-rate`), one following the scene (idle
//! rate 1 fps, pre-roll 3 s, post-roll 5 s: the defaults). Each goes
//! through a loopback proxy that counts the bytes on the wire (TLS
//! included). Prints, side by side: bytes sent over the whole clip, frames
//! recorded during the motion and during its pre-roll (the 3 s before the
//! agent saw motion start), against the frames the clip has there.
//!
//! Run: `cargo bench -p panel --bench scene_bandwidth` (builds the agent
//! with file sources first). Target: at least 5x fewer bytes following the
//! scene, with every frame of the motion and the pre-roll recorded.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use support::*;
use tokio::net::{TcpListener, TcpStream};

const FPS: f64 = 10.0;
/// The walk, in clip seconds (truth.json).
const MOTION: (f64, f64) = (8.0, 18.0);
const PREROLL: f64 = 3.0;

/// A loopback proxy to `to`; counts the bytes from agent to panel.
async fn proxy(to: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        while let Ok((agent, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(panel) = TcpStream::connect(to).await else {
                    return;
                };
                let (mut ar, mut aw) = agent.into_split();
                let (mut pr, mut pw) = panel.into_split();
                let up = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let n = match ar.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        counter.fetch_add(n as u64, Ordering::Relaxed);
                        if pw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut pw).await;
                };
                let down = async {
                    let _ = tokio::io::copy(&mut pr, &mut aw).await;
                };
                tokio::join!(up, down);
            });
        }
    });
    (addr, sent)
}

/// What one mode cost and kept.
struct Outcome {
    bytes: u64,
    recorded: usize,
    in_motion: usize,
    in_preroll: usize,
    /// When the agent saw motion start, clip seconds.
    detected: f64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(data) = testdata() else {
        eprintln!("the events clips are needed (../shared/testdata/events)");
        std::process::exit(2);
    };
    // The agent of this build, with file sources, whatever was built before.
    let built = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "-p",
            "camera-agent",
            "--features",
            "file",
        ])
        .status()
        .expect("run cargo build");
    assert!(built.success(), "cannot build camera-agent");
    let clip = data.join("events/motion_still_walk_still.mp4");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let recordings = cfg.recordings_dir.clone();
    let engine = start_engine(cfg).await;
    let source = format!("file:{}", clip.display());
    let modes = [("full", vec!["--full-rate"]), ("scene", vec![])];
    let mut runs = Vec::new();
    for (id, flags) in &modes {
        let mut creds = enroll(&engine, id, "").await;
        let (addr, sent) = proxy(creds.addr).await;
        creds.addr = addr;
        let clock = FrameClock::watch(&engine, id);
        let mut args = vec!["--source", source.as_str(), "--no-loop"];
        args.extend(flags.iter().copied());
        runs.push((*id, start_agent(&creds, &args), sent, clock));
    }
    let mut outcomes = Vec::new();
    for (id, mut agent, sent, clock) in runs {
        let status = tokio::task::spawn_blocking(move || agent.0.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "{id}: {status}");
        let rows = finished_recordings(&engine, id).await;
        let clip_times: Vec<f64> = recorded_times(&recordings, &rows)
            .into_iter()
            .map(|t| clock.clip_secs(t, FPS))
            .collect();
        // The pre-roll reaches back from when the agent saw motion start.
        let detected = engine
            .catalog()
            .find_events(&cctv_engine::catalog::EventFilter {
                camera_id: Some(id.into()),
                kind: Some(cctv_engine::catalog::EventKind::Motion),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .iter()
            .map(|e| clock.clip_secs(e.at_us, FPS))
            .fold(f64::NAN, f64::min);
        let between = |a: f64, b: f64| {
            clip_times
                .iter()
                .filter(|t| **t >= a - 0.05 && **t < b - 0.05)
                .count()
        };
        outcomes.push(Outcome {
            bytes: sent.load(Ordering::Relaxed),
            recorded: clip_times.len(),
            in_motion: between(MOTION.0, MOTION.1),
            in_preroll: between(detected - PREROLL, detected),
            detected,
        });
    }
    engine.shutdown().await;

    let (full, scene) = (&outcomes[0], &outcomes[1]);
    let motion_frames = ((MOTION.1 - MOTION.0) * FPS) as usize;
    let preroll_frames = (PREROLL * FPS) as usize;
    println!("motion_still_walk_still.mp4, 26 s at 10 fps, walk from 8 to 18 s");
    println!("{:<34} {:>14} {:>14}", "", "full rate", "follow scene");
    println!(
        "{:<34} {:>14} {:>14}",
        "bytes sent (whole clip)", full.bytes, scene.bytes
    );
    println!(
        "{:<34} {:>14} {:>14}",
        "frames recorded (whole clip)", full.recorded, scene.recorded
    );
    println!(
        "{:<34} {:>14} {:>14}",
        format!("frames recorded in motion (of {motion_frames})"),
        full.in_motion,
        scene.in_motion
    );
    println!(
        "{:<34} {:>14.1} {:>14.1}",
        "motion seen from (clip s)", full.detected, scene.detected
    );
    println!(
        "{:<34} {:>14} {:>14}",
        format!("frames recorded in pre-roll (of {preroll_frames})"),
        full.in_preroll,
        scene.in_preroll
    );
    let ratio = full.bytes as f64 / scene.bytes.max(1) as f64;
    // The motion and its pre-roll must go at full rate whatever the pacing:
    // no pacing sends fewer frames than that.
    let bound = full.recorded as f64 / (motion_frames + preroll_frames) as f64;
    println!(
        "no pacing can do better than {bound:.1}x fewer frames here: motion and pre-roll are {} of the clip's {} frames",
        motion_frames + preroll_frames,
        full.recorded
    );
    let whole = scene.in_motion >= motion_frames && scene.in_preroll >= preroll_frames;
    println!(
        "following the scene sends {ratio:.1}x fewer bytes (target 5x: {}); motion and pre-roll at full rate: {}",
        if ratio >= 5.0 { "met" } else { "NOT met" },
        if whole { "yes" } else { "NO" }
    );
}
