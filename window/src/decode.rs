//! JPEG to pixels for the screen, at the size they are shown: libjpeg-turbo
//! decodes at 1/8 .. 8/8 scale, so a 1080p frame in a 320 px tile never
//! costs a full-size decode. Runs off the UI thread; never called per pixel.

use turbojpeg::{Decompressor, Image, PixelFormat, ScalingFactor};

/// Largest picture decoded, in pixels: a header claiming more is refused
/// before anything is allocated.
pub const MAX_PIXELS: usize = 50_000_000;

/// Decoded RGBA pixels.
#[derive(Debug, Clone)]
pub struct Rgba {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a JPEG libjpeg-turbo can read: {0}")]
    Jpeg(#[from] turbojpeg::Error),
    #[error("picture of {0}x{1} is too large to show")]
    TooLarge(usize, usize),
}

/// The smallest scale at which a `src_w` wide picture is still at least
/// `target_w` wide (full size when the target is as wide or wider).
pub fn scale_for(src_w: usize, target_w: usize) -> ScalingFactor {
    [1usize, 2, 3, 4, 5, 6, 7]
        .iter()
        .map(|n| ScalingFactor::new(*n, 8))
        .find(|f| f.scale(src_w) >= target_w)
        .unwrap_or(ScalingFactor::ONE)
}

/// Decodes `jpeg` so that it is about `target_w` pixels wide (never smaller,
/// unless the source is). `target_w` 0 means full size.
pub fn decode_to_width(
    dec: &mut Decompressor,
    jpeg: &[u8],
    target_w: u32,
) -> Result<Rgba, DecodeError> {
    let header = dec.read_header(jpeg)?;
    if header.width.saturating_mul(header.height) > MAX_PIXELS {
        return Err(DecodeError::TooLarge(header.width, header.height));
    }
    let factor = if target_w == 0 {
        ScalingFactor::ONE
    } else {
        scale_for(header.width, target_w as usize)
    };
    dec.set_scaling_factor(factor)?;
    let scaled = header.scaled(factor);
    let mut pixels = vec![0u8; scaled.width * scaled.height * 4];
    dec.decompress(
        jpeg,
        Image {
            pixels: pixels.as_mut_slice(),
            width: scaled.width,
            pitch: scaled.width * 4,
            height: scaled.height,
            format: PixelFormat::RGBA,
        },
    )?;
    Ok(Rgba {
        width: scaled.width as u32,
        height: scaled.height as u32,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: usize, h: usize) -> Vec<u8> {
        let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        turbojpeg::compress(
            Image {
                pixels: pixels.as_slice(),
                width: w,
                pitch: w * 3,
                height: h,
                format: PixelFormat::RGB,
            },
            80,
            turbojpeg::Subsamp::Sub2x2,
        )
        .unwrap()
        .to_vec()
    }

    #[test]
    fn picks_the_smallest_scale_that_still_fills_the_tile() {
        assert_eq!(scale_for(1920, 320), ScalingFactor::new(2, 8)); // 480 px
        assert_eq!(scale_for(1920, 240), ScalingFactor::new(1, 8)); // 240 px
        assert_eq!(scale_for(1280, 1280), ScalingFactor::ONE);
        assert_eq!(scale_for(640, 2000), ScalingFactor::ONE);
    }

    #[test]
    fn decodes_at_tile_size() {
        let mut dec = Decompressor::new().unwrap();
        let img = decode_to_width(&mut dec, &jpeg(1280, 720), 300).unwrap();
        assert_eq!((img.width, img.height), (320, 180));
        assert_eq!(img.pixels.len(), 320 * 180 * 4);
        let full = decode_to_width(&mut dec, &jpeg(1280, 720), 0).unwrap();
        assert_eq!((full.width, full.height), (1280, 720));
    }

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        let mut dec = Decompressor::new().unwrap();
        assert!(decode_to_width(&mut dec, b"\xff\xd8 nonsense", 100).is_err());
        let mut cut = jpeg(64, 64);
        cut.truncate(cut.len() / 3);
        let _ = decode_to_width(&mut dec, &cut, 64); // may decode partially; must not panic
    }
}
