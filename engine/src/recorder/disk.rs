//! The recorders' background disk calls: each segment's periodic sync and
//! its paced writeback, when they fall due, run on a few threads of their
//! own.
//!
//! These calls wait for the disk, so they cannot run on the runtime's
//! workers. On tokio's blocking pool, each waiting call holds a thread of
//! its own: when hundreds of cameras sync in the same half second, the pool
//! grows to hundreds of threads (519 were counted at 512 cameras), whose
//! memory and switching cost more than the calls. Here a few threads take
//! the calls in turn. A segment never has more than one sync and one
//! writeback call waiting, so the queue stays as short as the camera count.

use std::fs::File;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

/// Threads that make the calls. A disk serves a few calls at once (ext4
/// commits concurrent syncs together); more threads only wait longer.
const THREADS: usize = 4;

type Call = Box<dyn FnOnce() + Send>;

/// A call handed to the disk threads, and its outcome once made.
pub struct Job<T> {
    rx: tokio::sync::oneshot::Receiver<T>,
}

/// Where a [`Job`] stands.
pub enum Outcome<T> {
    Running,
    Done(T),
    /// The call panicked, or its outcome was already taken.
    Lost,
}

impl<T> Job<T> {
    pub fn outcome(&mut self) -> Outcome<T> {
        use tokio::sync::oneshot::error::TryRecvError;
        match self.rx.try_recv() {
            Ok(v) => Outcome::Done(v),
            Err(TryRecvError::Empty) => Outcome::Running,
            Err(TryRecvError::Closed) => Outcome::Lost,
        }
    }

    /// The call is still waiting or running. For calls whose outcome is
    /// not wanted: once the call is done, its outcome is dropped.
    pub fn running(&mut self) -> bool {
        matches!(self.outcome(), Outcome::Running)
    }

    /// Waits for the outcome (`None` if the call was lost).
    #[cfg(test)]
    pub async fn wait(self) -> Option<T> {
        self.rx.await.ok()
    }
}

/// Queues `f` for the disk threads.
pub fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Job<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let call: Call = Box::new(move || {
        let _ = tx.send(f());
    });
    if queue().send(call).is_err() {
        // No thread could be started: the call is lost and says so.
        tracing::error!("the recorders' disk threads are gone");
    }
    Job { rx }
}

fn queue() -> &'static mpsc::Sender<Call> {
    static QUEUE: OnceLock<mpsc::Sender<Call>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Call>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..THREADS {
            let rx = rx.clone();
            let started = std::thread::Builder::new()
                .name(format!("cctv-disk-{i}"))
                .spawn(move || {
                    loop {
                        let call = match crate::sync::lock(&rx).recv() {
                            Ok(call) => call,
                            Err(_) => return,
                        };
                        // A call that panics loses its own outcome, not the thread.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
                    }
                });
            if let Err(e) = started {
                tracing::error!("cannot start a disk thread: {e}");
            }
        }
        tx
    })
}

/// What the files being paced may hold, all together, between their
/// steps: a file's step is this shared out among them, so dirty pages
/// stay well under the kernel's own threshold (10% of memory) whatever
/// the number of cameras. A thirty-second of memory on a small host.
pub const DIRTY_BUDGET: u64 = 256 << 20;
/// The smallest step, however many files share the budget: each step is
/// a call to the disk threads, and the kernel's writeback costs more per
/// byte in small pieces.
pub const MIN_STEP: u64 = 1 << 20;

/// Files being paced now, in this process.
static PACED: AtomicUsize = AtomicUsize::new(0);

/// Paces the disk's writeback of a segment. Every step of bytes written,
/// the part of the file that will not change again is handed to the disk
/// and its pages already there are let go, so dirty pages never pile up
/// until the kernel throttles every writer at once, and recordings do not
/// push the catalog and the window out of the page cache.
///
/// The step is the largest the files being paced can each take within
/// [`DIRTY_BUDGET`], between [`MIN_STEP`] and the configured step: 8 MiB
/// for a few dozen cameras, 1 MiB for a few hundred. Measured beside the
/// floor at 32 cameras of 768x576, 8 MiB steps took the panel's CPU per
/// frame from 1.93x the floor's to 1.69x (`docs/performance.md`).
pub struct Pace {
    /// The largest step; 0: writeback is left to the kernel.
    step: u64,
    /// Bytes written when writeback was last started.
    at: u64,
    job: Option<Job<()>>,
}

impl Pace {
    pub fn new(step: u64) -> Self {
        if step != 0 {
            PACED.fetch_add(1, Ordering::Relaxed);
        }
        Self {
            step,
            at: 0,
            job: None,
        }
    }

    /// The step now: [`DIRTY_BUDGET`] shared among the files being paced,
    /// within [`MIN_STEP`] (or the configured step, if smaller) and the
    /// configured step.
    pub fn step(&self) -> u64 {
        paced_step(PACED.load(Ordering::Relaxed), self.step)
    }

    /// Whether a file of `written` bytes is due its next step: a step of
    /// bytes since the last, which is done (one at a time).
    pub fn due(&mut self, written: u64) -> bool {
        self.step != 0
            && written - self.at >= self.step()
            && !self.job.as_mut().is_some_and(Job::running)
    }

    /// [`let_go`] of `range` of `file` on the disk threads (starting
    /// writeback may wait for the disk's queue).
    pub fn start(&mut self, written: u64, file: Arc<File>, range: Range<u64>) {
        self.at = written;
        self.job = Some(run(move || let_go(&file, range)));
    }
}

impl Drop for Pace {
    fn drop(&mut self) {
        if self.step != 0 {
            PACED.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The step the recorder takes with `files` segments paced, at most
/// `largest` bytes: what the capacity benchmark's paced floor takes too.
pub fn paced_step(files: usize, largest: u64) -> u64 {
    step_for(files, largest, budget())
}

/// The step of each of `files` paced files sharing `budget`, `largest`
/// configured.
fn step_for(files: usize, largest: u64, budget: u64) -> u64 {
    let files = files.max(1) as u64;
    (budget / files).clamp(MIN_STEP.min(largest), largest)
}

/// [`DIRTY_BUDGET`], or a thirty-second of this host's memory if less.
fn budget() -> u64 {
    static BUDGET: OnceLock<u64> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let kb = m.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
                kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
            })
            .map_or(u64::MAX, |kb| kb.saturating_mul(1024));
        DIRTY_BUDGET.min(total / 32)
    })
}

/// Starts writing the dirty pages of `range` to the disk without waiting
/// for them, and lets go of its pages that are already there. On Linux,
/// `POSIX_FADV_DONTNEED` does both: dirty pages get their writeback
/// started (as `sync_file_range(SYNC_FILE_RANGE_WRITE)` would), clean ones
/// are dropped, and pages still being written stay for the next call.
/// Advice only: durability is still the periodic sync's and the sync at
/// the end of the segment.
fn let_go(file: &File, range: Range<u64>) {
    let len = std::num::NonZeroU64::new(range.end.saturating_sub(range.start));
    if len.is_some()
        && let Err(e) = rustix::fs::fadvise(file, range.start, len, rustix::fs::Advice::DontNeed)
    {
        tracing::debug!("cannot pace the writeback: {e}");
    }
}

/// How often an open segment is synced to the disk. Frames reach the page
/// cache as they arrive, so a killed panel loses nothing; this bounds what a
/// power cut can take. (15 s was tried against 5 s at 256 cameras: p99
/// latency got worse, 750 ms against 150 ms, as writeback came in bursts.)
pub const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// How far into [`SYNC_EVERY`] a camera's periodic syncs fall, the same
/// for each of its segments. Cameras that start together (the panel
/// starting, a network coming back) would otherwise sync together, on the
/// same recorder tick, every time: a burst for the disk, then nothing.
pub fn sync_phase(camera_id: &str) -> std::time::Duration {
    // FNV-1a: stable across runs and builds.
    let h = camera_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    SYNC_EVERY.mul_f64((h % 1000) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cameras_that_start_together_sync_at_different_times() {
        // Recorders tick every 500 ms: ten ticks to a period.
        let mut per_tick = [0; 10];
        for i in 0..500 {
            let phase = sync_phase(&format!("cam-{i:03}"));
            assert!(phase < SYNC_EVERY);
            per_tick[(phase.as_millis() / 500) as usize] += 1;
        }
        // 50 a tick if even; none holds twice that.
        assert!(per_tick.iter().all(|&n| n > 20 && n < 100), "{per_tick:?}");
        assert_eq!(sync_phase("door"), sync_phase("door"));
    }

    #[test]
    fn the_step_shrinks_as_more_files_share_the_budget() {
        const MIB: u64 = 1 << 20;
        let b = DIRTY_BUDGET;
        assert_eq!(step_for(1, 8 * MIB, b), 8 * MIB);
        assert_eq!(step_for(32, 8 * MIB, b), 8 * MIB);
        assert_eq!(step_for(64, 8 * MIB, b), 4 * MIB);
        assert_eq!(step_for(192, 8 * MIB, b), 1_398_101);
        assert_eq!(step_for(512, 8 * MIB, b), MIB, "never below 1 MiB");
        assert_eq!(step_for(0, 8 * MIB, b), 8 * MIB);
        // A smaller step configured is kept, however few or many files.
        assert_eq!(step_for(1, 512 << 10, b), 512 << 10);
        assert_eq!(step_for(10_000, 512 << 10, b), 512 << 10);
        // A host of 2 GiB: a budget of 64 MiB, 2 MiB steps at 32 cameras.
        assert_eq!(step_for(32, 8 * MIB, (2 << 30) / 32), 2 * MIB);
        // This host's budget is the constant or a share of its memory.
        assert!(
            budget() <= DIRTY_BUDGET && budget() >= 16 * MIB,
            "{}",
            budget()
        );
    }

    #[test]
    fn open_paces_share_the_budget_until_dropped() {
        // Other tests may hold paces too: they only make steps smaller.
        let many: Vec<_> = (0..600).map(|_| Pace::new(8 << 20)).collect();
        assert!(many.iter().all(|p| p.step() == MIN_STEP));
        drop(many);
        // Other tests hold a few at most: far fewer than 256.
        assert!(Pace::new(8 << 20).step() > MIN_STEP);
        // Pacing off is not counted and never due.
        let mut off = Pace::new(0);
        assert!(!off.due(u64::MAX));
    }

    #[tokio::test]
    async fn calls_run_on_a_few_threads_and_a_panic_loses_only_its_own_outcome() {
        let names: Vec<_> = (0..64)
            .map(|_| {
                run(|| {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    std::thread::current().name().unwrap_or("").to_string()
                })
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        for job in names {
            let name = job.wait().await.expect("each call runs");
            assert!(name.starts_with("cctv-disk-"), "{name}");
            seen.insert(name);
        }
        assert!(seen.len() <= THREADS, "{seen:?}");

        let mut lost = run(|| -> u32 { panic!("a call that fails") });
        while lost.running() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert!(matches!(lost.outcome(), Outcome::Lost));
        assert_eq!(run(|| 7).wait().await, Some(7), "the threads go on");
    }
}
