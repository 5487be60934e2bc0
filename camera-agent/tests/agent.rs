//! A real `camera-agent` process against a minimal receiver built on the
//! protocol crate, on loopback: what arrives is what a panel would get.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cctv_protocol::{Codec, Configure, Frame, Hello, Message, Welcome};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_util::codec::Framed;

type Conn = Framed<TcpStream, Codec>;

/// Kills the agent when a test ends, however it ends.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_agent(port: u16, args: &[&str]) -> Agent {
    let child = Command::new(env!("CARGO_BIN_EXE_camera-agent"))
        .args(["--panel", &format!("127.0.0.1:{port}")])
        .args(["--plain-tcp", "--secret", &SECRET.to_hex()])
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start camera-agent");
    Agent(child)
}

const SECRET: cctv_protocol::auth::Secret = cctv_protocol::auth::Secret::from_bytes([0x5a; 32]);

/// `../shared/testdata` (or `$CCTV_TESTDATA`), when it is there. A test that
/// needs it says so and passes without it on a developer's machine; under
/// `CI=true` a missing data set fails the test instead.
#[cfg(feature = "file")]
fn testdata() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    let dir = std::env::var_os("CCTV_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "test data not found at {} (set CCTV_TESTDATA): under CI=true it must be there",
        dir.display()
    );
    eprintln!(
        "SKIPPED: test data not found at {} (set CCTV_TESTDATA)",
        dir.display()
    );
    None
}

/// Accepts one agent, checks that its `Hello` proves the secret, and
/// welcomes it.
async fn accept(listener: &TcpListener) -> (Conn, Hello) {
    let (stream, _) = timeout(Duration::from_secs(20), listener.accept())
        .await
        .expect("agent connects")
        .unwrap();
    let mut conn = Framed::new(stream, Codec::default());
    let announced = match timeout(Duration::from_secs(5), conn.next()).await.unwrap() {
        Some(Ok(Message::Hello(h))) => h,
        other => panic!("expected Hello, got {other:?}"),
    };
    let server = cctv_protocol::auth::ServerHandshake::new(rand_nonce());
    conn.send(server.challenge()).await.unwrap();
    let answer = timeout(Duration::from_secs(5), conn.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let hello = server
        .check(
            answer,
            |id| {
                assert_eq!(id, announced.camera_id);
                cctv_protocol::auth::CameraKey::Known(SECRET)
            },
            &mut Default::default(),
        )
        .expect("the agent proves the secret");
    conn.send(Message::Welcome(Welcome {
        panel_version: "test receiver".into(),
        heartbeat_ms: 1000,
    }))
    .await
    .unwrap();
    (conn, hello)
}

fn rand_nonce() -> [u8; 32] {
    let t = Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id());
    std::array::from_fn(|i| (t >> (i % 16 * 8)) as u8 ^ i as u8)
}

async fn next_frame(conn: &mut Conn) -> Frame {
    loop {
        match timeout(Duration::from_secs(5), conn.next()).await {
            Ok(Some(Ok(Message::Frame(f)))) => return f,
            Ok(Some(Ok(Message::Heartbeat(_)))) => continue,
            other => panic!("expected a frame, got {other:?}"),
        }
    }
}

fn jpeg_size(jpeg: &[u8]) -> (usize, usize) {
    assert_eq!(&jpeg[..2], [0xff, 0xd8], "starts with SOI");
    assert_eq!(&jpeg[jpeg.len() - 2..], [0xff, 0xd9], "ends with EOI");
    let header = turbojpeg::Decompressor::new()
        .unwrap()
        .read_header(jpeg)
        .expect("a JPEG libjpeg-turbo can read");
    // Decode it whole too: the header alone does not prove the data is good.
    turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::RGB).expect("decodes");
    (header.width, header.height)
}

/// The libjpeg quality that produced this JPEG's luminance table, found by
/// scaling the standard table (Annex K) for every quality and comparing.
fn jpeg_quality(jpeg: &[u8]) -> Option<u8> {
    const STD_LUMA: [u32; 64] = [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
        56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81,
        104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ];
    let at = jpeg.windows(2).position(|w| w == [0xff, 0xdb])?;
    let table = &jpeg[at + 5..at + 5 + 64];
    assert_eq!(jpeg[at + 4], 0, "8-bit table 0 first");
    let mut found: Vec<u32> = table.iter().map(|v| u32::from(*v)).collect();
    found.sort_unstable();
    (1..=100u32)
        .find(|q| {
            let scale = if *q < 50 { 5000 / q } else { 200 - 2 * q };
            let mut expected: Vec<u32> = STD_LUMA
                .iter()
                .map(|v| ((v * scale + 50) / 100).clamp(1, 255))
                .collect();
            expected.sort_unstable();
            expected == found
        })
        .map(|q| q as u8)
}

#[tokio::test]
async fn test_pattern_streams_and_obeys_configure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let started_us = cctv_protocol::now_us();
    let _agent = start_agent(
        port,
        &[
            "--camera-id",
            "pattern-1",
            "--name",
            "Test pattern",
            "--source",
            "test-pattern:320x240",
            "--fps",
            "10",
            "--quality",
            "70",
        ],
    );
    let (mut conn, hello) = accept(&listener).await;
    assert_eq!(hello.camera_id, "pattern-1");
    assert_eq!(hello.name, "Test pattern");
    assert_eq!((hello.width, hello.height), (320, 240));
    assert_eq!(hello.fps_milli, 10_000);

    let mut last_seq = None;
    let mut frames = Vec::new();
    for _ in 0..10 {
        let f = next_frame(&mut conn).await;
        if let Some(prev) = last_seq {
            assert!(
                f.seq > prev,
                "sequence numbers increase: {prev} then {}",
                f.seq
            );
        }
        last_seq = Some(f.seq);
        let now = cctv_protocol::now_us();
        assert!(
            f.capture_us >= started_us && f.capture_us <= now,
            "capture time {} is not between agent start {started_us} and now {now}",
            f.capture_us
        );
        assert_eq!(jpeg_size(&f.jpeg), (320, 240));
        assert_eq!(jpeg_quality(&f.jpeg), Some(70));
        frames.push(f);
    }
    let span = (frames[9].capture_us - frames[0].capture_us) as f64 / 1e6;
    let fps = 9.0 / span;
    assert!((8.5..=11.5).contains(&fps), "about 10 fps, got {fps:.2}");

    // Change quality and frame rate in flight, on the same connection.
    conn.send(Message::Configure(Configure {
        quality: Some(20),
        fps_milli: Some(4_000),
        max_width: None,
    }))
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let first = loop {
        let f = next_frame(&mut conn).await;
        if jpeg_quality(&f.jpeg) == Some(20) {
            break f;
        }
        assert!(Instant::now() < deadline, "quality never changed");
    };
    let mut after = vec![first];
    for _ in 0..8 {
        let f = next_frame(&mut conn).await;
        assert_eq!(jpeg_quality(&f.jpeg), Some(20));
        assert!(f.seq > after.last().unwrap().seq);
        after.push(f);
    }
    let span = (after[8].capture_us - after[0].capture_us) as f64 / 1e6;
    let fps = 8.0 / span;
    assert!(
        (3.4..=4.6).contains(&fps),
        "about 4 fps after Configure, got {fps:.2}"
    );
}

/// Files play in builds with the `file` feature (as `scripts/test.sh` builds).
#[cfg(feature = "file")]
#[tokio::test]
async fn file_source_plays_at_its_rate_and_scales_down() {
    let Some(data) = testdata() else { return };
    let video = data.join("video/vtest.avi");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let source = format!("file:{}", video.display());
    let _agent = start_agent(
        port,
        &[
            "--camera-id",
            "walkway",
            "--source",
            &source,
            "--width",
            "384",
        ],
    );
    let (mut conn, hello) = accept(&listener).await;
    assert_eq!((hello.width, hello.height), (384, 288));
    assert_eq!(hello.fps_milli, 10_000, "vtest.avi is 10 fps");
    let mut frames = Vec::new();
    for _ in 0..11 {
        let f = next_frame(&mut conn).await;
        assert_eq!(jpeg_size(&f.jpeg), (384, 288));
        if let Some(prev) = frames.last() {
            let prev: &Frame = prev;
            assert!(f.seq > prev.seq);
        }
        frames.push(f);
    }
    let span = (frames[10].capture_us - frames[0].capture_us) as f64 / 1e6;
    assert!(
        (0.85..=1.15).contains(&span),
        "10 frames at 10 fps take 1 s, took {span:.2}"
    );
    // Real footage, not a blank picture: consecutive frames differ.
    assert_ne!(frames[0].jpeg, frames[10].jpeg);
}

#[tokio::test]
async fn agent_reconnects_by_itself_after_the_receiver_dies() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut agent = start_agent(
        port,
        &[
            "--camera-id",
            "resilient",
            "--source",
            "test-pattern:160x120",
            "--fps",
            "20",
            "--max-backoff",
            "2",
        ],
    );
    let (mut conn, _) = accept(&listener).await;
    let mut last = next_frame(&mut conn).await.seq;
    for _ in 0..5 {
        last = next_frame(&mut conn).await.seq;
    }
    // The receiver dies: connection and listener gone.
    drop(conn);
    drop(listener);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(agent.0.try_wait().unwrap().is_none(), "agent keeps running");

    // Back again on the same port: the agent finds it within the backoff cap.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let back = Instant::now();
    let (mut conn, hello) = accept(&listener).await;
    let waited = back.elapsed();
    assert_eq!(hello.camera_id, "resilient");
    assert!(
        waited <= Duration::from_millis(2500),
        "reconnected after {waited:?}, the cap is 2 s"
    );
    let f = next_frame(&mut conn).await;
    assert!(
        f.seq > last + 20,
        "capture went on while disconnected: seq {} after {last}",
        f.seq
    );
    let g = next_frame(&mut conn).await;
    assert!(g.seq > f.seq);

    // SIGTERM: the agent says goodbye and exits cleanly.
    let pid = agent.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let said_goodbye = timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = conn.next().await {
            if let Message::Goodbye { .. } = m {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(said_goodbye);
    let status = agent.0.wait().unwrap();
    assert!(status.success(), "clean exit, got {status}");
}

#[cfg(feature = "file")]
#[test]
fn a_missing_file_is_a_clear_error_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_camera-agent"))
        .args([
            "--panel",
            "127.0.0.1:9",
            "--camera-id",
            "x",
            "--plain-tcp",
            "--secret",
            &SECRET.to_hex(),
            "--source",
            "file:/no/such/video.avi",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/video.avi"), "{err}");
    assert!(err.contains("no such file"), "{err}");
}
