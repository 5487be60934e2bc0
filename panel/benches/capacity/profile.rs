//! The capacity benchmark's `--profile`: where the panel's CPU goes.

use std::process::{Command, Stdio};

use bytes::Bytes;

use super::common::{self, free_port};
use super::drive::{Target, drive};
use super::{Case, WARMUP, camera_ids, serve};

/// Samples the panel's stacks with `perf` (software clock) while K agents
/// stream, and prints where its time goes.
pub fn profile(case: Case, frames: &[Bytes]) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (cfg, _) = common::prepare_panel(dir.path(), port, &camera_ids(case.k), false, None);
    let (panel, addr) = serve(&cfg, port, None);
    let pid = panel.0.id();
    let data = dir.path().join("perf.data");
    let recorder = std::thread::spawn({
        let data = data.clone();
        move || {
            std::thread::sleep(WARMUP);
            Command::new("perf")
                .args([
                    "record",
                    "-q",
                    "-F",
                    "499",
                    "-e",
                    "cpu-clock",
                    "-g",
                    "-p",
                    &pid.to_string(),
                    "-o",
                ])
                .arg(&data)
                .args(["--", "sleep", "10"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
        }
    });
    let _ = drive(
        Target {
            addr,
            pid,
            floor: false,
        },
        case,
        frames,
    );
    match recorder.join() {
        Ok(Ok(s)) if s.success() => {
            let out = Command::new("perf")
                .args([
                    "report",
                    "--stdio",
                    "--no-children",
                    "--sort",
                    "symbol",
                    "--percent-limit",
                    "1",
                    "-g",
                    "none",
                    "-i",
                ])
                .arg(&data)
                .output()
                .expect("perf report");
            println!(
                "panel serve, {} cameras {}x{}@{}: where the CPU goes",
                case.k, case.w, case.h, case.fps
            );
            for line in String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains('%'))
            {
                println!("{line}");
            }
        }
        _ => println!("perf is not available (apt-get install linux-perf)"),
    }
}
