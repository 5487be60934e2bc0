//! What motion and tamper analysis adds to the agent's work per frame, at
//! 768x576 (the surveillance clip `../shared/testdata/video/vtest.avi`, or
//! the test pattern without it), next to the JPEG encode it rides with;
//! and for a webcam's own MJPEG (no encode at all), the scaled decode the
//! analysis needs instead; and what the preview for the panel's wall costs
//! on top of each.
//!
//! `cargo bench -p camera-agent --bench analysis_cost`

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use camera_agent::analysis::{ANALYSIS_WIDTH, Analyzer, Gray, GrayDecoder, MotionSettings};
use camera_agent::encode::{EncodeSettings, FrameEncoder};
use camera_agent::image::Bgr;
use camera_agent::source::{Picture, Source, TestPattern};

const FRAMES: usize = 200;

/// 768x576 frames of the surveillance clip, or of the test pattern.
fn frames() -> (Vec<Bgr>, &'static str) {
    let clip = std::env::var_os("CCTV_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"))
        .join("video/vtest.avi");
    if clip.exists() {
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&clip)
            .args(["-frames:v", &FRAMES.to_string(), "-vf", "scale=768:576"])
            .args(["-pix_fmt", "bgr24", "-f", "rawvideo", "-"])
            .output()
            .expect("run ffmpeg");
        let frames: Vec<Bgr> = out
            .stdout
            .chunks_exact(768 * 576 * 3)
            .map(|c| Bgr {
                width: 768,
                height: 576,
                data: c.to_vec(),
            })
            .collect();
        if !frames.is_empty() {
            return (frames, "vtest.avi");
        }
    }
    let mut pattern = TestPattern::new(768, 576, "bench").unwrap();
    let frames = (0..FRAMES)
        .map(|_| match pattern.retrieve().unwrap() {
            Picture::Bgr(b) => b,
            Picture::Jpeg { .. } => unreachable!("the pattern draws pixels"),
        })
        .collect();
    (frames, "the test pattern")
}

/// Milliseconds per call of `f` over every frame, best of three passes.
fn per_frame(frames: usize, mut f: impl FnMut(usize)) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            for i in 0..frames {
                f(i);
            }
            t.elapsed().as_secs_f64() * 1000.0 / frames as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let (frames, what) = frames();
    let n = frames.len();
    let settings = EncodeSettings {
        quality: Some(80),
        fps: 10.0,
        max_width: None,
        overlay: false,
    };
    // As in the agent: the source has just written the frame (here, a
    // copy made outside the clock), then it is analysed, then encoded.
    let mut encoder = FrameEncoder::new("bench").unwrap();
    let mut jpegs = Vec::with_capacity(n);
    let (mut encode, mut analyse) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        let mut analyzer = Analyzer::new(MotionSettings::default());
        let (mut e, mut a) = (0.0, 0.0);
        for (i, frame) in frames.iter().enumerate() {
            let bgr = frame.clone();
            let t0 = Instant::now();
            let gray = Gray::from_bgr(&bgr, ANALYSIS_WIDTH);
            std::hint::black_box(analyzer.analyze(&gray, i as i64 * 100_000));
            let t1 = Instant::now();
            let out = encoder.encode(Picture::Bgr(bgr), &settings, 0, 0).unwrap();
            let t2 = Instant::now();
            if jpegs.len() < n {
                jpegs.push(out.jpeg);
            }
            a += (t1 - t0).as_secs_f64();
            e += (t2 - t1).as_secs_f64();
        }
        analyse = analyse.min(a * 1000.0 / n as f64);
        encode = encode.min(e * 1000.0 / n as f64);
    }
    let mut t = 0;
    let greys: Vec<Gray> = frames
        .iter()
        .map(|f| Gray::from_bgr(f, ANALYSIS_WIDTH))
        .collect();
    let mut analyzer = Analyzer::new(MotionSettings::default());
    let analysis_only = per_frame(n, |i| {
        t += 100_000;
        std::hint::black_box(analyzer.analyze(&greys[i], t));
    });
    let mut decoder = GrayDecoder::new().unwrap();
    let mut analyzer = Analyzer::new(MotionSettings::default());
    let mjpeg = per_frame(n, |i| {
        let gray = decoder.decode(&jpegs[i], ANALYSIS_WIDTH).unwrap();
        t += 100_000;
        std::hint::black_box(analyzer.analyze(&gray, t));
    });
    // The preview for the panel's wall, 320 px wide: from pixels, beside
    // the same encode without it; and from a webcam's own MJPEG, which
    // otherwise passes through without any work.
    let mut encoder = FrameEncoder::new("bench").unwrap();
    let mut encode_with = |i: usize, preview: u32| {
        let bgr = frames[i].clone();
        std::hint::black_box(
            encoder
                .encode(Picture::Bgr(bgr), &settings, 0, preview)
                .unwrap(),
        );
    };
    let plain = per_frame(n, |i| encode_with(i, 0));
    let previewed = per_frame(n, |i| encode_with(i, 320));
    let passthrough = EncodeSettings {
        quality: None,
        ..settings
    };
    let mjpeg_preview = per_frame(n, |i| {
        let webcam = Picture::Jpeg {
            data: jpegs[i].clone(),
            width: 768,
            height: 576,
        };
        std::hint::black_box(encoder.encode(webcam, &passthrough, 0, 320).unwrap());
    });
    println!("\nanalysis per frame at 768x576 ({what}, {n} frames, best of 3 passes)");
    println!("{:<44} {:>10}", "", "ms/frame");
    println!(
        "{:<44} {:>10.3}",
        "JPEG encode, quality 80 (what a frame costs)", encode
    );
    println!("{:<44} {:>10.3}", "grey copy + motion + tamper", analyse);
    println!(
        "{:<44} {:>10.3}",
        "  of which motion + tamper", analysis_only
    );
    println!(
        "{:<44} {:>9.1}%   (target: under 15%)",
        "  added to the encode",
        100.0 * analyse / encode
    );
    println!(
        "{:<44} {:>10.3}",
        "webcam MJPEG: 1/8 grey decode + analysis", mjpeg
    );
    println!(
        "{:<44} {:>9.1}%",
        "  next to a full encode",
        100.0 * mjpeg / encode
    );
    println!("{:<44} {:>10.3}", "encode with a 320 px preview", previewed);
    println!(
        "{:<44} {:>10.3}   ({:+.1}% on the encode alone, {:.3})",
        "  the preview",
        previewed - plain,
        100.0 * (previewed - plain) / plain,
        plain
    );
    println!(
        "{:<44} {:>10.3}",
        "webcam MJPEG: its 320 px preview", mjpeg_preview
    );
}
