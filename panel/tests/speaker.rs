//! The window's speaker on a real sound device: ALSA plays into a pipe
//! this test reads in real time. ALSA finds its devices in
//! `$HOME/.asoundrc`, so the window runs in a process of its own (this
//! test binary again) whose HOME holds one.

mod support;
mod ui;

use std::io::Read;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cctv_window::app::{Message, Screen};
use cctv_window::keys::Action;
use cctv_window::playback::{Msg, Speed};
use support::*;

/// Loudest sample of each 20 ms the device played, as it played it.
type Heard = Arc<Mutex<Vec<(Instant, i16)>>>;

/// Reads what the speaker plays (16-bit mono at 48 kHz) at the pace a
/// sound card would.
fn listen_to(fifo: std::path::PathBuf) -> Heard {
    let heard: Heard = Arc::default();
    let h = heard.clone();
    std::thread::spawn(move || {
        let Ok(mut pipe) = std::fs::File::open(&fifo) else {
            return;
        };
        let start = Instant::now();
        let mut buf = [0u8; 1920];
        for n in 1u32.. {
            if pipe.read_exact(&mut buf).is_err() {
                return;
            }
            let peak = buf
                .chunks_exact(2)
                .map(|s| i16::from_le_bytes([s[0], s[1]]).saturating_abs())
                .max()
                .unwrap_or(0);
            h.lock().unwrap().push((Instant::now(), peak));
            if let Some(wait) = (Duration::from_millis(20) * n).checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    });
    heard
}

fn loud_since(heard: &Heard, since: Instant) -> bool {
    heard
        .lock()
        .unwrap()
        .iter()
        .any(|(t, peak)| *t >= since && *peak > 8000)
}

/// Runs the ignored test `name` of this binary in a process whose HOME
/// holds `asoundrc`; `SPEAKER_FIFO` names `fifo`.
fn in_a_process_of_its_own(name: &str, asoundrc: &str, home: &std::path::Path) {
    std::fs::write(home.join(".asoundrc"), asoundrc).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--ignored", "--nocapture"])
        .env("HOME", home)
        .env("SPEAKER_FIFO", home.join("speaker.fifo"))
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.contains("1 passed"), "{said}");
}

#[test]
fn the_window_plays_a_cameras_sound_live_and_a_recordings_at_1x_only() {
    let home = tempfile::tempdir().unwrap();
    let fifo = home.path().join("speaker.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let asoundrc = format!(
        "pcm.!default {{\n  type plug\n  slave {{ pcm \"speaker\"; format S16_LE; channels 1; rate 48000 }}\n}}\n\
         pcm.speaker {{\n  type file\n  slave.pcm \"null\"\n  file \"{}\"\n  format \"raw\"\n}}\n",
        fifo.display()
    );
    in_a_process_of_its_own("a_window_with_a_speaker", &asoundrc, home.path());
}

#[test]
fn a_window_without_a_sound_device_says_so_and_works_on() {
    let home = tempfile::tempdir().unwrap();
    // A default device no machine has.
    let asoundrc = "pcm.!default {\n  type hw\n  card 99\n}\n";
    in_a_process_of_its_own("a_window_without_a_speaker", asoundrc, home.path());
}

/// A window, and a camera "hall" whose agent sends the test tone.
fn hall_beeping() -> (ui::World, Proc) {
    let mut w = ui::world(600);
    let creds = w.rt.block_on(enroll(&w.engine, "hall", "Hall"));
    let agent = start_agent(
        &creds,
        &[
            "--source",
            "test-pattern:320x240",
            "--fps",
            "10",
            "--audio",
            "tone",
            "--no-analysis",
        ],
    );
    w.until("hall sending sound", |a| {
        a.camera("hall").is_some_and(|c| c.audio)
    });
    (w, agent)
}

/// The window's half of the test above, with no sound device.
#[test]
#[ignore = "run by a_window_without_a_sound_device_says_so_and_works_on"]
fn a_window_without_a_speaker() {
    let (mut w, _agent) = hall_beeping();
    w.send(Message::Focus("hall".into()));
    w.send(Message::Listen("hall".into()));
    assert!(w.sees_prefix("No sound here:"), "the focus view says why");
    assert!(
        w.app
            .notice
            .as_ref()
            .is_some_and(|(n, _, _)| n.starts_with("no sound:"))
    );
    // Everything else goes on: pictures, recording, the controls.
    let seq = w.app.tiles.get("hall").map(|t| t.seq);
    w.until("new pictures", |a| a.tiles.get("hall").map(|t| t.seq) > seq);
    assert!(w.sees("Stop recording (Space)"));
    w.send(Message::ToggleRecord("hall".into()));
    w.until("recording stopped", |a| {
        a.camera("hall").is_some_and(|c| !c.recording)
    });
    w.send(Message::Action(Action::PlayNewest));
    w.until("playback", |a| a.screen == Screen::Playback);
    for _ in 0..20 {
        w.pump();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(w.app.playback.is_some());
}

/// The window's half of the test above, in its own process.
#[test]
#[ignore = "run by the_window_plays_a_cameras_sound_live_and_a_recordings_at_1x_only"]
fn a_window_with_a_speaker() {
    let heard = listen_to(
        std::env::var_os("SPEAKER_FIFO")
            .expect("SPEAKER_FIFO")
            .into(),
    );
    let (mut w, _agent) = hall_beeping();
    // The tile's level meter, then the focus view's toggle, muted.
    assert!(w.sees("♪"), "a level meter on the tile");
    w.send(Message::Focus("hall".into()));
    assert!(w.sees("Listen (l)"));
    assert!(heard.lock().unwrap().is_empty(), "silent until asked");

    let asked = Instant::now();
    w.send(Message::Listen("hall".into()));
    assert!(w.sees("Mute (l)"), "the toggle shows it plays");
    w.until_within(Duration::from_secs(5), "the tone's beep heard", |_| {
        loud_since(&heard, asked)
    });

    w.send(Message::Action(Action::Listen));
    let muted = Instant::now() + Duration::from_millis(600);
    std::thread::sleep(Duration::from_millis(2600));
    w.pump();
    assert!(!loud_since(&heard, muted), "muted, yet the beeps go on");
    assert!(w.sees("Listen (l)"));

    // Recorded sound: playback at 1x plays it, at 2x it is muted.
    w.send(Message::ToggleRecord("hall".into()));
    w.until("the recording closed", |a| {
        a.camera("hall").is_some_and(|c| !c.recording)
    });
    w.send(Message::Action(Action::PlayNewest));
    w.until("playback", |a| a.screen == Screen::Playback);
    let played = Instant::now();
    w.until_within(Duration::from_secs(8), "the recording's beeps", |_| {
        loud_since(&heard, played)
    });
    w.send(Message::Player(Msg::Speed(Speed(2.0))));
    let fast = Instant::now() + Duration::from_millis(600);
    let until = Instant::now() + Duration::from_millis(2600);
    while Instant::now() < until {
        w.pump();
        std::thread::sleep(Duration::from_millis(15));
    }
    assert!(!loud_since(&heard, fast), "2x plays no sound");
}
