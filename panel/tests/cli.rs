//! The `panel` command as a shell user meets it: output piped into a reader
//! that stops early (`| head -1`) ends the command quietly; an export made
//! and dispatched from the command line.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

use cctv_engine::catalog::Catalog;

/// Runs `panel ARGS` with its standard output closed before it writes:
/// every write meets a broken pipe. Returns (exit code, stderr).
fn with_reader_gone(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_panel"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn listings_end_quietly_when_the_reader_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    // Something to list: cameras (enrolled through the CLI, which prints
    // the agent's settings) and refused connections.
    for id in ["door", "yard"] {
        let (code, stderr) = with_reader_gone(&["camera", "add", "--data", data, "--id", id]);
        assert_eq!(code, Some(0), "camera add: {stderr}");
        assert!(!stderr.contains("panicked"), "camera add: {stderr}");
    }
    let catalog = Catalog::open(&dir.path().join("data/panel.db"))
        .await
        .unwrap();
    // Twenty addresses: twenty rows (attempts from one address are counted in one).
    let refusals: Vec<_> = (0..20u8)
        .map(|i| {
            cctv_engine::catalog::Refusal::new(
                i64::from(i),
                std::net::SocketAddr::from(([127, 0, 0, i + 1], 4000)),
                Some("door"),
                cctv_engine::catalog::RefusalCode::WrongSecret,
                "wrong secret",
            )
        })
        .collect();
    catalog.add_refusals(&refusals).await.unwrap();
    catalog.close().await;

    for args in [
        vec!["refused", "--json"],
        vec!["refused"],
        vec!["cameras", "--json"],
        vec!["cameras"],
    ] {
        let mut full = args.clone();
        full.extend(["--data", data]);
        let (code, stderr) = with_reader_gone(&full);
        assert_eq!(code, Some(0), "panel {}: {stderr}", args.join(" "));
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "panel {}: {stderr}",
            args.join(" ")
        );
    }
}

/// Runs `panel ARGS`; (exit code, stdout, stderr).
fn panel(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_panel"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_is_dispatched_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.segment_secs = 1;
    // Two finished recordings, then the panel stops.
    let engine = start_engine(cfg.clone()).await;
    let creds = enroll(&engine, "door", "Front door").await;
    let cam = FakeCamera::start(&creds, 10).await;
    let catalog = engine.catalog().clone();
    wait_for(
        Duration::from_secs(30),
        "two finished recordings",
        async || {
            let rows = cctv_engine::evidence::export::select(&catalog, Some("door"), None, None)
                .await
                .ok()?;
            (rows.len() >= 2).then_some(())
        },
    )
    .await;
    drop(cam);
    engine.shutdown().await;

    let nas = dir.path().join("nas");
    let toml = dir.path().join("panel.toml");
    std::fs::write(
        &toml,
        format!(
            "data_dir = {:?}\nrecordings_dir = {:?}\n\n[[dispatch_targets]]\nname = \"nas\"\ndir = {:?}\n",
            cfg.data_dir, cfg.recordings_dir, nas
        ),
    )
    .unwrap();
    let toml = toml.to_str().unwrap();
    let (code, out, err) = panel(&["export", "--config", toml, "--camera", "door"]);
    assert_eq!(code, Some(0), "export: {err}");
    let zip = out.trim().to_string();
    assert!(
        zip.ends_with(".zip") && std::path::Path::new(&zip).exists(),
        "{out}"
    );

    // A target the config does not have: refused, nothing sent.
    let (code, _, err) = panel(&["dispatch", "--config", toml, &zip, "--target", "tape"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no dispatch target named \"tape\""), "{err}");
    assert!(!nas.exists());
    // A zip that is not one of this panel's exports: refused.
    let stray = dir.path().join("stray.zip");
    std::fs::copy(&zip, &stray).unwrap();
    let (code, _, err) = panel(&["dispatch", "--config", toml, stray.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("is not an export of this panel"), "{err}");

    // No panel runs on this catalog: the command sends it itself.
    let (code, out, err) = panel(&["dispatch", "--config", toml, &zip]);
    assert_eq!(code, Some(0), "dispatch: {err}");
    assert!(out.contains("dispatched to nas and acknowledged"), "{out}");
    let name = std::path::Path::new(&zip).file_name().unwrap();
    let copy = std::fs::read(nas.join(name)).unwrap();
    assert_eq!(copy, std::fs::read(&zip).unwrap(), "the copy is the export");
    let (code, out, _) = panel(&["verify", nas.join(name).to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn a_camera_name_the_agent_would_refuse_is_refused_when_the_camera_is_added() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let long = "n".repeat(cctv_protocol::MAX_NAME_LEN + 1);
    let (code, _, err) = panel(&[
        "camera", "add", "--data", data, "--id", "door", "--name", &long,
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("longer than 128 bytes"), "{err}");
    let (code, _, err) = panel(&[
        "camera", "add", "--data", data, "--id", "door", "--name", "a\nb",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("control character"), "{err}");
    // The longest name an agent sends is taken.
    let fits = "n".repeat(cctv_protocol::MAX_NAME_LEN);
    let (code, out, err) = panel(&[
        "camera", "add", "--data", data, "--id", "door", "--name", &fits,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&fits));
}
