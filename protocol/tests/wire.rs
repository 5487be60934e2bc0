//! Round trips, split points and malformed input for the wire format.

use bytes::{Bytes, BytesMut};
use cctv_protocol::*;
use proptest::prelude::*;

fn samples() -> Vec<Message> {
    vec![
        Message::Hello(Hello {
            camera_id: "front-door_1.a".into(),
            name: "Front door \u{1f6aa}".into(),
            agent_version: "0.1.0".into(),
            width: 1280,
            height: 720,
            fps_milli: 29_970,
            credentials: Bytes::from_static(b"\x00\x01secret"),
        }),
        Message::Hello(Hello {
            camera_id: "c".into(),
            name: String::new(),
            agent_version: String::new(),
            width: 0,
            height: 0,
            fps_milli: 0,
            credentials: Bytes::new(),
        }),
        Message::Frame(Frame {
            seq: u64::MAX,
            capture_us: 1_700_000_000_123_456,
            jpeg: Bytes::from_static(b"\xff\xd8 jpeg bytes \xff\xd9"),
            analysis: None,
            preview: None,
        }),
        Message::Heartbeat(Heartbeat {
            sent_us: 42,
            echo: 7,
        }),
        Message::Goodbye {
            reason: "shutting down".into(),
        },
        Message::Welcome(Welcome {
            panel_version: "panel 0.1.0".into(),
            heartbeat_ms: 1000,
        }),
        Message::Reject {
            reason: "camera id cam1 is already live".into(),
        },
        Message::Configure(Configure {
            quality: Some(55),
            fps_milli: None,
            max_width: Some(640),
        }),
        Message::Configure(Configure::default()),
        Message::Ping { nonce: 0xdead_beef },
        Message::Challenge(cctv_protocol::Challenge {
            nonce: std::array::from_fn(|i| i as u8),
        }),
        Message::PairHello(PairHello { nonce: [7; 32] }),
        Message::PairProof(PairProof { proof: [8; 32] }),
        Message::PairGrant(PairGrant {
            camera_id: "door".into(),
            name: "Front door".into(),
            secret: [9; 32],
            proof: [10; 32],
        }),
        Message::Frame(Frame {
            seq: 3,
            capture_us: 5,
            jpeg: Bytes::from_static(b"\xff\xd8\xff\xd9"),
            analysis: Some(FrameAnalysis {
                motion_score: MAX_MOTION_SCORE,
                motion: true,
                event: true,
                idle: false,
                tamper: Some(Tamper::Moved),
                preroll_ms: 3000,
            }),
            preview: None,
        }),
        Message::Detect(Detect {
            sensitivity: Some(70),
            min_area: Some(50),
            ignore: Some([0xff; 24]),
            idle_fps_milli: None,
            preroll_ms: Some(2000),
            postroll_ms: None,
            full_rate: Some(true),
        }),
        Message::Detect(Detect::default()),
        Message::Encoding(Encoding {
            quality: 90,
            fps_milli: 10_000,
            max_width: 1280,
        }),
        Message::Encoding(Encoding {
            quality: 0,
            fps_milli: 0,
            max_width: 0,
        }),
    ]
}

fn encoded(m: &Message) -> Vec<u8> {
    encode_to_bytes(m, &Limits::default()).unwrap().to_vec()
}

#[test]
fn every_message_round_trips() {
    for m in samples() {
        let bytes = encode_to_bytes(&m, &Limits::default()).unwrap();
        assert_eq!(decode_exact(bytes.clone(), &Limits::default()).unwrap(), m);
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(decode(&mut buf, &Limits::default()).unwrap(), Some(m));
        assert!(buf.is_empty());
    }
}

#[test]
fn a_stream_decodes_the_same_at_every_split_point() {
    let messages = samples();
    let stream: Vec<u8> = messages.iter().flat_map(encoded).collect();
    for split in 0..=stream.len() {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in [&stream[..split], &stream[split..]] {
            buf.extend_from_slice(chunk);
            while let Some(m) = decode(&mut buf, &Limits::default()).unwrap() {
                out.push(m);
            }
        }
        assert_eq!(out, messages, "split at {split}");
        assert!(buf.is_empty());
    }
}

#[test]
fn a_stream_decodes_one_byte_at_a_time() {
    let messages = samples();
    let stream: Vec<u8> = messages.iter().flat_map(encoded).collect();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for b in stream {
        buf.extend_from_slice(&[b]);
        if let Some(m) = decode(&mut buf, &Limits::default()).unwrap() {
            out.push(m);
        }
    }
    assert_eq!(out, messages);
}

#[test]
fn incomplete_input_says_how_many_bytes_are_needed() {
    let bytes = encoded(&samples()[2]);
    let limits = Limits::default();
    assert_eq!(
        peek(&bytes[..5], &limits).unwrap(),
        Status::Incomplete { needed: HEADER_LEN }
    );
    assert_eq!(
        peek(&bytes[..HEADER_LEN + 1], &limits).unwrap(),
        Status::Incomplete {
            needed: bytes.len()
        }
    );
    let mut buf = BytesMut::from(&bytes[..bytes.len() - 1]);
    assert_eq!(decode(&mut buf, &limits).unwrap(), None);
    assert_eq!(buf.len(), bytes.len() - 1, "nothing consumed");
}

#[test]
fn frame_payload_is_not_copied() {
    let bytes = encode_to_bytes(&samples()[2], &Limits::default()).unwrap();
    let mut buf = BytesMut::from(&bytes[..]);
    let base = buf.as_ptr() as usize;
    let Some(Message::Frame(f)) = decode(&mut buf, &Limits::default()).unwrap() else {
        panic!("not a frame")
    };
    // The JPEG slice points into the receive buffer, 12 + 16 bytes in.
    assert_eq!(f.jpeg.as_ptr() as usize, base + HEADER_LEN + 16);
}

#[test]
fn an_empty_picture_is_a_well_formed_frame() {
    // The message is whole; whether its picture is usable is the receiver's
    // call (the panel skips and counts it like any other bad picture).
    let mut frame = Vec::from(MAGIC);
    frame.extend_from_slice(&[VERSION, MessageType::Frame.code(), 0, 0, 0, 0, 0, 16]);
    frame.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 9]);
    let m = decode_exact(frame.clone().into(), &Limits::default()).unwrap();
    let Message::Frame(f) = &m else {
        panic!("{m:?}")
    };
    assert_eq!((f.seq, f.capture_us, f.jpeg.len()), (7, 9, 0));
    assert_eq!(encoded(&m), frame, "and it encodes back the same");
}

#[test]
fn bad_magic_is_its_own_error() {
    let mut bytes = encoded(&samples()[3]);
    bytes[0] = b'X';
    let err = decode_exact(bytes.into(), &Limits::default()).unwrap_err();
    assert!(matches!(err, DecodeError::BadMagic { found } if found == *b"XCTV"));
    assert!(err.to_string().contains("byte 0"), "{err}");
    // Garbage is refused from its first byte, without waiting for a header.
    let mut buf = BytesMut::from(&b"G"[..]);
    assert!(matches!(
        decode(&mut buf, &Limits::default()),
        Err(DecodeError::BadMagic { .. })
    ));
}

#[test]
fn oversize_length_is_refused_before_the_payload_arrives() {
    let limits = Limits {
        max_frame_bytes: 1000,
        max_control_bytes: 100,
    };
    let mut header = Vec::from(MAGIC);
    header.extend_from_slice(&[VERSION, MessageType::Frame.code(), 0, 0]);
    header.extend_from_slice(&1001u32.to_be_bytes());
    // Only the header is there: the claim alone is enough to refuse.
    let mut buf = BytesMut::from(&header[..]);
    let err = decode(&mut buf, &limits).unwrap_err();
    assert_eq!(
        err,
        DecodeError::TooLarge {
            message_type: MessageType::Frame,
            len: 1001,
            limit: 1000
        }
    );
    // Control messages have their own, smaller cap.
    header[5] = MessageType::Hello.code();
    header[8..12].copy_from_slice(&101u32.to_be_bytes());
    assert!(matches!(
        peek(&header, &limits),
        Err(DecodeError::TooLarge { limit: 100, .. })
    ));
    // The default frame cap is 16 MiB.
    header[5] = MessageType::Frame.code();
    header[8..12].copy_from_slice(&(16 * 1024 * 1024 + 1u32).to_be_bytes());
    assert!(matches!(
        peek(&header, &Limits::default()),
        Err(DecodeError::TooLarge { .. })
    ));
    header[8..12].copy_from_slice(&(16 * 1024 * 1024u32).to_be_bytes());
    assert!(matches!(
        peek(&header, &Limits::default()),
        Ok(Status::Incomplete { .. })
    ));
}

#[test]
fn truncated_header_is_its_own_error() {
    let bytes = encoded(&samples()[3]);
    let err = decode_exact(Bytes::copy_from_slice(&bytes[..7]), &Limits::default()).unwrap_err();
    assert_eq!(err, DecodeError::TruncatedHeader { have: 7 });
}

#[test]
fn truncated_payload_is_its_own_error() {
    let bytes = encoded(&samples()[2]);
    let cut = bytes.len() - 3;
    let err = decode_exact(Bytes::copy_from_slice(&bytes[..cut]), &Limits::default()).unwrap_err();
    assert_eq!(
        err,
        DecodeError::TruncatedPayload {
            message_type: MessageType::Frame,
            have: cut - HEADER_LEN,
            need: bytes.len() - HEADER_LEN
        }
    );
}

#[test]
fn unknown_type_and_version_are_their_own_errors() {
    let mut bytes = encoded(&samples()[3]);
    bytes[5] = 0x42;
    assert_eq!(
        decode_exact(bytes.clone().into(), &Limits::default()).unwrap_err(),
        DecodeError::UnknownType { code: 0x42 }
    );
    // Refused as soon as the type byte is in, not after the whole header.
    assert_eq!(
        peek(&bytes[..6], &Limits::default()).unwrap_err(),
        DecodeError::UnknownType { code: 0x42 }
    );
    let mut bytes = encoded(&samples()[3]);
    bytes[4] = 9;
    let err = decode_exact(bytes.into(), &Limits::default()).unwrap_err();
    assert_eq!(err, DecodeError::UnsupportedVersion { found: 9 });
    assert!(err.to_string().contains("version 9"), "{err}");
}

#[test]
fn malformed_payloads_name_the_field_and_offset() {
    // A Hello whose camera id would climb out of the recordings directory.
    let mut bytes = encoded(&Message::Hello(Hello {
        camera_id: "ab".into(),
        name: String::new(),
        agent_version: String::new(),
        width: 1,
        height: 1,
        fps_milli: 1,
        credentials: Bytes::new(),
    }));
    bytes[HEADER_LEN + 2..HEADER_LEN + 4].copy_from_slice(b"..");
    let err = decode_exact(bytes.into(), &Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Malformed {
                message_type: MessageType::Hello,
                offset: 12,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("camera id"), "{err}");

    // A heartbeat one byte short inside its payload (the length says 15).
    let mut bytes = encoded(&samples()[3]);
    bytes.pop();
    bytes[11] = 15;
    let err = decode_exact(bytes.into(), &Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Malformed {
                what: "ping echo",
                offset: 20,
                ..
            }
        ),
        "{err:?}"
    );

    // A heartbeat with an extra byte inside its payload.
    let mut bytes = encoded(&samples()[3]);
    bytes.push(0);
    bytes[11] = 17;
    let err = decode_exact(bytes.into(), &Limits::default()).unwrap_err();
    assert!(
        matches!(err, DecodeError::Malformed { offset: 28, .. }),
        "{err:?}"
    );

    // Bytes after a complete message when exactly one was expected.
    let mut bytes = encoded(&samples()[3]);
    bytes.push(0);
    assert!(matches!(
        decode_exact(bytes.into(), &Limits::default()),
        Err(DecodeError::TrailingBytes { extra: 1, .. })
    ));

    // A quality of 0.
    let mut bytes = encoded(&Message::Configure(Configure {
        quality: Some(10),
        ..Default::default()
    }));
    bytes[HEADER_LEN + 1] = 0;
    assert!(matches!(
        decode_exact(bytes.into(), &Limits::default()),
        Err(DecodeError::Malformed {
            message_type: MessageType::Configure,
            ..
        })
    ));
}

#[test]
fn encoding_refuses_what_decoding_would_refuse() {
    let hello = |id: &str, name: String| {
        Message::Hello(Hello {
            camera_id: id.into(),
            name,
            agent_version: "1".into(),
            width: 1,
            height: 1,
            fps_milli: 1,
            credentials: Bytes::new(),
        })
    };
    let mut buf = BytesMut::new();
    assert!(encode(&hello("../x", "n".into()), &mut buf, &Limits::default()).is_err());
    assert!(encode(&hello("ok", "n".repeat(129)), &mut buf, &Limits::default()).is_err());
    assert!(buf.is_empty(), "a refused message leaves nothing behind");
    let big = Message::Frame(Frame {
        seq: 0,
        capture_us: 0,
        jpeg: Bytes::from(vec![1u8; 2000]),
        analysis: None,
        preview: None,
    });
    let small = Limits {
        max_frame_bytes: 1000,
        max_control_bytes: 100,
    };
    assert!(matches!(
        encode(&big, &mut buf, &small),
        Err(EncodeError::TooLarge { .. })
    ));
    assert!(buf.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let limits = Limits::default();
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(_)) = decode(&mut buf, &limits) {}
        let _ = decode_exact(Bytes::from(data), &limits);
    }

    #[test]
    fn arbitrary_payloads_behind_a_valid_header_never_panic(
        code in prop::sample::select(vec![0x01u8, 0x02, 0x03, 0x04, 0x81, 0x82, 0x83, 0x84]),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = Vec::from(MAGIC);
        bytes.extend_from_slice(&[VERSION, code, 0, 0]);
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&payload);
        // Whatever decodes must encode back to the same bytes (but Configure,
        // whose unused fields may hold anything).
        if let Ok(m) = decode_exact(Bytes::from(bytes.clone()), &Limits::default())
            && !matches!(m, Message::Configure(_))
        {
            prop_assert_eq!(encoded(&m), bytes);
        }
    }
}

#[test]
fn the_example_in_the_readme_is_true() {
    let bytes = encoded(&Message::Ping { nonce: 1 });
    let readme = include_str!("../README.md");
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let line = "43 43 54 56  01  84  00 00  00 00 00 08  00 00 00 00 00 00 00 01";
    assert!(readme.contains(line));
    assert_eq!(line.split_whitespace().collect::<Vec<_>>(), hex);
}

#[test]
fn a_pair_grant_with_a_bad_camera_id_is_malformed() {
    let grant = PairGrant {
        camera_id: "door".into(),
        name: String::new(),
        secret: [0; 32],
        proof: [0; 32],
    };
    let mut bytes = encoded(&Message::PairGrant(grant)).to_vec();
    // The id's first byte (after the 12-byte header and its u16 length).
    bytes[14] = b'/';
    let err = decode_exact(Bytes::from(bytes), &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("camera id"), "{err}");
}

#[test]
fn a_codec_makes_room_for_a_whole_frame_before_its_header_arrives() {
    use tokio_util::codec::Decoder;
    let frame = |seq| {
        encoded(&Message::Frame(Frame {
            seq,
            capture_us: 1,
            jpeg: Bytes::from(vec![0xAB; 60_000]),
            analysis: None,
            preview: None,
        }))
    };
    let heartbeat = encoded(&Message::Heartbeat(Heartbeat {
        sent_us: 1,
        echo: 0,
    }));
    let mut codec = Codec::default();
    let mut buf = BytesMut::new();
    // Nothing decoded yet: room for a header and a little more.
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert!(buf.capacity() < 60_000, "{}", buf.capacity());
    let whole = frame(0).len();
    let mut kept = Vec::new();
    for seq in 0..20 {
        buf.extend_from_slice(&frame(seq));
        // Sound and acknowledgements come between the frames.
        for _ in 0..3 {
            buf.extend_from_slice(&heartbeat);
        }
        while let Some(m) = codec.decode(&mut buf).unwrap() {
            kept.push(m); // as the recorder holds frames, sharing the buffer
        }
        // The next frame's header is not here yet: its whole length is.
        assert!(
            buf.capacity() >= whole,
            "after frame {seq}: {} < {whole}",
            buf.capacity()
        );
    }
    assert_eq!(kept.len(), 80);
}
