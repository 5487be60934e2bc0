//! The capture thread: grabs frames from the source at its pace, limits the
//! frame rate, encodes, keeps each frame in the spool (when there is one)
//! and queues it for the link. While the panel is unreachable it goes on
//! capturing into the spool, every frame at the full rate and unanalysed
//! (the pacing by the scene is for the live link). Without a spool it
//! keeps capturing (so the device stays warm and sequence numbers stay
//! true) but skips encoding, and reports what it dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cctv_protocol::{Frame, FrameAnalysis, MAX_MOTION_SCORE};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::analysis::{ANALYSIS_WIDTH, Analyzer, Gray, GrayDecoder};
use crate::config::{AgentConfig, AnalysisConfig};
use crate::encode::{EncodeSettings, FrameEncoder};
use crate::pace::{PaceSettings, Pacer};
use crate::source::{self, Picture, Source, SourceError, SourceInfo};

/// State the capture thread and the link share.
#[derive(Debug, Default)]
pub struct Shared {
    /// True while the panel has welcomed us.
    pub connected: AtomicBool,
    /// The source's picture size, for `Hello`.
    pub source_size: std::sync::Mutex<(u32, u32)>,
    /// The panel takes frame analysis (its `Welcome` says `+analysis`).
    pub panel_analysis: AtomicBool,
    /// The panel reads `Encoding` (its `Welcome` says `+encoding`).
    pub panel_encoding: AtomicBool,
    /// The panel takes previews (its `Welcome` says `+preview`).
    pub panel_preview: AtomicBool,
    /// The camera's own JPEGs go out unchanged (no quality applies).
    pub passthrough: AtomicBool,
}

/// Frames dropped in one stretch, for one log line.
#[derive(Debug, Default)]
struct DropRun {
    count: u64,
    first_us: u64,
    last_us: u64,
}

impl DropRun {
    fn add(&mut self, us: u64) {
        if self.count == 0 {
            self.first_us = us;
        }
        self.count += 1;
        self.last_us = us;
    }

    fn span_secs(&self) -> f64 {
        self.last_us.saturating_sub(self.first_us) as f64 / 1e6
    }
}

/// Decides which frames of a source pass a frame rate limit.
#[derive(Debug, Default)]
pub struct RateLimiter {
    next_due: Option<Instant>,
}

impl RateLimiter {
    /// `source_fps` is how often frames arrive; half a source period of
    /// tolerance keeps jitter from turning 10 -> 5 fps into 3.3 fps.
    pub fn admit(&mut self, now: Instant, target_fps: f64, source_fps: f64) -> bool {
        if target_fps >= source_fps * 0.999 {
            self.next_due = None;
            return true;
        }
        let period = Duration::from_secs_f64(1.0 / target_fps);
        let tolerance = Duration::from_secs_f64(0.5 / source_fps);
        match self.next_due {
            Some(due) if now + tolerance < due => false,
            Some(due) if now < due + period => {
                self.next_due = Some(due + period);
                true
            }
            _ => {
                self.next_due = Some(now + period);
                true
            }
        }
    }
}

pub struct Capture {
    pub cfg: Arc<AgentConfig>,
    pub spool: Option<crate::spool::Shared>,
    pub log: Option<Arc<crate::framelog::FrameLog>>,
    pub shared: Arc<Shared>,
    pub settings: watch::Receiver<EncodeSettings>,
    /// Analysis settings, changed live by the panel (`Detect`).
    pub analysis: watch::Receiver<Option<AnalysisConfig>>,
    pub frames: mpsc::Sender<Frame>,
    pub shutdown: CancellationToken,
    /// Set by a file source as it plays; its soundtrack follows it.
    pub clock: source::PlayClock,
}

/// Frames not sent, and how they are told: once when the panel is back,
/// at most every 5 s while the network is slower than the camera.
struct Drops {
    offline: DropRun,
    queue_full: DropRun,
    last_queue_report: Instant,
    /// The camera's own JPEG is sent unchanged (said when it changes).
    passthrough: bool,
}

impl Default for Drops {
    fn default() -> Self {
        Self {
            offline: DropRun::default(),
            queue_full: DropRun::default(),
            last_queue_report: Instant::now(),
            passthrough: false,
        }
    }
}

impl Drops {
    fn back_online(&mut self) {
        if self.offline.count > 0 {
            info!(
                dropped = self.offline.count,
                "dropped {} frames over {:.1} s while the panel was unreachable",
                self.offline.count,
                self.offline.span_secs()
            );
            self.offline = DropRun::default();
        }
    }

    fn report_queue(&mut self) {
        if self.queue_full.count > 0 && self.last_queue_report.elapsed() > Duration::from_secs(5) {
            warn!(
                dropped = self.queue_full.count,
                "dropped {} frames over {:.1} s: the network is slower than the camera",
                self.queue_full.count,
                self.queue_full.span_secs()
            );
            self.queue_full = DropRun::default();
            self.last_queue_report = Instant::now();
        }
    }

    fn note_passthrough(&mut self, passthrough: bool) {
        if passthrough != self.passthrough {
            self.passthrough = passthrough;
            info!(
                "{}",
                if passthrough {
                    "sending the camera's own JPEG unchanged"
                } else {
                    "encoding frames (resize, overlay or quality asked for)"
                }
            );
        }
    }
}

/// What the capture loop analyses each frame with, while the panel takes it.
pub struct Analysing {
    analyzer: Analyzer,
    decoder: Option<GrayDecoder>,
    pacer: Pacer,
    pace: PaceSettings,
    /// Frames to send now, reused.
    out: Vec<Frame>,
}

impl Analysing {
    pub fn new(cfg: &AnalysisConfig) -> Self {
        Self {
            analyzer: Analyzer::new(cfg.motion.clone()),
            decoder: GrayDecoder::new()
                .map_err(|e| warn!("cannot analyse the camera's own JPEG: {e}"))
                .ok(),
            pacer: Pacer::new(cfg.pace),
            pace: cfg.pace,
            out: Vec::new(),
        }
    }

    /// A grey copy of `picture` at the analysis size, if it can be had.
    fn gray(&mut self, picture: &Picture) -> Option<Gray> {
        match picture {
            Picture::Bgr(bgr) => Some(Gray::from_bgr(bgr, ANALYSIS_WIDTH)),
            Picture::Jpeg { data, .. } => {
                let decoder = self.decoder.as_mut()?;
                decoder
                    .decode(data, ANALYSIS_WIDTH)
                    .map_err(|e| warn!("cannot analyse a frame: {e}"))
                    .ok()
            }
        }
    }

    fn analyze(&mut self, gray: &Gray, capture_us: u64) -> FrameAnalysis {
        let a = self.analyzer.analyze(gray, capture_us as i64);
        FrameAnalysis {
            motion_score: (a.motion_score.clamp(0.0, 1.0) * f32::from(MAX_MOTION_SCORE)).round()
                as u16,
            motion: a.motion,
            tamper: a.tamper,
            ..Default::default()
        }
    }

    /// The panel changed the settings: the scene learnt so far stays.
    fn reconfigure(&mut self, cfg: &AnalysisConfig) {
        self.analyzer.set_motion_settings(cfg.motion.clone());
        self.pace = cfg.pace;
        self.pacer.set_settings(cfg.pace);
    }

    /// A new connection: frames held for the last one are stale.
    fn reconnected(&mut self) {
        self.pacer = Pacer::new(self.pace);
    }
}

/// The grabbed picture as JPEG with its analysis (when asked for), or
/// nothing (logged) when it cannot be had.
fn encode(
    source: &mut dyn Source,
    encoder: &mut FrameEncoder,
    settings: &EncodeSettings,
    capture_us: u64,
    seq: u64,
    analysing: Option<&mut Analysing>,
    preview_width: u32,
) -> Option<(crate::encode::Encoded, Option<FrameAnalysis>)> {
    let picture = match source.retrieve() {
        Ok(p) => p,
        Err(e) => {
            warn!("{e}");
            return None;
        }
    };
    let analysis = analysing.and_then(|a| {
        let gray = a.gray(&picture)?;
        Some(a.analyze(&gray, capture_us))
    });
    match encoder.encode(picture, settings, capture_us, preview_width) {
        Ok(encoded) => Some((encoded, analysis)),
        Err(e) => {
            warn!(seq, "cannot encode frame: {e}");
            None
        }
    }
}

impl Capture {
    /// Opens the source, reports the outcome through `opened`, then runs
    /// until shutdown, or until a file source played once reaches its end.
    pub fn run(mut self, opened: std::sync::mpsc::SyncSender<Result<SourceInfo, SourceError>>) {
        let mut source = match source::open(
            &self.cfg.source,
            self.cfg.loop_file,
            &self.cfg.name,
            &self.clock,
        ) {
            Ok(s) => {
                let _ = opened.send(Ok(SourceInfo::of(s.as_ref())));
                s
            }
            Err(e) => {
                let _ = opened.send(Err(e));
                return;
            }
        };
        let mut encoder = match FrameEncoder::new(&self.cfg.name) {
            Ok(e) => e,
            Err(e) => {
                warn!("cannot start the JPEG encoder: {e}");
                self.shutdown.cancel();
                return;
            }
        };
        let mut limiter = RateLimiter::default();
        // Numbers carry on from the spool's, so an acknowledgement always
        // means the same frames.
        let mut seq: u64 = self
            .spool
            .as_ref()
            .map_or(0, |s| crate::spool::lock(s).next_seq());
        let mut failures = 0u32;
        let mut drops = Drops::default();
        let mut analysing = self.cfg.analysis.as_ref().map(Analysing::new);
        let mut was_connected = false;
        while !self.shutdown.is_cancelled() {
            let settings = *self.settings.borrow();
            match source.grab(settings.fps) {
                Ok(()) => failures = 0,
                Err(SourceError::Ended { source_name }) => {
                    info!("{source_name} reached its end; stopping");
                    break;
                }
                Err(e) => {
                    failures += 1;
                    warn!(failures, "{e}");
                    if failures >= 3 {
                        match self.reopen() {
                            Some(s) => source = s,
                            None => break,
                        }
                        failures = 0;
                    }
                    continue;
                }
            }
            let capture_us = source
                .capture_time_us()
                .unwrap_or_else(cctv_protocol::now_us);
            let source_fps = source.native_fps().unwrap_or(settings.fps);
            if !limiter.admit(Instant::now(), settings.fps, source_fps) {
                continue;
            }
            let this_seq = seq;
            seq += 1;
            let connected = self.shared.connected.load(Ordering::Acquire);
            if !connected && self.spool.is_none() {
                drops.offline.add(capture_us);
                was_connected = false;
                continue;
            }
            if connected {
                drops.back_online();
            }
            // Analysis only for a panel that takes it (see the protocol's
            // features); an older one gets every frame, unanalysed. With no
            // panel, frames go to the spool whole and in order, unanalysed
            // (the pacing by the scene is for the live link).
            if self.analysis.has_changed().unwrap_or(false)
                && let (Some(a), Some(cfg)) = (
                    analysing.as_mut(),
                    self.analysis.borrow_and_update().as_ref(),
                )
            {
                a.reconfigure(cfg);
            }
            let mut analysed = analysing
                .as_mut()
                .filter(|_| connected && self.shared.panel_analysis.load(Ordering::Acquire));
            if let Some(a) = &mut analysed
                && !was_connected
            {
                // Frames held for the last connection are stale.
                a.reconnected();
            }
            was_connected = connected;
            // A preview only for a panel that takes it, live.
            let preview_width = if connected && self.shared.panel_preview.load(Ordering::Acquire) {
                self.cfg.preview_width
            } else {
                0
            };
            let Some((encoded, analysis)) = encode(
                source.as_mut(),
                &mut encoder,
                &settings,
                capture_us,
                this_seq,
                analysed,
                preview_width,
            ) else {
                continue;
            };
            drops.note_passthrough(encoded.passthrough);
            self.shared
                .passthrough
                .store(drops.passthrough, Ordering::Relaxed);
            let frame = Frame {
                seq: this_seq,
                capture_us,
                jpeg: encoded.jpeg,
                analysis,
                preview: encoded.preview,
            };
            if !self.send(frame, analysing.as_mut(), &mut drops) {
                break;
            }
            drops.report_queue();
        }
        // A file played once has ended, or the source is gone: let the link say goodbye.
        self.shutdown.cancel();
    }

    /// Queues `frame` for the link, paced by its analysis (the pre-roll
    /// first, at an event's start); false once the link is gone.
    fn send(&self, frame: Frame, analysing: Option<&mut Analysing>, drops: &mut Drops) -> bool {
        let (Some(a), true) = (analysing, frame.analysis.is_some()) else {
            return self.queue(frame, drops);
        };
        let mut out = std::mem::take(&mut a.out);
        a.pacer.push(frame, &mut out);
        let alive = out.drain(..).all(|f| self.queue(f, drops));
        a.out = out;
        alive
    }

    /// Keeps `frame` in the spool, and sends it live if a panel takes
    /// frames now; false once the link is gone.
    fn queue(&self, frame: Frame, drops: &mut Drops) -> bool {
        let log = |f: &Frame| {
            crate::framelog::note(
                &self.log,
                format_args!("captured {} {}", f.seq, f.capture_us),
            )
        };
        let Some(spool) = &self.spool else {
            log(&frame);
            return self.send_live(frame, drops);
        };
        // Held until the frame is queued: the link ends a connection under
        // this lock and then clears the queue, so a frame of an earlier
        // connection never goes out live on the next (it is backfill).
        let mut spool = crate::spool::lock(spool);
        let live = spool
            .append(frame.seq, frame.capture_us, &frame.jpeg)
            .unwrap_or_else(|e| {
                warn!(
                    "cannot keep frames in the spool: {e}; frames captured while no panel \
                     takes them are lost until it can (trying again in 30 s)"
                );
                self.shared.connected.load(Ordering::Acquire)
            });
        log(&frame);
        if !live {
            if !spool.working() {
                drops.offline.add(frame.capture_us);
            }
            let syncs = spool.take_syncs();
            drop(spool);
            for f in syncs {
                if let Err(e) = f.sync_data() {
                    warn!("cannot sync the spool: {e}");
                }
            }
            return !self.frames.is_closed();
        }
        let seq = frame.seq;
        let queued = self.frames.try_send(frame);
        if let Err(mpsc::error::TrySendError::Full(_)) = &queued {
            // The link is slower than the camera: the frame is dropped, as
            // without a spool, and forgotten.
            spool.ack(seq, seq);
        }
        drop(spool);
        self.sent_live(queued, drops)
    }

    fn send_live(&self, frame: Frame, drops: &mut Drops) -> bool {
        let queued = self.frames.try_send(frame);
        self.sent_live(queued, drops)
    }

    fn sent_live(
        &self,
        queued: Result<(), mpsc::error::TrySendError<Frame>>,
        drops: &mut Drops,
    ) -> bool {
        match queued {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(f)) => {
                drops.queue_full.add(f.capture_us);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Opens the source again after it failed, retrying until shutdown.
    fn reopen(&self) -> Option<Box<dyn Source>> {
        let mut delay = Duration::from_secs(1);
        loop {
            if self.shutdown.is_cancelled() {
                return None;
            }
            std::thread::sleep(delay);
            match source::open(
                &self.cfg.source,
                self.cfg.loop_file,
                &self.cfg.name,
                &self.clock,
            ) {
                Ok(s) => {
                    info!("reopened {}", s.describe());
                    if let Ok(mut size) = self.shared.source_size.lock() {
                        *size = s.size();
                    }
                    return Some(s);
                }
                Err(e) => {
                    warn!("{e}; trying again in {} s", delay.as_secs());
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(target: f64, source: f64, jitter_ms: &[i64]) -> usize {
        let start = Instant::now() + Duration::from_secs(1);
        let mut l = RateLimiter::default();
        (0..100)
            .filter(|i| {
                let j = jitter_ms[*i as usize % jitter_ms.len()];
                let t = start + Duration::from_secs_f64(*i as f64 / source)
                    - Duration::from_millis(10)
                    + Duration::from_millis((10 + j) as u64);
                l.admit(t, target, source)
            })
            .count()
    }

    #[test]
    fn rate_limit_halves_a_jittery_source_exactly() {
        assert_eq!(kept(5.0, 10.0, &[0, -3, 4, -1, 2]), 50);
        assert_eq!(kept(10.0, 10.0, &[0, -3]), 100);
        assert_eq!(kept(2.5, 10.0, &[0, 3, -3]), 25);
        let third = kept(10.0, 30.0, &[0, 5, -5]);
        assert!((33..=34).contains(&third), "{third}");
    }
}
