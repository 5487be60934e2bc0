//! Capture times no honest camera sends (found by `fuzz run mux_times`):
//! the muxer writes them without overflowing, and the file scans with its
//! frames in order.

use cctv_mkv::mux::{SegmentInfo, write_all};
use cctv_mkv::scan::scan_from;

#[test]
fn extreme_capture_times_make_a_file_that_scans_in_order() {
    let jpeg = [0xFF, 0xD8, 0xFF, 0xD9];
    for origin_us in [i64::MIN, -1, 0, i64::MAX] {
        let info = SegmentInfo {
            title: "absurd".into(),
            width: 16,
            height: 16,
            origin_us,
            audio: true,
        };
        let times = [i64::MAX, i64::MIN, 0, -5_000, 1 << 62, 1 << 62];
        let frames: Vec<(i64, &[u8])> = times.iter().map(|t| (*t, &jpeg[..])).collect();
        let mut file = std::io::Cursor::new(Vec::new());
        write_all(&mut file, &info, &frames, &frames).unwrap();
        let len = file.get_ref().len() as u64;
        let scan = scan_from(&mut file, len, "absurd").unwrap();
        assert_eq!(scan.frames.len(), times.len(), "origin {origin_us}");
        assert!(
            scan.frames.windows(2).all(|w| w[0].time_ms < w[1].time_ms),
            "origin {origin_us}: {:?}",
            scan.frames
        );
    }
}
