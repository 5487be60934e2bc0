//! A camera's strip over a stretch of time: its recordings, the gaps
//! between them coloured by why (offline, disk full, a recording error,
//! recording off), and motion and tamper on top. Shared by the history
//! and playback; the gaps and their reasons are worked out here too.

use iced::widget::{container, row, text};
use iced::{Color, Element, Length};

use super::style;
use cctv_engine::catalog::{EventKind, EventRow, RecordingRow, RecordingStatus};
use cctv_engine::time;

/// Why nothing was recorded for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    Offline,
    DiskFull,
    /// The agent's spool was full: frames dropped before they reached the panel.
    SpoolFull,
    Error(String),
    /// Recording was off (stopped, or the camera records on motion only).
    NotRecording(String),
    /// Nothing says (the panel itself was not running, say).
    Unknown,
}

impl Why {
    pub fn words(&self) -> String {
        match self {
            Why::Offline => "camera offline".into(),
            Why::DiskFull => "disk full".into(),
            Why::SpoolFull => "the agent's spool was full".into(),
            Why::Error(d) => format!("recording error: {d}"),
            Why::NotRecording(d) if d.is_empty() => "not recording".into(),
            Why::NotRecording(d) => format!("not recording: {d}"),
            Why::Unknown => "nothing recorded".into(),
        }
    }

    pub fn color(&self) -> Color {
        match self {
            Why::Offline => Color::from_rgb(0.45, 0.10, 0.10),
            Why::DiskFull | Why::Error(_) => Color::from_rgb(0.55, 0.33, 0.0),
            Why::SpoolFull => Color::from_rgb(0.42, 0.16, 0.50),
            Why::NotRecording(_) => Color::from_rgb(0.22, 0.22, 0.26),
            Why::Unknown => Color::from_rgb(0.10, 0.10, 0.12),
        }
    }
}

/// A stretch without a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub from_us: i64,
    pub to_us: i64,
    pub why: Why,
}

/// Shorter breaks between recordings are not gaps (a rotation).
const MIN_GAP_US: i64 = 2_000_000;

/// The end of a recording as far as it has got (one being written runs
/// up to now).
pub fn end_of(r: &RecordingRow) -> i64 {
    match r.status {
        RecordingStatus::Recording => r.end_us.max(time::now_us()),
        _ => r.end_us,
    }
}

/// The gaps of one camera over `[t0, t1]`, each with the reason its events
/// give. `recordings` and `events` oldest first.
pub fn gaps(recordings: &[RecordingRow], events: &[EventRow], t0: i64, t1: i64) -> Vec<Gap> {
    let mut out = Vec::new();
    let mut at = t0;
    for r in recordings {
        if r.start_us - at >= MIN_GAP_US {
            out.push(gap(events, at, r.start_us.min(t1)));
        }
        at = at.max(end_of(r));
    }
    let end = t1.min(time::now_us());
    if end - at >= MIN_GAP_US {
        out.push(gap(events, at, end));
    }
    out
}

/// The gap `[from, to]` and why: the strongest reason among the events in
/// it (or just before it), else the camera's state as it began.
fn gap(events: &[EventRow], from: i64, to: i64) -> Gap {
    // An event in the gap or just before it, or one lasting into it (the
    // stretch an agent's spool dropped).
    let near = |e: &&EventRow| {
        (e.at_us >= from - MIN_GAP_US || e.end_us.is_some_and(|end| end >= from)) && e.at_us < to
    };
    let rank = |k: EventKind| match k {
        EventKind::SpoolOverflow => 0,
        EventKind::DiskFull => 0,
        EventKind::RecordingError => 1,
        EventKind::Offline => 2,
        EventKind::RecordingStopped => 3,
        _ => 9,
    };
    let strongest = events
        .iter()
        .filter(near)
        .filter(|e| rank(e.kind) < 9)
        .min_by_key(|e| rank(e.kind));
    let before = || events.iter().rev().find(|e| e.at_us < from);
    let why = match strongest
        .or_else(before)
        .map(|e| (e.kind, e.detail.clone()))
    {
        Some((EventKind::DiskFull, _)) => Why::DiskFull,
        Some((EventKind::SpoolOverflow, _)) => Why::SpoolFull,
        Some((EventKind::RecordingError, d)) => Why::Error(d),
        Some((EventKind::Offline, _)) => Why::Offline,
        Some((EventKind::RecordingStopped, d)) => Why::NotRecording(d),
        Some((EventKind::Live | EventKind::RecordingStarted, _)) => {
            Why::NotRecording(String::new())
        }
        _ => Why::Unknown,
    };
    Gap {
        from_us: from,
        to_us: to,
        why,
    }
}

/// The times at both ends of strips over `[t0, t1]`, after a label column
/// `label` wide.
pub fn ends<'a, M: 'a>(t0: i64, t1: i64, label: f32) -> Element<'a, M> {
    row![
        text("").width(label),
        text(time::local(t0)).size(12).color(style::MUTED),
        iced::widget::space::horizontal(),
        text(time::local(t1)).size(12).color(style::MUTED),
    ]
    .spacing(8)
    .into()
}

/// Slices of a strip.
const SLICES: usize = 240;

/// What a slice shows, the strongest first.
#[derive(Debug, Clone, PartialEq)]
enum Mark {
    Tamper,
    Motion,
    Recorded,
    /// Recorded from the agent's spool after an outage.
    Backfilled,
    Gap(Color),
    Nothing,
}

impl Mark {
    fn strength(&self) -> u8 {
        match self {
            Mark::Tamper => 0,
            Mark::Motion => 1,
            Mark::Recorded | Mark::Backfilled => 2,
            Mark::Gap(_) => 3,
            Mark::Nothing => 4,
        }
    }

    fn color(&self) -> Color {
        match self {
            Mark::Tamper => style::ALARM,
            Mark::Motion => style::MOTION,
            Mark::Recorded => Color::from_rgb(0.35, 0.38, 0.45),
            Mark::Backfilled => Color::from_rgb(0.24, 0.36, 0.55),
            Mark::Gap(c) => *c,
            Mark::Nothing => Color::from_rgb(0.12, 0.12, 0.14),
        }
    }
}

/// The strip over `[t0, t1]`, `height` pixels high.
pub fn strip<'a, M: 'a>(
    recordings: &[RecordingRow],
    spans: &[EventRow],
    gaps: &[Gap],
    (t0, t1): (i64, i64),
    height: f32,
) -> Element<'a, M> {
    let span = (t1 - t0).max(1) as f64;
    let mut marks = vec![Mark::Nothing; SLICES];
    let mut paint = |from: i64, to: i64, mark: Mark| {
        let slice = |t: i64| ((t - t0) as f64 / span) * SLICES as f64;
        if to < t0 || from > t1 {
            return;
        }
        let a = (slice(from).floor().max(0.0) as usize).min(SLICES - 1);
        let b = (slice(to).ceil().max(0.0) as usize).clamp(a + 1, SLICES);
        for m in &mut marks[a..b] {
            if mark.strength() < m.strength() {
                *m = mark.clone();
            }
        }
    };
    for g in gaps {
        paint(g.from_us, g.to_us, Mark::Gap(g.why.color()));
    }
    for r in recordings {
        let mark = if r.backfilled {
            Mark::Backfilled
        } else {
            Mark::Recorded
        };
        paint(r.start_us, end_of(r), mark);
    }
    for e in spans {
        let end = e.end_us.unwrap_or_else(time::now_us);
        let mark = match e.kind {
            EventKind::Motion => Mark::Motion,
            _ => Mark::Tamper,
        };
        paint(e.at_us, end, mark);
    }
    let mut bar = row![].height(height);
    let mut i = 0;
    while i < SLICES {
        let run = marks[i..].iter().take_while(|m| **m == marks[i]).count();
        bar = bar.push(
            container(text(""))
                .width(Length::FillPortion(run as u16))
                .height(height)
                .style(style::badge(marks[i].color())),
        );
        i += run;
    }
    bar.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(start: i64, end: i64) -> RecordingRow {
        RecordingRow {
            server_id: String::new(),
            id: start,
            camera_id: "c".into(),
            path: String::new(),
            start_us: start,
            end_us: end,
            frames: 1,
            bytes: 0,
            width: 1,
            height: 1,
            status: RecordingStatus::Complete,
            detail: String::new(),
            backfilled: false,
        }
    }

    fn ev(kind: EventKind, at: i64, detail: &str) -> EventRow {
        EventRow {
            server_id: String::new(),
            id: at,
            camera_id: "c".into(),
            kind,
            at_us: at,
            detail: detail.into(),
            end_us: None,
            peak_score: None,
        }
    }

    const S: i64 = 1_000_000;

    #[test]
    fn a_gap_the_agents_spool_dropped_says_so_over_the_offline_before_it() {
        let recs = [rec(0, 10 * S), rec(40 * S, 50 * S)];
        let mut dropped = ev(EventKind::SpoolOverflow, 6 * S, "spool was full");
        dropped.end_us = Some(30 * S);
        let events = [
            dropped,
            ev(EventKind::Offline, 12 * S, "heartbeat timeout"),
            ev(EventKind::Live, 39 * S, ""),
        ];
        let g = gaps(&recs, &events, 0, 50 * S);
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!(g[0].why, Why::SpoolFull);
        assert_eq!(g[0].why.words(), "the agent's spool was full");
    }

    #[test]
    fn gaps_get_the_reason_their_events_give() {
        let recs = [
            rec(0, 10 * S),
            rec(20 * S, 30 * S),
            rec(40 * S, 50 * S),
            rec(50 * S + 500_000, 60 * S),
        ];
        let events = [
            ev(EventKind::Offline, 10 * S, "lost"),
            ev(EventKind::Live, 19 * S, ""),
            ev(EventKind::DiskFull, 31 * S, ""),
        ];
        let g = gaps(&recs, &events, 0, 70 * S);
        let whys: Vec<_> = g
            .iter()
            .map(|g| (g.from_us / S, g.to_us / S, g.why.clone()))
            .collect();
        assert_eq!(
            whys,
            [
                (10, 20, Why::Offline),
                (30, 40, Why::DiskFull),
                (60, 70, Why::DiskFull),
            ],
            "a rotation (0.5 s) is no gap; the last gap has no new event"
        );
    }

    #[test]
    fn a_stopped_recording_is_a_gap_that_says_so() {
        let recs = [rec(0, 10 * S), rec(30 * S, 40 * S)];
        let events = [ev(EventKind::RecordingStopped, 10 * S, "recording stopped")];
        let g = gaps(&recs, &events, 0, 40 * S);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].why.words(), "not recording: recording stopped");
    }
}
