//! Helpers for the panel's integration tests: real agent processes, real
//! panel processes, ffprobe, and waiting for a condition.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cctv_engine::config::PanelConfig;

pub mod enrol;
pub mod forward;
pub mod postgres;
pub mod proxy;
pub mod schema;

pub use enrol::*;
pub mod sound;

/// A child process killed when the test ends, however it ends.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Reads the child's piped standard error as it comes (a full pipe
    /// would stop a child that logs), for [`Proc::stop`] to show.
    pub fn read_log(&mut self) -> std::thread::JoinHandle<String> {
        let mut stderr = self.0.stderr.take().expect("stderr piped");
        std::thread::spawn(move || {
            let mut log = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut log);
            log
        })
    }

    /// SIGTERM, then the exit within `limit`; fails the test with `log`
    /// (from [`Proc::read_log`]) if the child does not exit. Its log.
    pub fn stop(&mut self, limit: Duration, log: std::thread::JoinHandle<String>) -> String {
        self.signal("TERM");
        let until = Instant::now() + limit;
        while self.0.try_wait().expect("wait for the child").is_none() {
            if Instant::now() > until {
                let _ = self.0.kill();
                let log = log.join().unwrap_or_default();
                panic!("the process did not exit within {limit:?} of SIGTERM; its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        log.join().unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.0.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{sig} failed");
    }
}

pub fn target_dir() -> PathBuf {
    // .../target/debug/deps/<test binary>
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// The camera-agent binary, built first (with file sources, as
/// `scripts/test.sh` builds it) if this test run did not build it.
pub fn agent_binary() -> PathBuf {
    let path = target_dir().join("camera-agent");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "camera-agent", "--features", "file"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cannot build camera-agent");
    }
    path
}

/// A `camera-agent` command with a spool of its own: tests never share a
/// spool (nor leave one where an installed agent keeps its own). Spools of
/// test runs that ended are removed here.
pub fn agent_command() -> Command {
    let mut c = Command::new(agent_binary());
    c.arg("--spool-dir").arg(fresh_spool_dir());
    c
}

/// A spool directory no other agent uses.
pub fn fresh_spool_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir().join("cctv-test-spools");
    if let Ok(dirs) = std::fs::read_dir(&base) {
        for d in dirs.flatten() {
            let name = d.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().unwrap_or("");
            if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(d.path());
            }
        }
    }
    base.join(format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Runs a `panel` command to its end; its output.
pub fn panel_cmd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_panel"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run panel")
}

/// A real agent for `creds`, with `args`; a spool of its own unless
/// `args` names one (`--spool-dir`).
pub fn start_agent(creds: &Creds, args: &[&str]) -> Proc {
    let mut cmd = if args.contains(&"--spool-dir") {
        Command::new(agent_binary())
    } else {
        agent_command()
    };
    let child = cmd
        .args(creds.agent_args())
        .args(["--max-backoff", "1"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start camera-agent");
    Proc(child)
}

/// `../shared/testdata` (or `$CCTV_TESTDATA`), when it is there. A test that
/// needs it says so and passes without it on a developer's machine; under
/// `CI=true` a missing data set fails the test instead.
pub fn testdata() -> Option<PathBuf> {
    let dir = std::env::var_os("CCTV_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "test data not found at {} (set CCTV_TESTDATA): under CI=true it must be there",
        dir.display()
    );
    eprintln!(
        "SKIPPED: test data not found at {} (set CCTV_TESTDATA)",
        dir.display()
    );
    None
}

/// A real `panel serve` on `port` with state under `dir` (short heartbeat
/// and handshake times), logging at `rust_log` to a pipe the test may read
/// (`Proc.0.stderr`).
pub fn panel_serve(dir: &Path, port: u16, rust_log: &str) -> Proc {
    panel_serve_with(dir, port, rust_log, "")
}

/// [`panel_serve`], with `extra` lines of config.
pub fn panel_serve_with(dir: &Path, port: u16, rust_log: &str, extra: &str) -> Proc {
    let cfg = dir.join("panel.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{0}/data\"\nrecordings_dir = \"{0}/recordings\"\n\
             heartbeat_ms = 500\nhandshake_timeout_ms = 1000\nmin_free_bytes = 0\n{extra}\n",
            dir.display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_panel"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", rust_log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start panel");
    Proc(child)
}

/// The log lines of every in-process engine of this test binary.
#[derive(Clone, Default)]
pub struct Log(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    /// Starts capturing (once per test binary) and returns the capture.
    pub fn global() -> &'static Log {
        static LOG: std::sync::OnceLock<Log> = std::sync::OnceLock::new();
        LOG.get_or_init(|| {
            let log = Log::default();
            let writer = log.clone();
            tracing::subscriber::set_global_default(
                tracing_subscriber::fmt()
                    .with_ansi(false)
                    .with_writer(move || writer.clone())
                    .with_max_level(tracing::Level::INFO)
                    .finish(),
            )
            .unwrap();
            log
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// The engine as `panel` starts it: with the stitcher for panoramas.
pub async fn start_engine(cfg: PanelConfig) -> cctv_engine::Engine {
    let stitcher = std::sync::Arc::new(cctv_panorama::Stitcher {
        worker: PathBuf::from(env!("CARGO_BIN_EXE_panel")),
    });
    cctv_engine::Engine::start_with_panoramas(cfg, stitcher)
        .await
        .unwrap()
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

/// A connection to the panel as an agent makes it: TLS with the pinned
/// certificate (or plain TCP), then the challenge answered.
pub type AgentConn = tokio_util::codec::Framed<Box<dyn AgentIo>, cctv_protocol::Codec>;
pub trait AgentIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> AgentIo for T {}

/// Opens the transport only (TLS when the panel has a fingerprint).
pub async fn open_transport(creds: &Creds) -> std::io::Result<AgentConn> {
    let stream = tokio::net::TcpStream::connect(creds.addr).await?;
    let io: Box<dyn AgentIo> = match creds.fingerprint {
        Some(f) => {
            let connector = tokio_rustls::TlsConnector::from(cctv_protocol::tls::client_config(
                cctv_protocol::tls::Pin::Fixed(f),
            ));
            Box::new(
                connector
                    .connect(cctv_protocol::tls::panel_server_name(), stream)
                    .await?,
            )
        }
        None => Box::new(stream),
    };
    Ok(tokio_util::codec::Framed::new(
        io,
        cctv_protocol::Codec::default(),
    ))
}

/// Says Hello, answers the challenge with `secret`, and returns the
/// panel's answer (`Welcome` or `Reject`) with the connection.
pub async fn handshake(
    creds: &Creds,
    secret: &cctv_protocol::auth::Secret,
) -> (AgentConn, cctv_protocol::Message) {
    let hello = cctv_protocol::Hello {
        camera_id: creds.id.clone(),
        name: creds.id.clone(),
        agent_version: "fake".into(),
        width: 320,
        height: 240,
        fps_milli: 10_000,
        credentials: Default::default(),
    };
    handshake_with(creds, secret, hello).await
}

/// [`handshake`] with a `Hello` of the test's own.
pub async fn handshake_with(
    creds: &Creds,
    secret: &cctv_protocol::auth::Secret,
    hello: cctv_protocol::Hello,
) -> (AgentConn, cctv_protocol::Message) {
    use futures::{SinkExt, StreamExt};
    let mut conn = open_transport(creds).await.expect("connect");
    conn.send(cctv_protocol::Message::Hello(hello.clone()))
        .await
        .expect("send hello");
    let challenge = match conn.next().await {
        Some(Ok(cctv_protocol::Message::Challenge(c))) => c,
        Some(Ok(other)) => return (conn, other),
        other => panic!("no challenge: {other:?}"),
    };
    let proven = cctv_protocol::auth::prove(secret, &challenge, hello);
    conn.send(cctv_protocol::Message::Hello(proven))
        .await
        .expect("send proof");
    let answer = conn.next().await.expect("an answer").expect("a message");
    (conn, answer)
}

impl FakeCamera {
    /// Connects as `creds`, and streams at `fps` until dropped.
    pub async fn start(creds: &Creds, fps: u32) -> Self {
        use futures::SinkExt;
        let (mut conn, answer) = handshake(creds, &creds.secret).await;
        assert!(
            matches!(answer, cctv_protocol::Message::Welcome(_)),
            "not welcomed: {answer:?}"
        );
        let jpeg = test_jpeg(320, 240, (creds.id.len() * 40) as u8);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / u64::from(fps)));
            for seq in 0.. {
                tick.tick().await;
                let frame = cctv_protocol::Message::Frame(cctv_protocol::Frame {
                    seq,
                    capture_us: cctv_protocol::now_us(),
                    jpeg: jpeg.clone(),
                    analysis: None,
                    preview: None,
                });
                if conn.send(frame).await.is_err() {
                    return;
                }
            }
        });
        Self { task }
    }
}

/// What the panel saw of each frame of a camera: (seq, capture time).
/// The file source plays every frame, so a frame's clip time is seq / fps
/// however slowly a busy machine plays it.
#[derive(Clone, Default)]
pub struct FrameClock(std::sync::Arc<std::sync::Mutex<Vec<(u64, i64)>>>);

impl FrameClock {
    pub fn watch(engine: &cctv_engine::Engine, camera: &str) -> Self {
        let clock = FrameClock::default();
        let mut frames = engine.watch_frames(camera).expect("a known camera");
        let seen = clock.0.clone();
        tokio::spawn(async move {
            while frames.changed().await.is_ok() {
                if let Some(f) = frames.borrow_and_update().clone() {
                    seen.lock().unwrap().push((f.seq, f.capture_us));
                }
            }
        });
        clock
    }

    /// The clip time (seconds) of a capture time, between the frames seen.
    pub fn clip_secs(&self, capture_us: i64, fps: f64) -> f64 {
        let seen = self.0.lock().unwrap();
        let after = seen.partition_point(|(_, t)| *t < capture_us);
        let before = after.checked_sub(1).map(|i| seen[i]);
        let seq = match (before, seen.get(after).copied()) {
            (Some((s0, t0)), Some((s1, t1))) if t1 > t0 => {
                s0 as f64 + (s1 - s0) as f64 * (capture_us - t0) as f64 / (t1 - t0) as f64
            }
            (_, Some((s, _))) | (Some((s, _)), None) => s as f64,
            (None, None) => f64::NAN,
        };
        seq / fps
    }
}

/// A camera's recordings, oldest first, once there are some and every one
/// is complete.
pub async fn finished_recordings(
    engine: &cctv_engine::Engine,
    camera: &str,
) -> Vec<cctv_engine::catalog::RecordingRow> {
    let mut rows = wait_for(
        Duration::from_secs(20),
        "the recordings closed",
        async || {
            let rows = engine
                .catalog()
                .recordings(&cctv_engine::catalog::RecordingFilter {
                    camera_id: Some(camera.into()),
                    ..Default::default()
                })
                .await
                .unwrap();
            let done = rows
                .iter()
                .all(|r| r.status == cctv_engine::catalog::RecordingStatus::Complete);
            (!rows.is_empty() && done).then_some(rows)
        },
    )
    .await;
    rows.reverse();
    rows
}

/// The capture time of every frame in `rows`' files, in file order.
pub fn recorded_times(
    recordings_dir: &Path,
    rows: &[cctv_engine::catalog::RecordingRow],
) -> Vec<i64> {
    rows.iter()
        .flat_map(|r| {
            let scan = cctv_mkv::scan::scan(&recordings_dir.join(&r.path)).unwrap();
            scan.frames
                .iter()
                .map(|f| scan.capture_us(f))
                .collect::<Vec<_>>()
        })
        .collect()
}
