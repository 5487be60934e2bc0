//! The stitch worker: a child process (`panel stitch-worker --job DIR`) that
//! runs OpenCV's Stitcher on the frames in DIR under a memory cap, printing
//! `stage ...` lines and one `result {json}` line. A separate process keeps
//! the panel safe from OpenCV's worst cases: an absurd allocation fails
//! inside the cap ("out of memory"), a crash ends only the worker, and
//! cancelling is killing it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use opencv::core::{Size, Vector};
use opencv::imgcodecs;
use opencv::imgproc;
use opencv::prelude::*;
use rustix::process::{Pid, Signal};
use serde::{Deserialize, Serialize};

use super::stitch::{Failure, Mode, stitch};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub mode: Mode,
    /// Frames in footage order, each overlapping the next (video, recordings).
    #[serde(default)]
    pub ordered: bool,
    /// OpenCV's default settings, for comparisons (see `stitch`).
    #[serde(default)]
    pub opencv_defaults: bool,
    /// Frame files, in order, relative to the job directory.
    pub frames: Vec<String>,
    pub out: PathBuf,
    pub thumb: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum WorkerResult {
    Ok {
        width: i32,
        height: i32,
        used: usize,
    },
    Failed {
        failure: Failure,
    },
}

pub const JOB_FILE: &str = "job.json";
/// The panel's process id, for the worker to check it still has its parent.
const PARENT_ENV: &str = "CCTV_STITCH_PARENT";
pub const THUMB_WIDTH: i32 = 320;

/// Address-space cap for the worker: half the machine's memory, at most 8 GiB.
fn memory_cap() -> u64 {
    let total_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(8 << 20);
    (total_kb * 1024 / 2).min(8 << 30)
}

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The worker's main: returns the process exit status.
pub fn main(job_dir: &Path) -> i32 {
    // The worker never outlives the panel that started it: killed, crashed
    // or quit, the panel's end is the worker's.
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    if let Some(parent) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
        && rustix::process::getppid()
            .map(Pid::as_raw_nonzero)
            .map(|p| p.get())
            != Some(parent)
    {
        // The panel ended before the line above took effect.
        return 1;
    }
    let cap = memory_cap();
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::As,
        rustix::process::Rlimit {
            current: Some(cap),
            maximum: Some(cap),
        },
    );
    let result = run(job_dir);
    let json = serde_json::to_string(&result).unwrap_or_else(|_| "{}".into());
    emit(&format!("result {json}"));
    0
}

fn run(job_dir: &Path) -> WorkerResult {
    let failed = |f: Failure| WorkerResult::Failed { failure: f };
    let job: Job = match std::fs::read(job_dir.join(JOB_FILE))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(j) => j,
        Err(e) => return failed(Failure::Other(format!("cannot read the job: {e}"))),
    };
    emit("stage loading frames");
    let mut frames = Vec::new();
    for f in &job.frames {
        let path = job_dir.join(f);
        match imgcodecs::imread(&path, imgcodecs::IMREAD_COLOR) {
            Ok(m) if !m.empty() => frames.push(m),
            _ => {
                return failed(Failure::Other(format!(
                    "cannot read frame {}",
                    path.display()
                )));
            }
        }
    }
    let mut stage = |s: &str| emit(&format!("stage {s}"));
    let stitched = match stitch(
        &frames,
        job.mode,
        job.ordered,
        job.opencv_defaults,
        &mut stage,
    ) {
        Ok(s) => s,
        Err(f) => return failed(f),
    };
    emit("stage saving");
    let params = Vector::<i32>::from_slice(&[imgcodecs::IMWRITE_JPEG_QUALITY, 92]);
    let write = |path: &Path, m: &Mat| -> Result<(), Failure> {
        match imgcodecs::imwrite(path, m, &params) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Failure::Other(format!("cannot write {}", path.display()))),
            Err(e) => Err(Failure::Other(e.message)),
        }
    };
    if let Some(dir) = job.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(f) = write(&job.out, &stitched.image) {
        return failed(f);
    }
    let (w, h) = (stitched.image.cols(), stitched.image.rows());
    let th = ((f64::from(h) * f64::from(THUMB_WIDTH) / f64::from(w.max(1))).round() as i32).max(1);
    let mut thumb = Mat::default();
    if imgproc::resize(
        &stitched.image,
        &mut thumb,
        Size::new(THUMB_WIDTH.min(w), th.min(h)),
        0.0,
        0.0,
        imgproc::INTER_AREA,
    )
    .is_ok()
    {
        let _ = write(&job.thumb, &thumb);
    }
    WorkerResult::Ok {
        width: w,
        height: h,
        used: stitched.used,
    }
}

/// Runs a job in a worker process; `stage` hears each stage; setting
/// `cancel`, or `deadline` passing, kills the worker.
pub fn run_job(
    worker: &Path,
    job_dir: &Path,
    cancel: &Arc<AtomicBool>,
    deadline: Option<Instant>,
    stage: &mut dyn FnMut(&str),
) -> Result<WorkerResult, Failure> {
    let mut child = Command::new(worker)
        .args(["stitch-worker", "--job"])
        .arg(job_dir)
        .env(PARENT_ENV, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            Failure::Other(format!(
                "cannot start the stitch worker {}: {e}",
                worker.display()
            ))
        })?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Failure::Other("no worker output".into()))?;
    // Kill the worker when cancelled or late, from a watcher thread.
    let pid = Pid::from_raw(child.id() as i32);
    let done = Arc::new(AtomicBool::new(false));
    let late = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (cancel, done, late) = (cancel.clone(), done.clone(), late.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                let past = deadline.is_some_and(|d| Instant::now() >= d);
                if past {
                    late.store(true, Ordering::Release);
                }
                if past || cancel.load(Ordering::Acquire) {
                    if let Some(pid) = pid {
                        let _ = rustix::process::kill_process(pid, Signal::KILL);
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut result = None;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(s) = line.strip_prefix("stage ") {
            stage(s);
        } else if let Some(json) = line.strip_prefix("result ") {
            result = serde_json::from_str::<WorkerResult>(json).ok();
        }
    }
    let status = child.wait().map_err(|e| Failure::Other(e.to_string()))?;
    done.store(true, Ordering::Release);
    let _ = watcher.join();
    if cancel.load(Ordering::Acquire) {
        return Err(Failure::Cancelled);
    }
    if late.load(Ordering::Acquire) {
        return Err(Failure::TimedOut);
    }
    match result {
        Some(r) => Ok(r),
        None => {
            use std::os::unix::process::ExitStatusExt;
            Err(match status.signal() {
                Some(9) => Failure::OutOfMemory(
                    "the worker was killed, most likely by the system for using too much memory"
                        .into(),
                ),
                Some(sig) => Failure::Other(format!("the stitcher crashed (signal {sig})")),
                None => Failure::Other(format!(
                    "the stitch worker ended without a result ({status})"
                )),
            })
        }
    }
}
