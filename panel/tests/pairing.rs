//! Pairing instead of pasting secrets: `panel camera add --pair` shows a
//! one-time code; `camera-agent pair HOST:PORT CODE` on the camera host
//! fetches the camera's settings over TLS, pins the panel, and writes its
//! config. The code works once, and not after it expires.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use cctv_engine::Engine;
use cctv_engine::catalog::{CameraState, EventKind, StoredKey};
use support::*;

/// `panel camera add --pair` for `id`; its code and the fingerprint it shows.
fn add_with_code(
    data: &Path,
    addr: std::net::SocketAddr,
    id: &str,
    valid_secs: u64,
) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_panel"))
        .args([
            "camera",
            "add",
            "--id",
            id,
            "--name",
            "Front door",
            "--pair",
        ])
        .args(["--pair-valid-secs", &valid_secs.to_string()])
        .args(["--panel", &addr.to_string(), "--data"])
        .arg(data)
        .output()
        .expect("run panel camera add");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = text
        .lines()
        .find_map(|l| {
            l.split_once("pairing code ")
                .map(|(_, c)| c.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no code in: {text}"));
    let fingerprint = text
        .lines()
        .find_map(|l| {
            l.split_once("it must be ")
                .map(|(_, f)| f.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no fingerprint in: {text}"));
    assert!(
        text.contains(&format!("camera-agent pair {addr} {code}")),
        "{text}"
    );
    (code, fingerprint)
}

fn pair(addr: std::net::SocketAddr, code: &str, config: &Path) -> Output {
    Command::new(agent_binary())
        .args(["pair", &addr.to_string(), code, "--config"])
        .arg(config)
        .output()
        .expect("run camera-agent pair")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pairing_code_works_once_and_not_after_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).await.unwrap();
    let addr = engine.local_addr();
    let data = engine.config().data_dir.clone();
    let (code, shown) = add_with_code(&data, addr, "door", 600);
    assert_eq!(shown, engine.fingerprint().unwrap().to_string());

    // The installer's config already says what to capture; pairing keeps it.
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        "# the porch camera\nsource = \"test-pattern:320x240\"\nfps = 10\n",
    )
    .unwrap();
    let out = pair(addr, &code.to_lowercase(), &cfg);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains(&shown),
        "the agent shows the fingerprint to compare: {said}"
    );
    let written = std::fs::read_to_string(&cfg).unwrap();
    let mode = std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the config holds the secret");
    assert!(
        written.contains("# the porch camera") && written.contains("fps = 10"),
        "{written}"
    );
    let settings: toml::Table = toml::from_str(&written).unwrap();
    let StoredKey::Valid(secret) = engine.catalog().camera_key("door").await.unwrap() else {
        panic!("door has no secret");
    };
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(settings["secret"].as_str(), Some(hex.as_str()));
    assert_eq!(settings["panel_fingerprint"].as_str(), Some(shown.as_str()));
    assert_eq!(settings["camera_id"].as_str(), Some("door"));
    assert_eq!(settings["panel"].as_str(), Some(addr.to_string().as_str()));

    // The agent streams with nothing but that file.
    let _agent = Proc(
        agent_command()
            .arg("--config")
            .arg(&cfg)
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    wait_for(Duration::from_secs(30), "door live", async || {
        engine
            .camera("door")
            .filter(|c| c.state == CameraState::Live && c.frames_received > 5)
    })
    .await;

    // The same code again: refused, counted, nothing written.
    let again = dir.path().join("again.toml");
    let out = pair(addr, &code, &again);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("wrong, used or expired pairing code"), "{err}");
    assert!(!again.exists(), "a refused pairing writes nothing");

    // A code past its time: refused.
    let (late, _) = add_with_code(&data, addr, "yard", 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let out = pair(addr, &late, &again);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expired"));
    assert!(!again.exists());

    let refused = wait_for(
        Duration::from_secs(10),
        "both refusals counted",
        async || {
            let rows = engine.refused(20).await.unwrap();
            let wrong: i64 = rows
                .iter()
                .filter(|r| r.code.as_str() == "wrong_code")
                .map(|r| r.attempts)
                .sum();
            (wrong == 2).then_some(rows)
        },
    )
    .await;
    assert!(!refused.is_empty());
    let events = engine
        .catalog()
        .events(Some("door"), None, None, 50, 0)
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e.kind == EventKind::Paired),
        "{events:?}"
    );
    engine.shutdown().await;
}

/// A code mistyped is refused before anything crosses the network.
#[test]
fn a_malformed_code_is_refused_at_once() {
    let out = pair(
        "127.0.0.1:9".parse().unwrap(),
        "ABCDE-FGHJ",
        Path::new("/tmp/x.toml"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("10 characters"));
}
