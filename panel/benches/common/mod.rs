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
