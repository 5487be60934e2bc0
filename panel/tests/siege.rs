//! 1,000 hostile connections (garbage, plain TCP on the TLS port, oversize
//! claims, slow and silent peers, wrong secrets, a flood from one address)
//! against a `panel serve` recording 4 live cameras over TLS: the four
//! recordings have no gap and the panel's memory stays flat.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cctv_engine::catalog::{CameraState, Catalog, RecordingFilter};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOSTILE: usize = 1000;
const AT_ONCE: usize = 48;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A connection from loopback address `src`.
async fn connect_from(src: [u8; 4], panel: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.bind(SocketAddr::from((src, 0)))?;
    s.connect(panel).await
}

fn header(kind: u8, len: u32) -> Vec<u8> {
    let mut h = Vec::from(*b"CCTV");
    h.extend_from_slice(&[1, kind, 0, 0]);
    h.extend_from_slice(&len.to_be_bytes());
    h
}

/// One hostile peer of kind `n % 9`; returns whether the panel closed the
/// connection (rather than the peer giving up first).
async fn hostile(n: usize, src: [u8; 4], creds: Creds) -> bool {
    let Ok(mut tcp) = connect_from(src, creds.addr).await else {
        return false;
    };
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| ((i as usize + n).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let tls = |tcp: tokio::net::TcpStream| async {
        let connector = tokio_rustls::TlsConnector::from(cctv_protocol::tls::client_config(
            cctv_protocol::tls::Pin::Fixed(creds.fingerprint.unwrap()),
        ));
        connector
            .connect(cctv_protocol::tls::panel_server_name(), tcp)
            .await
    };
    let mut buf = vec![0u8; 4096];
    let mut closed = async |s: &mut (dyn tokio::io::AsyncRead + Unpin + Send)| loop {
        match tokio::time::timeout(Duration::from_secs(4), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    };
    match n % 9 {
        // Random bytes where a TLS handshake should be.
        0 => {
            let _ = tcp.write_all(&garbage).await;
            closed(&mut tcp).await
        }
        // An agent speaking plain TCP to the TLS port.
        1 => {
            let _ = tcp.write_all(&header(0x01, 0)).await;
            closed(&mut tcp).await
        }
        // Silent: connects and says nothing.
        2 => closed(&mut tcp).await,
        // One byte of a TLS handshake, then nothing.
        3 => {
            let _ = tcp.write_all(&[0x16]).await;
            closed(&mut tcp).await
        }
        kind => {
            let Ok(mut s) = tls(tcp).await else {
                return true; // refused during the TLS handshake
            };
            match kind {
                // Garbage inside TLS.
                4 => {
                    let _ = s.write_all(&garbage).await;
                }
                // Claims a 2 GiB frame.
                5 => {
                    let _ = s.write_all(&header(0x02, 0x8000_0000)).await;
                }
                // Claims a 1 MiB frame before proving anything, sends half of it, stalls.
                6 => {
                    let _ = s.write_all(&header(0x02, 1 << 20)).await;
                    let _ = s.write_all(&vec![0u8; 512 << 10]).await;
                }
                // Half a header inside TLS, then silence.
                7 => {
                    let _ = s.write_all(b"CCTV\x01").await;
                }
                // A real camera id with a wrong secret.
                _ => {
                    use cctv_protocol::Message;
                    use futures::{SinkExt, StreamExt};
                    let mut conn =
                        tokio_util::codec::Framed::new(s, cctv_protocol::Codec::default());
                    let hello = cctv_protocol::Hello {
                        camera_id: creds.id.clone(),
                        name: String::new(),
                        agent_version: "impostor".into(),
                        width: 1,
                        height: 1,
                        fps_milli: 1000,
                        credentials: Default::default(),
                    };
                    let _ = conn.send(Message::Hello(hello.clone())).await;
                    let Some(Ok(Message::Challenge(c))) = conn.next().await else {
                        return true;
                    };
                    let wrong = cctv_protocol::auth::Secret::from_bytes([n as u8; 32]);
                    let _ = conn
                        .send(Message::Hello(cctv_protocol::auth::prove(
                            &wrong, &c, hello,
                        )))
                        .await;
                    loop {
                        match tokio::time::timeout(Duration::from_secs(4), conn.next()).await {
                            Ok(Some(Ok(_))) => continue,
                            Ok(_) => return true,
                            Err(_) => return false,
                        }
                    }
                }
            }
            let _ = s.flush().await;
            closed(&mut s).await
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_hostile_connections_leave_recordings_whole_and_memory_flat() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let data = dir.path().join("data");
    let cams: Vec<Creds> = (0..4)
        .map(|i| enroll_cli(&data, addr, &format!("cam{i}")))
        .collect();
    // Its life, without the thousand refusals (counted in the catalog).
    let mut panel = panel_serve(dir.path(), port, "info,cctv_engine::ingest=error");
    let log = panel.read_log();
    let pid = panel.0.id();
    let _agents: Vec<Proc> = cams
        .iter()
        .map(|c| start_agent(c, &["--source", "test-pattern:320x240", "--fps", "10"]))
        .collect();
    let catalog = Catalog::open(&data.join("panel.db")).await.unwrap();
    wait_for(Duration::from_secs(30), "4 cameras live", async || {
        let live = catalog
            .cameras()
            .await
            .ok()?
            .iter()
            .filter(|c| c.state == CameraState::Live)
            .count();
        (live == 4).then_some(())
    })
    .await;

    let run = async |range: std::ops::Range<usize>| -> (usize, Duration) {
        let started = Instant::now();
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
        let mut tasks = Vec::new();
        for n in range {
            let permit = sem.clone().acquire_owned().await.unwrap();
            // Spread over 200 loopback addresses; the last 100 all come
            // from one address, as a flood, and meet the rate limit.
            let src = if n >= HOSTILE - 100 {
                [127, 0, 0, 5]
            } else {
                [127, 0, 1, (n % 200) as u8 + 20]
            };
            let creds = cams[n % 4].clone();
            tasks.push(tokio::spawn(async move {
                let r = hostile(n, src, creds).await;
                drop(permit);
                r
            }));
        }
        let mut closed = 0;
        for t in tasks {
            closed += usize::from(t.await.unwrap());
        }
        (closed, started.elapsed())
    };
    // A first round so the allocator has seen this kind of load.
    let (warm_closed, _) = run(0..90).await;
    assert_eq!(warm_closed, 90);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss_kib(pid);
    let attack_from = cctv_protocol::now_us() as i64;
    let (closed, took) = run(0..HOSTILE).await;
    let attack_to = cctv_protocol::now_us() as i64;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_kib(pid);
    println!(
        "{HOSTILE} hostile connections in {:.1} s, {closed} closed by the panel; \
         panel RSS {:.1} MB before, {:.1} MB after",
        took.as_secs_f64(),
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    assert_eq!(
        closed, HOSTILE,
        "every hostile peer was cut off by the panel"
    );
    assert!(
        rss_after < rss_before + 16 * 1024,
        "panel memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    let refused = catalog.auth_failures(10_000).await.unwrap();
    let mut by_code = std::collections::BTreeMap::new();
    for r in &refused {
        *by_code.entry(r.code.as_str()).or_insert(0) += 1;
    }
    println!("refusals recorded: {by_code:?}");
    for code in [
        "tls",
        "not_tls",
        "timeout",
        "protocol",
        "wrong_secret",
        "rate_limited",
    ] {
        assert!(by_code.contains_key(code), "no refusal recorded as {code}");
    }

    // Stop the panel cleanly so every segment is finished, then look at them.
    let log = tokio::task::spawn_blocking(move || panel.stop(Duration::from_secs(60), log))
        .await
        .unwrap();
    assert!(log.contains("panel engine stopped"), "{log}");
    let rows = catalog
        .recordings(&RecordingFilter::default())
        .await
        .unwrap();
    for cam in &cams {
        let mine: Vec<_> = rows.iter().filter(|r| r.camera_id == cam.id).collect();
        assert_eq!(
            mine.len(),
            1,
            "one unbroken segment for {}: {mine:?}",
            cam.id
        );
        let r = mine[0];
        assert!(r.start_us < attack_from && r.end_us > attack_to, "{r:?}");
        let probe = ffprobe(&dir.path().join("recordings").join(&r.path));
        let gap = probe
            .pts
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(0.0f64, f64::max);
        let secs = (r.end_us - r.start_us) as f64 / 1e6;
        println!(
            "{}: {} frames over {secs:.1} s, longest gap {:.0} ms",
            cam.id,
            probe.frames,
            gap * 1000.0
        );
        assert!(gap < 0.5, "{}: a gap of {:.0} ms", cam.id, gap * 1000.0);
        assert!(
            probe.frames as f64 >= secs * 10.0 * 0.9,
            "{}: {} frames in {secs:.1} s",
            cam.id,
            probe.frames
        );
    }
}

/// Streams `frames` frames at 10 fps as `creds`; how many it sent.
async fn honest(creds: Creds, frames: u64) -> u64 {
    use futures::SinkExt;
    let (mut conn, answer) = handshake(&creds, &creds.secret).await;
    assert!(
        matches!(answer, cctv_protocol::Message::Welcome(_)),
        "{answer:?}"
    );
    let jpeg = test_jpeg(320, 240, 90);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for seq in 0..frames {
        tick.tick().await;
        let frame = cctv_protocol::Message::Frame(cctv_protocol::Frame {
            seq,
            capture_us: cctv_protocol::now_us(),
            jpeg: jpeg.clone(),
            analysis: None,
            preview: None,
        });
        conn.send(frame).await.expect("the panel keeps the camera");
    }
    // Heartbeats until the last segment is safely closed by the panel.
    tokio::time::sleep(Duration::from_millis(300)).await;
    frames
}

/// The panel under a low descriptor limit (`ulimit -n 256`, soft and hard),
/// 600 idle connections from many addresses held open while two cameras
/// record one-second segments: the connections are capped below the
/// limit, and the honest cameras lose no frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_take_the_descriptors_recording_needs() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let data = dir.path().join("data");
    let cams: Vec<Creds> = (0..2)
        .map(|i| enroll_cli(&data, addr, &format!("cam{i}")))
        .collect();
    let cfg = dir.path().join("panel.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{0}/data\"\nrecordings_dir = \"{0}/recordings\"\n\
             heartbeat_ms = 500\nhandshake_timeout_ms = 30000\nmin_free_bytes = 0\nsegment_secs = 1\n\
             connect_burst_per_ip = 1000\nconnects_per_minute_per_ip = 100000\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut panel = Proc(
        std::process::Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 256 && exec \"$0\" serve --config \"$1\"")
            .arg(env!("CARGO_BIN_EXE_panel"))
            .arg(&cfg)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let log = panel.read_log();
    wait_for(Duration::from_secs(30), "the panel listening", async || {
        tokio::net::TcpStream::connect(addr).await.ok().map(|_| ())
    })
    .await;
    let senders: Vec<_> = cams
        .iter()
        .map(|c| tokio::spawn(honest(c.clone(), 80)))
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // 600 idle connections, 100 per address: more than the descriptors.
    let mut idle = Vec::new();
    for i in 0..600usize {
        let src = [127, 0, 1, (i / 100) as u8 + 1];
        if let Ok(s) = connect_from(src, addr).await {
            idle.push(s);
        }
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    drop(idle);
    let mut sent = Vec::new();
    for s in senders {
        sent.push(s.await.expect("an honest camera was cut off"));
    }
    let log = panel.stop(Duration::from_secs(60), log);
    assert!(!log.contains("Too many open files"), "{log}");
    let catalog = Catalog::open(&data.join("panel.db")).await.unwrap();
    for (cam, sent) in cams.iter().zip(sent) {
        let rows = catalog
            .recordings(&RecordingFilter {
                camera_id: Some(cam.id.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        let recorded: u64 = rows
            .iter()
            .map(|r| ffprobe(&dir.path().join("recordings").join(&r.path)).frames)
            .sum();
        assert_eq!(
            recorded,
            sent,
            "{}: frames lost ({} segments)\n{log}",
            cam.id,
            rows.len()
        );
    }
}
