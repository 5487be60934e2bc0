//! A camera's sound end to end: real agents (a file's soundtrack, the test
//! tone, a microphone through ALSA) into a real panel, measured in the
//! recordings with ffmpeg and ffprobe.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
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

/// A frame or a packet lost on the way (a busy machine) leaves a flash
/// without its beep, or a beep without its flash: no counterpart this
/// near. Anything nearer is the same second, and must be in step.
const SAME_SECOND_S: f64 = 0.5;

/// Checks one recording: every flash and its beep are within `SYNC_S`;
/// at most one second lost a flash or a beep on the way; both tracks
/// last as long. Returns the seconds with both.
fn assert_in_step(path: &Path) -> usize {
    let flashes = flashes(path);
    let streams = streams(path);
    assert_eq!(streams.len(), 2, "{streams:?}");
    let (video, audio) = (&streams[0], &streams[1]);
    assert_eq!((video.0.as_str(), audio.0.as_str()), ("mjpeg", "opus"));
    // Silence that lasts to the end of the sound ends there: no onset.
    let onsets: Vec<f64> = onsets(path)
        .into_iter()
        .filter(|o| *o < audio.2 - 0.05)
        .collect();
    // A beep cut by the start or the end of either track has no onset.
    let end = video.2.min(audio.2);
    let flashes: Vec<f64> = flashes
        .into_iter()
        .filter(|f| *f > 0.15 && *f < end - 0.15)
        .collect();
    let offsets: Vec<f64> = flashes.iter().map(|f| nearest(&onsets, *f)).collect();
    let paired: Vec<f64> = offsets
        .iter()
        .copied()
        .filter(|o| *o <= SAME_SECOND_S)
        .collect();
    let lone_beeps = onsets
        .iter()
        .filter(|o| nearest(&flashes, **o) > SAME_SECOND_S && **o > 0.15 && **o < end - 0.15)
        .count();
    let worst = paired.iter().copied().fold(0.0, f64::max);
    eprintln!(
        "{}: {} flashes with their beep, worst {:.0} ms apart; {} flashes and {lone_beeps} \
         beeps alone; video {:.2} s, sound {:.2} s",
        path.display(),
        paired.len(),
        worst * 1000.0,
        flashes.len() - paired.len(),
        video.2,
        audio.2
    );
    assert!(
        worst <= SYNC_S,
        "a beep {worst:.3} s from its flash: {flashes:?} {onsets:?}"
    );
    assert!(
        flashes.len() - paired.len() + lone_beeps <= 1,
        "seconds lost: {flashes:?} {onsets:?}"
    );
    // The sound ends with the last packet the agent sent before it
    // stopped, the pictures a frame's time after the last frame.
    assert!(
        (video.2 - audio.2).abs() <= 0.2,
        "video lasts {:.3} s, sound {:.3} s",
        video.2,
        audio.2
    );
    paired.len()
}

/// Waits until `id` is live and sends sound.
async fn sending_sound(engine: &cctv_engine::Engine, id: &str) {
    wait_for(
        Duration::from_secs(30),
        "a camera sending sound",
        async || {
            engine
                .cameras()
                .iter()
                .any(|c| c.id == id && c.audio)
                .then_some(())
        },
    )
    .await;
}

/// The next packet of `id`'s sound, within 10 s.
async fn next_packet(engine: &cctv_engine::Engine, id: &str) -> Arc<cctv_protocol::AudioPacket> {
    let mut sound = engine.listen(id).unwrap();
    tokio::time::timeout(Duration::from_secs(10), sound.recv())
        .await
        .expect("sound within 10 s")
        .unwrap()
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
    sending_sound(&engine, "door").await;
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

    // A clip of 4 s keeps the sound in step; it verifies, and imported
    // into another panel's catalog it still plays both tracks.
    let from = rows[0].start_us + 3_000_000;
    let export = engine
        .export_range(
            &["door".to_string()],
            from,
            from + 4_000_000,
            None,
            Default::default(),
        )
        .await
        .unwrap();
    let zip = dir.path().join("data").join(&export.path);
    let zip = if zip.exists() {
        zip
    } else {
        std::path::PathBuf::from(&export.path)
    };
    let report = cctv_engine::evidence::verify::verify(&zip).unwrap();
    assert!(report.intact(), "{:?}", report.findings);
    let archive = tempfile::tempdir().unwrap();
    let catalog = cctv_engine::catalog::Catalog::open(&archive.path().join("panel.db"))
        .await
        .unwrap();
    let recordings = archive.path().join("recordings");
    let imported = cctv_engine::evidence::import::import(&catalog, &recordings, &zip)
        .await
        .unwrap();
    assert_eq!(imported, 1);
    let clip = catalog.recordings(&Default::default()).await.unwrap();
    let clip = recordings.join(&clip[0].path);
    assert!(assert_in_step(&clip) >= 3);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panning_clips_own_soundtrack_is_recorded() {
    let Some(data) = testdata() else {
        return;
    };
    // 44.1 kHz stereo AAC: mixed down and resampled to 48 kHz mono.
    let clip = data.join("video/pan_sunrise_640x360.mp4");
    let dir = tempfile::tempdir().unwrap();
    let engine = start_engine(config(dir.path())).await;
    let creds = enroll(&engine, "pan", "").await;
    let source = format!("file:{}", clip.display());
    let agent = start_agent(
        &creds,
        &[
            "--source",
            &source,
            "--audio",
            "file",
            "--no-analysis",
            "--fps",
            "10",
        ],
    );
    sending_sound(&engine, "pan").await;
    let heard = next_packet(&engine, "pan").await;
    assert_eq!(heard.samples, 960);
    tokio::time::sleep(Duration::from_secs(6)).await;
    agent.signal("TERM");
    let rows = finished_recordings(&engine, "pan").await;
    let path = dir.path().join("recordings").join(&rows[0].path);
    let streams = streams(&path);
    assert_eq!(streams.len(), 2, "{streams:?}");
    let (video, audio) = (&streams[0], &streams[1]);
    assert_eq!(audio.0, "opus");
    assert!(video.2 >= 5.0, "{streams:?}");
    assert!((video.2 - audio.2).abs() <= 0.2, "{streams:?}");
    // 20 ms packets, every one there.
    assert!(
        (audio.1 as f64 - audio.2 / 0.02).abs() <= 2.0,
        "{streams:?}"
    );
    // The clip's music, not silence.
    let volume = mean_volume_db(&path);
    assert!(volume > -40.0, "mean volume {volume} dB");
    assert_eq!(decode_errors(&path), "");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_with_sound_survives_kill_9_and_is_repaired_with_both_tracks() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let data = dir.path().join("data");
    let creds = enroll_cli(&data, addr, "hall");
    let mut panel = panel_serve(dir.path(), port, "info");
    let _agent = start_agent(
        &creds,
        &[
            "--source",
            "test-pattern:320x240",
            "--fps",
            "10",
            "--audio",
            "tone",
        ],
    );
    let db = data.join("panel.db");
    wait_for(Duration::from_secs(30), "the catalog", async || {
        db.exists().then_some(())
    })
    .await;
    let catalog = cctv_engine::catalog::Catalog::open(&db).await.unwrap();
    let rows = async || {
        catalog
            .recordings(&RecordingFilter::default())
            .await
            .unwrap()
    };
    let open = wait_for(
        Duration::from_secs(30),
        "a recording 4 s long",
        async || {
            rows()
                .await
                .into_iter()
                .find(|r| r.status == RecordingStatus::Recording && r.frames >= 1)
        },
    )
    .await;
    let file = dir.path().join("recordings").join(&open.path);
    wait_for(Duration::from_secs(30), "4 s of recording", async || {
        (std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) > 0
            && cctv_mkv::scan::scan(&file).is_ok_and(|s| s.frames.len() >= 40))
        .then_some(())
    })
    .await;
    panel.signal("KILL");
    let _ = panel.0.wait();
    let _panel = panel_serve(dir.path(), port, "info");
    let repaired = wait_for(Duration::from_secs(20), "repair at start", async || {
        rows()
            .await
            .into_iter()
            .find(|r| r.path == open.path && r.status == RecordingStatus::Interrupted)
    })
    .await;
    let streams = streams(&file);
    assert_eq!(streams.len(), 2, "{streams:?}");
    let (video, audio) = (&streams[0], &streams[1]);
    assert_eq!((video.0.as_str(), audio.0.as_str()), ("mjpeg", "opus"));
    assert_eq!(video.1 as i64, repaired.frames);
    assert!(audio.1 >= 150, "{streams:?}");
    // Sound waits in the recorder for the frame after it, so a kill costs
    // the sound of the last moments (more on a busy machine), not more.
    assert!((video.2 - audio.2).abs() <= 0.6, "{streams:?}");
    assert_eq!(decode_errors(&file), "");
    // The tone's beeps are heard in the repaired file.
    assert!(onsets(&file).len() >= 3, "{:?}", onsets(&file));
}

/// A microphone ALSA reads from a named pipe the test writes to, in real
/// time (48 kHz, 16-bit, mono): it can go quiet in the middle of a stream,
/// as a USB microphone pulled out does.
struct FakeMic {
    home: tempfile::TempDir,
    /// 0: sound flows, 1: the microphone stalls, 2: gone for good.
    state: Arc<AtomicU8>,
}

impl FakeMic {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let fifo = home.path().join("mic.fifo");
        assert!(
            Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        std::fs::write(
            home.path().join(".asoundrc"),
            format!(
                "pcm.fakemic {{\n  type plug\n  slave {{ pcm \"fakemicraw\"; format S16_LE; channels 1; rate 48000 }}\n}}\n\
                 pcm.fakemicraw {{\n  type file\n  slave.pcm \"null\"\n  file \"/dev/null\"\n  infile \"{}\"\n  format \"raw\"\n}}\n",
                fifo.display()
            ),
        )
        .unwrap();
        let state = Arc::new(AtomicU8::new(0));
        let s = state.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while s.load(Ordering::Acquire) != 2 {
                // Blocks until the agent opens the microphone.
                let Ok(mut pipe) = std::fs::OpenOptions::new().write(true).open(&fifo) else {
                    return;
                };
                let start = Instant::now();
                let mut sent = 0u64;
                loop {
                    match s.load(Ordering::Acquire) {
                        2 => return,
                        1 => {
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                        _ => {}
                    }
                    let pcm: Vec<u8> = (0..480)
                        .flat_map(|i| {
                            let t = (n + i) as f64 / 48_000.0;
                            (((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16)
                                .to_le_bytes()
                        })
                        .collect();
                    if pipe.write_all(&pcm).is_err() {
                        break; // the agent closed it: wait for it to open it again
                    }
                    n += 480;
                    sent += 480;
                    let due = Duration::from_secs_f64(sent as f64 / 48_000.0);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
            }
        });
        Self { home, state }
    }
}

impl Drop for FakeMic {
    fn drop(&mut self) {
        self.state.store(2, Ordering::Release);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microphone_that_stops_is_reported_and_the_pictures_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start_engine(config(dir.path())).await;
    let creds = enroll(&engine, "porch", "").await;
    let mic = FakeMic::new();
    let mut child = agent_command()
        .args(creds.agent_args())
        .args(["--source", "test-pattern:320x240", "--fps", "10"])
        .args(["--audio", "alsa:fakemic", "--no-analysis"])
        .env("HOME", mic.home.path())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let l = log.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            l.lock().unwrap().push_str(&line);
            l.lock().unwrap().push('\n');
        }
    });
    let _agent = Proc(child);
    let said = |what: &'static str| {
        let log = log.clone();
        async move || log.lock().unwrap().contains(what).then_some(())
    };

    wait_for(
        Duration::from_secs(30),
        "porch live with sound",
        async || {
            engine
                .cameras()
                .iter()
                .any(|c| c.id == "porch" && c.audio)
                .then_some(())
        },
    )
    .await;
    let first = next_packet(&engine, "porch").await;
    // 440 Hz at a quarter of full scale: about -12 dB.
    assert!((9..=15).contains(&first.peak_db), "{}", first.peak_db);
    assert!(engine.sound_level("porch").is_some());

    // The microphone goes quiet mid-stream.
    mic.state.store(1, Ordering::Release);
    wait_for(
        Duration::from_secs(10),
        "the agent says why",
        said("stopped delivering sound"),
    )
    .await;
    let log_now = log.lock().unwrap().clone();
    assert!(log_now.contains("the pictures go on"), "{log_now}");
    // The pictures do go on, seconds after.
    let before = engine
        .cameras()
        .iter()
        .find(|c| c.id == "porch")
        .unwrap()
        .frames_received;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = engine
        .cameras()
        .iter()
        .find(|c| c.id == "porch")
        .unwrap()
        .frames_received;
    assert!(after >= before + 20, "{before} then {after} frames");
    assert_eq!(engine.sound_level("porch"), None);

    // Sound again: the agent tries the microphone again by itself.
    mic.state.store(0, Ordering::Release);
    wait_for(
        Duration::from_secs(20),
        "the microphone back",
        said("the microphone is back"),
    )
    .await;
    next_packet(&engine, "porch").await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_asked_for_a_microphone_that_is_not_there_streams_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start_engine(config(dir.path())).await;
    let creds = enroll(&engine, "yard", "").await;
    let home = tempfile::tempdir().unwrap();
    let out = agent_command()
        .args(creds.agent_args())
        .args(["--source", "test-pattern:320x240", "--fps", "10"])
        .args(["--audio", "alsa:hw:7,0", "--no-analysis"])
        .env("HOME", home.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let agent = Proc(out);
    wait_for(
        Duration::from_secs(30),
        "yard sending pictures",
        async || {
            engine
                .cameras()
                .iter()
                .any(|c| c.id == "yard" && c.frames_received >= 20)
                .then_some(())
        },
    )
    .await;
    agent.signal("TERM");
    let mut agent = agent;
    let mut err = String::new();
    use std::io::Read;
    agent
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("no sound:") && err.contains("hw:7,0"), "{err}");
    assert!(err.contains("the pictures go on"), "{err}");
    engine.shutdown().await;
}
