//! The messages that features bring (`AnalyzedFrame`, `Encoding`,
//! `Detect`) and the feature words themselves: the README's examples byte
//! for byte, and values out of range refused. The base protocol is in
//! `wire.rs`.

use bytes::Bytes;
use cctv_protocol::*;

fn encoded(m: &Message) -> Vec<u8> {
    encode_to_bytes(m, &Limits::default()).unwrap().to_vec()
}

/// The `AnalyzedFrame` example in the README, byte for byte.
fn readme_analyzed_frame() -> Message {
    Message::Frame(Frame {
        seq: 2,
        capture_us: 1,
        jpeg: Bytes::from_static(b"\xff\xd8\xff\xd9"),
        analysis: Some(FrameAnalysis {
            motion_score: 1234,
            motion: true,
            event: true,
            idle: false,
            tamper: None,
            preroll_ms: 3000,
        }),
        preview: None,
    })
}

#[test]
fn the_previewed_frame_example_in_the_readme_is_true() {
    let Message::Frame(mut f) = readme_analyzed_frame() else {
        unreachable!()
    };
    f.preview = Some(Bytes::from_static(b"\xff\xd8\xff\xd9"));
    let m = Message::Frame(f);
    let bytes = encoded(&m);
    let readme = include_str!("../README.md");
    let line = "43 43 54 56  01  0e  00 00  00 00 00 23  00 00 00 00 00 00 00 02\n\
                00 00 00 00 00 00 00 01  01  04 d2  03  00  00 00 0b b8  00 04  ff d8 ff d9  ff d8 ff d9";
    assert!(readme.contains(line), "the README lacks {line}");
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(line.split_whitespace().collect::<Vec<_>>(), hex);
    assert_eq!(
        decode_exact(Bytes::from(bytes), &Limits::default()).unwrap(),
        m
    );
}

#[test]
fn a_previewed_frame_without_analysis_reads_back_without_it() {
    let m = Message::Frame(Frame {
        seq: 7,
        capture_us: 9,
        jpeg: Bytes::from_static(b"\xff\xd8 whole \xff\xd9"),
        analysis: None,
        preview: Some(Bytes::from_static(b"\xff\xd8 small \xff\xd9")),
    });
    let bytes = encoded(&m);
    assert_eq!(bytes[5], 0x0e, "type PreviewedFrame");
    assert_eq!(bytes[HEADER_LEN + 16], 0, "no analysis follows");
    assert_eq!(
        decode_exact(Bytes::from(bytes), &Limits::default()).unwrap(),
        m
    );
}

#[test]
fn a_preview_longer_than_the_message_is_malformed() {
    let Message::Frame(mut f) = readme_analyzed_frame() else {
        unreachable!()
    };
    f.preview = Some(Bytes::from_static(b"\xff\xd8\xff\xd9"));
    let mut bad = encoded(&Message::Frame(f));
    // preview_len: after seq, capture_us, flags and the analysis.
    let at = HEADER_LEN + 16 + 1 + 8;
    bad[at..at + 2].copy_from_slice(&1000u16.to_be_bytes());
    let e = decode_exact(Bytes::from(bad), &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("preview"), "{e}");
}

#[test]
fn a_backfilled_frame_cannot_carry_a_preview() {
    let m = Message::Backfill(Frame {
        seq: 1,
        capture_us: 1,
        jpeg: Bytes::from_static(b"\xff\xd8\xff\xd9"),
        analysis: None,
        preview: Some(Bytes::from_static(b"\xff\xd8\xff\xd9")),
    });
    assert!(encode_to_bytes(&m, &Limits::default()).is_err());
}

#[test]
fn the_analyzed_frame_example_in_the_readme_is_true() {
    let bytes = encoded(&readme_analyzed_frame());
    let readme = include_str!("../README.md");
    let line = "43 43 54 56  01  07  00 00  00 00 00 1c  00 00 00 00 00 00 00 02\n\
                00 00 00 00 00 00 00 01  04 d2  03  00  00 00 0b b8  ff d8 ff d9";
    assert!(readme.contains(line), "the README lacks {line}");
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(line.split_whitespace().collect::<Vec<_>>(), hex);
}

fn readme_encoding() -> Message {
    Message::Encoding(Encoding {
        quality: 90,
        fps_milli: 10_000,
        max_width: 1280,
    })
}

#[test]
fn the_encoding_example_in_the_readme_is_true() {
    let bytes = encoded(&readme_encoding());
    let readme = include_str!("../README.md");
    let line = "43 43 54 56  01  08  00 00  00 00 00 09  5a  00 00 27 10  00 00 05 00";
    assert!(readme.contains(line), "the README lacks {line}");
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(line.split_whitespace().collect::<Vec<_>>(), hex);
    assert_eq!(
        decode_exact(Bytes::from(bytes), &Limits::default()).unwrap(),
        readme_encoding()
    );
}

#[test]
fn an_encoding_with_a_quality_over_100_is_malformed() {
    let mut bad = encoded(&readme_encoding());
    bad[HEADER_LEN] = 101;
    let e = decode_exact(Bytes::from(bad), &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("quality"), "{e}");
}

#[test]
fn a_frame_without_analysis_is_a_plain_frame_an_older_peer_reads() {
    let Message::Frame(mut f) = readme_analyzed_frame() else {
        unreachable!()
    };
    f.analysis = None;
    let bytes = encoded(&Message::Frame(f));
    assert_eq!(bytes[5], 0x02, "type Frame");
    assert_eq!(bytes.len(), HEADER_LEN + 16 + 4);
}

#[test]
fn analysis_fields_out_of_range_are_malformed_and_reserved_flags_ignored() {
    let good = encoded(&readme_analyzed_frame());
    let at = HEADER_LEN + 16;
    // A score over 10000.
    let mut bad = good.clone();
    bad[at..at + 2].copy_from_slice(&10_001u16.to_be_bytes());
    let e = decode_exact(Bytes::from(bad), &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("motion score"), "{e}");
    // A tamper code no one knows.
    let mut bad = good.clone();
    bad[at + 3] = 9;
    let e = decode_exact(Bytes::from(bad), &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("tamper"), "{e}");
    // Cut inside the analysis.
    let mut cut = good[..at + 5].to_vec();
    let len = (cut.len() - HEADER_LEN) as u32;
    cut[8..12].copy_from_slice(&len.to_be_bytes());
    assert!(decode_exact(Bytes::from(cut), &Limits::default()).is_err());
    // Reserved flag bits: read as the known ones only.
    let mut extra = good.clone();
    extra[at + 2] |= 0x80;
    assert_eq!(
        decode_exact(Bytes::from(extra), &Limits::default()).unwrap(),
        readme_analyzed_frame()
    );
}

#[test]
fn features_are_words_of_the_version_string() {
    assert!(has_feature("cctv-panel 0.1.0 +analysis", FEATURE_ANALYSIS));
    assert!(has_feature("+analysis", FEATURE_ANALYSIS));
    assert!(!has_feature("cctv-panel 0.1.0", FEATURE_ANALYSIS));
    assert!(!has_feature(
        "cctv-panel 0.1.0 +analysis2",
        FEATURE_ANALYSIS
    ));
    assert!(!has_feature("analysis", FEATURE_ANALYSIS));
}

#[test]
fn the_detect_example_in_the_readme_is_true() {
    let mut ignore = [0u8; 24];
    ignore[0] = 0x80; // the top-left cell
    let d = Detect {
        sensitivity: Some(60),
        min_area: Some(50),
        ignore: Some(ignore),
        ..Default::default()
    };
    let bytes = encoded(&Message::Detect(d));
    let line = "43 43 54 56  01  87  00 00  00 00 00 29  07  3c  00 32\n\
                80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n\
                00 00 00 00  00 00 00 00  00 00 00 00  00";
    assert!(
        include_str!("../README.md").contains(line),
        "the README lacks {line}"
    );
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(line.split_whitespace().collect::<Vec<_>>(), hex);
}

#[test]
fn detect_values_out_of_range_are_malformed() {
    let good = encoded(&Message::Detect(Detect {
        sensitivity: Some(50),
        ..Default::default()
    }));
    let at = HEADER_LEN;
    for (offset, value, says) in [
        (0, 0x80, "mask"),
        (1, 0, "sensitivity"),
        (1, 101, "sensitivity"),
        (40, 2, "full rate"),
    ] {
        let mut bad = good.clone();
        bad[at + offset] = value;
        let e = decode_exact(Bytes::from(bad), &Limits::default()).unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
    }
    // A field whose bit is clear is ignored, whatever its bytes.
    let mut ignored = good.clone();
    ignored[at + 2] = 0xff;
    ignored[at + 3] = 0xff;
    assert_eq!(
        decode_exact(Bytes::from(ignored), &Limits::default()).unwrap(),
        decode_exact(Bytes::from(good), &Limits::default()).unwrap()
    );
}

/// `text` from the README, as the bytes it shows.
fn readme_bytes(text: &str) -> Vec<String> {
    let readme = include_str!("../README.md");
    assert!(readme.contains(text), "the README lacks {text}");
    text.split_whitespace().map(str::to_string).collect()
}

fn hex(m: &Message) -> Vec<String> {
    encoded(m).iter().map(|b| format!("{b:02x}")).collect()
}

fn round_trip(m: &Message) {
    assert_eq!(
        &decode_exact(Bytes::from(encoded(m)), &Limits::default()).unwrap(),
        m
    );
}

fn readme_ack() -> Message {
    Message::Ack(Ack {
        ranges: vec![(0, 9), (12, 12)],
    })
}

#[test]
fn the_ack_example_in_the_readme_is_true() {
    let text = "43 43 54 56  01  88  00 00  00 00 00 22  00 02\n\
                00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 09\n\
                00 00 00 00 00 00 00 0c  00 00 00 00 00 00 00 0c";
    assert_eq!(hex(&readme_ack()), readme_bytes(text));
    round_trip(&readme_ack());
}

#[test]
fn the_backfill_example_in_the_readme_is_true() {
    let m = Message::Backfill(Frame {
        seq: 7,
        capture_us: 1,
        jpeg: Bytes::from_static(b"\xff\xd8\xff\xd9"),
        analysis: None,
        preview: None,
    });
    let text = "43 43 54 56  01  09  00 00  00 00 00 14  00 00 00 00 00 00 00 07\n\
                00 00 00 00 00 00 00 01  ff d8 ff d9";
    assert_eq!(hex(&m), readme_bytes(text));
    round_trip(&m);
}

#[test]
fn the_spool_example_in_the_readme_is_true() {
    let m = Message::Spool(SpoolStatus {
        bytes: 1 << 20,
        frames: 20,
        oldest_us: 1,
        backlog: 20,
        ..Default::default()
    });
    let text = "43 43 54 56  01  0a  00 00  00 00 00 30  00 00 00 00 00 10 00 00\n\
                00 00 00 14  00 00 00 00 00 00 00 01  00 00 00 14\n\
                00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00";
    assert_eq!(hex(&m), readme_bytes(text));
    round_trip(&m);
}

#[test]
fn the_audio_example_in_the_readme_is_true() {
    let m = Message::Audio(AudioPacket {
        capture_us: 1,
        samples: 960,
        peak_db: 6,
        opus: Bytes::from_static(b"\xf8\xff\xfe"),
    });
    let text = "43 43 54 56  01  0b  00 00  00 00 00 0e  00 00 00 00 00 00 00 01\n\
                03 c0  06  f8 ff fe";
    assert_eq!(hex(&m), readme_bytes(text));
    round_trip(&m);
    assert!(!MessageType::Audio.is_frame());
}

#[test]
fn audio_with_a_length_opus_cannot_have_or_an_empty_packet_is_malformed() {
    let good = AudioPacket {
        capture_us: 1,
        samples: 960,
        peak_db: 6,
        opus: Bytes::from_static(b"\xf8\xff\xfe"),
    };
    let bad = [
        AudioPacket {
            samples: 1000,
            ..good.clone()
        },
        AudioPacket {
            peak_db: 97,
            ..good.clone()
        },
        AudioPacket {
            opus: Bytes::new(),
            ..good.clone()
        },
        AudioPacket {
            opus: Bytes::from(vec![0u8; MAX_OPUS_PACKET + 1]),
            ..good.clone()
        },
    ];
    for a in bad {
        // The encoder refuses it...
        assert!(
            encode_to_bytes(&Message::Audio(a.clone()), &Limits::default()).is_err(),
            "{a:?}"
        );
        // ...and the decoder, if a peer sends it anyway.
        let mut raw = encoded(&Message::Audio(good.clone()));
        raw.truncate(HEADER_LEN);
        raw.extend_from_slice(&a.capture_us.to_be_bytes());
        raw.extend_from_slice(&a.samples.to_be_bytes());
        raw.push(a.peak_db);
        raw.extend_from_slice(&a.opus);
        let len = (raw.len() - HEADER_LEN) as u32;
        raw[8..12].copy_from_slice(&len.to_be_bytes());
        assert!(
            matches!(
                decode_exact(Bytes::from(raw), &Limits::default()),
                Err(DecodeError::Malformed { .. })
            ),
            "{a:?}"
        );
    }
}

#[test]
fn an_ack_range_backwards_or_too_many_ranges_is_refused() {
    let backwards = Message::Ack(Ack {
        ranges: vec![(5, 4)],
    });
    assert!(encode_to_bytes(&backwards, &Limits::default()).is_err());
    let mut bytes = encoded(&readme_ack());
    // The second range's first becomes 13, past its last (12).
    bytes[HEADER_LEN + 2 + 16 + 7] = 13;
    let e = decode_exact(Bytes::from(bytes), &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("ends before it starts"), "{e}");
    let mut many = vec![
        0x43, 0x43, 0x54, 0x56, 1, 0x88, 0, 0, 0, 0, 0, 2, 0x01, 0x01,
    ];
    many[11] = 2;
    let e = decode_exact(Bytes::from(many), &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("over 256"), "{e}");
    let too_many = Message::Ack(Ack {
        ranges: vec![(1, 1); MAX_ACK_RANGES + 1],
    });
    assert!(encode_to_bytes(&too_many, &Limits::default()).is_err());
}

#[test]
fn a_backfilled_frame_is_a_frame_message_with_the_frame_size_limit() {
    assert!(MessageType::Backfill.is_frame());
    assert!(!MessageType::Spool.is_frame());
    assert!(has_feature(
        "camera-agent 0.1.0 +analysis +spool",
        FEATURE_SPOOL
    ));
}

#[test]
fn the_view_examples_in_the_readme_are_true() {
    let hello = Message::ViewHello(cctv_protocol::ViewHello {
        server_id: "hall".into(),
        proof: Bytes::new(),
    });
    let text = "43 43 54 56  01  0c  00 00  00 00 00 08  00 04 68 61 6c 6c  00 00";
    assert_eq!(hex(&hello), readme_bytes(text));
    round_trip(&hello);
    let view = Message::View(cctv_protocol::ViewFrame {
        camera_id: "door".into(),
        capture_us: 1,
        jpeg: Bytes::from_static(b"\xff\xd8\xff\xd9"),
    });
    let text = "43 43 54 56  01  89  00 00  00 00 00 12  00 04 64 6f 6f 72\n\
                00 00 00 00 00 00 00 01  ff d8 ff d9";
    assert_eq!(hex(&view), readme_bytes(text));
    round_trip(&view);
}

#[test]
fn a_view_or_view_hello_with_a_bad_id_is_refused_both_ways() {
    let bad = Message::ViewHello(cctv_protocol::ViewHello {
        server_id: "../etc".into(),
        proof: Bytes::new(),
    });
    assert!(cctv_protocol::encode_to_bytes(&bad, &Limits::default()).is_err());
    // "hall" made "../ll" on the wire.
    let mut bytes = encoded(&Message::ViewHello(cctv_protocol::ViewHello {
        server_id: "hall".into(),
        proof: Bytes::new(),
    }));
    bytes[14..17].copy_from_slice(b"../");
    assert!(decode_exact(Bytes::from(bytes), &Limits::default()).is_err());
}

#[test]
fn the_fetch_example_in_the_readme_is_true() {
    let fetch = Message::Fetch {
        path: "a/b.mkv".into(),
    };
    let data = Message::FileData(cctv_protocol::FileData {
        offset: 0,
        bytes: Bytes::from_static(b"\x1a\x45\xdf\xa3"),
    });
    let end = Message::FileEnd { size: 4 };
    let text = "43 43 54 56  01  0d  00 00  00 00 00 09  00 07 61 2f 62 2e 6d 6b 76\n\
                43 43 54 56  01  8a  00 00  00 00 00 0c  00 00 00 00 00 00 00 00  1a 45 df a3\n\
                43 43 54 56  01  8b  00 00  00 00 00 08  00 00 00 00 00 00 00 04";
    let all: Vec<String> = [&fetch, &data, &end].into_iter().flat_map(hex).collect();
    assert_eq!(all, readme_bytes(text));
    for m in [&fetch, &data, &end] {
        round_trip(m);
    }
}
