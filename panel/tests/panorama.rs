//! Panoramas from the real stitching sets and panning clips in
//! ../shared/testdata, through the same worker process the panel uses, and
//! through the engine from a camera's recording.

mod support;

use cctv_engine::catalog::{PanoramaStatus, RecordingStatus};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use cctv_engine::PanoramaFrom;
use cctv_panorama::stitch::{Failure, Mode};
use cctv_panorama::{self as panorama, Request, Source};
use support::*;

fn request(source: Source, out: &Path, mode: Mode) -> Request {
    Request {
        source,
        mode,
        out: out.to_path_buf(),
        worker: PathBuf::from(env!("CARGO_BIN_EXE_panel")),
        params: Default::default(),
        every: None,
        opencv_defaults: false,
    }
}

fn run(req: &Request) -> Result<panorama::Report, Box<panorama::Failed>> {
    panorama::run(req, &Arc::new(AtomicBool::new(false)), &mut |_| {})
}

/// Widest input image of a set.
fn widest(dir: &Path) -> i32 {
    let mut w = 0;
    panorama::for_each_frame(&Source::Images(dir.to_path_buf()), &mut |_, m| {
        use opencv::prelude::*;
        w = w.max(m.cols());
        true
    })
    .unwrap();
    w
}

fn stitches(set: &str) {
    let Some(data) = testdata() else { return };
    let dir = data.join("stitching").join(set);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join(format!("{set}.jpg"));
    let r = run(&request(Source::Images(dir.clone()), &out, Mode::Panorama))
        .unwrap_or_else(|f| panic!("{set}: {}", f.message()));
    let widest = widest(&dir);
    assert!(
        r.width > widest,
        "{set}: panorama {}x{} is not wider than the widest input ({widest})",
        r.width,
        r.height
    );
    assert!(out.exists() && panorama::thumb_path(&out).exists());
    assert!(
        !panorama::samples_dir(&out).exists(),
        "samples are removed on success"
    );
}

#[test]
fn budapest_stitches() {
    stitches("budapest");
}

#[test]
fn weir_stitches() {
    stitches("weir");
}

#[test]
fn exposure_error_pair_stitches() {
    stitches("exposure_error_pair");
}

#[test]
fn apartment_stitches() {
    stitches("apartment");
}

#[test]
fn flower_stitches() {
    stitches("flower");
}

#[test]
fn boat_small_stitches() {
    stitches("boat_small");
}

#[test]
fn cathedral_gray_stitches() {
    stitches("cathedral_gray");
}

#[test]
fn glacier_pair_gray_stitches() {
    stitches("glacier_pair_gray");
}

#[test]
fn unrelated_pictures_fail_with_advice_and_samples() {
    let Some(data) = testdata() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("unrelated.jpg");
    let f = run(&request(
        Source::Images(data.join("stitching/unrelated_should_fail")),
        &out,
        Mode::Panorama,
    ))
    .expect_err("unrelated pictures must not stitch");
    assert_eq!(f.failure, Failure::NotEnoughOverlap);
    assert!(
        f.message()
            .contains("frames do not overlap: pan slower or choose a longer range")
    );
    let samples: Vec<_> = std::fs::read_dir(&f.samples)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".jpg"))
        .collect();
    assert_eq!(samples.len(), 4, "{samples:?}");
    assert!(!out.exists());
}

#[test]
fn newspaper_never_crashes_the_panel_and_stitches_as_scans() {
    let Some(data) = testdata() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = data.join("stitching/newspaper");
    // Panorama mode asks OpenCV for tens of GB here: a clear failure, no crash.
    if let Err(f) = run(&request(
        Source::Images(dir.clone()),
        &tmp.path().join("p.jpg"),
        Mode::Panorama,
    )) {
        assert!(!f.message().is_empty());
        eprintln!("newspaper in panorama mode: {}", f.message());
    }
    let r = run(&request(
        Source::Images(dir.clone()),
        &tmp.path().join("s.jpg"),
        Mode::Scans,
    ))
    .unwrap_or_else(|f| panic!("scans: {}", f.message()));
    assert!(r.height > widest(&dir) / 2);
}

#[test]
fn a_winter_pan_video_becomes_a_wide_panorama_from_few_frames() {
    let Some(data) = testdata() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("winter.jpg");
    let r = run(&request(
        Source::Video(data.join("video/pan_winter_854x480.mp4")),
        &out,
        Mode::Panorama,
    ))
    .unwrap_or_else(|f| panic!("{}", f.message()));
    assert!(r.width >= 3 * 854, "{}x{}", r.width, r.height);
    assert_eq!(r.stats.seen, 621);
    assert!(
        r.chosen.len() <= 621 / 5 / 4,
        "{} frames chosen",
        r.chosen.len()
    );
    eprintln!(
        "winter: {}x{} from {} of {} frames in {} ms",
        r.width,
        r.height,
        r.chosen.len(),
        r.stats.seen,
        r.stitch_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panorama_from_a_cameras_recording_through_the_engine() {
    let Some(data) = testdata() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let engine = start_engine(cfg.clone()).await;
    let clip = data.join("video/pan_winter_854x480.mp4");
    let agent = start_agent(
        &enroll(&engine, "hilltop", "").await,
        &[
            "--source",
            &format!("file:{}", clip.display()),
            "--fps",
            "10",
            "--no-loop",
        ],
    );
    // The clip plays once (about 21 s) and the agent says goodbye.
    let row = wait_for(Duration::from_secs(60), "the clip recorded", async || {
        engine
            .catalog()
            .recordings(&Default::default())
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.status == RecordingStatus::Complete && r.frames > 150)
    })
    .await;
    drop(agent);
    let id = engine
        .panorama("hilltop", PanoramaFrom::Recording(row.id), Mode::Panorama)
        .await
        .unwrap();
    assert!(
        engine.panorama_jobs().contains_key(&id),
        "shows as in progress"
    );
    let p = wait_for(Duration::from_secs(240), "the panorama", async || {
        engine
            .panoramas(Some("hilltop"))
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.id == id && p.status != PanoramaStatus::Running)
    })
    .await;
    assert_eq!(p.status, PanoramaStatus::Complete, "{}", p.message);
    assert!(p.width >= 2 * 854, "{}x{}", p.width, p.height);
    assert!(cfg.data_dir.join(&p.path).exists());
    assert!(cfg.data_dir.join(&p.thumb_path).exists());
    assert!(
        p.path.starts_with("panoramas/hilltop/hilltop_"),
        "{}",
        p.path
    );
    assert!(p.frames_used >= 3 && p.frames_seen > 150);
    engine.shutdown().await;
}
