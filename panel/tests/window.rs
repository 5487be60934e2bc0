//! The window's defects an operator meets on the first day, each driven as
//! an operator would in iced's simulator (see `ui`) against a real engine,
//! with real agents where what the agent reports matters.

mod support;
mod ui;

use std::sync::Arc;
use std::time::Duration;

use cctv_engine::catalog::RecordMode;
use cctv_window::app::{Message, Screen};
use cctv_window::keys::Action;
use cctv_window::{history, settings};
use iced::keyboard::{Key, Modifiers};
use support::*;
use ui::*;

/// A capture time as the history's From and To fields take it.
fn local(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap()
        .with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn key(c: &str) -> Message {
    Message::Key(Key::Character(c.into()), Modifiers::default())
}

#[test]
fn renaming_a_camera_after_a_restart_keeps_its_retention() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cfg = config(dir.path());
    // Saved with 5 GB and 7 days, then the panel restarts.
    rt.block_on(async {
        let engine = start_engine(cfg.clone()).await;
        enroll(&engine, "door", "Door").await;
        engine
            .set_retention("door", Some(5_000_000_000), Some(7))
            .await
            .unwrap();
        engine.shutdown().await;
    });
    let engine = Arc::new(rt.block_on(start_engine(cfg)));
    let mut w = World::new(rt, engine, dir);
    w.send(Message::Show(Screen::Settings));
    w.until("the saved settings", |a| {
        a.settings
            .cameras
            .get("door")
            .is_some_and(|f| f.loaded.is_some())
    });
    let form = w.app.settings.cameras["door"].clone();
    assert_eq!(
        (form.retain_gb.as_str(), form.retain_days.as_str()),
        ("5", "7")
    );

    w.send(Message::Settings(settings::Msg::Name(
        "door".into(),
        "Front door".into(),
    )));
    w.send(Message::Settings(settings::Msg::Save("door".into())));
    w.until("renamed", |a| {
        a.camera("door").is_some_and(|c| c.name == "Front door")
    });
    let row =
        w.rt.block_on(w.engine.camera_rows())
            .unwrap()
            .into_iter()
            .find(|r| r.id == "door")
            .unwrap();
    assert_eq!(row.name, "Front door");
    assert_eq!(
        (row.retain_bytes, row.retain_days),
        (Some(5_000_000_000), Some(7))
    );
}

#[test]
fn stopping_all_recording_asks_first_and_the_wall_warns_while_off() {
    let mut w = world(600);
    let _cam = w.camera("yard", "Yard");
    w.until("recording", |a| a.recording_count() == 1);

    w.send(key("r"));
    assert!(w.app.confirm_stop_all);
    assert!(w.sees("Stop recording on every camera?"));
    // Kept: Esc answers no.
    w.send(Message::Action(Action::Back));
    assert!(!w.app.confirm_stop_all);
    assert_eq!(w.app.recording_on_count(), 1);

    w.send(key("r"));
    w.ui(|ui| ui.click("Stop all recording").map(|_| ()))
        .unwrap();
    w.until("stopped", |a| {
        a.camera("yard")
            .is_some_and(|c| c.record_mode == RecordMode::Off && !c.recording)
    });
    // The tile and the status bar say so.
    assert!(w.sees("NOT RECORDING"));
    assert!(w.sees("1 NOT RECORDING"));

    // Starting again does not ask.
    w.send(key("r"));
    assert!(!w.app.confirm_stop_all);
    w.until("recording again", |a| a.recording_count() == 1);
    assert!(!w.sees("1 NOT RECORDING"));
}

#[test]
fn shift_slash_opens_a_help_that_lists_every_key_and_esc_leaves_fullscreen() {
    let mut w = world(600);
    w.send(Message::Key(Key::Character("/".into()), Modifiers::SHIFT));
    assert!(w.app.help);
    for keys in ["z or 4", "5", "s", "a", "k", "p"] {
        assert!(w.sees(keys), "the help leaves out {keys}");
    }
    w.send(Message::Action(Action::Back));
    assert!(!w.app.help);

    w.send(key("f"));
    assert!(w.app.fullscreen);
    w.send(Message::Action(Action::Back));
    assert!(!w.app.fullscreen, "Esc leaves fullscreen");
}

#[test]
fn p_plays_the_newest_recording_of_any_camera_whatever_the_history_shows() {
    let mut w = world(1);
    let old = w.camera("old", "Old");
    let _new = w.camera("new", "New");
    let all = |w: &World| {
        w.rt.block_on(w.engine.history(&Default::default()))
            .unwrap()
            .recordings
    };
    let wait =
        |w: &World, what: &str, f: &dyn Fn(&[cctv_engine::catalog::RecordingRow]) -> bool| {
            let start = std::time::Instant::now();
            while !f(&all(w)) {
                assert!(start.elapsed() < Duration::from_secs(30), "no {what}");
                std::thread::sleep(Duration::from_millis(100));
            }
        };
    wait(&w, "recording of old", &|rows| {
        rows.iter().any(|r| r.camera_id == "old")
    });
    // The old camera stops; the new one goes on recording after it.
    drop(old);
    w.until("old offline", |a| {
        a.camera("old")
            .is_some_and(|c| c.state == cctv_engine::catalog::CameraState::Offline)
    });
    let done = |r: &&cctv_engine::catalog::RecordingRow| {
        r.status != cctv_engine::catalog::RecordingStatus::Recording
    };
    wait(&w, "newer recording of new", &|rows| {
        let old_rows = || rows.iter().filter(|r| r.camera_id == "old");
        let old_end = old_rows().map(|r| r.end_us).max().unwrap_or(i64::MAX);
        old_rows().all(|r| done(&r))
            && rows
                .iter()
                .filter(done)
                .any(|r| r.camera_id == "new" && r.start_us > old_end)
    });
    // The history shows only the old camera.
    w.send(Message::Show(Screen::History));
    w.send(Message::History(cctv_window::history::Msg::Camera(
        "old".into(),
    )));
    w.until("old's recordings", |a| {
        !a.history.recordings.is_empty()
            && a.history.recordings.iter().all(|r| r.camera_id == "old")
    });
    w.send(key("p"));
    w.until("playing", |a| {
        a.screen == Screen::Playback && a.playback.is_some()
    });
    assert_eq!(w.app.playback.as_ref().unwrap().cameras(), ["new"]);
}

#[test]
fn the_focus_view_shows_the_quality_and_rate_the_agent_reports() {
    let mut w = world(600);
    let creds = w.rt.block_on(enroll(&w.engine, "gate", "Gate"));
    let _agent = start_agent(
        &creds,
        &[
            "--source",
            "test-pattern:320x240",
            "--quality",
            "100",
            "--fps",
            "5",
        ],
    );
    w.until("the agent's report", |a| {
        a.camera("gate").is_some_and(|c| c.encoding.is_some())
    });
    w.send(Message::Focus("gate".into()));
    assert!(w.sees("JPEG quality 100"), "the quality the agent runs at");
    assert_eq!(
        w.app.camera("gate").unwrap().encoding.unwrap().fps_milli,
        5000
    );
    // Asked for less, the agent reports what it does now.
    w.send(Message::Quality("gate".into(), -10));
    w.until("quality 90 reported", |a| {
        a.camera("gate")
            .and_then(|c| c.encoding)
            .is_some_and(|e| e.quality == 90)
    });
    assert!(w.sees("JPEG quality 90"));
    w.send(Message::Fps("gate".into(), 10));
    w.until("10 fps reported", |a| {
        a.camera("gate")
            .and_then(|c| c.encoding)
            .is_some_and(|e| e.fps_milli == 10_000)
    });
}

#[test]
fn the_disk_gauge_counts_the_recording_being_written() {
    let mut w = world(600);
    let _cam = w.camera("yard", "Yard");
    w.until("frames recorded", |a| {
        a.recording_count() == 1
            && a.engine
                .camera("yard")
                .is_some_and(|c| c.frames_received >= 10)
    });
    let on_disk: u64 = walk(&w.dir.path().join("recordings"));
    assert!(on_disk > 0);
    w.app.disk = None;
    w.send(Message::Disk);
    w.until("the gauge", |a| a.disk.is_some());
    let (shown, _) = w.app.disk.unwrap();
    assert!(
        shown as u64 >= on_disk,
        "the gauge shows {shown} bytes with {on_disk} on disk"
    );
}

/// Bytes of the files under `dir`.
fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn auto_dispatch_stays_off_without_a_target_and_says_why() {
    let mut w = world(600);
    w.send(key("a"));
    assert!(!w.engine.auto_dispatch());
    let (text, error, _) = w.app.notice.clone().expect("a notice");
    assert!(error);
    assert!(text.contains("no dispatch target"), "{text}");
}

#[test]
fn every_screen_keeps_its_controls_on_screen_from_800x600_to_4k() {
    let mut w = world(2);
    let _a = w.camera(
        "front-door",
        "Front door camera with a name too long for a tile",
    );
    let _b = w.camera("yard", "Yard");
    w.until("recording", |a| a.recording_count() == 2);
    let agents = format!("agents: {}", w.engine.local_addr());
    for (width, height) in [(800.0, 600.0), (3840.0, 2160.0)] {
        w.resize(width, height);
        let check = |w: &mut World, screen: &str, texts: &[&str]| {
            for t in texts.iter().copied().chain([agents.as_str()]) {
                assert!(
                    w.shows_whole(t),
                    "{screen} at {width}x{height}: {t:?} is cut or off screen"
                );
            }
        };
        w.send(Message::Show(Screen::Wall));
        check(&mut w, "wall", &["Yard", "Help (h)"]);
        w.send(Message::Focus("front-door".into()));
        check(
            &mut w,
            "focus",
            &["Back to the wall (Esc)", "Stop recording (Space)"],
        );
        w.send(Message::Show(Screen::History));
        w.until("history", |a| {
            a.history.loaded && !a.history.recordings.is_empty()
        });
        check(
            &mut w,
            "history",
            &["Filter", "Export selected (0)", "Older", "Status"],
        );
        w.send(key("p"));
        w.until("playing", |a| a.screen == Screen::Playback);
        check(
            &mut w,
            "playback",
            &[
                "Back to history (Esc)",
                "8x",
                "Step back",
                "+10 s",
                "Export clip (x)",
                "Out (o)",
                "event ]",
                "24 h",
            ],
        );
        w.send(Message::Show(Screen::Settings));
        check(&mut w, "settings", &["Apply", "Keep (days)"]);
        w.send(Message::Show(Screen::Evidence));
        w.send(Message::Show(Screen::Panoramas));
        check(&mut w, "panoramas", &["Help (h)"]);
    }
}

#[test]
fn a_clip_of_the_from_to_range_is_exported_from_the_history() {
    let mut w = world(1);
    let _cam = w.camera("yard", "Yard");
    w.until_within(Duration::from_secs(30), "a few seconds recorded", |a| {
        a.engine
            .camera("yard")
            .is_some_and(|c| c.frames_received >= 45)
    });
    // Two whole seconds that have been recorded, and whose recordings closed.
    let now = cctv_engine::time::now_us();
    let (from, to) = (now - 3_500_000, now - 1_500_000);
    w.send(Message::Show(Screen::History));
    w.send(Message::History(history::Msg::From(local(from))));
    w.send(Message::History(history::Msg::To(local(to))));
    w.ui(|ui| ui.click("Export From-To as a clip").map(|_| ()))
        .unwrap();
    w.until_notice("export written");
    let export = w.rt.block_on(w.engine.exports(10)).unwrap().remove(0);
    assert_eq!(export.files, 1, "one clip for the one camera");
    assert!(export.path.contains("_clip"), "{}", export.path);
    let report = w.rt.block_on(w.engine.verify_export(&export)).unwrap();
    assert!(report.intact(), "{:?}", report.findings);
}

#[test]
fn the_focused_picture_zooms_with_the_wheel() {
    let mut w = world(600);
    let creds = w.rt.block_on(enroll(&w.engine, "gate", "Gate"));
    let _agent = start_agent(&creds, &["--source", "test-pattern:640x360", "--fps", "5"]);
    w.until("a picture", |a| a.tiles.contains_key("gate"));
    w.send(Message::Focus("gate".into()));
    let hash = w.dir.path().join("focus");
    let (before, after) = w.ui(|ui| {
        let theme = iced::Theme::Dark;
        let before = ui.snapshot(&theme).unwrap().matches_hash(&hash).unwrap();
        // Over the middle of the picture, three notches in.
        ui.point_at(iced::Point::new(400.0, 400.0));
        for _ in 0..3 {
            ui.simulate([iced::Event::Mouse(iced::mouse::Event::WheelScrolled {
                delta: iced::mouse::ScrollDelta::Lines { x: 0.0, y: 1.0 },
            })]);
        }
        let after = ui.snapshot(&theme).unwrap().matches_hash(&hash).unwrap();
        (before, after)
    });
    assert!(before, "the first picture is the reference");
    assert!(!after, "the picture did not change when zoomed");
}

#[test]
fn tiles_keep_their_places_and_a_reordered_wall_is_kept() {
    let mut w = world(600);
    let b = w.camera("b", "Bravo");
    let _a = w.camera("a", "Alpha");
    let _c = w.camera("c", "Charlie");
    w.until("three live", |a| a.live_count() == 3);
    let order =
        |w: &World| -> Vec<String> { w.app.wall_order().iter().map(|c| c.id.clone()).collect() };
    assert_eq!(order(&w), ["a", "b", "c"]);
    // Bravo goes offline: it keeps its place.
    drop(b);
    w.until("bravo offline", |a| {
        a.camera("b")
            .is_some_and(|c| c.state == cctv_engine::catalog::CameraState::Offline)
    });
    assert_eq!(order(&w), ["a", "b", "c"]);
    // A new camera takes the next free place, whatever its name.
    let _aa = w.camera("aa", "Aardvark");
    w.until("four", |a| a.cameras.len() == 4);
    assert_eq!(order(&w), ["a", "b", "c", "aa"]);
    // The operator moves Charlie first; the layout is kept for the next window.
    w.send(Message::MoveTile("c".into(), -2));
    assert_eq!(order(&w), ["c", "a", "b", "aa"]);
    w.until_notice("wall layout saved");
    let (app, first) = cctv_window::app::App::new(w.engine.clone(), w.rt.handle());
    w.app = app;
    w.perform(first);
    w.until("the saved layout", |a| {
        a.places.first().is_some_and(|p| p == "c")
    });
    assert_eq!(order(&w), ["c", "a", "b", "aa"]);
}

#[test]
fn a_camera_added_in_settings_connects_with_what_it_shows_and_revoked_is_cut_off() {
    use settings::Msg;
    let mut w = world(600);
    w.send(Message::Show(Screen::Settings));
    w.send(Message::Settings(Msg::NewId("porch".into())));
    w.send(Message::Settings(Msg::NewName("Porch".into())));
    w.ui(|ui| ui.click("Add and show its settings").map(|_| ()))
        .unwrap();
    w.until("the agent's settings", |a| a.settings.enrolled.is_some());
    let shown = w.app.settings.enrolled.clone().unwrap();
    // What is shown is the agent's config file, as an installer pastes it.
    #[derive(serde::Deserialize)]
    struct Agent {
        panel: String,
        camera_id: String,
        name: String,
        secret: String,
        panel_fingerprint: String,
    }
    let a: Agent = toml::from_str(&shown).expect("valid TOML");
    assert_eq!((a.camera_id.as_str(), a.name.as_str()), ("porch", "Porch"));
    assert_eq!(a.panel, w.engine.local_addr().to_string());
    let creds = Creds {
        addr: w.engine.local_addr(),
        id: a.camera_id,
        secret: cctv_protocol::auth::Secret::parse(&a.secret).unwrap(),
        fingerprint: Some(cctv_protocol::tls::Fingerprint::parse(&a.panel_fingerprint).unwrap()),
    };
    let _cam = w.rt.block_on(FakeCamera::start(&creds, 10));
    w.until("porch live", |a| {
        a.camera("porch")
            .is_some_and(|c| c.state == cctv_engine::catalog::CameraState::Live)
    });

    // Revoke asks first, then cuts the camera off.
    w.ui(|ui| ui.click("Revoke…").map(|_| ())).unwrap();
    assert_eq!(w.app.settings.revoking.as_deref(), Some("porch"));
    w.ui(|ui| ui.click("Revoke").map(|_| ())).unwrap();
    w.until("porch cut off", |a| {
        a.camera("porch")
            .is_some_and(|c| c.state == cctv_engine::catalog::CameraState::Offline)
    });

    // Pairing: a one-time code and the command that uses it.
    w.send(Message::Settings(Msg::NewId("gate".into())));
    w.ui(|ui| ui.click("Add with a pairing code").map(|_| ()))
        .unwrap();
    w.until("a pairing code", |a| {
        a.settings
            .enrolled
            .as_ref()
            .is_some_and(|t| t.contains("camera-agent pair ") && t.contains("Camera gate"))
    });
}

#[test]
fn the_history_stays_current_and_its_dates_bound_the_events_too() {
    let mut w = world(600);
    let _cam = w.camera("yard", "Yard");
    w.until("recording", |a| a.recording_count() == 1);
    w.send(Message::Show(Screen::History));
    w.until("the row in progress", |a| !a.history.recordings.is_empty());
    let first = w.app.history.recordings[0].clone();
    // Rows in progress grow on screen, well before the catalog's own
    // update (every 10 s).
    w.until_within(Duration::from_secs(8), "the row grown", |a| {
        a.history
            .recordings
            .iter()
            .any(|r| r.id == first.id && r.bytes > first.bytes && r.end_us > first.end_us)
    });

    // Events outside the dates are not listed, even where a recording
    // overlaps the end of the range.
    let now = cctv_engine::time::now_us();
    let catalog = w.engine.catalog().clone();
    w.rt.block_on(async {
        for at in [now - 3_600_000_000, now - 500_000] {
            catalog
                .add_event(
                    "yard",
                    cctv_engine::catalog::EventKind::Stalled,
                    at,
                    "outside",
                )
                .await
                .unwrap();
        }
    });
    w.send(Message::History(history::Msg::From(local(
        now - 600_000_000,
    ))));
    w.send(Message::History(history::Msg::To(local(now - 2_000_000))));
    w.send(Message::History(history::Msg::Apply));
    w.until("filtered", |a| {
        a.history.loaded && a.history.query.to_us.is_some()
    });
    let outside: Vec<_> = w
        .app
        .history
        .events
        .iter()
        .filter(|e| e.detail == "outside")
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
}
