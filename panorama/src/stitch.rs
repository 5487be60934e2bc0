//! OpenCV's Stitcher, with its failures put in words a user can act on.
//! Runs inside the stitch worker process (see `worker.rs`), whose memory is
//! capped, so an impossible panorama ends in "out of memory", not a crash.

use opencv::core::{Mat, Size, Vector};
use opencv::imgproc;
use opencv::prelude::*;
use opencv::stitching::{Stitcher, Stitcher_Mode, Stitcher_Status};
use serde::{Deserialize, Serialize};

/// Largest frame handed to the stitcher, in pixels; larger ones are scaled down.
pub const MAX_FRAME_PIXELS: i32 = 3_200_000;

/// How the stitcher models the footage (the engine's type: it is stored
/// with each panorama).
pub use cctv_engine::StitchMode as Mode;

/// Why a stitch failed, by kind; `message` says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Failure {
    NotEnoughOverlap,
    Homography,
    CameraParams,
    TooFewFrames(usize),
    OutOfMemory(String),
    Other(String),
}

impl Failure {
    pub fn message(&self) -> String {
        match self {
            Failure::NotEnoughOverlap => {
                "frames do not overlap: pan slower or choose a longer range".into()
            }
            Failure::Homography => {
                "homography estimation failed: the frames match too weakly to place them; \
                 choose footage where the camera pans over a detailed scene"
                    .into()
            }
            Failure::CameraParams => {
                "camera parameter adjustment failed: the frames overlap but do not fit one \
                 panorama; try scans mode for a flat subject, or a shorter range"
                    .into()
            }
            Failure::TooFewFrames(n) => format!(
                "too few frames: {n} usable, at least 2 are needed; choose a longer range or footage where the camera moves"
            ),
            Failure::OutOfMemory(d) => format!(
                "out of memory while stitching ({d}): the frames do not form a sensible panorama in this mode; \
                 try scans mode or a shorter range"
            ),
            Failure::Other(d) => format!("stitching failed: {d}"),
        }
    }
}

fn cv(e: opencv::Error) -> Failure {
    let first_line = e.message.lines().next().unwrap_or("").trim().to_string();
    if e.code == opencv::core::StsNoMem || e.message.to_lowercase().contains("memory") {
        // "Failed to allocate 177930425124 bytes" -> "it needed 178 GB"
        let bytes = e
            .message
            .split("allocate ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok());
        Failure::OutOfMemory(match bytes {
            Some(b) => format!("it needed {:.0} GB", b / 1e9),
            None => first_line,
        })
    } else {
        Failure::Other(first_line)
    }
}

fn status(s: Stitcher_Status) -> Result<(), Failure> {
    match s {
        Stitcher_Status::OK => Ok(()),
        Stitcher_Status::ERR_NEED_MORE_IMGS => Err(Failure::NotEnoughOverlap),
        Stitcher_Status::ERR_HOMOGRAPHY_EST_FAIL => Err(Failure::Homography),
        Stitcher_Status::ERR_CAMERA_PARAMS_ADJUST_FAIL => Err(Failure::CameraParams),
    }
}

/// Scales a frame down to at most [`MAX_FRAME_PIXELS`].
pub fn cap_size(m: &Mat) -> opencv::Result<Mat> {
    let px = m.cols() * m.rows();
    if px <= MAX_FRAME_PIXELS {
        return Ok(m.clone());
    }
    let f = (f64::from(MAX_FRAME_PIXELS) / f64::from(px)).sqrt();
    let mut out = Mat::default();
    let size = Size::new(
        (f64::from(m.cols()) * f) as i32,
        (f64::from(m.rows()) * f) as i32,
    );
    imgproc::resize(m, &mut out, size, 0.0, 0.0, imgproc::INTER_AREA)?;
    Ok(out)
}

/// The panorama and how many of the frames ended up in it.
pub struct Stitched {
    pub image: Mat,
    pub used: usize,
}

/// Stitches `frames`, reporting each stage through `stage`.
pub fn stitch(
    frames: &[Mat],
    mode: Mode,
    stage: &mut dyn FnMut(&str),
) -> Result<Stitched, Failure> {
    if frames.len() < 2 {
        return Err(Failure::TooFewFrames(frames.len()));
    }
    let mut images = Vector::<Mat>::new();
    for f in frames {
        images.push(cap_size(f).map_err(cv)?);
    }
    let cv_mode = match mode {
        Mode::Panorama => Stitcher_Mode::PANORAMA,
        Mode::Scans => Stitcher_Mode::SCANS,
    };
    let mut stitcher = Stitcher::create(cv_mode).map_err(cv)?;
    stage("matching features and estimating the camera motion");
    status(stitcher.estimate_transform_def(&images).map_err(cv)?)?;
    let used = stitcher.component().map_err(cv)?.len();
    if used < 2 {
        return Err(Failure::NotEnoughOverlap);
    }
    stage("warping and blending");
    let mut pano = Mat::default();
    status(stitcher.compose_panorama(&mut pano).map_err(cv)?)?;
    if pano.empty() {
        return Err(Failure::Other(
            "the stitcher returned an empty image".into(),
        ));
    }
    Ok(Stitched { image: pano, used })
}
