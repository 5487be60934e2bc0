//! The history browser: recordings filtered by camera, date range and
//! motion, newest first, a page at a time, with each camera's offline/online
//! events on the same timeline so a gap is explained, and a strip per camera
//! showing its recordings, motion and tamper over the page. Opening a row
//! plays it.

use std::collections::HashMap;

use iced::widget::image::Handle;
use iced::widget::{
    button, column, container, image, pick_list, row, scrollable, text, text_input,
};
use iced::{Alignment, Element, Length};

use super::app::{App, Message};
use super::backend::{Command, HistoryQuery, PAGE, Reply};
use super::{strip, style};
use cctv_engine::catalog::{EventKind, EventRow, RecordingRow, RecordingStatus};
use cctv_engine::time;

pub const ALL_CAMERAS: &str = "All cameras";

#[derive(Debug, Clone)]
pub enum Msg {
    Camera(String),
    From(String),
    To(String),
    Apply,
    Page(i64),
    Play(RecordingRow),
    Select(i64, bool),
    ExportSelected,
    /// A clip of exactly the From-To range, of the camera shown (or all).
    ExportRange,
    /// Only recordings with motion in them.
    WithMotion(bool),
}

#[derive(Debug, Default)]
pub struct History {
    pub query: HistoryQuery,
    pub camera: Option<String>,
    pub from: String,
    pub to: String,
    pub error: Option<String>,
    pub recordings: Vec<RecordingRow>,
    pub events: Vec<EventRow>,
    /// Motion and tamper over the page.
    pub spans: Vec<EventRow>,
    pub with_motion: bool,
    pub loaded: bool,
    /// Recordings ticked for export.
    pub selected: std::collections::BTreeMap<i64, RecordingRow>,
    thumbs: HashMap<i64, Handle>,
    /// Pictures of motion and tamper events, by event id.
    pub event_thumbs: HashMap<i64, Handle>,
}

/// One line of the timeline.
pub enum Entry<'a> {
    Recording(&'a RecordingRow),
    Event(&'a EventRow),
}

impl History {
    /// Recordings, events and spans merged, newest first.
    pub fn timeline(&self) -> Vec<Entry<'_>> {
        let mut v: Vec<(i64, Entry)> = self
            .recordings
            .iter()
            .map(|r| (r.start_us, Entry::Recording(r)))
            .chain(
                self.events
                    .iter()
                    .chain(&self.spans)
                    .map(|e| (e.at_us, Entry::Event(e))),
            )
            .collect();
        v.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
        v.into_iter().map(|(_, e)| e).collect()
    }

    pub fn update(&mut self, m: Msg) -> Vec<Command> {
        match m {
            Msg::Camera(c) => {
                self.camera = (c != ALL_CAMERAS).then_some(c);
                return self.apply();
            }
            Msg::From(s) => self.from = s,
            Msg::To(s) => self.to = s,
            Msg::Apply => return self.apply(),
            Msg::WithMotion(on) => {
                self.with_motion = on;
                return self.apply();
            }
            Msg::Page(p) => {
                self.query.page = p.max(0);
                return vec![Command::History(self.query.clone())];
            }
            // The app starts playback (it owns the player).
            Msg::Play(_) => {}
            Msg::Select(id, on) => {
                if on {
                    if let Some(r) = self.recordings.iter().find(|r| r.id == id) {
                        self.selected.insert(id, r.clone());
                    }
                } else {
                    self.selected.remove(&id);
                }
            }
            Msg::ExportRange => return self.export_range(),
            Msg::ExportSelected => {
                let rows: Vec<RecordingRow> =
                    std::mem::take(&mut self.selected).into_values().collect();
                if !rows.is_empty() {
                    return vec![Command::Export(rows, Default::default())];
                }
            }
        }
        Vec::new()
    }

    /// A clip of the From-To range, once both are readable times.
    fn export_range(&mut self) -> Vec<Command> {
        let (from, to) = (time::parse(&self.from), time::parse(&self.to));
        match (from, to) {
            (Ok(from), Ok(to)) if from < to => {
                self.error = None;
                let cameras = self.camera.iter().cloned().collect();
                vec![Command::ExportRange(cameras, from, to, Default::default())]
            }
            (Ok(_), Ok(_)) => {
                self.error = Some("the range ends before it starts".into());
                Vec::new()
            }
            _ => {
                self.error = Some("a clip needs both From and To, e.g. 2026-11-21 14:03:10".into());
                Vec::new()
            }
        }
    }

    fn apply(&mut self) -> Vec<Command> {
        let parse = |s: &str| -> Result<Option<i64>, time::BadTime> {
            if s.trim().is_empty() {
                Ok(None)
            } else {
                time::parse(s).map(Some)
            }
        };
        match (parse(&self.from), parse(&self.to)) {
            (Ok(from_us), Ok(to_us)) => {
                self.error = None;
                // "Loading…" until the answer to this filter.
                self.loaded = false;
                self.query = HistoryQuery {
                    camera: self.camera.clone(),
                    from_us,
                    to_us,
                    with_motion: self.with_motion,
                    ..HistoryQuery::default()
                };
                vec![Command::History(self.query.clone())]
            }
            (Err(e), _) | (_, Err(e)) => {
                self.error = Some(e.to_string());
                Vec::new()
            }
        }
    }

    /// Takes a backend reply; returns thumbnails to fetch.
    pub fn on_reply(&mut self, reply: Reply) -> Vec<Command> {
        match reply {
            Reply::History(query, recordings, events, spans) if query == self.query => {
                self.recordings = recordings;
                self.events = events;
                self.spans = spans;
                self.loaded = true;
                let events = self
                    .spans
                    .iter()
                    .filter(|e| e.end_us.is_some() && !self.event_thumbs.contains_key(&e.id))
                    .map(|e| Command::EventThumbnail(e.id));
                self.recordings
                    .iter()
                    .filter(|r| !self.thumbs.contains_key(&r.id) && r.frames > 0)
                    .map(|r| Command::Thumbnail(r.clone()))
                    .chain(events)
                    .collect()
            }
            Reply::EventThumbnail(id, handle) => {
                self.event_thumbs.insert(id, handle);
                Vec::new()
            }
            Reply::Thumbnail(id, handle) => {
                self.thumbs.insert(id, handle);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}

fn recording_row<'a>(h: &'a History, r: &'a RecordingRow) -> Element<'a, Message> {
    let thumb: Element<Message> = match h.thumbs.get(&r.id) {
        Some(t) => image(t.clone()).width(96).height(54).into(),
        None => container(text(""))
            .width(96)
            .height(54)
            .style(style::tile(false))
            .into(),
    };
    let status_color = match r.status {
        RecordingStatus::Complete => style::LIVE,
        RecordingStatus::Interrupted => style::STALLED,
        RecordingStatus::Recording => style::REC,
    };
    let finished = r.status != RecordingStatus::Recording;
    let tick = iced::widget::checkbox(h.selected.contains_key(&r.id)).on_toggle_maybe(
        finished.then(|| {
            let id = r.id;
            move |on| Message::History(Msg::Select(id, on))
        }),
    );
    let mut status = if r.detail.is_empty() {
        r.status.to_string()
    } else {
        format!("{}: {}", r.status, r.detail)
    };
    if r.backfilled {
        status.push_str(" · backfilled from the agent's spool");
    }
    row![
        tick,
        button(
            row![
                thumb,
                text(r.camera_id.clone()).width(Length::FillPortion(COL_CAMERA)),
                text(time::local(r.start_us)).width(Length::FillPortion(COL_START)),
                text(style::duration((r.end_us - r.start_us) as f64 / 1e6))
                    .width(Length::FillPortion(COL_LENGTH)),
                text(style::bytes(r.bytes as f64)).width(Length::FillPortion(COL_SIZE)),
                text(status)
                    .color(status_color)
                    .width(Length::FillPortion(COL_STATUS)),
            ]
            .spacing(12)
            .align_y(Alignment::Center),
        )
        .style(button::text)
        .width(Length::Fill)
        .on_press(Message::History(Msg::Play(r.clone()))),
        button(text("Panorama"))
            .width(PANORAMA_W)
            .style(button::secondary)
            .on_press_maybe((finished && r.frames > 1).then(|| {
                Message::Panorama(
                    r.camera_id.clone(),
                    cctv_engine::PanoramaFrom::Recording(r.id),
                )
            })),
    ]
    .spacing(6)
    .align_y(Alignment::Center)
    .into()
}

fn event_row<'a>(h: &'a History, e: &'a EventRow) -> Element<'a, Message> {
    let color = match e.kind {
        EventKind::Live => style::LIVE,
        EventKind::Stalled => style::STALLED,
        EventKind::Motion => style::MOTION,
        k if k.is_tamper() => style::ALARM,
        _ => style::OFFLINE,
    };
    let length = match e.end_us {
        Some(end) => style::duration((end - e.at_us) as f64 / 1e6),
        None => "going on".to_string(),
    };
    let what = match e.kind {
        EventKind::Motion => format!(
            "motion · {length}{}",
            e.peak_score
                .map(|p| format!(" · peak {:.1}% of the picture", p * 100.0))
                .unwrap_or_default()
        ),
        k if k.is_tamper() => format!("tamper: {} · {length}", crate::alarms::says(k)),
        k => format!("camera {}", k.as_str().replace('_', " ")),
    };
    let detail = if e.kind.is_span() {
        String::new()
    } else {
        e.detail.clone()
    };
    // A motion or tamper event shows its picture where a recording does.
    let picture: Element<Message> = match h.event_thumbs.get(&e.id) {
        Some(t) => row![
            container(text("")).width(30),
            image(t.clone()).width(96).height(54)
        ]
        .into(),
        None => container(text("")).width(126).into(),
    };
    row![
        picture,
        text(e.camera_id.clone()).width(Length::FillPortion(COL_CAMERA)),
        text(time::local(e.at_us)).width(Length::FillPortion(COL_START)),
        column![text(what).color(color), text(detail).color(style::MUTED)]
            .width(Length::FillPortion(COL_LENGTH + COL_SIZE + COL_STATUS)),
        // Where a recording has its panorama button.
        container(text("")).width(PANORAMA_W),
    ]
    .spacing(12)
    .padding([2, 5])
    .into()
}

pub fn view(app: &App) -> Element<'_, Message> {
    let h = &app.history;
    let mut cameras = vec![ALL_CAMERAS.to_string()];
    cameras.extend(app.cameras.iter().map(|c| c.id.clone()));
    let selected = Some(h.camera.clone().unwrap_or_else(|| ALL_CAMERAS.to_string()));
    let filters = row![
        pick_list(cameras, selected, |c| Message::History(Msg::Camera(c))),
        text("from"),
        text_input("YYYY-MM-DD [HH:MM[:SS]]", &h.from)
            .on_input(|s| Message::History(Msg::From(s)))
            .on_submit(Message::History(Msg::Apply))
            .width(170),
        text("to"),
        text_input("YYYY-MM-DD [HH:MM[:SS]]", &h.to)
            .on_input(|s| Message::History(Msg::To(s)))
            .on_submit(Message::History(Msg::Apply))
            .width(170),
        button(text("Filter")).on_press(Message::History(Msg::Apply)),
        iced::widget::checkbox(h.with_motion)
            .label("with motion")
            .on_toggle(|on| Message::History(Msg::WithMotion(on))),
    ]
    .spacing(8)
    .align_y(Alignment::Center);
    let actions = row![
        button(text(format!("Export selected ({})", h.selected.len()))).on_press_maybe(
            (!h.selected.is_empty()).then_some(Message::History(Msg::ExportSelected))
        ),
        button(text("Export From-To as a clip"))
            .style(button::secondary)
            .on_press_maybe(
                (!h.from.trim().is_empty() && !h.to.trim().is_empty())
                    .then_some(Message::History(Msg::ExportRange))
            ),
        iced::widget::space::horizontal(),
        button(text("Newer"))
            .style(button::secondary)
            .on_press_maybe(
                (h.query.page > 0).then_some(Message::History(Msg::Page(h.query.page - 1)))
            ),
        text(format!("page {}", h.query.page + 1)),
        button(text("Older"))
            .style(button::secondary)
            .on_press_maybe(
                (h.recordings.len() as i64 == PAGE)
                    .then_some(Message::History(Msg::Page(h.query.page + 1)))
            ),
    ]
    .spacing(8)
    .align_y(Alignment::Center);
    let mut list = column![].spacing(2);
    for entry in h.timeline() {
        list = list.push(match entry {
            Entry::Recording(r) => recording_row(h, r),
            Entry::Event(e) => event_row(h, e),
        });
    }
    let body: Element<Message> = if !h.loaded {
        text("Loading…").into()
    } else if h.recordings.is_empty() && h.events.is_empty() {
        text("No recordings match.").color(style::MUTED).into()
    } else {
        // Room on the right for the scroll bar.
        scrollable(list.padding(iced::Padding {
            right: 16.0,
            ..iced::Padding::ZERO
        }))
        .height(Length::Fill)
        .into()
    };
    let mut col = column![filters, actions].spacing(10);
    if let Some(e) = &h.error {
        col = col.push(text(e.clone()).color(style::OFFLINE));
    }
    if h.loaded {
        col = col.push(strips(h));
    }
    col = col.push(
        row![
            container(text("")).width(126),
            text("Camera").width(Length::FillPortion(COL_CAMERA)),
            text("Start").width(Length::FillPortion(COL_START)),
            text("Length").width(Length::FillPortion(COL_LENGTH)),
            text("Size").width(Length::FillPortion(COL_SIZE)),
            text("Status").width(Length::FillPortion(COL_STATUS)),
            container(text("")).width(PANORAMA_W + 22.0),
        ]
        .spacing(12)
        .padding([0, 5]),
    );
    col.push(body).into()
}

/// Shares of the list's width: camera, start, length, size, status.
const COL_CAMERA: u16 = 4;
const COL_START: u16 = 6;
const COL_LENGTH: u16 = 3;
const COL_SIZE: u16 = 3;
const COL_STATUS: u16 = 5;
const PANORAMA_W: f32 = 100.0;

/// A strip per camera over the page's time: recorded (grey), gaps coloured
/// by why, motion (orange), tamper (red), so where things happened shows
/// at a glance.
fn strips(h: &History) -> Element<'_, Message> {
    let ends = |e: &EventRow| e.end_us.unwrap_or_else(time::now_us);
    let times = h
        .recordings
        .iter()
        .flat_map(|r| [r.start_us, r.end_us])
        .chain(h.spans.iter().flat_map(|e| [e.at_us, ends(e)]));
    let (Some(t0), Some(t1)) = (times.clone().min(), times.max()) else {
        return column![].into();
    };
    let mut cameras: Vec<&str> = h
        .recordings
        .iter()
        .map(|r| r.camera_id.as_str())
        .chain(h.spans.iter().map(|e| e.camera_id.as_str()))
        .collect();
    cameras.sort_unstable();
    cameras.dedup();
    let mut col = column![strip::ends(t0, t1, 130.0)].spacing(3);
    for cam in cameras {
        // The page is newest first; strips want oldest first.
        let mut recordings: Vec<RecordingRow> = h.recordings.clone();
        recordings.retain(|r| r.camera_id == cam);
        recordings.reverse();
        let of_cam = |rows: &[EventRow]| -> Vec<EventRow> {
            rows.iter()
                .filter(|e| e.camera_id == cam)
                .cloned()
                .collect()
        };
        let mut events = of_cam(&h.events);
        events.reverse();
        let spans = of_cam(&h.spans);
        let gaps = strip::gaps(&recordings, &events, t0, t1);
        col = col.push(
            row![
                text(cam.to_string()).width(130).size(13),
                strip::strip(&recordings, &spans, &gaps, (t0, t1), 14.0)
            ]
            .spacing(12)
            .align_y(Alignment::Center),
        );
    }
    col.into()
}
