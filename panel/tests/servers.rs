//! Several recording servers on one PostgreSQL catalog: real `panel serve`
//! processes, each with its own recordings, real agents, a real PostgreSQL
//! server. Every panel lists every camera with its server; a server killed
//! with `kill -9` hands its cameras to the next panel their agents list,
//! nothing is lost, and its recordings are there again when it returns.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use cctv_engine::catalog::{CameraState, Catalog, RecordingRow};
use cctv_engine::config::PanelConfig;
use support::forward::{self, agent_flags, frame_log};
use support::postgres::Postgres;
use support::*;

/// `panel camera add` against the server's config (its catalog, its
/// certificate): the credentials it prints.
fn enroll_on(dir: &Path, addr: std::net::SocketAddr, id: &str) -> Creds {
    let config = dir.join("panel.toml");
    enroll_with(&["--config", config.to_str().unwrap()], addr, id)
}

/// `panel cameras --json` as any panel's operator runs it.
fn cameras(url: &str) -> Vec<serde_json::Value> {
    let out = panel_cmd(&["cameras", "--database", url, "--json"]);
    assert!(
        out.status.success(),
        "panel cameras: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn camera<'a>(list: &'a [serde_json::Value], id: &str) -> Option<&'a serde_json::Value> {
    list.iter().find(|c| c["id"] == id)
}

fn is(list: &[serde_json::Value], id: &str, state: &str, server: &str) -> bool {
    camera(list, id).is_some_and(|c| c["state"] == state && c["server"] == server)
}

async fn until_listening(port: u16) {
    wait_for(Duration::from_secs(30), "the panel to listen", async || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| ())
    })
    .await
}

#[tokio::test]
async fn two_servers_share_one_catalog_and_a_killed_one_hands_its_cameras_over() {
    let pg = Postgres::start();
    let url = pg.url();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (port_a, port_b) = (free_port(), free_port());
    let config = |id: &str| {
        format!(
            "database = \"{url}\"\nserver_id = \"{id}\"\nsegment_secs = 4\nretention_interval_secs = 3600\n"
        )
    };
    let mut a = panel_serve_with(dir_a.path(), port_a, "warn", &config("a"));
    let _b = panel_serve_with(dir_b.path(), port_b, "warn", &config("b"));
    until_listening(port_a).await;
    until_listening(port_b).await;
    let addr = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));

    // Enrolled once, on either server: the secret is the catalog's.
    let door = enroll_on(dir_a.path(), addr(port_a), "door");
    let gate = enroll_on(dir_a.path(), addr(port_a), "gate");
    let yard = enroll_on(dir_b.path(), addr(port_b), "yard");
    let fingerprint_b = yard.fingerprint.unwrap().to_string();
    let log = frame_log(dir_a.path());
    let panel_b = addr(port_b).to_string();
    let mut door_flags = agent_flags(&log, &["--panel", &panel_b]);
    door_flags.extend(["--panel-fingerprint", &fingerprint_b, "--failover", "3"]);
    let door_agent = start_agent(&door, &door_flags);
    let pattern = [
        "--source",
        "test-pattern:320x240",
        "--fps",
        "10",
        "--no-analysis",
    ];
    let _gate = start_agent(&gate, &pattern);
    let _yard = start_agent(&yard, &pattern);

    // Any panel's list has every camera, on its server.
    wait_for(
        Duration::from_secs(30),
        "all three cameras live",
        async || {
            let list = cameras(&url);
            (is(&list, "door", "live", "a")
                && is(&list, "gate", "live", "a")
                && is(&list, "yard", "live", "b"))
            .then_some(())
        },
    )
    .await;
    let list = cameras(&url);
    assert!(
        list.iter().all(|c| c["server_state"] == "running"),
        "{list:#?}"
    );
    // A third panel's wall has all three, each with its server's word.
    let dir_c = tempfile::tempdir().unwrap();
    let c = start_engine(PanelConfig {
        database: Some(url.clone()),
        server_id: "c".into(),
        ..support::config(dir_c.path())
    })
    .await;
    let on_wall = |id: &str, state: CameraState, detail: &str| {
        c.camera(id).is_some_and(|s| {
            s.state == state && s.detail.starts_with(detail) && !s.server.is_empty()
        })
    };
    wait_for(
        Duration::from_secs(20),
        "the other servers' cameras on c's wall",
        async || {
            (on_wall("door", CameraState::Live, "on server a")
                && on_wall("gate", CameraState::Live, "on server a")
                && on_wall("yard", CameraState::Live, "on server b"))
            .then_some(())
        },
    )
    .await;
    // Their live pictures come over the viewing links from a and b.
    let pictures = |id: &str| c.camera(id).map_or(0, |s| s.frames_received);
    wait_for(
        Duration::from_secs(20),
        "live pictures of a's and b's cameras on c",
        async || {
            ["door", "gate", "yard"]
                .iter()
                .all(|id| pictures(id) >= 10)
                .then_some(())
        },
    )
    .await;
    let frame = c.watch_frames("yard").unwrap().borrow().clone().unwrap();
    assert_eq!((frame.width, frame.height), (320, 240));
    assert!(cctv_engine::jpeg::check(&frame.jpeg, 1 << 20).is_ok());

    // Some of door's recording on a, then a dies.
    let catalog = Catalog::open_postgres(&url).await.unwrap();
    wait_for(Duration::from_secs(30), "door recorded on a", async || {
        let rows = forward::all_recordings(&catalog, "door").await;
        rows.iter()
            .any(|r| r.server_id == "a" && r.frames >= 20)
            .then_some(())
    })
    .await;
    a.signal("KILL");
    let _ = a.0.wait();
    let killed = Instant::now();
    let killed_us = cctv_engine::time::now_us();

    // door's agent moves to b on its own; its frames wait in its spool.
    wait_for(Duration::from_secs(30), "door live on b", async || {
        is(&cameras(&url), "door", "live", "b").then_some(())
    })
    .await;
    let moved = killed.elapsed();
    assert!(
        moved < Duration::from_secs(15),
        "door took {moved:?} to move to b"
    );
    // gate lists only a: offline, and the list says why.
    wait_for(
        Duration::from_secs(40),
        "gate offline: server a unreachable",
        async || {
            let list = cameras(&url);
            let g = camera(&list, "gate")?;
            (g["state"] == "offline"
                && g["detail"] == "server a unreachable"
                && g["server_state"] == "unreachable")
                .then_some(())
        },
    )
    .await;

    let door_pictures = pictures("door");
    wait_for(
        Duration::from_secs(20),
        "door's pictures on c, now from b",
        async || (pictures("door") >= door_pictures + 10).then_some(()),
    )
    .await;
    wait_for(
        Duration::from_secs(20),
        "c's wall: gate's server unreachable, door on b",
        async || {
            (on_wall("gate", CameraState::Offline, "server a unreachable")
                && on_wall("door", CameraState::Live, "on server b"))
            .then_some(())
        },
    )
    .await;
    // History on c cannot play what a holds while a is down, and says why.
    let held_by_a = forward::all_recordings(&catalog, "door")
        .await
        .into_iter()
        .find(|r| {
            r.server_id == "a" && r.status != cctv_engine::catalog::RecordingStatus::Recording
        })
        .expect("a finished recording of door on a");
    let why = c.open_recording(&held_by_a).await.unwrap_err().to_string();
    assert!(why.contains("server a unreachable"), "{why}");

    // a returns: its spans are listed again, closed and playable; gate
    // comes back to it.
    let restarted_us = cctv_engine::time::now_us();
    let _a = panel_serve_with(dir_a.path(), port_a, "warn", &config("a"));
    wait_for(
        Duration::from_secs(40),
        "gate live on a again",
        async || is(&cameras(&url), "gate", "live", "a").then_some(()),
    )
    .await;
    let cutoff_us = cctv_engine::time::now_us() - 1_000_000;
    let agent = forward::until_acked(&log, cutoff_us, Duration::from_secs(60)).await;
    // door's agent stops: every recording of it is closed.
    drop(door_agent);
    let rows: Vec<RecordingRow> = wait_for(
        Duration::from_secs(30),
        "door's recordings closed",
        async || {
            let rows = forward::all_recordings(&catalog, "door").await;
            rows.iter()
                .all(|r| r.status != cctv_engine::catalog::RecordingStatus::Recording)
                .then_some(rows)
        },
    )
    .await;
    // a is back: c plays its recording, fetched from a, frame for frame.
    let held = rows.iter().find(|r| r.id == held_by_a.id).unwrap();
    let index = c.open_recording(held).await.unwrap();
    assert_eq!(index.frames.len() as i64, held.frames);
    let jpeg = c.recording_frame(held, index.frames[0]).await.unwrap();
    assert!(cctv_engine::jpeg::check(&jpeg, 1 << 20).is_ok());
    let copy = c.recording_path(held).await.unwrap();
    assert!(copy.starts_with(dir_c.path()), "{copy:?}");
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(dir_a.path().join("recordings").join(&held.path)).unwrap(),
        "the copy is the file a holds"
    );
    let on_a: Vec<_> = rows
        .iter()
        .filter(|r| r.server_id == "a")
        .cloned()
        .collect();
    let on_b: Vec<_> = rows
        .iter()
        .filter(|r| r.server_id == "b")
        .cloned()
        .collect();
    assert!(!on_a.is_empty() && !on_b.is_empty(), "{rows:#?}");
    // door's agent goes back to a once a answers again, and sends it what
    // b had not acknowledged yet (backfilled).
    assert!(
        on_a.iter()
            .all(|r| r.backfilled || r.start_us < killed_us || r.start_us >= restarted_us),
        "a recorded nothing while it was down: {on_a:#?}"
    );
    let recorded_a = forward::probed_times(&dir_a.path().join("recordings"), &on_a);
    let recorded_b = forward::probed_times(&dir_b.path().join("recordings"), &on_b);
    // Each server has each frame once; together they have every frame.
    forward::assert_once(&recorded_a, &on_a);
    forward::assert_once(&recorded_b, &on_b);
    let recorded: Vec<i64> = recorded_a.iter().chain(&recorded_b).copied().collect();
    let due = agent.captured_until(cutoff_us);
    forward::assert_all_recorded(&due, &recorded);
    // On both servers only what one had recorded but not acknowledged when
    // the agent left it (the README says so): the last seconds before a
    // was killed, and before door went back to a.
    let on_both: Vec<i64> = recorded_a
        .iter()
        .copied()
        .filter(|t| recorded_b.iter().any(|u| (t - u).abs() <= 2_000))
        .collect();
    let before_a_switch = |t: &i64| {
        (killed_us - 10_000_000..=killed_us).contains(t)
            || (restarted_us - 10_000_000..=restarted_us + 15_000_000).contains(t)
    };
    assert!(
        on_both.iter().all(before_a_switch),
        "frames on both servers that were not the last moments before a switch: {on_both:?} \
         (a killed at {killed_us}, started again at {restarted_us})"
    );
    eprintln!(
        "door moved to b {:.1} s after a was killed; {} frames on a, {} on b ({} backfilled rows), {} on both",
        moved.as_secs_f64(),
        on_a.iter().map(|r| r.frames).sum::<i64>(),
        on_b.iter().map(|r| r.frames).sum::<i64>(),
        on_b.iter().filter(|r| r.backfilled).count(),
        on_both.len()
    );
}

/// Opens a viewing of the panel at `addr` as `server`, proving `secret`:
/// the panel's answer to the proof.
async fn view_answer(
    addr: std::net::SocketAddr,
    pin: Option<cctv_protocol::tls::Fingerprint>,
    server: &str,
    secret: [u8; 32],
) -> cctv_protocol::Message {
    use cctv_protocol::{Codec, Limits, Message, ViewHello};
    use futures::{SinkExt, StreamExt};
    let io = cctv_engine::tls::connect(&addr.to_string(), pin)
        .await
        .unwrap();
    let mut conn = tokio_util::codec::Framed::new(io, Codec::new(Limits::control_only()));
    let hello = |proof: Vec<u8>| {
        Message::ViewHello(ViewHello {
            server_id: server.into(),
            proof: proof.into(),
        })
    };
    conn.send(hello(vec![])).await.unwrap();
    let Some(Ok(Message::Challenge(c))) = conn.next().await else {
        panic!("no challenge");
    };
    let secret = cctv_protocol::auth::Secret::from_bytes(secret);
    let proof = cctv_protocol::view::viewer_proof(&secret, &c.nonce, server);
    conn.send(hello(proof.to_vec())).await.unwrap();
    conn.next().await.unwrap().unwrap()
}

/// A panel that cannot prove a server's secret sees no camera: refused,
/// with the reason, and the refusal counted like any other.
#[tokio::test]
async fn a_viewer_without_its_servers_secret_is_refused() {
    use cctv_protocol::Message;
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let a = start_engine(PanelConfig {
        database: Some(pg.url()),
        server_id: "a".into(),
        ..support::config(dir.path())
    })
    .await;
    let catalog = Catalog::open_postgres(&pg.url())
        .await
        .unwrap()
        .with_server("b");
    catalog
        .register_server("127.0.0.1:1", "elsewhere", "", cctv_engine::time::now_us())
        .await
        .unwrap();
    let (addr, pin) = (a.local_addr(), a.fingerprint());
    let refused = |m: Message| match m {
        Message::Reject { reason } => reason,
        other => panic!("not refused: {other:?}"),
    };
    assert_eq!(
        refused(view_answer(addr, pin, "b", [9; 32]).await),
        "wrong secret"
    );
    let unknown = refused(view_answer(addr, pin, "nobody", [9; 32]).await);
    assert!(
        unknown.contains("no recording server \"nobody\""),
        "{unknown}"
    );
    wait_for(
        Duration::from_secs(10),
        "both refusals counted",
        async || {
            let rows = catalog.auth_failures(10).await.unwrap();
            (rows.len() >= 2 && rows.iter().all(|r| r.server_id == "a")).then_some(())
        },
    )
    .await;
    // The right secret is let in.
    let right = catalog.server_secret("b").await.unwrap().unwrap();
    let answer = view_answer(addr, pin, "b", right).await;
    assert!(matches!(answer, Message::Welcome(_)), "{answer:?}");
}
