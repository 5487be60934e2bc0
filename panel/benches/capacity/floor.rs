//! The capacity benchmark's floor: the same bytes read from loopback
//! sockets and appended to files by the simplest loop, measured as the
//! panel is.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use std::time::Instant;

use bytes::Bytes;
use cctv_engine::recorder::SYNC_EVERY;

use super::Case;
use super::common::{Kill, free_port, wait_listening};
use super::drive::{Target, drive};

/// The floor: this program again, as the simplest receive-and-append
/// loop. Given a `step` (bytes), the paced floor: the same loop, which
/// also makes the disk calls the recorder makes on its segments, on the
/// thread that appends. Every `step` bytes the written part's writeback
/// is started and its pages let go (`POSIX_FADV_DONTNEED`), and every
/// [`SYNC_EVERY`] the file is synced. The plain floor leaves that work to
/// the kernel's threads, and its pages in memory.
pub fn floor_server(port: u16, dir: &Path, step: Option<u64>) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    for (i, stream) in listener.incoming().enumerate() {
        let Ok(mut stream) = stream else { continue };
        let path = dir.join(format!("{i}.bin"));
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(path).unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let (mut written, mut let_go_at, mut synced) = (0u64, 0u64, Instant::now());
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 || file.write_all(&buf[..n]).is_err() {
                    break;
                }
                written += n as u64;
                let Some(step) = step else { continue };
                if written - let_go_at >= step {
                    let_go_at = written;
                    let len = std::num::NonZeroU64::new(written);
                    let _ = rustix::fs::fadvise(&file, 0, len, rustix::fs::Advice::DontNeed);
                }
                if synced.elapsed() >= SYNC_EVERY {
                    synced = Instant::now();
                    let _ = file.sync_data();
                }
            }
        });
    }
}

/// The floor loop's CPU per 1000 frames: its own, and with the kernel's.
#[derive(Clone, Copy)]
pub struct Floor {
    pub cpu_per_1000: f64,
    pub all_per_1000: f64,
}

pub fn run_floor(case: Case, frames: &[Bytes]) -> Floor {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = start_floor(dir.path(), None);
    let target = Target {
        addr,
        pid: server.0.id(),
        floor: true,
    };
    let d = drive(target, case, frames);
    Floor {
        cpu_per_1000: d.per_1000(d.cpu.process),
        all_per_1000: d.per_1000(d.cpu.with_kernel),
    }
}

/// The floor server, appending into `dir` (paced by `step`, if given),
/// once it listens.
pub fn start_floor(dir: &Path, step: Option<u64>) -> (Kill, std::net::SocketAddr) {
    let port = free_port();
    let exe = std::env::current_exe().unwrap();
    let server = Kill(
        Command::new(exe)
            .args(["--floor-server", &port.to_string()])
            .arg(dir)
            .args(step.map(|s| s.to_string()))
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(addr);
    (server, addr)
}
