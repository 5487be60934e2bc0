//! The window's screens in iced's headless simulator (see `ui`), against a
//! real engine with cameras connected over loopback: what an operator sees.

mod support;
mod ui;

use cctv_engine::catalog::{
    DispatchState, EventKind, PanoramaStatus, RecordingStatus, RefusalCode,
};

use std::sync::Arc;
use std::time::{Duration, Instant};

use cctv_engine::catalog::CameraState;
use cctv_window::app::{Message, Screen};
use cctv_window::backend::Reply;
use cctv_window::history;
use cctv_window::keys::{Action, SHORTCUTS};
use support::*;
use ui::*;

#[test]
fn tiles_appear_turn_offline_and_show_recording() {
    let mut w = world(600);
    assert!(w.sees("No cameras yet"));
    let door = w.camera("door", "Front door");
    let _yard = w.camera("yard", "Yard");
    w.until("two live cameras with pictures", |a| {
        a.cameras.len() == 2
            && a.cameras
                .iter()
                .all(|c| c.state == CameraState::Live && c.recording)
            && a.tiles.len() == 2
    });
    assert!(w.sees("Front door"));
    assert!(w.sees("Yard"));
    assert!(w.sees("LIVE"));
    assert!(w.sees("● REC"));
    assert!(w.sees("2 of 2 cameras live"));
    assert!(w.sees("2 recording"));

    // The camera drops: its tile says OFFLINE since when, and why.
    drop(door);
    w.until("door offline", |a| {
        a.camera("door")
            .is_some_and(|c| c.state == CameraState::Offline)
    });
    let since = w.app.camera("door").unwrap().since_us;
    let badge = format!("OFFLINE since {}", cctv_engine::time::local_clock(since));
    assert!(w.sees(&badge), "no {badge:?}");
    assert!(w.sees("1 of 2 cameras live"));
    let reason = w.app.camera("door").unwrap().detail.clone();
    assert!(reason.contains("connection lost"), "{reason}");
    assert!(w.sees(&reason));
    // Its last picture stays on the tile.
    assert!(w.app.tiles.contains_key("door"));

    // Click the live tile to focus it, stop recording, start again.
    w.ui(|ui| ui.click("Yard").map(|_| ()).unwrap());
    assert_eq!(w.app.screen, Screen::Focus("yard".into()));
    assert!(w.sees("Stop recording (Space)"));
    w.ui(|ui| ui.click("Stop recording (Space)").map(|_| ()).unwrap());
    w.until("yard stopped", |a| {
        a.camera("yard").is_some_and(|c| !c.recording)
    });
    assert!(w.sees("Record (Space)"));
    assert!(
        !w.sees("● REC"),
        "no REC mark on a camera that does not record"
    );
    // Space records the focused camera again.
    w.send(Message::Action(Action::RecordFocused));
    w.until("yard recording", |a| {
        a.camera("yard").is_some_and(|c| c.recording)
    });
    assert!(w.sees("● REC"));
    // Esc returns to the wall.
    w.send(Message::Action(Action::Back));
    assert_eq!(w.app.screen, Screen::Wall);
}

#[test]
fn help_overlay_lists_every_shortcut_and_quit_asks_while_recording() {
    let mut w = world(600);
    let _cam = w.camera("door", "Front door");
    w.until("recording", |a| a.recording_count() == 1);
    w.send(Message::Key(
        iced::keyboard::Key::Character("h".into()),
        iced::keyboard::Modifiers::default(),
    ));
    assert!(w.app.help);
    assert!(w.sees("Keyboard shortcuts"));
    for (keys, what, _) in SHORTCUTS {
        assert!(w.sees(keys), "help lacks {keys}");
        assert!(w.sees(what), "help lacks {what}");
    }
    w.ui(|ui| ui.click("Close (Esc)").map(|_| ()).unwrap());
    assert!(!w.app.help);

    w.send(Message::Action(Action::Quit));
    assert!(w.app.confirm_quit, "quitting while recording asks first");
    assert!(w.sees("Quit the panel?"));
    w.ui(|ui| ui.click("Keep running").map(|_| ()).unwrap());
    assert!(!w.app.confirm_quit);
}

#[test]
fn history_lists_recordings_and_filters_narrow_the_list() {
    let mut w = world(1);
    let door = w.camera("door", "Front door");
    let yard = w.camera("yard", "Yard");
    std::thread::sleep(Duration::from_millis(3500));
    drop(door);
    drop(yard);
    w.until("offline", |a| a.live_count() == 0);

    w.send(Message::Show(Screen::History));
    w.until("history loaded", |a| a.history.loaded);
    let cams: std::collections::HashSet<String> = w
        .app
        .history
        .recordings
        .iter()
        .map(|r| r.camera_id.clone())
        .collect();
    assert_eq!(cams.len(), 2, "both cameras' recordings listed");
    assert!(w.app.history.recordings.len() >= 4);
    // Newest first.
    let starts: Vec<i64> = w
        .app
        .history
        .recordings
        .iter()
        .map(|r| r.start_us)
        .collect();
    assert!(starts.windows(2).all(|p| p[0] >= p[1]));
    assert!(w.sees("yard"));
    // The offline events reach the catalog just after the wall hears of
    // them; the open history takes them in as they are written.
    w.until("offline events on the same timeline", |a| {
        a.history
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Offline)
            .count()
            == 2
    });
    assert!(w.sees("camera offline"));

    // Only the door.
    w.send(Message::History(history::Msg::Camera("door".into())));
    w.until("door only", |a| {
        a.history.loaded && a.history.recordings.iter().all(|r| r.camera_id == "door")
    });
    assert!(!w.app.history.recordings.is_empty());
    assert!(!w.sees("yard"), "the yard is filtered out");

    // A range in the future: nothing.
    w.send(Message::History(history::Msg::From("2099-01-01".into())));
    w.send(Message::History(history::Msg::Apply));
    w.until("empty", |a| a.history.recordings.is_empty());
    assert!(w.sees("No recordings match."));

    // A date that is not a date is refused with a reason.
    w.send(Message::History(history::Msg::From("last tuesday".into())));
    w.send(Message::History(history::Msg::Apply));
    assert!(
        w.app
            .history
            .error
            .as_deref()
            .unwrap_or("")
            .contains("cannot read time")
    );

    // Back to everything, then play the newest recording.
    w.send(Message::History(history::Msg::From(String::new())));
    w.send(Message::History(history::Msg::Camera(
        history::ALL_CAMERAS.into(),
    )));
    w.until("all again", |a| a.history.recordings.len() >= 4);
    w.send(Message::Action(Action::PlayNewest));
    w.until("playing", |a| {
        a.screen == Screen::Playback
            && a.playback
                .as_ref()
                .is_some_and(|p| p.tracks[0].image.is_some())
    });
    assert!(w.sees("Pause"));
    assert!(w.sees("Back to history (Esc)"));
}

#[test]
fn settings_rename_and_move_the_listener_without_a_restart() {
    use cctv_window::settings::Msg;
    let mut w = world(600);
    let cam = w.camera("door", "Front door");
    w.until("live", |a| a.live_count() == 1);
    w.send(Message::Show(Screen::Settings));
    assert!(w.sees("Front door"));
    w.until("the saved settings", |a| {
        a.settings
            .cameras
            .get("door")
            .is_some_and(|f| f.loaded.is_some())
    });
    w.send(Message::Settings(Msg::Name(
        "door".into(),
        "Main entrance".into(),
    )));
    w.send(Message::Settings(Msg::RetainDays(
        "door".into(),
        "30".into(),
    )));
    w.ui(|ui| ui.click("Save").map(|_| ()).unwrap());
    w.until("renamed", |a| {
        a.camera("door").is_some_and(|c| c.name == "Main entrance")
    });
    // The rename and the retention are saved by two commands at once.
    let saved = Instant::now();
    let row = loop {
        let row =
            w.rt.block_on(w.engine.catalog().camera("door"))
                .unwrap()
                .unwrap();
        if row.retain_days.is_some() || saved.elapsed() > Duration::from_secs(10) {
            break row;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(row.name, "Main entrance");
    assert_eq!(row.retain_days, Some(30));

    // A bad number is refused with a reason; nothing is saved.
    w.send(Message::Settings(Msg::RetainGb(
        "door".into(),
        "lots".into(),
    )));
    w.send(Message::Settings(Msg::Save("door".into())));
    assert!(
        w.app
            .notice
            .as_ref()
            .is_some_and(|(m, err, _)| *err && m.contains("GB"))
    );

    // Move the listener: the connected camera stays, a new one uses the new port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    w.send(Message::Settings(Msg::Listen(format!("127.0.0.1:{port}"))));
    w.send(Message::Settings(Msg::ApplyListen));
    w.until("moved", |a| a.listen.port() == port);
    assert_eq!(w.engine.local_addr().port(), port);
    assert!(w.sees(&format!("agents: 127.0.0.1:{port}")));
    let _yard = w.camera("yard", "Yard");
    w.until("both live", |a| a.live_count() == 2);
    let saved = w.rt.block_on(w.engine.catalog().setting("listen")).unwrap();
    assert_eq!(saved, Some(format!("127.0.0.1:{port}")));
    drop(cam);
}

#[test]
fn export_selected_recordings_and_dispatch_them_from_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let nas = dir.path().join("nas");
    let mut cfg = config(dir.path());
    cfg.segment_secs = 1;
    cfg.dispatch_targets = vec![cctv_engine::evidence::dispatch::TargetConfig {
        name: "nas".into(),
        dir: Some(nas.clone()),
        ..Default::default()
    }];
    let engine = Arc::new(rt.block_on(start_engine(cfg)));
    let mut w = World::new(rt, engine, dir);
    let cam = w.camera("door", "Front door");
    std::thread::sleep(Duration::from_millis(3000));
    drop(cam);
    w.until("offline", |a| a.live_count() == 0);
    w.send(Message::Show(Screen::History));
    w.until("history", |a| {
        a.history
            .recordings
            .iter()
            .filter(|r| r.status != RecordingStatus::Recording)
            .count()
            >= 2
    });
    let picked: Vec<i64> = w
        .app
        .history
        .recordings
        .iter()
        .filter(|r| r.status != RecordingStatus::Recording)
        .take(2)
        .map(|r| r.id)
        .collect();
    for id in &picked {
        w.send(Message::History(history::Msg::Select(*id, true)));
    }
    assert!(w.sees("Export selected (2)"));
    w.ui(|ui| ui.click("Export selected (2)").map(|_| ()).unwrap());
    w.until("exported", |a| {
        a.notice
            .as_ref()
            .is_some_and(|(m, _, _)| m.starts_with("export written"))
    });

    // z: the exports and the dispatch queue.
    w.send(Message::Action(Action::Exports));
    w.until("listed", |a| {
        a.evidence.loaded && a.evidence.data.exports.len() == 1
    });
    assert_eq!(w.app.evidence.data.exports[0].files, 2);
    assert!(w.sees("Exports and dispatch"));
    // s: dispatch the newest export.
    w.send(Message::Action(Action::DispatchLatest));
    w.until("dispatched", |a| {
        a.evidence
            .data
            .dispatches
            .iter()
            .any(|d| d.state == DispatchState::Done)
    });
    assert!(w.sees("done"));
    let e = &w.app.evidence.data.exports[0];
    assert!(
        nas.join(std::path::Path::new(&e.path).file_name().unwrap())
            .exists()
    );
    // a: auto-dispatch toggles.
    assert!(!w.engine.auto_dispatch());
    w.send(Message::Action(Action::ToggleAutoDispatch));
    w.until("auto on", |a| {
        a.engine.auto_dispatch() && a.evidence.data.auto_dispatch
    });
}

#[test]
fn a_panorama_of_a_still_camera_explains_why_it_failed() {
    let mut w = world(1);
    let cam = w.camera("door", "Front door");
    std::thread::sleep(Duration::from_millis(2500));
    drop(cam);
    w.until("offline", |a| a.live_count() == 0);
    w.send(Message::Show(Screen::History));
    // Every segment closed in the catalog (the window hears of each).
    w.until("history", |a| {
        let rows = &a.history.recordings;
        rows.iter().all(|r| r.status == RecordingStatus::Complete)
            && rows.first().is_some_and(|r| r.frames > 1)
    });
    // The Panorama button of the newest (finished) recording.
    w.ui(|ui| ui.click("Panorama").map(|_| ()).unwrap());
    assert_eq!(w.app.screen, Screen::Panoramas);
    w.until("the attempt ended", |a| {
        a.panoramas
            .rows
            .iter()
            .any(|r| r.status == PanoramaStatus::Failed)
    });
    let p = w.app.panoramas.rows[0].clone();
    assert!(p.message.contains("too few frames"), "{}", p.message);
    assert!(w.sees(&format!("failed: {}", p.message)));
    assert!(w.sees(&format!("tried frames: data/{}", p.path)));
}

#[test]
fn a_refused_connection_is_announced_and_listed_in_settings() {
    let mut w = world(600);
    let door = w.rt.block_on(enroll(&w.engine, "door", "Front door"));
    w.send(Message::Show(Screen::Settings));
    w.until("the first look at refusals", |a| a.refused_loaded);
    assert!(w.sees("None."));
    let fp = w.engine.fingerprint().unwrap().to_string();
    assert!(w.sees("Agents connect over TLS. Each agent pins this certificate fingerprint:"));
    assert!(w.sees(&fp));
    // Somebody tries the door camera with a wrong secret.
    let wrong = cctv_protocol::auth::Secret::from_bytes([3; 32]);
    let (_, answer) = w.rt.block_on(handshake(&door, &wrong));
    assert!(matches!(answer, cctv_protocol::Message::Reject { .. }));
    w.until("the refusal listed", |a| {
        a.refused.iter().any(|r| r.code == RefusalCode::WrongSecret)
    });
    assert!(w.sees("wrong secret for this camera id"));
    let row = w.app.refused[0].clone();
    assert!(w.sees(&row.address));
    // And the status bar says so at once.
    let (notice, error, _) = w.app.notice.clone().expect("a notice");
    assert!(error, "{notice}");
    assert!(notice.contains("refused 1 connection(s)"), "{notice}");
    assert!(notice.contains("(door)"), "{notice}");
}

#[test]
fn a_quiet_window_waits_instead_of_polling() {
    let mut w = world(600);
    w.until("the first loads", |a| a.refused_loaded && a.disk.is_some());
    // Nothing happens for two seconds: nothing arrives, nothing is redrawn.
    // (Only the disk gauge has a clock, every 5 s.)
    std::thread::sleep(Duration::from_secs(2));
    let mut woke = Vec::new();
    while let Ok(m) = w.inbox.try_recv() {
        if !matches!(m, Message::Disk | Message::Reply(Reply::Disk { .. })) {
            woke.push(format!("{m:?}"));
        }
    }
    assert!(woke.is_empty(), "woken with nothing to do: {woke:?}");
    // A camera connecting wakes it at once, with no clock involved.
    let _cam = w.camera("door", "Front door");
    w.until("the camera and its picture", |a| {
        a.live_count() == 1 && a.tiles.contains_key("door")
    });
}

#[test]
fn a_covered_camera_raises_an_alarm_that_stays_until_acknowledged() {
    let Some(data) = testdata() else { return };
    let mut w = world(600);
    let creds = w.rt.block_on(enroll(&w.engine, "door", "Front door"));
    // People walk for 6 s, then the lens is covered until the clip ends.
    let clip = data.join("events/tamper_covered.mp4");
    let _agent = start_agent(
        &creds,
        &["--source", &format!("file:{}", clip.display()), "--no-loop"],
    );
    let clip_time = Duration::from_secs(60);
    w.until_within(clip_time, "motion on the tile", |a| {
        a.camera("door").is_some_and(|c| c.motion)
    });
    assert!(w.sees("MOTION"));
    w.until_within(clip_time, "the tamper alarm", |a| a.alarms.on("door"));
    assert!(w.sees("TAMPER: LENS COVERED"));
    assert!(w.sees("Acknowledge (k)"));
    // The clip ends, the agent stops: the picture is gone, the alarm stays.
    w.until_within(clip_time, "door offline", |a| {
        a.camera("door")
            .is_some_and(|c| c.state == CameraState::Offline && c.tamper.is_none())
    });
    assert!(w.sees("TAMPER (over): lens covered"));
    assert!(w.sees("Acknowledge (k)"));
    w.send(Message::Key(
        iced::keyboard::Key::Character("k".into()),
        iced::keyboard::Modifiers::default(),
    ));
    assert!(!w.sees("Acknowledge (k)"));
    assert!(!w.sees("TAMPER (over): lens covered"));
}

#[test]
fn history_shows_motion_filters_by_it_and_playback_jumps_to_events() {
    let mut w = world(2);
    let door = w.camera("door", "Front door");
    let yard = w.camera("yard", "Yard");
    std::thread::sleep(Duration::from_millis(5000));
    drop(door);
    drop(yard);
    w.until("offline", |a| a.live_count() == 0);
    // Motion in the door's second recording, a tamper in its first.
    let rows =
        w.rt.block_on(w.engine.catalog().recordings(&Default::default()))
            .unwrap();
    let mut door_rows: Vec<_> = rows.iter().filter(|r| r.camera_id == "door").collect();
    door_rows.sort_by_key(|r| r.start_us);
    assert!(door_rows.len() >= 2, "{door_rows:?}");
    let (first, second) = (door_rows[0].clone(), door_rows[1].clone());
    let motion_at = second.start_us + 1_200_000;
    let catalog = w.engine.catalog();
    w.rt.block_on(async {
        for (kind, at, end) in [
            (EventKind::Motion, motion_at, motion_at + 400_000),
            (EventKind::Covered, first.start_us + 500_000, first.end_us),
        ] {
            catalog.add_event("door", kind, at, "").await.unwrap();
            let motion = kind == EventKind::Motion;
            let end = cctv_engine::catalog::SpanEnd {
                end_us: end,
                peak_score: motion.then_some(0.042),
                thumbnail: motion.then(|| test_jpeg(320, 240, 90).to_vec()),
                why: String::new(),
            };
            catalog.end_span("door", kind, at, &end).await.unwrap();
        }
    });

    w.send(Message::Show(Screen::History));
    w.until("spans loaded", |a| a.history.spans.len() == 2);
    // The motion event's picture is shown beside it; the tamper has none.
    w.until("the motion picture", |a| {
        a.history
            .spans
            .iter()
            .any(|e| e.kind == EventKind::Motion && a.history.event_thumbs.contains_key(&e.id))
    });
    assert_eq!(w.app.history.event_thumbs.len(), 1);
    assert!(w.sees("motion · 0:00.4 · peak 4.2% of the picture"));
    let covered = (first.end_us - first.start_us - 500_000) as f64 / 1e6;
    let line = format!(
        "tamper: lens covered · {}",
        cctv_window::style::duration(covered)
    );
    assert!(w.sees(&line), "no {line:?}");
    // With motion: only the door's recording that has it.
    w.ui(|ui| ui.click("with motion").map(|_| ()).unwrap());
    w.until("only recordings with motion", |a| {
        a.history.loaded && a.history.query.with_motion && a.history.recordings.len() == 1
    });
    assert_eq!(w.app.history.recordings[0].id, second.id);
    w.ui(|ui| ui.click("with motion").map(|_| ()).unwrap());
    w.until("everything again", |a| {
        a.history.loaded && !a.history.query.with_motion && a.history.recordings.len() >= 4
    });

    // Play the second recording: `]` jumps to a second before the motion.
    w.send(Message::History(history::Msg::Play(second.clone())));
    w.until("playing", |a| {
        a.playback
            .as_ref()
            .is_some_and(|p| p.tracks[0].image.is_some() && !p.tracks[0].spans.is_empty())
    });
    w.send(Message::Player(cctv_window::playback::Msg::PlayPause));
    w.send(Message::Key(
        iced::keyboard::Key::Character("]".into()),
        iced::keyboard::Modifiers::default(),
    ));
    w.until("at the motion", |a| {
        a.playback
            .as_ref()
            .and_then(|p| p.tracks[0].shown)
            .is_some_and(|(_, _, t)| (t - (motion_at - 1_000_000)).abs() <= 200_000)
    });
}
