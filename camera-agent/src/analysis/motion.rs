//! Motion: each pixel against a background that adapts slowly, and against
//! the frame before last, after taking out any change of the whole
//! picture's brightness (clouds, dusk, a light switched on). A pixel moves
//! when it differs from both by more than the noise floor: sensor grain
//! never counts, and a scene that stops moving stops counting at once even
//! before the background has caught up with it.

use super::Gray;

/// How motion is judged; changeable live.
#[derive(Debug, Clone, PartialEq)]
pub struct MotionSettings {
    /// 1 (only large, strong changes) to 100 (the faintest); default 50.
    pub sensitivity: u8,
    /// Share of the watched picture that must move, 0 to 1; default 0.002.
    pub min_area: f32,
    /// Cells of a 16x12 grid over the picture that are not watched (a
    /// road, a tree, a clock), row by row; empty: watch everything.
    pub ignore: Vec<bool>,
    /// Seconds without motion before motion ends; default 1.
    pub quiet_secs: f32,
}

/// Columns and rows of the ignore grid.
pub const GRID: (u32, u32) = (16, 12);

impl Default for MotionSettings {
    fn default() -> Self {
        Self {
            sensitivity: 50,
            min_area: 0.002,
            ignore: Vec::new(),
            quiet_secs: 1.0,
        }
    }
}

impl MotionSettings {
    /// The ignore grid from polygons in picture fractions (0..1): each
    /// cell whose centre is inside one is ignored.
    pub fn ignore_polygons(polygons: &[Vec<(f32, f32)>]) -> Vec<bool> {
        let (cols, rows) = GRID;
        (0..rows)
            .flat_map(|r| (0..cols).map(move |c| (c, r)))
            .map(|(c, r)| {
                let p = (
                    (c as f32 + 0.5) / cols as f32,
                    (r as f32 + 0.5) / rows as f32,
                );
                polygons.iter().any(|poly| inside(p, poly))
            })
            .collect()
    }

    /// The smallest pixel difference that can count, for a noise level.
    fn threshold(&self, noise: f32) -> f32 {
        // Sensitivity 1 -> 40 levels, 50 -> ~21, 100 -> 6 at least; and
        // never under four times the noise.
        let s = f32::from(self.sensitivity.clamp(1, 100));
        let floor = 40.0 - 34.0 * (s - 1.0) / 99.0;
        floor.max(4.0 * noise)
    }
}

/// Whether `p` is inside `poly` (even-odd rule).
fn inside(p: (f32, f32), poly: &[(f32, f32)]) -> bool {
    let mut odd = false;
    for (i, a) in poly.iter().enumerate() {
        let b = poly[(i + 1) % poly.len()];
        if (a.1 > p.1) != (b.1 > p.1) {
            let x = a.0 + (p.1 - a.1) * (b.0 - a.0) / (b.1 - a.1);
            if p.0 < x {
                odd = !odd;
            }
        }
    }
    odd
}

pub(super) struct MotionModel {
    settings: MotionSettings,
    background: Vec<f32>,
    /// The last two frames, older first.
    recent: [Vec<u8>; 2],
    /// Which pixels moved in the frame being judged (kept to save allocations).
    moved: Vec<bool>,
    /// Mean brightness of the background, and of the last two frames.
    background_mean: f32,
    means: [f32; 2],
    /// The last frame's noise, as a standard deviation.
    noise: f32,
    size: (u32, u32),
    last_us: i64,
    moving_frames: u32,
    last_motion_us: Option<i64>,
    on: bool,
}

/// Seconds over which the background follows a still scene.
const FOLLOW_SECS: f32 = 2.0;
/// ... and a changed but still region (a parked car becomes scenery).
const ABSORB_SECS: f32 = 30.0;

impl MotionModel {
    pub fn new(settings: MotionSettings) -> Self {
        Self {
            settings,
            background: Vec::new(),
            recent: [Vec::new(), Vec::new()],
            moved: Vec::new(),
            background_mean: 0.0,
            means: [0.0; 2],
            noise: 0.0,
            size: (0, 0),
            last_us: 0,
            moving_frames: 0,
            last_motion_us: None,
            on: false,
        }
    }

    pub fn set_settings(&mut self, settings: MotionSettings) {
        self.settings = settings;
    }

    /// Learns the scene afresh from `frame` (after a tamper: the picture
    /// before it says nothing of the one after).
    pub fn restart(&mut self, frame: &Gray, t_us: i64) {
        self.background = frame.data.iter().map(|&v| f32::from(v)).collect();
        let mean = self.background.iter().sum::<f32>() / self.background.len().max(1) as f32;
        (self.background_mean, self.means, self.noise) = (mean, [mean; 2], 0.0);
        self.recent = [frame.data.clone(), frame.data.clone()];
        self.size = (frame.width, frame.height);
        self.last_us = t_us;
    }

    /// (score, motion) for the next frame.
    pub fn update(&mut self, frame: &Gray, t_us: i64) -> (f32, bool) {
        if self.size != (frame.width, frame.height) || self.background.is_empty() {
            self.restart(frame, t_us);
            return (0.0, self.on);
        }
        let dt = ((t_us - self.last_us) as f32 / 1e6).clamp(0.0, 10.0);
        self.last_us = t_us;
        let (w, h) = (frame.width as usize, frame.height as usize);
        let n = w * h;
        // The whole picture's change of brightness, taken out.
        let mean = frame.data.iter().map(|&x| u64::from(x)).sum::<u64>() as f32 / n as f32;
        let shift = mean - self.background_mean;
        let prev_shift = mean - self.means[0];
        // The noise floor from the last frame's differences (it changes slowly).
        let t = self.settings.threshold(self.noise);
        let (follow, absorb) = (
            1.0 - (-dt / FOLLOW_SECS).exp(),
            1.0 - (-dt / ABSORB_SECS).exp(),
        );
        let mut histogram = [0u32; 256];
        let mut background_sum = 0.0;
        self.moved.resize(n, false);
        let prev = &self.recent[0];
        let prev_shift = prev_shift.round() as i32;
        let half = t * 0.5;
        let pixels = frame.data.iter().zip(prev.iter());
        for (((&v, &p), b), m) in pixels
            .zip(self.background.iter_mut())
            .zip(self.moved.iter_mut())
        {
            let v = i32::from(v);
            let from_prev = (v - i32::from(p) - prev_shift).unsigned_abs();
            histogram[from_prev.min(255) as usize] += 1;
            let vf = v as f32;
            // Differs from both the background and the frame before last.
            let moved = (vf - *b - shift).abs() > t && from_prev as f32 > half;
            *m = moved;
            // The background follows what does not move, fast, and absorbs
            // what changed and stays, slowly.
            *b += if moved { absorb } else { follow } * (vf - *b);
            background_sum += *b;
        }
        self.background_mean = background_sum / n as f32;
        // Noise: the median frame-to-frame difference (most of a picture
        // does not move), as a standard deviation.
        self.noise = median(&histogram, n) * 1.4826;
        let (counted, watched) = self.count(w, h);
        self.recent.swap(0, 1);
        self.recent[1].clone_from(&frame.data);
        self.means = [self.means[1], mean];
        let score = counted as f32 / watched.max(1) as f32;
        (score, self.judge(score, t_us))
    }

    /// Moving pixels with at least two moving neighbours (no specks), and
    /// pixels watched, outside the ignored cells.
    fn count(&self, w: usize, h: usize) -> (u32, u32) {
        let moved = &self.moved;
        let grid = &self.settings.ignore;
        let ignored = |x: usize, y: usize| {
            !grid.is_empty() && {
                let cell = (y * GRID.1 as usize / h) * GRID.0 as usize + x * GRID.0 as usize / w;
                grid.get(cell).copied().unwrap_or(false)
            }
        };
        let speck_free = |i: usize, x: usize, y: usize| {
            moved[i]
                && u8::from(x > 0 && moved[i - 1])
                    + u8::from(x + 1 < w && moved[i + 1])
                    + u8::from(y > 0 && moved[i - w])
                    + u8::from(y + 1 < h && moved[i + w])
                    >= 2
        };
        let (mut counted, mut watched) = (0u32, 0u32);
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if !moved[i] || ignored(x, y) {
                    continue;
                }
                counted += u32::from(speck_free(i, x, y));
            }
        }
        if grid.is_empty() {
            watched = (w * h) as u32;
        } else {
            for y in 0..h {
                watched += (0..w).filter(|&x| !ignored(x, y)).count() as u32;
            }
        }
        (counted, watched)
    }

    /// Motion on after two moving frames; off after `quiet_secs` of none.
    fn judge(&mut self, score: f32, t_us: i64) -> bool {
        if score >= self.settings.min_area {
            self.moving_frames += 1;
            if self.moving_frames >= 2 {
                self.on = true;
                self.last_motion_us = Some(t_us);
            }
        } else {
            self.moving_frames = 0;
            let quiet_us = (self.settings.quiet_secs.max(0.0) * 1e6) as i64;
            if self
                .last_motion_us
                .is_none_or(|last| t_us - last >= quiet_us)
            {
                self.on = false;
            }
        }
        self.on
    }
}

/// The median of `n` values in a 256-bin histogram.
fn median(histogram: &[u32; 256], n: usize) -> f32 {
    let half = (n / 2) as u32;
    let mut seen = 0;
    for (v, &count) in histogram.iter().enumerate() {
        seen += count;
        if seen > half {
            return v as f32;
        }
    }
    255.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygons_become_the_cells_they_cover() {
        // The left half.
        let left = vec![(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)];
        let grid = MotionSettings::ignore_polygons(&[left]);
        assert_eq!(grid.len(), 16 * 12);
        assert!(grid[0] && grid[7] && !grid[8] && !grid[15]);
        assert_eq!(grid.iter().filter(|&&c| c).count(), 8 * 12);
    }

    #[test]
    fn more_sensitivity_means_a_lower_threshold_never_under_the_noise() {
        let s = |v| MotionSettings {
            sensitivity: v,
            ..Default::default()
        };
        assert!(s(100).threshold(0.0) < s(50).threshold(0.0));
        assert!(s(50).threshold(0.0) < s(1).threshold(0.0));
        assert_eq!(s(100).threshold(10.0), 40.0);
    }
}
