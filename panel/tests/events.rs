//! Clips with known motion and tamper (`../shared/testdata/events`, with
//! their `truth.json`) streamed through real agents into a real engine:
//! the events land in the catalog and in `panel events --json` at the
//! right clip times, the recording keeps the pre-roll in order, and a
//! camera recording on motion keeps only what is around it.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use cctv_engine::catalog::{EventKind, RecordMode};
use support::*;

#[derive(Debug, serde::Deserialize)]
struct Line {
    camera_id: String,
    kind: String,
    start_us: i64,
    end_us: Option<i64>,
}

/// `panel events --json`, as a script reads it.
fn events_json(data: &Path, camera: &str) -> Vec<Line> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_panel"))
        .args([
            "events", "--json", "--limit", "1000", "--camera", camera, "--data",
        ])
        .arg(data)
        .output()
        .expect("run panel events");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

const FPS: f64 = 10.0;
/// The agents' post-roll (their default).
const POSTROLL: f64 = 5.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_truth_clips_raise_their_events_when_the_truth_says() {
    let Some(data) = testdata() else { return };
    let clips = data.join("events");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let data_dir = cfg.data_dir.clone();
    let recordings = cfg.recordings_dir.clone();
    let engine = start_engine(cfg).await;

    let cameras = [
        ("walk", "motion_still_walk_still.mp4"),
        ("covered", "tamper_covered.mp4"),
        ("blinded", "tamper_blinded.mp4"),
        ("defocused", "tamper_defocused.mp4"),
        ("moved", "tamper_moved.mp4"),
    ];
    let mut agents = Vec::new();
    let mut clocks = HashMap::new();
    for (id, clip) in cameras {
        let creds = enroll(&engine, id, "").await;
        clocks.insert(id, FrameClock::watch(&engine, id));
        let source = format!("file:{}", clips.join(clip).display());
        agents.push(start_agent(&creds, &["--source", &source, "--no-loop"]));
    }
    // Each agent plays its clip once and says goodbye.
    for mut a in agents {
        let status = tokio::task::spawn_blocking(move || a.0.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "{status}");
    }
    // Every span ends (the last ones as the agents stop).
    wait_for(Duration::from_secs(20), "every event ended", async || {
        let open = engine
            .catalog()
            .events(None, None, None, 1000, 0)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind.is_span() && e.end_us.is_none())
            .count();
        (open == 0).then_some(())
    })
    .await;

    // Motion: one span, from 8 s (within 0.5 s) to the end of the walk at
    // 18 s (within the post-roll); nothing on the frozen parts.
    let clock = &clocks["walk"];
    let motion: Vec<(f64, f64)> = events_json(&data_dir, "walk")
        .into_iter()
        .filter(|e| e.kind == "motion")
        .map(|e| {
            assert_eq!(e.camera_id, "walk");
            let end = e.end_us.expect("ended");
            (clock.clip_secs(e.start_us, FPS), clock.clip_secs(end, FPS))
        })
        .collect();
    eprintln!("walk: motion spans (clip s) {motion:.2?}");
    assert!(!motion.is_empty(), "no motion reported");
    let first = motion.iter().map(|m| m.0).fold(f64::MAX, f64::min);
    let last = motion.iter().map(|m| m.1).fold(f64::MIN, f64::max);
    assert!(
        (first - 8.0).abs() <= 0.5,
        "motion from {first:.2} s: {motion:?}"
    );
    assert!(
        (18.0..=18.0 + POSTROLL).contains(&last),
        "motion until {last:.2} s: {motion:?}"
    );
    let tampered: Vec<_> = events_json(&data_dir, "walk")
        .into_iter()
        .filter(|e| EventKind::parse(&e.kind).is_some_and(|k| k.is_tamper()))
        .collect();
    assert!(tampered.is_empty(), "tamper on the walk: {tampered:?}");

    // Each tamper clip: its kind, from 6 s (within 2 s), nothing before.
    for (id, _) in &cameras[1..] {
        let clock = &clocks[id];
        let spans: Vec<(String, f64)> = events_json(&data_dir, id)
            .into_iter()
            .filter(|e| EventKind::parse(&e.kind).is_some_and(|k| k.is_tamper()))
            .map(|e| (e.kind, clock.clip_secs(e.start_us, FPS)))
            .collect();
        eprintln!("{id}: tamper spans from (clip s) {spans:.2?}");
        let all: Vec<(String, f64)> = events_json(&data_dir, id)
            .into_iter()
            .map(|e| (e.kind, clock.clip_secs(e.start_us, FPS)))
            .collect();
        eprintln!("{id}: all events {all:.2?}");
        let right = spans.iter().find(|(k, _)| k == id);
        let Some((_, at)) = right else {
            panic!("{id}: not named; raised {spans:?}");
        };
        assert!((6.0..=8.0).contains(at), "{id} from {at:.2} s");
        let early: Vec<_> = spans.iter().filter(|(_, t)| *t < 6.0).collect();
        assert!(early.is_empty(), "{id}: raised before 6 s: {early:?}");
    }

    // The walk's recording holds every frame from the pre-roll (5 s) to
    // the post-roll's end, in time order, and idle frames around them.
    let rows = finished_recordings(&engine, "walk").await;
    // One file: idle frames waiting for their place cut nothing short.
    assert_eq!(rows.len(), 1, "{rows:?}");
    let times = recorded_times(&recordings, &rows);
    assert!(times.windows(2).all(|w| w[0] < w[1]), "out of order");
    let clip: Vec<f64> = times.iter().map(|t| clock.clip_secs(*t, FPS)).collect();
    let full = clip.iter().filter(|t| (5.05..=17.95).contains(*t)).count();
    eprintln!(
        "walk: {} frames recorded, {full} of them between 5 and 18 s",
        clip.len()
    );
    assert!(
        full >= 128,
        "{full} frames between 5 and 18 s, 129 captured"
    );
    let idle = clip.iter().filter(|t| **t < 4.95).count();
    assert!(idle <= 7, "{idle} frames in the first 5 s while still");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_recording_on_motion_keeps_only_what_is_around_it() {
    let Some(data) = testdata() else { return };
    let clip = data.join("events/motion_still_walk_still.mp4");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let recordings = cfg.recordings_dir.clone();
    let engine = start_engine(cfg).await;
    let creds = enroll(&engine, "walk", "").await;
    engine
        .set_record_mode("walk", RecordMode::Motion)
        .await
        .unwrap();
    let clock = FrameClock::watch(&engine, "walk");
    // Sending every frame: the panel keeps its own pre-roll.
    let source = format!("file:{}", clip.display());
    let mut agent = start_agent(&creds, &["--source", &source, "--no-loop", "--full-rate"]);
    let status = tokio::task::spawn_blocking(move || agent.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    let rows = finished_recordings(&engine, "walk").await;
    let clip_times: Vec<f64> = recorded_times(&recordings, &rows)
        .into_iter()
        .map(|t| clock.clip_secs(t, FPS))
        .collect();
    let first = clip_times.first().copied().unwrap_or(f64::NAN);
    let last = clip_times.last().copied().unwrap_or(f64::NAN);
    // From the pre-roll (3 s before 8 s) to the post-roll after 18 s.
    assert!((4.5..=5.6).contains(&first), "recorded from {first:.2} s");
    assert!(
        (18.0..=18.0 + POSTROLL + 1.5).contains(&last),
        "recorded until {last:.2} s"
    );
    eprintln!(
        "on motion: {} frames recorded, from {first:.2} s to {last:.2} s",
        clip_times.len()
    );
    // Nothing from the still parts, every frame in between.
    let expected = ((last - first) * FPS).round() as usize + 1;
    assert!(
        clip_times.len() + 2 >= expected,
        "{} frames recorded of {expected}",
        clip_times.len()
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn motion_settings_change_live_from_the_panel() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start_engine(config(dir.path())).await;
    // The test pattern's ball never stops.
    let ball = enroll(&engine, "ball", "").await;
    let _agent = start_agent(&ball, &["--source", "test-pattern:320x240", "--fps", "10"]);
    let moving = async |want: bool| {
        wait_for(Duration::from_secs(15), "the motion state", async || {
            engine
                .camera("ball")
                .is_some_and(|c| c.analysed && c.motion == want)
                .then_some(())
        })
        .await
    };
    moving(true).await;
    // All of the picture must move now: the ball is too small.
    let whole = cctv_protocol::Detect {
        min_area: Some(10_000),
        ..Default::default()
    };
    engine.configure_detection("ball", whole).await.unwrap();
    moving(false).await;
    let back = cctv_protocol::Detect {
        min_area: Some(20),
        ..Default::default()
    };
    engine.configure_detection("ball", back).await.unwrap();
    moving(true).await;

    // An agent that does not analyse is told so, not sent what it cannot read.
    let plain = enroll(&engine, "plain", "").await;
    let _plain = start_agent(
        &plain,
        &["--source", "test-pattern:320x240", "--no-analysis"],
    );
    wait_for(
        Duration::from_secs(15),
        "the plain camera live",
        async || {
            engine
                .camera("plain")
                .is_some_and(|c| c.frames_received > 0)
                .then_some(())
        },
    )
    .await;
    let err = engine
        .configure_detection("plain", cctv_protocol::Detect::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not analyse"), "{err}");
    engine.shutdown().await;
}
