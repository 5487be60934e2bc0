//! Text burned into pictures: the capture clock and the camera name. Drawn
//! with OpenCV's built-in vector font, so no font files are needed.

use opencv::core::{Mat, Point, Scalar};
use opencv::imgproc;

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

/// White text with a black outline, readable on any background.
pub fn put(img: &mut Mat, text: &str, at: Point, scale: f64, thickness: i32) -> opencv::Result<()> {
    let ascii: String = text
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect();
    for (color, extra) in [(Scalar::all(0.0), 2), (Scalar::all(255.0), 0)] {
        imgproc::put_text(
            img,
            &ascii,
            at,
            imgproc::FONT_HERSHEY_SIMPLEX,
            scale,
            color,
            thickness + extra,
            imgproc::LINE_AA,
            false,
        )?;
    }
    Ok(())
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
}
