//! Eight real agents stream into a headless engine on loopback; every feed
//! is recorded on its own. One agent is killed: only its camera goes
//! offline, the other seven keep recording without a gap.

mod support;

use cctv_engine::catalog::{EventKind, RecordingStatus};

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cctv_engine::Engine;
use cctv_engine::catalog::{CameraState, RecordingFilter, RecordingRow};
use cctv_mkv::scan as mkv_scan;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_agents_record_independently_and_one_dying_harms_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).await.unwrap();

    let video = testdata().map(|d| d.join("video/vtest.avi"));
    if video.is_none() {
        eprintln!("NOTE: all eight agents use the test pattern");
    }
    let mut agents = HashMap::new();
    for i in 0..8 {
        let id = format!("cam{i}");
        let source = match (&video, i % 2) {
            (Some(v), 1) => format!("file:{}", v.display()),
            _ => "test-pattern:320x240".to_string(),
        };
        agents.insert(
            id.clone(),
            start_agent(
                &enroll(&engine, &id, "").await,
                // Every frame, unanalysed: this is about the rate surviving.
                &[
                    "--source",
                    &source,
                    "--width",
                    "320",
                    "--fps",
                    "10",
                    "--no-analysis",
                ],
            ),
        );
    }
    let live_at = wait_for(Duration::from_secs(30), "8 cameras live", async || {
        let cams = engine.cameras();
        (cams.len() == 8
            && cams
                .iter()
                .all(|c| c.state == CameraState::Live && c.recording))
        .then(Instant::now)
    })
    .await;

    // Watch what cam1 captures, to compare with what lands in its file.
    let mut frames = engine.watch_frames("cam1").unwrap();
    let mut seen_capture_us = Vec::new();
    let watch_until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < watch_until {
        if tokio::time::timeout(Duration::from_secs(1), frames.changed())
            .await
            .is_ok()
            && let Some(f) = frames.borrow_and_update().clone()
        {
            seen_capture_us.push(f.capture_us);
        }
    }
    assert!(
        seen_capture_us.len() >= 20,
        "saw {} frames",
        seen_capture_us.len()
    );

    // Kill cam3's agent outright: no goodbye.
    let killed_at = Instant::now();
    drop(agents.remove("cam3"));
    let dead_us = cctv_engine::time::now_us();
    let offline_after = wait_for(Duration::from_secs(5), "cam3 offline", async || {
        (engine.camera("cam3").unwrap().state == CameraState::Offline).then(|| killed_at.elapsed())
    })
    .await;
    assert!(
        offline_after <= Duration::from_millis(2 * 500),
        "offline after {offline_after:?}, more than 2 heartbeats (1 s)"
    );
    let cam3_row: RecordingRow =
        wait_for(Duration::from_secs(5), "cam3 segment closed", async || {
            engine
                .catalog()
                .recordings(&RecordingFilter {
                    camera_id: Some("cam3".into()),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_iter()
                .find(|r| r.status == RecordingStatus::Complete)
        })
        .await;
    // The offline event is queued with the close; it lands beside it.
    wait_for(Duration::from_secs(5), "cam3's offline event", async || {
        let events = engine
            .catalog()
            .events(Some("cam3"), None, None, 10, 0)
            .await
            .unwrap();
        events
            .iter()
            .any(|e| e.kind == EventKind::Offline && e.detail.contains("connection lost"))
            .then_some(())
    })
    .await;

    // The other seven go on for a while.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for c in engine.cameras() {
        if c.id != "cam3" {
            assert_eq!(c.state, CameraState::Live, "{} is {:?}", c.id, c.state);
            assert!(c.recording);
        }
    }
    let _ = live_at;
    let recordings_dir = engine.config().recordings_dir.clone();
    let catalog_rows = engine
        .catalog()
        .recordings(&RecordingFilter::default())
        .await
        .unwrap();
    assert!(
        catalog_rows
            .iter()
            .all(|r| r.status == RecordingStatus::Recording || r.id == cam3_row.id)
    );
    engine.shutdown().await;
    // What each camera's connection delivered, counted by the panel as it
    // arrived; the files must hold exactly that.
    let delivered: HashMap<String, _> = engine
        .cameras()
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    drop(agents);

    // Reopen the catalog the way the CLI does and check every segment.
    let catalog = cctv_engine::catalog::Catalog::open(&dir.path().join("data/panel.db"))
        .await
        .unwrap();
    let rows = catalog
        .recordings(&RecordingFilter::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), 8, "one segment per camera: {rows:?}");
    for r in &rows {
        assert_eq!(r.status, RecordingStatus::Complete, "{r:?}");
        let path = recordings_dir.join(&r.path);
        assert!(r.path.starts_with(&format!("{0}/", r.camera_id)));
        assert!(
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&format!("{}_", r.camera_id))
        );
        let probe = ffprobe(&path);
        assert_eq!(probe.codec, "mjpeg");
        assert_eq!(
            probe.frames as i64, r.frames,
            "{}: ffprobe frames vs catalog",
            r.camera_id
        );
        assert_eq!(r.bytes as u64, std::fs::metadata(&path).unwrap().len());
        // Nothing lost between the agent and the disk: no frame the agent
        // numbered went missing, and every frame that arrived was written
        // (however busy the machine made the agents' own timing).
        let status = &delivered[&r.camera_id];
        assert_eq!(status.frames_missed, 0, "{}: frames missed", r.camera_id);
        assert_eq!(status.frames_unrecorded, 0, "{}: unrecorded", r.camera_id);
        assert_eq!(
            r.frames as u64, status.frames_received,
            "{}: frames in the file vs frames that arrived",
            r.camera_id
        );
        // The file plays for as long as its frames' capture times span, and
        // the last frame for an average frame's time (a busy machine slows
        // the agents, and lengthens that).
        let span_secs = (r.end_us - r.start_us) as f64 / 1e6;
        let playing = span_secs * r.frames as f64 / (r.frames - 1).max(1) as f64;
        assert!(
            (probe.duration - playing).abs() <= 0.05,
            "{}: duration {:.2} s vs capture times spanning {:.2} s",
            r.camera_id,
            probe.duration,
            span_secs
        );
        // At most the agents' 10 fps: no frame written twice. (How many
        // below that depends on how busy the machine keeps the agents.)
        let fps = r.frames as f64 / probe.duration;
        assert!((1.0..=11.0).contains(&fps), "{}: {fps:.1} fps", r.camera_id);
    }
    // cam3's segment ends with its agent: nothing after the kill.
    assert!(cam3_row.end_us <= dead_us, "{cam3_row:?}");
    // Every capture time the panel saw for cam1 is a frame time in its file.
    let cam1 = rows.iter().find(|r| r.camera_id == "cam1").unwrap();
    let scan = mkv_scan::scan(&recordings_dir.join(&cam1.path)).unwrap();
    assert_eq!(scan.origin_us, cam1.start_us);
    let times: Vec<i64> = scan.frames.iter().map(|f| scan.capture_us(f)).collect();
    for us in &seen_capture_us {
        assert!(
            times.iter().any(|t| (t - us).abs() < 1000),
            "capture time {us} not in the recording"
        );
    }
    let probe = ffprobe(&recordings_dir.join(&cam1.path));
    for (p, t) in probe.pts.iter().zip(&times) {
        assert!((p * 1e6 - (t - cam1.start_us) as f64).abs() < 1500.0);
    }
}
