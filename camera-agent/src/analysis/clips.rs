//! The analysis against clips with known motion and tamper
//! (`../shared/testdata/events`, with `truth.json`), and against harder
//! cases made here: sensor noise, a slow lighting ramp, a lens covered and
//! uncovered again.

use std::path::PathBuf;
use std::process::Command;

use super::{ANALYSIS_WIDTH, Analysis, Analyzer, Gray, MotionSettings, TamperKind};

const FRAME_US: i64 = 100_000;

fn events_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CCTV_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"))
        .join("events");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "test data not found at {}: under CI=true it must be there",
        dir.display()
    );
    eprintln!("SKIPPED: test data not found at {}", dir.display());
    None
}

/// A clip's frames, grey, at the analysis width (ffmpeg decodes).
fn frames(name: &str) -> Option<Vec<Gray>> {
    let path = events_dir()?.join(name);
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-vf", &format!("scale={ANALYSIS_WIDTH}:-2,format=gray")])
        .args(["-f", "rawvideo", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "stream=width,height",
        ])
        .args(["-of", "csv=p=0"])
        .arg(&path)
        .output()
        .expect("run ffprobe");
    let dims = String::from_utf8_lossy(&probe.stdout);
    let (w, h) = dims.trim().split_once(',').unwrap();
    let (w, h): (u32, u32) = (w.parse().unwrap(), h.parse().unwrap());
    let height = (h * ANALYSIS_WIDTH / w + 1) & !1;
    let size = (ANALYSIS_WIDTH * height) as usize;
    assert_eq!(
        out.stdout.len() % size,
        0,
        "{} bytes of {ANALYSIS_WIDTH}x{height}",
        out.stdout.len()
    );
    Some(
        out.stdout
            .chunks_exact(size)
            .map(|c| Gray {
                width: ANALYSIS_WIDTH,
                height,
                data: c.to_vec(),
            })
            .collect(),
    )
}

/// Each frame's analysis, at 10 fps from t = 0.
fn run(frames: &[Gray]) -> Vec<(f64, Analysis)> {
    let mut a = Analyzer::new(MotionSettings::default());
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let t = i as i64 * FRAME_US;
            (t as f64 / 1e6, a.analyze(f, t))
        })
        .collect()
}

fn motion_times(run: &[(f64, Analysis)]) -> Vec<f64> {
    run.iter()
        .filter(|(_, a)| a.motion)
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn motion_starts_and_ends_with_the_walk_and_never_on_a_still_scene() {
    let Some(frames) = frames("motion_still_walk_still.mp4") else {
        return;
    };
    let run = run(&frames);
    let moving = motion_times(&run);
    assert!(!moving.is_empty(), "no motion found");
    let (first, last) = (moving[0], *moving.last().unwrap());
    // Truth: motion from 8.0 s to 18.0 s.
    assert!((8.0..=8.5).contains(&first), "motion began at {first} s");
    assert!((17.5..=19.5).contains(&last), "motion ended at {last} s");
    assert!(
        run.iter().all(|(_, a)| a.tamper.is_none()),
        "a walk is not tamper"
    );
}

/// Each tamper clip: people walk for 6 s, then the camera is tampered with.
fn tamper_clip(name: &str, kind: TamperKind) {
    let Some(frames) = frames(name) else {
        return;
    };
    let run = run(&frames);
    let before: Vec<_> = run.iter().filter(|(t, _)| *t < 6.0).collect();
    assert!(
        before.iter().all(|(_, a)| a.tamper.is_none()),
        "{name}: tamper before it began"
    );
    assert!(
        before.iter().any(|(_, a)| a.motion),
        "{name}: the walk before is motion"
    );
    let raised = run
        .iter()
        .find(|(_, a)| a.tamper.is_some())
        .unwrap_or_else(|| panic!("{name}: no tamper raised"));
    assert_eq!(raised.1.tamper, Some(kind), "{name} at {} s", raised.0);
    assert!(raised.0 <= 8.0, "{name}: raised only at {} s", raised.0);
    let after: Vec<_> = run.iter().filter(|(t, _)| *t >= raised.0).collect();
    assert!(
        after.iter().all(|(_, a)| a.tamper == Some(kind)),
        "{name}: the alarm wavered"
    );
}

#[test]
fn a_covered_lens_is_named_covered() {
    tamper_clip("tamper_covered.mp4", TamperKind::Covered);
}

#[test]
fn a_blinded_camera_is_named_blinded() {
    tamper_clip("tamper_blinded.mp4", TamperKind::Blinded);
}

#[test]
fn a_defocused_camera_is_named_defocused() {
    tamper_clip("tamper_defocused.mp4", TamperKind::Defocused);
}

#[test]
fn a_turned_camera_is_named_moved() {
    tamper_clip("tamper_moved.mp4", TamperKind::Moved);
}

/// A small deterministic noise source (no dependency for a test).
struct Noise(u64);

impl Noise {
    /// Roughly normal, standard deviation `sigma`.
    fn next(&mut self, sigma: f32) -> f32 {
        let mut sum = 0.0;
        for _ in 0..4 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            sum += (self.0 % 1000) as f32 / 1000.0;
        }
        (sum - 2.0) * sigma * 1.73
    }
}

/// `scene` changed by `f` per frame for `secs`.
fn made(scene: &Gray, secs: f64, mut f: impl FnMut(f64, u8, &mut Noise) -> u8) -> Vec<Gray> {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    (0..(secs * 10.0) as usize)
        .map(|i| Gray {
            data: scene
                .data
                .iter()
                .map(|&v| f(i as f64 / 10.0, v, &mut noise))
                .collect(),
            ..scene.clone()
        })
        .collect()
}

fn clamp(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

#[test]
fn sensor_noise_and_a_slow_dusk_are_neither_motion_nor_tamper() {
    let Some(frames) = frames("motion_still_walk_still.mp4") else {
        return;
    };
    let scene = &frames[0];
    // Grain of sigma 6 all along, and the light halving over 30 s.
    let dusk = made(scene, 30.0, |t, v, n| {
        clamp(f32::from(v) * (1.0 - 0.5 * t as f32 / 30.0) + n.next(6.0))
    });
    let run = run(&dusk);
    assert!(
        motion_times(&run).is_empty(),
        "motion in grain and dusk: {:?}",
        motion_times(&run)
    );
    assert!(
        run.iter().all(|(_, a)| a.tamper.is_none()),
        "tamper in grain and dusk"
    );
}

#[test]
fn a_light_switched_on_is_not_motion() {
    let Some(frames) = frames("motion_still_walk_still.mp4") else {
        return;
    };
    let scene = &frames[0];
    let light = made(scene, 10.0, |t, v, _| {
        let gain = if t < 5.0 { 0.8 } else { 1.0 };
        clamp(f32::from(v) * gain)
    });
    let run = run(&light);
    assert!(motion_times(&run).is_empty(), "{:?}", motion_times(&run));
}

#[test]
fn a_lens_covered_then_uncovered_raises_and_clears_the_alarm() {
    let Some(frames) = frames("motion_still_walk_still.mp4") else {
        return;
    };
    let scene = &frames[0];
    let clip = made(scene, 15.0, |t, v, n| {
        if (5.0..10.0).contains(&t) {
            clamp(12.0 + n.next(3.0))
        } else {
            clamp(f32::from(v) + n.next(2.0))
        }
    });
    let run = run(&clip);
    let covered: Vec<f64> = run
        .iter()
        .filter(|(_, a)| a.tamper == Some(TamperKind::Covered))
        .map(|(t, _)| *t)
        .collect();
    assert!(!covered.is_empty(), "never covered");
    assert!(
        covered[0] >= 5.0 && covered[0] <= 7.0,
        "covered at {} s",
        covered[0]
    );
    let cleared = *covered.last().unwrap();
    assert!(
        (10.0..=12.0).contains(&cleared),
        "cleared after {cleared} s"
    );
    assert!(
        run.iter()
            .all(|(_, a)| a.tamper != Some(TamperKind::Blinded))
    );
}

/// A 5x5 box blur: a lens turned out of focus.
fn blurred(scene: &Gray) -> Gray {
    let (w, h) = (scene.width as i32, scene.height as i32);
    let at = |x: i32, y: i32| {
        u32::from(scene.data[(y.clamp(0, h - 1) * w + x.clamp(0, w - 1)) as usize])
    };
    let data = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .map(|(x, y)| {
            let sum: u32 = (-2..=2)
                .flat_map(|dy| (-2..=2).map(move |dx| at(x + dx, y + dy)))
                .sum();
            (sum / 25) as u8
        })
        .collect();
    Gray {
        data,
        ..scene.clone()
    }
}

#[test]
fn a_grainy_camera_turned_out_of_focus_is_defocused_not_covered() {
    let Some(frames) = frames("motion_still_walk_still.mp4") else {
        return;
    };
    let (sharp, soft) = (frames[0].clone(), blurred(&frames[0]));
    let mut clip = made(&sharp, 5.0, |_, v, n| clamp(f32::from(v) + n.next(1.5)));
    clip.extend(made(&soft, 5.0, |_, v, n| {
        clamp(f32::from(v) + n.next(1.5))
    }));
    let run = run(&clip);
    let raised = run
        .iter()
        .find(|(_, a)| a.tamper.is_some())
        .expect("no tamper raised");
    assert_eq!(raised.1.tamper, Some(TamperKind::Defocused));
    assert!((5.0..=7.0).contains(&raised.0), "raised at {} s", raised.0);
}
