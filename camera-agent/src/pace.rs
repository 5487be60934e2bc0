//! Bandwidth that follows the scene: which analysed frames go to the panel.
//!
//! While nothing happens the agent sends at an idle rate (1 fps by
//! default) and keeps the frames it leaves out of the last pre-roll (3 s)
//! in memory. The moment an event starts (motion, or tamper) it sends those
//! first, oldest first, then every frame at its full rate until the
//! post-roll (5 s) after the last motion. So the panel records what led up
//! to the event at full rate, though it saw only the idle frames before.
//! "Always full rate" sends every frame and keeps nothing back.

use std::collections::VecDeque;
use std::time::Duration;

use cctv_protocol::Frame;

/// Capture times wobble by a few milliseconds around the source's pace.
const JITTER_US: u64 = 20_000;

/// How frames are paced; from the agent's config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceSettings {
    /// Send every frame, moving or not.
    pub full_rate: bool,
    /// Frames per second while nothing happens (greater than 0).
    pub idle_fps: f64,
    /// How long before an event its frames are sent.
    pub preroll: Duration,
    /// How long after the last motion the full rate goes on.
    pub postroll: Duration,
}

impl Default for PaceSettings {
    fn default() -> Self {
        Self {
            full_rate: false,
            idle_fps: 1.0,
            preroll: Duration::from_secs(3),
            postroll: Duration::from_secs(5),
        }
    }
}

/// Decides, frame by frame, what to send; keeps the pre-roll.
#[derive(Debug, Default)]
pub struct Pacer {
    settings: PaceSettings,
    /// Frames left out while idle, of the last pre-roll, oldest first.
    held: VecDeque<Frame>,
    last_sent_us: Option<u64>,
    last_motion_us: Option<u64>,
    /// The last frame sent was an event's.
    in_event: bool,
    /// The tamper state of the last frame sent.
    last_tamper: Option<cctv_protocol::Tamper>,
}

impl Pacer {
    pub fn new(settings: PaceSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// New settings from the panel; what is held stays.
    pub fn set_settings(&mut self, settings: PaceSettings) {
        self.settings = settings;
    }

    /// Frames kept for a pre-roll.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Takes the next captured frame, whose `analysis` holds the motion
    /// score, motion and tamper; fills in its event and idle flags and
    /// appends what is to be sent now, in order, to `out`.
    pub fn push(&mut self, mut frame: Frame, out: &mut Vec<Frame>) {
        let t = frame.capture_us;
        let mut a = frame.analysis.unwrap_or_default();
        a.preroll_ms = self.settings.preroll.as_millis().min(u128::from(u32::MAX)) as u32;
        if a.motion {
            self.last_motion_us = Some(t);
        }
        let postroll = self.settings.postroll.as_micros() as u64;
        a.event = a.tamper.is_some()
            || self
                .last_motion_us
                .is_some_and(|m| t <= m.saturating_add(postroll));
        // A frame exactly a pre-roll old stays, whatever the capture jitter.
        let keep_from = t.saturating_sub(self.settings.preroll.as_micros() as u64 + JITTER_US);
        while self.held.front().is_some_and(|f| f.capture_us < keep_from) {
            self.held.pop_front();
        }
        let changed = a.tamper != self.last_tamper;
        if a.event && !self.in_event {
            // The pre-roll first: frames of the last pre-roll left out.
            out.extend(self.held.drain(..).map(|mut f| {
                if let Some(h) = &mut f.analysis {
                    h.event = true;
                    h.idle = false;
                }
                f
            }));
        }
        self.in_event = a.event;
        let send = if a.event || self.settings.full_rate {
            true
        } else {
            let period = (1e6 / self.settings.idle_fps.max(0.001)) as u64;
            // On a grid of periods from the last frame sent; a little early
            // is on time, since frames come at the source's own pace.
            let due = self
                .last_sent_us
                .is_none_or(|s| t.saturating_add(period / 20) >= s.saturating_add(period));
            a.idle = due || changed;
            due || changed
        };
        frame.analysis = Some(a);
        if send {
            self.last_sent_us = Some(t);
            self.last_tamper = a.tamper;
            out.push(frame);
        } else {
            // Held back, it may go out as pre-roll, which no wall shows.
            frame.preview = None;
            self.held.push_back(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use cctv_protocol::FrameAnalysis;

    /// A frame every 100 ms; `moving` says which seconds move.
    fn run(settings: PaceSettings, secs: f64, moving: impl Fn(f64) -> bool) -> Vec<Frame> {
        let mut p = Pacer::new(settings);
        let mut out = Vec::new();
        for i in 0..(secs * 10.0) as u64 {
            let t = i as f64 / 10.0;
            let f = Frame {
                seq: i,
                capture_us: i * 100_000,
                jpeg: Bytes::new(),
                analysis: Some(FrameAnalysis {
                    motion: moving(t),
                    ..Default::default()
                }),
                preview: None,
            };
            p.push(f, &mut out);
        }
        out
    }

    #[test]
    fn idle_sends_one_frame_a_second_and_keeps_nothing_older_than_the_preroll() {
        let out = run(PaceSettings::default(), 20.0, |_| false);
        assert_eq!(out.len(), 20);
        assert!(out.iter().all(|f| f.analysis.unwrap().idle));
        assert!(out.windows(2).all(|w| w[1].seq - w[0].seq == 10));
    }

    #[test]
    fn motion_sends_the_preroll_then_full_rate_through_the_postroll() {
        // Motion from 10.0 s to 12.0 s (exclusive).
        let out = run(PaceSettings::default(), 30.0, |t| (10.0..12.0).contains(&t));
        let seqs: Vec<u64> = out.iter().map(|f| f.seq).collect();
        // Every frame from 7.0 s (pre-roll) to 16.9 s (post-roll) is sent,
        // exactly once; the idle frames before 7 s and after 17 s only.
        for s in 70..=169 {
            assert_eq!(seqs.iter().filter(|x| **x == s).count(), 1, "frame {s}");
        }
        assert!(seqs.iter().filter(|s| **s < 70).all(|s| s % 10 == 0));
        assert!(seqs.iter().filter(|s| **s > 170).count() <= 14);
        // Pre-roll frames come before the frame that started the event,
        // with the idle frames already sent among them left out.
        let start = seqs.iter().position(|s| *s == 100).unwrap();
        let pre: Vec<u64> = seqs[start - 27..start].to_vec();
        assert_eq!(pre.first(), Some(&71));
        assert!(pre.windows(2).all(|w| w[0] < w[1]));
        assert!(!pre.contains(&80) && !pre.contains(&90));
        for f in &out {
            let a = f.analysis.unwrap();
            // The idle frames at 7, 8 and 9 s went out before the event.
            let sent_idle = f.seq < 100 && f.seq % 10 == 0;
            let in_event = (70..=169).contains(&f.seq) && !sent_idle;
            assert_eq!(a.event, in_event, "frame {}", f.seq);
            assert_eq!(a.idle, !in_event, "frame {}", f.seq);
            assert_eq!(a.preroll_ms, 3000);
        }
    }

    #[test]
    fn full_rate_sends_everything_and_holds_nothing() {
        let settings = PaceSettings {
            full_rate: true,
            ..Default::default()
        };
        let out = run(settings, 5.0, |t| t > 3.0);
        assert_eq!(out.len(), 50);
        assert!(out.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        assert!(out.iter().all(|f| !f.analysis.unwrap().idle));
    }

    #[test]
    fn tamper_is_an_event_and_its_end_is_sent_at_once() {
        let mut p = Pacer::new(PaceSettings::default());
        let mut out = Vec::new();
        for i in 0..60u64 {
            let tamper = (20..40)
                .contains(&i)
                .then_some(cctv_protocol::Tamper::Covered);
            let f = Frame {
                seq: i,
                capture_us: i * 100_000,
                jpeg: Bytes::new(),
                analysis: Some(FrameAnalysis {
                    tamper,
                    ..Default::default()
                }),
                preview: None,
            };
            p.push(f, &mut out);
        }
        let seqs: Vec<u64> = out.iter().map(|f| f.seq).collect();
        // Covered from frame 20: sent at full rate, after the pre-roll.
        assert!((20..40).all(|s| seqs.contains(&s)));
        // The first clear frame goes at once, not at the next idle second.
        assert!(seqs.contains(&40));
        assert!(!out.iter().any(|f| f.seq > 40 && f.seq < 50));
    }
}
