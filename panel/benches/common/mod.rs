//! What the benchmarks share: child processes that die with the bench,
//! CPU and memory of a process from /proc, and test frames (vtest.avi
//! through ffmpeg, or a synthetic scene when the test data is missing).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use bytes::Bytes;

/// A child process killed when dropped.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// user+sys CPU seconds of a process.
pub fn cpu_secs(pid: u32) -> f64 {
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

/// Peak resident memory of a process, MB.
pub fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections at `addr`.
pub fn wait_listening(addr: std::net::SocketAddr) {
    for _ in 0..250 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn testdata() -> PathBuf {
    std::env::var_os("CCTV_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"))
}

/// `n` JPEG frames of `w`x`h`: vtest.avi scaled by ffmpeg, or a synthetic
/// scene. Returns the frames and what they are.
pub fn frames(dir: &Path, w: u32, h: u32, n: u32) -> (Vec<Bytes>, String) {
    let video = testdata().join("video/vtest.avi");
    let out = dir.join(format!("{w}x{h}"));
    let _ = std::fs::create_dir_all(&out);
    let ok = video.exists()
        && Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&video)
            .args([
                "-vf",
                &format!("scale={w}:{h}"),
                "-frames:v",
                &n.to_string(),
                "-q:v",
                "5",
            ])
            .arg(out.join("f%03d.jpg"))
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if ok {
        let mut files: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let f: Vec<Bytes> = files
            .iter()
            .map(|p| Bytes::from(std::fs::read(p).unwrap()))
            .collect();
        return (f, format!("vtest.avi at {w}x{h}"));
    }
    let f = (0..n)
        .map(|k| {
            let (w, h) = (w as usize, h as usize);
            let px: Vec<u8> = (0..w * h)
                .flat_map(|i| {
                    let (x, y) = ((i % w) as u32, (i / w) as u32);
                    let noise = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503) ^ k) >> 26;
                    [
                        (x / 3) as u8 ^ noise as u8,
                        (y / 2) as u8,
                        (x + y + k * 7) as u8,
                    ]
                })
                .collect();
            let j = turbojpeg::compress(
                turbojpeg::Image {
                    pixels: px.as_slice(),
                    width: w,
                    pitch: w * 3,
                    height: h,
                    format: turbojpeg::PixelFormat::RGB,
                },
                80,
                turbojpeg::Subsamp::Sub2x2,
            )
            .unwrap();
            Bytes::copy_from_slice(&j)
        })
        .collect();
    (f, format!("synthetic {w}x{h} (no testdata)"))
}

/// The secret of bench camera `id`: fixed, so agents and panel agree.
pub fn secret_for(id: &str) -> cctv_protocol::auth::Secret {
    let mut b = [0x42u8; 32];
    for (i, c) in id.bytes().enumerate() {
        b[i % 32] ^= c;
    }
    cctv_protocol::auth::Secret::from_bytes(b)
}

/// Writes a panel config for a bench under `dir` (TLS only when `tls`;
/// every simulated agent comes from one address, so the per-address limit
/// is lifted) and issues each camera's secret. Returns the config file's
/// path and, with TLS, the certificate's fingerprint.
pub fn prepare_panel(
    dir: &Path,
    port: u16,
    ids: &[String],
    tls: bool,
    database: Option<&str>,
) -> (PathBuf, Option<cctv_protocol::tls::Fingerprint>) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = dir.join("panel.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nrecordings_dir = \"{}\"\n\
             plain_tcp = {}\nconnect_burst_per_ip = 100000\nconnects_per_minute_per_ip = 100000\n{}",
            data.display(),
            dir.join("recordings").display(),
            !tls,
            database.map(|url| format!("database = \"{url}\"\n")).unwrap_or_default()
        ),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let at = match database {
            Some(url) => cctv_engine::catalog::Location::parse(url),
            None => cctv_engine::catalog::Location::Sqlite(data.join("panel.db")),
        };
        let catalog = cctv_engine::catalog::Catalog::connect(&at).await.unwrap();
        for id in ids {
            catalog
                .add_credentials(id, "", secret_for(id).as_bytes(), true, 0)
                .await
                .unwrap();
        }
        catalog.close().await;
    });
    let pin = tls.then(|| cctv_engine::tls::load_or_create(&data).unwrap().fingerprint);
    (cfg, pin)
}

/// Hello, the challenge answered, Welcome: a bench agent's handshake.
/// `None` if the panel refused or went away.
pub async fn handshake<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: S,
    hello: cctv_protocol::Hello,
) -> Option<tokio_util::codec::Framed<S, cctv_protocol::Codec>> {
    use cctv_protocol::Message;
    use futures::{SinkExt, StreamExt};
    let mut conn = tokio_util::codec::Framed::new(stream, cctv_protocol::Codec::default());
    let secret = secret_for(&hello.camera_id);
    conn.send(Message::Hello(hello.clone())).await.ok()?;
    let Some(Ok(Message::Challenge(c))) = conn.next().await else {
        return None;
    };
    let proven = cctv_protocol::auth::prove(&secret, &c, hello);
    conn.send(Message::Hello(proven)).await.ok()?;
    match conn.next().await {
        Some(Ok(Message::Welcome(_))) => Some(conn),
        _ => None,
    }
}
