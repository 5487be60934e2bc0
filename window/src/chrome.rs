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

pub fn status_bar(app: &App) -> Element<'_, Message> {
    let disk = match app.disk {
        Some((used, free)) => format!(
            "recordings {} · {} free",
            style::bytes(used as f64),
            style::bytes(free as f64)
        ),
        None => "disk: …".into(),
    };
    let mut bar = row![
        text(format!(
            "{} of {} cameras live",
            app.live_count(),
            app.cameras.len()
        )),
        text(format!("{} recording", app.recording_count())),
        text(disk),
        text(format!("agents connect to {}", app.listen)),
    ]
    .spacing(24);
    if let Some((msg, error, at)) = &app.notice
        && at.elapsed() < super::app::NOTICE_FOR
    {
        bar = bar.push(iced::widget::space::horizontal());
        bar = bar.push(text(msg.clone()).color(if *error { style::OFFLINE } else { style::MUTED }));
    }
    container(bar)
        .padding(6)
        .width(Length::Fill)
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

pub fn help_panel<'a>() -> Element<'a, Message> {
    let mut col = column![text("Keyboard shortcuts").size(22)].spacing(6);
    for (keys, what, _) in keys::SHORTCUTS {
        col = col.push(row![text(*keys).width(90), text(*what)].spacing(12));
    }
    col = col.push(row![
        iced::widget::space::horizontal(),
        button(text("Close (Esc)")).on_press(Message::Action(Action::Help))
    ]);
    col.into()
}

pub fn quit_panel<'a>(recording: usize) -> Element<'a, Message> {
    column![
        text("Quit the panel?").size(22),
        text(format!(
            "{recording} camera{} recording. Quitting closes the open recordings and stops recording until the panel runs again.",
            if recording == 1 { " is" } else { "s are" }
        )),
        row![
            iced::widget::space::horizontal(),
            button(text("Keep running")).style(button::secondary).on_press(Message::ConfirmQuit(false)),
            button(text("Quit")).style(button::danger).on_press(Message::ConfirmQuit(true)),
        ]
        .spacing(8),
    ]
    .spacing(12)
    .into()
}
