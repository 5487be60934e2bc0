//! The protocol decoder on arbitrary bytes, as a stream (the way the codec
//! reads a socket) and as one whole message: it must never panic, never
//! buffer past its limits, and whatever it accepts must encode back to a
//! message that decodes the same.
#![no_main]

use bytes::BytesMut;
use cctv_protocol::{Limits, Status, decode, decode_exact, encode_to_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for limits in [Limits::default(), Limits::control_only()] {
        let mut buf = BytesMut::from(data);
        while let Ok(Some(message)) = decode(&mut buf, &limits) {
            let bytes = encode_to_bytes(&message, &limits).expect("a decoded message encodes");
            let again = decode_exact(bytes, &limits).expect("and decodes again");
            assert_eq!(again, message);
        }
        if let Ok(Status::Incomplete { needed: n }) = cctv_protocol::peek(data, &limits) {
            // It only asks for what the header announced, within the limit.
            assert!(n <= 12 + limits.max_frame_bytes.max(limits.max_control_bytes) as usize);
        }
        let _ = decode_exact(bytes::Bytes::copy_from_slice(data), &limits);
    }
});
