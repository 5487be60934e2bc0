//! Text from the other end (a camera's name, a goodbye reason, a refusal)
//! made safe to log and store: control characters are written as escapes,
//! so a newline cannot start a forged log line and an escape sequence
//! cannot repaint a terminal.

use std::borrow::Cow;
use std::fmt::Write;

/// `s` with every control character escaped (`\n`, `\r`, `\t`, `\u{1b}`);
/// borrowed unchanged when it has none.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("Front door · 2"), "Front door · 2");
        assert!(matches!(printable("plain"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(
            printable("bye\n2026-11-21T00:00:00Z INFO forged"),
            "bye\\n2026-11-21T00:00:00Z INFO forged"
        );
        assert_eq!(printable("\u{1b}[2J\r\t\0"), "\\u{1b}[2J\\r\\t\\u{0}");
    }
}
