//! Hostile peers against a panel that is recording a real camera: each is
//! dropped with a logged reason, and the camera never notices.

mod support;

use cctv_engine::catalog::EventKind;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use cctv_engine::Engine;
use cctv_engine::catalog::CameraState;
use support::*;

/// Sends `bytes`, then reports whether the panel closed the connection
/// within `limit`.
fn closed_after(addr: SocketAddr, bytes: &[u8], limit: Duration) -> bool {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(limit)).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a Reject, then the close
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_are_dropped_and_cameras_unaffected() {
    let log = Log::global();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_frame_bytes = 1 << 20;
    // Plain TCP, so the hostile bytes reach the protocol decoder itself
    // (over TLS they would fail the TLS handshake first; tests/siege.rs).
    cfg.plain_tcp = true;
    let engine = Engine::start(cfg).await.unwrap();
    let addr = engine.local_addr();
    let steady = enroll(&engine, "steady", "").await;
    let _agent = start_agent(
        &steady,
        &["--source", "test-pattern:320x240", "--fps", "10"],
    );
    wait_for(Duration::from_secs(30), "the camera live", async || {
        engine
            .camera("steady")
            .filter(|c| c.state == CameraState::Live && c.frames_received > 5)
    })
    .await;
    let before = engine.camera("steady").unwrap();
    let attack_started = std::time::Instant::now();

    let hostile = tokio::task::spawn_blocking(move || {
        // Random bytes.
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert!(
            closed_after(addr, &garbage, Duration::from_secs(3)),
            "garbage"
        );
        // A valid header claiming a 2 GiB frame.
        let mut huge = Vec::from(*b"CCTV");
        huge.extend_from_slice(&[1, 0x02, 0, 0]);
        huge.extend_from_slice(&0x8000_0000u32.to_be_bytes());
        assert!(
            closed_after(addr, &huge, Duration::from_secs(3)),
            "oversize claim"
        );
        // A connection that says nothing: dropped after the handshake timeout (1 s).
        assert!(
            closed_after(addr, b"", Duration::from_secs(3)),
            "silent peer"
        );
        // Half a header, then silence.
        assert!(
            closed_after(addr, b"CCTV\x01", Duration::from_secs(3)),
            "half a header"
        );
        // A frame before any Hello.
        let mut frame = Vec::from(*b"CCTV");
        frame.extend_from_slice(&[1, 0x02, 0, 0, 0, 0, 0, 20]);
        frame.extend_from_slice(&[0u8; 20]);
        assert!(
            closed_after(addr, &frame, Duration::from_secs(3)),
            "frame before hello"
        );
    });
    hostile.await.unwrap();

    // A hijack attempt without the secret: refused before anything else.
    let wrong = cctv_protocol::auth::Secret::from_bytes([1; 32]);
    let (_, answer) = handshake(&steady, &wrong).await;
    assert_eq!(
        answer,
        cctv_protocol::Message::Reject {
            reason: "wrong secret for this camera id".into()
        }
    );
    // Even with the secret, a second connection cannot take a live camera over.
    let (_, answer) = handshake(&steady, &steady.secret).await;
    match answer {
        cctv_protocol::Message::Reject { reason } => {
            assert!(reason.contains("already live"), "{reason}")
        }
        other => panic!("expected Reject, got {other:?}"),
    }
    // A frame header claiming 1 MiB before the camera proved who it is:
    // more than an unproven peer may send (8 KiB), though within the 1 MiB cap.
    let mut early = Vec::from(*b"CCTV");
    early.extend_from_slice(&[1, 0x02, 0, 0]);
    early.extend_from_slice(&(1u32 << 20).to_be_bytes());
    let refused_early =
        tokio::task::spawn_blocking(move || closed_after(addr, &early, Duration::from_secs(3)))
            .await
            .unwrap();
    assert!(refused_early, "a large frame before the handshake");

    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = engine.camera("steady").unwrap();
    assert_eq!(after.state, CameraState::Live);
    assert_eq!(after.name, before.name, "the impostor's name was not taken");
    assert_eq!(after.frames_missed, 0);
    // 10 fps all along (counters are published every 100 ms).
    let frames = after.frames_received - before.frames_received;
    let expected = (attack_started.elapsed().as_secs_f64() - 0.2) * 10.0 * 0.9;
    assert!(
        frames as f64 >= expected,
        "only {frames} frames while under attack, expected {expected:.0}"
    );
    // Refusals are counted, then written (within a second).
    let events = wait_for(
        Duration::from_secs(10),
        "the refusals in the history",
        async || {
            let events = engine
                .catalog()
                .events(Some("steady"), None, None, 20, 0)
                .await
                .unwrap();
            events
                .iter()
                .any(|e| e.kind == EventKind::Rejected)
                .then_some(events)
        },
    )
    .await;
    assert!(
        !events.iter().any(|e| e.kind == EventKind::Offline),
        "{events:?}"
    );
    let log = log.text();
    for reason in [
        "bad magic",
        "over the limit",
        "no handshake within",
        "Frame before Hello",
        "is already live from",
        "wrong secret for this camera id",
    ] {
        assert!(log.contains(reason), "no log line with {reason:?}:\n{log}");
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pictures_are_counted_and_skipped_not_shown_or_recorded() {
    use futures::SinkExt;
    let log = Log::global();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).await.unwrap();
    let cam = enroll(&engine, "lobby", "").await;
    let (mut conn, answer) = handshake(&cam, &cam.secret).await;
    assert!(matches!(answer, cctv_protocol::Message::Welcome(_)));
    let good = test_jpeg(320, 240, 10);
    // A 65535x65535 frame header in an otherwise tiny JPEG.
    let mut huge = good.to_vec();
    let sof = huge
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline frame header");
    huge[sof + 5..sof + 9].copy_from_slice(&[0xFF; 4]);
    let truncated = good.slice(..good.len() / 2);
    let not_jpeg = bytes::Bytes::from_static(b"this is not a picture at all");
    let mut sent_good = 0;
    let mut seq = 0;
    let mut send = async |jpeg: bytes::Bytes, pause: u64| {
        conn.send(cctv_protocol::Message::Frame(cctv_protocol::Frame {
            seq,
            capture_us: cctv_protocol::now_us(),
            jpeg,
            analysis: None,
            preview: None,
        }))
        .await
        .unwrap();
        seq += 1;
        tokio::time::sleep(Duration::from_millis(pause)).await;
    };
    for _ in 0..5 {
        send(good.clone(), 50).await;
        sent_good += 1;
    }
    send(bytes::Bytes::from(huge), 50).await;
    send(truncated.clone(), 50).await;
    send(not_jpeg, 50).await;
    // An empty picture is one more bad picture, not a reason to hang up.
    send(bytes::Bytes::new(), 50).await;
    // A burst of bad pictures is counted in full but logged in one line.
    for _ in 0..100 {
        send(truncated.clone(), 0).await;
    }
    for _ in 0..5 {
        send(good.clone(), 50).await;
        sent_good += 1;
    }
    let status = wait_for(Duration::from_secs(5), "all frames counted", async || {
        engine
            .camera("lobby")
            .filter(|c| c.frames_received + c.frames_bad == 114)
    })
    .await;
    assert_eq!(status.frames_bad, 104);
    assert_eq!(status.frames_received, sent_good);
    assert_eq!(status.frames_missed, 0, "a bad picture is no missing frame");
    assert_eq!(status.state, CameraState::Live);
    // The tile shows the newest good picture.
    let shown = engine
        .watch_frames("lobby")
        .unwrap()
        .borrow()
        .clone()
        .unwrap();
    assert_eq!(shown.seq, 113);
    assert_eq!(shown.jpeg, good);
    let lines: Vec<String> = log
        .text()
        .lines()
        .filter(|l| l.contains("camera=lobby") && l.contains("skipped a bad picture"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one line for the first, then quiet: {lines:#?}"
    );
    assert!(
        lines[0].contains("65535x65535 is over the limit"),
        "{lines:?}"
    );
    drop(conn);
    engine.shutdown().await;
    let catalog = cctv_engine::catalog::Catalog::open(&engine.config().db_path())
        .await
        .unwrap();
    let rows = catalog.recordings(&Default::default()).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let probe = ffprobe(&engine.config().recordings_dir.join(&rows[0].path));
    assert_eq!(probe.frames, sent_good, "only the good frames are recorded");
    assert_eq!((probe.width, probe.height), (320, 240));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_refuses_the_excess_until_a_place_frees_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.plain_tcp = true;
    cfg.max_connections = 3;
    cfg.handshake_timeout_ms = 1500;
    let engine = Engine::start(cfg).await.unwrap();
    let addr = engine.local_addr();
    let cam = enroll(&engine, "hall", "").await;
    let _hall = FakeCamera::start(&cam, 10).await;
    // Two peers that say nothing fill the other places.
    let quiet: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut reply = Vec::new();
    let _ = extra.read_to_end(&mut reply);
    let answer = cctv_protocol::decode_exact(reply.into(), &Default::default()).unwrap();
    assert_eq!(
        answer,
        cctv_protocol::Message::Reject {
            reason: "the panel has too many connections".into()
        }
    );
    // The refusal is counted where `panel refused` shows it, not only logged.
    wait_for(
        Duration::from_secs(10),
        "the refusal at the cap counted",
        async || {
            let rows = engine.refused(10).await.unwrap();
            rows.into_iter()
                .find(|r| r.code == cctv_engine::catalog::RefusalCode::AtCapacity)
        },
    )
    .await;
    // The quiet ones are dropped at the handshake timeout; then there is room.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    drop(quiet);
    let yard = enroll(&engine, "yard", "").await;
    let (_, answer) = handshake(&yard, &yard.secret).await;
    assert!(
        matches!(answer, cctv_protocol::Message::Welcome(_)),
        "{answer:?}"
    );
    assert_eq!(engine.camera("hall").unwrap().state, CameraState::Live);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_that_stalls_mid_frame_is_cut_off_without_disturbing_others() {
    use futures::SinkExt;
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).await.unwrap();
    let steady = enroll(&engine, "steady", "").await;
    let _steady = FakeCamera::start(&steady, 10).await;
    let stuck = enroll(&engine, "stuck", "").await;
    let (mut conn, answer) = handshake(&stuck, &stuck.secret).await;
    assert!(matches!(answer, cctv_protocol::Message::Welcome(_)));
    conn.send(cctv_protocol::Message::Frame(cctv_protocol::Frame {
        seq: 0,
        capture_us: cctv_protocol::now_us(),
        jpeg: test_jpeg(320, 240, 1),
        analysis: None,
        preview: None,
    }))
    .await
    .unwrap();
    // A frame header announcing 4 MiB, 64 KiB of it, then nothing.
    let io = conn.get_mut();
    let mut head = Vec::from(*b"CCTV");
    head.extend_from_slice(&[1, 0x02, 0, 0]);
    head.extend_from_slice(&(4u32 << 20).to_be_bytes());
    io.write_all(&head).await.unwrap();
    io.write_all(&vec![0u8; 64 << 10]).await.unwrap();
    io.flush().await.unwrap();
    let stalled_at = std::time::Instant::now();
    let cut = wait_for(Duration::from_secs(5), "stuck offline", async || {
        engine
            .camera("stuck")
            .filter(|c| c.state == CameraState::Offline)
    })
    .await;
    // Two heartbeats of silence (2 x 500 ms here), not longer.
    assert!(stalled_at.elapsed() < Duration::from_millis(1800));
    assert!(cut.detail.contains("heartbeat timeout"), "{}", cut.detail);
    assert_eq!(cut.frames_received, 1);
    let other = engine.camera("steady").unwrap();
    assert_eq!(other.state, CameraState::Live);
    assert_eq!(other.frames_missed, 0);
    engine.shutdown().await;
}

/// A camera that holds a valid secret and sends absurd numbers: a frame
/// dated 2100, capture times of 2^63 and 2^64-1, the largest sequence
/// number and then a restart from 0. Its frames are kept, timed on arrival
/// where their own time is far off; no recording is dated 2100; ingest and
/// the recorder survive, and the camera can connect again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_sending_absurd_numbers_keeps_recording_and_can_reconnect() {
    use futures::SinkExt;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).await.unwrap();
    let cam = enroll(&engine, "clock", "").await;
    let t0 = cctv_protocol::now_us() as i64;
    let (mut conn, answer) = handshake(&cam, &cam.secret).await;
    assert!(matches!(answer, cctv_protocol::Message::Welcome(_)));
    let jpeg = test_jpeg(320, 240, 10);
    let year_2100 = 4_102_444_800_000_000u64;
    let frames: Vec<(u64, Option<u64>)> = vec![
        (0, None),
        (1, None),
        (2, Some(year_2100)),
        (3, None),
        (4, Some(1 << 63)),
        (5, Some(u64::MAX)),
        (u64::MAX, None),
        (0, None),
        (10, None),
        (11, None),
    ];
    for (seq, capture) in &frames {
        let capture_us = capture.unwrap_or_else(cctv_protocol::now_us);
        conn.send(cctv_protocol::Message::Frame(cctv_protocol::Frame {
            seq: *seq,
            capture_us,
            jpeg: jpeg.clone(),
            analysis: None,
            preview: None,
        }))
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let status = wait_for(Duration::from_secs(10), "every frame counted", async || {
        engine
            .camera("clock")
            .filter(|c| c.frames_received == frames.len() as u64)
    })
    .await;
    assert_eq!(status.state, CameraState::Live);
    assert_eq!(status.frames_retimed, 3, "three capture times far off");
    let skew = status
        .clock_skew_ms
        .expect("the camera's clock skew is shown");
    assert!(
        skew.abs() < 5_000,
        "an honest clock shows a small skew: {skew} ms"
    );
    drop(conn);
    wait_for(Duration::from_secs(10), "the camera offline", async || {
        engine
            .camera("clock")
            .filter(|c| c.state == CameraState::Offline)
    })
    .await;
    // The slot was released: the camera is welcomed again.
    let (conn, answer) = handshake(&cam, &cam.secret).await;
    assert!(
        matches!(answer, cctv_protocol::Message::Welcome(_)),
        "{answer:?}"
    );
    drop(conn);
    engine.shutdown().await;
    let t1 = cctv_protocol::now_us() as i64;
    let catalog = cctv_engine::catalog::Catalog::open(&engine.config().db_path())
        .await
        .unwrap();
    let rows = catalog.recordings(&Default::default()).await.unwrap();
    assert!(!rows.is_empty());
    let mut recorded = 0;
    for r in &rows {
        assert!(
            r.start_us >= t0 - 1_000_000 && r.end_us <= t1 + 1_000_000,
            "a recording outside the test's own time: {r:?}"
        );
        recorded += ffprobe(&engine.config().recordings_dir.join(&r.path)).frames;
    }
    assert_eq!(recorded, frames.len() as u64, "every frame recorded");
}

/// A camera holding a valid secret puts a newline and a terminal escape in
/// its name, version and goodbye: the log gets no forged line, and what is
/// stored and shown has the characters escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_from_a_camera_cannot_forge_log_lines() {
    use futures::SinkExt;
    let log = Log::global();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).await.unwrap();
    let cam = enroll(&engine, "porch", "").await;
    let forged = "2026-01-01T00:00:00.000000Z  INFO panel: forged";
    let hello = cctv_protocol::Hello {
        camera_id: "porch".into(),
        name: format!("Porch\n{forged} name"),
        agent_version: "1.0\u{1b}[2J".into(),
        width: 320,
        height: 240,
        fps_milli: 10_000,
        credentials: Default::default(),
    };
    let (mut conn, answer) = handshake_with(&cam, &cam.secret, hello).await;
    assert!(
        matches!(answer, cctv_protocol::Message::Welcome(_)),
        "{answer:?}"
    );
    conn.send(cctv_protocol::Message::Goodbye {
        reason: format!("bye\n{forged} goodbye\r\n"),
    })
    .await
    .unwrap();
    let status = wait_for(Duration::from_secs(10), "the goodbye", async || {
        engine
            .camera("porch")
            .filter(|c| c.state == CameraState::Offline && c.detail.starts_with("agent stopped"))
    })
    .await;
    assert_eq!(status.name, format!("Porch\\n{forged} name"));
    assert!(
        status
            .detail
            .contains(&format!("bye\\n{forged} goodbye\\r\\n")),
        "{}",
        status.detail
    );
    let row = engine.catalog().camera("porch").await.unwrap().unwrap();
    assert_eq!(row.agent_version, "1.0\\u{1b}[2J");
    engine.shutdown().await;
    let text = log.text();
    assert!(
        !text.lines().any(|l| l.starts_with("2026-01-01T00:00:00")),
        "a forged log line:\n{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "a terminal escape reached the log"
    );
}

/// A camera flipping between two picture sizes on every frame makes one
/// mixed-size recording, not a file per frame, and loses no frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_flipping_sizes_makes_one_recording_not_one_per_frame() {
    use futures::SinkExt;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).await.unwrap();
    let cam = enroll(&engine, "flip", "").await;
    let (mut conn, answer) = handshake(&cam, &cam.secret).await;
    assert!(matches!(answer, cctv_protocol::Message::Welcome(_)));
    let sizes = [test_jpeg(320, 240, 10), test_jpeg(160, 120, 200)];
    let frames = 40u64;
    for seq in 0..frames {
        conn.send(cctv_protocol::Message::Frame(cctv_protocol::Frame {
            seq,
            capture_us: cctv_protocol::now_us(),
            jpeg: sizes[seq as usize % 2].clone(),
            analysis: None,
            preview: None,
        }))
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for(Duration::from_secs(10), "every frame counted", async || {
        engine
            .camera("flip")
            .filter(|c| c.frames_received == frames)
    })
    .await;
    drop(conn);
    engine.shutdown().await;
    let catalog = cctv_engine::catalog::Catalog::open(&engine.config().db_path())
        .await
        .unwrap();
    let rows = catalog.recordings(&Default::default()).await.unwrap();
    assert_eq!(rows.len(), 1, "one recording for two seconds: {rows:?}");
    let recorded: i64 = rows.iter().map(|r| r.frames).sum();
    assert_eq!(recorded, frames as i64);
    let probe = ffprobe(&engine.config().recordings_dir.join(&rows[0].path));
    assert_eq!(probe.frames, frames);
}
