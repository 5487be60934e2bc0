//! What an agent saw, frame by frame, turned into events that last: a
//! motion span from the first moving frame to the first still one, with
//! its peak score and a thumbnail of the peak frame; a tamper span per
//! kind from the frame that raised it to the one that cleared it. Each
//! span is written when it starts (end unknown) and completed when it
//! ends, so the history shows an alarm that is still on.
//!
//! The panel decodes nothing per frame: only a span's one thumbnail is
//! made, off the connection's task, when the span ends.

use bytes::Bytes;
use cctv_protocol::{FrameAnalysis, MAX_MOTION_SCORE};

use crate::catalog::{EventKind, SpanEnd};
use crate::live::LiveFrame;
use crate::writes::{Write, Writes};

/// Widest thumbnail, in pixels.
pub const THUMBNAIL_WIDTH: usize = 320;

/// A span going on.
#[derive(Debug)]
struct Span {
    kind: EventKind,
    start_us: i64,
    peak: u16,
    /// The frame at the peak (for tamper: the frame that raised it).
    peak_jpeg: Bytes,
}

/// The spans of one connection.
#[derive(Debug, Default)]
pub(super) struct Scene {
    motion: Option<Span>,
    tamper: Option<Span>,
}

impl Scene {
    /// Takes the next frame (in capture order, a pre-roll left out) and
    /// writes the spans it starts and ends. True if the motion or tamper
    /// state changed.
    pub(super) fn frame(
        &mut self,
        camera: &str,
        f: &LiveFrame,
        a: &FrameAnalysis,
        writes: &Writes,
    ) -> bool {
        let mut changed = false;
        let t = f.capture_us;
        match (&mut self.motion, a.motion) {
            (Some(span), true) => {
                if a.motion_score > span.peak {
                    span.peak = a.motion_score;
                    span.peak_jpeg = f.jpeg.clone();
                }
            }
            (None, true) => {
                self.motion = Some(start(camera, EventKind::Motion, f, a, writes));
                changed = true;
            }
            (Some(_), false) => {
                end(camera, self.motion.take(), t, "", writes);
                changed = true;
            }
            (None, false) => {}
        }
        let tamper = a.tamper.map(EventKind::of_tamper);
        if self.tamper.as_ref().map(|s| s.kind) != tamper {
            end(camera, self.tamper.take(), t, "", writes);
            self.tamper = tamper.map(|kind| start(camera, kind, f, a, writes));
            changed = true;
        }
        changed
    }

    /// The connection ended at `at_us`: spans still open end there.
    pub(super) fn end(&mut self, camera: &str, at_us: i64, why: &str, writes: &Writes) {
        end(camera, self.motion.take(), at_us, why, writes);
        end(camera, self.tamper.take(), at_us, why, writes);
    }
}

fn start(camera: &str, kind: EventKind, f: &LiveFrame, a: &FrameAnalysis, writes: &Writes) -> Span {
    writes.send(Write::Event {
        camera: camera.to_string(),
        kind,
        at_us: f.capture_us,
        detail: describe(kind).to_string(),
    });
    Span {
        kind,
        start_us: f.capture_us,
        peak: a.motion_score,
        peak_jpeg: f.jpeg.clone(),
    }
}

/// Completes `span` (if any) at `end_us`; its thumbnail is made off this
/// task, then the row is written.
fn end(camera: &str, span: Option<Span>, end_us: i64, why: &str, writes: &Writes) {
    let Some(span) = span else { return };
    let camera = camera.to_string();
    let writes = writes.clone();
    let why = why.to_string();
    tokio::task::spawn_blocking(move || {
        let peak_score = (span.kind == EventKind::Motion)
            .then(|| f64::from(span.peak) / f64::from(MAX_MOTION_SCORE));
        writes.send(Write::SpanEnd {
            camera,
            kind: span.kind,
            start_us: span.start_us,
            end: SpanEnd {
                end_us: end_us.max(span.start_us),
                peak_score,
                thumbnail: thumbnail(&span.peak_jpeg),
                why,
            },
        });
    });
}

/// What each kind means, for the history.
fn describe(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Motion => "motion",
        EventKind::Covered => "the picture is dark and without detail: the lens is covered",
        EventKind::Blinded => "the picture is saturated: the camera is blinded",
        EventKind::Defocused => "the picture lost its sharpness: the camera is defocused",
        EventKind::Moved => "the scene shifted: the camera was turned",
        _ => "",
    }
}

/// A small JPEG of `jpeg` (at most [`THUMBNAIL_WIDTH`] wide), decoded
/// scaled down; `None` if it cannot be read.
pub fn thumbnail(jpeg: &[u8]) -> Option<Vec<u8>> {
    use turbojpeg::{Decompressor, Image, PixelFormat, ScalingFactor};
    let mut d = Decompressor::new().ok()?;
    let header = d.read_header(jpeg).ok()?;
    let factor = [
        ScalingFactor::ONE,
        ScalingFactor::ONE_HALF,
        ScalingFactor::ONE_QUARTER,
        ScalingFactor::ONE_EIGHTH,
    ]
    .into_iter()
    .find(|f| f.scale(header.width) <= THUMBNAIL_WIDTH)
    .unwrap_or(ScalingFactor::ONE_EIGHTH);
    d.set_scaling_factor(factor).ok()?;
    let scaled = header.scaled(factor);
    let mut pixels = vec![0u8; scaled.width * scaled.height * 3];
    let image = Image {
        pixels: pixels.as_mut_slice(),
        width: scaled.width,
        pitch: scaled.width * 3,
        height: scaled.height,
        format: PixelFormat::RGB,
    };
    d.decompress(jpeg, image).ok()?;
    let image = Image {
        pixels: pixels.as_slice(),
        width: scaled.width,
        pitch: scaled.width * 3,
        height: scaled.height,
        format: PixelFormat::RGB,
    };
    turbojpeg::compress(image, 75, turbojpeg::Subsamp::Sub2x2)
        .ok()
        .map(|b| b.to_vec())
}
