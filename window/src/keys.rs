//! Keyboard shortcuts: one table that both the key handler and the help
//! overlay read, so the help can never list a key that does nothing.

use iced::keyboard::{Key, Modifiers, key::Named};

/// Everything a key can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    RecordFocused,
    QualityUp,
    QualityDown,
    RecordAll,
    Help,
    Fullscreen,
    Quit,
    Back,
    Wall,
    History,
    Settings,
    PlayNewest,
    DispatchLatest,
    ToggleAutoDispatch,
    Exports,
    Panoramas,
    Acknowledge,
    NextEvent,
    PreviousEvent,
    SkipBack,
    SkipForward,
    StepBack,
    StepForward,
    MarkIn,
    MarkOut,
    ExportMarks,
    Listen,
}

/// (keys, what they do), in the order the help shows them.
pub const SHORTCUTS: &[(&str, &str, Action)] = &[
    (
        "Space",
        "record / stop the focused camera; playback: play / pause",
        Action::RecordFocused,
    ),
    (
        "+",
        "raise the focused camera's JPEG quality",
        Action::QualityUp,
    ),
    (
        "-",
        "lower the focused camera's JPEG quality",
        Action::QualityDown,
    ),
    ("r", "record all / stop all (asks first)", Action::RecordAll),
    ("h or ?", "show or hide this help", Action::Help),
    (
        "f",
        "fullscreen on / off (Esc leaves it too)",
        Action::Fullscreen,
    ),
    (
        "q",
        "quit (asks first while anything records)",
        Action::Quit,
    ),
    ("Esc", "back to the wall, close a dialog", Action::Back),
    ("1", "wall", Action::Wall),
    ("2", "history", Action::History),
    ("3", "settings", Action::Settings),
    ("z or 4", "evidence: exports and dispatch", Action::Exports),
    ("5", "panoramas", Action::Panoramas),
    (
        "p",
        "play the newest recording of any camera",
        Action::PlayNewest,
    ),
    (
        "s",
        "send the newest export to the dispatch targets",
        Action::DispatchLatest,
    ),
    (
        "a",
        "automatic dispatch of every finished recording on / off",
        Action::ToggleAutoDispatch,
    ),
    ("k", "acknowledge the tamper alarms", Action::Acknowledge),
    (
        "l",
        "hear the focused camera live / mute it (one camera at a time)",
        Action::Listen,
    ),
    (
        "]",
        "playback: to the next motion or tamper event or gap",
        Action::NextEvent,
    ),
    (
        "[",
        "playback: to the previous motion or tamper event or gap",
        Action::PreviousEvent,
    ),
    ("Left", "playback: 10 s back", Action::SkipBack),
    ("Right", "playback: 10 s on", Action::SkipForward),
    (",", "playback: one frame back", Action::StepBack),
    (".", "playback: one frame on", Action::StepForward),
    ("i", "playback: mark the start of a clip", Action::MarkIn),
    ("o", "playback: mark the end of a clip", Action::MarkOut),
    (
        "x",
        "playback: export the marked clip, every camera shown",
        Action::ExportMarks,
    ),
];

/// The action of a key press, if it has one.
pub fn action(key: &Key, modifiers: Modifiers) -> Option<Action> {
    if modifiers.control() || modifiers.alt() || modifiers.logo() {
        return None;
    }
    match key {
        Key::Named(Named::Space) => Some(Action::RecordFocused),
        Key::Named(Named::Escape) => Some(Action::Back),
        Key::Named(Named::ArrowLeft) => Some(Action::SkipBack),
        Key::Named(Named::ArrowRight) => Some(Action::SkipForward),
        Key::Character(c) => match c.as_str() {
            "+" | "=" => Some(Action::QualityUp),
            "-" | "_" => Some(Action::QualityDown),
            "r" | "R" => Some(Action::RecordAll),
            // Shift+/ arrives as "/" with Shift held on many layouts.
            "h" | "H" | "?" | "/" => Some(Action::Help),
            "f" | "F" => Some(Action::Fullscreen),
            "q" | "Q" => Some(Action::Quit),
            "1" => Some(Action::Wall),
            "2" => Some(Action::History),
            "3" => Some(Action::Settings),
            "p" | "P" => Some(Action::PlayNewest),
            "s" | "S" => Some(Action::DispatchLatest),
            "a" | "A" => Some(Action::ToggleAutoDispatch),
            "z" | "Z" | "4" => Some(Action::Exports),
            "5" => Some(Action::Panoramas),
            "k" | "K" => Some(Action::Acknowledge),
            "l" | "L" => Some(Action::Listen),
            "]" => Some(Action::NextEvent),
            "[" => Some(Action::PreviousEvent),
            "," => Some(Action::StepBack),
            "." => Some(Action::StepForward),
            "i" | "I" => Some(Action::MarkIn),
            "o" | "O" => Some(Action::MarkOut),
            "x" | "X" => Some(Action::ExportMarks),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_shortcut_does_what_the_help_says() {
        for (keys, _, expected) in SHORTCUTS {
            for k in keys.split(" or ") {
                let key = match k {
                    "Space" => Key::Named(Named::Space),
                    "Esc" => Key::Named(Named::Escape),
                    "Left" => Key::Named(Named::ArrowLeft),
                    "Right" => Key::Named(Named::ArrowRight),
                    c => Key::Character(c.into()),
                };
                assert_eq!(action(&key, Modifiers::default()), Some(*expected), "{k}");
            }
        }
    }

    #[test]
    fn every_key_that_does_something_is_in_the_help() {
        let listed: Vec<Action> = SHORTCUTS.iter().map(|(_, _, a)| *a).collect();
        let keys = (b' '..=b'~')
            .map(|c| Key::Character((c as char).to_string().into()))
            .chain(
                [
                    Named::Space,
                    Named::Escape,
                    Named::ArrowLeft,
                    Named::ArrowRight,
                ]
                .map(Key::Named),
            );
        for key in keys {
            if let Some(a) = action(&key, Modifiers::default()) {
                assert!(
                    listed.contains(&a),
                    "{key:?} does {a:?}, which the help leaves out"
                );
            }
        }
    }

    #[test]
    fn shift_slash_opens_the_help() {
        assert_eq!(
            action(&Key::Character("/".into()), Modifiers::SHIFT),
            Some(Action::Help)
        );
    }

    #[test]
    fn modified_keys_are_left_alone() {
        assert_eq!(action(&Key::Character("q".into()), Modifiers::CTRL), None);
        assert_eq!(
            action(&Key::Character("y".into()), Modifiers::default()),
            None
        );
    }
}
