//! The evidence screen: exports (newest first) with the dispatch queue of
//! each (target, state, attempts, progress, last error), auto-dispatch on or
//! off, and an export in progress with its cancel button.

use iced::widget::{button, checkbox, column, container, progress_bar, row, scrollable, text};
use iced::{Alignment, Element, Length};

use super::app::{App, Message};
use super::backend::{Command, Evidence};
use super::style;
use cctv_engine::catalog::{DispatchRow, DispatchState, ExportRow, ExportStatus};
use cctv_engine::time;
use tokio_util::sync::CancellationToken;

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
    /// Stops the export being written.
    pub cancel: Option<CancellationToken>,
}

impl EvidenceView {
    /// Something is moving (an export being written, a transfer due or in
    /// flight): the screen is reloaded each second while it shows.
    pub fn busy(&self) -> bool {
        let now = time::now_us();
        self.exporting.is_some()
            || !self.data.progress.is_empty()
            || self
                .data
                .dispatches
                .iter()
                .any(|d| d.state == DispatchState::Pending && d.next_attempt_us <= now)
    }

    pub fn update(&mut self, m: Msg) -> Vec<Command> {
        match m {
            Msg::Dispatch(id) => vec![Command::Dispatch(id), Command::Evidence],
            Msg::Verify(e) => vec![Command::Verify(e)],
            Msg::Auto(on) => {
                self.data.auto_dispatch = on;
                vec![Command::AutoDispatch(on)]
            }
            Msg::CancelExport => {
                if let Some(token) = self.cancel.take() {
                    token.cancel();
                }
                Vec::new()
            }
        }
    }
}

pub fn view(app: &App) -> Element<'_, Message> {
    let ev = &app.evidence;
    let mut col = column![header(ev)].spacing(10);
    if let Some((done, total)) = ev.exporting {
        col = col.push(export_progress(done, total));
    }
    let mut list = column![].spacing(8);
    if ev.loaded && ev.data.exports.is_empty() {
        list = list.push(
            text("No exports yet: select recordings in the history and press Export.")
                .color(style::MUTED),
        );
    }
    for e in &ev.data.exports {
        list = list.push(
            container(export_block(ev, e))
                .padding(8)
                .width(Length::Fill)
                .style(style::panel),
        );
    }
    col.push(scrollable(list).height(Length::Fill)).into()
}

/// The title, the auto-dispatch switch and the configured targets.
fn header(ev: &EvidenceView) -> Element<'_, Message> {
    let targets = if ev.data.targets.is_empty() {
        "no dispatch targets configured ([[dispatch_targets]] in the panel config)".to_string()
    } else {
        format!("targets: {}", ev.data.targets.join(", "))
    };
    column![
        row![
            text("Exports and dispatch").size(22),
            iced::widget::space::horizontal(),
            checkbox(ev.data.auto_dispatch)
                .label("Auto-dispatch every finished segment (a)")
                .on_toggle(|on| Message::Evidence(Msg::Auto(on))),
        ]
        .align_y(Alignment::Center),
        text(targets).color(style::MUTED),
    ]
    .spacing(10)
    .into()
}

/// The export being written, with its cancel button.
fn export_progress<'a>(done: u64, total: u64) -> Element<'a, Message> {
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
            .on_press(Message::Evidence(Msg::CancelExport)),
    ]
    .spacing(10)
    .align_y(Alignment::Center)
    .into()
}

/// One export and, under it, each of its transfers.
fn export_block<'a>(ev: &'a EvidenceView, e: &'a ExportRow) -> Element<'a, Message> {
    let msg = Message::Evidence;
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
        block = block.push(dispatch_line(ev, d));
    }
    block.into()
}

/// A transfer: target, state, attempts, and its progress, next try or error.
fn dispatch_line<'a>(ev: &'a EvidenceView, d: &'a DispatchRow) -> Element<'a, Message> {
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
        line = line.push(progress_bar(0.0..=(*total).max(1) as f32, *have as f32).length(200));
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
    line.into()
}
