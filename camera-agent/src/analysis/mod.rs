//! What the agent understands of its own picture: a motion score against a
//! slowly adapting background, and tamper (covered, blinded, defocused,
//! moved) against a learned reference. It works on a small grey copy of
//! each frame (about 160 pixels wide), so it costs a fraction of the JPEG
//! encode it rides with.
//!
//! [`Analyzer::analyze`] takes one grey frame and its capture time and says
//! whether the scene moves and whether the camera is tampered with; the
//! capture loop decides what to send.
//!
//! The capture loop (`crate::capture`) calls it on every frame it sends
//! while the panel takes analysis, and paces frames by it (`crate::pace`).

mod motion;
mod tamper;

pub use motion::MotionSettings;
pub use tamper::TamperKind;

use crate::image::Bgr;

/// Width the analysis works at; the height keeps the aspect.
pub const ANALYSIS_WIDTH: u32 = 160;

/// An 8-bit grey picture, rows packed.
#[derive(Clone, PartialEq, Eq)]
pub struct Gray {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Gray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gray({}x{})", self.width, self.height)
    }
}

impl Gray {
    /// A grey copy of `bgr` about `width` wide: each pixel the mean luma
    /// (BT.601) of two samples across the middle row of the box it covers.
    /// Sampling, not averaging the whole box, reads a fifth of the rows and
    /// keeps this far cheaper than the encode; the motion noise floor
    /// adapts to the grain left in.
    pub fn from_bgr(bgr: &Bgr, width: u32) -> Gray {
        let (sw, sh) = (bgr.width.max(1) as usize, bgr.height.max(1) as usize);
        let w = (width as usize).clamp(1, sw);
        let h = (sh * w / sw).max(1);
        // Columns a quarter and three quarters into each box; its middle row.
        let at = |i: usize, out: usize, src: usize, q: usize| {
            ((4 * i + q) * src / (4 * out)).min(src - 1)
        };
        let xs: Vec<[usize; 2]> = (0..w)
            .map(|x| [at(x, w, sw, 1) * 3, at(x, w, sw, 3) * 3])
            .collect();
        let luma = |row: &[u8], o: usize| {
            29 * u32::from(row[o]) + 150 * u32::from(row[o + 1]) + 77 * u32::from(row[o + 2])
        };
        let stride = sw * 3;
        let mut data = Vec::with_capacity(w * h);
        for y in 0..h {
            let row = &bgr.data[at(y, h, sh, 2) * stride..][..stride];
            for &[x0, x1] in &xs {
                data.push(((luma(row, x0) + luma(row, x1) + 256) >> 9) as u8);
            }
        }
        Gray {
            width: w as u32,
            height: h as u32,
            data,
        }
    }
}

/// Grey copies of JPEG frames (a webcam's own MJPEG) at the analysis size,
/// decoded scaled down by libjpeg-turbo (1/2, 1/4 or 1/8: it skips most of
/// the work), never at full size.
pub struct GrayDecoder {
    decompressor: turbojpeg::Decompressor,
}

impl GrayDecoder {
    pub fn new() -> Result<Self, turbojpeg::Error> {
        Ok(Self {
            decompressor: turbojpeg::Decompressor::new()?,
        })
    }

    /// `jpeg` in grey, at the smallest scale at least `width` wide.
    pub fn decode(&mut self, jpeg: &[u8], width: u32) -> Result<Gray, turbojpeg::Error> {
        use turbojpeg::ScalingFactor;
        let header = self.decompressor.read_header(jpeg)?;
        let factor = [
            ScalingFactor::ONE_EIGHTH,
            ScalingFactor::ONE_QUARTER,
            ScalingFactor::ONE_HALF,
        ]
        .into_iter()
        .find(|f| f.scale(header.width) >= width as usize)
        .unwrap_or(ScalingFactor::ONE);
        self.decompressor.set_scaling_factor(factor)?;
        let scaled = header.scaled(factor);
        let mut data = vec![0u8; scaled.width * scaled.height];
        let image = turbojpeg::Image {
            pixels: data.as_mut_slice(),
            width: scaled.width,
            pitch: scaled.width,
            height: scaled.height,
            format: turbojpeg::PixelFormat::GRAY,
        };
        self.decompressor.decompress(jpeg, image)?;
        Ok(Gray {
            width: scaled.width as u32,
            height: scaled.height as u32,
            data,
        })
    }
}

/// What one frame shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Analysis {
    /// Share of the watched picture that moves, 0 to 1.
    pub motion_score: f32,
    /// The scene moves (with hysteresis: on after two moving frames, off
    /// after `MotionSettings::quiet_secs` without).
    pub motion: bool,
    /// The camera is tampered with, and how (after it lasted a second).
    pub tamper: Option<TamperKind>,
}

/// The analysis of one camera's frames, in order.
pub struct Analyzer {
    motion: motion::MotionModel,
    tamper: tamper::TamperModel,
    /// The last frame was tampered with.
    tampered: bool,
}

impl Analyzer {
    pub fn new(settings: MotionSettings) -> Self {
        Self {
            motion: motion::MotionModel::new(settings),
            tamper: tamper::TamperModel::default(),
            tampered: false,
        }
    }

    /// Settings changed live (from the panel): the learnt background stays.
    pub fn set_motion_settings(&mut self, settings: MotionSettings) {
        self.motion.set_settings(settings);
    }

    /// Analyses the next frame, captured at `t_us` (microseconds, any epoch
    /// as long as it only grows).
    pub fn analyze(&mut self, frame: &Gray, t_us: i64) -> Analysis {
        let tamper = self.tamper.update(frame, t_us);
        // A tampered picture says nothing about the scene, and the scene
        // after it is learnt afresh.
        let (motion_score, motion) = match (tamper, self.tampered) {
            (Some(_), _) => (0.0, false),
            (None, true) => {
                self.motion.restart(frame, t_us);
                (0.0, false)
            }
            (None, false) => self.motion.update(frame, t_us),
        };
        self.tampered = tamper.is_some();
        Analysis {
            motion_score,
            motion,
            tamper,
        }
    }
}

#[cfg(test)]
mod clips;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webcam_jpeg_is_analysed_from_a_scaled_decode() {
        let mut enc = crate::encode::FrameEncoder::new("t").unwrap();
        let settings = crate::encode::EncodeSettings {
            quality: Some(90),
            fps: 10.0,
            max_width: None,
            overlay: false,
        };
        let jpeg = enc
            .encode(
                crate::source::Picture::Bgr(Bgr::filled(1280, 720, [200, 200, 200])),
                &settings,
                0,
                0,
            )
            .unwrap()
            .jpeg;
        let g = GrayDecoder::new()
            .unwrap()
            .decode(&jpeg, ANALYSIS_WIDTH)
            .unwrap();
        assert_eq!((g.width, g.height), (160, 90), "1/8 of 1280x720");
        assert!(g.data.iter().all(|v| v.abs_diff(200) <= 2));
        let bigger = GrayDecoder::new().unwrap().decode(&jpeg, 200).unwrap();
        assert_eq!(bigger.width, 320, "1/4 when 1/8 is too small");
    }

    #[test]
    fn the_grey_copy_is_small_and_weighs_green_most() {
        let mut bgr = Bgr::filled(640, 480, [0, 0, 0]);
        bgr.fill_rect(0, 0, 320, 480, [0, 255, 0]);
        let g = Gray::from_bgr(&bgr, ANALYSIS_WIDTH);
        assert_eq!((g.width, g.height), (160, 120));
        assert_eq!(g.data[0], 149, "green is 150/256 of white");
        assert_eq!(g.data[159], 0);
        let blue = Gray::from_bgr(&Bgr::filled(8, 8, [255, 0, 0]), 4);
        assert_eq!(blue.data[0], 29);
    }

    /// A bright square crossing a grey picture, one step per frame.
    fn crossing(step: usize) -> Gray {
        let mut g = Gray {
            width: 40,
            height: 30,
            data: vec![100; 1200],
        };
        let x0 = (step * 3) % 30;
        for y in 10..20 {
            for x in x0..x0 + 10 {
                g.data[y * 40 + x] = 220;
            }
        }
        g
    }

    #[test]
    fn a_larger_minimum_area_is_taken_live() {
        let mut a = Analyzer::new(MotionSettings::default());
        let seen: Vec<bool> = (0..8)
            .map(|i| a.analyze(&crossing(i), i as i64 * 100_000).motion)
            .collect();
        assert!(
            seen[2..].iter().all(|m| *m),
            "a square crossing is motion: {seen:?}"
        );
        a.set_motion_settings(MotionSettings {
            min_area: 0.5,
            quiet_secs: 0.0,
            ..Default::default()
        });
        let later: Vec<bool> = (8..16)
            .map(|i| a.analyze(&crossing(i), i as i64 * 100_000).motion)
            .collect();
        assert!(
            later.iter().all(|m| !*m),
            "under half the picture: {later:?}"
        );
        assert_eq!(TamperKind::Defocused.as_str(), "defocused");
    }
}
