//! Frame selection for panoramas: from a long stretch of footage, keep the
//! few frames that matter. Blurred frames (motion blur while panning) and
//! near-duplicates of the last chosen frame are skipped; the image shift
//! from the last chosen frame is measured by phase correlation, and a frame
//! is chosen just before the overlap would fall under the target, so
//! neighbours always overlap enough for the stitcher to match them.

use opencv::core::{self, CV_32F, CV_64F, Mat, Size};
use opencv::imgproc;
use opencv::prelude::*;

#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Frames are analysed at this width (pixels).
    pub analysis_width: i32,
    /// Choose a frame before its overlap with the last chosen one falls under
    /// this. Above 0.5, so shifts stay under half a frame, where phase
    /// correlation is unambiguous.
    pub target_overlap: f64,
    /// Phase correlation responses under this mean "lost track".
    pub min_response: f64,
    /// A frame sharper than this fraction of the recent median counts as sharp.
    pub blur_ratio: f64,
    /// Most frames handed to the stitcher.
    pub max_frames: usize,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            analysis_width: 320,
            target_overlap: 0.6,
            min_response: 0.03,
            blur_ratio: 0.45,
            max_frames: 30,
        }
    }
}

/// A frame chosen for stitching.
#[derive(Debug)]
pub struct Chosen {
    /// Position in the footage.
    pub index: usize,
    pub image: Mat,
    /// Overlap with the previously chosen frame (1.0 for the first).
    pub overlap: f64,
}

/// What selection did, for the user and for tests.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Stats {
    pub seen: usize,
    pub blurred: usize,
    pub duplicates: usize,
    /// Times the next frame already overlapped too little (panning too fast).
    pub too_fast: usize,
    /// Chosen frames dropped to stay under the cap.
    pub capped: usize,
    /// Times the camera came back to a view already chosen (a looping or
    /// patrolling camera): nothing was added.
    pub revisits: usize,
}

/// A frame overlapping a chosen view by this much, with a match at least
/// [`REVISIT_RESPONSE`] strong, shows that view again. Chosen neighbours
/// overlap by about `target_overlap`, so a place inside the covered sweep
/// is always within this of one of them.
const REVISIT_OVERLAP: f64 = 0.8;
const REVISIT_RESPONSE: f64 = 0.2;

struct Analysed {
    index: usize,
    image: Mat,
    gray: Mat,
}

pub struct Selector {
    params: Params,
    window: Option<Mat>,
    last: Option<Analysed>,
    candidate: Option<(Analysed, f64)>,
    /// Overlap of the previous frame with the last chosen one.
    prev_overlap: f64,
    chosen: Vec<Chosen>,
    /// The analysed picture of each chosen frame.
    views: Vec<Mat>,
    recent_sharpness: Vec<f64>,
    pub stats: Stats,
}

impl Selector {
    pub fn new(params: Params) -> Self {
        Self {
            params,
            window: None,
            last: None,
            candidate: None,
            prev_overlap: 1.0,
            chosen: Vec::new(),
            views: Vec::new(),
            recent_sharpness: Vec::new(),
            stats: Stats::default(),
        }
    }

    fn analyse(&mut self, frame: &Mat) -> opencv::Result<(Mat, f64)> {
        let w = self.params.analysis_width.min(frame.cols()).max(16);
        let h = ((f64::from(frame.rows()) * f64::from(w) / f64::from(frame.cols())).round() as i32)
            .max(16);
        let mut small = Mat::default();
        imgproc::resize(
            frame,
            &mut small,
            Size::new(w, h),
            0.0,
            0.0,
            imgproc::INTER_AREA,
        )?;
        let mut gray = Mat::default();
        if small.channels() == 3 {
            imgproc::cvt_color_def(&small, &mut gray, imgproc::COLOR_BGR2GRAY)?;
        } else {
            gray = small;
        }
        let mut lap = Mat::default();
        imgproc::laplacian_def(&gray, &mut lap, CV_64F)?;
        let (mut mean, mut dev) = (Mat::default(), Mat::default());
        core::mean_std_dev_def(&lap, &mut mean, &mut dev)?;
        let sd = *dev.at::<f64>(0)?;
        let mut f = Mat::default();
        gray.convert_to_def(&mut f, CV_32F)?;
        if self
            .window
            .as_ref()
            .is_none_or(|win| win.size().ok() != f.size().ok())
        {
            let mut win = Mat::default();
            imgproc::create_hanning_window(&mut win, f.size()?, CV_32F)?;
            self.window = Some(win);
        }
        Ok((f, sd * sd))
    }

    /// Overlap of `b` with `a` from their shift, or `None` when the match is unreliable.
    fn overlap(&self, a: &Mat, b: &Mat) -> opencv::Result<Option<f64>> {
        Ok(self
            .matched(a, b)?
            .filter(|(_, response)| *response >= self.params.min_response)
            .map(|(ov, _)| ov))
    }

    /// Overlap of `b` with `a` from their shift, and how strong the match is.
    fn matched(&self, a: &Mat, b: &Mat) -> opencv::Result<Option<(f64, f64)>> {
        if a.size()? != b.size()? {
            return Ok(None);
        }
        let mut response = 0.0;
        let win = self.window.as_ref().map_or_else(Mat::default, Mat::clone);
        let shift = imgproc::phase_correlate(a, b, &win, Some(&mut response))?;
        let (w, h) = (f64::from(a.cols()), f64::from(a.rows()));
        let ov = (1.0 - shift.x.abs() / w).max(0.0) * (1.0 - shift.y.abs() / h).max(0.0);
        Ok(Some((ov, response)))
    }

    /// Whether `gray` shows a view already chosen.
    fn seen_before(&self, gray: &Mat) -> opencv::Result<bool> {
        for view in &self.views {
            if let Some((ov, response)) = self.matched(view, gray)?
                && ov >= REVISIT_OVERLAP
                && response >= REVISIT_RESPONSE
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Takes `a` for stitching, unless it shows a view already taken: then
    /// the track goes on from it and nothing is added.
    fn choose(&mut self, a: Analysed, overlap: f64) -> opencv::Result<()> {
        self.prev_overlap = 1.0;
        if self.seen_before(&a.gray)? {
            self.stats.revisits += 1;
        } else {
            self.chosen.push(Chosen {
                index: a.index,
                image: a.image.clone(),
                overlap,
            });
            self.views.push(a.gray.clone());
        }
        self.last = Some(a);
        Ok(())
    }

    /// Looks at the next frame of the footage.
    pub fn push(&mut self, index: usize, frame: &Mat) -> opencv::Result<()> {
        self.stats.seen += 1;
        let (gray, sharpness) = self.analyse(frame)?;
        let mut recent = self.recent_sharpness.clone();
        recent.sort_by(f64::total_cmp);
        let median = recent.get(recent.len() / 2).copied().unwrap_or(sharpness);
        self.recent_sharpness.push(sharpness);
        if self.recent_sharpness.len() > 15 {
            self.recent_sharpness.remove(0);
        }
        if recent.len() >= 3 && sharpness < median * self.params.blur_ratio {
            self.stats.blurred += 1;
            return Ok(());
        }
        let frame = Analysed {
            index,
            image: frame.clone(),
            gray,
        };
        let Some(last) = &self.last else {
            return self.choose(frame, 1.0);
        };
        let mut ov = self.overlap(&last.gray, &frame.gray)?;
        // A shift past half a frame wraps around and looks small again:
        // overlap that jumps up while panning means the track is lost.
        if ov.is_some_and(|o| o > self.prev_overlap + 0.25) {
            ov = None;
        }
        self.prev_overlap = ov.unwrap_or(0.0);
        match ov {
            Some(ov) if ov >= self.params.target_overlap => {
                if ov > 0.97 {
                    self.stats.duplicates += 1;
                }
                // Still overlaps enough: the newest such frame is the candidate.
                self.candidate = Some((frame, ov));
            }
            _ => {
                // Overlap is running out: take the last frame that still had enough.
                match self.candidate.take() {
                    Some((c, cov)) if cov < 0.97 => {
                        self.choose(c, cov)?;
                        let again = self.overlap(
                            &self
                                .last
                                .as_ref()
                                .map_or_else(Mat::default, |l| l.gray.clone()),
                            &frame.gray,
                        )?;
                        match again {
                            Some(ov2) if ov2 >= self.params.target_overlap => {
                                self.candidate = Some((frame, ov2))
                            }
                            other => {
                                self.stats.too_fast += 1;
                                self.choose(frame, other.unwrap_or(0.0))?;
                            }
                        }
                    }
                    _ => {
                        self.stats.too_fast += 1;
                        self.choose(frame, ov.unwrap_or(0.0))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The chosen frames, in footage order.
    pub fn finish(mut self) -> opencv::Result<(Vec<Chosen>, Stats)> {
        if let Some((c, ov)) = self.candidate.take()
            && ov < 0.9
        {
            self.choose(c, ov)?;
        }
        let mut chosen = self.chosen;
        if chosen.len() > self.params.max_frames {
            let n = chosen.len();
            let keep: Vec<usize> = (0..self.params.max_frames)
                .map(|i| i * (n - 1) / (self.params.max_frames - 1).max(1))
                .collect();
            self.stats.capped = n - keep.len();
            chosen = chosen
                .into_iter()
                .enumerate()
                .filter(|(i, _)| keep.contains(i))
                .map(|(_, c)| c)
                .collect();
        }
        Ok((chosen, self.stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{Rect, Scalar};

    /// A wide textured scene the tests pan across: random blobs, lines, text.
    fn scene(w: i32, h: i32) -> Mat {
        let mut m =
            Mat::new_rows_cols_with_default(h, w, core::CV_8UC3, Scalar::all(90.0)).unwrap();
        let mut seed = 12345u64;
        let mut rnd = |n: i32| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % n.max(1) as u64) as i32
        };
        for _ in 0..(w / 6) {
            let c = Scalar::new(
                f64::from(rnd(255)),
                f64::from(rnd(255)),
                f64::from(rnd(255)),
                0.0,
            );
            let p = core::Point::new(rnd(w), rnd(h));
            imgproc::circle(&mut m, p, 4 + rnd(30), c, -1, imgproc::LINE_8, 0).unwrap();
            let q = core::Point::new(rnd(w), rnd(h));
            imgproc::line(&mut m, p, q, c, 1 + rnd(3), imgproc::LINE_8, 0).unwrap();
        }
        m
    }

    fn pan(scene: &Mat, step: i32, fw: i32, fh: i32) -> Vec<Mat> {
        (0..)
            .map(|i| i * step)
            .take_while(|x| x + fw <= scene.cols())
            .map(|x| {
                Mat::roi(scene, Rect::new(x, 0, fw, fh))
                    .unwrap()
                    .try_clone()
                    .unwrap()
            })
            .collect()
    }

    fn run(frames: &[Mat], params: Params) -> (Vec<Chosen>, Stats) {
        let mut s = Selector::new(params);
        for (i, f) in frames.iter().enumerate() {
            s.push(i, f).unwrap();
        }
        s.finish().unwrap()
    }

    #[test]
    fn a_slow_pan_keeps_few_frames_that_still_overlap() {
        let wide = scene(3000, 360);
        let frames = pan(&wide, 8, 640, 360); // 296 frames, 8 px apart
        let (chosen, stats) = run(&frames, Params::default());
        assert_eq!(stats.seen, frames.len());
        // About one frame per 320 px of pan (50 % overlap), far fewer than every 5th.
        assert!((7..=14).contains(&chosen.len()), "{} chosen", chosen.len());
        assert!(chosen.len() * 5 < frames.len() / 5 * 2);
        for pair in chosen.windows(2) {
            let shift = (pair[1].index - pair[0].index) as f64 * 8.0;
            let overlap = 1.0 - shift / 640.0;
            assert!(
                (0.4..=0.9).contains(&overlap),
                "overlap {overlap:.2} between {} and {}",
                pair[0].index,
                pair[1].index
            );
            assert!(
                (pair[1].overlap - overlap).abs() < 0.05,
                "measured {:.2} vs true {overlap:.2}",
                pair[1].overlap
            );
        }
        // The whole pan is covered: first and (nearly) last frame.
        assert_eq!(chosen[0].index, 0);
        assert!(chosen.last().unwrap().index >= frames.len() - 40);
    }

    #[test]
    fn a_camera_standing_still_gives_one_frame_and_duplicates_are_counted() {
        let wide = scene(1200, 360);
        let mut frames: Vec<Mat> = (0..30)
            .map(|_| {
                Mat::roi(&wide, Rect::new(0, 0, 640, 360))
                    .unwrap()
                    .try_clone()
                    .unwrap()
            })
            .collect();
        let (chosen, stats) = run(&frames, Params::default());
        assert_eq!(chosen.len(), 1);
        assert!(stats.duplicates >= 25);
        // Then it pans: only the pan adds frames.
        frames.extend(pan(&wide, 10, 640, 360));
        let (chosen, _) = run(&frames, Params::default());
        assert!((2..=4).contains(&chosen.len()), "{}", chosen.len());
    }

    #[test]
    fn a_looping_or_patrolling_camera_adds_no_view_twice() {
        let wide = scene(3000, 360);
        let once = pan(&wide, 8, 640, 360);
        let (single, _) = run(&once, Params::default());
        // Looping: the sweep again from its start.
        let looped: Vec<Mat> = once.iter().chain(&once).cloned().collect();
        // Patrolling: there and back, twice.
        let back: Vec<Mat> = once.iter().rev().cloned().collect();
        let patrol: Vec<Mat> = [&once, &back, &once, &back]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        for (name, frames) in [("looping", looped), ("patrolling", patrol)] {
            let (chosen, stats) = run(&frames, Params::default());
            assert!(stats.revisits > 0, "{name}: {stats:?}");
            assert!(
                chosen.len() <= single.len() + 1,
                "{name}: {} chosen, one sweep alone gives {}",
                chosen.len(),
                single.len()
            );
        }
    }

    #[test]
    fn blurred_frames_are_never_chosen() {
        let wide = scene(2400, 360);
        let mut frames = pan(&wide, 12, 640, 360);
        let mut blurred = Vec::new();
        for i in (5..frames.len()).step_by(3) {
            let mut b = Mat::default();
            imgproc::gaussian_blur_def(&frames[i], &mut b, Size::new(31, 31), 12.0).unwrap();
            frames[i] = b;
            blurred.push(i);
        }
        let (chosen, stats) = run(&frames, Params::default());
        assert!(stats.blurred >= blurred.len() * 9 / 10, "{stats:?}");
        for c in &chosen {
            assert!(
                !blurred.contains(&c.index),
                "chose blurred frame {}",
                c.index
            );
        }
        assert!(chosen.len() >= 5);
    }

    #[test]
    fn the_cap_bounds_what_reaches_the_stitcher() {
        let wide = scene(6000, 200);
        let frames = pan(&wide, 20, 320, 200);
        let params = Params {
            max_frames: 6,
            ..Params::default()
        };
        let (chosen, stats) = run(&frames, params);
        assert_eq!(chosen.len(), 6);
        assert!(stats.capped > 0);
    }
}
