//! Panorama benchmark: the winter pan clip stitched from the frames the
//! selector chooses, next to stitching every 5th frame, in one run.
//! Prints frames used, selection and stitch time, and the result's size.
//!
//! Run: `cargo bench -p panel --bench panorama` (needs ../shared/testdata).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use cctv_panorama::stitch::Mode;
use cctv_panorama::{self as panorama, Request, Source};

fn main() {
    let data = std::env::var_os("CCTV_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"));
    let clips = ["pan_winter_854x480.mp4", "pan_sunrise_640x360.mp4"];
    let tmp = tempfile::tempdir().unwrap();
    println!();
    println!(
        "{:<26} {:<16} {:>8} {:>12} {:>12} {:>14}  result",
        "clip", "frames from", "frames", "select (s)", "stitch (s)", "panorama"
    );
    for clip in clips {
        let video = data.join("video").join(clip);
        if !video.exists() {
            println!("{clip}: not found (set CCTV_TESTDATA)");
            continue;
        }
        for every in [None, Some(5)] {
            let label = match every {
                None => "selector".to_string(),
                Some(n) => format!("every {n}th"),
            };
            let req = Request {
                source: Source::Video(video.clone()),
                mode: Mode::Panorama,
                out: tmp
                    .path()
                    .join(format!("{clip}-{label}.jpg").replace(' ', "_")),
                worker: PathBuf::from(env!("CARGO_BIN_EXE_panel")),
                params: Default::default(),
                every,
            };
            let t = Instant::now();
            let r = panorama::run(&req, &Arc::new(AtomicBool::new(false)), &mut |_| {});
            let total = t.elapsed().as_secs_f64();
            match r {
                Ok(r) => println!(
                    "{:<26} {:<16} {:>8} {:>12.1} {:>12.1} {:>14}  ok ({:.0} s in all)",
                    clip,
                    label,
                    r.chosen.len(),
                    r.select_ms as f64 / 1000.0,
                    r.stitch_ms as f64 / 1000.0,
                    format!("{}x{}", r.width, r.height),
                    total
                ),
                Err(f) => println!(
                    "{:<26} {:<16} {:>8} {:>12} {:>12.1} {:>14}  FAILED: {}",
                    clip,
                    label,
                    f.chosen.len(),
                    "-",
                    f.stitch_ms as f64 / 1000.0,
                    "-",
                    f.message()
                ),
            }
        }
    }
}
