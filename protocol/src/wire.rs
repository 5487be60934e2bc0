//! Bytes on the wire: the 12-byte header and each message's payload.
//!
//! Decoding is pure: it reads from a buffer the caller filled and never does
//! I/O. Every length from the wire is checked against [`Limits`] before the
//! caller is asked to buffer it. "Need more bytes" is [`Status::Incomplete`],
//! never an error; an error always means the stream is invalid and says what
//! was wrong and where. Frame payloads are sliced out of the receive buffer
//! without copying.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::message::*;

mod fields;
use fields::decode_payload;

/// The first four bytes of every message.
pub const MAGIC: [u8; 4] = *b"CCTV";
/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Bytes in the fixed header: magic (4), version (1), type (1), reserved (2), length (4).
pub const HEADER_LEN: usize = 12;

/// Default cap on a frame's payload: 16 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: u32 = 16 * 1024 * 1024;
/// Default cap on any other message's payload: 8 KiB (the largest legal `Hello` is ~2.4 KiB).
pub const DEFAULT_MAX_CONTROL_BYTES: u32 = 8 * 1024;

/// Caps on payload lengths, checked as soon as a header arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_frame_bytes: u32,
    pub max_control_bytes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_control_bytes: DEFAULT_MAX_CONTROL_BYTES,
        }
    }
}

impl Limits {
    /// No message over the control limit, frames included: for a peer that
    /// has not proven who it is yet.
    pub fn control_only() -> Self {
        Self {
            max_frame_bytes: DEFAULT_MAX_CONTROL_BYTES,
            max_control_bytes: DEFAULT_MAX_CONTROL_BYTES,
        }
    }

    pub fn for_type(&self, t: MessageType) -> u32 {
        if t.is_frame() {
            self.max_frame_bytes
        } else {
            self.max_control_bytes
        }
    }
}

/// A decoded, checked header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub message_type: MessageType,
    pub payload_len: u32,
}

impl Header {
    /// Header plus payload.
    pub fn message_len(&self) -> usize {
        HEADER_LEN + self.payload_len as usize
    }
}

/// What the start of a buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A whole message of this many bytes is there.
    Complete(Header),
    /// At least `needed` bytes in total are needed before anything can be decoded.
    Incomplete { needed: usize },
}

/// Looks at the start of `buf` without consuming it. Checks magic, version,
/// type and length as soon as the header's bytes are there, so an invalid
/// stream is refused before its payload is buffered.
pub fn peek(buf: &[u8], limits: &Limits) -> Result<Status, DecodeError> {
    // Check the magic byte by byte so a stream of garbage fails fast.
    let have_magic = buf.len().min(4);
    if buf[..have_magic] != MAGIC[..have_magic] {
        let mut found = [0u8; 4];
        found[..have_magic].copy_from_slice(&buf[..have_magic]);
        return Err(DecodeError::BadMagic { found });
    }
    if buf.len() < HEADER_LEN {
        if buf.len() > 4 && buf[4] != VERSION {
            return Err(DecodeError::UnsupportedVersion { found: buf[4] });
        }
        if buf.len() > 5 && MessageType::from_code(buf[5]).is_none() {
            return Err(DecodeError::UnknownType { code: buf[5] });
        }
        return Ok(Status::Incomplete { needed: HEADER_LEN });
    }
    let header = parse_header(&buf[..HEADER_LEN], limits)?;
    if buf.len() < header.message_len() {
        return Ok(Status::Incomplete {
            needed: header.message_len(),
        });
    }
    Ok(Status::Complete(header))
}

fn parse_header(h: &[u8], limits: &Limits) -> Result<Header, DecodeError> {
    if h[4] != VERSION {
        return Err(DecodeError::UnsupportedVersion { found: h[4] });
    }
    let message_type =
        MessageType::from_code(h[5]).ok_or(DecodeError::UnknownType { code: h[5] })?;
    // h[6..8] is reserved: written as zero, ignored on read.
    let payload_len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
    let limit = limits.for_type(message_type);
    if payload_len > limit {
        return Err(DecodeError::TooLarge {
            message_type,
            len: payload_len,
            limit,
        });
    }
    Ok(Header {
        message_type,
        payload_len,
    })
}

/// Bytes reserved beyond an incomplete message (see [`decode`]).
const READ_AHEAD: usize = 4096;

/// Takes one message off the front of `buf` if a whole one is there.
/// `Ok(None)` means "need more bytes"; the buffer is then left as it was.
pub fn decode(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Message>, DecodeError> {
    decode_expecting(buf, limits, 0)
}

/// [`decode`], with room made for a message of `expect` bytes while the
/// next one's header has not arrived: a reader that knows its stream's
/// usual message size (a camera's frames) reads a whole one at once,
/// instead of a header's worth first and the rest after.
pub fn decode_expecting(
    buf: &mut BytesMut,
    limits: &Limits,
    expect: usize,
) -> Result<Option<Message>, DecodeError> {
    match peek(buf, limits)? {
        Status::Incomplete { needed } => {
            let needed = if buf.len() < HEADER_LEN {
                needed.max(expect)
            } else {
                needed
            };
            // Room for a little more than the message: the read that
            // completes it then comes back short, which tells the reader
            // the socket is drained without one more read to find it
            // empty, and brings the start of the next message along.
            buf.reserve(needed.saturating_sub(buf.len()) + READ_AHEAD);
            Ok(None)
        }
        Status::Complete(header) => {
            let mut message = buf.split_to(header.message_len()).freeze();
            message.advance(HEADER_LEN);
            decode_payload(header.message_type, message).map(Some)
        }
    }
}

/// Decodes exactly one message that must fill `bytes` completely, e.g. a
/// message read whole from a file. Missing bytes are errors here.
pub fn decode_exact(mut bytes: Bytes, limits: &Limits) -> Result<Message, DecodeError> {
    match peek(&bytes, limits)? {
        Status::Incomplete { .. } if bytes.len() < HEADER_LEN => {
            Err(DecodeError::TruncatedHeader { have: bytes.len() })
        }
        Status::Incomplete { needed } => Err(DecodeError::TruncatedPayload {
            message_type: parse_header(&bytes[..HEADER_LEN], limits)?.message_type,
            have: bytes.len() - HEADER_LEN,
            need: needed - HEADER_LEN,
        }),
        Status::Complete(header) => {
            if bytes.len() > header.message_len() {
                return Err(DecodeError::TrailingBytes {
                    message_type: header.message_type,
                    extra: bytes.len() - header.message_len(),
                });
            }
            bytes.advance(HEADER_LEN);
            decode_payload(header.message_type, bytes)
        }
    }
}

/// Where a message's values begin, for their errors.
struct Here {
    message_type: MessageType,
    offset: usize,
}

impl Here {
    fn err(&self, what: &'static str) -> DecodeError {
        DecodeError::Malformed {
            message_type: self.message_type,
            offset: self.offset,
            what,
        }
    }
}

/// Reads a payload field by field, tracking the offset for error messages.
struct Reader {
    message_type: MessageType,
    payload: Bytes,
    offset: usize,
}

impl Reader {
    fn err(&self, what: &'static str) -> DecodeError {
        DecodeError::Malformed {
            message_type: self.message_type,
            offset: HEADER_LEN + self.offset,
            what,
        }
    }

    fn need(&self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        if self.payload.len() < n {
            Err(self.err(what))
        } else {
            Ok(())
        }
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        self.need(1, what)?;
        self.offset += 1;
        Ok(self.payload.get_u8())
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.need(2, what)?;
        self.offset += 2;
        Ok(self.payload.get_u16())
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.need(4, what)?;
        self.offset += 4;
        Ok(self.payload.get_u32())
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        self.need(8, what)?;
        self.offset += 8;
        Ok(self.payload.get_u64())
    }

    /// A u16 length then that many bytes, at most `max`.
    fn blob(&mut self, max: usize, what: &'static str) -> Result<Bytes, DecodeError> {
        self.need(2, what)?;
        let len = u16::from_be_bytes([self.payload[0], self.payload[1]]) as usize;
        if len > max {
            return Err(self.err(what));
        }
        self.need(2 + len, what)?;
        self.payload.advance(2);
        self.offset += 2 + len;
        Ok(self.payload.split_to(len))
    }

    fn string(&mut self, max: usize, what: &'static str) -> Result<String, DecodeError> {
        let start = self.offset;
        let bytes = self.blob(max, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Malformed {
            message_type: self.message_type,
            offset: HEADER_LEN + start,
            what,
        })
    }

    fn rest(&mut self) -> Bytes {
        self.offset += self.payload.len();
        std::mem::take(&mut self.payload)
    }

    fn finish(self) -> Result<(), DecodeError> {
        if self.payload.is_empty() {
            Ok(())
        } else {
            Err(self.err("unexpected bytes after the last field"))
        }
    }
}

/// Bytes of a frame's analysis: score u16, flags u8, tamper u8, pre-roll u32.
pub const ANALYSIS_LEN: usize = 8;
/// A `PreviewedFrame`'s flag: the analysis fields follow.
const PREVIEW_ANALYSED: u8 = 1;
const FLAG_MOTION: u8 = 1;
const FLAG_EVENT: u8 = 2;
const FLAG_IDLE: u8 = 4;

fn put_analysis(dst: &mut BytesMut, a: &FrameAnalysis) -> Result<(), EncodeError> {
    if a.motion_score > MAX_MOTION_SCORE {
        return Err(EncodeError::Invalid("motion score over 10000"));
    }
    dst.put_u16(a.motion_score);
    let flag = |on: bool, bit: u8| if on { bit } else { 0 };
    dst.put_u8(flag(a.motion, FLAG_MOTION) | flag(a.event, FLAG_EVENT) | flag(a.idle, FLAG_IDLE));
    dst.put_u8(a.tamper.map_or(0, |t| t as u8));
    dst.put_u32(a.preroll_ms);
    Ok(())
}

fn put_blob(
    dst: &mut BytesMut,
    b: &[u8],
    max: usize,
    field: &'static str,
) -> Result<(), EncodeError> {
    if b.len() > max {
        return Err(EncodeError::FieldTooLong {
            field,
            len: b.len(),
            max,
        });
    }
    dst.put_u16(b.len() as u16);
    dst.put_slice(b);
    Ok(())
}

/// Appends `message` (header and payload) to `dst`.
/// Refuses values the decoder would refuse, so a peer never sees them.
pub fn encode(message: &Message, dst: &mut BytesMut, limits: &Limits) -> Result<(), EncodeError> {
    let start = dst.len();
    let message_type = message.message_type();
    dst.put_slice(&MAGIC);
    dst.put_u8(VERSION);
    dst.put_u8(message_type.code());
    dst.put_u16(0);
    dst.put_u32(0); // length, filled in below
    let result = encode_payload(message, dst);
    let payload_len = dst.len() - start - HEADER_LEN;
    let limit = limits.for_type(message_type);
    let result = result.and(if payload_len > limit as usize {
        Err(EncodeError::TooLarge {
            message_type,
            len: payload_len,
            limit,
        })
    } else {
        Ok(())
    });
    if let Err(e) = result {
        dst.truncate(start);
        return Err(e);
    }
    dst[start + 8..start + 12].copy_from_slice(&(payload_len as u32).to_be_bytes());
    Ok(())
}

pub(crate) fn encode_payload(message: &Message, dst: &mut BytesMut) -> Result<(), EncodeError> {
    match message {
        Message::Hello(h) => {
            validate_camera_id(&h.camera_id).map_err(EncodeError::Invalid)?;
            put_blob(dst, h.camera_id.as_bytes(), MAX_CAMERA_ID_LEN, "camera id")?;
            put_blob(dst, h.name.as_bytes(), MAX_NAME_LEN, "camera name")?;
            put_blob(
                dst,
                h.agent_version.as_bytes(),
                MAX_VERSION_LEN,
                "agent version",
            )?;
            dst.put_u32(h.width);
            dst.put_u32(h.height);
            dst.put_u32(h.fps_milli);
            put_blob(dst, &h.credentials, MAX_CREDENTIALS_LEN, "credentials")?;
        }
        Message::Frame(f) => {
            let preview = f.preview.as_deref();
            dst.reserve(19 + ANALYSIS_LEN + preview.map_or(0, <[u8]>::len) + f.jpeg.len());
            dst.put_u64(f.seq);
            dst.put_u64(f.capture_us);
            if preview.is_some() {
                dst.put_u8(if f.analysis.is_some() {
                    PREVIEW_ANALYSED
                } else {
                    0
                });
            }
            if let Some(a) = &f.analysis {
                put_analysis(dst, a)?;
            }
            if let Some(p) = preview {
                put_blob(dst, p, MAX_PREVIEW_BYTES, "preview")?;
            }
            dst.put_slice(&f.jpeg);
        }
        Message::Backfill(f) => {
            if f.analysis.is_some() {
                return Err(EncodeError::Invalid(
                    "a backfilled frame carries no analysis",
                ));
            }
            if f.preview.is_some() {
                return Err(EncodeError::Invalid(
                    "a backfilled frame carries no preview",
                ));
            }
            dst.reserve(16 + f.jpeg.len());
            dst.put_u64(f.seq);
            dst.put_u64(f.capture_us);
            dst.put_slice(&f.jpeg);
        }
        Message::Spool(s) => {
            dst.put_u64(s.bytes);
            dst.put_u32(s.frames);
            dst.put_u64(s.oldest_us);
            dst.put_u32(s.backlog);
            dst.put_u64(s.dropped);
            dst.put_u64(s.dropped_from_us);
            dst.put_u64(s.dropped_to_us);
        }
        Message::Audio(a) => {
            validate_audio(a).map_err(EncodeError::Invalid)?;
            dst.put_u64(a.capture_us);
            dst.put_u16(a.samples);
            dst.put_u8(a.peak_db);
            dst.put_slice(&a.opus);
        }
        Message::Ack(a) => {
            validate_ack(a).map_err(EncodeError::Invalid)?;
            dst.put_u16(a.ranges.len() as u16);
            for (first, last) in &a.ranges {
                dst.put_u64(*first);
                dst.put_u64(*last);
            }
        }
        Message::Heartbeat(h) => {
            dst.put_u64(h.sent_us);
            dst.put_u64(h.echo);
        }
        Message::Encoding(e) => {
            if e.quality > 100 {
                return Err(EncodeError::Invalid("quality over 100"));
            }
            dst.put_u8(e.quality);
            dst.put_u32(e.fps_milli);
            dst.put_u32(e.max_width);
        }
        Message::Goodbye { reason } | Message::Reject { reason } => {
            put_blob(dst, reason.as_bytes(), MAX_REASON_LEN, "reason")?;
        }
        Message::Welcome(w) => {
            put_blob(
                dst,
                w.panel_version.as_bytes(),
                MAX_VERSION_LEN,
                "panel version",
            )?;
            dst.put_u32(w.heartbeat_ms);
        }
        Message::Configure(c) => {
            validate_configure(c).map_err(EncodeError::Invalid)?;
            let mask = u8::from(c.quality.is_some())
                | u8::from(c.fps_milli.is_some()) << 1
                | u8::from(c.max_width.is_some()) << 2;
            dst.put_u8(mask);
            dst.put_u8(c.quality.unwrap_or(0));
            dst.put_u32(c.fps_milli.unwrap_or(0));
            dst.put_u32(c.max_width.unwrap_or(0));
        }
        Message::Detect(d) => {
            validate_detect(d).map_err(EncodeError::Invalid)?;
            let bits = [
                d.sensitivity.is_some(),
                d.min_area.is_some(),
                d.ignore.is_some(),
                d.idle_fps_milli.is_some(),
                d.preroll_ms.is_some(),
                d.postroll_ms.is_some(),
                d.full_rate.is_some(),
            ];
            let mask = bits
                .iter()
                .enumerate()
                .fold(0u8, |m, (i, on)| m | (u8::from(*on) << i));
            dst.put_u8(mask);
            dst.put_u8(d.sensitivity.unwrap_or(0));
            dst.put_u16(d.min_area.unwrap_or(0));
            dst.put_slice(&d.ignore.unwrap_or_default());
            dst.put_u32(d.idle_fps_milli.unwrap_or(0));
            dst.put_u32(d.preroll_ms.unwrap_or(0));
            dst.put_u32(d.postroll_ms.unwrap_or(0));
            dst.put_u8(u8::from(d.full_rate.unwrap_or(false)));
        }
        Message::Ping { nonce } => dst.put_u64(*nonce),
        Message::Challenge(c) => dst.put_slice(&c.nonce),
        Message::PairHello(p) => dst.put_slice(&p.nonce),
        Message::ViewHello(v) => {
            validate_camera_id(&v.server_id).map_err(EncodeError::Invalid)?;
            put_blob(dst, v.server_id.as_bytes(), MAX_CAMERA_ID_LEN, "server id")?;
            put_blob(dst, &v.proof, MAX_CREDENTIALS_LEN, "proof")?;
        }
        Message::View(v) => {
            validate_camera_id(&v.camera_id).map_err(EncodeError::Invalid)?;
            dst.reserve(2 + v.camera_id.len() + 8 + v.jpeg.len());
            put_blob(dst, v.camera_id.as_bytes(), MAX_CAMERA_ID_LEN, "camera id")?;
            dst.put_u64(v.capture_us);
            dst.put_slice(&v.jpeg);
        }
        Message::Fetch { path } => {
            put_blob(dst, path.as_bytes(), crate::view::MAX_PATH_LEN, "path")?;
        }
        Message::FileData(d) => {
            dst.reserve(8 + d.bytes.len());
            dst.put_u64(d.offset);
            dst.put_slice(&d.bytes);
        }
        Message::FileEnd { size } => dst.put_u64(*size),
        Message::PairProof(p) => dst.put_slice(&p.proof),
        Message::PairGrant(g) => {
            validate_camera_id(&g.camera_id).map_err(EncodeError::Invalid)?;
            put_blob(dst, g.camera_id.as_bytes(), MAX_CAMERA_ID_LEN, "camera id")?;
            put_blob(dst, g.name.as_bytes(), MAX_NAME_LEN, "camera name")?;
            dst.put_slice(&g.secret);
            dst.put_slice(&g.proof);
        }
    }
    Ok(())
}

/// Encodes one message into a fresh buffer.
pub fn encode_to_bytes(message: &Message, limits: &Limits) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::new();
    encode(message, &mut buf, limits)?;
    Ok(buf.freeze())
}
