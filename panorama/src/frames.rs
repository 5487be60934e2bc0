//! Frames from footage: a video file, a folder of images, or recording
//! files (each with a capture-time range), one at a time.

use std::path::{Path, PathBuf};

use opencv::core::{Mat, Vector};
use opencv::imgcodecs;
use opencv::prelude::*;
use opencv::videoio;

use super::Source;
use cctv_mkv::scan as mkv_scan;

/// Footage that gives no frames, and why.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("cannot open {path}: {why}")]
    Open { path: PathBuf, why: String },
    #[error("cannot open {0}: not a video OpenCV can read")]
    NotVideo(PathBuf),
    #[error("{0} has no readable frames")]
    NoFrames(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} has no images (jpg, png, bmp, tif)")]
    NoImages(PathBuf),
    #[error("cannot read {0}: not an image")]
    NotImage(PathBuf),
    #[error(transparent)]
    Recording(#[from] mkv_scan::ScanError),
    #[error("no frames in the chosen range")]
    EmptyRange,
}

/// Feeds every frame of the source to `f(index, frame)`; stops early when
/// `f` returns false.
pub fn for_each_frame(
    source: &Source,
    f: &mut dyn FnMut(usize, &Mat) -> bool,
) -> Result<(), FrameError> {
    match source {
        Source::Video(path) => video(path, f),
        Source::Images(dir) => images(dir, f),
        Source::Recordings(files) => recordings(files, f),
    }
}

fn video(path: &Path, f: &mut dyn FnMut(usize, &Mat) -> bool) -> Result<(), FrameError> {
    let mut cap =
        videoio::VideoCapture::from_file(path, videoio::CAP_ANY).map_err(|e| FrameError::Open {
            path: path.to_path_buf(),
            why: e.message,
        })?;
    if !cap.is_opened().unwrap_or(false) {
        return Err(FrameError::NotVideo(path.to_path_buf()));
    }
    let mut frame = Mat::default();
    let mut i = 0;
    while cap.read(&mut frame).unwrap_or(false) && !frame.empty() {
        if !f(i, &frame) {
            break;
        }
        i += 1;
    }
    if i == 0 {
        return Err(FrameError::NoFrames(path.to_path_buf()));
    }
    Ok(())
}

/// The folder's images in name order.
fn images(dir: &Path, f: &mut dyn FnMut(usize, &Mat) -> bool) -> Result<(), FrameError> {
    let is_image = |p: &PathBuf| {
        p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
            matches!(
                x.to_ascii_lowercase().as_str(),
                "jpg" | "jpeg" | "png" | "bmp" | "tif" | "tiff"
            )
        })
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| FrameError::Read {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(is_image)
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(FrameError::NoImages(dir.to_path_buf()));
    }
    for (i, p) in files.iter().enumerate() {
        let m = imgcodecs::imread(p, imgcodecs::IMREAD_COLOR).map_err(|e| FrameError::Open {
            path: p.clone(),
            why: e.message,
        })?;
        if m.empty() {
            return Err(FrameError::NotImage(p.clone()));
        }
        if !f(i, &m) {
            break;
        }
    }
    Ok(())
}

/// The frames of each recording inside its range; frames that cannot be
/// read or decoded are skipped.
fn recordings(
    files: &[(PathBuf, Option<(i64, i64)>)],
    f: &mut dyn FnMut(usize, &Mat) -> bool,
) -> Result<(), FrameError> {
    let mut i = 0;
    for (path, range) in files {
        let scan = mkv_scan::scan(path)?;
        let mut file = std::fs::File::open(path).map_err(|source| FrameError::Read {
            path: path.clone(),
            source,
        })?;
        for fr in &scan.frames {
            let us = scan.capture_us(fr);
            if range.is_some_and(|(a, b)| us < a || us > b) {
                continue;
            }
            let Ok(jpeg) = mkv_scan::read_frame(&mut file, fr) else {
                continue;
            };
            let decoded =
                imgcodecs::imdecode(&Vector::<u8>::from_slice(&jpeg), imgcodecs::IMREAD_COLOR);
            let Ok(m) = decoded else {
                continue;
            };
            if m.empty() {
                continue;
            }
            if !f(i, &m) {
                return Ok(());
            }
            i += 1;
        }
    }
    if i == 0 {
        return Err(FrameError::EmptyRange);
    }
    Ok(())
}
