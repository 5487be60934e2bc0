//! What the panel tells an agent it may forget (`Ack`), and what it has
//! already recorded of a camera, by the agent's sequence numbers.
//!
//! A recorder adds a frame's number to the camera's [`Acks`] once the frame
//! is synced to disk, or at once when it is deliberately not kept;
//! whichever connection of the camera is current sends them to the agent
//! (a frame synced after its connection broke is acknowledged on the next).
//! [`Recorded`] lets a backfilled frame that was recorded live already (its
//! acknowledgement lost with the connection) be skipped.

use std::sync::{Arc, Mutex};

/// Sequence numbers as ranges, both ends included, in the order added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckSet {
    ranges: Vec<(u64, u64)>,
}

impl AckSet {
    pub fn add(&mut self, seq: u64) {
        if let Some(last) = self.ranges.last_mut() {
            if last.1.checked_add(1) == Some(seq) {
                last.1 = seq;
                return;
            }
            if (last.0..=last.1).contains(&seq) {
                return;
            }
        }
        self.ranges.push((seq, seq));
    }

    pub fn append(&mut self, other: &mut AckSet) {
        for (first, last) in other.ranges.drain(..) {
            match self.ranges.last_mut() {
                Some(l) if l.1.checked_add(1) == Some(first) => l.1 = last,
                _ => self.ranges.push((first, last)),
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Everything, in messages of at most `per` ranges.
    pub fn take_chunks(&mut self, per: usize) -> Vec<Vec<(u64, u64)>> {
        let ranges = std::mem::take(&mut self.ranges);
        ranges.chunks(per.max(1)).map(<[_]>::to_vec).collect()
    }
}

/// A camera's numbers waiting to be acknowledged, shared by its recorders
/// and its connection.
#[derive(Debug, Clone, Default)]
pub struct Acks(Arc<Mutex<AckSet>>);

impl Acks {
    pub fn add(&self, seq: u64) {
        crate::sync::lock(&self.0).add(seq);
    }

    pub fn append(&self, set: &mut AckSet) {
        if !set.is_empty() {
            crate::sync::lock(&self.0).append(set);
        }
    }

    pub fn take_chunks(&self, per: usize) -> Vec<Vec<(u64, u64)>> {
        crate::sync::lock(&self.0).take_chunks(per)
    }
}

/// Runs of frames recorded: numbers and capture times. A frame is known
/// if both its number and its time fall in one run (an agent whose spool
/// was wiped numbers from 0 again, at other times).
#[derive(Debug, Default)]
pub struct Recorded {
    runs: std::collections::VecDeque<Run>,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    first: u64,
    last: u64,
    from_us: i64,
    to_us: i64,
}

/// Runs kept per camera: the oldest are forgotten (the catalog's spans
/// still cover them).
const MAX_RUNS: usize = 4096;

impl Recorded {
    pub fn add(&mut self, seq: u64, capture_us: i64) {
        if let Some(r) = self.runs.back_mut()
            && r.last.checked_add(1) == Some(seq)
            && capture_us >= r.to_us
        {
            r.last = seq;
            r.to_us = capture_us;
            return;
        }
        if self.runs.len() == MAX_RUNS {
            self.runs.pop_front();
        }
        self.runs.push_back(Run {
            first: seq,
            last: seq,
            from_us: capture_us,
            to_us: capture_us,
        });
    }

    pub fn contains(&self, seq: u64, capture_us: i64) -> bool {
        self.runs.iter().rev().any(|r| {
            (r.first..=r.last).contains(&seq) && (r.from_us..=r.to_us).contains(&capture_us)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_numbers_become_ranges() {
        let mut s = AckSet::default();
        for seq in [1, 2, 3, 7, 8, 8, 20] {
            s.add(seq);
        }
        let mut more = AckSet::default();
        more.add(21);
        more.add(30);
        s.append(&mut more);
        assert_eq!(
            s.take_chunks(2),
            vec![vec![(1, 3), (7, 8)], vec![(20, 21), (30, 30)]]
        );
        assert!(s.is_empty());
    }

    #[test]
    fn a_frame_is_known_by_its_number_and_its_time() {
        let mut r = Recorded::default();
        for seq in 10..20 {
            r.add(seq, 1000 + seq as i64);
        }
        assert!(r.contains(15, 1015));
        assert!(!r.contains(15, 9_999_999), "a renumbered agent's frame");
        assert!(!r.contains(25, 1025));
    }
}
