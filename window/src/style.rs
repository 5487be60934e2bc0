//! Colours and container styles: state badges a person reads at a glance
//! (green live, amber stalled, red offline), the red REC mark.

use iced::widget::{button, container};
use iced::{Background, Border, Color, Theme};

use cctv_engine::catalog::CameraState;

pub const LIVE: Color = Color::from_rgb(0.13, 0.65, 0.30);
pub const STALLED: Color = Color::from_rgb(0.90, 0.60, 0.05);
pub const OFFLINE: Color = Color::from_rgb(0.80, 0.15, 0.15);
pub const REC: Color = Color::from_rgb(0.90, 0.05, 0.05);
pub const MUTED: Color = Color::from_rgb(0.65, 0.67, 0.70);
/// A tamper alarm: the tile, the bar over the status bar.
pub const ALARM: Color = Color::from_rgb(0.85, 0.05, 0.10);
/// Motion: the badge and outline of a tile whose scene moves.
pub const MOTION: Color = Color::from_rgb(1.0, 0.55, 0.0);
/// Something the operator should know is off (a camera not recording).
pub const WARN: Color = Color::from_rgb(0.72, 0.42, 0.0);
/// Footage from an agent's spool, arriving after an outage.
pub const BACKFILL: Color = Color::from_rgb(0.16, 0.42, 0.78);

pub fn state_color(state: CameraState) -> Color {
    match state {
        CameraState::Live => LIVE,
        CameraState::Stalled => STALLED,
        CameraState::Offline => OFFLINE,
    }
}

/// A filled, rounded label.
pub fn badge(color: Color) -> impl Fn(&Theme) -> container::Style {
    move |_| container::Style {
        text_color: Some(Color::WHITE),
        background: Some(Background::Color(color)),
        border: Border::default().rounded(4),
        ..container::Style::default()
    }
}

/// A tile's frame in colour: thick red for an alarm, orange for motion.
pub fn tile_marked(color: Color, width: f32) -> impl Fn(&Theme) -> container::Style {
    move |_| container::Style {
        background: Some(Background::Color(Color::from_rgb(0.07, 0.07, 0.08))),
        border: Border::default().rounded(6).width(width).color(color),
        ..container::Style::default()
    }
}

/// The frame around a tile.
pub fn tile(selected: bool) -> impl Fn(&Theme) -> container::Style {
    move |_| container::Style {
        background: Some(Background::Color(Color::from_rgb(0.07, 0.07, 0.08))),
        border: Border::default()
            .rounded(6)
            .width(if selected { 2 } else { 1 })
            .color(if selected {
                Color::from_rgb(0.3, 0.55, 0.95)
            } else {
                Color::from_rgb(0.22, 0.23, 0.25)
            }),
        ..container::Style::default()
    }
}

/// Translucent dark strip for text over video.
pub fn scrim(_: &Theme) -> container::Style {
    container::Style {
        text_color: Some(Color::WHITE),
        background: Some(Background::Color(Color::from_rgba(0.0, 0.0, 0.0, 0.55))),
        ..container::Style::default()
    }
}

/// Panels: status bar, overlays.
pub fn panel(_: &Theme) -> container::Style {
    container::Style {
        text_color: Some(Color::WHITE),
        background: Some(Background::Color(Color::from_rgb(0.12, 0.13, 0.15))),
        border: Border::default().rounded(6),
        ..container::Style::default()
    }
}

/// "1.2 Mbit/s"
pub fn bitrate(bps: f64) -> String {
    if bps >= 1e6 {
        format!("{:.1} Mbit/s", bps / 1e6)
    } else {
        format!("{:.0} kbit/s", bps / 1e3)
    }
}

/// "1.5 GB", "340 MB", "2.4 MB", "820 kB", "0 kB"
pub fn bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e7 {
        format!("{:.0} MB", b / 1e6)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

/// How long ago, roughly: "4 s ago", "3 min ago", "2 h ago".
pub fn age(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 90.0 {
        format!("{s:.0} s ago")
    } else if s < 90.0 * 60.0 {
        format!("{:.0} min ago", s / 60.0)
    } else {
        format!("{:.1} h ago", s / 3600.0)
    }
}

/// "1:02:03" or "2:03.4"
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0);
    let h = (s / 3600.0) as u64;
    let m = ((s % 3600.0) / 60.0) as u64;
    let sec = s % 60.0;
    if h > 0 {
        format!("{h}:{m:02}:{:02}", sec as u64)
    } else {
        format!("{m}:{sec:04.1}")
    }
}

/// A button among choices: the one in force stands out.
pub fn chosen(on: bool) -> fn(&Theme, button::Status) -> button::Style {
    if on {
        button::primary
    } else {
        button::secondary
    }
}
