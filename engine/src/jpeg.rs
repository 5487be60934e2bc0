//! Just enough JPEG parsing to check a frame before it is shown or stored:
//! the start marker and the size in the frame header. No pixel decoding.

/// Width and height from the first SOF marker, or `None` when the bytes are
/// not a JPEG or its header is cut short.
pub fn dimensions(b: &[u8]) -> Option<(u16, u16)> {
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return None;
    }
    let mut at = 2;
    loop {
        // Markers may be padded with 0xFF bytes.
        while *b.get(at)? == 0xFF && *b.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *b.get(at)? != 0xFF {
            return None;
        }
        let marker = *b.get(at + 1)?;
        match marker {
            // Standalone markers without a length.
            0x01 | 0xD0..=0xD7 => {
                at += 2;
                continue;
            }
            0xD9 | 0xDA => return None, // end of image or scan before any frame header
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*b.get(at + 2)?, *b.get(at + 3)?]));
        if len < 2 {
            return None;
        }
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let seg = b.get(at + 4..at + 2 + len)?;
            if seg.len() < 5 {
                return None;
            }
            let h = u16::from_be_bytes([seg[1], seg[2]]);
            let w = u16::from_be_bytes([seg[3], seg[4]]);
            return (w > 0 && h > 0).then_some((w, h));
        }
        at += 2 + len;
    }
}

/// Whether the image ends with the end-of-image marker (`FF D9`), allowing
/// for a little padding after it as some webcams send. A frame cut short in
/// transit or by the camera fails this.
pub fn has_end(b: &[u8]) -> bool {
    let tail = &b[b.len().saturating_sub(64)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Why a received frame is not a picture the panel will show or record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPicture {
    #[error("empty frame (no picture)")]
    Empty,
    #[error("not a JPEG (no start or frame header)")]
    NotJpeg,
    #[error("{width}x{height} is over the limit of {max_pixels} pixels")]
    TooLarge {
        width: u16,
        height: u16,
        max_pixels: u64,
    },
    #[error("truncated JPEG (no end marker)")]
    Truncated,
}

/// Checks a received frame before anything decodes it: a JPEG start, a
/// frame header within `max_pixels`, an end marker. Returns its size, or
/// why it is refused.
pub fn check(b: &[u8], max_pixels: u64) -> Result<(u16, u16), BadPicture> {
    if b.is_empty() {
        return Err(BadPicture::Empty);
    }
    let (width, height) = dimensions(b).ok_or(BadPicture::NotJpeg)?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(BadPicture::TooLarge {
            width,
            height,
            max_pixels,
        });
    }
    if !has_end(b) {
        return Err(BadPicture::Truncated);
    }
    Ok((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_header_is_refused_before_any_decoding() {
        let mut h = header();
        h[13..17].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        h.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(dimensions(&h), Some((65535, 65535)));
        let err = check(&h, 40_000_000).unwrap_err();
        assert!(
            matches!(
                err,
                BadPicture::TooLarge {
                    width: 65535,
                    height: 65535,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("65535x65535 is over the limit"));
        let mut ok = header();
        ok.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(check(&ok, 40_000_000), Ok((640, 360)));
        assert_eq!(check(&header(), 40_000_000), Err(BadPicture::Truncated));
        assert_eq!(check(&[], 40_000_000), Err(BadPicture::Empty));
    }

    /// A minimal header: SOI, an APP0 segment, SOF0 for 640x360.
    fn header() -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x4A, 0x46];
        b.extend_from_slice(&[
            0xFF, 0xC0, 0x00, 0x0B, 8, 0x01, 0x68, 0x02, 0x80, 1, 1, 0x11, 0x00,
        ]);
        b
    }

    #[test]
    fn reads_the_frame_size() {
        assert_eq!(dimensions(&header()), Some((640, 360)));
    }

    #[test]
    fn refuses_what_is_not_a_jpeg_or_is_cut_short() {
        assert_eq!(dimensions(b"not a jpeg"), None);
        let h = header();
        for cut in 0..h.len() - 1 {
            assert_eq!(dimensions(&h[..cut]), None, "cut at {cut}");
        }
        let mut zero = h.clone();
        zero[13..15].copy_from_slice(&[0, 0]);
        assert_eq!(dimensions(&zero), None, "zero height");
    }
}
