//! Hostile peers against a panel that is recording a real camera: each is
//! dropped with a logged reason, and the camera never notices.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use panel::catalog::CameraState;
use panel::engine::Engine;
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

/// Collects the engine's log lines so the test can read the reasons.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_are_dropped_and_cameras_unaffected() {
    let log = Log::default();
    let writer = log.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .finish(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_frame_bytes = 1 << 20;
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

    // A hijack attempt: the same camera id while the real one is live.
    let mut dup = TcpStream::connect(addr).unwrap();
    let hello = cctv_protocol::encode_to_bytes(
        &cctv_protocol::Message::Hello(cctv_protocol::Hello {
            camera_id: "steady".into(),
            name: "impostor".into(),
            agent_version: "x".into(),
            width: 1,
            height: 1,
            fps_milli: 1000,
            credentials: Default::default(),
        }),
        &Default::default(),
    )
    .unwrap();
    dup.write_all(&hello).unwrap();
    dup.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut reply = Vec::new();
    let _ = dup.read_to_end(&mut reply);
    let msg = cctv_protocol::decode_exact(reply.into(), &Default::default()).unwrap();
    match msg {
        cctv_protocol::Message::Reject { reason } => {
            assert!(reason.contains("already live"), "{reason}")
        }
        other => panic!("expected Reject, got {other:?}"),
    }

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
    let events = engine
        .catalog()
        .events(Some("steady"), None, None, 20, 0)
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.kind == "rejected"), "{events:?}");
    assert!(!events.iter().any(|e| e.kind == "offline"), "{events:?}");
    let log = log.text();
    for reason in [
        "bad magic",
        "over the limit",
        "no Hello within",
        "Frame before Hello",
        "refused a second connection",
    ] {
        assert!(log.contains(reason), "no log line with {reason:?}:\n{log}");
    }
    engine.shutdown().await;
}
