//! The catalog on SQLite and on PostgreSQL: the same schema (migrations kept
//! in step) and the same answers to the same calls, against a real
//! PostgreSQL server started for the test.

mod support;

use std::collections::BTreeSet;

use cctv_engine::catalog::{
    CameraSettings, CameraState, Catalog, EventFilter, EventKind, Finished, NewRecording,
    PanoramaResult, PanoramaStatus, RecordMode, RecordingFilter, RecordingStatus, Refusal,
    RefusalCode, SpanEnd,
};
use sqlx::Connection;
use support::postgres::Postgres;
use support::schema::{postgres_schema, sqlite_schema};

const MIGRATIONS: &str = "SELECT version, description FROM _sqlx_migrations ORDER BY version";

#[tokio::test]
async fn both_backends_have_the_same_schema() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("panel.db");
    Catalog::open(&db).await.unwrap().close().await;
    Catalog::open_postgres(&pg.url())
        .await
        .unwrap()
        .close()
        .await;

    let sqlite = sqlite_schema(&db).await;
    let postgres = postgres_schema(&pg.url()).await;
    assert!(sqlite.len() > 60, "the schema was read: {sqlite:#?}");
    let only_sqlite: Vec<_> = sqlite.difference(&postgres).collect();
    let only_postgres: Vec<_> = postgres.difference(&sqlite).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "the migrations are out of step:\nonly in SQLite: {only_sqlite:#?}\nonly in PostgreSQL: {only_postgres:#?}"
    );
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let on_sqlite: Vec<(i64, String)> = sqlx::query_as(MIGRATIONS).fetch_all(&mut c).await.unwrap();
    let mut c = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let on_postgres: Vec<(i64, String)> =
        sqlx::query_as(MIGRATIONS).fetch_all(&mut c).await.unwrap();
    assert_eq!(
        on_sqlite, on_postgres,
        "the same migrations, by number and name"
    );
    assert!(on_sqlite.len() >= 8);
}

/// Every kind of call the panel makes, in the order a day of use makes
/// them; each answer written down.
async fn a_day_of_calls(c: &Catalog) -> Vec<(&'static str, String)> {
    let mut log: Vec<(&'static str, String)> = Vec::new();
    let c = &c.clone().with_server("a");
    c.register_server("a:7700", "one", "sha256:aa", 500)
        .await
        .unwrap();
    let b = c.clone().with_server("b");
    b.register_server("b:7700", "two", "", 600).await.unwrap();
    macro_rules! note {
        ($what:literal, $e:expr) => {{
            let v = $e;
            log.push(($what, format!("{v:?}")));
            v
        }};
    }
    note!(
        "credentials",
        c.add_credentials("door", "Front door", &[7; 32], false, 1_000)
            .await
            .unwrap()
    );
    note!(
        "second secret refused",
        c.add_credentials("door", "", &[8; 32], false, 1_001)
            .await
            .is_err()
    );
    let settings = CameraSettings {
        id: "door".into(),
        name: "agent's name".into(),
        address: "10.0.0.5:40000".into(),
        agent_version: "1.0".into(),
        width: 640,
        height: 480,
        fps_milli: 10_000,
    };
    note!(
        "register",
        c.register_camera(&settings, RecordMode::Continuous, 2_000)
            .await
            .unwrap()
    );
    let yard = CameraSettings {
        id: "yard".into(),
        name: "Yard".into(),
        ..settings.clone()
    };
    note!(
        "register yard",
        c.register_camera(&yard, RecordMode::Motion, 2_100)
            .await
            .unwrap()
    );
    note!(
        "live",
        c.set_state("door", CameraState::Live, 3_000, "connected")
            .await
            .unwrap()
    );
    note!(
        "rename",
        c.rename_camera("yard", "back yard").await.unwrap()
    );
    note!(
        "retention",
        c.set_retention("door", Some(1 << 30), Some(30))
            .await
            .unwrap()
    );
    note!(
        "mode",
        c.set_record_mode("yard", RecordMode::Off).await.unwrap()
    );
    note!(
        "auto dispatch",
        c.set_auto_dispatch("door", true).await.unwrap()
    );
    note!("cameras by name", c.cameras().await.unwrap());

    let first = NewRecording {
        camera_id: "door".into(),
        path: "door/1.mkv".into(),
        start_us: 10_000,
        width: 640,
        height: 480,
        backfilled: false,
    };
    let id = note!(
        "insert recording",
        c.insert_recording(&first).await.unwrap()
    );
    note!(
        "progress",
        c.recording_progress(id, 15_000, 50, 4_096).await.unwrap()
    );
    note!("open and bytes", c.recorded_bytes_and_open().await.unwrap());
    note!(
        "finish",
        c.finish_recording(id, 20_000, 100, 8_192, RecordingStatus::Complete, "")
            .await
            .unwrap()
    );
    let adopted = NewRecording {
        path: "door/2.mkv".into(),
        start_us: 30_000,
        backfilled: true,
        ..first
    };
    let end = Finished {
        end_us: 40_000,
        frames: 10,
        bytes: 1_000,
        status: RecordingStatus::Interrupted,
        detail: "repaired",
    };
    note!(
        "adopt",
        c.insert_finished_recording(&adopted, &end).await.unwrap()
    );
    note!(
        "event",
        c.add_event("door", EventKind::Motion, 12_000, "")
            .await
            .unwrap()
    );
    let span = SpanEnd {
        end_us: 13_000,
        peak_score: Some(0.375),
        thumbnail: Some(vec![0xff, 0xd8, 0]),
        why: "still".into(),
    };
    note!(
        "end span",
        c.end_span("door", EventKind::Motion, 12_000, &span)
            .await
            .unwrap()
    );
    note!(
        "tamper",
        c.add_event("door", EventKind::Covered, 35_000, "lens covered")
            .await
            .unwrap()
    );
    note!(
        "recordings",
        c.recordings(&RecordingFilter::default()).await.unwrap()
    );
    let motion = RecordingFilter {
        with_motion: true,
        camera_id: Some("door".into()),
        ..Default::default()
    };
    note!("with motion", c.recordings(&motion).await.unwrap());
    let window = RecordingFilter {
        from_us: Some(25_000),
        to_us: Some(35_000),
        limit: Some(1),
        ..Default::default()
    };
    note!("in a window", c.recordings(&window).await.unwrap());
    note!(
        "newest start",
        c.newest_recording_start("door").await.unwrap()
    );
    note!(
        "paths since",
        c.recording_paths_since("door", 0)
            .await
            .unwrap()
            .into_iter()
            .collect::<BTreeSet<_>>()
    );
    note!("by path", c.recording_by_path("door/2.mkv").await.unwrap());
    note!(
        "oldest first",
        c.finished_oldest_first(Some("door")).await.unwrap()
    );
    note!("bytes", c.recorded_bytes(None).await.unwrap());
    note!("no bytes", c.recorded_bytes(Some("yard")).await.unwrap());
    note!(
        "spans",
        c.spans_overlapping(Some("door"), Some(0), None, 10)
            .await
            .unwrap()
    );
    let kinds = EventFilter {
        kind: Some(EventKind::Motion),
        limit: 10,
        ..Default::default()
    };
    note!("find", c.find_events(&kinds).await.unwrap());
    let events = c.events(Some("door"), None, None, 100, 0).await.unwrap();
    note!("history", &events);
    let motion_id = events
        .iter()
        .find(|e| e.kind == EventKind::Motion)
        .unwrap()
        .id;
    note!("thumbnail", c.event_thumbnail(motion_id).await.unwrap());
    note!("after", c.first_event_after("door", 12_500).await.unwrap());
    note!(
        "has event",
        c.has_event("door", EventKind::Covered, 35_000)
            .await
            .unwrap()
    );
    note!("close spans", c.close_open_spans().await.unwrap());

    let addr = std::net::SocketAddr::from(([192, 168, 1, 9], 5000));
    let wrong = |at| {
        Refusal::new(
            at,
            addr,
            Some("door"),
            RefusalCode::WrongSecret,
            "wrong secret",
        )
    };
    note!(
        "refusals",
        c.add_refusals(&[wrong(50_000), wrong(51_000)])
            .await
            .unwrap()
    );
    note!(
        "more",
        c.add_refusals(&[
            wrong(52_000),
            Refusal::new(53_000, addr, None, RefusalCode::NotTls, "plain")
        ])
        .await
        .unwrap()
    );
    note!("failures", c.auth_failures(10).await.unwrap());
    note!("key", c.camera_key("door").await.unwrap());
    note!(
        "revoke",
        c.revoke_credentials("door", 60_000).await.unwrap()
    );
    note!("revoked", c.revoked_cameras().await.unwrap());
    note!(
        "replace",
        c.add_credentials("door", "", &[9; 32], false, 61_000)
            .await
            .unwrap()
    );
    note!(
        "sender",
        c.add_sender("hq", &[3; 32], 62_000).await.unwrap()
    );
    note!("sender key", c.sender_key("hq").await.unwrap());
    note!(
        "revoke sender",
        c.revoke_sender("hq", 63_000).await.unwrap()
    );
    note!(
        "pairing",
        c.add_pairing("yard", &[5; 32], 64_000, 100_000)
            .await
            .unwrap()
    );
    let open = note!("open pairings", c.open_pairings(65_000).await.unwrap());
    note!(
        "use",
        c.use_pairing(open[0].id, 66_000, "10.0.0.6:1")
            .await
            .unwrap()
    );
    note!(
        "use again",
        c.use_pairing(open[0].id, 67_000, "10.0.0.6:1")
            .await
            .unwrap()
    );

    let export = note!(
        "export",
        c.insert_export(
            "exports/a.zip",
            70_000,
            "door",
            10_000,
            40_000,
            2,
            9_000,
            "ab"
        )
        .await
        .unwrap()
    );
    note!(
        "failed export",
        c.log_failed_export(
            71_000,
            "yard",
            cctv_engine::catalog::ExportStatus::Cancelled,
            "asked"
        )
        .await
        .unwrap()
    );
    let dispatch = note!(
        "queue",
        c.queue_dispatch(export, "hq", 72_000).await.unwrap()
    );
    note!(
        "queue again",
        c.queue_dispatch(export, "hq", 72_500).await.unwrap()
    );
    note!("due", c.due_dispatches(73_000).await.unwrap());
    note!(
        "attempt",
        c.dispatch_attempt(dispatch, 100, Err(("refused".into(), 80_000, false)))
            .await
            .unwrap()
    );
    note!(
        "attempt done",
        c.dispatch_attempt(dispatch, 9_000, Ok(81_000))
            .await
            .unwrap()
    );
    note!("dispatches", c.dispatches(10).await.unwrap());
    note!("exports", c.exports(10).await.unwrap());
    note!(
        "export by path",
        c.export_by_path("exports/a.zip").await.unwrap()
    );

    let pano = note!(
        "panorama",
        c.insert_panorama("door", "recording 1", 10_000, 20_000, "panorama", 90_000)
            .await
            .unwrap()
    );
    let done = PanoramaResult {
        status: PanoramaStatus::Complete,
        message: "5 frames".into(),
        frames_used: 5,
        width: 2000,
        height: 500,
        ..Default::default()
    };
    note!(
        "finish panorama",
        c.finish_panorama(pano, &done).await.unwrap()
    );
    note!(
        "running",
        c.insert_panorama("yard", "last 30 s", 1, 2, "scans", 91_000)
            .await
            .unwrap()
    );
    note!("fail running", c.fail_running_panoramas().await.unwrap());
    note!("panoramas", c.panoramas(None, 10).await.unwrap());

    note!(
        "setting",
        c.set_setting("listen", "0.0.0.0:7000").await.unwrap()
    );
    note!("read setting", c.setting("listen").await.unwrap());
    note!("beat", c.beat(100_000).await.unwrap());
    note!("last beat", c.last_beat().await.unwrap());
    let b = c.clone().with_server("b");
    let refused = b.register_server("b2:7700", "other", "", 100_500).await;
    let _ = note!(
        "second panel as b refused",
        refused.map_err(|e| e.to_string())
    );
    note!("servers", c.servers().await.unwrap());
    note!("stop", b.stop_server(101_000).await.unwrap());
    note!("b stopped", b.last_beat().await.unwrap());
    note!(
        "offline",
        c.mark_all_offline(110_000, "panel stopped").await.unwrap()
    );
    note!("camera", c.camera("door").await.unwrap());
    note!("prune events", c.prune_events(12_500).await.unwrap());
    note!("prune refusals", c.prune_refusals(52_500).await.unwrap());
    note!("delete", c.delete_recording(id).await.unwrap());
    note!(
        "left",
        c.recordings(&RecordingFilter::default()).await.unwrap()
    );
    // A path is unique on its server only.
    let again = NewRecording {
        camera_id: "door".into(),
        path: "door/2.mkv".into(),
        start_us: 200_000,
        width: 640,
        height: 480,
        backfilled: false,
    };
    note!("same path on b", b.insert_recording(&again).await.is_ok());
    note!(
        "same path again on a",
        c.insert_recording(&again).await.is_err()
    );
    log
}

#[tokio::test]
async fn the_catalog_gives_the_same_answers_on_postgresql_as_on_sqlite() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Catalog::open(&dir.path().join("panel.db")).await.unwrap();
    let postgres = Catalog::open_postgres(&pg.url()).await.unwrap();
    assert_eq!(
        (sqlite.backend(), postgres.backend()),
        ("sqlite", "postgres")
    );

    let on_sqlite = a_day_of_calls(&sqlite).await;
    let on_postgres = a_day_of_calls(&postgres).await;
    for ((what, a), (_, b)) in on_sqlite.iter().zip(&on_postgres) {
        assert_eq!(a, b, "{what}: SQLite and PostgreSQL disagree");
    }
    assert_eq!(on_sqlite.len(), on_postgres.len());

    // And the answers are the right ones, not merely the same.
    let answer = |what: &str| {
        on_sqlite
            .iter()
            .find(|(w, _)| *w == what)
            .map(|(_, a)| a.clone())
            .unwrap()
    };
    assert_eq!(answer("second secret refused"), "true");
    // By name, whatever the case: "back yard" before "Front door".
    let by_name = answer("cameras by name");
    assert!(
        by_name.find("back yard") < by_name.find("Front door"),
        "{by_name}"
    );
    assert_eq!(answer("with motion").matches("RecordingRow").count(), 1);
    assert_eq!(answer("bytes"), "9192");
    assert!(
        answer("failures").contains("attempts: 3"),
        "{}",
        answer("failures")
    );
    assert_eq!(answer("use again"), "false");
    assert_eq!(answer("queue"), answer("queue again"));
    assert_eq!(answer("fail running"), "1");
    assert!(answer("camera").contains("state: Offline"));
    assert_eq!(answer("left").matches("RecordingRow").count(), 1);
    assert!(answer("left").contains("server_id: \"a\""));
    // b is alive (its beat is fresh to the catalog's clock here: 600 us):
    // a second panel as b is refused.
    assert!(
        answer("second panel as b refused").contains("another panel runs as server"),
        "{}",
        answer("second panel as b refused")
    );
    assert_eq!(answer("b stopped"), "None");
    assert_eq!(answer("same path on b"), "true");
    assert_eq!(answer("same path again on a"), "true");
}
