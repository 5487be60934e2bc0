//! Text burned into pictures: the capture clock and the camera name. Drawn
//! with a built-in 8x8 bitmap font (`font8x8`), scaled by whole pixels, so
//! no font files or image library are needed.

use font8x8::{BASIC_FONTS, UnicodeFonts};

use crate::image::Bgr;

/// "2026-11-21 14:02:11.123 UTC" from microseconds since the epoch.
pub fn clock_text(us: u64) -> String {
    let secs = us / 1_000_000;
    let ms = (us / 1000) % 1000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{ms:03} UTC",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Width and height of `text` drawn at `scale` (pixels per font dot).
pub fn text_size(text: &str, scale: u32) -> (u32, u32) {
    let scale = scale.max(1);
    (text.chars().count() as u32 * 8 * scale, 8 * scale)
}

/// White text with a black outline, readable on any background, its top
/// left corner at (`x`, `y`), each dot of the 8x8 font `scale` pixels
/// square. Characters the font lacks are drawn as `?`.
pub fn put(img: &mut Bgr, text: &str, x: i32, y: i32, scale: u32) {
    let scale = scale.max(1) as i32;
    let outline = (scale / 3).max(1);
    let glyphs: Vec<[u8; 8]> = text
        .chars()
        .map(|c| {
            BASIC_FONTS
                .get(c)
                .or_else(|| BASIC_FONTS.get('?'))
                .unwrap_or([0; 8])
        })
        .collect();
    for (colour, grow) in [([0, 0, 0], outline), ([255, 255, 255], 0)] {
        for (i, glyph) in glyphs.iter().enumerate() {
            let gx = x + i as i32 * 8 * scale;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        img.fill_rect(
                            gx + col * scale - grow,
                            y + row as i32 * scale - grow,
                            scale + 2 * grow,
                            scale + 2 * grow,
                            colour,
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_text_is_utc_calendar_time() {
        assert_eq!(clock_text(0), "1970-01-01 00:00:00.000 UTC");
        // 2026-11-21 14:02:11.123 UTC
        assert_eq!(
            clock_text(1_795_269_731_123_000),
            "2026-11-21 14:02:11.123 UTC"
        );
        assert_eq!(
            clock_text(951_782_400_000_000),
            "2000-02-29 00:00:00.000 UTC"
        );
    }

    #[test]
    fn text_is_white_on_a_black_outline_where_it_is_put() {
        let mut img = Bgr::filled(64, 24, [0, 0, 200]);
        put(&mut img, "H1", 4, 4, 2);
        assert_eq!(text_size("H1", 2), (32, 16));
        let white = img.data.chunks(3).filter(|p| *p == [255, 255, 255]).count();
        let black = img.data.chunks(3).filter(|p| *p == [0, 0, 0]).count();
        assert!(white > 40, "{white} white pixels");
        assert!(black > white / 2, "an outline: {black} black pixels");
        // Nothing outside the text's box and its outline.
        let outside = |x: usize, y: usize| img.data[(y * 64 + x) * 3..][..3] == [0, 0, 200];
        assert!(outside(50, 2) && outside(2, 22));
    }
}
