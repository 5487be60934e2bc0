//! Live state of each camera, in memory: its status (state, rates, counters)
//! and its newest frame, each in a `watch` channel so any number of
//! consumers (wall tiles, recorders, detectors) read the latest value and a
//! slow one only sees fewer frames. Owns the rule that one camera id has at
//! most one live connection. Never touches the database or the disk.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::catalog::{CameraRow, CameraState, RecordMode};

/// A frame as the wall and the recorder see it.
#[derive(Debug, Clone)]
pub struct LiveFrame {
    pub seq: u64,
    /// When the agent captured it, microseconds since the epoch.
    pub capture_us: i64,
    /// When the panel received it.
    pub received_us: i64,
    pub width: u16,
    pub height: u16,
    pub jpeg: Bytes,
    /// What the agent saw in it, if it analyses its frames.
    pub analysis: Option<cctv_protocol::FrameAnalysis>,
    /// The agent's small copy of the picture, for the wall (never recorded).
    pub preview: Option<Preview>,
}

/// A small JPEG of a frame's picture, checked like the frame, and its size.
#[derive(Debug, Clone)]
pub struct Preview {
    pub jpeg: Bytes,
    pub width: u16,
    pub height: u16,
}

/// What the operator sees about a camera.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CameraStatus {
    pub id: String,
    pub name: String,
    pub state: CameraState,
    pub since_us: i64,
    pub detail: String,
    pub address: String,
    pub width: u32,
    pub height: u32,
    /// Frames per second received, over the last second or so.
    pub fps: f64,
    /// Bits per second received.
    pub bitrate_bps: f64,
    pub frames_received: u64,
    /// Frames the agent numbered but never delivered (sequence gaps).
    pub frames_missed: u64,
    /// Frames that were not valid JPEG and were skipped.
    pub frames_bad: u64,
    /// Frames the recorder could not keep up with.
    pub frames_unrecorded: u64,
    /// Frames whose capture time was far from the panel's clock, timed on
    /// arrival instead.
    pub frames_retimed: u64,
    /// How far the camera's clock is ahead of the panel's (negative:
    /// behind), from its last frame with a believable time; network delay
    /// included.
    pub clock_skew_ms: Option<i64>,
    pub last_frame_us: Option<i64>,
    pub record_mode: RecordMode,
    /// A segment is open and being written.
    pub recording: bool,
    /// The live agent analyses its frames (motion, tamper) and takes
    /// `Detect`.
    pub analysed: bool,
    /// The scene moves now.
    pub motion: bool,
    /// The share of the picture moving in the newest frame, 0 to 1.
    pub motion_score: f64,
    /// The camera is tampered with now, and how (a tamper event kind).
    pub tamper: Option<crate::catalog::EventKind>,
    /// The agent's encoding settings as it reported them (`Encoding`);
    /// `None` until it does (older agents never do).
    pub encoding: Option<AgentEncoding>,
    /// What the agent's spool holds (its `Spool` reports); `None` for an
    /// agent without one, or older.
    pub spool: Option<AgentSpool>,
    /// Frames the agent sent from its spool on this connection, and written.
    pub backfilled: u64,
    /// The agent sends the camera's sound (`+audio`) on this connection.
    pub audio: bool,
    /// The recording server it is on, when not this panel (empty while it
    /// is connected here, or was last).
    pub server: String,
}

/// An agent's spool of frames not yet acknowledged (the protocol's `Spool`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AgentSpool {
    pub bytes: u64,
    pub frames: u32,
    /// Capture time of the oldest frame held; 0: none.
    pub oldest_us: u64,
    /// Frames still to come as backfill on this connection.
    pub backlog: u32,
    /// Frames the spool dropped unsent (it was full) since the agent started.
    pub dropped: u64,
}

impl AgentSpool {
    /// Live, but still sending what it held from before.
    pub fn backfilling(&self) -> bool {
        self.backlog > 0
    }
}

impl From<cctv_protocol::SpoolStatus> for AgentSpool {
    fn from(s: cctv_protocol::SpoolStatus) -> Self {
        Self {
            bytes: s.bytes,
            frames: s.frames,
            oldest_us: s.oldest_us,
            backlog: s.backlog,
            dropped: s.dropped,
        }
    }
}

/// What an agent reports of its encoding (the protocol's `Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AgentEncoding {
    /// JPEG quality 1 to 100; 0: the source's own JPEGs, as made.
    pub quality: u8,
    /// Frames per second asked of the source, in thousandths.
    pub fps_milli: u32,
    /// Pictures are scaled to at most this width; 0: not scaled.
    pub max_width: u32,
}

impl From<cctv_protocol::Encoding> for AgentEncoding {
    fn from(e: cctv_protocol::Encoding) -> Self {
        Self {
            quality: e.quality,
            fps_milli: e.fps_milli,
            max_width: e.max_width,
        }
    }
}

impl CameraStatus {
    pub fn from_row(row: &CameraRow) -> Self {
        Self {
            id: row.id.clone(),
            name: row.name.clone(),
            state: row.state,
            since_us: row.state_since_us,
            detail: row.state_detail.clone(),
            address: row.last_address.clone(),
            width: row.width as u32,
            height: row.height as u32,
            fps: 0.0,
            bitrate_bps: 0.0,
            frames_received: 0,
            frames_missed: 0,
            frames_bad: 0,
            frames_unrecorded: 0,
            frames_retimed: 0,
            clock_skew_ms: None,
            last_frame_us: None,
            record_mode: row.record_mode,
            recording: false,
            analysed: false,
            motion: false,
            motion_score: 0.0,
            tamper: None,
            encoding: None,
            spool: None,
            backfilled: 0,
            audio: false,
            server: String::new(),
        }
    }
}

/// Commands the engine sends down a live agent connection.
#[derive(Debug, Clone)]
pub enum LinkCommand {
    Send(cctv_protocol::Message),
    /// Close the connection with this reason (sent to the agent as `Reject`).
    Disconnect(String),
}

/// The live connection of a camera.
#[derive(Debug, Clone)]
pub struct Link {
    pub conn_id: u64,
    pub address: String,
    pub commands: mpsc::Sender<LinkCommand>,
}

/// Everything live about one camera.
#[derive(Debug)]
pub struct CameraSlot {
    pub id: String,
    pub status: watch::Sender<CameraStatus>,
    pub frames: watch::Sender<Option<Arc<LiveFrame>>>,
    pub link: Mutex<Option<Link>>,
    /// Whether frames should go to the recorder (mode is not `off`).
    pub record_enabled: AtomicBool,
    /// Whether the recorder keeps only events (mode `motion`).
    pub record_motion: AtomicBool,
    /// Frames the agent may forget, for whichever connection is current.
    pub acks: crate::acks::Acks,
    /// Frames recorded, by number and time: backfill skips them.
    pub recorded: Mutex<crate::acks::Recorded>,
    /// The first capture time of the last stretch the agent's spool
    /// dropped that was logged (an event per stretch).
    pub overflow_logged: Mutex<u64>,
    /// The camera's live sound: its level, and its packets for listeners.
    pub sound: crate::sound::Sound,
}

impl CameraSlot {
    pub fn status(&self) -> CameraStatus {
        self.status.borrow().clone()
    }

    /// Changes the status; watchers are woken only if something changed.
    pub fn update(&self, f: impl FnOnce(&mut CameraStatus)) {
        self.status.send_if_modified(|s| {
            let before = s.clone();
            f(s);
            *s != before
        });
    }

    pub fn link(&self) -> Option<Link> {
        crate::sync::lock(&self.link).clone()
    }
}

/// All cameras the engine knows, by id.
#[derive(Debug, Default)]
pub struct Registry {
    slots: Mutex<HashMap<String, Arc<CameraSlot>>>,
}

impl Registry {
    /// The slot for a camera, created from its catalog row on first use.
    pub fn slot(&self, row: &CameraRow) -> Arc<CameraSlot> {
        let mut slots = crate::sync::lock(&self.slots);
        slots
            .entry(row.id.clone())
            .or_insert_with(|| {
                let status = CameraStatus::from_row(row);
                Arc::new(CameraSlot {
                    id: row.id.clone(),
                    record_enabled: AtomicBool::new(status.record_mode != RecordMode::Off),
                    record_motion: AtomicBool::new(status.record_mode == RecordMode::Motion),
                    status: watch::channel(status).0,
                    frames: watch::channel(None).0,
                    link: Mutex::new(None),
                    acks: Default::default(),
                    recorded: Default::default(),
                    overflow_logged: Default::default(),
                    sound: Default::default(),
                })
            })
            .clone()
    }

    pub fn get(&self, id: &str) -> Option<Arc<CameraSlot>> {
        crate::sync::lock(&self.slots).get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<CameraSlot>> {
        let mut v: Vec<_> = crate::sync::lock(&self.slots).values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Makes `link` the camera's live connection, unless another one is live.
    pub fn claim(&self, slot: &CameraSlot, link: Link) -> Result<(), AlreadyLive> {
        let mut current = crate::sync::lock(&slot.link);
        if let Some(existing) = current.as_ref() {
            return Err(AlreadyLive {
                camera: slot.id.clone(),
                from: existing.address.clone(),
            });
        }
        *current = Some(link);
        Ok(())
    }

    /// Ends the camera's live connection if it is still `conn_id`.
    pub fn release(&self, slot: &CameraSlot, conn_id: u64) {
        let mut current = crate::sync::lock(&slot.link);
        if current.as_ref().is_some_and(|l| l.conn_id == conn_id) {
            *current = None;
        }
    }

    pub fn set_record_enabled(&self, slot: &CameraSlot, mode: RecordMode) {
        slot.record_enabled
            .store(mode != RecordMode::Off, Ordering::Release);
        slot.record_motion
            .store(mode == RecordMode::Motion, Ordering::Release);
        slot.update(|s| s.record_mode = mode);
    }
}

/// A camera refused a second connection while one is live.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("camera id {camera} is already live from {from}")]
pub struct AlreadyLive {
    pub camera: String,
    /// The address of the connection already there.
    pub from: String,
}

/// What the engine tells its clients (the GUI, logs) as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// A camera appeared, or its state or recording changed.
    Camera(String),
    /// A recording segment was closed; its catalog row is final.
    Recording { camera: String, id: i64 },
    /// An event (a state change, a pairing, ...) was written to the
    /// catalog's history; a timeline that shows `camera` is out of date.
    Logged { camera: String },
    /// A panorama attempt ended; its catalog row is final.
    Panorama { camera: String, id: i64 },
    /// An export's zip was written; its catalog row is final.
    Export { id: i64 },
    /// A transfer of an export was queued, started or tried; its catalog row
    /// says how it stands (pending, done, failed) and
    /// [`crate::Engine::dispatch_progress`] how far a running one has got.
    Dispatch { id: i64, export: i64 },
    /// A connection was refused (wrong secret, unknown camera, not TLS, ...).
    Refused {
        address: String,
        claimed: Option<String>,
        reason: String,
    },
    /// Something an operator should read.
    Warning {
        camera: Option<String>,
        message: String,
    },
}
