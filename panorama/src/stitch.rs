//! OpenCV's Stitcher, with its failures put in words a user can act on.
//! Runs inside the stitch worker process (see `worker.rs`), whose memory is
//! capped, so an impossible panorama ends in "out of memory", not a crash.

use opencv::core::{
    self, Mat, Ptr, Size, TermCriteria, TermCriteria_COUNT, TermCriteria_EPS, UMat, Vector,
};
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
    /// The job ran past its time limit and was stopped.
    TimedOut,
    /// Someone stopped it (or the panel was closing).
    Cancelled,
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
            Failure::TimedOut => {
                "stopped at the time limit (panorama_time_limit_secs): the frames \
                 match poorly or show the same view more than once; choose a shorter range"
                    .into()
            }
            Failure::Cancelled => "stopped before it finished".into(),
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

/// Bundle adjustment stops when an iteration moves the cameras by less than
/// this (relative L2), or after BA_MAX_ITERATIONS. OpenCV's default (1000,
/// DBL_EPSILON) never converges by epsilon, so it always ran 1000 iterations.
const BA_EPSILON: f64 = 1e-6;
const BA_MAX_ITERATIONS: i32 = 200;
/// Matching all pairs of more ordered frames than this takes many minutes.
const ALL_PAIRS_MAX_FRAMES: usize = 30;

/// n x n CV_8U mask allowing only pairs (i, i+1). Not BestOf2NearestRangeMatcher:
/// OpenCV 4.6's Stitcher ignores its range (non-virtual operator()).
fn neighbour_mask(n: usize) -> opencv::Result<UMat> {
    let n = n as i32;
    let mut m = Mat::zeros(n, n, core::CV_8U)?.to_mat()?;
    for i in 0..n - 1 {
        *m.at_2d_mut::<u8>(i, i + 1)? = 1;
        *m.at_2d_mut::<u8>(i + 1, i)? = 1;
    }
    m.get_umat_def(core::AccessFlag::ACCESS_READ)?.try_clone()
}

fn stitcher(
    mode: Mode,
    neighbours_of: Option<usize>,
    opencv_defaults: bool,
) -> opencv::Result<Ptr<Stitcher>> {
    let mut stitcher = Stitcher::create(match mode {
        Mode::Panorama => Stitcher_Mode::PANORAMA,
        Mode::Scans => Stitcher_Mode::SCANS,
    })?;
    if opencv_defaults {
        return Ok(stitcher);
    }
    // The mode's own adjuster (ray / affine-partial); the Ptr is shared, set it back anyway.
    let mut adjuster = stitcher.bundle_adjuster()?;
    adjuster.set_term_criteria(TermCriteria::new(
        TermCriteria_COUNT + TermCriteria_EPS,
        BA_MAX_ITERATIONS,
        BA_EPSILON,
    )?)?;
    stitcher.set_bundle_adjuster(adjuster)?;
    if let Some(n) = neighbours_of {
        stitcher.set_matching_mask(&neighbour_mask(n)?)?;
    }
    Ok(stitcher)
}

/// Matches and places the frames: the stitcher ready to compose, and how many frames it kept.
fn estimate(
    images: &Vector<Mat>,
    mode: Mode,
    neighbours: bool,
    opencv_defaults: bool,
) -> Result<(Ptr<Stitcher>, usize), Failure> {
    let mut s = stitcher(mode, neighbours.then_some(images.len()), opencv_defaults).map_err(cv)?;
    status(s.estimate_transform_def(images).map_err(cv)?)?;
    let used = s.component().map_err(cv)?.len();
    Ok((s, used))
}

/// Stitches `frames`, reporting each stage through `stage`. `ordered`: the
/// frames are in footage order (video, recordings), so only neighbours are
/// matched; if that chain breaks (near-duplicate or featureless frame), every
/// pair is matched, as for photo folders, which pass `false`.
/// `opencv_defaults`: OpenCV's own settings (every pair matched, bundle
/// adjustment to 1000 iterations), kept to measure ours against.
pub fn stitch(
    frames: &[Mat],
    mode: Mode,
    ordered: bool,
    opencv_defaults: bool,
    stage: &mut dyn FnMut(&str),
) -> Result<Stitched, Failure> {
    let ordered = ordered && !opencv_defaults;
    if frames.len() < 2 {
        return Err(Failure::TooFewFrames(frames.len()));
    }
    let mut images = Vector::<Mat>::new();
    for f in frames {
        images.push(cap_size(f).map_err(cv)?);
    }
    stage("matching features and estimating the camera motion");
    let mut estimated = estimate(&images, mode, ordered, opencv_defaults);
    let complete = matches!(&estimated, Ok((_, used)) if *used == images.len());
    if ordered && !complete && images.len() <= ALL_PAIRS_MAX_FRAMES {
        let all_pairs = estimate(&images, mode, false, false);
        let better = match (&all_pairs, &estimated) {
            (Ok((_, a)), Ok((_, n))) => a > n,
            (Err(_), Ok(_)) => false,
            (_, Err(_)) => true,
        };
        if better {
            estimated = all_pairs;
        }
    }
    let (mut stitcher, used) = estimated?;
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
