//! Who may connect: the right agent streams over TLS; a wrong secret, an
//! unknown camera, a replayed handshake and a plain-TCP client are refused
//! with their reason logged and recorded; revoking cuts a live agent off.

mod support;

use cctv_engine::catalog::EventKind;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cctv_engine::Engine;
use cctv_engine::catalog::CameraState;
use cctv_protocol::Message;
use futures::{SinkExt, StreamExt};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn log() -> &'static Log {
    Log::global()
}

fn logged(what: &str) -> bool {
    log().text().contains(what)
}

fn reason_of(m: &Message) -> &str {
    match m {
        Message::Reject { reason } => reason,
        other => panic!("expected Reject, got {other:?}"),
    }
}

/// The refusal recorded for `code`, waiting briefly for it to be written.
async fn recorded(engine: &Engine, code: &str) -> cctv_engine::catalog::AuthFailureRow {
    wait_for(
        Duration::from_secs(5),
        &format!("a refusal recorded as {code}"),
        async || {
            engine
                .catalog()
                .auth_failures(100)
                .await
                .unwrap()
                .into_iter()
                .find(|r| r.code.as_str() == code)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_camera_holding_its_secret_gets_in() {
    log();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).await.unwrap();
    let fingerprint = engine.fingerprint().expect("TLS is on by default");
    let door = enroll(&engine, "door", "Front door").await;
    assert_eq!(door.fingerprint, Some(fingerprint));

    // The real agent, over TLS, pinning the fingerprint.
    let _agent = start_agent(&door, &["--source", "test-pattern:320x240", "--fps", "10"]);
    wait_for(Duration::from_secs(30), "door live", async || {
        engine
            .camera("door")
            .filter(|c| c.state == CameraState::Live && c.frames_received >= 10)
    })
    .await;

    // A wrong secret for a real camera id.
    let wrong = cctv_protocol::auth::Secret::from_bytes([9; 32]);
    let (_, answer) = handshake(&door, &wrong).await;
    assert_eq!(reason_of(&answer), "wrong secret for this camera id");
    let row = recorded(&engine, "wrong_secret").await;
    assert_eq!(row.claimed_id.as_deref(), Some("door"));
    assert!(row.address.starts_with("127.0.0.1:"), "{row:?}");
    let events = engine
        .catalog()
        .events(Some("door"), None, None, 50, 0)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == EventKind::Rejected && e.detail.contains("wrong secret")),
        "{events:?}"
    );

    // A camera id the panel never issued.
    let stranger = Creds {
        id: "stranger".into(),
        ..door.clone()
    };
    let (_, answer) = handshake(&stranger, &door.secret).await;
    assert!(reason_of(&answer).contains("unknown camera id"));
    assert_eq!(
        recorded(&engine, "unknown_camera")
            .await
            .claimed_id
            .as_deref(),
        Some("stranger")
    );
    assert!(
        engine.camera("stranger").is_none(),
        "an unknown camera is not added"
    );

    // A replayed handshake: a proof that was accepted once, sent again on a
    // new connection (with its new challenge).
    let yard = enroll(&engine, "yard", "Yard").await;
    let mut first = open_transport(&yard).await.unwrap();
    let hello = cctv_protocol::Hello {
        camera_id: "yard".into(),
        name: "Yard".into(),
        agent_version: "test".into(),
        width: 320,
        height: 240,
        fps_milli: 10_000,
        credentials: Default::default(),
    };
    first.send(Message::Hello(hello.clone())).await.unwrap();
    let Some(Ok(Message::Challenge(c))) = first.next().await else {
        panic!("no challenge")
    };
    let proven = cctv_protocol::auth::prove(&yard.secret, &c, hello.clone());
    first.send(Message::Hello(proven.clone())).await.unwrap();
    assert!(matches!(first.next().await, Some(Ok(Message::Welcome(_)))));
    drop(first);
    let mut replay = open_transport(&yard).await.unwrap();
    replay.send(Message::Hello(hello)).await.unwrap();
    let Some(Ok(Message::Challenge(c2))) = replay.next().await else {
        panic!("no challenge")
    };
    assert_ne!(c.nonce, c2.nonce, "every connection gets a new nonce");
    replay.send(Message::Hello(proven)).await.unwrap();
    let answer = replay.next().await.unwrap().unwrap();
    assert!(reason_of(&answer).contains("replayed handshake"));
    assert_eq!(
        recorded(&engine, "replayed").await.claimed_id.as_deref(),
        Some("yard")
    );

    // A plain-TCP client on the TLS port hears why, in plain words.
    let mut plain = tokio::net::TcpStream::connect(engine.local_addr())
        .await
        .unwrap();
    let hello = cctv_protocol::encode_to_bytes(
        &Message::Hello(cctv_protocol::Hello {
            camera_id: "door".into(),
            name: String::new(),
            agent_version: "old".into(),
            width: 1,
            height: 1,
            fps_milli: 1000,
            credentials: Default::default(),
        }),
        &Default::default(),
    )
    .unwrap();
    plain.write_all(&hello).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    let answer = cctv_protocol::decode_exact(reply.into(), &Default::default()).unwrap();
    assert!(reason_of(&answer).contains("TLS only"), "{answer:?}");
    recorded(&engine, "not_tls").await;

    // Through all of it the real camera kept streaming.
    let door_now = engine.camera("door").unwrap();
    assert_eq!(door_now.state, CameraState::Live);
    assert_eq!(door_now.frames_missed, 0);
    for line in [
        "refused a connection: wrong secret for this camera id",
        "unknown camera id",
        "replayed handshake",
        "plain TCP on the TLS port",
    ] {
        assert!(logged(line), "no log line with {line:?}");
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_camera_cuts_it_off_within_a_second_and_keeps_it_out() {
    log();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let engine = Engine::start(cfg.clone()).await.unwrap();
    let gate = enroll(&engine, "gate", "Gate").await;
    let _agent = start_agent(&gate, &["--source", "test-pattern:320x240", "--fps", "10"]);
    wait_for(Duration::from_secs(30), "gate live", async || {
        engine
            .camera("gate")
            .filter(|c| c.state == CameraState::Live && c.frames_received >= 5)
    })
    .await;
    // Revoked from another process, as an operator would.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_panel"))
        .args(["camera", "revoke", "gate", "--data"])
        .arg(&cfg.data_dir)
        .output()
        .unwrap();
    let revoked_at = Instant::now();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cut = wait_for(Duration::from_secs(5), "gate offline", async || {
        engine
            .camera("gate")
            .filter(|c| c.state == CameraState::Offline)
            .map(|_| revoked_at.elapsed())
    })
    .await;
    assert!(cut < Duration::from_secs(1), "cut off after {cut:?}");
    let status = engine.camera("gate").unwrap();
    assert!(status.detail.contains("revoked"), "{}", status.detail);
    // The agent keeps trying; each attempt is refused as revoked.
    let row = recorded(&engine, "revoked").await;
    assert_eq!(row.claimed_id.as_deref(), Some("gate"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(engine.camera("gate").unwrap().state, CameraState::Offline);
    engine.shutdown().await;
}

/// A TCP relay that keeps every byte the agent sends, as a capture tool
/// on the wire would see it.
async fn relay(panel: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    tokio::spawn(async move {
        let Ok((mut agent, _)) = listener.accept().await else {
            return;
        };
        let mut upstream = tokio::net::TcpStream::connect(panel).await.unwrap();
        let (mut ar, mut aw) = agent.split();
        let (mut ur, mut uw) = upstream.split();
        let up = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match ar.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                keep.lock().unwrap().extend_from_slice(&buf[..n]);
                if uw.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        };
        let down = tokio::io::copy(&mut ur, &mut aw);
        tokio::select! { _ = up => {}, _ = down => {} }
    });
    (addr, seen)
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_jpeg_crosses_the_wire_in_the_clear_over_tls() {
    log();
    for plain in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.plain_tcp = plain;
        let engine = Engine::start(cfg).await.unwrap();
        if plain {
            assert!(logged(
                "PLAIN TCP: video and camera handshakes cross the network unencrypted"
            ));
        }
        let mut cam = enroll(&engine, "porch", "").await;
        assert_eq!(cam.fingerprint.is_none(), plain);
        let (relay_addr, seen) = relay(engine.local_addr()).await;
        cam.addr = relay_addr;
        let _agent = start_agent(&cam, &["--source", "test-pattern:320x240", "--fps", "10"]);
        let frames = wait_for(Duration::from_secs(30), "20 frames", async || {
            engine
                .camera("porch")
                .map(|c| c.frames_received)
                .filter(|n| *n >= 20)
        })
        .await as usize;
        let bytes = seen.lock().unwrap().clone();
        // Start of image followed by a marker, and the protocol's magic.
        let soi = count(&bytes, &[0xFF, 0xD8, 0xFF]);
        let magic = count(&bytes, b"CCTV");
        println!(
            "{}: {} bytes captured, {frames} frames, {soi} JPEG starts, {magic} protocol headers",
            if plain { "plain TCP" } else { "TLS" },
            bytes.len()
        );
        if plain {
            // The capture does find frames when they are there to find.
            assert!(soi >= frames, "{soi} JPEG starts for {frames} frames");
            assert!(magic >= frames);
        } else {
            assert_eq!(bytes[0], 0x16, "a TLS handshake record comes first");
            // Random bytes match 3 given bytes once in 16 MB; allow that.
            assert!(soi <= 1, "{soi} JPEG starts in the TLS stream");
            assert_eq!(magic, 0, "protocol headers in the TLS stream");
        }
        engine.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_trusts_the_first_certificate_then_only_that_one() {
    log();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(&dir.path().join("one")))
        .await
        .unwrap();
    let cam = enroll(&engine, "shed", "").await;
    // The agent's config has no fingerprint: it trusts the first one it sees.
    let agent_cfg = dir.path().join("agent.toml");
    std::fs::write(
        &agent_cfg,
        format!(
            "panel = \"{}\"\ncamera_id = \"shed\"\nsecret = \"{}\"\n",
            cam.addr,
            cam.secret.to_hex()
        ),
    )
    .unwrap();
    let start = |cfg: &std::path::Path| {
        Proc(
            agent_command()
                .arg("--config")
                .arg(cfg)
                .args(["--source", "test-pattern:320x240", "--fps", "10"])
                .args(["--max-backoff", "1"])
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let agent = start(&agent_cfg);
    wait_for(Duration::from_secs(30), "shed live", async || {
        engine
            .camera("shed")
            .filter(|c| c.state == CameraState::Live)
    })
    .await;
    let written = std::fs::read_to_string(&agent_cfg).unwrap();
    let expected = format!("panel_fingerprint = \"{}\"", engine.fingerprint().unwrap());
    assert!(written.contains(&expected), "{written}");
    drop(agent);
    engine.shutdown().await;

    // Another panel at the same address, with its own certificate and the
    // same camera secret: the pinned agent will not talk to it.
    let mut cfg = config(&dir.path().join("two"));
    cfg.listen = cam.addr;
    std::fs::create_dir_all(&cfg.data_dir).unwrap();
    let catalog = cctv_engine::catalog::Catalog::open(&cfg.db_path())
        .await
        .unwrap();
    catalog
        .add_credentials("shed", "", cam.secret.as_bytes(), false, 0)
        .await
        .unwrap();
    catalog.close().await;
    let other = Engine::start(cfg).await.unwrap();
    assert_ne!(other.fingerprint(), engine.fingerprint());
    let _agent = start(&agent_cfg);
    let row = recorded(&other, "tls").await;
    // In words, not the TLS library's.
    assert!(
        row.reason
            .starts_with("TLS handshake failed: the other side refused this panel's certificate"),
        "{row:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_ne!(other.camera("shed").unwrap().state, CameraState::Live);
    other.shutdown().await;
}

/// 200 wrong secrets in a burst make one counted row and one history
/// event, not 200; an earlier attack's row stays listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_secrets_is_one_counted_row_and_keeps_an_earlier_attack() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.connect_burst_per_ip = 10_000;
    cfg.connects_per_minute_per_ip = 100_000;
    let engine = Engine::start(cfg).await.unwrap();
    let door = enroll(&engine, "door", "Front door").await;
    let stranger = Creds {
        id: "stranger".into(),
        ..door.clone()
    };
    let (_, answer) = handshake(&stranger, &door.secret).await;
    assert!(reason_of(&answer).contains("unknown camera id"));
    recorded(&engine, "unknown_camera").await;

    let attempts = 200;
    let wrong = cctv_protocol::auth::Secret::from_bytes([9; 32]);
    for _ in 0..attempts / 20 {
        let batch: Vec<_> = (0..20)
            .map(|_| {
                let (door, wrong) = (door.clone(), wrong.clone());
                tokio::spawn(async move { handshake(&door, &wrong).await.1 })
            })
            .collect();
        for answer in batch {
            assert_eq!(
                reason_of(&answer.await.unwrap()),
                "wrong secret for this camera id"
            );
        }
    }
    let row = wait_for(
        Duration::from_secs(10),
        "every attempt counted",
        async || {
            let rows = engine.refused(100).await.unwrap();
            rows.into_iter()
                .find(|r| r.code.as_str() == "wrong_secret" && r.attempts == attempts)
        },
    )
    .await;
    assert_eq!(row.host, "127.0.0.1");
    assert!(row.first_us < row.at_us, "{row:?}");
    let rows = engine.refused(100).await.unwrap();
    assert_eq!(rows.len(), 2, "one row per burst: {rows:?}");
    assert!(rows.iter().any(|r| r.code.as_str() == "unknown_camera"));
    let rejected: Vec<_> = engine
        .catalog()
        .events(Some("door"), None, None, 500, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::Rejected)
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(
        rejected[0]
            .detail
            .contains(&format!("{attempts} attempts from 127.0.0.1")),
        "{}",
        rejected[0].detail
    );
    engine.shutdown().await;
}
