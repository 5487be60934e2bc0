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
        time_limit: None,
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
    // How panorama `id` ended, once it has.
    let ended = |id: i64, limit: u64| {
        let engine = &engine;
        wait_for(
            Duration::from_secs(limit),
            "the panorama's end",
            async move || {
                engine
                    .panoramas(Some("hilltop"))
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|p| p.id == id && p.status != PanoramaStatus::Running)
            },
        )
    };
    let p = ended(id, 240).await;
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

    // Cancelled while its worker stitches: it says how it ended, once.
    let id = engine
        .panorama("hilltop", PanoramaFrom::Recording(row.id), Mode::Panorama)
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(120),
        "the worker stitching",
        async || {
            let jobs = engine.panorama_jobs();
            let stage = jobs.get(&id)?;
            (!stage.contains("selecting") && !stage.contains("starting")).then_some(())
        },
    )
    .await;
    assert!(engine.cancel_panorama(id));
    let p = ended(id, 30).await;
    assert_eq!(p.status, PanoramaStatus::Cancelled);
    assert_eq!(p.message, "from the window", "not \"cancelled: cancelled\"");
    engine.shutdown().await;
}

/// The winter pan as a camera on patrol would show it: there, back, and
/// there again (made with ffmpeg, at half size).
fn patrol(data: &Path, dir: &Path, sunrise: bool) -> PathBuf {
    let name = if sunrise {
        "video/pan_sunrise_640x360.mp4"
    } else {
        "video/pan_winter_854x480.mp4"
    };
    let out = dir.join("patrol.mp4");
    let ok = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(data.join(name))
        .args([
            "-filter_complex",
            "[0:v]scale=-2:240,split=3[a][b][c];[b]reverse[r];[a][r][c]concat=n=3:v=1:a=0[v]",
            "-map",
            "[v]",
            "-c:v",
            "mjpeg",
            "-q:v",
            "3",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(ok.success(), "ffmpeg made the patrol clip");
    out
}

#[test]
fn a_patrolling_camera_gives_each_view_once_and_stitches() {
    let Some(data) = testdata() else { return };
    for sunrise in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let clip = patrol(&data, tmp.path(), sunrise);
        let mut req = request(
            Source::Video(clip),
            &tmp.path().join("p.jpg"),
            Mode::Panorama,
        );
        req.time_limit = Some(Duration::from_secs(600));
        let r = run(&req).unwrap_or_else(|f| panic!("sunrise {sunrise}: {}", f.message()));
        eprintln!(
            "patrol (sunrise {sunrise}): {}x{} from {} of {} frames, {} views seen again, {} ms",
            r.width,
            r.height,
            r.chosen.len(),
            r.stats.seen,
            r.stats.revisits,
            r.stitch_ms
        );
        assert!(r.stats.revisits > 0, "{:?}", r.stats);
        // One sweep gives about a dozen frames; three sweeps must not give more.
        let first_sweep = r.stats.seen / 3;
        let late = r.chosen.iter().filter(|i| **i >= first_sweep).count();
        assert!(
            late <= 2,
            "{late} of {} frames chosen after the first sweep: {:?}",
            r.chosen.len(),
            r.chosen
        );
    }
}

#[test]
fn a_stitch_past_its_time_limit_stops_and_says_why() {
    let Some(data) = testdata() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut req = request(
        Source::Images(data.join("stitching/budapest")),
        &tmp.path().join("b.jpg"),
        Mode::Panorama,
    );
    // Shorter than starting the worker and reading the pictures takes.
    req.time_limit = Some(Duration::from_millis(1));
    let started = std::time::Instant::now();
    let f = run(&req).expect_err("a 1 ms limit");
    assert!(matches!(f.failure, Failure::TimedOut), "{:?}", f.failure);
    assert!(f.message().contains("time limit"), "{}", f.message());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_worker_past_the_time_limit_is_killed() {
    let Some(data) = testdata() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let set = data.join("stitching/budapest");
    let mut frames = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&set)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        std::fs::copy(set.join(&name), tmp.path().join(&name)).unwrap();
        frames.push(name.to_string_lossy().into_owned());
    }
    let job = cctv_panorama::worker::Job {
        mode: Mode::Panorama,
        ordered: false,
        opencv_defaults: false,
        frames,
        out: tmp.path().join("out.jpg"),
        thumb: tmp.path().join("thumb.jpg"),
    };
    std::fs::write(
        tmp.path().join(cctv_panorama::worker::JOB_FILE),
        serde_json::to_vec(&job).unwrap(),
    )
    .unwrap();
    let r = cctv_panorama::worker::run_job(
        Path::new(env!("CARGO_BIN_EXE_panel")),
        tmp.path(),
        &Arc::new(AtomicBool::new(false)),
        Some(std::time::Instant::now()),
        &mut |_| {},
    );
    assert!(matches!(r, Err(Failure::TimedOut)), "{r:?}");
    assert!(workers_in(tmp.path()).is_empty());
    assert!(!tmp.path().join("out.jpg").exists());
}

/// The pids of `panel stitch-worker` processes working in `dir`.
fn workers_in(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("stitch-worker") && c.contains(&needle)
            })
        })
        .collect()
}

#[test]
fn a_stitch_worker_never_outlives_its_panel() {
    let Some(data) = testdata() else { return };
    // Five sets in one folder: blending them takes the worker long (about
    // 50 s here) without a word to its panel in between.
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    for set in ["budapest", "apartment", "boat_small", "weir", "flower"] {
        for e in std::fs::read_dir(data.join("stitching").join(set)).unwrap() {
            let e = e.unwrap();
            let name = format!("{set}_{}", e.file_name().to_string_lossy());
            std::fs::copy(e.path(), photos.join(name)).unwrap();
        }
    }
    let mut panel = std::process::Command::new(env!("CARGO_BIN_EXE_panel"))
        .args(["panorama", "--images"])
        .arg(&photos)
        .arg("--out")
        .arg(tmp.path().join("p.jpg"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Killed once its worker is blending.
    let stages = std::io::BufReader::new(panel.stderr.take().unwrap());
    let blending = std::io::BufRead::lines(stages)
        .map_while(Result::ok)
        .any(|l| l.contains("warping and blending"));
    assert!(blending, "the worker never reached blending");
    assert!(!workers_in(tmp.path()).is_empty(), "no worker to orphan");
    panel.kill().unwrap();
    panel.wait().unwrap();
    let killed = std::time::Instant::now();
    while !workers_in(tmp.path()).is_empty() {
        assert!(
            killed.elapsed() < Duration::from_secs(3),
            "the worker still blends 3 s after its panel was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
