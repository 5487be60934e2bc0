//! The capacity benchmark's floors: the same bytes read from loopback
//! sockets and appended to files by the simplest loops, measured as the
//! panel is. The floor itself reads and appends, nothing else; the paced
//! floor also makes the recorder's disk calls; the async floor makes them
//! on a tokio runtime shaped as the panel's.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use cctv_engine::recorder::SYNC_EVERY;

use super::Case;
use super::common::{Kill, free_port, wait_listening};
use super::drive::{Target, drive};

/// The loop a floor server runs.
#[derive(Clone, Copy, PartialEq)]
pub enum Loop {
    /// A thread a connection, reading and appending: the floor.
    Plain,
    /// The floor's loop, which also makes the disk calls the recorder
    /// makes on its segments, on the thread that appends. Every step
    /// (bytes) the written part's writeback is started and its pages let
    /// go (`POSIX_FADV_DONTNEED`), and every [`SYNC_EVERY`] the file is
    /// synced. The floor leaves that work to the kernel's threads, and
    /// its pages in memory.
    Paced(u64),
    /// The paced floor's work on a tokio runtime of one worker, as the
    /// panel's on two cores: a task a connection reads and appends, and
    /// the disk calls go to a thread of their own, as the recorder's go
    /// to its disk threads.
    Async(u64),
}

impl Loop {
    pub fn name(self) -> &'static str {
        match self {
            Loop::Plain => "floor",
            Loop::Paced(_) => "paced floor",
            Loop::Async(_) => "async floor",
        }
    }

    fn args(self) -> Vec<String> {
        match self {
            Loop::Plain => Vec::new(),
            Loop::Paced(step) => vec!["paced".into(), step.to_string()],
            Loop::Async(step) => vec!["async".into(), step.to_string()],
        }
    }

    /// From the arguments after `--floor-server PORT DIR`.
    pub fn parse(args: &[String]) -> Loop {
        let step = || args[1].parse().expect("step");
        match args.first().map(String::as_str) {
            None => Loop::Plain,
            Some("paced") => Loop::Paced(step()),
            Some("async") => Loop::Async(step()),
            Some(other) => panic!("no such floor: {other}"),
        }
    }
}

/// A disk call the recorder would make now on a file.
enum DiskCall {
    /// Writeback started and pages let go, from the start to here.
    LetGo(u64),
    Sync,
}

/// When a file written by a paced loop is due its disk calls.
struct Pacing {
    step: u64,
    written: u64,
    let_go_at: u64,
    synced: Instant,
}

impl Pacing {
    fn new(step: u64) -> Self {
        Self {
            step,
            written: 0,
            let_go_at: 0,
            synced: Instant::now(),
        }
    }

    /// The calls due once `n` more bytes are written.
    fn wrote(&mut self, n: usize) -> impl Iterator<Item = DiskCall> + use<> {
        self.written += n as u64;
        let let_go = (self.written - self.let_go_at >= self.step).then(|| {
            self.let_go_at = self.written;
            DiskCall::LetGo(self.written)
        });
        let sync = (self.synced.elapsed() >= SYNC_EVERY).then(|| {
            self.synced = Instant::now();
            DiskCall::Sync
        });
        let_go.into_iter().chain(sync)
    }
}

fn make(call: DiskCall, file: &File) {
    match call {
        DiskCall::LetGo(end) => {
            let len = std::num::NonZeroU64::new(end);
            let _ = rustix::fs::fadvise(file, 0, len, rustix::fs::Advice::DontNeed);
        }
        DiskCall::Sync => {
            let _ = file.sync_data();
        }
    }
}

/// A floor server: this program again, running `which` loop on `port`,
/// each connection appended to a file in `dir`.
pub fn floor_server(port: u16, dir: &Path, which: Loop) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let step = match which {
        Loop::Async(step) => return async_floor(listener, dir, step),
        Loop::Paced(step) => Some(step),
        Loop::Plain => None,
    };
    for (i, stream) in listener.incoming().enumerate() {
        let Ok(mut stream) = stream else { continue };
        let path = dir.join(format!("{i}.bin"));
        std::thread::spawn(move || {
            let mut file = File::create(path).unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let mut pacing = step.map(Pacing::new);
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 || file.write_all(&buf[..n]).is_err() {
                    break;
                }
                if let Some(p) = &mut pacing {
                    p.wrote(n).for_each(|call| make(call, &file));
                }
            }
        });
    }
}

fn async_floor(listener: std::net::TcpListener, dir: &Path, step: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (calls, rx) = std::sync::mpsc::channel::<(Arc<File>, DiskCall)>();
    std::thread::spawn(move || rx.into_iter().for_each(|(file, call)| make(call, &file)));
    rt.block_on(async move {
        use tokio::io::AsyncReadExt;
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        for i in 0.. {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let file = Arc::new(File::create(dir.join(format!("{i}.bin"))).unwrap());
            let calls = calls.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut pacing = Pacing::new(step);
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 || (&*file).write_all(&buf[..n]).is_err() {
                        break;
                    }
                    for call in pacing.wrote(n) {
                        let _ = calls.send((file.clone(), call));
                    }
                }
            });
        }
    });
}

/// The floor loop's CPU per 1000 frames: its own, and with the kernel's.
#[derive(Clone, Copy)]
pub struct Floor {
    pub cpu_per_1000: f64,
    pub all_per_1000: f64,
}

pub fn run_floor(case: Case, frames: &[Bytes]) -> Floor {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = start_floor(dir.path(), Loop::Plain);
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

/// A floor server running `which` loop, appending into `dir`, once it
/// listens.
pub fn start_floor(dir: &Path, which: Loop) -> (Kill, std::net::SocketAddr) {
    let port = free_port();
    let exe = std::env::current_exe().unwrap();
    let server = Kill(
        Command::new(exe)
            .args(["--floor-server", &port.to_string()])
            .arg(dir)
            .args(which.args())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(addr);
    (server, addr)
}
