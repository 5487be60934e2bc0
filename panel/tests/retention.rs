//! Retention against real recordings: with a small byte limit the oldest
//! segments go (file and row), the newest stay.

mod support;

use cctv_engine::catalog::RecordingStatus;

use std::time::Duration;

use cctv_engine::Engine;
use cctv_engine::catalog::RecordingFilter;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_limit_deletes_the_oldest_segments_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.segment_secs = 1;
    let engine = Engine::start(cfg).await.unwrap();
    let _agent = start_agent(
        &enroll(&engine, "yard", "").await,
        &["--source", "test-pattern:320x240", "--fps", "10"],
    );
    let all = wait_for(
        Duration::from_secs(40),
        "six finished segments",
        async || {
            let rows = engine
                .catalog()
                .recordings(&RecordingFilter::default())
                .await
                .unwrap();
            (rows
                .iter()
                .filter(|r| r.status == RecordingStatus::Complete)
                .count()
                >= 6)
                .then_some(rows)
        },
    )
    .await;
    let finished: Vec<_> = all
        .iter()
        .filter(|r| r.status == RecordingStatus::Complete)
        .cloned()
        .collect();
    // newest first: keep the three newest finished ones, plus the open one.
    let open_bytes: i64 = all
        .iter()
        .filter(|r| r.status == RecordingStatus::Recording)
        .map(|r| r.bytes)
        .sum();
    let keep: i64 = finished[..3].iter().map(|r| r.bytes).sum::<i64>() + open_bytes;
    engine
        .set_retention("yard", Some(keep), None)
        .await
        .unwrap();
    let report = engine.run_retention().await.unwrap();

    let root = engine.config().recordings_dir.clone();
    let deleted_ids: Vec<i64> = report.deleted.iter().map(|r| r.id).collect();
    assert!(
        report.deleted.len() >= finished.len() - 3,
        "{deleted_ids:?}"
    );
    // Oldest first: every deleted segment starts before every kept one.
    let left = engine
        .catalog()
        .recordings(&RecordingFilter::default())
        .await
        .unwrap();
    let newest_deleted = report.deleted.iter().map(|r| r.start_us).max().unwrap();
    assert!(left.iter().all(|r| r.start_us > newest_deleted));
    for r in &report.deleted {
        assert!(!root.join(&r.path).exists(), "{} still on disk", r.path);
        assert!(!left.iter().any(|l| l.id == r.id));
    }
    for r in &finished[..3] {
        assert!(
            left.iter().any(|l| l.id == r.id),
            "newest segment {} was deleted",
            r.path
        );
        assert!(root.join(&r.path).exists());
    }
    assert!(
        left.iter().any(|r| r.status == RecordingStatus::Recording),
        "the segment being written is never touched"
    );
    engine.shutdown().await;
}

/// Events and refused connections older than `events_retain_days` go with
/// retention; newer ones stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_and_refusals_are_pruned_with_retention() {
    use cctv_engine::catalog::{EventKind, Refusal, RefusalCode};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.events_retain_days = 30;
    let engine = Engine::start(cfg).await.unwrap();
    enroll(&engine, "yard", "").await;
    let catalog = engine.catalog();
    let now = cctv_engine::time::now_us();
    let day = 86_400_000_000;
    for (at, detail) in [(now - 40 * day, "old"), (now - day, "recent")] {
        catalog
            .add_event("yard", EventKind::Offline, at, detail)
            .await
            .unwrap();
        let addr = std::net::SocketAddr::from(([10, 0, 0, 1], 4000));
        let r = Refusal::new(at, addr, None, RefusalCode::NotTls, detail);
        catalog.add_refusals(&[r]).await.unwrap();
    }
    engine.run_retention().await.unwrap();
    let events = catalog
        .events(Some("yard"), None, None, 100, 0)
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.detail == "recent"), "{events:?}");
    assert!(!events.iter().any(|e| e.detail == "old"), "{events:?}");
    let refused = catalog.auth_failures(100).await.unwrap();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].reason, "recent");
    engine.shutdown().await;
}
