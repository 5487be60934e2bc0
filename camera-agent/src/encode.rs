//! Turns a captured picture into the JPEG that goes on the wire: scale down
//! to the width limit, burn in the overlay, encode with libjpeg-turbo. A
//! webcam's own JPEG passes through untouched when nothing asks for a change.

use bytes::Bytes;
use turbojpeg::{Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

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
    /// The same picture, small, when one was asked for and the frame is at
    /// least twice as wide.
    pub preview: Option<Bytes>,
}

/// JPEG quality of previews: they are seen at their own size, on a wall.
const PREVIEW_QUALITY: i32 = 75;

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

    /// `preview_width`: also a copy of the picture at least this wide (0: none).
    pub fn encode(
        &mut self,
        picture: Picture,
        settings: &EncodeSettings,
        capture_us: u64,
        preview_width: u32,
    ) -> Result<Encoded, EncodeError> {
        let bgr = match picture {
            Picture::Jpeg {
                data,
                width,
                height,
            } => {
                let (ow, oh) = output_size(width, height, settings.max_width);
                if settings.quality.is_none() && !settings.overlay && (ow, oh) == (width, height) {
                    // Decoded at the smallest scale still as wide; a JPEG
                    // that cannot be decoded still goes out, without one.
                    let preview = (preview_width > 0 && width >= preview_width * 2)
                        .then(|| self.decode_at_least(&data, preview_width))
                        .and_then(Result::ok)
                        .and_then(|small| self.preview(&small, preview_width).ok());
                    return Ok(Encoded {
                        jpeg: data,
                        passthrough: true,
                        preview,
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
        let quality = settings.quality.unwrap_or(crate::config::DEFAULT_QUALITY);
        let jpeg = self.compress(&out, i32::from(quality))?;
        // A frame goes out even if its preview could not be made.
        let preview = (preview_width > 0 && ow >= preview_width * 2)
            .then(|| self.preview(&out, preview_width).ok())
            .flatten();
        Ok(Encoded {
            jpeg: Bytes::from(jpeg),
            passthrough: false,
            preview,
        })
    }

    /// `picture` as a small JPEG: shrunk by the largest whole factor that
    /// keeps it at least `width` wide (so under twice that).
    fn preview(&mut self, picture: &Bgr, width: u32) -> Result<Bytes, EncodeError> {
        let k = picture.width / width.max(1);
        let shrunk;
        let small = if k >= 2 {
            shrunk = picture.shrink(k);
            &shrunk
        } else {
            picture
        };
        Ok(Bytes::from(self.compress(small, PREVIEW_QUALITY)?))
    }

    fn compress(&mut self, picture: &Bgr, quality: i32) -> Result<Vec<u8>, EncodeError> {
        self.compressor.set_quality(quality)?;
        let image = Image {
            pixels: picture.data.as_slice(),
            width: picture.width as usize,
            pitch: picture.width as usize * 3,
            height: picture.height as usize,
            format: PixelFormat::BGR,
        };
        Ok(self.compressor.compress_to_vec(image)?)
    }

    fn decode(&mut self, jpeg: &[u8]) -> Result<Bgr, EncodeError> {
        self.decode_scaled(jpeg, ScalingFactor::ONE)
    }

    /// `jpeg` decoded at the smallest of libjpeg-turbo's scales (1/8 to
    /// 8/8) that is still at least `width` wide.
    fn decode_at_least(&mut self, jpeg: &[u8], width: u32) -> Result<Bgr, EncodeError> {
        let header = self.decompressor.read_header(jpeg)?;
        let factor = (1..=8)
            .map(|n| ScalingFactor::new(n, 8))
            .find(|f| f.scale(header.width) >= width as usize)
            .unwrap_or(ScalingFactor::ONE);
        self.decode_scaled(jpeg, factor)
    }

    fn decode_scaled(&mut self, jpeg: &[u8], factor: ScalingFactor) -> Result<Bgr, EncodeError> {
        self.decompressor.set_scaling_factor(factor)?;
        let header = self.decompressor.read_header(jpeg)?.scaled(factor);
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
        let jpeg = enc.encode(Picture::Bgr(bgr), &plain, 0, 0).unwrap().jpeg;
        let webcam = |data: &Bytes| Picture::Jpeg {
            data: data.clone(),
            width: 96,
            height: 64,
        };
        let untouched = EncodeSettings {
            quality: None,
            ..plain
        };
        let out = enc.encode(webcam(&jpeg), &untouched, 0, 0).unwrap();
        assert!(out.passthrough);
        assert_eq!(out.jpeg.as_ptr(), jpeg.as_ptr(), "same bytes, not a copy");
        let smaller = EncodeSettings {
            max_width: Some(48),
            ..untouched
        };
        let out = enc.encode(webcam(&jpeg), &smaller, 0, 0).unwrap();
        assert!(!out.passthrough);
        let header = Decompressor::new().unwrap().read_header(&out.jpeg).unwrap();
        assert_eq!((header.width, header.height), (48, 32));
        let with_overlay = EncodeSettings {
            overlay: true,
            ..untouched
        };
        assert!(
            !enc.encode(webcam(&jpeg), &with_overlay, 0, 0)
                .unwrap()
                .passthrough
        );
    }

    #[test]
    fn a_preview_is_the_same_picture_at_the_width_asked_for() {
        let mut enc = FrameEncoder::new("cam").unwrap();
        // Left half red, right half blue (BGR), 1280x720.
        let mut bgr = Bgr::filled(1280, 720, [0, 0, 220]);
        for row in bgr.data.chunks_exact_mut(1280 * 3) {
            for px in row[640 * 3..].chunks_exact_mut(3) {
                px.copy_from_slice(&[220, 0, 0]);
            }
        }
        let settings = EncodeSettings {
            quality: Some(80),
            fps: 10.0,
            max_width: None,
            overlay: false,
        };
        let check = |out: &Encoded| {
            let preview = out.preview.as_ref().expect("a preview");
            assert!(preview.len() * 4 < out.jpeg.len(), "a preview is small");
            let mut dec = Decompressor::new().unwrap();
            let header = dec.read_header(preview).unwrap();
            assert_eq!((header.width, header.height), (320, 180));
            let mut rgb = vec![0u8; 320 * 180 * 3];
            dec.decompress(
                preview,
                Image {
                    pixels: rgb.as_mut_slice(),
                    width: 320,
                    pitch: 320 * 3,
                    height: 180,
                    format: PixelFormat::RGB,
                },
            )
            .unwrap();
            let at = |x: usize, y: usize| &rgb[(y * 320 + x) * 3..(y * 320 + x) * 3 + 3];
            assert!(at(40, 90)[0] > 180 && at(40, 90)[2] < 60, "red on the left");
            assert!(
                at(280, 90)[2] > 180 && at(280, 90)[0] < 60,
                "blue on the right"
            );
        };
        let encoded = enc.encode(Picture::Bgr(bgr), &settings, 0, 320).unwrap();
        check(&encoded);
        // A webcam's own JPEG, passed through, gets a preview as well.
        let webcam = Picture::Jpeg {
            data: encoded.jpeg.clone(),
            width: 1280,
            height: 720,
        };
        let passed = EncodeSettings {
            quality: None,
            ..settings
        };
        let out = enc.encode(webcam, &passed, 0, 320).unwrap();
        assert!(out.passthrough);
        check(&out);
        // A webcam's JPEG that cannot be decoded still goes out, alone.
        let broken = Picture::Jpeg {
            data: Bytes::from_static(b"\xff\xd8 not a picture \xff\xd9"),
            width: 1280,
            height: 720,
        };
        let out = enc.encode(broken, &passed, 0, 320).unwrap();
        assert!(out.passthrough && out.preview.is_none());
        // No preview when none is asked for, or the frame is not twice as wide.
        let small = Picture::Bgr(Bgr::filled(600, 338, [1, 2, 3]));
        let out = enc.encode(small, &settings, 0, 320).unwrap();
        assert!(out.preview.is_none());
        // Shrunk by a whole factor: at least as wide as asked, under twice.
        let sd = Picture::Bgr(Bgr::filled(768, 576, [1, 2, 3]));
        let out = enc.encode(sd, &settings, 0, 320).unwrap();
        let mut dec = Decompressor::new().unwrap();
        let header = dec.read_header(out.preview.as_ref().unwrap()).unwrap();
        assert_eq!((header.width, header.height), (384, 288));
        let big = Picture::Bgr(Bgr::filled(640, 360, [1, 2, 3]));
        assert!(enc.encode(big, &settings, 0, 0).unwrap().preview.is_none());
    }
}
