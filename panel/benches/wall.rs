//! Wall benchmark: 16 cameras of 1280x720 JPEG at 15 fps into a real panel
//! process, with the window open (under Xvfb) and, for comparison, headless.
//! The window runs twice, side by side: the cameras sending each frame with
//! its 320 px preview (as agents do for a panel that takes it), and the
//! frames alone (older agents, or `preview_width = 0`). Prints the panel's
//! CPU and peak memory for each, the window's CPU with no camera sending
//! (what a quiet wall costs), and the cost of one decode: full size, at
//! tile size, and of a preview.
//!
//! Run: `cargo bench -p panel --bench wall` (needs Xvfb and ffmpeg; uses
//! ../shared/testdata/video/vtest.avi for realistic frames when present).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cctv_window::decode::decode_to_width;
use cctv_window::wall::tile_width;
use common::{Kill, cpu_secs, frames, free_port, peak_rss_mb};
use futures::SinkExt;

const CAMERAS: usize = 16;
const FPS: u64 = 15;
const WARMUP: Duration = Duration::from_secs(6);
const MEASURE: Duration = Duration::from_secs(20);

/// Milliseconds per decode of `frames` at `width` (0: full size).
fn decode_cost(frames: &[Bytes], width: u32) -> f64 {
    let mut dec = turbojpeg::Decompressor::new().unwrap();
    let rounds = 200;
    let start = Instant::now();
    for i in 0..rounds {
        let img = decode_to_width(&mut dec, &frames[i % frames.len()], width).unwrap();
        std::hint::black_box(img.pixels.len());
    }
    start.elapsed().as_secs_f64() * 1000.0 / rounds as f64
}

/// A frame and, if the camera sends one, its preview.
type Sent = (Bytes, Option<Bytes>);

/// The 320 px preview of a 1280x720 frame (a quarter-scale decode,
/// encoded at the agent's preview quality).
fn preview_of(jpeg: &[u8]) -> Bytes {
    let mut dec = turbojpeg::Decompressor::new().unwrap();
    let img = decode_to_width(&mut dec, jpeg, 320).unwrap();
    let mut enc = turbojpeg::Compressor::new().unwrap();
    enc.set_quality(75).unwrap();
    enc.set_subsamp(turbojpeg::Subsamp::Sub2x2).unwrap();
    let image = turbojpeg::Image {
        pixels: img.pixels.as_slice(),
        width: img.width as usize,
        pitch: img.width as usize * 4,
        height: img.height as usize,
        format: turbojpeg::PixelFormat::RGBA,
    };
    Bytes::from(enc.compress_to_vec(image).unwrap())
}

async fn camera(addr: std::net::SocketAddr, i: usize, frames: Vec<Sent>, stop: Instant) -> u64 {
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        return 0;
    };
    let hello = cctv_protocol::Hello {
        camera_id: format!("cam{i:02}"),
        name: format!("Camera {i}"),
        agent_version: "bench".into(),
        width: 1280,
        height: 720,
        fps_milli: FPS as u32 * 1000,
        credentials: Bytes::new(),
    };
    let Some(mut conn) = common::handshake(stream, hello).await else {
        return 0;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / FPS));
    let mut sent = 0;
    while Instant::now() < stop {
        tick.tick().await;
        let (jpeg, preview) = frames[(sent as usize + i * 3) % frames.len()].clone();
        let f = cctv_protocol::Message::Frame(cctv_protocol::Frame {
            seq: sent,
            capture_us: cctv_protocol::now_us(),
            jpeg,
            analysis: None,
            preview,
        });
        if conn.send(f).await.is_err() {
            break;
        }
        sent += 1;
    }
    sent
}

struct Run {
    cores: f64,
    rss_mb: f64,
    frames: u64,
}

fn run_panel(gui: bool, frames: &[Sent], display: Option<&str>, cameras: usize) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_panel"));
    if !gui {
        cmd.arg("serve");
    }
    let ids: Vec<String> = (0..CAMERAS).map(|i| format!("cam{i:02}")).collect();
    let (cfg, _) = common::prepare_panel(dir.path(), port, &ids, false, None);
    cmd.arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match display {
        Some(d) => cmd.env("DISPLAY", d),
        None => cmd.env_remove("DISPLAY"),
    };
    let panel = Kill(cmd.spawn().expect("start panel"));
    let pid = panel.0.id();
    std::thread::sleep(Duration::from_secs(2));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stop = Instant::now() + WARMUP + MEASURE;
    let tasks: Vec<_> = (0..cameras)
        .map(|i| rt.spawn(camera(addr, i, frames.to_vec(), stop)))
        .collect();
    std::thread::sleep(WARMUP);
    let (c0, t0) = (cpu_secs(pid), Instant::now());
    std::thread::sleep(MEASURE);
    let (c1, t1) = (cpu_secs(pid), Instant::now());
    let rss_mb = peak_rss_mb(pid);
    let sent: u64 = rt.block_on(async {
        let mut n = 0;
        for t in tasks {
            n += t.await.unwrap_or(0);
        }
        n
    });
    Run {
        cores: (c1 - c0) / (t1 - t0).as_secs_f64(),
        rss_mb,
        frames: sent,
    }
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let (frames, source) = frames(tmp.path(), 1280, 720, 45);
    let avg_kb =
        frames.iter().map(|f| f.len()).sum::<usize>() as f64 / frames.len() as f64 / 1024.0;
    let tile = tile_width(iced::Size::new(1280.0, 800.0), CAMERAS);
    let full = decode_cost(&frames, 0);
    let scaled = decode_cost(&frames, tile);
    let previews: Vec<Bytes> = frames.iter().map(|f| preview_of(f)).collect();
    let preview_decode = decode_cost(&previews, tile);
    let preview_kb =
        previews.iter().map(|f| f.len()).sum::<usize>() as f64 / previews.len() as f64 / 1024.0;
    let with_previews: Vec<Sent> = frames
        .iter()
        .cloned()
        .zip(previews.iter().cloned().map(Some))
        .collect();
    let alone: Vec<Sent> = frames.iter().cloned().map(|f| (f, None)).collect();

    // A display of our own for the window.
    let display = ":87";
    let xvfb = Command::new("Xvfb")
        .args([display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Kill)
        .ok();
    std::thread::sleep(Duration::from_secs(1));
    let gui = xvfb
        .as_ref()
        .map(|_| run_panel(true, &with_previews, Some(display), CAMERAS));
    let gui_alone = xvfb
        .as_ref()
        .map(|_| run_panel(true, &alone, Some(display), CAMERAS));
    let quiet = xvfb
        .as_ref()
        .map(|_| run_panel(true, &alone, Some(display), 0));
    let headless = run_panel(false, &with_previews, None, CAMERAS);
    drop(xvfb);

    println!();
    println!(
        "Wall benchmark: {CAMERAS} cameras x 1280x720 @ {FPS} fps, {source}, {avg_kb:.0} KiB/frame, recording on"
    );
    println!(
        "measured over {} s after {} s warm-up, on {} cores",
        MEASURE.as_secs(),
        WARMUP.as_secs(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!();
    println!(
        "{:<34} {:>14} {:>14} {:>14}",
        "decode of one 1280x720 frame",
        "full size",
        format!("tile ({tile} px)"),
        format!("preview ({preview_kb:.0} KiB)")
    );
    println!(
        "{:<34} {:>11.2} ms {:>11.2} ms {:>11.2} ms   full / preview {:.1}x",
        "",
        full,
        scaled,
        preview_decode,
        full / preview_decode
    );
    println!();
    println!(
        "{:<34} {:>14} {:>14} {:>14}",
        "panel process", "CPU (cores)", "peak RSS", "frames sent"
    );
    if let (Some(g), Some(a)) = (&gui, &gui_alone) {
        println!(
            "{:<34} {:>14.2} {:>11.0} MB {:>14}",
            "window open, frames with previews", g.cores, g.rss_mb, g.frames
        );
        println!(
            "{:<34} {:>14.2} {:>11.0} MB {:>14}   previews: {:.2}x the CPU",
            "window open, frames alone",
            a.cores,
            a.rss_mb,
            a.frames,
            g.cores / a.cores
        );
    } else {
        println!("{:<34} {:>14}", "window open", "Xvfb not found: skipped");
    }
    if let Some(q) = &quiet {
        println!(
            "{:<34} {:>14.3} {:>11.0} MB {:>14}",
            "window open, no camera sending", q.cores, q.rss_mb, q.frames
        );
    }
    println!(
        "{:<34} {:>14.2} {:>11.0} MB {:>14}",
        "headless (panel serve)", headless.cores, headless.rss_mb, headless.frames
    );
    if let Some(g) = &gui {
        println!();
        println!(
            "target: the window on a 16-camera wall uses at most half a core -> {:.2} cores: {}",
            g.cores,
            if g.cores <= 0.5 { "met" } else { "NOT met" }
        );
    }
}
