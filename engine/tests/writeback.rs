//! A recording paces its own writeback: the pages of a file it wrote go to
//! the disk as it grows and are let go once there, instead of piling up in
//! the page cache for the kernel to throttle on. Resident pages are read
//! with util-linux's `fincore`, as an administrator would.

use std::path::Path;
use std::time::{Duration, Instant};

use cctv_engine::acks::Acks;
use cctv_engine::catalog::{Catalog, RecordingStatus};
use cctv_engine::recorder::segment::{NewSegment, Segment};
use cctv_engine::writes::Writes;

const MIB: u64 = 1 << 20;
/// 40 MiB of 100 KiB frames.
const FRAMES: u64 = 400;
const FRAME: usize = 100 * 1024;

/// Bytes of `path` in the page cache.
fn resident(path: &Path) -> u64 {
    let out = std::process::Command::new("fincore")
        .args(["--bytes", "--raw", "--noheadings", "--output", "RES"])
        .arg(path)
        .output()
        .expect("run fincore (util-linux)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Writes [`FRAMES`] frames with writeback started every `step` bytes,
/// then goes on with a frame every 10 ms until at most `goal` bytes of
/// the file are resident or `limit` passed; the file's size and the
/// bytes still resident.
async fn record(step: u64, goal: u64, limit: Duration) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open_in_memory().await.unwrap();
    let (events, _) = tokio::sync::broadcast::channel(8);
    let (writes, _) = Writes::start(catalog, events);
    let start = 1_795_269_731_000_000;
    let new = NewSegment {
        camera_id: "yard",
        title: "yard".into(),
        start_us: start,
        width: 1280,
        height: 720,
        backfilled: false,
        audio: false,
        writeback_step: step,
    };
    let mut seg = Segment::open(&writes, dir.path(), new, Acks::default())
        .await
        .unwrap();
    let path = dir.path().join(&seg.rel_path);
    let mut jpeg = vec![0x5a; FRAME];
    jpeg[..2].copy_from_slice(&[0xFF, 0xD8]);
    jpeg[FRAME - 2..].copy_from_slice(&[0xFF, 0xD9]);
    let mut seq = 0u64;
    let mut push = |seg: &mut Segment| {
        seg.push(seq, start + seq as i64 * 66_667, &jpeg).unwrap();
        seq += 1;
    };
    for _ in 0..FRAMES {
        push(&mut seg);
    }
    let until = Instant::now() + limit;
    while resident(&path) > goal && Instant::now() < until {
        push(&mut seg);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (size, left) = (std::fs::metadata(&path).unwrap().len(), resident(&path));
    seg.close(&writes, RecordingStatus::Complete, "")
        .await
        .unwrap();
    let scanned = cctv_mkv::scan::scan(&path).unwrap();
    assert_eq!(
        scanned.frames.len() as u64,
        seq,
        "every frame is in the file"
    );
    (size, left)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_lets_go_of_the_pages_it_wrote() {
    let (size, paced) = record(MIB, 8 * MIB, Duration::from_secs(30)).await;
    println!(
        "paced every 1 MiB: {} of {} MiB resident",
        paced / MIB,
        size / MIB
    );
    assert!(size >= FRAMES * FRAME as u64);
    assert!(
        paced <= 8 * MIB,
        "{paced} bytes of {size} still in the page cache"
    );
    // The same file left to the kernel stays in the page cache: what the
    // pacing changed, measured the same way.
    let (size, kept) = record(0, 8 * MIB, Duration::from_secs(1)).await;
    println!(
        "left to the kernel: {} of {} MiB resident",
        kept / MIB,
        size / MIB
    );
    assert!(kept > size / 2, "{kept} bytes of {size}");
}
