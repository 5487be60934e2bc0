//! The wall (every camera in an automatic grid) and the focused camera
//! (large picture, details, controls). Views only: no state of their own.

use iced::widget::{button, column, container, image, mouse_area, row, stack, text};
use iced::{Alignment, ContentFit, Element, Length, Size};

use super::app::{App, Message};
use super::style;
use cctv_engine::catalog::{CameraState, RecordMode};
use cctv_engine::live::CameraStatus;
use cctv_engine::time;

/// Columns of the grid for `n` cameras: 1, 2x2, 3x3, 4x4, ...
pub fn columns(n: usize) -> usize {
    let mut c = 1;
    while c * c < n {
        c += 1;
    }
    c
}

/// Room the bars and padding take from the window.
const CHROME_H: f32 = 110.0;

/// How wide a tile's picture is for `n` cameras in a window of `size`.
pub fn tile_width(size: Size, n: usize) -> u32 {
    let cols = columns(n.max(1)) as f32;
    let rows = n.max(1).div_ceil(columns(n.max(1))) as f32;
    let w = (size.width - 12.0) / cols - 8.0;
    let h = (size.height - CHROME_H) / rows - 8.0;
    // Pictures keep 16:9 inside the tile; whichever side limits wins.
    w.min(h * 16.0 / 9.0).max(64.0) as u32
}

pub fn focus_width(size: Size) -> u32 {
    ((size.width - 340.0).min((size.height - CHROME_H) * 16.0 / 9.0)).max(160.0) as u32
}

fn state_badge(c: &CameraStatus) -> Element<'_, Message> {
    let label = match c.state {
        CameraState::Live => "LIVE".to_string(),
        CameraState::Stalled => "STALLED".to_string(),
        CameraState::Offline => format!("OFFLINE since {}", time::local_clock(c.since_us)),
    };
    container(text(label).size(13))
        .padding([2, 6])
        .style(style::badge(style::state_color(c.state)))
        .into()
}

fn rec_badge<'a>() -> Element<'a, Message> {
    container(text("● REC").size(13))
        .padding([2, 6])
        .style(style::badge(style::REC))
        .into()
}

/// Why a camera records nothing now when it should be watched: its
/// recording is off, or on but paused (a full disk, an error).
pub fn not_recording(c: &CameraStatus) -> Option<&'static str> {
    if !c.server.is_empty() {
        // Recorded (or not) by its own server, which says so there.
        return None;
    }
    match c.record_mode {
        RecordMode::Off => Some("NOT RECORDING"),
        RecordMode::Continuous if c.state != CameraState::Offline && !c.recording => {
            Some("NOT RECORDING (paused)")
        }
        _ => None,
    }
}

fn warn_badge<'a>(label: &'a str) -> Element<'a, Message> {
    container(text(label).size(13))
        .padding([2, 6])
        .style(style::badge(style::WARN))
        .into()
}

/// Live, and still sending what its spool held from an outage.
fn backfill_badge<'a>(c: &CameraStatus) -> Option<Element<'a, Message>> {
    let s = c.spool.filter(|s| s.backfilling())?;
    Some(
        container(text(format!("BACKFILLING · {} to go", s.backlog)).size(13))
            .padding([2, 6])
            .style(style::badge(style::BACKFILL))
            .into(),
    )
}

fn motion_badge<'a>() -> Element<'a, Message> {
    container(text("MOTION").size(13))
        .padding([2, 6])
        .style(style::badge(style::MOTION))
        .into()
}

/// The tamper a tile shouts about: going on, or waiting to be acknowledged.
fn tamper_text(app: &App, c: &CameraStatus) -> Option<String> {
    if let Some(kind) = c.tamper {
        return Some(format!(
            "TAMPER: {}",
            crate::alarms::says(kind).to_uppercase()
        ));
    }
    app.alarms
        .of(&c.id)
        .map(|a| format!("TAMPER (over): {}", crate::alarms::says(a.kind)))
}

/// The picture of a camera: its newest frame, dimmed when offline, or a
/// placeholder.
fn picture<'a>(app: &'a App, c: &'a CameraStatus) -> Element<'a, Message> {
    match app.tiles.get(&c.id) {
        Some(tile) => image(tile.image.clone())
            .content_fit(ContentFit::Contain)
            // Pictures are decoded at about the size shown: nearest is
            // sharp enough there and much cheaper for the software renderer.
            .filter_method(iced::widget::image::FilterMethod::Nearest)
            .width(Length::Fill)
            .height(Length::Fill)
            .opacity(if c.state == CameraState::Live {
                1.0
            } else {
                0.35
            })
            .into(),
        None => {
            let msg = if c.last_frame_us.is_none()
                && c.frames_received == 0
                && c.state == CameraState::Offline
            {
                "No picture yet: this camera has not connected since the panel started"
            } else {
                "Waiting for a picture…"
            };
            container(text(msg).color(style::MUTED))
                .center(Length::Fill)
                .into()
        }
    }
}

/// A picture that zooms with the wheel (up to 8x) and pans by dragging.
pub fn zoomable<'a>(picture: iced::widget::image::Handle) -> Element<'a, Message> {
    iced::widget::image::viewer(picture)
        .width(Length::Fill)
        .height(Length::Fill)
        .min_scale(1.0)
        .max_scale(8.0)
        .scale_step(0.25)
        .into()
}

/// The frame of a tile: its padding and style (the border says motion or
/// tamper). The picture and the overlay of a tile are laid out in it alike.
fn framed<'a>(
    app: &App,
    c: &CameraStatus,
    body: impl Into<Element<'a, Message>>,
) -> iced::widget::Container<'a, Message> {
    let (padding, mark) = match (tamper_text(app, c).is_some(), c.motion) {
        (true, _) => (6, Some((style::ALARM, 6.0))),
        (false, true) => (3, Some((style::MOTION, 3.0))),
        (false, false) => (2, None),
    };
    let frame = container(body)
        .padding(padding)
        .width(Length::Fill)
        .height(Length::Fill);
    match mark {
        Some((color, width)) => frame.style(style::tile_marked(color, width)),
        None => frame.style(style::tile(false)),
    }
}

/// What is drawn over a tile's picture: name, badges, state, rate; a
/// click opens the camera.
fn overlay<'a>(app: &'a App, c: &'a CameraStatus) -> Element<'a, Message> {
    let mut top = row![text(c.name.clone()).size(16)]
        .spacing(8)
        .align_y(Alignment::Center);
    top = top.push(iced::widget::space::horizontal());
    if c.motion {
        top = top.push(motion_badge());
    }
    if let Some(b) = backfill_badge(c) {
        top = top.push(b);
    }
    if c.recording {
        top = top.push(rec_badge());
    } else if let Some(why) = not_recording(c) {
        top = top.push(warn_badge(why));
    }
    let mut bottom = row![state_badge(c)].spacing(10).align_y(Alignment::Center);
    if !c.server.is_empty() {
        // A camera of another recording server: what that server says.
        bottom = bottom.push(text(c.detail.clone()).size(13));
    } else if c.state != CameraState::Offline {
        bottom = bottom.push(
            text(format!(
                "{:.1} fps · {}",
                c.fps,
                style::bitrate(c.bitrate_bps)
            ))
            .size(13),
        );
        if c.audio {
            bottom = bottom.push(crate::sound::view::meter(app, c));
        }
    }
    let mut overlay = column![container(top).padding(6).style(style::scrim)];
    let tamper = tamper_text(app, c);
    if let Some(t) = &tamper {
        overlay = overlay.push(
            container(text(t.clone()).size(20))
                .padding(8)
                .width(Length::Fill)
                .style(style::badge(style::ALARM)),
        );
    }
    overlay = overlay.push(iced::widget::space::vertical());
    if c.state != CameraState::Live {
        overlay = overlay.push(
            container(
                text(c.detail.clone())
                    .size(14)
                    .color(style::state_color(c.state)),
            )
            .padding(6)
            .style(style::scrim),
        );
    }
    overlay = overlay.push(container(bottom).padding(6).style(style::scrim));
    // The frame's style is drawn under the picture, not over it.
    let frame = framed(app, c, overlay).style(|_| container::Style::default());
    mouse_area(frame)
        .on_press(Message::Focus(c.id.clone()))
        .into()
}

/// The tiles laid out in `cols` columns, each made by `cell`; a last,
/// shorter row keeps the tiles the same size.
fn grid<'a>(
    cams: &[&'a CameraStatus],
    cols: usize,
    cell: impl Fn(&'a CameraStatus) -> Element<'a, Message>,
) -> Element<'a, Message> {
    let mut grid = column![].spacing(8).height(Length::Fill);
    for chunk in cams.chunks(cols) {
        let mut r = row![].spacing(8).height(Length::Fill);
        for c in chunk {
            r = r.push(cell(c));
        }
        for _ in chunk.len()..cols {
            r = r.push(iced::widget::space().width(Length::Fill));
        }
        grid = grid.push(r);
    }
    grid.into()
}

pub fn wall(app: &App) -> Element<'_, Message> {
    let cams = app.wall_order();
    if cams.is_empty() {
        return container(
            column![
                text("No cameras yet").size(26),
                text(format!(
                    "Start an agent on a camera host:  camera-agent --panel <this-host>:{} --camera-id front-door",
                    app.listen.port()
                ))
                .color(style::MUTED),
            ]
            .spacing(10)
            .align_x(Alignment::Center),
        )
        .center(Length::Fill)
        .into();
    }
    let cols = columns(cams.len());
    // Every picture in one layer and every overlay in one above it, laid
    // out alike: a layer per tile would cost the software renderer a
    // whole-window clip mask for each tile on every redraw.
    stack![
        grid(&cams, cols, |c| framed(app, c, picture(app, c)).into()),
        grid(&cams, cols, |c| overlay(app, c)),
    ]
    .into()
}

fn detail_line<'a>(label: &'a str, value: String) -> Element<'a, Message> {
    row![text(label).width(110).color(style::MUTED), text(value)]
        .spacing(8)
        .into()
}

pub fn focus<'a>(app: &'a App, id: &'a str) -> Element<'a, Message> {
    let Some(c) = app.camera(id) else {
        return text(format!("No camera {id}")).into();
    };
    // The details scroll in a small window; the way back never does.
    let controls = column![
        row![
            text(c.name.clone()).size(22).width(Length::Fill),
            state_badge(c)
        ]
        .spacing(6)
        .align_y(Alignment::Center),
        // What an operator does first, then what the panel knows; room on
        // the right for the scroll bar.
        iced::widget::scrollable(
            column![focus_controls(app, c), details(c)]
                .spacing(8)
                .padding(iced::Padding {
                    right: 14.0,
                    ..iced::Padding::ZERO
                })
        )
        .height(Length::Fill),
        button(text("Back to the wall (Esc)"))
            .style(button::secondary)
            .on_press(Message::Show(super::app::Screen::Wall)),
    ]
    .spacing(8)
    .width(320);
    // The picture is decoded whole, for the zoom.
    let shown = match app.tiles.get(&c.id) {
        Some(tile) => zoomable(tile.image.clone()),
        None => picture(app, c),
    };
    let mut picture_col = stack![shown];
    let mut badges = row![].spacing(8);
    if c.recording {
        badges = badges.push(rec_badge());
    } else if let Some(why) = not_recording(c) {
        badges = badges.push(warn_badge(why));
    }
    if let Some(b) = backfill_badge(c) {
        badges = badges.push(b);
    }
    picture_col = picture_col.push(container(badges).padding(8));
    row![
        container(picture_col)
            .width(Length::Fill)
            .height(Length::Fill)
            .style(style::tile(true)),
        controls
    ]
    .spacing(10)
    .into()
}

/// What the panel knows of a camera, one line each.
fn details(c: &CameraStatus) -> Element<'_, Message> {
    column![
        detail_line("Camera id", c.id.clone()),
        detail_line("Since", time::local(c.since_us)),
        detail_line(
            "Why",
            if c.detail.is_empty() {
                "-".into()
            } else {
                c.detail.clone()
            }
        ),
        detail_line("Address", c.address.clone()),
        detail_line("Picture", format!("{}x{}", c.width, c.height)),
        detail_line(
            "Rate",
            format!("{:.1} fps · {}", c.fps, style::bitrate(c.bitrate_bps))
        ),
        detail_line(
            "Frames",
            format!(
                "{} received · {} missed · {} bad · {} not recorded",
                c.frames_received, c.frames_missed, c.frames_bad, c.frames_unrecorded
            )
        ),
        detail_line("Clock", clock(c)),
        detail_line("Spool", spool(c)),
        detail_line("Scene", scene(c)),
        detail_line(
            "Recording",
            format!(
                "{}{}",
                c.record_mode.as_str(),
                if c.recording { " · writing now" } else { "" }
            )
        ),
    ]
    .spacing(8)
    .into()
}

/// What the camera's agent holds for the panel, and how far the backfill
/// of an outage has got.
pub fn spool(c: &CameraStatus) -> String {
    let Some(s) = c.spool else {
        return "none (the agent keeps no spool, or is older)".into();
    };
    let mut parts = vec![format!(
        "{} at the agent ({} frames)",
        style::bytes(s.bytes as f64),
        s.frames
    )];
    if s.oldest_us > 0 {
        let age = (time::now_us() - s.oldest_us as i64).max(0) as f64 / 1e6;
        parts.push(format!("oldest {}", style::age(age)));
    }
    if s.backfilling() || c.backfilled > 0 {
        parts.push(format!(
            "backfill: {} recorded, {} to go",
            c.backfilled, s.backlog
        ));
    }
    if s.dropped > 0 {
        parts.push(format!("{} dropped (spool full)", s.dropped));
    }
    parts.join(" · ")
}

/// What the agent sees: motion and tamper, or that it does not analyse.
fn scene(c: &CameraStatus) -> String {
    if !c.analysed {
        return "not analysed (the agent is older, or analysis is off)".into();
    }
    let moving = if c.motion { "moving" } else { "still" };
    let tamper = c
        .tamper
        .map(|k| format!(" · TAMPER: {}", crate::alarms::says(k)))
        .unwrap_or_default();
    format!(
        "{moving} · {:.1}% of the picture moves{tamper}",
        c.motion_score * 100.0
    )
}

/// How far the camera's clock is from the panel's, and how many frames
/// were timed on arrival because their own time was far off.
pub fn clock(c: &CameraStatus) -> String {
    let skew = match c.clock_skew_ms {
        None => "not known yet".to_string(),
        Some(ms) if ms.abs() < 1000 => "within a second of the panel's".to_string(),
        Some(ms) => format!(
            "{:.1} s {} the panel's",
            ms.abs() as f64 / 1000.0,
            if ms > 0 { "ahead of" } else { "behind" }
        ),
    };
    match c.frames_retimed {
        0 => skew,
        n => format!("{skew} · {n} frame(s) timed on arrival"),
    }
}

/// A label and two buttons that move its value down and up (each does
/// nothing when its message is `None`).
fn stepper<'a>(
    label: iced::widget::Text<'a>,
    down: (&'a str, Option<Message>),
    up: (&'a str, Option<Message>),
) -> Element<'a, Message> {
    let step = |(words, m): (&'a str, Option<Message>)| {
        button(text(words))
            .style(button::secondary)
            .on_press_maybe(m)
    };
    row![label, step(down), step(up)]
        .spacing(4)
        .align_y(Alignment::Center)
        .into()
}

/// Motion sensitivity and pacing, for an agent that analyses its frames.
fn motion_controls<'a>(app: &'a App, c: &'a CameraStatus) -> Element<'a, Message> {
    if !c.analysed {
        return text("Motion: this agent does not analyse its picture")
            .color(style::MUTED)
            .into();
    }
    let id = c.id.as_str();
    let sensitivity = app.sensitivity.get(id).copied().unwrap_or(50);
    let full = app.full_rate.get(id).copied().unwrap_or(false);
    column![
        stepper(
            text(format!("Motion sensitivity {sensitivity}")).width(170),
            ("-", Some(Message::Sensitivity(id.to_string(), -10))),
            ("+", Some(Message::Sensitivity(id.to_string(), 10))),
        ),
        iced::widget::checkbox(full)
            .label("Send every frame (not only on motion)")
            .on_toggle(|on| Message::FullRate(id.to_string(), on)),
    ]
    .spacing(8)
    .into()
}

/// Record, snapshot, panorama, quality and frame rate of the focused camera;
/// those the agent must obey wait until it is connected.
fn focus_controls<'a>(app: &'a App, c: &'a CameraStatus) -> Element<'a, Message> {
    let id = c.id.as_str();
    let recording_on = c.record_mode != RecordMode::Off;
    // What the agent reports it does; an older agent reports nothing.
    let quality = match c.encoding.map(|e| e.quality) {
        Some(0) => "JPEG: the camera's own".to_string(),
        Some(q) => format!("JPEG quality {q}"),
        None => "JPEG quality: not reported".to_string(),
    };
    let fps_now = c.encoding.map(|e| e.fps_milli);
    let live = c.state != CameraState::Offline;
    let on_live = |m: Message| live.then_some(m);
    let fps_buttons = row([1u32, 5, 10, 15, 30]
        .into_iter()
        .map(|f| {
            let current = fps_now == Some(f * 1000);
            button(text(format!("{f}")))
                .style(style::chosen(current))
                .on_press_maybe(on_live(Message::Fps(id.to_string(), f)))
                .into()
        })
        .collect::<Vec<_>>())
    .spacing(4);
    let (record_label, record_style): (_, fn(&iced::Theme, button::Status) -> button::Style) =
        match recording_on {
            true => ("Stop recording (Space)", button::danger),
            false => ("Record (Space)", button::primary),
        };
    column![
        button(text(record_label))
            .style(record_style)
            .on_press(Message::ToggleRecord(id.to_string())),
        row![
            button(text("Snapshot"))
                .style(button::secondary)
                .on_press_maybe(on_live(Message::Snapshot(id.to_string()))),
            button(text("Panorama of the last 30 s"))
                .style(button::secondary)
                .on_press_maybe(c.recording.then(|| Message::Panorama(
                    id.to_string(),
                    cctv_engine::PanoramaFrom::LastSeconds(30)
                ))),
        ]
        .spacing(6),
        stepper(
            text(quality).width(Length::Fill),
            ("-", on_live(Message::Quality(id.to_string(), -10))),
            ("+", on_live(Message::Quality(id.to_string(), 10))),
        ),
        row![text("Frame rate").width(130), fps_buttons].align_y(Alignment::Center),
        crate::sound::view::speaker(app, c),
        motion_controls(app, c),
        stepper(
            text("Place on the wall").width(130),
            ("Earlier", Some(Message::MoveTile(id.to_string(), -1))),
            ("Later", Some(Message::MoveTile(id.to_string(), 1))),
        ),
    ]
    .spacing(8)
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_grows_as_squares() {
        let cols: Vec<usize> = [1, 2, 4, 5, 9, 10, 16, 17]
            .iter()
            .map(|n| columns(*n))
            .collect();
        assert_eq!(cols, [1, 2, 2, 3, 3, 4, 4, 5]);
    }

    #[test]
    fn tiles_shrink_with_more_cameras_and_follow_the_window() {
        let size = Size::new(1280.0, 800.0);
        assert!(tile_width(size, 1) > tile_width(size, 4));
        assert!(tile_width(size, 4) > tile_width(size, 16));
        assert!(tile_width(Size::new(1920.0, 1080.0), 16) > tile_width(size, 16));
        assert!(tile_width(size, 16) <= 320);
    }
}
