//! Playback by time, not by file: one to four cameras on one clock, over
//! their recordings, across segment boundaries and gaps. The clock is a
//! capture time: wall-clock time since "play" times the speed moves it, and
//! each camera shows its last frame captured at or before it, so cameras
//! play in sync at their true pace. A camera's next recording is read
//! ahead of its boundary; when no camera has footage the clock skips to
//! the next that does. The view (`playback/view.rs`) draws a strip per
//! camera over a zoomable stretch of the day, with gaps and their reasons,
//! events, and in/out marks for a clip.

mod view;

use std::sync::Arc;
use std::time::{Duration, Instant};

use iced::widget::image::Handle;

pub use self::view::view;
use super::backend::{Command, Reply};
use super::strip::{self, Gap};
use cctv_engine::RecordingIndex as Scan;
use cctv_engine::catalog::{EventRow, RecordingRow, RecordingStatus};

pub const SPEEDS: [Speed; 5] = [Speed(0.5), Speed(1.0), Speed(2.0), Speed(4.0), Speed(8.0)];

/// How much of the day the strips show: seconds, and the label.
pub const ZOOMS: [(i64, &str); 5] = [
    (86_400, "24 h"),
    (6 * 3600, "6 h"),
    (3600, "1 h"),
    (600, "10 min"),
    (60, "1 min"),
];

/// Cameras played side by side at most.
pub const MAX_CAMERAS: usize = 4;

/// How far either side of the clock a camera's footage is read.
const LOAD_US: i64 = 12 * 3600 * 1_000_000;

/// A camera's next recording is read this long before its current one ends
/// (gaps are skipped, so the next is needed then).
const READ_AHEAD_US: i64 = 5_000_000;

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
    /// Go to this capture time (µs since the epoch).
    Seek(f64),
    Skip(i64),
    /// One frame forward (true) or back, on the first camera's frames.
    Step(bool),
    Speed(Speed),
    /// To the next (true) or previous motion or tamper event or gap.
    Jump(bool),
    Zoom(usize),
    /// Add (true) or take away a camera.
    Camera(String, bool),
    MarkIn,
    MarkOut,
    ClearMarks,
    /// A clip of the marked range, of every camera shown.
    ExportMarks,
}

/// The one clock every camera follows.
#[derive(Debug, Clone)]
pub struct Clock {
    anchor_us: i64,
    anchor_wall: Instant,
    pub playing: bool,
    pub speed: f64,
}

impl Clock {
    /// The capture time shown at `now`.
    pub fn at(&self, now: Instant) -> i64 {
        if !self.playing {
            return self.anchor_us;
        }
        let played = now
            .saturating_duration_since(self.anchor_wall)
            .as_secs_f64()
            * self.speed;
        self.anchor_us + (played * 1e6) as i64
    }

    fn seek(&mut self, t: i64, now: Instant) {
        self.anchor_us = t;
        self.anchor_wall = now;
    }
}

/// A recording read for playback: its row and frame index.
struct Opened {
    row: RecordingRow,
    scan: Arc<Scan>,
    read_at: Instant,
}

impl Opened {
    /// The last frame captured at or before `t`.
    fn frame_at(&self, t: i64) -> Option<usize> {
        let n = self
            .scan
            .frames
            .partition_point(|f| self.scan.capture_us(f) <= t);
        n.checked_sub(1)
    }

    fn capture(&self, i: usize) -> Option<i64> {
        self.scan.frames.get(i).map(|f| self.scan.capture_us(f))
    }
}

impl Playback {
    /// The first camera's recorded sound from `from_us` to `to_us`, in the
    /// recording open now: the recording, and its packets with their
    /// capture times. `None` without one, or one without sound.
    pub fn sound_between(
        &self,
        from_us: i64,
        to_us: i64,
    ) -> Option<(RecordingRow, Vec<(i64, cctv_engine::FrameRef)>)> {
        let open = self.tracks.first()?.open.as_ref()?;
        let scan = &open.scan;
        if !scan.has_audio {
            return None;
        }
        let packets = scan
            .audio
            .iter()
            .map(|p| (scan.capture_us(p), *p))
            .filter(|(t, _)| (from_us..to_us).contains(t))
            .collect();
        Some((open.row.clone(), packets))
    }
}

/// One camera's footage and what of it is shown.
pub struct Track {
    pub camera: String,
    /// Recordings, events that explain gaps, and spans over the range read.
    pub recordings: Vec<RecordingRow>,
    pub events: Vec<EventRow>,
    pub spans: Vec<EventRow>,
    /// The range read, and the one asked for.
    loaded: Option<(i64, i64)>,
    asked: Option<(i64, i64)>,
    open: Option<Opened>,
    ahead: Option<Opened>,
    /// Recordings asked for (by id).
    opening: Vec<i64>,
    requested: Option<(u64, i64, usize)>,
    /// (recording id, frame index, capture time) of the picture shown.
    pub shown: Option<(i64, usize, i64)>,
    pub image: Option<Handle>,
}

impl Track {
    fn new(camera: String) -> Self {
        Self {
            camera,
            recordings: Vec::new(),
            events: Vec::new(),
            spans: Vec::new(),
            loaded: None,
            asked: None,
            open: None,
            ahead: None,
            opening: Vec::new(),
            requested: None,
            shown: None,
            image: None,
        }
    }

    /// The recording that covers `t`.
    pub fn recording_at(&self, t: i64) -> Option<&RecordingRow> {
        let after = self.recordings.partition_point(|r| r.start_us <= t);
        let r = self.recordings.get(after.checked_sub(1)?)?;
        // Its last frame shows for one frame's time.
        let frame_us = ((r.end_us - r.start_us) / (r.frames - 1).max(1)).clamp(0, 1_000_000);
        (t <= strip::end_of(r) + frame_us).then_some(r)
    }

    /// The first recording that starts after `t`.
    fn recording_after(&self, t: i64) -> Option<&RecordingRow> {
        self.recordings.iter().find(|r| r.start_us > t)
    }

    /// The gaps over the range read.
    pub fn gaps(&self) -> Vec<Gap> {
        match self.loaded {
            Some((a, b)) => strip::gaps(&self.recordings, &self.events, a, b),
            None => Vec::new(),
        }
    }

    /// Why nothing shows at `t`, when nothing does.
    pub fn gap_at(&self, t: i64) -> Option<Gap> {
        if self.loaded.is_none() || self.recording_at(t).is_some() {
            return None;
        }
        let gaps = self.gaps();
        Some(
            gaps.into_iter()
                .find(|g| g.from_us <= t && t <= g.to_us)
                .unwrap_or(Gap {
                    from_us: t,
                    to_us: t,
                    why: strip::Why::Unknown,
                }),
        )
    }

    /// Where this camera's events and gaps begin, for the jumps. The
    /// stretch before its first recording read is not a gap to jump to.
    fn marks(&self) -> impl Iterator<Item = i64> + '_ {
        let read_from = self.loaded.map_or(i64::MIN, |(a, _)| a);
        self.spans.iter().map(|e| e.at_us).chain(
            self.gaps()
                .into_iter()
                .map(|g| g.from_us)
                .filter(move |t| *t > read_from),
        )
    }
}

pub struct Playback {
    pub tracks: Vec<Track>,
    pub clock: Clock,
    /// Index into [`ZOOMS`].
    pub zoom: usize,
    /// In and out of a clip, capture times.
    pub marks: (Option<i64>, Option<i64>),
    next_request: u64,
}

impl Playback {
    /// Plays `camera` from `at_us`.
    pub fn new(camera: String, at_us: i64, now: Instant) -> Self {
        Self {
            tracks: vec![Track::new(camera)],
            clock: Clock {
                anchor_us: at_us,
                anchor_wall: now,
                playing: true,
                speed: 1.0,
            },
            zoom: 2,
            marks: (None, None),
            next_request: 1,
        }
    }

    pub fn at(&self, now: Instant) -> i64 {
        self.clock.at(now)
    }

    pub fn cameras(&self) -> Vec<String> {
        self.tracks.iter().map(|t| t.camera.clone()).collect()
    }

    /// The stretch the strips show, centred on the clock.
    pub fn view_range(&self, now: Instant) -> (i64, i64) {
        let span = ZOOMS[self.zoom.min(ZOOMS.len() - 1)].0 * 1_000_000;
        let from = self.at(now) - span / 2;
        (from, from + span)
    }

    /// Reads every camera's footage again (new recordings, events).
    pub fn reload(&mut self) {
        for t in &mut self.tracks {
            t.asked = None;
        }
    }

    fn seek(&mut self, t: i64, now: Instant) {
        self.clock.seek(t, now);
    }

    /// One message; the commands it needs besides the frames (see
    /// [`Playback::wanted`]).
    pub fn update(&mut self, m: Msg, now: Instant) -> Vec<Command> {
        let t = self.at(now);
        match m {
            Msg::Tick => self.tick(now),
            Msg::PlayPause => {
                self.clock.playing = !self.clock.playing;
                self.seek(t, now);
            }
            Msg::Seek(us) => self.seek(us as i64, now),
            Msg::Skip(secs) => self.seek(t + secs * 1_000_000, now),
            Msg::Step(forward) => {
                self.clock.playing = false;
                if let Some(to) = self.step_to(t, forward) {
                    self.seek(to, now);
                }
            }
            Msg::Speed(s) => {
                self.seek(t, now);
                self.clock.speed = s.0;
            }
            Msg::Jump(forward) => {
                if let Some(to) = self.jump_to(t, forward) {
                    // A second before it, to see it begin.
                    self.seek(to - 1_000_000, now);
                }
            }
            Msg::Zoom(z) => self.zoom = z.min(ZOOMS.len() - 1),
            Msg::Camera(c, true) => {
                if self.tracks.len() < MAX_CAMERAS && !self.tracks.iter().any(|t| t.camera == c) {
                    self.tracks.push(Track::new(c));
                }
            }
            Msg::Camera(c, false) => {
                if self.tracks.len() > 1 {
                    self.tracks.retain(|t| t.camera != c);
                }
            }
            Msg::MarkIn => self.marks.0 = Some(t),
            Msg::MarkOut => self.marks.1 = Some(t),
            Msg::ClearMarks => self.marks = (None, None),
            Msg::ExportMarks => {
                if let (Some(a), Some(b)) = self.marks
                    && a < b
                {
                    return vec![Command::ExportRange(
                        self.cameras(),
                        a,
                        b,
                        Default::default(),
                    )];
                }
            }
        }
        Vec::new()
    }

    /// The clock moved: when no camera has footage now, on to the next
    /// footage of any; past the last, stop.
    fn tick(&mut self, now: Instant) {
        if !self.clock.playing || self.tracks.iter().any(|t| t.loaded.is_none()) {
            return;
        }
        let t = self.at(now);
        if self.tracks.iter().any(|k| k.recording_at(t).is_some()) {
            return;
        }
        let next = self
            .tracks
            .iter()
            .filter_map(|k| k.recording_after(t).map(|r| r.start_us))
            .min();
        match next {
            Some(start) => self.seek(start, now),
            None => {
                // Nothing after: the end of the footage.
                self.clock.playing = false;
                let end = self
                    .tracks
                    .iter()
                    .filter_map(|k| k.recordings.last().map(strip::end_of))
                    .max()
                    .unwrap_or(t);
                self.seek(end.min(t), now);
            }
        }
    }

    /// The next (or previous) frame of the first camera from `t`.
    fn step_to(&self, t: i64, forward: bool) -> Option<i64> {
        let lead = self.tracks.first()?;
        let open = lead
            .open
            .as_ref()
            .filter(|o| lead.recording_at(t).is_some_and(|r| r.id == o.row.id));
        let here = open.and_then(|o| o.frame_at(t));
        match (forward, open, here) {
            (true, Some(o), Some(i)) if i + 1 < o.scan.frames.len() => o.capture(i + 1),
            (true, Some(o), None) => o.capture(0),
            (false, Some(o), Some(i)) if i > 0 => o.capture(i - 1),
            (true, ..) => lead.recording_after(t).map(|r| r.start_us),
            (false, ..) => lead
                .recordings
                .iter()
                .rev()
                .find(|r| r.start_us < t && open.is_none_or(|o| o.row.id != r.id))
                .map(|r| r.end_us),
        }
    }

    /// The next (or previous) event or gap start of any camera.
    fn jump_to(&self, t: i64, forward: bool) -> Option<i64> {
        let marks = self.tracks.iter().flat_map(Track::marks);
        if forward {
            marks.filter(|m| *m > t + 1_500_000).min()
        } else {
            marks.filter(|m| *m < t - 500_000).max()
        }
    }

    /// What the cameras need now: footage to read, recordings to open
    /// (the next one ahead of its start), and the frame to show, each asked
    /// for once. `width`: how wide a picture is shown.
    pub fn wanted(&mut self, now: Instant, width: u32) -> Vec<Command> {
        let t = self.at(now);
        let mut out = Vec::new();
        for k in &mut self.tracks {
            // Read again when asked to, or when the clock nears an end.
            let stale = k
                .asked
                .is_none_or(|(a, b)| t < a + LOAD_US / 4 || t > b - LOAD_US / 4);
            if stale {
                let range = (t - LOAD_US, t + LOAD_US);
                k.asked = Some(range);
                out.push(Command::Timeline(k.camera.clone(), range.0, range.1));
            }
            let Some(rec) = k.recording_at(t).cloned() else {
                continue;
            };
            // The recording to show: read, read ahead, or to ask for.
            if k.open.as_ref().is_none_or(|o| o.row.id != rec.id) {
                if k.ahead.as_ref().is_some_and(|o| o.row.id == rec.id) {
                    k.open = k.ahead.take();
                } else if !k.opening.contains(&rec.id) {
                    k.opening.push(rec.id);
                    out.push(Command::Open(rec.clone()));
                }
            }
            // One being written is read again as it grows.
            if let Some(o) = &k.open
                && o.row.id == rec.id
                && rec.status == RecordingStatus::Recording
                && o.scan
                    .frames
                    .last()
                    .is_none_or(|f| o.scan.capture_us(f) < t)
                && o.read_at.elapsed() > Duration::from_secs(2)
                && !k.opening.contains(&rec.id)
            {
                k.opening.push(rec.id);
                out.push(Command::Open(rec.clone()));
            }
            if let Some(next) = k.recording_after(rec.start_us).cloned()
                && strip::end_of(&rec) - t < READ_AHEAD_US
                && k.ahead.as_ref().is_none_or(|o| o.row.id != next.id)
                && !k.opening.contains(&next.id)
            {
                k.opening.push(next.id);
                out.push(Command::Open(next));
            }
            let Some(o) = k.open.as_ref().filter(|o| o.row.id == rec.id) else {
                continue;
            };
            let Some(i) = o.frame_at(t) else {
                continue;
            };
            let shown = k.shown.is_some_and(|(r, j, _)| r == rec.id && j == i);
            if shown || k.requested.is_some() {
                continue;
            }
            let Some(frame) = o.scan.frames.get(i).copied() else {
                continue;
            };
            let request = self.next_request;
            self.next_request += 1;
            k.requested = Some((request, rec.id, i));
            out.push(Command::Frame {
                request,
                recording: rec,
                frame,
                width,
            });
        }
        out
    }

    /// A camera's footage arrived.
    pub fn on_timeline(&mut self, camera: &str, from: i64, to: i64, h: cctv_engine::History) {
        if let Some(k) = self
            .tracks
            .iter_mut()
            .find(|k| k.camera == camera && k.asked == Some((from, to)))
        {
            k.recordings = h.recordings;
            k.events = h.events;
            k.spans = h.spans;
            k.loaded = Some((from, to));
        }
    }

    /// A recording was read; given back when no camera asked for it.
    pub fn on_opened(
        &mut self,
        row: RecordingRow,
        scan: Arc<Scan>,
        now: Instant,
    ) -> Option<(RecordingRow, Arc<Scan>)> {
        let t = self.at(now);
        let Some(k) = self.tracks.iter_mut().find(|k| k.opening.contains(&row.id)) else {
            return Some((row, scan));
        };
        k.opening.retain(|id| *id != row.id);
        let opened = Opened {
            row,
            scan,
            read_at: Instant::now(),
        };
        let now_showing = k.recording_at(t).is_some_and(|r| r.id == opened.row.id);
        if now_showing {
            k.open = Some(opened);
        } else {
            k.ahead = Some(opened);
        }
        None
    }

    /// A picture arrived; given back when it was not asked for here.
    pub fn on_frame(&mut self, request: u64, image: Handle) -> Option<Handle> {
        for k in &mut self.tracks {
            if let Some((r, rec, i)) = k.requested
                && r == request
            {
                k.requested = None;
                let capture = k
                    .open
                    .as_ref()
                    .filter(|o| o.row.id == rec)
                    .and_then(|o| o.capture(i))
                    .unwrap_or_default();
                k.shown = Some((rec, i, capture));
                k.image = Some(image);
                return None;
            }
        }
        Some(image)
    }

    /// A read failed (a recording that is gone): stop waiting for it.
    pub fn on_error(&mut self) {
        for k in &mut self.tracks {
            k.requested = None;
        }
    }

    /// Takes the replies meant for playback; gives back the others.
    pub fn take(&mut self, reply: Reply, now: Instant) -> Option<Reply> {
        match reply {
            Reply::Timeline(camera, from, to, h) => {
                self.on_timeline(&camera, from, to, h);
                None
            }
            Reply::Opened(row, scan) => self
                .on_opened(row, scan, now)
                .map(|(row, scan)| Reply::Opened(row, scan)),
            Reply::Frame(request, image) => self
                .on_frame(request, image)
                .map(|image| Reply::Frame(request, image)),
            other => Some(other),
        }
    }
}

#[cfg(test)]
mod tests;
