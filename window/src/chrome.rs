//! The window's frame around every screen: the tabs, the status bar, and
//! the overlays (help, quit confirmation). Views only.

use iced::widget::{button, center, column, container, opaque, row, text};
use iced::{Element, Length};

use super::app::{App, Message, Screen};
use super::keys::{self, Action};
use super::style;

pub fn nav(app: &App) -> Element<'_, Message> {
    let tab = |label: &'static str, screen: Screen| {
        let active = app.screen == screen
            || (screen == Screen::Wall && matches!(app.screen, Screen::Focus(_)))
            || (screen == Screen::History && app.screen == Screen::Playback);
        button(text(label))
            .style(if active {
                button::primary
            } else {
                button::secondary
            })
            .on_press(Message::Show(screen))
    };
    row![
        tab("Wall (1)", Screen::Wall),
        tab("History (2)", Screen::History),
        tab("Settings (3)", Screen::Settings),
        tab("Evidence (z)", Screen::Evidence),
        tab("Panoramas (5)", Screen::Panoramas),
        iced::widget::space::horizontal(),
        button(text("Help (h)"))
            .style(button::secondary)
            .on_press(Message::Action(Action::Help)),
    ]
    .spacing(6)
    .into()
}

/// The facts on one line (they never wrap), and the newest notice on a line
/// of its own above them, whole (a long name is never cut).
pub fn status_bar(app: &App) -> Element<'_, Message> {
    let disk = match app.disk {
        Some((used, free)) => format!(
            "recordings {} · {} free",
            style::bytes(used as f64),
            style::bytes(free as f64)
        ),
        None => "disk: …".into(),
    };
    let one_line = |s: String| text(s).wrapping(iced::widget::text::Wrapping::None);
    let mut facts = row![
        one_line(format!(
            "{} of {} cameras live",
            app.live_count(),
            app.cameras.len()
        )),
        one_line(format!("{} recording", app.recording_count())),
    ]
    .spacing(18);
    let idle = app
        .cameras
        .iter()
        .filter(|c| crate::wall::not_recording(c).is_some())
        .count();
    if idle > 0 {
        facts = facts.push(
            container(one_line(format!("{idle} NOT RECORDING")))
                .padding([0, 6])
                .style(style::badge(style::WARN)),
        );
    }
    let facts = facts
        .push(one_line(disk))
        .push(one_line(format!("agents: {}", app.listen)));
    let mut bar = column![].spacing(4);
    if let Some((msg, error, at)) = &app.notice
        && at.elapsed() < super::app::NOTICE_FOR
    {
        bar = bar.push(text(msg.clone()).color(if *error { style::OFFLINE } else { style::MUTED }));
    }
    container(bar.push(facts))
        .padding(6)
        .width(Length::Fill)
        .clip(true)
        .style(style::panel)
        .into()
}

pub fn overlay(content: Element<'_, Message>) -> Element<'_, Message> {
    opaque(
        center(
            container(content)
                .padding(20)
                .max_width(560)
                .style(style::panel),
        )
        .style(|_| container::Style {
            background: Some(iced::Color::from_rgba(0.0, 0.0, 0.0, 0.6).into()),
            ..container::Style::default()
        }),
    )
}

/// Every shortcut; the way out on top, the list scrolling below it on a
/// window too small to hold it whole.
pub fn help_panel<'a>() -> Element<'a, Message> {
    let mut list = column![].spacing(6);
    for (keys, what, _) in keys::SHORTCUTS {
        list = list.push(row![text(*keys).width(90), text(*what)].spacing(12));
    }
    column![
        row![
            text("Keyboard shortcuts").size(22),
            iced::widget::space::horizontal(),
            button(text("Close (Esc)")).on_press(Message::Action(Action::Help))
        ]
        .align_y(iced::Alignment::Center),
        iced::widget::scrollable(list),
    ]
    .spacing(10)
    .into()
}

/// A question with two answers: keep things as they are, or go ahead.
fn confirm_panel<'a>(
    title: &'a str,
    body: String,
    keep: (&'a str, Message),
    go: (&'a str, Message),
) -> Element<'a, Message> {
    column![
        text(title).size(22),
        text(body),
        row![
            iced::widget::space::horizontal(),
            button(text(keep.0))
                .style(button::secondary)
                .on_press(keep.1),
            button(text(go.0)).style(button::danger).on_press(go.1),
        ]
        .spacing(8),
    ]
    .spacing(12)
    .into()
}

fn are(n: usize) -> &'static str {
    if n == 1 { " is" } else { "s are" }
}

pub fn quit_panel<'a>(recording: usize) -> Element<'a, Message> {
    confirm_panel(
        "Quit the panel?",
        format!(
            "{recording} camera{} recording. Quitting closes the open recordings and stops recording until the panel runs again.",
            are(recording)
        ),
        ("Keep running", Message::ConfirmQuit(false)),
        ("Quit", Message::ConfirmQuit(true)),
    )
}

pub fn stop_all_panel<'a>(cameras: usize) -> Element<'a, Message> {
    confirm_panel(
        "Stop recording on every camera?",
        format!(
            "{cameras} camera{} recording. Nothing is recorded until recording is turned on again, also after a restart.",
            are(cameras)
        ),
        ("Keep recording", Message::ConfirmStopAll(false)),
        ("Stop all recording", Message::ConfirmStopAll(true)),
    )
}
