//! The recording scanner on arbitrary bytes, as `panel receive` and import
//! meet files another panel sent: it never panics, never indexes a frame
//! outside the file, and never holds more than its caps.
#![no_main]

use std::io::Cursor;

use cctv_mkv::scan::{MAX_FRAMES, scan_from};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    if let Ok(scan) = scan_from(&mut Cursor::new(data), len, "fuzz") {
        assert!(scan.frames.len() <= MAX_FRAMES);
        for f in &scan.frames {
            assert!(f.pos + u64::from(f.len) <= len, "a frame outside the file");
            let _ = scan.capture_us(f);
        }
        assert!(scan.media_end <= len, "whole clusters end inside the file");
    }
});
