//! One agent connection: handshake (`Hello` within a time limit), claim of
//! the camera id, then frames into the live channel and the recorder, with
//! the watchdog that turns a silent camera `stalled` and then `offline`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cctv_protocol::{Codec, CodecError, Hello, Limits, Message, Welcome};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::codec::Framed;
use tracing::{debug, info, warn};

use crate::catalog::{CameraSettings, CameraState, EventKind};
use crate::engine::Shared;
use crate::live::{CameraSlot, EngineEvent, Link, LinkCommand, LiveFrame};
use crate::recorder::camera::RecorderMsg;
use crate::time::now_us;

type Conn = Framed<TcpStream, Codec>;

pub async fn handle(shared: Arc<Shared>, stream: TcpStream, addr: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let limits = Limits {
        max_frame_bytes: shared.config.max_frame_bytes,
        ..Limits::default()
    };
    let mut conn = Framed::new(stream, Codec::new(limits));
    let handshake = Duration::from_millis(shared.config.handshake_timeout_ms);
    let hello = match timeout(handshake, conn.next()).await {
        Ok(Some(Ok(Message::Hello(h)))) => h,
        Err(_) => {
            warn!(%addr, "dropped a connection: no Hello within {:.1} s", handshake.as_secs_f64());
            return;
        }
        Ok(None) => {
            debug!(%addr, "a connection closed before saying Hello");
            return;
        }
        Ok(Some(Err(e))) => {
            warn!(%addr, "dropped a connection: {e}");
            return;
        }
        Ok(Some(Ok(other))) => {
            warn!(%addr, "dropped a connection: it sent {} before Hello", other.message_type());
            reject(&mut conn, "the first message must be Hello").await;
            return;
        }
    };
    let Some((slot, mut commands, conn_id)) = admit(&shared, &mut conn, &hello, addr).await else {
        return;
    };
    let recorder = shared.recorder_for(&slot);
    let reason = Session::new(&shared, &slot, recorder.clone())
        .run(&mut conn, &mut commands)
        .await;
    shared.registry.release(&slot, conn_id);
    let _ = recorder
        .send(RecorderMsg::Close {
            reason: reason.clone(),
        })
        .await;
    set_state(&shared, &slot, CameraState::Offline, &reason).await;
    slot.update(|s| {
        s.fps = 0.0;
        s.bitrate_bps = 0.0;
    });
    info!(camera = %slot.id, %addr, "camera offline: {reason}");
}

async fn reject(conn: &mut Conn, reason: &str) {
    let _ = timeout(
        Duration::from_secs(1),
        conn.send(Message::Reject {
            reason: reason.into(),
        }),
    )
    .await;
}

/// Registers the camera, claims its id, welcomes it. `None` if refused.
async fn admit(
    shared: &Arc<Shared>,
    conn: &mut Conn,
    hello: &Hello,
    addr: SocketAddr,
) -> Option<(Arc<CameraSlot>, mpsc::Receiver<LinkCommand>, u64)> {
    let now = now_us();
    let settings = CameraSettings {
        id: hello.camera_id.clone(),
        name: if hello.name.trim().is_empty() {
            hello.camera_id.clone()
        } else {
            hello.name.clone()
        },
        address: addr.to_string(),
        agent_version: hello.agent_version.clone(),
        width: hello.width,
        height: hello.height,
        fps_milli: hello.fps_milli,
    };
    let row = match shared
        .catalog
        .register_camera(&settings, shared.default_mode, now)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            warn!(camera = %hello.camera_id, %addr, "cannot register the camera: {e}");
            reject(
                conn,
                "the panel cannot register the camera (database error)",
            )
            .await;
            return None;
        }
    };
    let slot = shared.registry.slot(&row);
    let conn_id = shared.next_conn_id();
    let (tx, rx) = mpsc::channel(16);
    let link = Link {
        conn_id,
        address: addr.to_string(),
        commands: tx,
    };
    if let Err(existing) = shared.registry.claim(&slot, link) {
        let reason = format!(
            "camera id {} is already live from {existing}",
            hello.camera_id
        );
        warn!(camera = %hello.camera_id, %addr, "refused a second connection: {reason}");
        let _ = shared
            .catalog
            .add_event(
                &slot.id,
                EventKind::Rejected,
                now,
                &format!("{reason}; attempt from {addr}"),
            )
            .await;
        reject(conn, &reason).await;
        return None;
    }
    let welcome = Message::Welcome(Welcome {
        panel_version: concat!("panel ", env!("CARGO_PKG_VERSION")).into(),
        heartbeat_ms: shared.config.heartbeat_ms,
    });
    if let Err(e) = conn.send(welcome).await {
        shared.registry.release(&slot, conn_id);
        warn!(camera = %slot.id, %addr, "lost the camera during the handshake: {e}");
        return None;
    }
    slot.update(|s| {
        s.name = row.name.clone();
        s.address = addr.to_string();
        s.width = hello.width;
        s.height = hello.height;
    });
    set_state(
        shared,
        &slot,
        CameraState::Live,
        &format!("connected from {addr}"),
    )
    .await;
    info!(camera = %slot.id, %addr, name = %row.name, "camera live");
    Some((slot, rx, conn_id))
}

/// Records a state change in the catalog and the live status, and tells clients.
async fn set_state(shared: &Shared, slot: &CameraSlot, state: CameraState, detail: &str) {
    let now = now_us();
    if let Err(e) = shared.catalog.set_state(&slot.id, state, now, detail).await {
        warn!(camera = %slot.id, "cannot record a state change: {e}");
    }
    slot.update(|s| {
        s.state = state;
        s.since_us = now;
        s.detail = detail.to_string();
    });
    let _ = shared.events.send(EngineEvent::Camera(slot.id.clone()));
}

/// Counters of a connection, published to the status a few times a second.
struct Session<'a> {
    shared: &'a Arc<Shared>,
    slot: &'a Arc<CameraSlot>,
    recorder: mpsc::Sender<RecorderMsg>,
    last_rx: Instant,
    last_frame: Instant,
    last_frame_us: Option<i64>,
    stalled: bool,
    last_seq: Option<u64>,
    received: u64,
    missed: u64,
    bad: u64,
    unrecorded: u64,
    window_start: Instant,
    window_frames: u64,
    window_bytes: u64,
}

impl<'a> Session<'a> {
    fn new(
        shared: &'a Arc<Shared>,
        slot: &'a Arc<CameraSlot>,
        recorder: mpsc::Sender<RecorderMsg>,
    ) -> Self {
        let now = Instant::now();
        let s = slot.status();
        Self {
            shared,
            slot,
            recorder,
            last_rx: now,
            last_frame: now,
            last_frame_us: s.last_frame_us,
            stalled: false,
            last_seq: None,
            received: s.frames_received,
            missed: s.frames_missed,
            bad: s.frames_bad,
            unrecorded: s.frames_unrecorded,
            window_start: now,
            window_frames: 0,
            window_bytes: 0,
        }
    }

    /// Runs until the connection ends; returns why, in words.
    async fn run(mut self, conn: &mut Conn, commands: &mut mpsc::Receiver<LinkCommand>) -> String {
        let heartbeat = self.shared.config.heartbeat();
        let offline_after = heartbeat * 2;
        let stall_after = Duration::from_millis(self.shared.config.stall_after_ms);
        let mut tick = tokio::time::interval(Duration::from_millis(100).min(heartbeat / 4));
        loop {
            tokio::select! {
                biased;
                _ = self.shared.shutdown.cancelled() => return "panel stopping".into(),
                cmd = commands.recv() => match cmd {
                    Some(LinkCommand::Send(m)) => {
                        if let Err(e) = conn.send(m).await {
                            return format!("connection lost: {e}");
                        }
                    }
                    Some(LinkCommand::Disconnect(reason)) => {
                        reject(conn, &reason).await;
                        return reason;
                    }
                    None => {}
                },
                msg = conn.next() => {
                    self.last_rx = Instant::now();
                    match msg {
                        Some(Ok(Message::Frame(f))) => self.frame(f).await,
                        Some(Ok(Message::Heartbeat(_))) => {}
                        Some(Ok(Message::Goodbye { reason })) => return format!("agent stopped: {reason}"),
                        Some(Ok(other)) => {
                            let why = format!("protocol error: unexpected {}", other.message_type());
                            warn!(camera = %self.slot.id, "{why}");
                            return why;
                        }
                        Some(Err(CodecError::Decode(e))) => {
                            let why = format!("protocol error: {e}");
                            warn!(camera = %self.slot.id, "{why}");
                            return why;
                        }
                        Some(Err(e)) => return format!("connection lost: {e}"),
                        None => return "connection lost: closed without goodbye".into(),
                    }
                }
                _ = tick.tick() => {
                    let silent = self.last_rx.elapsed();
                    if silent > offline_after {
                        self.publish();
                        return format!("heartbeat timeout: nothing received for {:.1} s", silent.as_secs_f64());
                    }
                    if !self.stalled && self.last_frame.elapsed() > stall_after {
                        self.stalled = true;
                        let why = format!("no frame for {:.0} s", stall_after.as_secs_f64());
                        set_state(self.shared, self.slot, CameraState::Stalled, &why).await;
                        warn!(camera = %self.slot.id, "camera stalled: {why}");
                    }
                    self.publish();
                }
            }
        }
    }

    async fn frame(&mut self, f: cctv_protocol::Frame) {
        let Some((width, height)) = crate::jpeg::dimensions(&f.jpeg) else {
            self.bad += 1;
            if self.bad.is_power_of_two() {
                warn!(camera = %self.slot.id, seq = f.seq, bad = self.bad, "skipped a frame that is not a valid JPEG");
            }
            return;
        };
        if let Some(prev) = self.last_seq
            && f.seq > prev + 1
        {
            self.missed += f.seq - prev - 1;
        }
        self.last_seq = Some(f.seq);
        self.received += 1;
        self.window_frames += 1;
        self.window_bytes += f.jpeg.len() as u64;
        self.last_frame = Instant::now();
        let live = Arc::new(LiveFrame {
            seq: f.seq,
            capture_us: f.capture_us as i64,
            received_us: now_us(),
            width,
            height,
            jpeg: f.jpeg,
        });
        self.last_frame_us = Some(live.capture_us);
        self.slot.frames.send_replace(Some(live.clone()));
        if self
            .slot
            .record_enabled
            .load(std::sync::atomic::Ordering::Acquire)
            && self.recorder.try_send(RecorderMsg::Frame(live)).is_err()
        {
            self.unrecorded += 1;
            if self.unrecorded.is_power_of_two() {
                warn!(camera = %self.slot.id, unrecorded = self.unrecorded, "the recorder is behind: frames not recorded");
            }
        }
        if self.stalled {
            self.stalled = false;
            set_state(self.shared, self.slot, CameraState::Live, "frames resumed").await;
        }
    }

    /// Puts the counters and rates into the camera's status.
    fn publish(&mut self) {
        let elapsed = self.window_start.elapsed().as_secs_f64();
        let rates = (elapsed >= 1.0).then(|| {
            let r = (
                self.window_frames as f64 / elapsed,
                self.window_bytes as f64 * 8.0 / elapsed,
            );
            self.window_start = Instant::now();
            self.window_frames = 0;
            self.window_bytes = 0;
            r
        });
        self.slot.update(|s| {
            if let Some((fps, bps)) = rates {
                s.fps = fps;
                s.bitrate_bps = bps;
            }
            s.frames_received = self.received;
            s.frames_missed = self.missed;
            s.frames_bad = self.bad;
            s.frames_unrecorded = self.unrecorded;
            s.last_frame_us = self.last_frame_us;
        });
    }
}
