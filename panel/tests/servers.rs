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
    let mut recorded = forward::probed_times(&dir_a.path().join("recordings"), &on_a);
    recorded.extend(forward::probed_times(
        &dir_b.path().join("recordings"),
        &on_b,
    ));
    let due = agent.captured_until(cutoff_us);
    forward::assert_all_recorded(&due, &recorded);
    forward::assert_once(&recorded, &rows);
    eprintln!(
        "door moved to b {:.1} s after a was killed; {} frames on a, {} on b ({} backfilled rows)",
        moved.as_secs_f64(),
        on_a.iter().map(|r| r.frames).sum::<i64>(),
        on_b.iter().map(|r| r.frames).sum::<i64>(),
        on_b.iter().filter(|r| r.backfilled).count()
    );
}
