//! A camera's sound end to end: real agents (a file's soundtrack, the test
//! tone, a microphone through ALSA) into a real panel, measured in the
//! recordings with ffmpeg and ffprobe.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cctv_engine::catalog::{RecordingFilter, RecordingStatus};
use support::sound::*;
use support::*;

/// How far a beep may be from its flash in the recording.
const SYNC_S: f64 = 0.080;

/// The nearest of `times` to `t`, and how far it is.
fn nearest(times: &[f64], t: f64) -> f64 {
    times
        .iter()
        .map(|x| (x - t).abs())
        .fold(f64::INFINITY, f64::min)
}

/// Checks one recording: every flash has its beep within `SYNC_S` and
/// every beep its flash; both tracks last as long. Returns the flashes.
fn assert_in_step(path: &Path) -> usize {
    let flashes = flashes(path);
    let onsets = onsets(path);
    let streams = streams(path);
    assert_eq!(streams.len(), 2, "{streams:?}");
    let (video, audio) = (&streams[0], &streams[1]);
    assert_eq!((video.0.as_str(), audio.0.as_str()), ("mjpeg", "opus"));
    assert!(
        (video.2 - audio.2).abs() <= 0.2,
        "video lasts {:.3} s, sound {:.3} s",
        video.2,
        audio.2
    );
    // A beep cut by the start or the end of the recording has no onset.
    let end = video.2;
    for f in flashes.iter().filter(|f| **f > 0.15 && **f < end - 0.15) {
        let off = nearest(&onsets, *f);
        assert!(
            off <= SYNC_S,
            "the flash at {f:.3} s has no beep within {SYNC_S} s ({off:.3}): {onsets:?}"
        );
    }
    let worst = flashes
        .iter()
        .filter(|f| **f > 0.15 && **f < end - 0.15)
        .map(|f| nearest(&onsets, *f))
        .fold(0.0, f64::max);
    let signed: Vec<i64> = onsets
        .iter()
        .map(|o| {
            let f = flashes
                .iter()
                .min_by(|a, b| (*a - o).abs().total_cmp(&(*b - o).abs()))
                .copied()
                .unwrap_or(f64::NAN);
            ((o - f) * 1000.0).round() as i64
        })
        .collect();
    eprintln!(
        "{}: {} flashes, {} beeps (ms after their flash: {signed:?}), worst {:.0} ms apart; \
         video {:.2} s, sound {:.2} s",
        path.display(),
        flashes.len(),
        onsets.len(),
        worst * 1000.0,
        video.2,
        audio.2
    );
    for o in &onsets {
        let off = nearest(&flashes, *o);
        assert!(
            off <= SYNC_S,
            "the beep at {o:.3} s has no flash within {SYNC_S} s ({off:.3}): {flashes:?}"
        );
    }
    flashes.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_and_its_beep_stay_together_in_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("flash_beep.mp4");
    // 6 s, so the agent plays it twice over and the loop is tested too.
    flash_and_beep_clip(&clip, 6);
    let engine = start_engine(config(dir.path())).await;
    let creds = enroll(&engine, "door", "").await;
    let source = format!("file:{}", clip.display());
    let agent = start_agent(
        &creds,
        &["--source", &source, "--audio", "file", "--no-analysis"],
    );
    wait_for(Duration::from_secs(30), "door recording", async || {
        engine
            .cameras()
            .iter()
            .any(|c| c.id == "door" && c.recording && c.audio)
            .then_some(())
    })
    .await;
    // 14 s: two passes over the clip and then some.
    let until = Instant::now() + Duration::from_secs(14);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    agent.signal("TERM");
    let rows = finished_recordings(&engine, "door").await;
    let mut flashes = 0;
    for r in &rows {
        flashes += assert_in_step(&dir.path().join("recordings").join(&r.path));
    }
    assert!(flashes >= 12, "{flashes} flashes in {rows:?}");
    engine.shutdown().await;
}
