//! Settings: per camera its name, recording mode and retention limits; for
//! the panel, where agents connect. Applied at once, kept in the catalog.

use std::collections::HashMap;
use std::net::SocketAddr;

use iced::widget::{button, column, pick_list, row, scrollable, text, text_input};
use iced::{Alignment, Element, Length};

use super::app::{App, Message};
use super::backend::Command;
use super::style;
use cctv_engine::catalog::{CameraRow, RecordMode};
use cctv_engine::live::CameraStatus;

#[derive(Debug, Clone)]
pub enum Msg {
    Name(String, String),
    Mode(String, ModeChoice),
    RetainGb(String, String),
    RetainDays(String, String),
    Save(String),
    Listen(String),
    ApplyListen,
    /// The new camera's id and name.
    NewId(String),
    NewName(String),
    /// Add it: with a one-time pairing code (true) or its settings shown.
    Add(bool),
    /// Copy what to tell the agent to the clipboard.
    Copy,
    /// Ask to revoke a camera; then the answer.
    Revoke(String),
    ConfirmRevoke(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeChoice(pub RecordMode);

impl std::fmt::Display for ModeChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

const MODES: [ModeChoice; 3] = [
    ModeChoice(RecordMode::Continuous),
    ModeChoice(RecordMode::Motion),
    ModeChoice(RecordMode::Off),
];

#[derive(Debug, Clone, Default)]
pub struct CameraForm {
    pub name: String,
    pub retain_gb: String,
    pub retain_days: String,
    /// The retention fields as read from the catalog; `None` until read.
    /// Save writes retention only once read, and only when changed.
    pub loaded: Option<(String, String)>,
    /// The retention fields were typed in (a late read leaves them be).
    pub edited: bool,
}

/// Bytes as the form's GB field shows them ("" for no limit).
fn gb_text(bytes: Option<i64>) -> String {
    bytes.map_or_else(String::new, |b| {
        let gb = format!("{:.3}", b as f64 / 1e9);
        gb.trim_end_matches('0').trim_end_matches('.').to_string()
    })
}

#[derive(Debug, Default)]
pub struct SettingsForm {
    pub cameras: HashMap<String, CameraForm>,
    pub listen: String,
    pub new_id: String,
    pub new_name: String,
    /// The settings (or pairing steps) for the camera just added, shown
    /// until another is added: a secret is shown only once.
    pub enrolled: Option<String>,
    /// The camera whose revocation waits for a yes.
    pub revoking: Option<String>,
}

impl SettingsForm {
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen: listen.to_string(),
            ..Self::default()
        }
    }

    /// Fills the form for cameras it does not have yet; their saved
    /// settings are read (`Command::CameraRows`), the fields filled when
    /// they arrive ([`SettingsForm::loaded`]).
    pub fn load(&mut self, cameras: &[CameraStatus]) -> Command {
        for c in cameras {
            self.cameras
                .entry(c.id.clone())
                .or_insert_with(|| CameraForm {
                    name: c.name.clone(),
                    ..CameraForm::default()
                });
        }
        Command::CameraRows
    }

    /// The cameras' saved settings arrived: fields not being edited (never
    /// read, or unchanged since read) take them.
    pub fn loaded(&mut self, rows: &[CameraRow]) {
        for r in rows {
            let f = self.cameras.entry(r.id.clone()).or_default();
            let saved = (
                gb_text(r.retain_bytes),
                r.retain_days.map_or_else(String::new, |d| d.to_string()),
            );
            if !f.edited {
                f.retain_gb = saved.0.clone();
                f.retain_days = saved.1.clone();
            }
            if f.name.is_empty() {
                f.name = r.name.clone();
            }
            f.loaded = Some(saved);
        }
    }

    /// What to tell the camera just added arrived; the form empties.
    pub fn enrolled(&mut self, text: String) {
        self.enrolled = Some(text);
        self.new_id.clear();
        self.new_name.clear();
    }

    pub fn update(&mut self, m: Msg, cameras: &[CameraStatus]) -> Result<Vec<Command>, FormError> {
        let form = |s: &mut Self, id: &str| s.cameras.entry(id.to_string()).or_default().clone();
        match m {
            Msg::Name(id, v) => self.cameras.entry(id).or_default().name = v,
            Msg::RetainGb(id, v) => {
                let f = self.cameras.entry(id).or_default();
                f.retain_gb = v;
                f.edited = true;
            }
            Msg::RetainDays(id, v) => {
                let f = self.cameras.entry(id).or_default();
                f.retain_days = v;
                f.edited = true;
            }
            Msg::Mode(id, mode) => return Ok(vec![Command::SetMode(id, mode.0)]),
            Msg::Save(id) => {
                let f = form(self, &id);
                let number = |s: &str, what| -> Result<Option<f64>, FormError> {
                    let s = s.trim();
                    if s.is_empty() {
                        return Ok(None);
                    }
                    match s.parse::<f64>() {
                        Ok(v) if v > 0.0 => Ok(Some(v)),
                        _ => Err(FormError::NotPositive(what)),
                    }
                };
                let Some(saved) = &f.loaded else {
                    return Err(FormError::NotRead(id));
                };
                let gb = number(&f.retain_gb, "retention in GB")?;
                let days = number(&f.retain_days, "retention in days")?;
                let mut cmds = Vec::new();
                if (f.retain_gb.trim(), f.retain_days.trim())
                    != (saved.0.as_str(), saved.1.as_str())
                {
                    cmds.push(Command::SetRetention(
                        id.clone(),
                        gb.map(|g| (g * 1e9) as i64),
                        days.map(|d| d.ceil() as i64),
                    ));
                }
                let current = cameras.iter().find(|c| c.id == id).map(|c| c.name.as_str());
                if current != Some(f.name.trim()) {
                    if f.name.trim().is_empty() {
                        return Err(FormError::NoName);
                    }
                    cmds.push(Command::Rename(id, f.name.trim().to_string()));
                }
                return Ok(cmds);
            }
            Msg::NewId(v) => self.new_id = v,
            Msg::NewName(v) => self.new_name = v,
            Msg::Add(pair) => {
                let id = self.new_id.trim().to_string();
                cctv_protocol::validate_camera_id(&id)
                    .map_err(|e| FormError::BadId(id.clone(), e))?;
                let name = self.new_name.trim().to_string();
                return Ok(vec![Command::AddCamera { id, name, pair }]);
            }
            // The app puts it on the clipboard.
            Msg::Copy => {}
            Msg::Revoke(id) => self.revoking = Some(id),
            Msg::ConfirmRevoke(yes) => {
                if let Some(id) = self.revoking.take()
                    && yes
                {
                    return Ok(vec![Command::Revoke(id)]);
                }
            }
            Msg::Listen(v) => self.listen = v,
            Msg::ApplyListen => {
                let addr: SocketAddr = self
                    .listen
                    .trim()
                    .parse()
                    .map_err(|_| FormError::NotAnAddress(self.listen.clone()))?;
                return Ok(vec![Command::Listen(addr)]);
            }
        }
        Ok(Vec::new())
    }
}

/// What the settings form refuses to save, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("{0} must be a number above 0, or empty for no limit")]
    NotPositive(&'static str),
    #[error("a camera needs a name")]
    NoName,
    #[error("{0}: its saved settings are still being read; try again in a moment")]
    NotRead(String),
    #[error("{0:?} is not an address like 0.0.0.0:7700")]
    NotAnAddress(String),
    #[error("{0:?} cannot be a camera id: {1}")]
    BadId(String, &'static str),
}

pub fn view(app: &App) -> Element<'_, Message> {
    let s = &app.settings;
    let msg = Message::Settings;
    let mut list = column![
        text("Cameras").size(20),
        row![
            text("Camera").width(120),
            text("Name").width(200),
            text("Recording").width(130),
            text("Keep at most (GB)").width(140),
            text("Keep (days)").width(100),
        ]
        .spacing(10),
    ]
    .spacing(8);
    for c in &app.cameras {
        let f = s.cameras.get(&c.id).cloned().unwrap_or_default();
        let id = c.id.clone();
        list = list.push(
            row![
                text(c.id.clone()).width(120),
                text_input("name", &f.name)
                    .on_input({
                        let id = id.clone();
                        move |v| msg(Msg::Name(id.clone(), v))
                    })
                    .width(200),
                pick_list(MODES, Some(ModeChoice(c.record_mode)), {
                    let id = id.clone();
                    move |m| msg(Msg::Mode(id.clone(), m))
                })
                .width(130),
                text_input("no limit", &f.retain_gb)
                    .on_input({
                        let id = id.clone();
                        move |v| msg(Msg::RetainGb(id.clone(), v))
                    })
                    .width(140),
                text_input("no limit", &f.retain_days)
                    .on_input({
                        let id = id.clone();
                        move |v| msg(Msg::RetainDays(id.clone(), v))
                    })
                    .width(100),
                button(text("Save")).on_press(msg(Msg::Save(id))),
            ]
            .spacing(10)
            .align_y(Alignment::Center),
        );
    }
    let listen = column![
        text("Panel").size(20),
        row![
            text("Agents connect to").width(160),
            text_input("0.0.0.0:7700", &s.listen)
                .on_input(move |v| msg(Msg::Listen(v)))
                .on_submit(msg(Msg::ApplyListen))
                .width(200),
            button(text("Apply")).on_press(msg(Msg::ApplyListen)),
            text(format!("now: {}", app.listen)).color(style::MUTED),
        ]
        .spacing(10)
        .align_y(Alignment::Center),
        text("Connected cameras stay connected; new connections use the new address, also after a restart.")
            .color(style::MUTED),
    ]
    .spacing(8);
    scrollable(
        column![list, listen, security(app)]
            .spacing(24)
            .width(Length::Fill),
    )
    .into()
}

/// How agents are let in, and who was turned away.
fn security(app: &App) -> Element<'_, Message> {
    let transport: Element<'_, Message> = match app.engine.fingerprint() {
        Some(f) => column![
            text("Agents connect over TLS. Each agent pins this certificate fingerprint:"),
            text(f.to_string()).font(iced::Font::MONOSPACE),
        ]
        .spacing(4)
        .into(),
        None => text(
            "PLAIN TCP: agents connect without encryption (plain_tcp = true). Video and handshakes can be read on the network.",
        )
        .color(style::OFFLINE)
        .into(),
    };
    let mut list = column![
        text("Who may connect").size(20),
        transport,
        enrol(app),
        allowed(app),
        text(format!(
            "Refused connections (newest {} shown)",
            app.refused.len()
        ))
        .size(16),
        row![
            text("Last attempt").width(170),
            text("From").width(170),
            text("Attempts").width(80),
            text("Claimed camera").width(130),
            text("Reason"),
        ]
        .spacing(10),
    ]
    .spacing(8);
    if app.refused.is_empty() {
        list = list.push(text("None.").color(style::MUTED));
    }
    for r in &app.refused {
        list = list.push(
            row![
                text(cctv_engine::time::local(r.at_us)).width(170),
                text(r.address.clone()).width(170),
                text(r.attempts.to_string()).width(80),
                text(r.claimed_id.clone().unwrap_or_else(|| "-".into())).width(130),
                text(r.reason.clone()).color(style::OFFLINE),
            ]
            .spacing(10),
        );
    }
    list.into()
}

/// Adding a camera: its id and name, then its agent's settings (or a
/// pairing code) to copy.
fn enrol(app: &App) -> Element<'_, Message> {
    let s = &app.settings;
    let msg = Message::Settings;
    let ready = !s.new_id.trim().is_empty();
    let mut col = column![
        text("Add a camera").size(16),
        row![
            text_input("camera id, e.g. back-door", &s.new_id)
                .on_input(move |v| msg(Msg::NewId(v)))
                .width(Length::FillPortion(2)),
            text_input("name, e.g. Back door", &s.new_name)
                .on_input(move |v| msg(Msg::NewName(v)))
                .width(Length::FillPortion(2)),
        ]
        .spacing(8),
        row![
            button(text("Add with a pairing code"))
                .on_press_maybe(ready.then_some(msg(Msg::Add(true)))),
            button(text("Add and show its settings"))
                .style(button::secondary)
                .on_press_maybe(ready.then_some(msg(Msg::Add(false)))),
        ]
        .spacing(8),
    ]
    .spacing(6);
    if let Some(t) = &s.enrolled {
        col = col.push(
            iced::widget::container(
                column![
                    text(t.clone()).font(iced::Font::MONOSPACE).size(13),
                    button(text("Copy")).on_press(msg(Msg::Copy)),
                ]
                .spacing(6),
            )
            .padding(8)
            .width(Length::Fill)
            .style(style::panel),
        );
    }
    col.into()
}

/// Cameras that may connect, each with a way to cut it off.
fn allowed(app: &App) -> Element<'_, Message> {
    let msg = Message::Settings;
    let mut col = column![text("Cameras that may connect").size(16)].spacing(4);
    for c in &app.cameras {
        let mut r = row![text(format!("{} ({})", c.name, c.id)).width(Length::Fill)]
            .spacing(8)
            .align_y(Alignment::Center);
        if app.settings.revoking.as_deref() == Some(c.id.as_str()) {
            r = r
                .push(text("Cut it off and refuse it from now on?").color(style::OFFLINE))
                .push(
                    button(text("Keep"))
                        .style(button::secondary)
                        .on_press(msg(Msg::ConfirmRevoke(false))),
                )
                .push(
                    button(text("Revoke"))
                        .style(button::danger)
                        .on_press(msg(Msg::ConfirmRevoke(true))),
                );
        } else {
            r = r.push(
                button(text("Revoke…"))
                    .style(button::secondary)
                    .on_press(msg(Msg::Revoke(c.id.clone()))),
            );
        }
        col = col.push(r);
    }
    col.into()
}
