//! The recorders' background disk calls: each segment's periodic sync and
//! its paced writeback, run on a few threads of their own.
//!
//! These calls wait for the disk, so they cannot run on the runtime's
//! workers. On tokio's blocking pool, each waiting call holds a thread of
//! its own: when hundreds of cameras sync in the same half second, the pool
//! grows to hundreds of threads (519 were counted at 512 cameras), whose
//! memory and switching cost more than the calls. Here a few threads take
//! the calls in turn. A segment never has more than one sync and one
//! writeback call waiting, so the queue stays as short as the camera count.

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

impl<T> Job<T> {
    /// Waits for the outcome (`None` if the call was lost).
    #[cfg(test)]
    pub async fn wait(self) -> Option<T> {
        self.rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
