//! Panorama benchmark: each panning clip stitched from the frames the
//! selector chooses, with OpenCV's default stitcher settings and with ours
//! (neighbours-only matching, bundle adjustment stopped when it converges),
//! and from every 5th frame, in one run. Prints frames used, selection and
//! stitch time and the result's size, then ours against OpenCV's defaults
//! side by side with the target (under 4 s, width within 5%).
//!
//! Run: `cargo bench -p panel --bench panorama` (needs ../shared/testdata).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use cctv_panorama::stitch::Mode;
use cctv_panorama::{self as panorama, Request, Source};

/// One stitch of a clip: frames used, stitch seconds, panorama size.
struct Outcome {
    frames: usize,
    stitch_s: f64,
    size: Option<(i32, i32)>,
}

fn run(
    clip: &str,
    video: &Path,
    out: &Path,
    label: &str,
    every: Option<usize>,
    opencv_defaults: bool,
) -> Outcome {
    let req = Request {
        source: Source::Video(video.to_path_buf()),
        mode: Mode::Panorama,
        out: out.join(format!("{clip}-{label}.jpg").replace([' ', ','], "_")),
        worker: PathBuf::from(env!("CARGO_BIN_EXE_panel")),
        params: Default::default(),
        every,
        opencv_defaults,
        time_limit: None,
    };
    let t = Instant::now();
    let r = panorama::run(&req, &Arc::new(AtomicBool::new(false)), &mut |_| {});
    let total = t.elapsed().as_secs_f64();
    match r {
        Ok(r) => {
            println!(
                "{:<26} {:<26} {:>7} {:>11.1} {:>11.1} {:>12}  ok ({:.0} s in all)",
                clip,
                label,
                r.chosen.len(),
                r.select_ms as f64 / 1000.0,
                r.stitch_ms as f64 / 1000.0,
                format!("{}x{}", r.width, r.height),
                total
            );
            Outcome {
                frames: r.chosen.len(),
                stitch_s: r.stitch_ms as f64 / 1000.0,
                size: Some((r.width, r.height)),
            }
        }
        Err(f) => {
            println!(
                "{:<26} {:<26} {:>7} {:>11} {:>11.1} {:>12}  FAILED: {}",
                clip,
                label,
                f.chosen.len(),
                "-",
                f.stitch_ms as f64 / 1000.0,
                "-",
                f.message()
            );
            Outcome {
                frames: f.chosen.len(),
                stitch_s: f.stitch_ms as f64 / 1000.0,
                size: None,
            }
        }
    }
}

fn main() {
    let data = std::env::var_os("CCTV_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"));
    let clips = ["pan_winter_854x480.mp4", "pan_sunrise_640x360.mp4"];
    let tmp = tempfile::tempdir().unwrap();
    println!();
    println!(
        "{:<26} {:<26} {:>7} {:>11} {:>11} {:>12}  result",
        "clip", "frames from, stitcher", "frames", "select (s)", "stitch (s)", "panorama"
    );
    let mut summary = Vec::new();
    for clip in clips {
        let video = data.join("video").join(clip);
        if !video.exists() {
            println!("{clip}: not found (set CCTV_TESTDATA)");
            continue;
        }
        let defaults = run(
            clip,
            &video,
            tmp.path(),
            "selector, OpenCV defaults",
            None,
            true,
        );
        let ours = run(clip, &video, tmp.path(), "selector, ours", None, false);
        run(clip, &video, tmp.path(), "every 5th, ours", Some(5), false);
        summary.push((clip, defaults, ours));
    }
    println!();
    println!(
        "{:<26} {:>7} {:>16} {:>10} {:>8}   {:>22} {:>7}",
        "chosen frames stitched",
        "frames",
        "OpenCV defaults",
        "ours",
        "speed-up",
        "width: defaults, ours",
        "diff"
    );
    for (clip, d, o) in summary {
        let (dw, ow) = (d.size.map_or(0, |s| s.0), o.size.map_or(0, |s| s.0));
        println!(
            "{:<26} {:>7} {:>14.1} s {:>8.1} s {:>7.1}x   {:>13} {:>8} {:>6.1}%   target: under 4 s, width within 5%: {}",
            clip,
            o.frames.max(d.frames),
            d.stitch_s,
            o.stitch_s,
            d.stitch_s / o.stitch_s.max(0.001),
            dw,
            ow,
            100.0 * (ow as f64 - dw as f64) / (dw.max(1) as f64),
            if o.stitch_s < 4.0 && dw > 0 && (ow as f64 - dw as f64).abs() <= 0.05 * dw as f64 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
}
