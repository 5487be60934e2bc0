//! The `panel` command as a shell user meets it: output piped into a reader
//! that stops early (`| head -1`) ends the command quietly.

use std::process::{Command, Stdio};

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
    for i in 0..20 {
        catalog
            .add_auth_failure(
                i,
                "127.0.0.9:4000",
                Some("door"),
                cctv_engine::catalog::RefusalCode::WrongSecret,
                "wrong secret",
                None,
            )
            .await
            .unwrap();
    }
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
