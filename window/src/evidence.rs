//! The evidence screen: exports (newest first) with the dispatch queue of
//! each (target, state, attempts, progress, last error), auto-dispatch on or
//! off, and an export in progress with its cancel button.

use std::time::{Duration, Instant};

use iced::widget::{button, checkbox, column, container, progress_bar, row, scrollable, text};
use iced::{Alignment, Element, Length};

use super::app::{App, Message};
use super::backend::{Command, Evidence};
use super::style;
use cctv_engine::catalog::{DispatchState, ExportRow, ExportStatus};
use cctv_engine::time;

#[derive(Debug, Clone)]
pub enum Msg {
    Dispatch(i64),
    Verify(ExportRow),
    Auto(bool),
    CancelExport,
}

#[derive(Debug, Default)]
pub struct EvidenceView {
    pub data: Evidence,
    pub loaded: bool,
    /// An export being written: (bytes done, total).
    pub exporting: Option<(u64, u64)>,
    last_load: Option<Instant>,
}

impl EvidenceView {
    /// Asks for fresh data at most once a second.
    pub fn refresh(&mut self) -> Option<Command> {
        if self
            .last_load
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return None;
        }
        self.last_load = Some(Instant::now());
        Some(Command::Evidence)
    }

    pub fn update(&mut self, m: Msg) -> Vec<Command> {
        self.last_load = None;
        match m {
            Msg::Dispatch(id) => vec![Command::Dispatch(id), Command::Evidence],
            Msg::Verify(e) => vec![Command::Verify(e)],
            Msg::Auto(on) => {
                self.data.auto_dispatch = on;
                vec![Command::AutoDispatch(on), Command::Evidence]
            }
            Msg::CancelExport => vec![Command::CancelExport],
        }
    }
}

pub fn view(app: &App) -> Element<'_, Message> {
    let ev = &app.evidence;
    let msg = Message::Evidence;
    let targets = if ev.data.targets.is_empty() {
        "no dispatch targets configured ([[dispatch_targets]] in the panel config)".to_string()
    } else {
        format!("targets: {}", ev.data.targets.join(", "))
    };
    let mut col = column![
        row![
            text("Exports and dispatch").size(22),
            iced::widget::space::horizontal(),
            checkbox(ev.data.auto_dispatch)
                .label("Auto-dispatch every finished segment (a)")
                .on_toggle(move |on| msg(Msg::Auto(on))),
        ]
        .align_y(Alignment::Center),
        text(targets).color(style::MUTED),
    ]
    .spacing(10);
    if let Some((done, total)) = ev.exporting {
        col = col.push(
            row![
                text("Exporting"),
                progress_bar(0.0..=total.max(1) as f32, done as f32).length(300),
                text(format!(
                    "{} of {}",
                    style::bytes(done as f64),
                    style::bytes(total as f64)
                )),
                button(text("Cancel"))
                    .style(button::danger)
                    .on_press(msg(Msg::CancelExport)),
            ]
            .spacing(10)
            .align_y(Alignment::Center),
        );
    }
    let mut list = column![].spacing(8);
    if ev.loaded && ev.data.exports.is_empty() {
        list = list.push(
            text("No exports yet: select recordings in the history and press Export.")
                .color(style::MUTED),
        );
    }
    for e in &ev.data.exports {
        let ok = e.status == ExportStatus::Complete;
        let head = row![
            text(time::local(e.created_us)).width(170),
            text(e.cameras.replace(',', ", ")).width(160),
            text(format!(
                "{} files · {}",
                e.files,
                style::bytes(e.bytes as f64)
            ))
            .width(160),
            text(if ok {
                e.path.clone()
            } else {
                format!("{}: {}", e.status, e.detail)
            })
            .color(if ok { style::MUTED } else { style::STALLED }),
            iced::widget::space::horizontal(),
            button(text("Verify"))
                .style(button::secondary)
                .on_press_maybe(ok.then(|| msg(Msg::Verify(e.clone())))),
            button(text("Dispatch")).on_press_maybe(
                (ok && !ev.data.targets.is_empty()).then_some(msg(Msg::Dispatch(e.id))),
            ),
        ]
        .spacing(10)
        .align_y(Alignment::Center);
        let mut block = column![head].spacing(4);
        for d in ev.data.dispatches.iter().filter(|d| d.export_id == e.id) {
            let color = match d.state {
                DispatchState::Done => style::LIVE,
                DispatchState::Failed => style::OFFLINE,
                DispatchState::Pending => style::STALLED,
            };
            let mut line = row![
                text(format!("→ {}", d.target)).width(170),
                text(d.state.as_str()).color(color).width(80),
                text(format!("{} attempt(s)", d.attempts)).width(110),
            ]
            .spacing(10)
            .align_y(Alignment::Center);
            if let Some((have, total)) = ev.data.progress.get(&d.id) {
                line =
                    line.push(progress_bar(0.0..=(*total).max(1) as f32, *have as f32).length(200));
                line = line.push(text(format!(
                    "{:.0}%",
                    100.0 * *have as f64 / (*total).max(1) as f64
                )));
            } else if d.state == DispatchState::Pending && d.next_attempt_us > time::now_us() {
                line = line.push(text(format!(
                    "next try {}",
                    time::local_clock(d.next_attempt_us)
                )));
            }
            if !d.last_error.is_empty() {
                line = line.push(text(d.last_error.clone()).color(style::OFFLINE));
            }
            block = block.push(line);
        }
        list = list.push(
            container(block)
                .padding(8)
                .width(Length::Fill)
                .style(style::panel),
        );
    }
    col.push(scrollable(list).height(Length::Fill)).into()
}
