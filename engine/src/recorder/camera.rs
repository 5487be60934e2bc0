//! The recorder of one camera: a task that takes the camera's frames from a
//! bounded queue, writes them into segments, rotates segments by length or
//! frame size, and closes them when the camera goes offline, recording is
//! stopped, the disk guard trips or the panel stops. A write error ends only
//! this camera's segment; other cameras never notice. The camera's sound
//! waits in the recorder until the frames around it are written, so each
//! segment holds the sound of its own time, interleaved with its frames.

use std::collections::VecDeque;
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
/// Room in the queue for the camera's sound besides (about 2.5 s of it).
const QUEUE_AUDIO: usize = 128;
/// Sound waiting for frames: beyond about 15 s (frames held back a
/// pre-roll, or not coming), the oldest is dropped.
const MAX_WAITING_AUDIO: usize = 750;
/// After a write error, wait this long before trying a new segment.
const ERROR_PAUSE: Duration = Duration::from_secs(10);
/// A new picture size starts a new segment only once the open one is this
/// old: a camera flipping between two sizes makes one mixed-size segment
/// (each MJPEG frame carries its own size), not one file per frame.
const SIZE_CHANGE_AFTER_US: i64 = 5_000_000;

pub enum RecorderMsg {
    Frame(Arc<LiveFrame>),
    /// A packet of the camera's sound, its time judged like a frame's.
    Audio(Arc<cctv_protocol::AudioPacket>),
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
    /// Writeback is started every this many bytes of a file (0: the kernel's).
    pub writeback_step: u64,
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
    /// The recordings directory.
    pub fn root(&self) -> &std::path::Path {
        &self.ctx.root
    }

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

/// Whether the camera's sound came on while a segment without an audio
/// track is open: the next frame starts one with it.
fn sound_came_on(seg: &Segment, slot: &CameraSlot) -> bool {
    !seg.audio && slot.sound.is_on()
}

fn spawn(
    ctx: Arc<RecorderCtx>,
    slot: Arc<CameraSlot>,
) -> (mpsc::Sender<RecorderMsg>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE_FRAMES + QUEUE_AUDIO);
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
        sound: VecDeque::new(),
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
    /// Sound not yet written: it goes in just before the first frame
    /// written after it.
    sound: VecDeque<Arc<cctv_protocol::AudioPacket>>,
}

impl Recorder {
    async fn run(mut self, mut rx: mpsc::Receiver<RecorderMsg>) {
        let mut tick = crate::time::aligned_interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(RecorderMsg::Frame(f)) => self.arrived(f).await,
                    Some(RecorderMsg::Audio(a)) => {
                        if self.sound.len() >= MAX_WAITING_AUDIO {
                            self.sound.pop_front();
                        }
                        self.sound.push_back(a);
                    }
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

    /// Writes the waiting sound captured before `until_us` into the open
    /// segment (none open: it is dropped).
    async fn sound_until(&mut self, until_us: i64) {
        while let Some(a) = self.sound.pop_front() {
            if a.capture_us as i64 >= until_us {
                self.sound.push_front(a);
                return;
            }
            if let Some(seg) = self.segment.as_mut()
                && let Err(e) = seg.push_audio(a.capture_us as i64, &a.opus)
            {
                self.fail(&e.to_string()).await;
            }
        }
    }

    async fn frame(&mut self, f: &LiveFrame) {
        self.sound_until(f.capture_us).await;
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
            && (rotate(seg, f, self.ctx.segment_us) || sound_came_on(seg, &self.slot))
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
                audio: self.slot.sound.is_on(),
                writeback_step: self.ctx.writeback_step,
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
        // The sound after the last frame ends the recording.
        self.sound_until(i64::MAX).await;
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
