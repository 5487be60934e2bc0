//! Each message's fields, read from its payload: the message-level half
//! of the `Reader` (the field types are in `wire.rs`).

use super::*;

/// A message of `message_type` from its payload, every field checked.
pub(super) fn decode_payload(
    message_type: MessageType,
    payload: Bytes,
) -> Result<Message, DecodeError> {
    let mut r = Reader {
        message_type,
        payload,
        offset: 0,
    };
    let message = match message_type {
        MessageType::Hello => Message::Hello(r.hello()?),
        MessageType::Frame | MessageType::AnalyzedFrame | MessageType::PreviewedFrame => {
            let seq = r.u64("sequence number")?;
            let capture_us = r.u64("capture timestamp")?;
            let (analysed, previewed) = match message_type {
                MessageType::AnalyzedFrame => (true, false),
                MessageType::PreviewedFrame => {
                    (r.u8("preview flags")? & PREVIEW_ANALYSED != 0, true)
                }
                _ => (false, false),
            };
            let analysis = if analysed { Some(r.analysis()?) } else { None };
            // Pictures, the preview as the frame, are judged by the receiver
            // (an empty one is skipped like any other bad one).
            let preview = if previewed {
                Some(r.blob(MAX_PREVIEW_BYTES, "preview")?)
            } else {
                None
            };
            let jpeg = r.rest();
            Message::Frame(Frame {
                seq,
                capture_us,
                jpeg,
                analysis,
                preview,
            })
        }
        MessageType::Heartbeat => Message::Heartbeat(Heartbeat {
            sent_us: r.u64("send timestamp")?,
            echo: r.u64("ping echo")?,
        }),
        MessageType::Encoding => Message::Encoding(r.encoding()?),
        MessageType::Backfill => Message::Backfill(Frame {
            seq: r.u64("sequence number")?,
            capture_us: r.u64("capture timestamp")?,
            analysis: None,
            jpeg: r.rest(),
            preview: None,
        }),
        MessageType::Spool => Message::Spool(r.spool()?),
        MessageType::Audio => Message::Audio(r.audio()?),
        MessageType::Ack => Message::Ack(r.ack()?),
        MessageType::ViewHello => Message::ViewHello(crate::view::ViewHello {
            server_id: r.camera_id("server id")?,
            proof: r.blob(MAX_CREDENTIALS_LEN, "proof")?,
        }),
        MessageType::View => Message::View(crate::view::ViewFrame {
            camera_id: r.camera_id("camera id")?,
            capture_us: r.u64("capture timestamp")?,
            jpeg: r.rest(),
        }),
        MessageType::Fetch => Message::Fetch {
            path: r.string(crate::view::MAX_PATH_LEN, "path (at most 1024 bytes)")?,
        },
        MessageType::FileData => Message::FileData(crate::view::FileData {
            offset: r.u64("offset")?,
            bytes: r.rest(),
        }),
        MessageType::FileEnd => Message::FileEnd {
            size: r.u64("size")?,
        },
        MessageType::Goodbye => Message::Goodbye {
            reason: r.string(MAX_REASON_LEN, "reason (UTF-8, at most 1024 bytes)")?,
        },
        MessageType::Welcome => Message::Welcome(Welcome {
            panel_version: r.string(MAX_VERSION_LEN, "panel version (at most 64 bytes)")?,
            heartbeat_ms: r.u32("heartbeat interval")?,
        }),
        MessageType::Reject => Message::Reject {
            reason: r.string(MAX_REASON_LEN, "reason (UTF-8, at most 1024 bytes)")?,
        },
        MessageType::Configure => Message::Configure(r.configure()?),
        MessageType::Detect => Message::Detect(r.detect()?),
        MessageType::Ping => Message::Ping {
            nonce: r.u64("nonce")?,
        },
        MessageType::Challenge => Message::Challenge(r.challenge()?),
        MessageType::PairHello => Message::PairHello(PairHello {
            nonce: r.bytes32("nonce (32 bytes)")?,
        }),
        MessageType::PairProof => Message::PairProof(PairProof {
            proof: r.bytes32("proof (32 bytes)")?,
        }),
        MessageType::PairGrant => Message::PairGrant(r.pair_grant()?),
    };
    r.finish()?;
    Ok(message)
}

impl Reader {
    pub(super) fn hello(&mut self) -> Result<Hello, DecodeError> {
        let id_at = HEADER_LEN + self.offset;
        let camera_id = self.string(MAX_CAMERA_ID_LEN, "camera id (at most 64 bytes)")?;
        if validate_camera_id(&camera_id).is_err() {
            return Err(DecodeError::Malformed {
                message_type: self.message_type,
                offset: id_at,
                what: "camera id (only A-Z a-z 0-9 _ . -, not starting with '.')",
            });
        }
        Ok(Hello {
            camera_id,
            name: self.string(MAX_NAME_LEN, "camera name (UTF-8, at most 128 bytes)")?,
            agent_version: self.string(MAX_VERSION_LEN, "agent version (at most 64 bytes)")?,
            width: self.u32("width")?,
            height: self.u32("height")?,
            fps_milli: self.u32("fps")?,
            credentials: self.blob(MAX_CREDENTIALS_LEN, "credentials (at most 1024 bytes)")?,
        })
    }

    /// A message's field mask, with no bits but `known` set; and where it
    /// is, for errors in the values it covers.
    pub(super) fn mask(&mut self, known: u8) -> Result<(u8, Here), DecodeError> {
        let here = Here {
            message_type: self.message_type,
            offset: HEADER_LEN + self.offset,
        };
        let mask = self.u8("field mask")?;
        if mask & !known != 0 {
            return Err(here.err("field mask (unknown bits set)"));
        }
        Ok((mask, here))
    }

    /// A mask of the fields set, then every field; unknown mask bits and
    /// values an agent cannot apply are refused.
    pub(super) fn configure(&mut self) -> Result<Configure, DecodeError> {
        let (mask, here) = self.mask(0b111)?;
        let malformed = |what| here.err(what);
        let quality = self.u8("quality")?;
        let fps_milli = self.u32("fps")?;
        let max_width = self.u32("max width")?;
        let c = Configure {
            quality: (mask & 1 != 0).then_some(quality),
            fps_milli: (mask & 2 != 0).then_some(fps_milli),
            max_width: (mask & 4 != 0).then_some(max_width),
        };
        validate_configure(&c).map_err(malformed)?;
        Ok(c)
    }

    pub(super) fn detect(&mut self) -> Result<Detect, DecodeError> {
        let (mask, here) = self.mask(0x7f)?;
        let malformed = |what| here.err(what);
        let on = |bit: u8| mask & (1 << bit) != 0;
        let sensitivity = self.u8("sensitivity")?;
        let min_area = self.u16("minimum area")?;
        self.need(IGNORE_CELLS / 8, "ignore grid (24 bytes)")?;
        let mut ignore = [0u8; IGNORE_CELLS / 8];
        self.payload.copy_to_slice(&mut ignore);
        self.offset += IGNORE_CELLS / 8;
        let idle_fps_milli = self.u32("idle fps")?;
        let preroll_ms = self.u32("pre-roll")?;
        let postroll_ms = self.u32("post-roll")?;
        let full_rate = self.u8("full rate")?;
        if full_rate > 1 {
            return Err(malformed("full rate is not 0 or 1"));
        }
        let d = Detect {
            sensitivity: on(0).then_some(sensitivity),
            min_area: on(1).then_some(min_area),
            ignore: on(2).then_some(ignore),
            idle_fps_milli: on(3).then_some(idle_fps_milli),
            preroll_ms: on(4).then_some(preroll_ms),
            postroll_ms: on(5).then_some(postroll_ms),
            full_rate: on(6).then_some(full_rate == 1),
        };
        validate_detect(&d).map_err(malformed)?;
        Ok(d)
    }

    pub(super) fn encoding(&mut self) -> Result<Encoding, DecodeError> {
        let quality = self.u8("quality")?;
        if quality > 100 {
            return Err(self.err("quality over 100"));
        }
        Ok(Encoding {
            quality,
            fps_milli: self.u32("frame rate")?,
            max_width: self.u32("width limit")?,
        })
    }

    pub(super) fn spool(&mut self) -> Result<SpoolStatus, DecodeError> {
        Ok(SpoolStatus {
            bytes: self.u64("spool bytes")?,
            frames: self.u32("spool frames")?,
            oldest_us: self.u64("oldest capture time")?,
            backlog: self.u32("backlog")?,
            dropped: self.u64("frames dropped")?,
            dropped_from_us: self.u64("first dropped capture time")?,
            dropped_to_us: self.u64("last dropped capture time")?,
        })
    }

    /// Capture time, samples, peak level, then the Opus packet to the end.
    pub(super) fn audio(&mut self) -> Result<AudioPacket, DecodeError> {
        let a = AudioPacket {
            capture_us: self.u64("capture timestamp")?,
            samples: self.u16("samples")?,
            peak_db: self.u8("peak level")?,
            opus: self.rest(),
        };
        validate_audio(&a).map_err(|why| self.err(why))?;
        Ok(a)
    }

    /// A count, then that many ranges; each range's first at most its last.
    pub(super) fn ack(&mut self) -> Result<Ack, DecodeError> {
        let count = self.u16("range count")? as usize;
        if count > MAX_ACK_RANGES {
            return Err(self.err("range count over 256"));
        }
        let mut ranges = Vec::with_capacity(count);
        for _ in 0..count {
            let first = self.u64("first sequence number")?;
            let last = self.u64("last sequence number")?;
            if first > last {
                return Err(self.err("a range that ends before it starts"));
            }
            ranges.push((first, last));
        }
        Ok(Ack { ranges })
    }

    pub(super) fn analysis(&mut self) -> Result<FrameAnalysis, DecodeError> {
        let motion_score = self.u16("motion score")?;
        if motion_score > MAX_MOTION_SCORE {
            return Err(self.err("motion score over 10000"));
        }
        // Flag bits beyond the three known are reserved: ignored.
        let flags = self.u8("analysis flags")?;
        let code = self.u8("tamper code")?;
        let tamper = match code {
            0 => None,
            c => Some(Tamper::from_code(c).ok_or_else(|| self.err("unknown tamper code"))?),
        };
        Ok(FrameAnalysis {
            motion_score,
            motion: flags & FLAG_MOTION != 0,
            event: flags & FLAG_EVENT != 0,
            idle: flags & FLAG_IDLE != 0,
            tamper,
            preroll_ms: self.u32("pre-roll")?,
        })
    }

    pub(super) fn challenge(&mut self) -> Result<Challenge, DecodeError> {
        Ok(Challenge {
            nonce: self.bytes32("nonce (32 bytes)")?,
        })
    }

    pub(super) fn bytes32(&mut self, what: &'static str) -> Result<[u8; 32], DecodeError> {
        let mut out = [0u8; 32];
        self.need(out.len(), what)?;
        self.offset += out.len();
        self.payload.copy_to_slice(&mut out);
        Ok(out)
    }

    pub(super) fn pair_grant(&mut self) -> Result<PairGrant, DecodeError> {
        let at = HEADER_LEN + self.offset;
        let camera_id = self.string(MAX_CAMERA_ID_LEN, "camera id (at most 64 bytes)")?;
        validate_camera_id(&camera_id).map_err(|what| DecodeError::Malformed {
            message_type: self.message_type,
            offset: at,
            what,
        })?;
        Ok(PairGrant {
            camera_id,
            name: self.string(MAX_NAME_LEN, "camera name (at most 128 bytes)")?,
            secret: self.bytes32("secret (32 bytes)")?,
            proof: self.bytes32("proof (32 bytes)")?,
        })
    }

    /// A camera (or server) id: at most 64 bytes, only the characters
    /// `validate_camera_id` allows.
    pub(super) fn camera_id(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let at = HEADER_LEN + self.offset;
        let id = self.string(MAX_CAMERA_ID_LEN, what)?;
        validate_camera_id(&id).map_err(|why| DecodeError::Malformed {
            message_type: self.message_type,
            offset: at,
            what: why,
        })?;
        Ok(id)
    }
}
