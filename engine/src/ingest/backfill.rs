//! Frames an agent sends from its spool after an outage (`Backfill`):
//! written in the order they come (the agent sends them oldest first) at
//! their true capture times, into recordings of their own marked
//! backfilled, and acknowledged once synced. Alongside the live recording,
//! never in its way: the live recorder writes what is captured now, this
//! writes the past.
//!
//! A frame already recorded (sent live before the connection broke, its
//! acknowledgement lost with it) is skipped: by its number and time while
//! the panel remembers it (`acks::Recorded`), else by the catalog's
//! recordings of the camera. A break of more than [`GAP_US`] between two
//! frames starts a new recording, so history shows what is missing.
//! When the frames stop for a while, the run is logged as a `backfill`
//! event: from, to, frames.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::IngestCtx;
use crate::catalog::{EventKind, RecordingFilter, RecordingStatus, SpanEnd};
use crate::live::{CameraSlot, EngineEvent};
use crate::recorder::segment::{NewSegment, Segment};
use crate::time::{local, now_us};
use crate::writes::Write;

/// Frames further apart than this are recorded apart.
pub const GAP_US: i64 = 5_000_000;
/// Recording files keep times to the millisecond.
const FILE_PRECISION_US: i64 = 1_000;
/// A run ends when no backfilled frame came for this long.
const RUN_IDLE: Duration = Duration::from_secs(2);

/// One stretch of backfill, for its event.
#[derive(Debug, Clone, Copy)]
struct Run {
    first_us: i64,
    last_us: i64,
    frames: u64,
    skipped: u64,
}

#[derive(Default)]
pub(super) struct Backfill {
    segment: Option<Segment>,
    /// Spans of the camera's recordings from the first backfilled frame
    /// on, read once per run.
    spans: Option<Vec<(i64, i64)>>,
    run: Option<Run>,
    last_us: i64,
    last_frame: Option<Instant>,
    /// Frames written on this connection.
    pub written: u64,
}

/// Why a frame from the agent's spool was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("a bad backfilled picture: {0}")]
    BadPicture(#[from] crate::jpeg::BadPicture),
    #[error("a backfilled frame captured at {0} µs, in the future")]
    InTheFuture(u64),
    #[error("cannot record backfill: {0}")]
    Record(#[from] crate::recorder::segment::SegmentError),
}

impl Backfill {
    /// One frame from the agent's spool. Whatever happens to it, it is
    /// acknowledged unless writing it failed.
    pub(super) async fn frame(
        &mut self,
        ctx: &IngestCtx,
        slot: &CameraSlot,
        f: cctv_protocol::Frame,
    ) -> Result<(), BackfillError> {
        self.last_frame = Some(Instant::now());
        let (width, height) = match crate::jpeg::check(&f.jpeg, ctx.limits.max_pixels) {
            Ok(size) => size,
            Err(why) => {
                slot.acks.add(f.seq);
                return Err(why.into());
            }
        };
        let capture_us = match i64::try_from(f.capture_us) {
            Ok(t) if t > 0 && t <= now_us() + ctx.limits.max_clock_skew_us => t,
            _ => {
                slot.acks.add(f.seq);
                return Err(BackfillError::InTheFuture(f.capture_us));
            }
        };
        let run = self.run.get_or_insert(Run {
            first_us: capture_us,
            last_us: capture_us,
            frames: 0,
            skipped: 0,
        });
        if self.spans.is_none() {
            self.spans = Some(known_spans(ctx, &slot.id, capture_us).await);
        }
        let known = crate::sync::lock(&slot.recorded).contains(f.seq, capture_us)
            || self
                .spans
                .as_ref()
                .is_some_and(|s| s.iter().any(|(a, b)| (*a..=*b).contains(&capture_us)));
        let not_now = !slot.record_enabled.load(Ordering::Acquire)
            || ctx.recorders.ctx().disk_full.load(Ordering::Acquire);
        if known || not_now || capture_us <= self.last_us {
            // Held already, not wanted, or out of order: nothing to write.
            run.skipped += 1;
            slot.acks.add(f.seq);
            return Ok(());
        }
        let rctx = ctx.recorders.ctx();
        if let Some(seg) = &self.segment
            && (capture_us - self.last_us > GAP_US
                || capture_us - seg.start_us >= rctx.segment_us
                || (width, height) != (seg.width, seg.height))
        {
            self.close(ctx).await;
        }
        if self.segment.is_none() {
            let new = NewSegment {
                camera_id: &slot.id,
                title: format!("{} ({}), backfilled", slot.status().name, slot.id),
                start_us: capture_us,
                width,
                height,
                backfilled: true,
                audio: false,
                writeback_step: rctx.writeback_step,
            };
            let seg = Segment::open(&rctx.writes, &rctx.root, new, slot.acks.clone()).await?;
            info!(camera = %slot.id, path = %seg.rel_path, "recording frames from the agent's spool");
            self.segment = Some(seg);
        }
        let seg = self.segment.as_mut().expect("opened above");
        if let Err(e) = seg.push(f.seq, capture_us, &f.jpeg) {
            self.segment = None;
            return Err(e.into());
        }
        crate::sync::lock(&slot.recorded).add(f.seq, capture_us);
        self.last_us = capture_us;
        self.written += 1;
        if let Some(run) = &mut self.run {
            run.frames += 1;
            run.last_us = capture_us;
        }
        Ok(())
    }

    /// Syncs and reports the open recording; ends a run gone quiet.
    pub(super) async fn tick(&mut self, ctx: &IngestCtx, slot: &CameraSlot) {
        if let Some(seg) = self.segment.as_mut() {
            let writes = &ctx.recorders.ctx().writes;
            if let Err(e) = seg.sync_if_due() {
                warn!(camera = %slot.id, "backfill: {e}");
            }
            seg.report_progress(writes);
        }
        if self.last_frame.is_some_and(|t| t.elapsed() >= RUN_IDLE) {
            self.end(ctx, slot).await;
        }
    }

    /// Closes what is open and logs the run.
    pub(super) async fn end(&mut self, ctx: &IngestCtx, slot: &CameraSlot) {
        self.close(ctx).await;
        self.last_frame = None;
        self.spans = None;
        let Some(run) = self.run.take() else {
            return;
        };
        if run.frames == 0 {
            return;
        }
        let detail = format!(
            "{} frames from the agent's spool, captured {} to {}{}",
            run.frames,
            local(run.first_us),
            local(run.last_us),
            if run.skipped > 0 {
                format!(" ({} already held)", run.skipped)
            } else {
                String::new()
            }
        );
        info!(camera = %slot.id, frames = run.frames, "backfill recorded: {detail}");
        span_event(
            ctx,
            &slot.id,
            EventKind::Backfill,
            run.first_us,
            run.last_us,
            detail,
        );
    }

    async fn close(&mut self, ctx: &IngestCtx) {
        if let Some(seg) = self.segment.take() {
            let writes = &ctx.recorders.ctx().writes;
            if let Err(e) = seg.close(writes, RecordingStatus::Complete, "").await {
                warn!("closing a backfilled recording: {e}");
            }
        }
    }
}

/// An event that lasts from `from_us` to `to_us`, in the catalog's history.
pub(super) fn span_event(
    ctx: &IngestCtx,
    camera: &str,
    kind: EventKind,
    from_us: i64,
    to_us: i64,
    detail: String,
) {
    ctx.writes.send(Write::Event {
        camera: camera.to_string(),
        kind,
        at_us: from_us,
        detail,
    });
    ctx.writes.send(Write::SpanEnd {
        camera: camera.to_string(),
        kind,
        start_us: from_us,
        end: SpanEnd {
            end_us: to_us,
            peak_score: None,
            thumbnail: None,
            why: String::new(),
        },
    });
    let _ = ctx.events.send(EngineEvent::Camera(camera.to_string()));
}

/// The camera's recordings that end after `from_us`, as (start, end).
async fn known_spans(ctx: &IngestCtx, camera: &str, from_us: i64) -> Vec<(i64, i64)> {
    let filter = RecordingFilter {
        camera_id: Some(camera.to_string()),
        from_us: Some(from_us - FILE_PRECISION_US),
        ..Default::default()
    };
    match ctx.catalog.recordings(&filter).await {
        // Files keep whole milliseconds: a repaired recording's end may
        // be up to 1 ms before its last frame's true time.
        Ok(rows) => rows
            .iter()
            .map(|r| (r.start_us - FILE_PRECISION_US, r.end_us + FILE_PRECISION_US))
            .collect(),
        Err(e) => {
            warn!(
                camera,
                "cannot read the recordings backfill could repeat: {e}"
            );
            Vec::new()
        }
    }
}
