//! The Debian packages, installed on this machine with `dpkg -i` as an
//! installer would: files, users and units in place, the installed
//! binaries run, settings kept on upgrade and removal, and everything else
//! gone after a purge.
//!
//! Needs root and `cargo deb` (CI has both: `.ci/run` runs as root and
//! `scripts/install-deps.sh` installs cargo-deb). The packages are made
//! from this test run's binaries (`cargo deb --no-build`), so the test
//! costs no release build; `scripts/package.sh` makes the release ones.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use support::*;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn sh(line: &str) -> String {
    run(Command::new("sh").args(["-c", line]))
}

/// Whether this machine may take the test: root, and `cargo deb` at hand.
fn can_install() -> bool {
    let root = String::from_utf8_lossy(&Command::new("id").arg("-u").output().unwrap().stdout)
        .trim()
        == "0";
    let deb = Command::new(env!("CARGO"))
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let ci = std::env::var("CI").as_deref() == Ok("true");
    assert!(
        !ci || (root && deb),
        "under CI=true the package test must run: root {root}, cargo deb {deb}"
    );
    if !(root && deb) {
        eprintln!("SKIPPED: installing packages needs root and cargo-deb");
    }
    root && deb
}

/// Makes the package of `crate_name` from `binary`, into `out`.
fn package(crate_name: &str, binary: &str, fake_target: &Path, out: &Path) -> std::path::PathBuf {
    let release = fake_target.join("release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::copy(target_dir().join(binary), release.join(binary)).unwrap();
    run(Command::new(env!("CARGO"))
        .args(["deb", "-p", crate_name, "--no-build", "--fast", "--output"])
        .arg(out)
        .env("CARGO_TARGET_DIR", fake_target)
        .current_dir(env!("CARGO_MANIFEST_DIR")));
    let name = if crate_name == "panel" {
        "cctv-panel"
    } else {
        crate_name
    };
    std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with(&format!("{name}_")))
        })
        .unwrap_or_else(|| panic!("no {name} package in {}", out.display()))
}

fn unit_path(name: &str) -> std::path::PathBuf {
    ["/lib/systemd/system", "/usr/lib/systemd/system"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no unit {name} installed"))
}

#[test]
fn both_packages_install_run_keep_their_settings_and_remove_cleanly() {
    if !can_install() {
        return;
    }
    // The binaries this run built (the agent: the suite's build).
    agent_binary();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("debs");
    std::fs::create_dir_all(&out).unwrap();
    let agent_deb = package("camera-agent", "camera-agent", &dir.path().join("t"), &out);
    let panel_deb = package("panel", "panel", &dir.path().join("t"), &out);
    let purge = || {
        let _ = Command::new("dpkg")
            .args(["-P", "camera-agent", "cctv-panel"])
            .output();
    };
    purge();
    // The panel's state outlives a purge (recordings are evidence): the
    // test takes away only what it made.
    let state_dir = Path::new("/var/lib/cctv-panel");
    let state_was_there = state_dir.exists();
    run(Command::new("dpkg")
        .arg("-i")
        .arg(&agent_deb)
        .arg(&panel_deb));

    // Files, modes, conffiles.
    let agent_cfg = Path::new("/etc/camera-agent/agent.toml");
    let panel_cfg = Path::new("/etc/cctv-panel/panel.toml");
    assert_eq!(
        std::fs::metadata(agent_cfg).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let panel_meta = std::fs::metadata(panel_cfg).unwrap();
    assert_eq!(panel_meta.permissions().mode() & 0o777, 0o640);
    let conffiles = sh("dpkg-query -W -f='${Conffiles}\\n' camera-agent cctv-panel");
    assert!(
        conffiles.contains("/etc/camera-agent/agent.toml"),
        "{conffiles}"
    );
    assert!(
        conffiles.contains("/etc/cctv-panel/panel.toml"),
        "{conffiles}"
    );
    let agent_unit = std::fs::read_to_string(unit_path("camera-agent.service")).unwrap();
    assert!(agent_unit.contains("User=camera-agent"), "{agent_unit}");
    let panel_unit = std::fs::read_to_string(unit_path("cctv-panel.service")).unwrap();
    assert!(
        panel_unit.contains("ExecStart=/usr/bin/panel serve"),
        "{panel_unit}"
    );

    // System users: the agent's in the video group; the panel owns its state.
    assert!(
        sh("id -nG camera-agent")
            .split_whitespace()
            .any(|g| g == "video")
    );
    let gid = sh("getent group cctv-panel | cut -d: -f3");
    assert_eq!(panel_meta.gid().to_string(), gid.trim());
    let state = std::fs::metadata("/var/lib/cctv-panel").unwrap();
    assert_eq!(state.uid().to_string(), sh("id -u cctv-panel").trim());

    // The installed binaries run: the packaged settings are valid ones.
    assert!(run(Command::new("/usr/bin/camera-agent").arg("--version")).contains("camera-agent"));
    assert!(run(Command::new("/usr/bin/camera-agent").args(["pair", "--help"])).contains("CODE"));
    // The installer's first step on the panel, as its user, with its settings.
    let as_panel = |args: &[&str]| {
        run(Command::new("runuser")
            .args(["-u", "cctv-panel", "--", "/usr/bin/panel"])
            .args(args))
    };
    let id = format!("door-{}", std::process::id());
    let added = as_panel(&[
        "camera",
        "add",
        "--config",
        "/etc/cctv-panel/panel.toml",
        "--id",
        &id,
        "--pair",
    ]);
    assert!(added.contains("pairing code"), "{added}");
    let cameras = as_panel(&["cameras", "--data", "/var/lib/cctv-panel/data"]);
    assert!(cameras.contains(&id), "{cameras}");
    let cfg = cctv_engine::config::PanelConfig::load(panel_cfg).unwrap();
    assert_eq!(cfg.data_dir, Path::new("/var/lib/cctv-panel/data"));

    // An upgrade (the same package again) keeps a changed setting.
    sh("echo 'fps = 5  # mine' >> /etc/camera-agent/agent.toml");
    run(Command::new("dpkg").arg("-i").arg(&agent_deb));
    assert!(
        std::fs::read_to_string(agent_cfg)
            .unwrap()
            .contains("# mine")
    );

    // Removal keeps the settings; purge takes them too.
    run(Command::new("dpkg").args(["-r", "camera-agent", "cctv-panel"]));
    assert!(!Path::new("/usr/bin/camera-agent").exists());
    assert!(!Path::new("/usr/bin/panel").exists());
    assert!(
        std::fs::read_to_string(agent_cfg)
            .unwrap()
            .contains("# mine")
    );
    purge();
    assert!(!agent_cfg.exists() && !panel_cfg.exists());
    let status = Command::new("dpkg")
        .args(["-s", "camera-agent"])
        .output()
        .unwrap();
    assert!(!status.status.success(), "still installed after a purge");
    assert!(state_dir.exists(), "a purge keeps the panel's recordings");
    if !state_was_there {
        std::fs::remove_dir_all(state_dir).unwrap();
    }
}
