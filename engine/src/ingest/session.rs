//! A live camera connection: frames into the live channel and the
//! recorder, commands down to the agent, the counters and rates in the
//! camera's status, and the watchdog that turns a silent camera `stalled`
//! and then ends the connection.
//!
//! One rule for bad pictures: a `Frame` whose picture is empty, not a JPEG,
//! cut short (no end marker) or over `max_pixels` is skipped and counted in
//! `frames_bad`; the connection stays open, the tile keeps its last picture
//! and the recording its last frame. Bad pictures are logged at a bounded
//! rate: the first at once, then one line per [`BAD_LOG_EVERY`] with the
//! count since the last line. (A message that is not a well-formed `Frame`
//! at all is a protocol error and closes the connection.)
//!
//! Numbers from the camera are judged, never trusted: a capture time
//! further than `max_clock_skew_secs` from the panel's clock (one bad clock
//! reading, or 2^63) is replaced by the arrival time and counted in
//! `frames_retimed`; sequence numbers may jump or restart (gaps are counted,
//! saturating); the camera's clock skew is shown from its believable frames.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cctv_protocol::{CodecError, Message};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tracing::warn;

use super::IngestCtx;
use super::backfill::Backfill;
use super::conn::{Conn, reject, set_state};
use super::scene::Scene;
use crate::catalog::CameraState;
use crate::catalog::EventKind;
use crate::live::{CameraSlot, LinkCommand, LiveFrame, Preview};
use crate::recorder::camera::RecorderMsg;
use crate::recorder::preroll::NOT_YET_ANALYSED;
use crate::time::now_us;

/// At most one log line about bad pictures per camera this often.
pub const BAD_LOG_EVERY: Duration = Duration::from_secs(10);
/// How often a session checks its camera, acknowledges and counts.
const TICK: Duration = Duration::from_millis(250);

/// One log line at once, then at most one per [`BAD_LOG_EVERY`].
#[derive(Default)]
struct LogPace(Option<Instant>);

impl LogPace {
    /// Whether a line may be logged now (and, if so, that one is).
    fn due(&mut self) -> bool {
        let due = self.0.is_none_or(|at| at.elapsed() >= BAD_LOG_EVERY);
        if due {
            self.0 = Some(Instant::now());
        }
        due
    }
}

/// Counters of a connection, published to the status a few times a second.
pub(super) struct Session<'a> {
    ctx: &'a Arc<IngestCtx>,
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
    /// When bad pictures were last logged, and how many since.
    bad_logged: LogPace,
    bad_unlogged: u64,
    unrecorded: u64,
    retimed: u64,
    retimed_logged: LogPace,
    preview_logged: LogPace,
    skew_ms: Option<i64>,
    window_start: Instant,
    window_frames: u64,
    window_bytes: u64,
    /// The highest sequence number seen, and whether that frame was sent
    /// at the idle rate (the frames before it left out on purpose).
    newest: Option<(u64, bool)>,
    scene: Scene,
    /// The newest analysed frame's motion score, 0 to 1.
    motion_score: f64,
    /// The agent keeps a spool: it is sent `Ack`s.
    agent_spool: bool,
    /// The agent analyses its frames (its `Hello` says `+analysis`).
    agent_analyses: bool,
    backfill: Backfill,
}

impl<'a> Session<'a> {
    pub(super) fn new(
        ctx: &'a Arc<IngestCtx>,
        slot: &'a Arc<CameraSlot>,
        recorder: mpsc::Sender<RecorderMsg>,
        agent_version: &str,
    ) -> Self {
        use cctv_protocol::{FEATURE_ANALYSIS, FEATURE_SPOOL, has_feature};
        let now = Instant::now();
        let s = slot.status();
        Self {
            ctx,
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
            bad_logged: LogPace::default(),
            bad_unlogged: 0,
            unrecorded: s.frames_unrecorded,
            retimed: s.frames_retimed,
            retimed_logged: LogPace::default(),
            preview_logged: LogPace::default(),
            skew_ms: s.clock_skew_ms,
            window_start: now,
            window_frames: 0,
            window_bytes: 0,
            newest: None,
            scene: Scene::default(),
            motion_score: 0.0,
            agent_spool: has_feature(agent_version, FEATURE_SPOOL),
            agent_analyses: has_feature(agent_version, FEATURE_ANALYSIS),
            backfill: Backfill::default(),
        }
    }

    /// Runs until the connection ends; returns why, in words. The status
    /// keeps the final counters, up to the last frame.
    pub(super) async fn run(
        mut self,
        conn: &mut Conn,
        commands: &mut mpsc::Receiver<LinkCommand>,
    ) -> String {
        let why = self.serve(conn, commands).await;
        self.backfill.end(self.ctx, self.slot).await;
        let end_us = self.last_frame_us.unwrap_or_else(now_us);
        self.scene
            .end(&self.slot.id, end_us, &why, &self.ctx.writes);
        self.motion_score = 0.0;
        self.slot.sound.set_on(false);
        self.slot.update(|s| {
            s.analysed = false;
            s.motion = false;
            s.tamper = None;
            s.audio = false;
        });
        self.publish();
        why
    }

    async fn serve(
        &mut self,
        conn: &mut Conn,
        commands: &mut mpsc::Receiver<LinkCommand>,
    ) -> String {
        let heartbeat = self.ctx.limits.heartbeat();
        let offline_after = heartbeat * 2;
        let stall_after = Duration::from_millis(self.ctx.limits.stall_after_ms);
        // Stall and heartbeat checks, acknowledgements and counters: a quarter
        // of a second is soon enough for each, and every session ticks on
        // the same instants.
        let mut tick = crate::time::aligned_interval(TICK.min(heartbeat / 4));
        let mut last_ping = Instant::now();
        // Made once: a frame's turn of the loop does not build it again.
        let ctx = self.ctx;
        let stopping = ctx.shutdown.cancelled();
        tokio::pin!(stopping);
        loop {
            tokio::select! {
                biased;
                _ = &mut stopping => return "panel stopping".into(),
                cmd = commands.recv() => match cmd {
                    Some(LinkCommand::Send(m)) => {
                        if let Err(e) = conn.send(m).await {
                            return super::lost_words(&e);
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
                        Some(Ok(Message::Backfill(f))) => {
                            self.last_frame = Instant::now();
                            if let Err(why) = self.backfill.frame(self.ctx, self.slot, f).await {
                                warn!(camera = %self.slot.id, "{why}");
                            }
                        }
                        Some(Ok(Message::Spool(s))) => self.spool(s).await,
                        Some(Ok(Message::Audio(a))) => self.audio(a),
                        Some(Ok(Message::Heartbeat(_))) => {}
                        Some(Ok(Message::Encoding(e))) => {
                            self.slot.update(|s| s.encoding = Some(e.into()));
                            let _ = self
                                .ctx
                                .events
                                .send(crate::live::EngineEvent::Camera(self.slot.id.clone()));
                        }
                        Some(Ok(Message::Goodbye { reason })) => {
                            return format!("agent stopped: {}", cctv_protocol::printable(&reason));
                        }
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
                        Some(Err(e)) => return super::lost_words(&e),
                        None => return "connection lost: closed without goodbye".into(),
                    }
                }
                _ = tick.tick() => {
                    let silent = self.last_rx.elapsed();
                    if silent > offline_after {
                        return format!("heartbeat timeout: nothing received for {:.1} s", silent.as_secs_f64());
                    }
                    if !self.stalled && self.last_frame.elapsed() > stall_after {
                        self.stalled = true;
                        let why = format!("no frame for {:.0} s", stall_after.as_secs_f64());
                        set_state(self.ctx, self.slot, CameraState::Stalled, &why);
                        warn!(camera = %self.slot.id, "camera stalled: {why}");
                    }
                    self.backfill.tick(self.ctx, self.slot).await;
                    if let Err(e) = self.acknowledge(conn).await {
                        return super::lost_words(&e);
                    }
                    // An agent with a spool learns from these that the
                    // route to the panel is alive.
                    if self.agent_spool && last_ping.elapsed() >= heartbeat {
                        last_ping = Instant::now();
                        if let Err(e) = conn.send(Message::Ping { nonce: 0 }).await {
                            return super::lost_words(&e);
                        }
                    }
                    self.publish();
                }
            }
        }
    }

    async fn frame(&mut self, f: cctv_protocol::Frame) {
        // The header is read before anything is decoded; a frame that is not
        // a JPEG, or claims more pixels than allowed, is counted and skipped:
        // the tile keeps its last picture and the recording its last frame.
        // A bad picture was still delivered: it is no sequence gap.
        let preroll = self.sequence(&f);
        let checked = crate::jpeg::check(&f.jpeg, self.ctx.limits.max_pixels);
        let (width, height) = match checked {
            Ok(size) => size,
            Err(why) => {
                // It will not get better: the agent may forget it.
                self.slot.acks.add(f.seq);
                self.bad_picture(f.seq, &why);
                return;
            }
        };
        self.received += 1;
        self.window_frames += 1;
        self.window_bytes += f.jpeg.len() as u64;
        self.last_frame = Instant::now();
        let received_us = now_us();
        let capture_us = self.judge_time(f.capture_us, received_us, f.seq);
        let preview = f.preview.and_then(|p| self.preview(p, (width, height)));
        let analysed = f.analysis;
        let live = Arc::new(LiveFrame {
            seq: f.seq,
            capture_us,
            received_us,
            width,
            height,
            jpeg: f.jpeg,
            analysis: analysed.or(self.agent_analyses.then_some(NOT_YET_ANALYSED)),
            preview,
        });
        // A pre-roll frame is for the recording only: the wall and the
        // events have moved past it.
        if !preroll {
            self.last_frame_us = Some(live.capture_us);
            self.slot.frames.send_replace(Some(live.clone()));
            if let Some(a) = &analysed {
                self.analysed(&live, a);
            }
        }
        if self
            .slot
            .record_enabled
            .load(std::sync::atomic::Ordering::Acquire)
        {
            self.record(live);
        } else {
            self.slot.acks.add(live.seq);
        }
        if self.stalled {
            self.stalled = false;
            set_state(self.ctx, self.slot, CameraState::Live, "frames resumed");
        }
    }

    /// Counts the frames the agent numbered but never sent (not those it
    /// left out while idle); true if `f` is older than one already seen:
    /// an event's pre-roll.
    fn sequence(&mut self, f: &cctv_protocol::Frame) -> bool {
        let idle = f.analysis.is_some_and(|a| a.idle);
        if f.analysis.is_some()
            && let Some((newest, _)) = self.newest
            && f.seq < newest
        {
            return true;
        }
        if let Some(prev) = self.last_seq
            && f.seq > prev.saturating_add(1)
            && !idle
            && !self.newest.is_some_and(|(_, was_idle)| was_idle)
        {
            self.missed = self.missed.saturating_add(f.seq - prev - 1);
        }
        self.last_seq = Some(f.seq);
        self.newest = Some((f.seq, idle));
        false
    }

    /// The agent's analysis of a current frame: motion and tamper spans,
    /// and the camera's status.
    fn analysed(&mut self, f: &LiveFrame, a: &cctv_protocol::FrameAnalysis) {
        // The score goes out with the other counters (`publish`); a change
        // of motion or tamper (a span starting or ending) at once.
        self.motion_score = f64::from(a.motion_score) / f64::from(cctv_protocol::MAX_MOTION_SCORE);
        if self.scene.frame(&self.slot.id, f, a, &self.ctx.writes) {
            self.slot.update(|s| {
                s.motion = a.motion;
                s.tamper = a.tamper.map(crate::catalog::EventKind::of_tamper);
            });
            let _ = self
                .ctx
                .events
                .send(crate::live::EngineEvent::Camera(self.slot.id.clone()));
        }
    }

    /// The frame's capture time if it is believable (within the allowed skew
    /// of the panel's clock), else its arrival time, counted and logged at
    /// a bounded rate.
    fn judge_time(&mut self, claimed_us: u64, received_us: i64, seq: u64) -> i64 {
        let believable = i64::try_from(claimed_us).ok().filter(|c| {
            c.checked_sub(received_us)
                .is_some_and(|skew| skew.abs() <= self.ctx.limits.max_clock_skew_us)
        });
        if let Some(capture_us) = believable {
            self.skew_ms = Some((capture_us - received_us) / 1000);
            return capture_us;
        }
        self.retimed += 1;
        if self.retimed_logged.due() {
            warn!(
                camera = %self.slot.id,
                seq,
                claimed_us,
                retimed = self.retimed,
                "a capture time far from the panel's clock: the frame is timed on arrival"
            );
        }
        received_us
    }

    /// A packet of the camera's sound: timed like a frame, then to the
    /// meter and listeners, and to the recorder (a full queue costs it,
    /// uncounted: the frames' count says the recorder is behind).
    fn audio(&mut self, mut a: cctv_protocol::AudioPacket) {
        if !self.slot.sound.is_on() {
            return; // not announced: an agent that ignores the protocol
        }
        let received_us = now_us();
        let duration_us = i64::from(a.samples) * 1_000_000 / i64::from(cctv_protocol::AUDIO_RATE);
        let believable = i64::try_from(a.capture_us).ok().filter(|c| {
            c.checked_sub(received_us)
                .is_some_and(|skew| skew.abs() <= self.ctx.limits.max_clock_skew_us)
        });
        a.capture_us = believable.unwrap_or(received_us - duration_us).max(0) as u64;
        let a = Arc::new(a);
        self.slot.sound.heard(a.clone(), received_us);
        if self
            .slot
            .record_enabled
            .load(std::sync::atomic::Ordering::Acquire)
        {
            let _ = self.recorder.try_send(RecorderMsg::Audio(a));
        }
    }

    /// Hands the frame to the camera's recorder. A full queue costs the frame
    /// (counted); a recorder that stopped is started again, and told.
    fn record(&mut self, live: Arc<LiveFrame>) {
        let frame = match self.recorder.try_send(RecorderMsg::Frame(live)) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(_)) => None,
            Err(mpsc::error::TrySendError::Closed(RecorderMsg::Frame(f))) => Some(f),
            Err(mpsc::error::TrySendError::Closed(_)) => None,
        };
        if let Some(frame) = frame {
            self.recorder = self.ctx.recorders.for_camera(self.slot);
            if self.recorder.try_send(RecorderMsg::Frame(frame)).is_ok() {
                return;
            }
        }
        self.unrecorded += 1;
        if self.unrecorded.is_power_of_two() {
            warn!(camera = %self.slot.id, unrecorded = self.unrecorded, "the recorder is behind: frames not recorded");
        }
    }

    /// The agent's preview of a frame of `frame` size, if it is a JPEG no
    /// larger than the frame; else the wall decodes the frame itself.
    fn preview(&mut self, jpeg: bytes::Bytes, frame: (u16, u16)) -> Option<Preview> {
        let checked = crate::jpeg::check(&jpeg, self.ctx.limits.max_pixels);
        match checked {
            Ok((width, height)) if width <= frame.0 && height <= frame.1 => Some(Preview {
                jpeg,
                width,
                height,
            }),
            other => {
                if self.preview_logged.due() {
                    let why = match other {
                        Err(e) => e.to_string(),
                        Ok((w, h)) => {
                            format!("{w}x{h} is larger than its {}x{} frame", frame.0, frame.1)
                        }
                    };
                    warn!(camera = %self.slot.id, "ignored a frame's preview: {why}");
                }
                None
            }
        }
    }

    /// Counts a bad picture; logs it unless one was logged lately.
    fn bad_picture(&mut self, seq: u64, why: &crate::jpeg::BadPicture) {
        self.bad += 1;
        self.bad_unlogged += 1;
        if self.bad_logged.due() {
            warn!(
                camera = %self.slot.id,
                seq,
                skipped = self.bad_unlogged,
                total_bad = self.bad,
                "skipped a bad picture: {why}"
            );
            self.bad_unlogged = 0;
        }
    }

    /// Tells the agent which frames it may forget, if it keeps a spool.
    async fn acknowledge(&mut self, conn: &mut Conn) -> Result<(), CodecError> {
        if !self.agent_spool {
            return Ok(());
        }
        for ranges in self.slot.acks.take_chunks(cctv_protocol::MAX_ACK_RANGES) {
            conn.send(Message::Ack(cctv_protocol::Ack { ranges }))
                .await?;
        }
        Ok(())
    }

    /// The agent's spool: shown, and a stretch it dropped logged once, as
    /// a gap with its reason.
    async fn spool(&mut self, s: cctv_protocol::SpoolStatus) {
        self.slot.update(|st| st.spool = Some(s.into()));
        if s.dropped == 0 || s.dropped_from_us == 0 {
            return;
        }
        {
            let mut logged = crate::sync::lock(&self.slot.overflow_logged);
            if *logged == s.dropped_from_us {
                return;
            }
            *logged = s.dropped_from_us;
        }
        let (from, to) = (s.dropped_from_us as i64, s.dropped_to_us as i64);
        // Logged before this panel started?
        if let Ok(true) = self
            .ctx
            .catalog
            .has_event(&self.slot.id, EventKind::SpoolOverflow, from)
            .await
        {
            return;
        }
        let detail = format!(
            "the agent's spool was full: frames captured {} to {} were dropped before \
             the panel acknowledged them ({} dropped since the agent started)",
            crate::time::local(from),
            crate::time::local(to),
            s.dropped
        );
        warn!(camera = %self.slot.id, "{detail}");
        super::backfill::span_event(
            self.ctx,
            &self.slot.id,
            EventKind::SpoolOverflow,
            from,
            to,
            detail,
        );
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
            s.frames_retimed = self.retimed;
            s.clock_skew_ms = self.skew_ms;
            s.last_frame_us = self.last_frame_us;
            s.motion_score = self.motion_score;
            s.backfilled = self.backfill.written;
        });
    }
}
