//! Turns a captured picture into the JPEG that goes on the wire: scale down
//! to the width limit, burn in the overlay, encode with libjpeg-turbo. A
//! webcam's own JPEG passes through untouched when nothing asks for a change.

use bytes::Bytes;
use turbojpeg::{Compressor, Decompressor, Image, PixelFormat, Subsamp};

use crate::image::Bgr;
use crate::overlay::{clock_text, put};
use crate::source::Picture;

/// Encoding settings that may change while streaming (the panel's `Configure`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncodeSettings {
    /// `None`: 80, except that a webcam's own JPEG passes through.
    pub quality: Option<u8>,
    pub fps: f64,
    pub max_width: Option<u32>,
    pub overlay: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("JPEG codec: {0}")]
    Jpeg(#[from] turbojpeg::Error),
}

/// The output of one encode.
pub struct Encoded {
    pub jpeg: Bytes,
    /// True when the source's JPEG went out as it was.
    pub passthrough: bool,
}

/// Reusable encoder state (libjpeg-turbo handles), one per capture thread.
pub struct FrameEncoder {
    compressor: Compressor,
    decompressor: Decompressor,
    label: String,
}

/// Output size for a source of `w`x`h` under a width limit (even sizes, aspect kept).
pub fn output_size(w: u32, h: u32, max_width: Option<u32>) -> (u32, u32) {
    match max_width {
        Some(max) if w > max => {
            let nw = max & !1;
            let nh = ((u64::from(h) * u64::from(nw) + u64::from(w) / 2) / u64::from(w)) as u32;
            (nw.max(2), (nh & !1).max(2))
        }
        _ => (w, h),
    }
}

impl FrameEncoder {
    pub fn new(label: &str) -> Result<Self, EncodeError> {
        let mut compressor = Compressor::new()?;
        compressor.set_subsamp(Subsamp::Sub2x2)?;
        Ok(Self {
            compressor,
            decompressor: Decompressor::new()?,
            label: label.to_string(),
        })
    }

    pub fn encode(
        &mut self,
        picture: Picture,
        settings: &EncodeSettings,
        capture_us: u64,
    ) -> Result<Encoded, EncodeError> {
        let bgr = match picture {
            Picture::Jpeg {
                data,
                width,
                height,
            } => {
                let (ow, oh) = output_size(width, height, settings.max_width);
                if settings.quality.is_none() && !settings.overlay && (ow, oh) == (width, height) {
                    return Ok(Encoded {
                        jpeg: data,
                        passthrough: true,
                    });
                }
                self.decode(&data)?
            }
            Picture::Bgr(m) => m,
        };
        let (ow, oh) = output_size(bgr.width, bgr.height, settings.max_width);
        let mut out = if (ow, oh) == (bgr.width, bgr.height) {
            bgr
        } else {
            bgr.resize_area(ow, oh)
        };
        if settings.overlay {
            let text = format!("{}  {}", self.label, clock_text(capture_us));
            let scale = (oh / 240).max(1);
            let y = oh as i32 - (10 * scale) as i32 - 4;
            put(&mut out, &text, 8, y, scale);
        }
        self.compressor.set_quality(i32::from(
            settings.quality.unwrap_or(crate::config::DEFAULT_QUALITY),
        ))?;
        let image = Image {
            pixels: out.data.as_slice(),
            width: ow as usize,
            pitch: ow as usize * 3,
            height: oh as usize,
            format: PixelFormat::BGR,
        };
        let jpeg = self.compressor.compress_to_vec(image)?;
        Ok(Encoded {
            jpeg: Bytes::from(jpeg),
            passthrough: false,
        })
    }

    fn decode(&mut self, jpeg: &[u8]) -> Result<Bgr, EncodeError> {
        let header = self.decompressor.read_header(jpeg)?;
        let mut out = Bgr {
            width: header.width as u32,
            height: header.height as u32,
            data: vec![0; header.width * header.height * 3],
        };
        let image = Image {
            pixels: out.data.as_mut_slice(),
            width: header.width,
            pitch: header.width * 3,
            height: header.height,
            format: PixelFormat::BGR,
        };
        self.decompressor.decompress(jpeg, image)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_limit_keeps_aspect_and_even_sizes() {
        assert_eq!(output_size(768, 576, Some(384)), (384, 288));
        assert_eq!(output_size(1920, 1080, Some(641)), (640, 360));
        assert_eq!(output_size(640, 360, Some(1280)), (640, 360));
        assert_eq!(output_size(640, 360, None), (640, 360));
    }

    #[test]
    fn webcam_jpeg_passes_through_only_when_nothing_asks_for_a_change() {
        let mut enc = FrameEncoder::new("cam").unwrap();
        let bgr = Bgr::filled(96, 64, [10, 200, 30]);
        let plain = EncodeSettings {
            quality: Some(90),
            fps: 10.0,
            max_width: None,
            overlay: false,
        };
        let jpeg = enc.encode(Picture::Bgr(bgr), &plain, 0).unwrap().jpeg;
        let webcam = |data: &Bytes| Picture::Jpeg {
            data: data.clone(),
            width: 96,
            height: 64,
        };
        let untouched = EncodeSettings {
            quality: None,
            ..plain
        };
        let out = enc.encode(webcam(&jpeg), &untouched, 0).unwrap();
        assert!(out.passthrough);
        assert_eq!(out.jpeg.as_ptr(), jpeg.as_ptr(), "same bytes, not a copy");
        let smaller = EncodeSettings {
            max_width: Some(48),
            ..untouched
        };
        let out = enc.encode(webcam(&jpeg), &smaller, 0).unwrap();
        assert!(!out.passthrough);
        let header = Decompressor::new().unwrap().read_header(&out.jpeg).unwrap();
        assert_eq!((header.width, header.height), (48, 32));
        let with_overlay = EncodeSettings {
            overlay: true,
            ..untouched
        };
        assert!(
            !enc.encode(webcam(&jpeg), &with_overlay, 0)
                .unwrap()
                .passthrough
        );
    }
}
