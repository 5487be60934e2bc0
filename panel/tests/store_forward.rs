//! Store-and-forward with real processes: a real agent keeps its frames in
//! its spool while the network or the panel is down, and sends them when
//! it can; the panel records them at their true times. The agent's own log
//! of what it captured (`--frame-log`) is the reference; the recordings
//! are read with ffprobe.

mod support;
mod ui;

use std::time::{Duration, Instant};

use cctv_engine::catalog::{Catalog, EventFilter, EventKind};
use support::forward::*;
use support::proxy::{Fault, FaultProxy};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_of_blackhole_costs_no_frame_and_live_video_returns_at_once() {
    const OUTAGE: Duration = Duration::from_secs(60);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.segment_secs = 20;
    let recordings = cfg.recordings_dir.clone();
    let engine = start_engine(cfg).await;
    let mut creds = enroll(&engine, "door", "Door").await;
    let proxy = FaultProxy::start(creds.addr).await;
    creds.addr = proxy.addr;
    let log = frame_log(dir.path());
    let agent = start_agent(&creds, &agent_flags(&log, &[]));
    until_frames(&engine, "door", 30).await;

    proxy.set(Fault::Blackhole);
    let cut_us = cctv_engine::time::now_us();
    tokio::time::sleep(OUTAGE).await;
    let back = Instant::now();
    let back_us = cctv_engine::time::now_us();
    proxy.set(Fault::Pass);
    // Live: a frame captured after the route came back is on the wall.
    wait_for(Duration::from_secs(10), "a live frame", async || {
        engine
            .camera("door")
            .filter(|c| c.last_frame_us.is_some_and(|t| t >= back_us))
            .map(|_| ())
    })
    .await;
    let to_live = back.elapsed();
    assert!(
        to_live <= Duration::from_secs(2),
        "live again {:.1} s after the route came back",
        to_live.as_secs_f64()
    );

    let cutoff = back_us + 3_000_000;
    let agent_log = until_acked(&log, cutoff, Duration::from_secs(90)).await;
    agent.signal("TERM");
    let rows = finished_recordings(&engine, "door").await;
    let times = probed_times(&recordings, &rows);
    assert_once(&times, &rows);
    let due = agent_log.captured_until(cutoff);
    let in_outage = captured_in(&due, cut_us..back_us);
    assert!(
        in_outage >= 500,
        "{in_outage} frames captured during the outage (10 fps for 60 s)"
    );
    assert_all_recorded(&due, &times);
    assert!(
        rows.iter()
            .any(|r| r.backfilled && r.start_us < back_us && r.end_us > cut_us),
        "the outage is covered by backfilled recordings: {rows:?}"
    );
    // The backfill is in the camera's history: from, to, frames.
    let events = engine
        .catalog()
        .find_events(&EventFilter {
            camera_id: Some("door".into()),
            kind: Some(EventKind::Backfill),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let frames_told: u64 = events
        .iter()
        .filter_map(|e| e.detail.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    // All but the last few seconds (at most 40 frames), captured while
    // connecting again: those open the live recording.
    assert!(
        frames_told as usize + 45 >= in_outage,
        "backfill events tell {frames_told} frames of {in_outage}: {events:?}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panel_killed_and_back_30_s_later_loses_no_frame() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let data = dir.path().join("data");
    let creds = enroll_cli(&data, addr, "door");
    let mut panel = panel_serve(dir.path(), port, "warn");
    let log = frame_log(dir.path());
    let agent = start_agent(&creds, &agent_flags(&log, &[]));
    let db = data.join("panel.db");
    wait_for(Duration::from_secs(30), "the catalog", async || {
        db.exists().then_some(())
    })
    .await;
    let catalog = Catalog::open(&db).await.unwrap();
    wait_for(Duration::from_secs(30), "a recording", async || {
        (!all_recordings(&catalog, "door").await.is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    panel.signal("KILL");
    let _ = panel.0.wait();
    let killed_us = cctv_engine::time::now_us();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let mut panel = panel_serve(dir.path(), port, "warn");
    let panel_log = panel.read_log();
    let back_us = cctv_engine::time::now_us();

    let cutoff = back_us + 3_000_000;
    let agent_log = until_acked(&log, cutoff, Duration::from_secs(90)).await;
    agent.signal("TERM");
    let mut agent = agent;
    let _ = tokio::task::spawn_blocking(move || agent.0.wait()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    panel.stop(Duration::from_secs(60), panel_log);
    let rows = all_recordings(&catalog, "door").await;
    let times = probed_times(&dir.path().join("recordings"), &rows);
    assert_once(&times, &rows);
    let due = agent_log.captured_until(cutoff);
    let in_outage = captured_in(&due, killed_us..back_us);
    assert!(
        in_outage >= 250,
        "{in_outage} frames captured while the panel was down"
    );
    assert_all_recorded(&due, &times);
    assert!(rows.iter().any(|r| r.backfilled), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_during_an_outage_keeps_its_spool() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start_engine(config(dir.path())).await;
    let recordings = dir.path().join("recordings");
    let mut creds = enroll(&engine, "door", "Door").await;
    let proxy = FaultProxy::start(creds.addr).await;
    creds.addr = proxy.addr;
    let log = frame_log(dir.path());
    let spool = fresh_spool_dir();
    let spool_arg = spool.to_str().unwrap();
    let flags = agent_flags(&log, &["--spool-dir", spool_arg]);
    let agent = start_agent(&creds, &flags);
    until_frames(&engine, "door", 20).await;
    // The route goes, and the agent is killed in the middle of it.
    proxy.set(Fault::Reset);
    tokio::time::sleep(Duration::from_secs(8)).await;
    agent.signal("KILL");
    drop(agent);
    let second_run = start_agent(&creds, &flags);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let before_kill = read_log(&log);
    proxy.set(Fault::Pass);
    let back_us = cctv_engine::time::now_us();

    let cutoff = back_us + 2_000_000;
    let agent_log = until_acked(&log, cutoff, Duration::from_secs(60)).await;
    second_run.signal("TERM");
    let rows = finished_recordings(&engine, "door").await;
    let times = probed_times(&recordings, &rows);
    assert_once(&times, &rows);
    let due = agent_log.captured_until(cutoff);
    assert_all_recorded(&due, &times);
    // Both runs' frames from the outage, in one numbering.
    let first_run_last = before_kill.captured.keys().copied().max().unwrap();
    assert!(
        agent_log.captured.keys().any(|s| *s > first_run_last),
        "the second run numbers on"
    );
    let outage = due.iter().filter(|(_, t)| *t < back_us).count();
    assert!(outage >= 150, "{outage}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_smaller_than_the_outage_drops_the_oldest_and_the_gap_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start_engine(config(dir.path())).await;
    let recordings = dir.path().join("recordings");
    let mut creds = enroll(&engine, "door", "Door").await;
    let proxy = FaultProxy::start(creds.addr).await;
    creds.addr = proxy.addr;
    let log = frame_log(dir.path());
    // Big frames into the smallest spool (16 MiB): full in a few seconds.
    let agent = start_agent(
        &creds,
        &[
            "--source",
            "test-pattern:1920x1080",
            "--fps",
            "15",
            "--quality",
            "100",
            "--no-analysis",
            "--spool-max-bytes",
            "16M",
            "--frame-log",
            log.to_str().unwrap(),
        ],
    );
    until_frames(&engine, "door", 15).await;
    // The rates are of the last whole second: one with frames in it.
    let frame_bytes = wait_for(Duration::from_secs(30), "the camera's rates", async || {
        let st = engine.camera("door")?;
        (st.fps > 0.0 && st.bitrate_bps > 0.0).then(|| st.bitrate_bps / 8.0 / st.fps)
    })
    .await;
    assert!(frame_bytes > 50_000.0, "frames of {frame_bytes} bytes");
    proxy.set(Fault::Blackhole);
    let down_us = cctv_engine::time::now_us();
    // Until the agent has captured twice what its spool holds.
    wait_for(
        Duration::from_secs(60),
        "frames past the limit",
        async || {
            let l = read_log(&log);
            let since = l.captured.values().filter(|t| **t >= down_us).count() as f64;
            (since * frame_bytes > 32.0 * 1024.0 * 1024.0).then_some(())
        },
    )
    .await;
    proxy.set(Fault::Pass);
    let back_us = cctv_engine::time::now_us();
    let st = wait_for(Duration::from_secs(30), "the drop reported", async || {
        engine
            .camera("door")
            .and_then(|c| c.spool)
            .filter(|s| s.dropped > 0)
    })
    .await;
    let overflow = wait_for(Duration::from_secs(10), "the overflow event", async || {
        engine
            .catalog()
            .find_events(&EventFilter {
                camera_id: Some("door".into()),
                kind: Some(EventKind::SpoolOverflow),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.end_us.is_some())
    })
    .await;
    let (from, to) = (overflow.at_us, overflow.end_us.unwrap());
    let cutoff = back_us + 2_000_000;
    let agent_log = until_acked_from(&log, to + 1, cutoff, Duration::from_secs(60)).await;
    // Nothing else broke: the camera is live and recording.
    let c = engine.camera("door").unwrap();
    assert_eq!(c.state, cctv_engine::catalog::CameraState::Live);
    assert!(c.recording, "{c:?}");
    agent.signal("TERM");
    let rows = finished_recordings(&engine, "door").await;
    let times = probed_times(&recordings, &rows);
    assert_once(&times, &rows);

    // The oldest went: frames sent live before the route died but not yet
    // acknowledged, then those captured since.
    assert!(from < down_us && to > down_us, "{overflow:?}");
    assert!(overflow.detail.contains("spool was full"), "{overflow:?}");
    // Nothing captured since the route died and dropped is recorded ...
    assert!(
        !times
            .iter()
            .any(|t| *t > down_us + 1_000 && *t < to - 1_000),
        "frames recorded inside the stretch the spool dropped"
    );
    let dropped = agent_log
        .captured
        .values()
        .filter(|t| (from..=to).contains(*t))
        .count() as u64;
    assert!(dropped > 0 && dropped <= st.dropped, "{dropped} vs {st:?}");
    // ... and everything after it is there.
    let kept: Vec<_> = agent_log
        .captured_until(cutoff)
        .into_iter()
        .filter(|(_, t)| *t > to)
        .collect();
    assert!(kept.len() > 30, "{}", kept.len());
    assert_all_recorded(&kept, &times);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_its_first_panel_gone_an_agent_moves_to_the_next_and_every_frame_is_acked_once() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = start_engine(config(dir_a.path())).await;
    let b = start_engine(config(dir_b.path())).await;
    let creds_a = enroll(&a, "door", "Door").await;
    // The standby knows the camera by the same secret, as an installer
    // enrols it there.
    let data_b = dir_b.path().join("data");
    let hex = creds_a.secret.to_hex();
    let out = panel_cmd(&[
        "camera",
        "add",
        "--data",
        data_b.to_str().unwrap(),
        "--id",
        "door",
        "--name",
        "Door",
        "--secret",
        &hex,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&hex));
    let proxy_a = FaultProxy::start(creds_a.addr).await;
    let proxy_b = FaultProxy::start(b.local_addr()).await;
    let log = frame_log(dir_a.path());
    let (pa, pb) = (proxy_a.addr.to_string(), proxy_b.addr.to_string());
    let fa = a.fingerprint().unwrap().to_string();
    let fb = b.fingerprint().unwrap().to_string();
    let mut cmd = agent_command();
    cmd.args(["--panel", &pa, "--panel", &pb])
        .args(["--panel-fingerprint", &fa, "--panel-fingerprint", &fb])
        .args(["--camera-id", "door", "--secret", &creds_a.secret.to_hex()])
        .args(["--max-backoff", "1", "--failover", "3"])
        .args(agent_flags(&log, &[]))
        .env("RUST_LOG", "warn");
    let agent = Proc(cmd.spawn().unwrap());
    let live = async |e: &cctv_engine::Engine, after_us: i64| {
        wait_for(Duration::from_secs(30), "live", async || {
            e.camera("door")
                .filter(|c| c.last_frame_us.is_some_and(|t| t > after_us))
                .map(|_| ())
        })
        .await
    };
    live(&a, 0).await;
    wait_for(
        Duration::from_secs(30),
        "frames acknowledged by the first",
        async || (!read_log(&log).acked_by(Some(&pa)).is_empty()).then_some(()),
    )
    .await;

    // The first panel's route dies for good.
    proxy_a.set(Fault::Blackhole);
    let gone = Instant::now();
    let gone_us = cctv_engine::time::now_us();
    live(&b, gone_us).await;
    let moved = gone.elapsed();
    // Silence noticed in 2 s, then 3 s of failing attempts.
    assert!(
        moved <= Duration::from_secs(9),
        "moved to the standby after {:.1} s",
        moved.as_secs_f64()
    );
    let cutoff = cctv_engine::time::now_us() + 3_000_000;
    let agent_log = until_acked(&log, cutoff, Duration::from_secs(60)).await;
    let by_a = agent_log.acked_by(Some(&pa));
    let by_b = agent_log.acked_by(Some(&pb));
    let both: Vec<_> = by_a.intersection(&by_b).collect();
    assert!(both.is_empty(), "acknowledged by both panels: {both:?}");
    assert!(!by_a.is_empty() && !by_b.is_empty());
    let due = agent_log.captured_until(cutoff);
    assert!(
        due.iter()
            .all(|(s, _)| by_a.contains(s) || by_b.contains(s))
    );

    // The first panel answers again: the agent goes back to it.
    proxy_a.set(Fault::Pass);
    let back = Instant::now();
    live(&a, cctv_engine::time::now_us()).await;
    assert!(
        back.elapsed() <= Duration::from_secs(8),
        "back on the first panel after {:.1} s",
        back.elapsed().as_secs_f64()
    );
    agent.signal("TERM");
    // What the standby acknowledged, it recorded.
    let rows_b = finished_recordings(&b, "door").await;
    let times_b = probed_times(&dir_b.path().join("recordings"), &rows_b);
    assert_once(&times_b, &rows_b);
    let at_b: Vec<_> = due
        .iter()
        .filter(|(s, _)| by_b.contains(s))
        .copied()
        .collect();
    assert!(at_b.len() >= 30, "{}", at_b.len());
    assert_all_recorded(&at_b, &times_b);
    a.shutdown().await;
    b.shutdown().await;
}

/// What an operator sees of an outage: the spool at the agent, a badge
/// while the camera is live but still backfilling, and the progress.
#[test]
fn the_window_shows_the_spool_and_a_badge_while_backfilling() {
    let mut w = ui::world(600);
    let mut creds = w.rt.block_on(enroll(&w.engine, "gate", "Gate"));
    let proxy = w.rt.block_on(FaultProxy::start(creds.addr));
    creds.addr = proxy.addr;
    // A slow backfill, so there is time to see it.
    let _agent = start_agent(
        &creds,
        &[
            "--source",
            "test-pattern:320x240",
            "--fps",
            "10",
            "--no-analysis",
            "--backfill-rate",
            "48K",
        ],
    );
    w.until("gate live with its spool", |a| {
        a.camera("gate").is_some_and(|c| c.spool.is_some())
    });
    w.send(cctv_window::app::Message::Focus("gate".into()));
    assert!(w.sees("Spool"), "the focus view has a spool line");
    w.send(cctv_window::app::Message::Show(
        cctv_window::app::Screen::Wall,
    ));

    proxy.set(Fault::Blackhole);
    w.until_within(Duration::from_secs(20), "gate offline", |a| {
        a.camera("gate")
            .is_some_and(|c| c.state == cctv_engine::catalog::CameraState::Offline)
    });
    // Ten seconds of outage: more than opens the live stream again.
    std::thread::sleep(Duration::from_secs(10));
    proxy.set(Fault::Pass);
    w.until_within(Duration::from_secs(20), "gate backfilling", |a| {
        a.camera("gate")
            .and_then(|c| c.spool)
            .is_some_and(|s| s.backfilling())
    });
    assert!(w.sees_prefix("BACKFILLING"), "the wall's badge");

    w.send(cctv_window::app::Message::Focus("gate".into()));
    w.until("progress", |a| {
        a.camera("gate").is_some_and(|c| c.backfilled > 0)
    });
    let line = cctv_window::wall::spool(w.app.camera("gate").unwrap());
    assert!(
        line.contains("to go") && line.contains("at the agent"),
        "{line}"
    );
    assert!(w.sees(&line) || w.sees_prefix("BACKFILLING"), "{line}");
    // The newest 40 frames of the outage opened the live stream; the rest
    // (some 40 more) came as backfill.
    w.until_within(Duration::from_secs(60), "the backfill done", |a| {
        a.camera("gate")
            .and_then(|c| c.spool)
            .is_some_and(|s| !s.backfilling())
            && a.camera("gate").is_some_and(|c| c.backfilled >= 20)
    });
    w.send(cctv_window::app::Message::Show(
        cctv_window::app::Screen::Wall,
    ));
    assert!(!w.sees_prefix("BACKFILLING"), "the badge goes once done");
}

/// A spool that cannot be written (here its directory cannot exist: a
/// file is in the way) costs only the spool: the agent says why and streams
/// as an agent without one does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_spool_cannot_be_written_streams_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start_engine(config(dir.path())).await;
    let creds = enroll(&engine, "door", "Door").await;
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let spool = blocker.join("spool");
    let stderr = dir.path().join("agent.log");
    let mut cmd = std::process::Command::new(agent_binary());
    cmd.args(creds.agent_args())
        .args(["--source", "test-pattern:320x240", "--fps", "10"])
        .arg("--spool-dir")
        .arg(&spool)
        .env("RUST_LOG", "warn")
        .stderr(std::fs::File::create(&stderr).unwrap());
    let _agent = Proc(cmd.spawn().unwrap());
    until_frames(&engine, "door", 20).await;
    let said = std::fs::read_to_string(&stderr).unwrap();
    assert!(
        said.contains("no spool") && said.contains("lost"),
        "the agent says it works without a spool: {said}"
    );
    let c = engine.camera("door").unwrap();
    assert!(c.recording, "{c:?}");
    assert_eq!(c.spool, None, "an agent without a spool reports none");
    // And it stays on one connection: a panel does not ping an agent
    // without a spool, and such an agent does not wait for pings.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let said = std::fs::read_to_string(&stderr).unwrap();
    assert!(!said.contains("connection lost"), "{said}");
    engine.shutdown().await;
}
