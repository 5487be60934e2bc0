//! Puts an analysing agent's frames back in order for the recorder, and
//! picks those a camera recording on motion keeps.
//!
//! An agent that follows the scene sends idle frames (1 a second) while
//! nothing moves, and when motion starts sends the frames it left out of
//! the pre-roll: older than idle frames already here. So idle frames wait
//! here for the pre-roll's length before they are written; the pre-roll
//! merges in among them by sequence number, and the recording stays in
//! time order. Frames an agent sends at full rate are written at once.
//!
//! Recording on motion, frames of no event wait here the same way, and are
//! dropped once older than the pre-roll; an event's first frame writes
//! what waits (the pre-roll an agent sending at full rate already sent).
//! Frames without analysis (an older agent) are written as they come; an
//! analysing agent's frames from before its analysis started come as
//! [`NOT_YET_ANALYSED`].

use std::collections::VecDeque;
use std::sync::Arc;

use crate::live::LiveFrame;

/// What the recorder is told of an analysing agent's frame that came
/// without analysis: one captured while the agent connected, before its
/// analysis started. A quiet frame at full rate: recorded when recording
/// everything, kept for an event's pre-roll when recording on motion, and
/// never written as if the agent did not analyse (which would start a
/// recording of its own). Its pre-roll is not known: it makes no frame
/// waiting stale; the next analysed frame's does.
pub const NOT_YET_ANALYSED: cctv_protocol::FrameAnalysis = cctv_protocol::FrameAnalysis {
    motion_score: 0,
    motion: false,
    event: false,
    idle: false,
    tamper: None,
    preroll_ms: u32::MAX,
};

/// What the recorder keeps of a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Every frame.
    All,
    /// Only events (motion, tamper) with their pre-roll and post-roll.
    Events,
}

/// Frames waiting to be written, in sequence order.
#[derive(Debug, Default)]
pub struct Order {
    waiting: VecDeque<Arc<LiveFrame>>,
    /// The last frame written: (seq, capture time).
    written: Option<(u64, i64)>,
    newest_us: i64,
    /// The first frame of the event going on (an agent's first pre-roll
    /// frame, or the first moving frame of one sending at full rate).
    event_from: Option<u64>,
    /// Frames not written on purpose (recording on motion, duplicates).
    passed_over: crate::acks::AckSet,
}

impl Order {
    /// Takes the next frame as it arrived; appends what to write now, in
    /// order, to `out`. Returns false when, recording events only, `f` is
    /// not part of one (the scene is quiet).
    pub fn push(&mut self, f: Arc<LiveFrame>, keep: Keep, out: &mut Vec<Arc<LiveFrame>>) -> bool {
        let Some(a) = f.analysis else {
            // An agent that does not analyse: nothing to wait for.
            self.flush(keep, out);
            self.written = Some((f.seq, f.capture_us));
            out.push(f);
            return true;
        };
        if let Some((seq, at)) = self.written
            && f.seq <= seq
            && f.capture_us <= at
        {
            // Already written, or too late to be (counted by the session).
            self.passed_over.add(f.seq);
            return keep == Keep::All || a.event;
        }
        if self
            .written
            .is_some_and(|(seq, at)| f.seq <= seq && f.capture_us > at)
        {
            // The agent started again: its numbers restart.
            self.flush(keep, out);
            self.written = None;
        }
        let writes_now = match keep {
            Keep::All => !a.idle,
            Keep::Events => a.event,
        };
        self.newest_us = self.newest_us.max(f.capture_us);
        let pos = self.waiting.partition_point(|w| w.seq < f.seq);
        if self.waiting.get(pos).is_some_and(|w| w.seq == f.seq) {
            self.passed_over.add(f.seq);
            return keep == Keep::All || writes_now;
        }
        let seq = f.seq;
        if a.event {
            self.event_from.get_or_insert(seq);
        } else if self.waiting.back().is_none_or(|w| seq > w.seq) {
            self.event_from = None;
        }
        self.waiting.insert(pos, f);
        let too_old = self.newest_us - i64::from(a.preroll_ms) * 1000;
        while let Some(front) = self.waiting.front() {
            let due = writes_now && front.seq <= seq;
            let stale = front.capture_us < too_old;
            if !due && !stale {
                break;
            }
            let front = self.waiting.pop_front().expect("a front frame");
            let idle = front.analysis.is_some_and(|a| a.idle);
            let write = match keep {
                Keep::All => true,
                // An idle frame just before an agent's pre-roll is in it
                // (the agent left it out of the pre-roll as already sent);
                // a full-rate agent's frames are in it by their time.
                Keep::Events if idle => {
                    due && self.event_from.is_some_and(|from| front.seq + 1 >= from)
                }
                Keep::Events => due && !stale,
            };
            if write {
                self.written = Some((front.seq, front.capture_us));
                out.push(front);
            } else {
                self.passed_over.add(front.seq);
            }
        }
        keep == Keep::All || writes_now
    }

    /// Frames left out on purpose since the last call: the agent may
    /// forget them.
    pub fn passed_over(&mut self, acks: &crate::acks::Acks) {
        acks.append(&mut self.passed_over);
    }

    /// The connection ended: what waits is written (or, recording events
    /// only, dropped), and the next connection's numbers start afresh.
    pub fn flush(&mut self, keep: Keep, out: &mut Vec<Arc<LiveFrame>>) {
        for f in self.waiting.drain(..) {
            if keep == Keep::All {
                out.push(f);
            } else {
                self.passed_over.add(f.seq);
            }
        }
        self.written = None;
        self.newest_us = 0;
        self.event_from = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cctv_protocol::FrameAnalysis;

    fn frame(seq: u64, idle: bool, event: bool) -> Arc<LiveFrame> {
        Arc::new(LiveFrame {
            seq,
            capture_us: seq as i64 * 100_000,
            received_us: 0,
            width: 8,
            height: 8,
            jpeg: bytes::Bytes::new(),
            analysis: Some(FrameAnalysis {
                idle,
                event,
                motion: event,
                preroll_ms: 3000,
                ..Default::default()
            }),
            preview: None,
        })
    }

    /// As a scene-following agent sends: idle frames every 10th until 100,
    /// then the pre-roll 70..99 (less those sent), then 100..150 at full
    /// rate, then idle again.
    fn scene_following() -> Vec<Arc<LiveFrame>> {
        let mut sent: Vec<Arc<LiveFrame>> = (0..10).map(|i| frame(i * 10, true, false)).collect();
        sent.extend(
            (70..100)
                .filter(|s| s % 10 != 0)
                .map(|s| frame(s, false, true)),
        );
        sent.extend((100..150).map(|s| frame(s, false, true)));
        sent.extend((15..25).map(|i| frame(i * 10, true, false)));
        sent
    }

    fn run(frames: Vec<Arc<LiveFrame>>, keep: Keep) -> Vec<u64> {
        let mut order = Order::default();
        let mut out = Vec::new();
        for f in frames {
            order.push(f, keep, &mut out);
        }
        order.flush(keep, &mut out);
        out.iter().map(|f| f.seq).collect()
    }

    #[test]
    fn a_preroll_merges_in_among_idle_frames_in_order() {
        let written = run(scene_following(), Keep::All);
        assert!(written.windows(2).all(|w| w[0] < w[1]), "{written:?}");
        // Every frame from 7 s to 15 s, once; idle ones around them.
        for s in 70..150 {
            assert!(written.contains(&s), "frame {s} missing");
        }
        assert_eq!(written.len(), 7 + 80 + 10);
    }

    #[test]
    fn recording_on_motion_keeps_the_preroll_and_the_event_only() {
        let written = run(scene_following(), Keep::Events);
        assert_eq!(written, (70..150).collect::<Vec<_>>());
    }

    #[test]
    fn recording_on_motion_from_a_full_rate_agent_keeps_its_own_preroll() {
        // Every frame sent; motion from 100 to 149.
        let frames = (0..200).map(|s| frame(s, false, (100..150).contains(&s)));
        let written = run(frames.collect(), Keep::Events);
        assert_eq!(written, (70..150).collect::<Vec<_>>());
    }

    #[test]
    fn full_rate_frames_are_written_at_once_and_duplicates_once() {
        let mut order = Order::default();
        let mut out = Vec::new();
        order.push(frame(1, false, false), Keep::All, &mut out);
        assert_eq!(out.len(), 1);
        order.push(frame(1, false, false), Keep::All, &mut out);
        order.push(frame(2, false, false), Keep::All, &mut out);
        assert_eq!(out.iter().map(|f| f.seq).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn frames_from_before_the_agents_analysis_wait_like_quiet_ones() {
        let not_yet = |seq: u64| {
            let mut f = (*frame(seq, false, false)).clone();
            f.analysis = Some(NOT_YET_ANALYSED);
            Arc::new(f)
        };
        // Captured while connecting (0, 1), then quiet analysed frames:
        // recording on motion, nothing is written.
        let quiet: Vec<_> = [not_yet(0), not_yet(1)]
            .into_iter()
            .chain((2..80).map(|s| frame(s, false, false)))
            .collect();
        assert_eq!(run(quiet.clone(), Keep::Events), Vec::<u64>::new());
        // Recording everything, they are written at once, in order.
        assert_eq!(run(quiet, Keep::All), (0..80).collect::<Vec<_>>());
        // Motion 2 s in: they are in its 3 s pre-roll.
        let early: Vec<_> = [not_yet(0), not_yet(1)]
            .into_iter()
            .chain((2..40).map(|s| frame(s, false, (20..30).contains(&s))))
            .collect();
        assert_eq!(run(early, Keep::Events), (0..30).collect::<Vec<_>>());
    }

    #[test]
    fn frames_without_analysis_pass_as_they_come() {
        let mut order = Order::default();
        let mut out = Vec::new();
        for seq in [5, 3, 9] {
            let mut f = (*frame(seq, true, false)).clone();
            f.analysis = None;
            order.push(Arc::new(f), Keep::Events, &mut out);
        }
        assert_eq!(out.iter().map(|f| f.seq).collect::<Vec<_>>(), [5, 3, 9]);
    }
}
