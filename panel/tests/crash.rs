//! A real `panel serve` process killed with SIGKILL mid-recording: on the
//! next start the open segments are repaired, marked `interrupted` with the
//! right end time, and recording goes on.

mod support;

use cctv_engine::catalog::{EventKind, RecordingStatus};

use std::net::SocketAddr;
use std::time::Duration;

use cctv_engine::catalog::{Catalog, RecordingFilter};
use support::*;

async fn rows(catalog: &Catalog) -> Vec<cctv_engine::catalog::RecordingRow> {
    catalog
        .recordings(&RecordingFilter::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_recording_loses_almost_nothing_and_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // Credentials are issued before the panel starts, as an installer would.
    let data = dir.path().join("data");
    let alpha = enroll_cli(&data, addr, "alpha");
    let beta = enroll_cli(&data, addr, "beta");
    let mut panel = panel_serve(dir.path(), port, "info");
    let _a = start_agent(&alpha, &["--source", "test-pattern:320x240", "--fps", "10"]);
    let _b = start_agent(&beta, &["--source", "test-pattern:320x240", "--fps", "10"]);

    let db = dir.path().join("data/panel.db");
    wait_for(Duration::from_secs(30), "the catalog", async || {
        db.exists().then_some(())
    })
    .await;
    let catalog = Catalog::open(&db).await.unwrap();
    wait_for(Duration::from_secs(30), "two open segments", async || {
        (rows(&catalog)
            .await
            .iter()
            .filter(|r| r.status == RecordingStatus::Recording)
            .count()
            == 2)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    panel.signal("KILL");
    let killed_us = cctv_engine::time::now_us();
    let _ = panel.0.wait();
    let left_open = rows(&catalog).await;
    assert!(
        left_open
            .iter()
            .all(|r| r.status == RecordingStatus::Recording)
    );

    // Start again on the same directories; the agents find it by themselves.
    let mut panel = panel_serve(dir.path(), port, "info");
    let panel_log = panel.read_log();
    let repaired = wait_for(Duration::from_secs(20), "repair at start", async || {
        let r = rows(&catalog).await;
        let done: Vec<_> = r
            .into_iter()
            .filter(|r| r.status == RecordingStatus::Interrupted)
            .collect();
        (done.len() == 2).then_some(done)
    })
    .await;
    for r in &repaired {
        let path = dir.path().join("recordings").join(&r.path);
        let probe = ffprobe(&path);
        assert_eq!(probe.frames as i64, r.frames, "{r:?}");
        assert!(r.frames >= 30, "{r:?}");
        // Every frame is written as it arrives: at most the frame in flight is
        // lost (10 fps: the last one kept is at most ~100 ms before the kill).
        let lost_ms = (killed_us - r.end_us) / 1000;
        assert!(
            (0..=400).contains(&lost_ms),
            "{} lost {lost_ms} ms",
            r.camera_id
        );
        assert!(r.detail.contains("repaired"), "{r:?}");
        let expected = (r.end_us - r.start_us) as f64 / 1e6;
        assert!(
            (probe.duration - expected).abs() < 0.5,
            "{} vs {expected}",
            probe.duration
        );
    }
    // Recording goes on in new segments.
    wait_for(Duration::from_secs(20), "new segments", async || {
        (rows(&catalog)
            .await
            .iter()
            .filter(|r| r.status == RecordingStatus::Recording)
            .count()
            == 2)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = panel.stop(Duration::from_secs(60), panel_log);
    let status = panel.0.wait().unwrap();
    assert!(status.success(), "{status}\n{log}");
    assert!(log.contains("repaired an interrupted recording"), "{log}");

    // The agents spool: a frame the killed panel had not made durable (the
    // one it was writing, cut off by the repair) comes back as backfill, in
    // a recording of its own inside the gap between the two runs.
    let (backfilled, all): (Vec<_>, Vec<_>) =
        rows(&catalog).await.into_iter().partition(|r| r.backfilled);
    assert_eq!(all.len(), 4, "{all:?}");
    for b in &backfilled {
        let before = repaired
            .iter()
            .find(|r| r.camera_id == b.camera_id)
            .unwrap();
        let after = all
            .iter()
            .find(|r| r.camera_id == b.camera_id && r.status == RecordingStatus::Complete)
            .unwrap();
        assert!(
            before.end_us < b.start_us && b.end_us < after.start_us,
            "{b:?} is not in the gap between {before:?} and {after:?}"
        );
    }
    assert_eq!(
        all.iter()
            .filter(|r| r.status == RecordingStatus::Complete)
            .count(),
        2
    );
    assert_eq!(
        all.iter()
            .filter(|r| r.status == RecordingStatus::Interrupted)
            .count(),
        2
    );
    // Nothing else lost: the repaired rows are untouched by the second run.
    for r in &repaired {
        let now = all.iter().find(|x| x.id == r.id).unwrap();
        assert_eq!(now, r);
    }
    let events = catalog
        .events(Some("alpha"), None, None, 50, 0)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == EventKind::Offline && e.detail.contains("not running")),
        "{events:?}"
    );
}
