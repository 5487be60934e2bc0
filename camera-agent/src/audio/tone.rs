//! A test tone for the test pattern: a 1 kHz beep of 100 ms at every whole
//! second of the clock, silence between. A listener hears the camera is
//! live; a recording shows whether sound and pictures (the pattern's clock)
//! keep in step.

use std::f32::consts::TAU;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Chunk, PACKET_SAMPLES, Sink, samples_us};

const BEEP_HZ: f32 = 1000.0;
const BEEP_US: u64 = 100_000;

/// The tone's samples for the 20 ms from `start_us`.
pub fn samples(start_us: u64) -> Vec<f32> {
    (0..PACKET_SAMPLES)
        .map(|i| {
            let t = start_us + samples_us(i);
            if t % 1_000_000 < BEEP_US {
                0.5 * (TAU * BEEP_HZ * (t % 1_000_000) as f32 / 1e6).sin()
            } else {
                0.0
            }
        })
        .collect()
}

/// Hands out 20 ms of tone as each 20 ms of the clock passes.
pub fn run(sink: &mut dyn Sink, shutdown: &CancellationToken) {
    let step = samples_us(PACKET_SAMPLES);
    let mut start = cctv_protocol::now_us() / step * step;
    while !shutdown.is_cancelled() {
        let now = cctv_protocol::now_us();
        let end = start + step;
        if end > now {
            std::thread::sleep(Duration::from_micros(end - now));
        } else if now - end > 1_000_000 {
            // Suspended or starved: start again from now.
            start = now / step * step;
            continue;
        }
        if !sink.take(Chunk {
            start_us: start,
            samples: samples(start),
            new_run: false,
        }) {
            return;
        }
        start = end;
    }
}
