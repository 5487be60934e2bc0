//! The panoramas screen: past panoramas per camera (thumbnail, source,
//! frames, status or the reason it failed), stitches in progress with their
//! stage and a cancel button, and a pannable, zoomable viewer.

use std::collections::HashMap;

use iced::widget::image::{Handle, viewer};
use iced::widget::{button, column, container, image, pick_list, row, scrollable, text};
use iced::{Alignment, Element, Length};

use super::app::{App, Message};
use super::backend::Command;
use super::history::ALL_CAMERAS;
use super::style;
use cctv_engine::catalog::{PanoramaRow, PanoramaStatus};
use cctv_engine::time;

#[derive(Debug, Clone)]
pub enum Msg {
    Camera(String),
    Open(Box<PanoramaRow>),
    Close,
    Cancel(i64),
}

#[derive(Debug, Default)]
pub struct Panoramas {
    pub camera: Option<String>,
    pub rows: Vec<PanoramaRow>,
    /// Stitches in progress: id -> stage.
    pub jobs: HashMap<i64, String>,
    pub loaded: bool,
    pub thumbs: HashMap<i64, Handle>,
    /// The panorama open in the viewer, and its picture once decoded.
    pub open: Option<(PanoramaRow, Option<Handle>)>,
    /// When the rows were read (overtaken replies are dropped).
    read: u64,
}

impl Panoramas {
    /// The rows for the chosen camera (or all).
    pub fn load(&self) -> Command {
        Command::Panoramas(self.camera.clone())
    }

    pub fn update(&mut self, m: Msg) -> Vec<Command> {
        match m {
            Msg::Camera(c) => {
                self.camera = (c != ALL_CAMERAS).then_some(c);
                vec![self.load()]
            }
            Msg::Open(row) => {
                self.open = Some(((*row).clone(), None));
                vec![Command::PanoramaImage(*row)]
            }
            Msg::Close => {
                self.open = None;
                Vec::new()
            }
            Msg::Cancel(id) => vec![Command::CancelPanorama(id)],
        }
    }

    /// New rows; returns the thumbnails to fetch.
    pub fn set(
        &mut self,
        rows: Vec<PanoramaRow>,
        jobs: HashMap<i64, String>,
        read: u64,
    ) -> Vec<Command> {
        if read <= self.read {
            return Vec::new();
        }
        self.read = read;
        self.rows = rows;
        self.jobs = jobs;
        self.loaded = true;
        self.rows
            .iter()
            .filter(|r| r.status == PanoramaStatus::Complete && !self.thumbs.contains_key(&r.id))
            .map(|r| Command::PanoramaThumb(r.clone()))
            .collect()
    }
}

pub fn view(app: &App) -> Element<'_, Message> {
    let p = &app.panoramas;
    if let Some((row, image)) = &p.open {
        return viewer_view(row, image.as_ref());
    }
    let msg = Message::Panoramas;
    let mut cameras = vec![ALL_CAMERAS.to_string()];
    cameras.extend(app.cameras.iter().map(|c| c.id.clone()));
    let selected = Some(p.camera.clone().unwrap_or_else(|| ALL_CAMERAS.to_string()));
    let header = row![
        text("Panoramas").size(22),
        pick_list(cameras, selected, move |c| msg(Msg::Camera(c))),
        iced::widget::space::horizontal(),
        text("Make one from a camera's focus view (last 30 s) or a recording in the history.")
            .color(style::MUTED),
    ]
    .spacing(12)
    .align_y(Alignment::Center);
    let mut list = column![].spacing(6);
    if p.loaded && p.rows.is_empty() {
        list = list.push(text("No panoramas yet.").color(style::MUTED));
    }
    for r in &p.rows {
        list = list.push(
            container(list_row(p, r))
                .padding(6)
                .width(Length::Fill)
                .style(style::panel),
        );
    }
    column![header, scrollable(list).height(Length::Fill)]
        .spacing(10)
        .into()
}

/// One panorama, opened: pannable and zoomable.
fn viewer_view<'a>(row: &PanoramaRow, image: Option<&Handle>) -> Element<'a, Message> {
    let picture: Element<Message> = match image {
        Some(h) => viewer(h.clone())
            .width(Length::Fill)
            .height(Length::Fill)
            .min_scale(0.1)
            .max_scale(8.0)
            .into(),
        None => container(text("Loading…")).center(Length::Fill).into(),
    };
    column![
        row![
            text(format!(
                "{} · {} · {}x{}",
                row.camera_id, row.source, row.width, row.height
            ))
            .size(18),
            iced::widget::space::horizontal(),
            text("drag to pan, scroll to zoom").color(style::MUTED),
            button(text("Back to the list (Esc)"))
                .style(button::secondary)
                .on_press(Message::Panoramas(Msg::Close)),
        ]
        .spacing(10)
        .align_y(Alignment::Center),
        container(picture)
            .width(Length::Fill)
            .height(Length::Fill)
            .style(style::tile(true)),
        text(row.message.clone()).color(style::MUTED),
    ]
    .spacing(8)
    .into()
}

/// What a panorama's line says of it, in which colour.
fn status_of(p: &Panoramas, r: &PanoramaRow) -> (String, iced::Color) {
    match r.status {
        PanoramaStatus::Complete => (
            format!(
                "{}x{} · {} frames · {:.1} s",
                r.width,
                r.height,
                r.frames_used,
                r.stitch_ms as f64 / 1000.0
            ),
            style::LIVE,
        ),
        PanoramaStatus::Running => (
            format!(
                "working: {}",
                p.jobs.get(&r.id).cloned().unwrap_or_else(|| "…".into())
            ),
            style::STALLED,
        ),
        other @ (PanoramaStatus::Failed | PanoramaStatus::Cancelled) => {
            (format!("{other}: {}", r.message), style::OFFLINE)
        }
    }
}

/// One line of the list: thumbnail, source, status and what can be done.
fn list_row<'a>(p: &'a Panoramas, r: &'a PanoramaRow) -> iced::widget::Row<'a, Message> {
    let msg = Message::Panoramas;
    let thumb: Element<Message> = match p.thumbs.get(&r.id) {
        Some(t) => image(t.clone()).width(240).into(),
        None => container(text("")).width(240).height(40).into(),
    };
    let (status, color) = status_of(p, r);
    let mut line = row![
        thumb,
        column![
            text(format!("{} · {}", r.camera_id, r.source)),
            text(time::local(r.created_us)).color(style::MUTED),
            text(status).color(color),
        ]
        .spacing(2),
        iced::widget::space::horizontal(),
    ]
    .spacing(12)
    .align_y(Alignment::Center);
    match r.status {
        PanoramaStatus::Complete => {
            line = line.push(button(text("View")).on_press(msg(Msg::Open(Box::new(r.clone())))));
        }
        PanoramaStatus::Running => {
            line = line.push(
                button(text("Cancel"))
                    .style(button::danger)
                    .on_press(msg(Msg::Cancel(r.id))),
            );
        }
        PanoramaStatus::Failed if !r.path.is_empty() => {
            line = line.push(text(format!("tried frames: data/{}", r.path)).color(style::MUTED));
        }
        _ => {}
    }
    line
}
