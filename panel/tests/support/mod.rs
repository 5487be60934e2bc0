//! Helpers for the panel's integration tests: real agent processes, real
//! panel processes, ffprobe, and waiting for a condition.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use panel::config::PanelConfig;

/// A child process killed when the test ends, however it ends.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.0.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{sig} failed");
    }
}

fn target_dir() -> PathBuf {
    // .../target/debug/deps/<test binary>
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// The camera-agent binary, built first if this test run did not build it.
pub fn agent_binary() -> PathBuf {
    let path = target_dir().join("camera-agent");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "camera-agent"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cannot build camera-agent");
    }
    path
}

pub fn start_agent(panel: std::net::SocketAddr, id: &str, args: &[&str]) -> Proc {
    let child = Command::new(agent_binary())
        .args([
            "--panel",
            &panel.to_string(),
            "--camera-id",
            id,
            "--max-backoff",
            "1",
        ])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start camera-agent");
    Proc(child)
}

pub fn testdata() -> Option<PathBuf> {
    let dir = std::env::var_os("CCTV_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"));
    dir.is_dir().then_some(dir)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// A config on temporary directories, listening on a free loopback port.
pub fn config(dir: &Path) -> PanelConfig {
    PanelConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        recordings_dir: dir.join("recordings"),
        heartbeat_ms: 500,
        stall_after_ms: 2000,
        handshake_timeout_ms: 1000,
        min_free_bytes: 0,
        ..PanelConfig::default()
    }
}

/// Polls `f` until it returns `Some`, or panics after `limit`.
pub async fn wait_for<T>(limit: Duration, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What ffprobe says about a recording.
#[derive(Debug)]
pub struct Probe {
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub frames: u64,
    pub duration: f64,
    /// Presentation times of every packet, in seconds.
    pub pts: Vec<f64>,
}

pub fn ffprobe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames:format=duration:packet=pts_time",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe is installed (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe cannot read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let stream = &v["streams"][0];
    let num = |x: &serde_json::Value| -> f64 {
        x.as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| x.as_f64())
            .unwrap_or(f64::NAN)
    };
    Probe {
        codec: stream["codec_name"].as_str().unwrap_or("").to_string(),
        width: stream["width"].as_u64().unwrap_or(0) as u32,
        height: stream["height"].as_u64().unwrap_or(0) as u32,
        frames: num(&stream["nb_read_frames"]) as u64,
        duration: num(&v["format"]["duration"]),
        pts: v["packets"]
            .as_array()
            .map(|p| p.iter().map(|x| num(&x["pts_time"])).collect())
            .unwrap_or_default(),
    }
}

/// A camera speaking the protocol directly from the test: real TCP, real
/// JPEG frames, and it can be dropped at any moment.
pub struct FakeCamera {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeCamera {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A real JPEG of a gradient, `w`x`h`.
pub fn test_jpeg(w: usize, h: usize, shade: u8) -> bytes::Bytes {
    let pixels: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            let (x, y) = (i % w, i / w);
            [(x * 255 / w) as u8, (y * 255 / h) as u8, shade]
        })
        .collect();
    let jpeg = turbojpeg::compress(
        turbojpeg::Image {
            pixels: pixels.as_slice(),
            width: w,
            pitch: w * 3,
            height: h,
            format: turbojpeg::PixelFormat::RGB,
        },
        80,
        turbojpeg::Subsamp::Sub2x2,
    )
    .expect("encode a test JPEG");
    bytes::Bytes::copy_from_slice(&jpeg)
}

impl FakeCamera {
    /// Connects, says Hello, and streams at `fps` until dropped.
    pub async fn start(addr: std::net::SocketAddr, id: &str, name: &str, fps: u32) -> Self {
        use futures::{SinkExt, StreamExt};
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut conn = tokio_util::codec::Framed::new(stream, cctv_protocol::Codec::default());
        conn.send(cctv_protocol::Message::Hello(cctv_protocol::Hello {
            camera_id: id.into(),
            name: name.into(),
            agent_version: "fake".into(),
            width: 320,
            height: 240,
            fps_milli: fps * 1000,
            credentials: Default::default(),
        }))
        .await
        .expect("send hello");
        match conn.next().await {
            Some(Ok(cctv_protocol::Message::Welcome(_))) => {}
            other => panic!("not welcomed: {other:?}"),
        }
        let jpeg = test_jpeg(320, 240, (id.len() * 40) as u8);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / u64::from(fps)));
            for seq in 0.. {
                tick.tick().await;
                let frame = cctv_protocol::Message::Frame(cctv_protocol::Frame {
                    seq,
                    capture_us: cctv_protocol::now_us(),
                    jpeg: jpeg.clone(),
                });
                if conn.send(frame).await.is_err() {
                    return;
                }
            }
        });
        Self { task }
    }
}
