//! Clips: an export of exactly a time range, one file per camera, cut at
//! frame boundaries from several recordings; checked against what the
//! cameras sent, with ffprobe, and with `panel verify`.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cctv_engine::evidence::manifest::Manifest;
use futures::SinkExt;
use support::*;

/// Streams `frames` frames at 10 fps as `creds`; the capture time of each
/// frame sent, in order.
async fn stream(creds: Creds, frames: usize) -> Vec<i64> {
    let (mut conn, answer) = handshake(&creds, &creds.secret).await;
    assert!(matches!(answer, cctv_protocol::Message::Welcome(_)));
    let jpeg = test_jpeg(320, 240, 90);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut sent = Vec::new();
    for seq in 0..frames as u64 {
        tick.tick().await;
        let capture_us = cctv_protocol::now_us();
        conn.send(cctv_protocol::Message::Frame(cctv_protocol::Frame {
            seq,
            capture_us: capture_us as u64,
            jpeg: jpeg.clone(),
            analysis: None,
            preview: None,
        }))
        .await
        .unwrap();
        sent.push(capture_us as i64);
    }
    sent
}

fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Takes `name` out of the zip into `dir`.
fn unzip(zip: &Path, name: &str, dir: &Path) -> PathBuf {
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let mut bytes = Vec::new();
    z.by_name(name).unwrap().read_to_end(&mut bytes).unwrap();
    let out = dir.join(name.rsplit('/').next().unwrap());
    std::fs::write(&out, bytes).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_holds_exactly_the_frames_captured_in_its_range_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.segment_secs = 2;
    let engine = start_engine(cfg.clone()).await;
    let door = enroll(&engine, "door", "Front door").await;
    let yard = enroll(&engine, "yard", "Yard").await;
    let (door, yard) = tokio::join!(stream(door, 80), stream(yard, 80));
    for cam in ["door", "yard"] {
        finished_recordings(&engine, cam).await;
    }
    // From between the 16th and 17th frames the door camera sent to
    // between its 65th and 66th: 49 frames, over several recordings.
    let mid = |t: &[i64], i: usize| (t[i] + t[i + 1]) / 2;
    let (from, to) = (mid(&door, 15), mid(&door, 64));
    let expected = |sent: &[i64]| -> Vec<i64> {
        sent.iter()
            .copied()
            .filter(|t| (from..=to).contains(t))
            .collect()
    };
    let data = cfg.data_dir.to_str().unwrap().to_string();
    let recs = cfg.recordings_dir.to_str().unwrap().to_string();
    let out = panel_cmd(&[
        "export",
        "--data",
        &data,
        "--recordings",
        &recs,
        "--from",
        &rfc3339(from),
        "--to",
        &rfc3339(to),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let zip = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());

    let verified = panel_cmd(&["verify", zip.to_str().unwrap()]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );

    let mut z = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    let mut json = Vec::new();
    z.by_name("manifest.json")
        .unwrap()
        .read_to_end(&mut json)
        .unwrap();
    let manifest = Manifest::parse(&json).unwrap();
    assert_eq!(manifest.files.len(), 2, "one clip per camera");
    let tmp = tempfile::tempdir().unwrap();
    for (cam, sent) in [("door", &door), ("yard", &yard)] {
        let want = expected(sent);
        let entry = manifest
            .files
            .iter()
            .find(|f| f.camera_id == cam)
            .unwrap_or_else(|| panic!("no clip of {cam}"));
        assert!(
            entry.clip_of.len() >= 2,
            "{cam}: cut from {:?}",
            entry.clip_of
        );
        assert_eq!(entry.frames as usize, want.len(), "{cam}");
        assert_eq!(
            entry.clip_of.iter().map(|s| s.frames).sum::<i64>() as usize,
            want.len()
        );
        // What a player sees: every frame of the range, none else, each
        // at its capture time. Files keep whole milliseconds from their
        // first frame, so the recording and then the clip each round a
        // time down by less than a millisecond: within 2 ms in all.
        let probe = ffprobe(&unzip(&zip, &entry.path, tmp.path()));
        assert_eq!(probe.codec, "mjpeg");
        assert_eq!(
            probe.frames as usize,
            want.len(),
            "{cam}: frames in the clip"
        );
        for (pts, t) in probe.pts.iter().zip(&want) {
            let offset = (t - want[0]) as f64 / 1e6;
            assert!(
                (pts - offset).abs() <= 0.002,
                "{cam}: a frame at {pts} s, sent {offset} s after the first"
            );
        }
        assert!((entry.start_us - want[0]).abs() <= 1000);
        assert!((entry.end_us - want[want.len() - 1]).abs() <= 1000);
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_without_footage_exports_nothing_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let engine = start_engine(cfg.clone()).await;
    let cam = enroll(&engine, "door", "Door").await;
    let sent = stream(cam, 20).await;
    finished_recordings(&engine, "door").await;
    let before = sent[0] - 60_000_000;
    let e = engine
        .export_range(&[], before - 10_000_000, before, None, Default::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("nothing to export"), "{e}");
    let e = engine
        .export_range(&[], sent[10], sent[5], None, Default::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ends before it starts"), "{e}");
    engine.shutdown().await;
}
