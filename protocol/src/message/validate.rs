//! Checks of values that arrive in messages or go into them: camera ids
//! and names, acknowledgements, `Configure`.

use super::*;

/// Checks a camera id: 1 to 64 bytes of `A-Z a-z 0-9 _ . -`, not starting with `.`.
/// Camera ids become directory names, so nothing else is allowed.
pub fn validate_camera_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("camera id is empty");
    }
    if id.len() > MAX_CAMERA_ID_LEN {
        return Err("camera id is longer than 64 bytes");
    }
    if id.starts_with('.') {
        return Err("camera id starts with '.'");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err("camera id has a character other than A-Z a-z 0-9 _ . -");
    }
    Ok(())
}

/// Checks a camera name as the panel stores and an agent sends it: at most
/// [`MAX_NAME_LEN`] bytes, no control characters. (The panel still escapes
/// control characters in a name it receives; this is the rule for names it
/// is given.)
pub fn validate_camera_name(name: &str) -> Result<(), &'static str> {
    if name.len() > MAX_NAME_LEN {
        return Err("camera name is longer than 128 bytes");
    }
    if name.chars().any(char::is_control) {
        return Err("camera name has a control character (a newline, a tab, ...)");
    }
    Ok(())
}

/// Checks an `Ack`: at most [`MAX_ACK_RANGES`] ranges, each in order.
pub fn validate_ack(a: &Ack) -> Result<(), &'static str> {
    if a.ranges.len() > MAX_ACK_RANGES {
        return Err("more than 256 ranges");
    }
    if a.ranges.iter().any(|(first, last)| first > last) {
        return Err("a range that ends before it starts");
    }
    Ok(())
}

/// Checks a `Configure`'s values are in range.
pub fn validate_configure(c: &Configure) -> Result<(), &'static str> {
    if let Some(q) = c.quality
        && !(1..=100).contains(&q)
    {
        return Err("quality is outside 1..=100");
    }
    if c.fps_milli == Some(0) {
        return Err("fps is 0");
    }
    Ok(())
}
