//! Catalog writes that ingest and the recorders never wait for.
//!
//! A camera's frames must not stop because SQLite is busy: a backup tool
//! holding `BEGIN EXCLUSIVE`, or the data disk full, once cost a camera 138
//! frames and left a closed segment `recording`. So the frame path only
//! queues what the catalog should learn (a segment opened or closed, a
//! state change, an event, a refused connection) and one task applies the
//! queue in order, retrying each write until the database takes it. Files
//! are written whatever the catalog's state; a segment whose row never made
//! it (the panel killed while the catalog was locked) is adopted at the
//! next start (see `recorder::repair`).
//!
//! Refused connections are counted, not written one by one: the task adds
//! them up for a second and writes one row per address, reason and claimed
//! camera (see `Catalog::add_refusals`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::PgDatabaseError;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::catalog::{
    CameraSettings, CameraState, Catalog, CatalogError, EventKind, NewRecording, RecordMode,
    RecordingStatus, Refusal, SpanEnd,
};
use crate::live::EngineEvent;

/// Something the catalog should learn, in the order it happened.
#[derive(Debug)]
pub enum Write {
    /// A camera's Hello: its address, version and picture size.
    Register {
        settings: CameraSettings,
        mode: RecordMode,
        at_us: i64,
    },
    State {
        camera: String,
        state: CameraState,
        at_us: i64,
        detail: String,
    },
    Event {
        camera: String,
        kind: EventKind,
        at_us: i64,
        detail: String,
    },
    /// A motion or tamper span (begun by an `Event` at `start_us`) ended.
    SpanEnd {
        camera: String,
        kind: EventKind,
        start_us: i64,
        end: SpanEnd,
    },
    /// A connection refused; counted with others like it.
    Refused(Refusal),
    /// A segment file created (its row, `recording`).
    Opened(NewRecording),
    /// How far an open segment has got.
    Progress {
        path: String,
        end_us: i64,
        frames: i64,
        bytes: i64,
    },
    /// A segment finished: its row gets its end, size and status, and
    /// clients hear of it once the row is written.
    Closed {
        camera: String,
        path: String,
        end_us: i64,
        frames: i64,
        bytes: i64,
        status: RecordingStatus,
        detail: String,
    },
    /// Answered once everything queued before it is written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// How long refusals are added up before they are written.
const TALLY_FOR: Duration = Duration::from_secs(1);
/// Different (address, reason, camera) keys tallied at once; more are
/// counted under one "many addresses" key, so a flood from everywhere
/// costs bounded memory.
const TALLY_KEYS: usize = 4096;
/// A write failing this long is announced (once per outage).
const ANNOUNCE_AFTER: Duration = Duration::from_secs(3);

/// Where writes are queued; cheap to clone.
#[derive(Clone)]
pub struct Writes {
    tx: mpsc::UnboundedSender<Write>,
    pending: Arc<AtomicUsize>,
}

impl Writes {
    /// Starts the task that applies the writes to `catalog`. It ends once
    /// every `Writes` is dropped and the queue is empty.
    pub fn start(
        catalog: Catalog,
        events: broadcast::Sender<EngineEvent>,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let writer = Writer {
            catalog,
            events,
            pending: pending.clone(),
            ids: HashMap::new(),
            tally: Tally::default(),
            failing_since: None,
            announced: false,
        };
        (Self { tx, pending }, tokio::spawn(writer.run(rx)))
    }

    /// Queues `w`; never waits.
    pub fn send(&self, w: Write) {
        self.pending.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(w).is_err() {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            error!("a catalog write came after the engine stopped; it is lost");
        }
    }

    /// Waits until everything queued so far is in the catalog, at most
    /// `limit`; false if the catalog did not take it all in time.
    pub async fn flush(&self, limit: Duration) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Write::Flush(tx));
        matches!(tokio::time::timeout(limit, rx).await, Ok(Ok(())))
    }

    /// Writes queued and not yet in the catalog.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }
}

/// Refusals being added up.
#[derive(Default)]
struct Tally {
    counts: HashMap<(String, String, Option<String>), Refusal>,
    since: Option<Instant>,
}

impl Tally {
    fn add(&mut self, mut r: Refusal) {
        let key = |r: &Refusal| {
            (
                r.host.clone(),
                r.code.as_str().to_string(),
                r.claimed.clone(),
            )
        };
        if !self.counts.contains_key(&key(&r)) && self.counts.len() >= TALLY_KEYS {
            r.host = "many addresses".into();
            r.claimed = None;
        }
        self.since.get_or_insert_with(Instant::now);
        match self.counts.entry(key(&r)) {
            std::collections::hash_map::Entry::Occupied(mut t) => t.get_mut().merge(&r),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(r);
            }
        }
    }

    fn due(&self) -> Option<Duration> {
        self.since.map(|s| TALLY_FOR.saturating_sub(s.elapsed()))
    }

    fn take(&mut self) -> Vec<Refusal> {
        self.since = None;
        self.counts.drain().map(|(_, r)| r).collect()
    }
}

/// What the writer applies, with retries: one queued write, or the
/// refusals added up over a second.
#[derive(Debug)]
enum Job {
    One(Write),
    Refusals(Vec<Refusal>),
}

struct Writer {
    catalog: Catalog,
    events: broadcast::Sender<EngineEvent>,
    pending: Arc<AtomicUsize>,
    /// Row ids of the open segments, by path.
    ids: HashMap<String, i64>,
    tally: Tally,
    failing_since: Option<Instant>,
    announced: bool,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Write>) {
        let mut queue = VecDeque::new();
        loop {
            let wait = self.tally.due().unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                w = rx.recv() => match w {
                    Some(w) => queue.push_back(w),
                    None => break,
                },
                _ = tokio::time::sleep(wait) => {}
            }
            while let Ok(w) = rx.try_recv() {
                queue.push_back(w);
            }
            self.drain(&mut queue).await;
        }
        self.drain(&mut queue).await;
        self.write_tally().await;
    }

    /// Writes the refusals added up so far, if any.
    async fn write_tally(&mut self) {
        let refusals = self.tally.take();
        if !refusals.is_empty() {
            self.apply(Job::Refusals(refusals)).await;
        }
    }

    /// Applies what is queued, in order, each write retried until it lands.
    async fn drain(&mut self, queue: &mut VecDeque<Write>) {
        while let Some(w) = queue.pop_front() {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            match w {
                Write::Refused(r) => self.tally.add(r),
                Write::Flush(done) => {
                    self.write_tally().await;
                    let _ = done.send(());
                }
                w => self.apply(Job::One(w)).await,
            }
        }
        if self.tally.due().is_some_and(|d| d.is_zero()) {
            self.write_tally().await;
        }
    }

    /// Applies `job`, retrying while the failure may pass by itself; then
    /// clients hear of refusals written.
    async fn apply(&mut self, job: Job) {
        let mut pause = Duration::from_millis(50);
        let began = Instant::now();
        loop {
            let tried = match &job {
                Job::One(w) => self.try_apply(w).await,
                Job::Refusals(r) => self.catalog.add_refusals(r).await,
            };
            match tried {
                Ok(()) => break,
                Err(e) if transient(&e) => {
                    self.failing(&e, began);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    error!("a catalog write was refused and is dropped: {e} ({job:?})");
                    break;
                }
            }
        }
        self.recovered();
        if let Job::Refusals(refusals) = job {
            for r in refusals {
                let _ = self.events.send(EngineEvent::Refused {
                    address: r.address,
                    claimed: r.claimed,
                    reason: r.reason,
                });
            }
        }
    }

    async fn try_apply(&mut self, w: &Write) -> Result<(), CatalogError> {
        let c = self.catalog.clone();
        match w {
            Write::Register {
                settings,
                mode,
                at_us,
            } => c.register_camera(settings, *mode, *at_us).await.map(drop),
            Write::State {
                camera,
                state,
                at_us,
                detail,
            } => {
                c.set_state(camera, *state, *at_us, detail).await?;
                self.logged(camera);
                Ok(())
            }
            Write::Event {
                camera,
                kind,
                at_us,
                detail,
            } => {
                c.add_event(camera, *kind, *at_us, detail).await?;
                self.logged(camera);
                Ok(())
            }
            Write::SpanEnd {
                camera,
                kind,
                start_us,
                end,
            } => {
                c.end_span(camera, *kind, *start_us, end).await?;
                self.logged(camera);
                Ok(())
            }
            Write::Refused(_) | Write::Flush(_) => Ok(()),
            Write::Opened(r) => {
                let id = c.insert_recording(r).await?;
                self.ids.insert(r.path.clone(), id);
                Ok(())
            }
            Write::Progress {
                path,
                end_us,
                frames,
                bytes,
            } => match self.id_of(path).await? {
                Some(id) => c.recording_progress(id, *end_us, *frames, *bytes).await,
                None => Ok(()),
            },
            Write::Closed {
                camera,
                path,
                end_us,
                frames,
                bytes,
                status,
                detail,
            } => {
                let Some(id) = self.id_of(path).await? else {
                    warn!(camera, path, "a closed segment has no catalog row");
                    return Ok(());
                };
                c.finish_recording(id, *end_us, *frames, *bytes, *status, detail)
                    .await?;
                self.ids.remove(path);
                let _ = self.events.send(EngineEvent::Recording {
                    camera: camera.clone(),
                    id,
                });
                Ok(())
            }
        }
    }

    /// Clients hear that `camera`'s history gained an event.
    fn logged(&self, camera: &str) {
        let _ = self.events.send(EngineEvent::Logged {
            camera: camera.to_string(),
        });
    }

    /// The row id of the segment at `path`.
    async fn id_of(&mut self, path: &str) -> Result<Option<i64>, CatalogError> {
        if let Some(id) = self.ids.get(path) {
            return Ok(Some(*id));
        }
        Ok(self.catalog.recording_by_path(path).await?.map(|r| r.id))
    }

    /// A write tried since `began` failed and will be tried again.
    fn failing(&mut self, e: &CatalogError, began: Instant) {
        // SQLite itself waits (its busy timeout) before it fails.
        let since = *self.failing_since.get_or_insert(began);
        if !self.announced && since.elapsed() >= ANNOUNCE_AFTER {
            self.announced = true;
            let waiting = self.pending.load(Ordering::Relaxed) + 1;
            warn!(
                waiting,
                "the catalog is not taking writes ({e}); they are held and retried, recording goes on"
            );
            let _ = self.events.send(EngineEvent::Warning {
                camera: None,
                message: format!(
                    "the catalog is not taking writes ({e}); {waiting} held, recording goes on"
                ),
            });
        }
    }

    fn recovered(&mut self) {
        if let Some(since) = self.failing_since.take()
            && self.announced
        {
            self.announced = false;
            info!(
                after_secs = since.elapsed().as_secs(),
                "the catalog takes writes again; the held ones are written"
            );
        }
    }
}

/// Whether `e` may pass by itself: the database busy or locked, its disk
/// full or failing, the pool out of connections.
pub(crate) fn transient(e: &CatalogError) -> bool {
    let CatalogError::Db(e) = e else {
        return false;
    };
    match e {
        sqlx::Error::Database(d) if d.try_downcast_ref::<PgDatabaseError>().is_some() => {
            // PostgreSQL's SQLSTATE: connection lost (08), out of disk or
            // memory (53), the server shutting down or starting (57P),
            // serialization failure, deadlock, lock not available.
            let code = d.code().unwrap_or_default();
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || matches!(&*code, "40001" | "40P01" | "55P03")
        }
        sqlx::Error::Database(d) => {
            let code = d.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
            // SQLITE_BUSY, _LOCKED, _IOERR, _FULL, _CANTOPEN and their extended codes.
            matches!(code & 0xff, 5 | 6 | 10 | 13 | 14)
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}
