//! Playback of a recording inside the panel, at the recorded timestamps:
//! wall-clock time since "play" times the speed gives the position, and the
//! frame shown is the last one at or before it. So a camera that dropped to
//! 3 fps plays back at its true pace.

use std::sync::Arc;
use std::time::Instant;

use iced::widget::image::Handle;
use iced::widget::{button, column, container, image, row, slider, text};
use iced::{Alignment, ContentFit, Element, Length};

use super::app::{App, Message, Screen};
use super::backend::Command;
use super::style;
use cctv_engine::RecordingIndex as Scan;
use cctv_engine::catalog::RecordingRow;
use cctv_engine::time;

pub const SPEEDS: [Speed; 5] = [Speed(0.5), Speed(1.0), Speed(2.0), Speed(4.0), Speed(8.0)];

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speed(pub f64);

impl std::fmt::Display for Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x", self.0)
    }
}

#[derive(Debug, Clone)]
pub enum Msg {
    Tick,
    PlayPause,
    Seek(f64),
    Skip(i64),
    Restart,
    Step,
    /// One frame back.
    StepBack,
    Speed(Speed),
    /// Jump to the next (true) or previous motion or tamper event.
    Event(bool),
}

pub struct Player {
    pub row: RecordingRow,
    scan: Arc<Scan>,
    pub playing: bool,
    pub speed: f64,
    /// Media time (ms from the first frame) at `anchor_wall`.
    anchor_ms: f64,
    anchor_wall: Instant,
    /// Frame shown (or being fetched) and the image of the one shown.
    pub index: usize,
    requested: Option<(u64, usize)>,
    next_request: u64,
    shown: Option<usize>,
    pub image: Option<Handle>,
    /// Starts of the camera's motion and tamper events, capture time, in order.
    pub events: Vec<i64>,
}

impl Player {
    pub fn new(row: RecordingRow, scan: Arc<Scan>) -> Self {
        Self {
            row,
            scan,
            playing: true,
            speed: 1.0,
            anchor_ms: 0.0,
            anchor_wall: Instant::now(),
            index: 0,
            requested: None,
            next_request: 1,
            shown: None,
            image: None,
            events: Vec::new(),
        }
    }

    /// Where its events start (capture times), for the jumps.
    pub fn with_events(mut self, mut starts: Vec<i64>) -> Self {
        starts.sort_unstable();
        self.events = starts;
        self
    }

    /// The event start to jump to from the frame shown: the first more than
    /// half a second after it, or the last more than a second before it
    /// (so pressing back twice walks back through events).
    pub fn event_to(&self, forward: bool) -> Option<i64> {
        let now = self.shown_capture_us()?;
        let end = self.scan.origin_us + (self.length_ms() * 1000.0) as i64;
        if forward {
            self.events
                .iter()
                .copied()
                .find(|t| *t > now + 500_000 && *t <= end)
        } else {
            self.events
                .iter()
                .rev()
                .copied()
                .find(|t| *t < now - 1_000_000 && *t >= self.scan.origin_us - 1_000_000)
        }
    }

    pub fn frames(&self) -> usize {
        self.scan.frames.len()
    }

    /// Length in ms: to the last frame plus one average interval.
    pub fn length_ms(&self) -> f64 {
        let f = &self.scan.frames;
        match f.len() {
            0 => 0.0,
            1 => 1.0,
            n => {
                let last = f[n - 1].time_ms as f64;
                last + last / (n - 1) as f64
            }
        }
    }

    pub fn position_ms(&self, now: Instant) -> f64 {
        if self.playing {
            self.anchor_ms
                + now.duration_since(self.anchor_wall).as_secs_f64() * 1000.0 * self.speed
        } else {
            self.anchor_ms
        }
    }

    /// The last frame at or before `ms`.
    pub fn frame_at(&self, ms: f64) -> usize {
        self.scan
            .frames
            .partition_point(|f| (f.time_ms as f64) <= ms)
            .saturating_sub(1)
    }

    fn seek(&mut self, ms: f64, now: Instant) {
        self.anchor_ms = ms.clamp(0.0, self.length_ms());
        self.anchor_wall = now;
        self.index = self.frame_at(self.anchor_ms);
    }

    pub fn update(&mut self, m: Msg, now: Instant) {
        match m {
            Msg::Tick => {
                let pos = self.position_ms(now);
                if pos >= self.length_ms() {
                    self.seek(self.length_ms(), now);
                    self.playing = false;
                }
                self.index = self.frame_at(self.position_ms(now));
            }
            Msg::PlayPause => {
                let pos = self.position_ms(now);
                let at_end = pos >= self.length_ms();
                self.playing = !self.playing;
                self.seek(if at_end && self.playing { 0.0 } else { pos }, now);
            }
            Msg::Seek(ms) => self.seek(ms, now),
            Msg::Skip(secs) => {
                let pos = self.position_ms(now);
                self.seek(pos + secs as f64 * 1000.0, now);
            }
            Msg::Restart => {
                self.seek(0.0, now);
                self.playing = true;
            }
            Msg::Step | Msg::StepBack => {
                self.playing = false;
                let next = match m {
                    Msg::Step => (self.index + 1).min(self.frames().saturating_sub(1)),
                    _ => self.index.saturating_sub(1),
                };
                let ms = self.scan.frames.get(next).map_or(0.0, |f| f.time_ms as f64);
                self.seek(ms, now);
            }
            Msg::Speed(s) => {
                let pos = self.position_ms(now);
                self.speed = s.0;
                self.seek(pos, now);
            }
            Msg::Event(forward) => {
                if let Some(t) = self.event_to(forward) {
                    // A second before it, to see it begin.
                    let ms = (t - self.scan.origin_us) as f64 / 1000.0 - 1000.0;
                    self.seek(ms.max(0.0), now);
                }
            }
        }
    }

    /// The decode to ask for, if the frame to show is not the one shown or
    /// already asked for. One decode at a time: a slow one skips frames.
    pub fn wanted_frame(&mut self, width: u32) -> Option<Command> {
        if self.requested.is_some() {
            return None;
        }
        if self.image.is_some() && self.shown == Some(self.index) {
            return None;
        }
        let frame = *self.scan.frames.get(self.index)?;
        let request = self.next_request;
        self.next_request += 1;
        self.requested = Some((request, self.index));
        Some(Command::Frame {
            request,
            recording: self.row.clone(),
            frame,
            width,
        })
    }

    pub fn on_frame(&mut self, request: u64, image: Handle) {
        if let Some((r, index)) = self.requested
            && r == request
        {
            self.requested = None;
            self.shown = Some(index);
            self.image = Some(image);
        }
    }

    /// Capture time of the frame shown.
    pub fn shown_capture_us(&self) -> Option<i64> {
        self.scan
            .frames
            .get(self.index)
            .map(|f| self.scan.capture_us(f))
    }
}

/// The speeds as buttons, the current one marked (no drop-down to fall
/// over the status bar).
fn speeds<'a>(now: f64) -> Element<'a, Message> {
    row(SPEEDS.into_iter().map(|s| {
        button(text(s.to_string()))
            .style(if s.0 == now {
                button::primary
            } else {
                button::secondary
            })
            .on_press(Message::Player(Msg::Speed(s)))
            .into()
    }))
    .spacing(4)
    .into()
}

pub fn view(app: &App) -> Element<'_, Message> {
    let Some(p) = app.player.as_ref() else {
        return column![
            text("Nothing to play: choose a recording in the history."),
            button(text("History")).on_press(Message::Show(Screen::History)),
        ]
        .spacing(10)
        .into();
    };
    let now = Instant::now();
    let pos = p.position_ms(now).min(p.length_ms());
    let picture: Element<Message> = match &p.image {
        Some(h) => image(h.clone())
            .content_fit(ContentFit::Contain)
            .width(Length::Fill)
            .height(Length::Fill)
            .into(),
        None => container(text("Loading…")).center(Length::Fill).into(),
    };
    let msg = |m: Msg| Message::Player(m);
    let clock = p.shown_capture_us().map(time::local).unwrap_or_default();
    let controls = row![
        button(text("Restart"))
            .style(button::secondary)
            .on_press(msg(Msg::Restart)),
        button(text("-10 s"))
            .style(button::secondary)
            .on_press(msg(Msg::Skip(-10))),
        button(text(if p.playing { "Pause" } else { "Play" })).on_press(msg(Msg::PlayPause)),
        button(text("+10 s"))
            .style(button::secondary)
            .on_press(msg(Msg::Skip(10))),
        button(text("Step back"))
            .style(button::secondary)
            .on_press(msg(Msg::StepBack)),
        button(text("Step"))
            .style(button::secondary)
            .on_press(msg(Msg::Step)),
        iced::widget::space::horizontal(),
        speeds(p.speed),
    ]
    .spacing(8)
    .align_y(Alignment::Center);
    let position = row![
        text(format!(
            "{} / {}",
            style::duration(pos / 1000.0),
            style::duration(p.length_ms() / 1000.0)
        )),
        text(format!("frame {} of {}", p.index + 1, p.frames())).color(style::MUTED),
        button(text("[ event"))
            .style(button::secondary)
            .on_press_maybe(p.event_to(false).map(|_| msg(Msg::Event(false)))),
        button(text("event ]"))
            .style(button::secondary)
            .on_press_maybe(p.event_to(true).map(|_| msg(Msg::Event(true)))),
        iced::widget::space::horizontal(),
        button(text("Back to history (Esc)"))
            .style(button::secondary)
            .on_press(Message::Show(Screen::History)),
    ]
    .spacing(8)
    .align_y(Alignment::Center);
    column![
        row![
            text(format!("{} · {}", p.row.camera_id, p.row.path))
                .size(18)
                .width(Length::Fill),
            iced::widget::space::horizontal(),
            text(clock).size(18),
        ],
        container(picture)
            .width(Length::Fill)
            .height(Length::Fill)
            .style(style::tile(true)),
        slider(0.0..=p.length_ms().max(1.0), pos, |v| Message::Player(
            Msg::Seek(v)
        ))
        .step(1.0),
        controls,
        position,
    ]
    .spacing(8)
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cctv_engine::FrameRef;
    use std::time::Duration;

    fn player(times: &[i64]) -> Player {
        let scan = Scan {
            frames: times
                .iter()
                .map(|t| FrameRef {
                    time_ms: *t,
                    pos: 0,
                    len: 1,
                })
                .collect(),
            origin_us: 1_000_000,
            ..Default::default()
        };
        let row = RecordingRow {
            id: 1,
            camera_id: "c".into(),
            path: "p".into(),
            start_us: 0,
            end_us: 0,
            frames: times.len() as i64,
            bytes: 0,
            width: 1,
            height: 1,
            status: cctv_engine::catalog::RecordingStatus::Complete,
            detail: String::new(),
        };
        Player::new(row, Arc::new(scan))
    }

    #[test]
    fn plays_at_recorded_times_not_a_fixed_rate() {
        // 10 fps for a second, then 3 fps.
        let p = player(&[
            0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1233, 1566, 1900,
        ]);
        assert_eq!(p.frame_at(950.0), 9);
        assert_eq!(p.frame_at(1232.0), 9);
        assert_eq!(p.frame_at(1240.0), 10);
        let t0 = Instant::now();
        let mut p = p;
        p.seek(0.0, t0);
        p.update(Msg::Tick, t0 + Duration::from_millis(1300));
        assert_eq!(p.index, 10, "1.3 s in shows the 1.233 s frame");
    }

    #[test]
    fn speed_skip_step_and_the_end() {
        let mut p = player(&(0..100).map(|i| i * 100).collect::<Vec<_>>());
        let t0 = Instant::now();
        p.update(Msg::Speed(Speed(4.0)), t0);
        p.update(Msg::Tick, t0 + Duration::from_millis(500));
        assert_eq!(p.index, 20, "0.5 s at 4x is 2 s in");
        p.update(Msg::Skip(-10), t0 + Duration::from_millis(500));
        assert_eq!(p.index, 0, "clamped at the start");
        p.update(Msg::Step, t0 + Duration::from_millis(500));
        assert!(!p.playing);
        assert_eq!(p.index, 1);
        p.update(Msg::Skip(6), t0 + Duration::from_millis(600));
        assert_eq!(p.index, 61);
        p.update(Msg::PlayPause, t0 + Duration::from_millis(600));
        p.update(Msg::Tick, t0 + Duration::from_secs(60));
        assert!(!p.playing, "stops at the end");
        assert_eq!(p.index, 99);
        p.update(Msg::Restart, t0 + Duration::from_secs(61));
        assert_eq!(p.index, 0);
        assert!(p.playing);
    }

    #[test]
    fn one_decode_at_a_time_and_only_for_a_new_frame() {
        let mut p = player(&[0, 100, 200]);
        let Some(Command::Frame { request, .. }) = p.wanted_frame(640) else {
            panic!()
        };
        assert!(p.wanted_frame(640).is_none(), "one in flight");
        p.on_frame(request, Handle::from_rgba(1, 1, vec![0u8; 4]));
        assert!(p.wanted_frame(640).is_none(), "frame 0 is shown");
        p.update(Msg::Step, Instant::now());
        assert!(p.wanted_frame(640).is_some());
    }
}
