//! The scanner on files the muxer wrote, on files cut short by a crash,
//! and on crafted files; and crash repair.

use cctv_mkv::ebml::*;
use cctv_mkv::mux::{MkvMuxer, SegmentInfo, apply_frame, write_all};
use cctv_mkv::scan::*;
use std::fs::File;
use std::io::Write;

fn info(origin_us: i64) -> SegmentInfo {
    SegmentInfo {
        title: "cam".into(),
        width: 64,
        height: 48,
        origin_us,
        audio: false,
    }
}

fn fake_jpeg(i: usize) -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8];
    j.extend(std::iter::repeat_n((i % 251) as u8, 100 + i));
    j.extend_from_slice(&[0xFF, 0xD9]);
    j
}

#[test]
fn frames_come_back_with_their_times() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.mkv");
    let origin = 1_700_000_000_000_000;
    // Irregular intervals: 100 ms, then a 3 fps stretch, then a long gap.
    let times: Vec<i64> = (0..30)
        .map(|i| match i {
            0..10 => i * 100_000,
            10..20 => 1_000_000 + (i - 10) * 333_333,
            _ => 10_000_000 + (i - 20) * 100_000,
        })
        .collect();
    let jpegs: Vec<Vec<u8>> = (0..30).map(fake_jpeg).collect();
    let frames: Vec<(i64, &[u8])> = times
        .iter()
        .zip(&jpegs)
        .map(|(t, j)| (origin + t, j.as_slice()))
        .collect();
    let mut f = File::create(&path).unwrap();
    let summary = write_all(&mut f, &info(origin), &frames, &[]).unwrap();
    drop(f);
    assert_eq!(summary.frames, 30);
    assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());

    let s = scan(&path).unwrap();
    assert!(s.finalized);
    assert_eq!((s.width, s.height), (64, 48));
    assert_eq!(s.origin_us, origin);
    assert_eq!(s.frames.len(), 30);
    let mut file = File::open(&path).unwrap();
    for ((fr, t), j) in s.frames.iter().zip(&times).zip(&jpegs) {
        assert_eq!(fr.time_ms, t / 1000);
        assert_eq!(&read_frame(&mut file, fr).unwrap(), j);
    }
    // 10.9 s to the last frame plus one average interval.
    let d = s.duration_ms.unwrap();
    assert!((d - (10_900.0 + 10_900.0 / 29.0)).abs() < 1.0, "{d}");
    // A cue per cluster, each cluster at most 1 s long.
    assert!(s.cues.len() >= 5, "{:?}", s.cues);
    for fr in &s.frames {
        let cue = s
            .cues
            .iter()
            .rev()
            .find(|c| c.time_ms <= fr.time_ms)
            .unwrap();
        assert!(fr.time_ms - cue.time_ms < 1000);
    }
}

#[test]
fn a_crashed_file_is_repaired_to_its_last_whole_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.mkv");
    let origin = 1_700_000_000_000_000;
    let (mut mux, head) = MkvMuxer::new(&info(origin));
    let mut f = File::create(&path).unwrap();
    f.write_all(&head).unwrap();
    let jpegs: Vec<Vec<u8>> = (0..35).map(fake_jpeg).collect();
    for (i, j) in jpegs.iter().enumerate() {
        let end = mux.bytes();
        let w = mux.push(origin + i as i64 * 100_000, j.len());
        if i < 34 {
            apply_frame(&mut f, &w, j, end).unwrap();
        } else {
            // The process dies in the middle of writing frame 34.
            f.write_all(&w.head).unwrap();
            f.write_all(&j[..j.len() / 2]).unwrap();
        }
    }
    drop(f);

    let before = scan(&path).unwrap();
    assert!(!before.finalized);
    assert_eq!(
        before.frames.len(),
        34,
        "every whole frame, even in the open cluster"
    );
    assert!(before.open_cluster.is_some());

    let summary = repair(&path).unwrap();
    assert_eq!(summary.frames, 34);
    assert_eq!(summary.last_us, origin + 33 * 100_000);
    let after = scan(&path).unwrap();
    assert!(after.finalized);
    assert!(after.open_cluster.is_none());
    assert_eq!(after.frames.len(), 34);
    assert_eq!(after.file_len, summary.bytes);
    let mut file = File::open(&path).unwrap();
    for (fr, j) in after.frames.iter().zip(&jpegs) {
        assert_eq!(&read_frame(&mut file, fr).unwrap(), j);
    }
    // Repairing again changes nothing.
    assert_eq!(repair(&path).unwrap(), summary);
}

#[test]
fn garbage_is_not_a_recording() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.mkv");
    std::fs::write(&path, b"this is not a matroska file at all").unwrap();
    assert!(matches!(scan(&path), Err(ScanError::NotMatroska { .. })));
    std::fs::write(&path, b"").unwrap();
    assert!(scan(&path).is_err());
}

/// A file of an EBML header and a 12-byte segment header around `body`.
fn crafted(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_master(&mut out, EBML, &[]);
    put_id(&mut out, SEGMENT);
    put_size_fixed(&mut out, body.len() as u64, 8);
    out.extend_from_slice(body);
    out
}

fn scan_bytes(b: &[u8]) -> Result<Scan, ScanError> {
    scan_from(&mut std::io::Cursor::new(b), b.len() as u64, "crafted")
}

#[test]
fn hostile_times_saturate_instead_of_overflowing() {
    let mut cluster = Vec::new();
    put_uint8(&mut cluster, CLUSTER_TIMESTAMP, i64::MAX as u64);
    put_master(
        &mut cluster,
        SIMPLE_BLOCK,
        &[0x81, 0x7F, 0xFF, 0x80, 0xFF, 0xD8],
    );
    let mut body = Vec::new();
    put_uint8(&mut body, DATE_UTC, i64::MAX as u64);
    let mut info = Vec::new();
    put_master(&mut info, INFO, &body);
    put_master(&mut info, CLUSTER, &cluster);
    let scan = scan_bytes(&crafted(&info)).unwrap();
    assert_eq!(scan.frames.len(), 1);
    assert_eq!(scan.capture_us(&scan.frames[0]), i64::MAX);
}

#[test]
fn a_huge_header_element_is_refused_not_read() {
    let mut body = Vec::new();
    put_id(&mut body, INFO);
    put_size_fixed(&mut body, MAX_HEADER_ELEMENT + 1, 8);
    body.resize(body.len() + MAX_HEADER_ELEMENT as usize + 1, 0);
    let err = scan_bytes(&crafted(&body)).unwrap_err();
    assert!(err.to_string().contains("header element"), "{err}");
}

#[test]
fn a_cluster_cut_short_yields_only_its_whole_frames() {
    // A cluster of unknown size (left open by a crash), cut mid-frame.
    let mut cluster = Vec::new();
    put_uint(&mut cluster, CLUSTER_TIMESTAMP, 0);
    for _ in 0..3 {
        put_master(&mut cluster, SIMPLE_BLOCK, &[0x81, 0, 1, 0x80, 1, 2, 3]);
    }
    let mut body = Vec::new();
    put_id(&mut body, CLUSTER);
    body.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    body.extend_from_slice(&cluster);
    let file = crafted(&body);
    let cut = &file[..file.len() - 2];
    let scan = scan_bytes(cut).unwrap();
    assert_eq!(scan.frames.len(), 2);
    for f in &scan.frames {
        assert!(f.pos + u64::from(f.len) <= cut.len() as u64);
    }
}

/// An Opus packet of 20 ms of silence (CELT, mono): what a quiet camera sends.
const OPUS_SILENCE: &[u8] = &[0xf8, 0xff, 0xfe];

fn with_sound(origin_us: i64) -> SegmentInfo {
    SegmentInfo {
        audio: true,
        ..info(origin_us)
    }
}

#[test]
fn sound_comes_back_on_its_own_track_and_players_see_both() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.mkv");
    let origin = 1_700_000_000_000_000;
    let jpegs: Vec<Vec<u8>> = (0..30).map(fake_jpeg).collect();
    let frames: Vec<(i64, &[u8])> = (0..30)
        .map(|i| (origin + i * 100_000, jpegs[i as usize].as_slice()))
        .collect();
    // 20 ms packets over the same 3 s; one from before the first frame
    // (the recording before's) is left out.
    let sound: Vec<(i64, &[u8])> = (-1..150)
        .map(|i| (origin + i * 20_000, OPUS_SILENCE))
        .collect();
    let mut f = File::create(&path).unwrap();
    let summary = write_all(&mut f, &with_sound(origin), &frames, &sound).unwrap();
    drop(f);
    assert_eq!((summary.frames, summary.audio_packets), (30, 150));

    let s = scan(&path).unwrap();
    assert!(s.has_audio && s.finalized);
    assert_eq!(s.frames.len(), 30);
    assert_eq!(s.audio.len(), 150);
    let times: Vec<i64> = s.audio.iter().map(|a| a.time_ms).collect();
    assert_eq!(times, (0..150).map(|i| i * 20).collect::<Vec<_>>());
    let mut file = File::open(&path).unwrap();
    assert_eq!(read_frame(&mut file, &s.audio[7]).unwrap(), OPUS_SILENCE);
    assert_eq!(read_frame(&mut file, &s.frames[7]).unwrap(), jpegs[7]);

    // ffprobe (as any player) finds an MJPEG and an Opus stream, and
    // decodes every packet of the sound.
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,sample_rate,channels",
        ])
        .args(["-count_packets", "-of", "csv=p=0"])
        .arg(&path)
        .output()
        .expect("ffprobe (scripts/install-deps.sh installs it)");
    let listed = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].starts_with("mjpeg"), "{listed}");
    assert!(lines[1].starts_with("opus,48000,1"), "{listed}");
}

#[test]
fn a_crashed_file_with_sound_is_repaired_with_both_tracks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.mkv");
    let origin = 1_700_000_000_000_000;
    let (mut mux, head) = MkvMuxer::new(&with_sound(origin));
    let mut f = File::create(&path).unwrap();
    f.write_all(&head).unwrap();
    // 2.5 s: a frame each 100 ms, sound each 20 ms, then a cut-off frame.
    for i in 0..125i64 {
        let t = origin + i * 20_000;
        let end = mux.bytes();
        let w = mux.push_audio(t, OPUS_SILENCE.len()).unwrap();
        apply_frame(&mut f, &w, OPUS_SILENCE, end).unwrap();
        if i % 5 == 0 {
            let j = fake_jpeg(i as usize);
            let end = mux.bytes();
            let w = mux.push(t, j.len());
            apply_frame(&mut f, &w, &j, end).unwrap();
        }
    }
    let j = fake_jpeg(1);
    let w = mux.push(origin + 2_500_000, j.len());
    f.write_all(&w.head).unwrap();
    f.write_all(&j[..j.len() / 2]).unwrap();
    drop(f);

    let summary = repair(&path).unwrap();
    assert_eq!((summary.frames, summary.audio_packets), (25, 125));
    let s = scan(&path).unwrap();
    assert!(s.finalized && s.has_audio);
    assert_eq!((s.frames.len(), s.audio.len()), (25, 125));
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .args(["stream=codec_name,nb_read_packets", "-of", "csv=p=0"])
        .arg(&path)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        ["mjpeg,25", "opus,125"],
        "{listed}"
    );
}

/// Every byte a writer is told is settled stays as it was: no later frame
/// patch, nor finishing the file, writes there (a writer lets the system
/// forget those pages once they are on the disk).
#[test]
fn settled_bytes_are_never_written_again() {
    /// The byte ranges written at a seek position.
    #[derive(Default)]
    struct Tracked {
        pos: u64,
        writes: Vec<std::ops::Range<u64>>,
    }
    impl Write for Tracked {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.writes.push(self.pos..self.pos + b.len() as u64);
            self.pos += b.len() as u64;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl std::io::Seek for Tracked {
        fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
            if let std::io::SeekFrom::Start(p) = to {
                self.pos = p;
            }
            Ok(self.pos)
        }
    }
    let (mut mux, header) = MkvMuxer::new(&with_sound(0));
    assert!(
        mux.settled().is_empty(),
        "nothing is settled before a cluster ends"
    );
    let mut settled = 0..0u64;
    let mut end = header.len() as u64;
    // 12 s of 15 fps with sound: a dozen clusters, each patched when it ends.
    for i in 0..180usize {
        let t = i as i64 * 66_667;
        // Patches made now, checked against what was settled before.
        let mut patched = Vec::new();
        let w = mux.push(t, 2000 + i);
        patched.extend(w.patch.map(|(pos, b)| pos..pos + b.len() as u64));
        end += (w.head.len() + 2000 + i) as u64;
        for a in 0..3 {
            if let Some(w) = mux.push_audio(t + a * 20_000, 60) {
                patched.extend(w.patch.map(|(pos, b)| pos..pos + b.len() as u64));
                end += (w.head.len() + 60) as u64;
            }
        }
        let now = mux.settled();
        assert!(now.start <= now.end && now.end <= end, "{now:?} of {end}");
        assert!(
            now.start >= settled.start && now.end >= settled.end,
            "it only grows"
        );
        for p in &patched {
            assert!(
                p.end <= settled.start || p.start >= settled.end,
                "a patch at {p:?} inside the settled {settled:?}"
            );
        }
        settled = now;
    }
    assert!(
        settled.end - settled.start > end / 2,
        "most of the file is settled: {settled:?} of {end}"
    );
    let closing = mux.finish();
    let mut out = Tracked::default();
    closing.apply(&mut out).unwrap();
    for w in &out.writes {
        assert!(
            w.end <= settled.start || w.start >= settled.end,
            "finishing wrote {w:?} inside the settled {settled:?}"
        );
    }
}
