//! The recording muxer on any capture times a camera could send (2^63,
//! years away, backwards, repeated), then the scanner on what it wrote:
//! nothing may panic, and frame times inside the file only go forward,
//! with sound at the same times among the frames.
#![no_main]

use cctv_mkv::mux::{SegmentInfo, write_all};
use cctv_mkv::scan::scan_from;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((origin, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let info = SegmentInfo {
        title: "fuzz".into(),
        width: 16,
        height: 16,
        origin_us: i64::from_le_bytes(*origin),
        audio: true,
    };
    let jpeg = [0xFF, 0xD8, 0xFF, 0xD9];
    let frames: Vec<(i64, &[u8])> = rest
        .chunks_exact(8)
        .take(2000)
        .map(|c| (i64::from_le_bytes(c.try_into().unwrap()), &jpeg[..]))
        .collect();
    let mut file = std::io::Cursor::new(Vec::new());
    // The same times as sound, too: half of them interleaved.
    let sound = &frames[..frames.len() / 2];
    write_all(&mut file, &info, &frames, sound).expect("writing to memory works");
    let len = file.get_ref().len() as u64;
    let scan = scan_from(&mut file, len, "fuzz").expect("what the muxer wrote scans");
    assert_eq!(scan.frames.len(), frames.len());
    assert!(scan.frames.windows(2).all(|w| w[0].time_ms < w[1].time_ms));
});
