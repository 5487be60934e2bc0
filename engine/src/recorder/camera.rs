//! The recorder of one camera: a task that takes the camera's frames from a
//! bounded queue, writes them into segments, rotates segments by length or
//! frame size, and closes them when the camera goes offline, recording is
//! stopped, the disk guard trips or the panel stops. A write error ends only
//! this camera's segment; other cameras never notice.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::preroll::{Keep, Order};
use super::segment::{NewSegment, Segment};
use crate::catalog::{EventKind, RecordingStatus};
use crate::live::{CameraSlot, EngineEvent, LiveFrame};
use crate::time::now_us;
use crate::writes::{Write, Writes};

/// Frames a recorder may have queued before new ones are counted as unrecorded.
pub const QUEUE_FRAMES: usize = 64;
/// After a write error, wait this long before trying a new segment.
const ERROR_PAUSE: Duration = Duration::from_secs(10);
/// A new picture size starts a new segment only once the open one is this
/// old: a camera flipping between two sizes makes one mixed-size segment
/// (each MJPEG frame carries its own size), not one file per frame.
const SIZE_CHANGE_AFTER_US: i64 = 5_000_000;

pub enum RecorderMsg {
    Frame(Arc<LiveFrame>),
    /// Close the open segment, e.g. the camera went offline.
    Close {
        reason: String,
    },
}

/// What every recorder shares.
pub struct RecorderCtx {
    /// Where the catalog's rows and events are queued.
    pub writes: Writes,
    pub root: PathBuf,
    pub segment_us: i64,
    /// Set by the disk guard when free space is too low.
    pub disk_full: Arc<AtomicBool>,
    pub events: broadcast::Sender<EngineEvent>,
    /// Capture-to-disk latency of every frame written.
    pub latency: Arc<crate::stats::Latency>,
}

/// A running recorder: where its frames go, and its task.
type Running = (mpsc::Sender<RecorderMsg>, JoinHandle<()>);

/// Every camera's recorder, started on first use and stopped at shutdown.
pub struct Recorders {
    ctx: Arc<RecorderCtx>,
    running: std::sync::Mutex<std::collections::HashMap<String, Running>>,
}

impl Recorders {
    pub fn new(ctx: Arc<RecorderCtx>) -> Self {
        Self {
            ctx,
            running: Default::default(),
        }
    }

    /// What every recorder shares: where backfill is written too.
    pub fn ctx(&self) -> &Arc<RecorderCtx> {
        &self.ctx
    }

    /// Capture-to-disk latency of every frame recorded since start.
    pub fn latency(&self) -> &crate::stats::Latency {
        &self.ctx.latency
    }

    /// The camera's recorder, started on first use, and started again if
    /// it stopped on a fault (its open segment is left for repair).
    pub fn for_camera(&self, slot: &Arc<CameraSlot>) -> mpsc::Sender<RecorderMsg> {
        let mut running = crate::sync::lock(&self.running);
        if let Some((tx, task)) = running.get(&slot.id) {
            if !task.is_finished() {
                return tx.clone();
            }
            error!(camera = %slot.id, "the camera's recorder stopped on a fault; starting it again");
        }
        let (tx, task) = spawn(self.ctx.clone(), slot.clone());
        running.insert(slot.id.clone(), (tx.clone(), task));
        tx
    }

    /// Stops every recorder: each finishes its open segment as complete.
    pub async fn stop_all(&self) {
        let running: Vec<_> = crate::sync::lock(&self.running)
            .drain()
            .map(|(_, r)| r)
            .collect();
        for (tx, task) in running {
            drop(tx);
            let _ = task.await;
        }
    }
}

/// Whether `f` starts a new segment: the open one is full, or the picture
/// size changed and the open one is old enough.
fn rotate(seg: &Segment, f: &LiveFrame, segment_us: i64) -> bool {
    let age = f.capture_us.saturating_sub(seg.start_us);
    let resized = (f.width, f.height) != (seg.width, seg.height);
    age >= segment_us || (resized && age >= SIZE_CHANGE_AFTER_US)
}

fn spawn(
    ctx: Arc<RecorderCtx>,
    slot: Arc<CameraSlot>,
) -> (mpsc::Sender<RecorderMsg>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE_FRAMES);
    let task = Recorder {
        ctx,
        slot,
        segment: None,
        active: false,
        paused_until: None,
        stopped_for_disk: false,
        order: Order::default(),
        out: Vec::new(),
        warned_unanalysed: false,
    };
    (tx, tokio::spawn(task.run(rx)))
}

struct Recorder {
    ctx: Arc<RecorderCtx>,
    slot: Arc<CameraSlot>,
    segment: Option<Segment>,
    /// Recording without a break since the last `recording_started` event.
    active: bool,
    paused_until: Option<Instant>,
    stopped_for_disk: bool,
    /// Frames waiting for their place in time.
    order: Order,
    out: Vec<Arc<LiveFrame>>,
    warned_unanalysed: bool,
}

impl Recorder {
    async fn run(mut self, mut rx: mpsc::Receiver<RecorderMsg>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(RecorderMsg::Frame(f)) => self.arrived(f).await,
                    Some(RecorderMsg::Close { reason }) => {
                        self.flush_waiting().await;
                        self.stop(&reason).await
                    }
                    None => {
                        self.flush_waiting().await;
                        self.stop("panel stopping").await;
                        return;
                    }
                },
                _ = tick.tick() => self.flush().await,
            }
        }
    }

    fn keep(&self) -> Keep {
        if self.slot.record_motion.load(Ordering::Acquire) {
            Keep::Events
        } else {
            Keep::All
        }
    }

    /// A frame from the connection: written now, or kept back until its
    /// place in time is sure (see `preroll`).
    async fn arrived(&mut self, f: Arc<LiveFrame>) {
        let keep = self.keep();
        if keep == Keep::Events && f.analysis.is_none() && !self.warned_unanalysed {
            self.warned_unanalysed = true;
            warn!(camera = %self.slot.id, "the camera's agent does not analyse its frames: recording continuously instead of on motion");
        }
        let mut out = std::mem::take(&mut self.out);
        let eventful = self.order.push(f, keep, &mut out);
        for f in out.drain(..) {
            self.frame(&f).await;
        }
        self.out = out;
        self.order.passed_over(&self.slot.acks);
        if !eventful && keep == Keep::Events && self.segment.is_some() {
            // Recording on motion, and the event is over.
            self.close(RecordingStatus::Complete, "").await;
            self.set_recording(false);
        }
    }

    /// What waits is written (or dropped, recording on motion).
    async fn flush_waiting(&mut self) {
        let mut out = Vec::new();
        self.order.flush(self.keep(), &mut out);
        for f in out {
            self.frame(&f).await;
        }
        self.order.passed_over(&self.slot.acks);
    }

    async fn event(&self, kind: EventKind, detail: &str) {
        self.ctx.writes.send(Write::Event {
            camera: self.slot.id.clone(),
            kind,
            at_us: now_us(),
            detail: detail.to_string(),
        });
        let _ = self
            .ctx
            .events
            .send(EngineEvent::Camera(self.slot.id.clone()));
    }

    fn set_recording(&self, on: bool) {
        self.slot.update(|s| s.recording = on);
    }

    async fn frame(&mut self, f: &LiveFrame) {
        if !self.slot.record_enabled.load(Ordering::Acquire) {
            // Not kept on purpose: the agent may forget it.
            self.slot.acks.add(f.seq);
            self.stop("recording stopped").await;
            return;
        }
        if self.ctx.disk_full.load(Ordering::Acquire) {
            self.slot.acks.add(f.seq);
            if !self.stopped_for_disk {
                self.stopped_for_disk = true;
                self.close(RecordingStatus::Complete, "").await;
                self.active = false;
                self.set_recording(false);
                self.event(
                    EventKind::DiskFull,
                    "recording paused: the recordings disk is nearly full",
                )
                .await;
            }
            return;
        }
        if self.stopped_for_disk {
            self.stopped_for_disk = false;
            info!(camera = %self.slot.id, "disk space available again; recording resumes");
        }
        if self.paused_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.paused_until = None;
        if let Some(seg) = &self.segment
            && rotate(seg, f, self.ctx.segment_us)
        {
            self.close(RecordingStatus::Complete, "").await;
        }
        if self.segment.is_none() {
            let title = format!("{} ({})", self.slot.status().name, self.slot.id);
            let new = NewSegment {
                camera_id: &self.slot.id,
                title,
                start_us: f.capture_us,
                width: f.width,
                height: f.height,
                backfilled: false,
            };
            match Segment::open(
                &self.ctx.writes,
                &self.ctx.root,
                new,
                self.slot.acks.clone(),
            )
            .await
            {
                Ok(seg) => {
                    info!(camera = %self.slot.id, path = %seg.rel_path, "recording segment opened");
                    self.segment = Some(seg);
                    self.set_recording(true);
                    if !self.active {
                        self.active = true;
                        self.event(EventKind::RecordingStarted, "").await;
                    }
                }
                Err(e) => {
                    self.fail(&e.to_string()).await;
                    return;
                }
            }
        }
        if let Some(seg) = self.segment.as_mut() {
            match seg.push(f.seq, f.capture_us, &f.jpeg) {
                Ok(written_us) => {
                    self.ctx
                        .latency
                        .record(written_us.saturating_sub(f.capture_us));
                    crate::sync::lock(&self.slot.recorded).add(f.seq, f.capture_us);
                }
                Err(e) => self.fail(&e.to_string()).await,
            }
        }
    }

    async fn flush(&mut self) {
        let Some(seg) = self.segment.as_mut() else {
            return;
        };
        if let Err(e) = seg.sync_if_due() {
            self.fail(&e.to_string()).await;
            return;
        }
        seg.report_progress(&self.ctx.writes);
    }

    /// Closes the open segment, if any, and tells the catalog.
    async fn close(&mut self, status: RecordingStatus, detail: &str) {
        let Some(seg) = self.segment.take() else {
            return;
        };
        // Clients hear of it once its row is written (`crate::writes`).
        match seg.close(&self.ctx.writes, status, detail).await {
            Ok(s) => {
                info!(camera = %self.slot.id, frames = s.frames, bytes = s.bytes, "recording segment closed")
            }
            Err(e) => error!(camera = %self.slot.id, "closing a recording segment: {e}"),
        }
    }

    /// Ends recording for now (offline, stopped, shutdown).
    async fn stop(&mut self, reason: &str) {
        let was_recording = self.segment.is_some();
        self.close(RecordingStatus::Complete, "").await;
        self.set_recording(false);
        if self.active {
            self.active = false;
            if was_recording {
                self.event(EventKind::RecordingStopped, reason).await;
            }
        }
    }

    /// A write or open failed: close what we have as interrupted, say so,
    /// and pause this camera's recording for a while.
    async fn fail(&mut self, why: &str) {
        error!(camera = %self.slot.id, "recording failed: {why}");
        self.close(RecordingStatus::Interrupted, why).await;
        self.set_recording(false);
        self.active = false;
        self.paused_until = Some(Instant::now() + ERROR_PAUSE);
        self.event(EventKind::RecordingError, why).await;
        let _ = self.ctx.events.send(EngineEvent::Warning {
            camera: Some(self.slot.id.clone()),
            message: format!("recording failed: {why}"),
        });
    }
}
