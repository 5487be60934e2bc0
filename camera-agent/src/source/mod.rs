//! Where pictures come from: a webcam, a video file, or a synthetic test
//! pattern. Each source paces itself at its own natural rate and hands out
//! the latest picture on request; it never encodes or sends anything.
//!
//! Video files are read through OpenCV, in builds with the `file` feature
//! only: a camera host streams its webcam and needs none of it.

#[cfg(feature = "file")]
mod file;
mod test_pattern;
mod webcam;

use bytes::Bytes;

use crate::config::SourceSpec;
use crate::image::Bgr;

#[cfg(feature = "file")]
pub use file::FileSource;
pub use test_pattern::TestPattern;
pub use webcam::WebcamSource;

/// A captured picture, before encoding.
pub enum Picture {
    /// 8-bit BGR pixels.
    Bgr(Bgr),
    /// A JPEG the device made itself (a webcam's MJPEG), with its size.
    Jpeg {
        data: Bytes,
        width: u32,
        height: u32,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open {source_name}: {reason}")]
    Open { source_name: String, reason: String },
    #[error("{source_name} stopped delivering frames: {reason}")]
    Capture { source_name: String, reason: String },
    /// A file played once reached its end (only files end).
    #[error("{source_name} reached its end")]
    #[cfg_attr(not(feature = "file"), allow(dead_code))]
    Ended { source_name: String },
}

/// A camera or anything that stands in for one. Not `Send`: webcams must be
/// used on the thread that opened them, so each source lives on the capture thread.
pub trait Source {
    /// What this source is, for logs and errors ("file:/x/vtest.avi").
    fn describe(&self) -> String;
    /// Picture size, in pixels.
    fn size(&self) -> (u32, u32);
    /// The rate the source delivers at by itself, if it has one.
    fn native_fps(&self) -> Option<f64>;
    /// Blocks until the next frame is captured. `target_fps` paces sources
    /// that have no rate of their own (the test pattern).
    fn grab(&mut self, target_fps: f64) -> Result<(), SourceError>;
    /// When the frame last grabbed was captured, if the source knows
    /// better than "now": a file's frame is due at its place in the file
    /// (its soundtrack is timed the same way), however late it was read.
    fn capture_time_us(&self) -> Option<u64> {
        None
    }
    /// The picture of the frame last grabbed. Not called for frames that are
    /// dropped, so dropping costs no decoding where the source can avoid it.
    fn retrieve(&mut self) -> Result<Picture, SourceError>;
}

/// Where a played file is on the frames' clock: which pass over it (a
/// looping file starts a new one at each rewind), and the capture time the
/// pass's start stands at. The file source sets it; the file's soundtrack
/// (`audio`) follows it, so sound and pictures keep in step.
#[derive(Debug, Clone, Default)]
pub struct PlayClock(std::sync::Arc<std::sync::Mutex<Option<Pass>>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub number: u64,
    /// µs since the epoch at the pass's time 0.
    pub start_us: u64,
}

impl PlayClock {
    pub fn get(&self) -> Option<Pass> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new pass over the file starts at `start_us`.
    pub fn new_pass(&self, start_us: u64) {
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let number = p.map_or(0, |p| p.number + 1);
        *p = Some(Pass { number, start_us });
    }
}

/// Opens the source a spec names; a missing device or unreadable file is an
/// error that names it. A file sets `clock` as it plays.
pub fn open(
    spec: &SourceSpec,
    loop_file: bool,
    label: &str,
    clock: &PlayClock,
) -> Result<Box<dyn Source>, SourceError> {
    #[cfg(not(feature = "file"))]
    let _ = clock;
    Ok(match spec {
        SourceSpec::TestPattern { width, height } => {
            Box::new(TestPattern::new(*width, *height, label)?)
        }
        #[cfg(feature = "file")]
        SourceSpec::File(path) => Box::new(FileSource::open(path, loop_file, clock.clone())?),
        #[cfg(not(feature = "file"))]
        SourceSpec::File(path) => {
            let _ = loop_file;
            return Err(SourceError::Open {
                source_name: format!("file:{}", path.display()),
                reason: "this camera-agent plays no files: it was built without the `file` \
                         feature (cargo build --release -p camera-agent --features file)"
                    .into(),
            });
        }
        SourceSpec::WebcamIndex(i) => Box::new(WebcamSource::open_index(*i)?),
        SourceSpec::WebcamPath(p) => Box::new(WebcamSource::open_path(p)?),
    })
}

/// What the rest of the agent needs to know about an opened source.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    pub describe: String,
    pub size: (u32, u32),
    pub native_fps: Option<f64>,
}

impl SourceInfo {
    pub fn of(s: &dyn Source) -> Self {
        Self {
            describe: s.describe(),
            size: s.size(),
            native_fps: s.native_fps(),
        }
    }
}

/// Turns an OpenCV error into the text of a source error.
#[cfg(feature = "file")]
pub(crate) fn cv_reason(e: opencv::Error) -> String {
    e.message
}
