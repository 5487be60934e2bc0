//! The playback screen: the cameras' pictures side by side, a strip per
//! camera over the zoomed stretch of the day with the clock's place, and
//! the controls (play, step, skip, speed, zoom, jumps, in/out and clip).

use std::time::Instant;

use iced::widget::{button, column, container, pick_list, row, slider, stack, text};
use iced::{Alignment, Element, Length};

use super::{MAX_CAMERAS, Msg, Playback, SPEEDS, Track, ZOOMS};
use crate::app::{App, Message, Screen};
use crate::{strip, style};
use cctv_engine::time;

fn msg(m: Msg) -> Message {
    Message::Player(m)
}

/// "2026-11-21 14:03:10.25" for a capture time.
fn clock_text(us: i64) -> String {
    let local = time::local(us);
    let centis = us.rem_euclid(1_000_000) / 10_000;
    format!("{local}.{centis:02}")
}

/// "14:03:10.25": the time of day alone.
fn time_of_day(us: i64) -> String {
    let full = clock_text(us);
    full.split_once(' ')
        .map_or(full.clone(), |(_, t)| t.to_string())
}

fn small<'a>(label: &'a str, m: Msg) -> iced::widget::Button<'a, Message> {
    button(text(label))
        .style(button::secondary)
        .on_press(msg(m))
}

/// A camera's picture: the frame shown, with its capture time, or why
/// there is none.
fn picture<'a>(app: &'a App, p: &'a Playback, k: &'a Track, now: Instant) -> Element<'a, Message> {
    let t = p.at(now);
    let name = app
        .camera(&k.camera)
        .map_or(k.camera.as_str(), |c| c.name.as_str());
    let gap = k.gap_at(t);
    let body: Element<Message> = match (&k.image, &gap) {
        (Some(h), None) => crate::wall::zoomable(h.clone()),
        (_, Some(g)) => {
            container(text(format!("No recording: {}", g.why.words())).color(style::MUTED))
                .center(Length::Fill)
                .into()
        }
        (None, None) => container(text("Loading…")).center(Length::Fill).into(),
    };
    let shown = k
        .shown
        .filter(|_| gap.is_none())
        .map(|(_, _, at)| clock_text(at))
        .unwrap_or_default();
    let mut caption = row![
        text(name).size(14),
        text(shown).size(14).color(style::MUTED)
    ]
    .spacing(6)
    .align_y(Alignment::Center);
    if p.tracks.len() > 1 {
        caption = caption.push(iced::widget::space::horizontal()).push(
            button(text("Remove").size(12))
                .style(button::secondary)
                .padding([1, 6])
                .on_press(msg(Msg::Camera(k.camera.clone(), false))),
        );
    }
    container(stack![
        body,
        container(caption)
            .padding(4)
            .width(Length::Fill)
            .style(style::scrim)
    ])
    .width(Length::Fill)
    .height(Length::Fill)
    .style(style::tile(true))
    .into()
}

/// The pictures: one, two side by side, or a 2x2 grid.
fn pictures<'a>(app: &'a App, p: &'a Playback, now: Instant) -> Element<'a, Message> {
    let cols = if p.tracks.len() == 1 { 1 } else { 2 };
    let mut grid = column![].spacing(6).height(Length::Fill);
    for chunk in p.tracks.chunks(cols) {
        let mut r = row![].spacing(6).height(Length::Fill);
        for k in chunk {
            r = r.push(picture(app, p, k, now));
        }
        if chunk.len() < cols {
            r = r.push(iced::widget::space().width(Length::Fill));
        }
        grid = grid.push(r);
    }
    grid.into()
}

/// The strips of every camera over the view, the clock's slider under them.
fn strips<'a>(p: &'a Playback, now: Instant) -> Element<'a, Message> {
    let (from, to) = p.view_range(now);
    let t = p.at(now);
    let mut col = column![strip::ends(from, to, 110.0)].spacing(3);
    for k in &p.tracks {
        col = col.push(
            row![
                text(k.camera.clone()).size(13).width(110),
                strip::strip(&k.recordings, &k.spans, &k.gaps(), (from, to), 12.0),
            ]
            .spacing(8)
            .align_y(Alignment::Center),
        );
    }
    col.push(
        row![
            text("").width(110),
            slider(from as f64..=to as f64, t as f64, |v| msg(Msg::Seek(v))).step(1000.0),
        ]
        .spacing(8)
        .align_y(Alignment::Center),
    )
    .into()
}

pub fn view(app: &App) -> Element<'_, Message> {
    let Some(p) = app.playback.as_ref() else {
        return column![
            text("Nothing to play: choose a recording in the history."),
            button(text("History")).on_press(Message::Show(Screen::History)),
        ]
        .spacing(10)
        .into();
    };
    let now = Instant::now();
    let t = p.at(now);
    let others: Vec<String> = app
        .cameras
        .iter()
        .map(|c| c.id.clone())
        .filter(|c| !p.tracks.iter().any(|k| &k.camera == c))
        .collect();
    let add = pick_list(others, None::<String>, |c| msg(Msg::Camera(c, true))).placeholder(
        if p.tracks.len() < MAX_CAMERAS {
            "Add a camera"
        } else {
            "4 cameras at most"
        },
    );
    let marks = match p.marks {
        (None, None) => String::new(),
        (a, b) => format!(
            "clip {} to {}",
            a.map(time_of_day).unwrap_or_else(|| "…".into()),
            b.map(time_of_day).unwrap_or_else(|| "…".into())
        ),
    };
    let title = row![
        text(clock_text(t)).size(20),
        text(marks).color(style::MOTION).width(Length::Fill),
        add,
        button(text("Back to history (Esc)"))
            .style(button::secondary)
            .on_press(Message::Show(Screen::History)),
    ]
    .spacing(8)
    .align_y(Alignment::Center);
    let speeds = row(SPEEDS.into_iter().map(|s| {
        button(text(s.to_string()))
            .style(style::chosen(s.0 == p.clock.speed))
            .on_press(msg(Msg::Speed(s)))
            .into()
    }))
    .spacing(4);
    let transport = row![
        small("-10 s", Msg::Skip(-10)),
        button(text(if p.clock.playing { "Pause" } else { "Play" })).on_press(msg(Msg::PlayPause)),
        small("+10 s", Msg::Skip(10)),
        small("Step back", Msg::Step(false)),
        small("Step", Msg::Step(true)),
        iced::widget::space::horizontal(),
        speeds,
    ]
    .spacing(6)
    .align_y(Alignment::Center);
    let zooms = row(ZOOMS.iter().enumerate().map(|(i, (_, label))| {
        button(text(*label).size(13))
            .style(style::chosen(i == p.zoom))
            .on_press(msg(Msg::Zoom(i)))
            .into()
    }))
    .spacing(3);
    let clip = match p.marks {
        (Some(a), Some(b)) if a < b => Some(msg(Msg::ExportMarks)),
        _ => None,
    };
    let marks = row![
        zooms,
        small("[ event", Msg::Jump(false)),
        small("event ]", Msg::Jump(true)),
        iced::widget::space::horizontal(),
        small("In (i)", Msg::MarkIn),
        small("Out (o)", Msg::MarkOut),
        button(text("Export clip (x)"))
            .style(button::primary)
            .on_press_maybe(clip),
    ]
    .spacing(6)
    .align_y(Alignment::Center);
    column![
        title,
        pictures(app, p, now),
        strips(p, now),
        transport,
        marks
    ]
    .spacing(6)
    .into()
}
