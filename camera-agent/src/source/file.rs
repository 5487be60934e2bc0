//! A video file played as a camera: any file OpenCV can read, paced at the
//! file's own frame rate, looping by default. Each pass over the file is
//! published on a `PlayClock` for the file's soundtrack to follow.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use opencv::core::Mat;
use opencv::prelude::*;
use opencv::videoio::{self, VideoCapture};

use super::{Picture, PlayClock, Source, SourceError, cv_reason};

/// Further behind than this, a file plays on from its start instead of
/// skipping through to where it should be.
const MAX_BEHIND: Duration = Duration::from_secs(10);
/// Late by up to this much, a file catches up by reading without waiting.
const CATCH_UP: Duration = Duration::from_millis(500);
use crate::image::Bgr;

pub struct FileSource {
    path: PathBuf,
    capture: VideoCapture,
    width: u32,
    height: u32,
    fps: f64,
    loop_file: bool,
    /// When the current pass over the file started, and frames grabbed in it.
    pass_started: Instant,
    pass_frames: u64,
    clock: PlayClock,
    /// The capture time of the pass's start, and of the frame last grabbed.
    pass_start_us: u64,
    due_us: u64,
}

impl FileSource {
    pub fn open(path: &Path, loop_file: bool, clock: PlayClock) -> Result<Self, SourceError> {
        let name = format!("file:{}", path.display());
        let fail = |reason: String| SourceError::Open {
            source_name: name.clone(),
            reason,
        };
        if !path.is_file() {
            return Err(fail("no such file".into()));
        }
        if let Err(e) = std::fs::File::open(path) {
            return Err(fail(e.to_string()));
        }
        let path_str = path
            .to_str()
            .ok_or_else(|| fail("path is not UTF-8".into()))?;
        let capture =
            VideoCapture::from_file(path_str, videoio::CAP_ANY).map_err(|e| fail(cv_reason(e)))?;
        if !capture.is_opened().map_err(|e| fail(cv_reason(e)))? {
            return Err(fail("not a video file OpenCV can read".into()));
        }
        let prop = |p| capture.get(p).unwrap_or(0.0);
        let (width, height) = (
            prop(videoio::CAP_PROP_FRAME_WIDTH),
            prop(videoio::CAP_PROP_FRAME_HEIGHT),
        );
        if width < 1.0 || height < 1.0 {
            return Err(fail("the file has no video stream".into()));
        }
        let fps = match prop(videoio::CAP_PROP_FPS) {
            f if f.is_finite() && (0.5..=240.0).contains(&f) => f,
            _ => 25.0,
        };
        Ok(Self {
            path: path.to_path_buf(),
            capture,
            width: width as u32,
            height: height as u32,
            fps,
            loop_file,
            pass_started: Instant::now(),
            pass_frames: 0,
            clock,
            pass_start_us: 0,
            due_us: 0,
        })
    }

    /// The capture time of the pass's time 0, from when it started.
    fn started_at_us(&self) -> u64 {
        cctv_protocol::now_us().saturating_sub(self.pass_started.elapsed().as_micros() as u64)
    }

    fn capture_error(&self, reason: String) -> SourceError {
        SourceError::Capture {
            source_name: self.describe(),
            reason,
        }
    }

    fn rewind(&mut self) -> Result<(), SourceError> {
        // Seeking is unreliable for some codecs; reopening always works.
        let reopened = Self::open(&self.path, self.loop_file, self.clock.clone())?;
        self.capture = reopened.capture;
        self.pass_started = Instant::now();
        self.pass_frames = 0;
        self.pass_start_us = self.started_at_us();
        self.clock.new_pass(self.pass_start_us);
        Ok(())
    }
}

impl FileSource {
    /// Reads the next frame (without decoding its picture), rewinding at
    /// the end; true if it started a new pass.
    fn next_frame(&mut self) -> Result<bool, SourceError> {
        let mut rewound = false;
        let mut grabbed = self
            .capture
            .grab()
            .map_err(|e| self.capture_error(cv_reason(e)))?;
        if !grabbed {
            if !self.loop_file {
                return Err(SourceError::Ended {
                    source_name: self.describe(),
                });
            }
            if self.pass_frames == 0 {
                return Err(self.capture_error("the file has no readable frames".into()));
            }
            self.rewind()?;
            rewound = true;
            grabbed = self
                .capture
                .grab()
                .map_err(|e| self.capture_error(cv_reason(e)))?;
            if !grabbed {
                return Err(self.capture_error("no frame after rewinding".into()));
            }
        }
        self.due_us =
            self.pass_start_us + (self.pass_frames as f64 * 1e6 / self.fps).round() as u64;
        self.pass_frames += 1;
        Ok(rewound)
    }
}

impl Source for FileSource {
    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }

    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn native_fps(&self) -> Option<f64> {
        Some(self.fps)
    }

    fn grab(&mut self, _target_fps: f64) -> Result<(), SourceError> {
        if self.pass_frames == 0 {
            // The first frame of this source (opened, or opened again).
            self.pass_started = Instant::now();
            self.pass_start_us = self.started_at_us();
            self.clock.new_pass(self.pass_start_us);
        }
        let due = self.pass_started + Duration::from_secs_f64(self.pass_frames as f64 / self.fps);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > MAX_BEHIND {
            // Suspended or starved for long: play on from the start, now.
            self.rewind()?;
        } else {
            // Late (a busy machine): up to half a second is caught up by
            // not waiting; beyond, frames whose time has passed are left
            // out, as a camera would miss them. Pictures and sound stay on
            // the file's clock.
            let late = ((now - due).saturating_sub(CATCH_UP).as_secs_f64() * self.fps) as u64;
            for _ in 0..late {
                if self.next_frame()? {
                    break; // a new pass starts now
                }
            }
        }
        self.next_frame()?;
        Ok(())
    }

    fn capture_time_us(&self) -> Option<u64> {
        Some(self.due_us)
    }

    fn retrieve(&mut self) -> Result<Picture, SourceError> {
        let mut frame = Mat::default();
        let ok = self
            .capture
            .retrieve(&mut frame, 0)
            .map_err(|e| self.capture_error(cv_reason(e)))?;
        if !ok || frame.empty() {
            return Err(self.capture_error("could not decode a frame".into()));
        }
        to_bgr(&frame).map_err(|e| self.capture_error(cv_reason(e)))
    }
}

/// OpenCV's decoded picture as the agent's own: 8-bit BGR, rows packed.
fn to_bgr(frame: &Mat) -> opencv::Result<Picture> {
    let packed;
    let frame = if frame.is_continuous() {
        frame
    } else {
        packed = frame.try_clone()?;
        &packed
    };
    if frame.typ() != opencv::core::CV_8UC3 {
        return Err(opencv::Error::new(
            opencv::core::StsUnsupportedFormat,
            "the decoded picture is not 8-bit BGR",
        ));
    }
    Ok(Picture::Bgr(Bgr {
        width: frame.cols() as u32,
        height: frame.rows() as u32,
        data: frame.data_bytes()?.to_vec(),
    }))
}
