//! Playback by time, driven as an investigator would in iced's simulator
//! (see `ui`) against a real engine: across recording boundaries without a
//! stop, two cameras on one clock, a gap that says why, and a clip marked
//! on the timeline.

mod support;
mod ui;

use std::time::Duration;

use cctv_window::app::{Message, Screen};
use cctv_window::history;
use cctv_window::playback::Msg;
use support::*;
use ui::*;

fn key(c: &str) -> Message {
    Message::Key(
        iced::keyboard::Key::Character(c.into()),
        iced::keyboard::Modifiers::default(),
    )
}

#[test]
fn two_cameras_play_in_sync_across_recordings_and_gaps_and_a_marked_clip_exports() {
    // One-second recordings: a few seconds of footage crosses several.
    let mut w = world(1);
    let creds = w.rt.block_on(enroll(&w.engine, "door", "Door"));
    let door = w.rt.block_on(FakeCamera::start(&creds, 10));
    let _yard = w.camera("yard", "Yard");
    w.until_within(Duration::from_secs(30), "footage", |a| {
        a.engine
            .camera("door")
            .is_some_and(|c| c.frames_received >= 40)
    });
    // The door goes offline for a while, then comes back.
    drop(door);
    w.until("door offline", |a| {
        a.camera("door")
            .is_some_and(|c| c.state == cctv_engine::catalog::CameraState::Offline)
    });
    std::thread::sleep(Duration::from_secs(4));
    let _door = w.rt.block_on(FakeCamera::start(&creds, 10));
    w.until_within(Duration::from_secs(30), "door back", |a| {
        a.engine
            .camera("door")
            .is_some_and(|c| c.frames_received >= 20)
    });

    // Play the yard's oldest recording, then add the door beside it.
    w.send(Message::Show(Screen::History));
    w.until("history", |a| {
        a.history.loaded && a.history.recordings.len() >= 6
    });
    let oldest = |cam: &str, a: &cctv_window::app::App| {
        a.history
            .recordings
            .iter()
            .filter(|r| r.camera_id == cam)
            .min_by_key(|r| r.start_us)
            .cloned()
    };
    let first = oldest("yard", &w.app).expect("a yard recording");
    w.send(Message::History(history::Msg::Play(first.clone())));
    w.send(Message::Player(Msg::Camera("door".into(), true)));
    assert!(w.sees("Door"));
    w.until("both pictures", |a| {
        a.playback
            .as_ref()
            .is_some_and(|p| p.tracks.len() == 2 && p.tracks.iter().all(|k| k.image.is_some()))
    });

    // Across recording boundaries without a stop: the recording shown
    // changes while it plays, and capture times only go forward.
    let mut seen: Vec<(i64, i64)> = Vec::new();
    let start = std::time::Instant::now();
    while seen.len() < 3 {
        w.pump();
        let p = w.app.playback.as_ref().unwrap();
        assert!(p.clock.playing, "playback stopped");
        if let Some((rec, _, at)) = p.tracks[0].shown {
            if let Some((_, t)) = seen.last() {
                assert!(at >= *t, "went back in time");
            }
            match seen.last_mut() {
                Some((r, t)) if *r == rec => *t = at,
                _ => seen.push((rec, at)),
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "only {seen:?}");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Both cameras follow one clock: their pictures are within a frame or
    // two of each other and of the clock.
    w.send(Message::Player(Msg::PlayPause));
    w.until("both at the clock", |a| {
        let p = a.playback.as_ref().unwrap();
        let t = p.at(std::time::Instant::now());
        p.tracks
            .iter()
            .all(|k| k.shown.is_some_and(|(_, _, at)| (t - at).abs() <= 250_000))
    });

    // A step and ±10 s act on both.
    let clock = |w: &World| {
        w.app
            .playback
            .as_ref()
            .unwrap()
            .at(std::time::Instant::now())
    };
    let frame = w.app.playback.as_ref().unwrap().tracks[0].shown.unwrap().2;
    w.send(key("."));
    let next = clock(&w);
    assert!(next > frame && next - frame < 300_000, "one frame on");
    w.until("both at the next frame", |a| {
        let p = a.playback.as_ref().unwrap();
        p.tracks[0].shown.is_some_and(|(_, _, at)| at == next)
            && p.tracks[1]
                .shown
                .is_some_and(|(_, _, at)| (at - next).abs() <= 250_000)
    });
    w.send(key(","));
    assert_eq!(clock(&w), frame, "and back");
    w.send(Message::Key(
        iced::keyboard::Key::Named(iced::keyboard::key::Named::ArrowRight),
        iced::keyboard::Modifiers::default(),
    ));
    assert_eq!(clock(&w), frame + 10_000_000, "10 s on");

    // In the door's gap: its picture says why; the yard's shows.
    let gap = w
        .app
        .playback
        .as_ref()
        .unwrap()
        .tracks
        .iter()
        .find(|k| k.camera == "door")
        .unwrap()
        .gaps()
        .into_iter()
        .find(|g| g.from_us > first.start_us && g.to_us - g.from_us > 2_000_000)
        .expect("the door's gap");
    let middle = (gap.from_us + gap.to_us) / 2;
    w.send(Message::Player(Msg::Seek(middle as f64)));
    assert!(w.sees("No recording: camera offline"), "{gap:?}");

    // Mark a clip over the gap and export it: one file per camera.
    w.send(Message::Player(Msg::Seek((gap.from_us - 1_500_000) as f64)));
    w.send(key("i"));
    w.send(Message::Player(Msg::Seek((gap.to_us + 1_500_000) as f64)));
    w.send(key("o"));
    w.ui(|ui| ui.click("Export clip (x)").map(|_| ())).unwrap();
    w.until_notice("export written");
    let export = w.rt.block_on(w.engine.exports(1)).unwrap().remove(0);
    assert_eq!(export.files, 2, "a clip per camera");
    assert!(
        w.rt.block_on(w.engine.verify_export(&export))
            .unwrap()
            .intact()
    );
}

/// Several recording servers: a recording server a holds plays in server
/// b's window. b's history lists it with its own, and playing it fetches
/// the file from a over their link.
#[test]
fn a_recording_another_server_holds_plays_in_this_window() {
    let pg = support::postgres::Postgres::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = |dir: &std::path::Path, id: &str| {
        let mut cfg = config(dir);
        cfg.database = Some(pg.url());
        cfg.server_id = id.into();
        cfg.segment_secs = 1;
        cfg
    };
    let dir_a = tempfile::tempdir().unwrap();
    let a = rt.block_on(start_engine(server(dir_a.path(), "a")));
    let creds = rt.block_on(enroll(&a, "door", "Door"));
    let _door = rt.block_on(FakeCamera::start(&creds, 10));
    let catalog = rt
        .block_on(cctv_engine::catalog::Catalog::open_postgres(&pg.url()))
        .unwrap();
    rt.block_on(wait_for(
        Duration::from_secs(30),
        "a recording on a",
        async || {
            let rows = catalog.recordings(&Default::default()).await.unwrap();
            rows.iter()
                .any(|r| r.status == cctv_engine::catalog::RecordingStatus::Complete)
                .then_some(())
        },
    ));
    let dir_b = tempfile::tempdir().unwrap();
    let b = std::sync::Arc::new(rt.block_on(start_engine(server(dir_b.path(), "b"))));
    let mut w = World::new(rt, b, dir_b);

    w.send(Message::Show(Screen::History));
    let on_a = |a: &cctv_window::app::App| {
        a.history
            .recordings
            .iter()
            .find(|r| {
                r.server_id == "a" && r.status == cctv_engine::catalog::RecordingStatus::Complete
            })
            .cloned()
    };
    w.until("a's recording in b's history", |a| {
        a.history.loaded && on_a(a).is_some()
    });
    let held = on_a(&w.app).unwrap();
    w.send(Message::History(history::Msg::Play(held.clone())));
    w.until_within(Duration::from_secs(30), "a's picture in b's window", |a| {
        a.playback
            .as_ref()
            .is_some_and(|p| p.tracks.len() == 1 && p.tracks[0].image.is_some())
    });
    let copy = w.dir.path().join("data/remote/a").join(&held.path);
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(dir_a.path().join("recordings").join(&held.path)).unwrap(),
        "b plays the file a holds"
    );
}
