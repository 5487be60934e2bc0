//! How frames are encoded: rate, quality and width limits, and the width
//! of the preview sent with each live frame for the panel's wall.

use anyhow::bail;

/// Width of the preview sent with each live frame: a tile of a 4x4 wall.
pub const DEFAULT_PREVIEW_WIDTH: u32 = 320;

/// Frame rate, quality and width within what an agent can do.
pub(super) fn check_encoding(
    fps: Option<f64>,
    quality: Option<u8>,
    max_width: Option<u32>,
) -> anyhow::Result<()> {
    if let Some(fps) = fps
        && !(fps > 0.0 && fps <= 240.0)
    {
        bail!("fps {fps} is outside 0..240");
    }
    if let Some(q) = quality
        && !(1..=100).contains(&q)
    {
        bail!("quality {q} is outside 1..100");
    }
    if let Some(w) = max_width
        && w < 16
    {
        bail!("width {w} is under 16 pixels");
    }
    Ok(())
}

/// The preview's width: 0 sends none; otherwise 64 to 1280 pixels.
/// `set`: the flag's, else the file's.
pub(super) fn preview_width(set: Option<u32>) -> anyhow::Result<u32> {
    let w = set.unwrap_or(DEFAULT_PREVIEW_WIDTH);
    if w != 0 && !(64..=1280).contains(&w) {
        bail!("preview width {w} is outside 64..1280 (0 sends no preview)");
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preview_is_320_wide_unless_set_and_0_turns_it_off() {
        assert_eq!(preview_width(None).unwrap(), 320);
        assert_eq!(preview_width(Some(0)).unwrap(), 0);
        assert_eq!(preview_width(Some(480)).unwrap(), 480);
        let e = preview_width(Some(10)).unwrap_err().to_string();
        assert!(e.contains("preview width 10"), "{e}");
    }
}
