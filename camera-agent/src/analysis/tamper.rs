//! Tamper: the picture against a reference learnt while it was normal.
//!
//! - **covered**: dark and without detail (a hand, a bag, paint);
//! - **blinded**: bright and without detail (a torch, a laser, the sun);
//! - **defocused**: detail (sharpness) collapses while brightness stays;
//! - **moved**: the scene's edges no longer line up with the reference
//!   (the camera was turned).
//!
//! Each is judged relative to the reference, so a dim night scene is not
//! "covered" and a snowy one not "blinded"; each is raised once it lasted
//! a second and clears once the picture is back for a second. The
//! reference follows slow changes (dusk) while the picture is normal.

use super::Gray;

/// How the camera is tampered with: the protocol's names, sent as they are.
pub use cctv_protocol::Tamper as TamperKind;

/// What the tamper checks measure of one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Stats {
    mean: f32,
    /// Standard deviation of brightness: how much detail there is.
    spread: f32,
    /// Mean |Laplacian|: how much fine detail there is.
    sharpness: f32,
}

/// A tamper must last this long to be raised, and the picture be back this
/// long for it to clear.
const HOLD_US: i64 = 1_000_000;
/// How often the picture is judged.
const CHECK_EVERY_US: i64 = 250_000;
/// The reference is learnt over this long at start.
const LEARN_US: i64 = 2_000_000;
/// Seconds over which the reference follows a normal picture.
const FOLLOW_SECS: f32 = 60.0;

#[derive(Default)]
pub(super) struct TamperModel {
    reference: Option<Reference>,
    /// What the frames suggest, and since when.
    candidate: Option<(Option<TamperKind>, i64)>,
    raised: Option<TamperKind>,
    last_us: i64,
}

struct Reference {
    stats: Stats,
    /// The reference's edge picture, for "moved".
    edges: Vec<f32>,
    size: (u32, u32),
    since_us: i64,
}

impl TamperModel {
    /// The tamper state after this frame. The picture is judged four times
    /// a second (a tamper is raised after a second anyway); frames between
    /// keep the state.
    pub fn update(&mut self, frame: &Gray, t_us: i64) -> Option<TamperKind> {
        if self.reference.is_some() && t_us - self.last_us < CHECK_EVERY_US {
            return self.raised;
        }
        let stats = stats(frame);
        let edges = edges(frame);
        let dt = ((t_us - self.last_us) as f32 / 1e6).clamp(0.0, 10.0);
        self.last_us = t_us;
        let size = (frame.width, frame.height);
        let reference = match &mut self.reference {
            Some(r) if r.size == size => r,
            _ => {
                self.reference = Some(Reference {
                    stats,
                    edges,
                    size,
                    since_us: t_us,
                });
                return self.raised;
            }
        };
        let learning = t_us - reference.since_us < LEARN_US;
        let seen = if learning {
            None
        } else {
            judge(&reference.stats, &stats, &reference.edges, &edges)
        };
        // A normal picture teaches the reference: fast while learning, then slowly.
        if seen.is_none() && self.raised.is_none() {
            let rate = if learning {
                0.3
            } else {
                1.0 - (-dt / FOLLOW_SECS).exp()
            };
            let mix = |a: &mut f32, b: f32| *a += rate * (b - *a);
            mix(&mut reference.stats.mean, stats.mean);
            mix(&mut reference.stats.spread, stats.spread);
            mix(&mut reference.stats.sharpness, stats.sharpness);
            for (r, e) in reference.edges.iter_mut().zip(&edges) {
                mix(r, *e);
            }
        }
        match self.candidate {
            Some((kind, since)) if kind == seen => {
                if t_us - since >= HOLD_US {
                    self.raised = seen;
                }
            }
            _ => self.candidate = Some((seen, t_us)),
        }
        self.raised
    }
}

/// What a frame's stats say against the reference's.
fn judge(reference: &Stats, now: &Stats, ref_edges: &[f32], edges: &[f32]) -> Option<TamperKind> {
    let no_detail = now.spread < (0.35 * reference.spread).max(4.0) || now.spread < 8.0;
    if no_detail && now.mean < (0.5 * reference.mean).min(60.0) {
        return Some(TamperKind::Covered);
    }
    if no_detail && now.mean > (reference.mean + 0.5 * (255.0 - reference.mean)).max(180.0) {
        return Some(TamperKind::Blinded);
    }
    // Fine detail per unit of contrast: dimmer light lowers both alike.
    let crisp = |s: &Stats| s.sharpness / s.spread.max(1.0);
    if crisp(now) < 0.4 * crisp(reference) {
        return Some(TamperKind::Defocused);
    }
    if correlation(ref_edges, edges) < 0.35 {
        return Some(TamperKind::Moved);
    }
    None
}

fn stats(frame: &Gray) -> Stats {
    let n = frame.data.len().max(1) as f64;
    let (sum, squares) = frame.data.iter().fold((0u64, 0u64), |(s, q), &v| {
        (s + u64::from(v), q + u64::from(v) * u64::from(v))
    });
    let mean = sum as f64 / n;
    let var = (squares as f64 / n - mean * mean).max(0.0);
    let (mean, var) = (mean as f32, var as f32);
    Stats {
        mean,
        spread: var.sqrt(),
        sharpness: fine_detail(frame),
    }
}

/// Mean |Laplacian|: the finest detail, what a lens out of focus loses
/// first (a gradient keeps much of a blurred edge; a Laplacian does not).
fn fine_detail(frame: &Gray) -> f32 {
    let (w, h) = (frame.width as usize, frame.height as usize);
    if w < 3 || h < 3 {
        return 0.0;
    }
    let px = |x: usize, y: usize| f32::from(frame.data[y * w + x]);
    let mut sum = 0.0;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let lap = 4.0 * px(x, y) - px(x - 1, y) - px(x + 1, y) - px(x, y - 1) - px(x, y + 1);
            sum += lap.abs();
        }
    }
    sum / ((w - 2) * (h - 2)) as f32
}

/// Gradient magnitude (|dx| + |dy|) at every other pixel of every other
/// row: the scene's layout, which a turned camera no longer matches.
fn edges(frame: &Gray) -> Vec<f32> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    if w < 3 || h < 3 {
        return vec![0.0];
    }
    let px = |x: usize, y: usize| f32::from(frame.data[y * w + x]);
    let mut out = Vec::with_capacity(w * h / 4);
    for y in (1..h - 1).step_by(2) {
        for x in (1..w - 1).step_by(2) {
            let dx = px(x + 1, y) - px(x - 1, y);
            let dy = px(x, y + 1) - px(x, y - 1);
            out.push(dx.abs() + dy.abs());
        }
    }
    out
}

/// Pearson correlation of two equally long pictures (0 if either is flat).
fn correlation(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len()).max(1) as f32;
    let (ma, mb) = (a.iter().sum::<f32>() / n, b.iter().sum::<f32>() / n);
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        ab += dx * dy;
        aa += dx * dx;
        bb += dy * dy;
    }
    if aa <= f32::EPSILON || bb <= f32::EPSILON {
        return 0.0;
    }
    ab / (aa * bb).sqrt()
}
