//! A V4L2 webcam through nokhwa. MJPEG is preferred: when nothing asks for
//! resizing, re-encoding or an overlay, the camera's own JPEG goes out as it
//! is. Other pixel formats are converted to BGR for the encoder
//! (`image::from_raw`).

use std::path::Path;

use super::{Picture, Source, SourceError};
use crate::image::{RawFormat, from_raw};
use bytes::Bytes;
use nokhwa::Camera;
use nokhwa::utils::{CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType};

/// Formats we can use, best first.
const FORMATS: &[FrameFormat] = &[
    FrameFormat::MJPEG,
    FrameFormat::YUYV,
    FrameFormat::NV12,
    FrameFormat::RAWRGB,
    FrameFormat::RAWBGR,
    FrameFormat::GRAY,
];

pub struct WebcamSource {
    name: String,
    camera: Camera,
    width: u32,
    height: u32,
    fps: f64,
    last: Option<nokhwa::Buffer>,
}

impl WebcamSource {
    pub fn open_index(index: u32) -> Result<Self, SourceError> {
        Self::open(index, format!("webcam:{index}"))
    }

    /// `/dev/videoN`, or a stable link to one such as `/dev/v4l/by-id/...`.
    pub fn open_path(path: &Path) -> Result<Self, SourceError> {
        let name = format!("webcam:{}", path.display());
        let real = std::fs::canonicalize(path).map_err(|e| SourceError::Open {
            source_name: name.clone(),
            reason: e.to_string(),
        })?;
        let index = real
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.strip_prefix("video"))
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| SourceError::Open {
                source_name: name.clone(),
                reason: format!("{} is not a /dev/videoN device", real.display()),
            })?;
        Self::open(index, name)
    }

    fn open(index: u32, name: String) -> Result<Self, SourceError> {
        let fail = |e: nokhwa::NokhwaError| SourceError::Open {
            source_name: name.clone(),
            reason: e.to_string(),
        };
        let request =
            RequestedFormat::with_formats(RequestedFormatType::AbsoluteHighestFrameRate, FORMATS);
        let mut camera = Camera::new(CameraIndex::Index(index), request).map_err(fail)?;
        camera.open_stream().map_err(fail)?;
        let format = camera.camera_format();
        Ok(Self {
            width: format.resolution().width(),
            height: format.resolution().height(),
            fps: f64::from(format.frame_rate().max(1)),
            name,
            camera,
            last: None,
        })
    }

    fn capture_error(&self, reason: String) -> SourceError {
        SourceError::Capture {
            source_name: self.name.clone(),
            reason,
        }
    }
}

impl Source for WebcamSource {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn native_fps(&self) -> Option<f64> {
        Some(self.fps)
    }

    fn grab(&mut self, _target_fps: f64) -> Result<(), SourceError> {
        let buffer = self
            .camera
            .frame()
            .map_err(|e| self.capture_error(e.to_string()))?;
        self.last = Some(buffer);
        Ok(())
    }

    fn retrieve(&mut self) -> Result<Picture, SourceError> {
        let buffer = self
            .last
            .take()
            .ok_or_else(|| self.capture_error("no frame grabbed".into()))?;
        let res = buffer.resolution();
        let (w, h) = (res.width(), res.height());
        let data = buffer.buffer();
        let format = buffer.source_frame_format();
        let raw = match format {
            FrameFormat::MJPEG => {
                return Ok(Picture::Jpeg {
                    data: Bytes::copy_from_slice(data),
                    width: w,
                    height: h,
                });
            }
            FrameFormat::YUYV => RawFormat::Yuyv,
            FrameFormat::NV12 => RawFormat::Nv12,
            FrameFormat::RAWRGB => RawFormat::Rgb,
            FrameFormat::RAWBGR => RawFormat::Bgr,
            FrameFormat::GRAY => RawFormat::Gray,
        };
        from_raw(raw, data, w, h)
            .map(Picture::Bgr)
            .map_err(|short| self.capture_error(short.to_string()))
    }
}
