//! The panel's side of the handshake on arbitrary bytes: the first message
//! must be a Hello, the second must prove the camera's secret over the
//! challenge. Nothing the peer sends may panic it, and only a valid proof
//! for a known, unrevoked camera is accepted.
#![no_main]

use bytes::BytesMut;
use cctv_protocol::auth::{CameraKey, ReplayGuard, Secret, ServerHandshake, prove};
use cctv_protocol::{Challenge, Limits, Message, decode};
use libfuzzer_sys::fuzz_target;

const NONCE: [u8; 32] = [7; 32];

fn key(id: &str) -> CameraKey {
    match id {
        "door" => CameraKey::Known(Secret::from_bytes([1; 32])),
        "old" => CameraKey::Revoked,
        _ => CameraKey::Unknown,
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::control_only();
    let mut buf = BytesMut::from(data);
    let Ok(Some(first)) = decode(&mut buf, &limits) else {
        return;
    };
    let Message::Hello(announced) = first else {
        return;
    };
    let server = ServerHandshake::new(NONCE);
    let mut replays = ReplayGuard::new(16);
    let Ok(Some(answer)) = decode(&mut buf, &limits) else {
        return;
    };
    let claimed = announced.camera_id.clone();
    let result = server.check(
        answer.clone(),
        |id| {
            if id == claimed {
                key(id)
            } else {
                CameraKey::Unknown
            }
        },
        &mut replays,
    );
    if let Ok(hello) = &result {
        // Only the holder of door's secret can get here.
        assert_eq!(hello.camera_id, "door");
        let expected = prove(
            &Secret::from_bytes([1; 32]),
            &Challenge { nonce: NONCE },
            hello.clone(),
        );
        assert_eq!(expected.credentials, hello.credentials);
        // And the same proof is never accepted twice.
        let again = server.check(answer, key, &mut replays);
        assert!(again.is_err());
    }
});
