//! The messages agent and panel exchange, as plain Rust values.
//!
//! This module owns the meaning of each message and the rules its fields must
//! follow (lengths, allowed characters). It never touches bytes on the wire:
//! that is `wire.rs`.

use bytes::Bytes;

mod validate;
pub use validate::*;

/// Longest camera id, in bytes. Camera ids name directories on the panel.
pub const MAX_CAMERA_ID_LEN: usize = 64;
/// Longest human-readable camera name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 128;
/// Longest agent or panel version string, in bytes.
pub const MAX_VERSION_LEN: usize = 64;
/// Longest reason text in `Reject` and `Goodbye`, in bytes.
pub const MAX_REASON_LEN: usize = 1024;
/// Longest credentials blob in `Hello`, in bytes.
pub const MAX_CREDENTIALS_LEN: usize = 1024;

/// One message of the protocol, in either direction.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    // Agent -> panel.
    Hello(Hello),
    Frame(Frame),
    Heartbeat(Heartbeat),
    /// Sent only to a panel that advertises [`FEATURE_ENCODING`].
    Encoding(Encoding),
    /// A frame from the agent's spool, captured before this connection
    /// (never analysed). Sent only to a panel that advertises [`FEATURE_SPOOL`].
    Backfill(Frame),
    /// The agent's spool, once a second. Sent only to a panel that
    /// advertises [`FEATURE_SPOOL`].
    Spool(SpoolStatus),
    /// 20 ms (or another Opus frame length) of the camera's sound. Sent
    /// only to a panel that advertises [`FEATURE_AUDIO`].
    Audio(AudioPacket),
    Goodbye {
        reason: String,
    },
    /// Opens a pairing instead of `Hello` (see `pair`).
    PairHello(PairHello),
    PairProof(PairProof),
    /// Opens a viewing instead of `Hello`: another panel (see `view`).
    ViewHello(crate::view::ViewHello),
    /// A viewing panel asks for a recording file, by its path in the catalog.
    Fetch {
        path: String,
    },
    // Panel -> agent.
    Welcome(Welcome),
    Reject {
        reason: String,
    },
    Configure(Configure),
    Ping {
        nonce: u64,
    },
    Challenge(Challenge),
    PairGrant(PairGrant),
    /// Sent only to an agent that advertises [`FEATURE_ANALYSIS`].
    Detect(Detect),
    /// Frames now durable at the panel. Sent only to an agent that
    /// advertises [`FEATURE_SPOOL`].
    Ack(Ack),
    /// The newest frame of a camera, to a viewing panel.
    View(crate::view::ViewFrame),
    /// A piece of a fetched file, in order.
    FileData(crate::view::FileData),
    /// The fetched file is whole: its size.
    FileEnd {
        size: u64,
    },
}

/// First message on every connection, from the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Stable identifier: 1 to 64 bytes of `A-Z a-z 0-9 _ . -`, not starting with `.`.
    pub camera_id: String,
    /// What people call the camera ("Front door"); may be empty.
    pub name: String,
    pub agent_version: String,
    pub width: u32,
    pub height: u32,
    /// Nominal frame rate in thousandths of a frame per second (29.97 fps = 29970).
    pub fps_milli: u32,
    /// Proof that the agent holds the camera's secret: HMAC-SHA256 over the
    /// panel's challenge and this Hello (see `auth`). 32 bytes.
    pub credentials: Bytes,
}

/// One captured picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Counts captured frames from 0; a gap means the agent dropped frames.
    pub seq: u64,
    /// Microseconds since the Unix epoch, taken when the frame was captured.
    pub capture_us: u64,
    /// A complete JPEG image (SOI to EOI).
    pub jpeg: Bytes,
    /// What the agent saw in it. Sent (as an `AnalyzedFrame`) only to a
    /// panel whose `Welcome` advertises [`FEATURE_ANALYSIS`].
    pub analysis: Option<FrameAnalysis>,
    /// The same picture, small (a complete JPEG of at most
    /// [`MAX_PREVIEW_BYTES`]), for a live wall to show without decoding the
    /// whole frame. Sent (as a `PreviewedFrame`) only to a panel whose
    /// `Welcome` advertises [`FEATURE_PREVIEW`]; never recorded.
    pub preview: Option<Bytes>,
}

/// A version string's feature token. From a panel: it takes
/// `PreviewedFrame` (a frame with a small copy of its picture for the wall).
pub const FEATURE_PREVIEW: &str = "+preview";

/// Largest preview a `PreviewedFrame` carries, in bytes.
pub const MAX_PREVIEW_BYTES: usize = u16::MAX as usize;

/// A version string's feature token: the sender understands frame analysis
/// (`AnalyzedFrame`). Version strings are words separated by spaces; a word
/// starting with `+` names a feature (see [`has_feature`]).
pub const FEATURE_ANALYSIS: &str = "+analysis";

/// A version string's feature token: the panel reads `Encoding` (the
/// agent's own encoding settings).
pub const FEATURE_ENCODING: &str = "+encoding";

/// A version string's feature token. From an agent: it keeps frames in a
/// spool until they are acknowledged, and sends `Spool` and `Backfill`.
/// From a panel: it sends `Ack` and takes `Spool` and `Backfill`.
pub const FEATURE_SPOOL: &str = "+spool";

/// A version string's feature token. From an agent: its camera has sound
/// on and it sends `Audio`. From a panel: it takes `Audio`.
pub const FEATURE_AUDIO: &str = "+audio";

/// Sample rate of every `Audio` packet: Opus decodes at 48 kHz.
pub const AUDIO_RATE: u32 = 48_000;
/// Largest Opus packet an `Audio` message carries, in bytes (one Opus
/// frame is at most 1275; a little room for the packet's own header).
pub const MAX_OPUS_PACKET: usize = 1500;
/// Level of a silent packet (and anything quieter), in dB below full scale.
pub const SILENT_DB: u8 = 96;

/// A packet of the camera's sound: mono Opus at 48 kHz.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPacket {
    /// Microseconds since the Unix epoch when its first sample was
    /// captured, on the same clock as the frames' `capture_us`.
    pub capture_us: u64,
    /// Samples it decodes to at 48 kHz: one Opus frame length (120, 240,
    /// 480, 960, 1920 or 2880; 960 is 20 ms).
    pub samples: u16,
    /// Its loudest sample, in dB below full scale (0 to [`SILENT_DB`]):
    /// a level meter needs no decoding.
    pub peak_db: u8,
    /// One Opus packet (RFC 6716), 1 to [`MAX_OPUS_PACKET`] bytes.
    pub opus: Bytes,
}

/// Checks an `Audio` packet's fields.
pub fn validate_audio(a: &AudioPacket) -> Result<(), &'static str> {
    if !matches!(a.samples, 120 | 240 | 480 | 960 | 1920 | 2880) {
        return Err("samples is not an Opus frame length at 48 kHz");
    }
    if a.peak_db > SILENT_DB {
        return Err("peak level below -96 dB");
    }
    if a.opus.is_empty() || a.opus.len() > MAX_OPUS_PACKET {
        return Err("Opus packet empty or over 1500 bytes");
    }
    Ok(())
}

/// Whether a peer's version string (`Hello::agent_version`,
/// `Welcome::panel_version`) advertises `feature` (e.g. [`FEATURE_ANALYSIS`]).
pub fn has_feature(version: &str, feature: &str) -> bool {
    version.split_ascii_whitespace().any(|w| w == feature)
}

/// Largest motion score: the whole watched picture moves.
pub const MAX_MOTION_SCORE: u16 = 10_000;

/// What the agent saw in one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameAnalysis {
    /// Share of the watched picture that moves, in hundredths of a percent
    /// (0 to [`MAX_MOTION_SCORE`]).
    pub motion_score: u16,
    /// The scene moves (the agent's judgement, with its sensitivity,
    /// minimum area and ignore zones).
    pub motion: bool,
    /// The frame belongs to an event: motion, its pre-roll or post-roll, or
    /// tamper. The agent sends such frames at its full rate.
    pub event: bool,
    /// Sent at the idle rate: frames around it were left out and may still
    /// come later as an event's pre-roll (with lower `seq`).
    pub idle: bool,
    pub tamper: Option<Tamper>,
    /// How far back (ms) a pre-roll may reach behind the newest frame.
    pub preroll_ms: u32,
}

/// How a camera is tampered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Tamper {
    /// Dark and without detail (a hand, a bag, paint).
    Covered = 1,
    /// Bright and without detail (a torch, the sun).
    Blinded = 2,
    /// Sharpness collapsed against the reference.
    Defocused = 3,
    /// The scene shifted: the camera was turned.
    Moved = 4,
}

impl Tamper {
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Covered,
            2 => Self::Blinded,
            3 => Self::Defocused,
            4 => Self::Moved,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tamper::Covered => "covered",
            Tamper::Blinded => "blinded",
            Tamper::Defocused => "defocused",
            Tamper::Moved => "moved",
        }
    }
}

/// Sent by the agent when it has nothing else to send, and in answer to `Ping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Microseconds since the Unix epoch when sent.
    pub sent_us: u64,
    /// The nonce of the `Ping` this answers, or 0.
    pub echo: u64,
}

/// The agent's encoding settings as they are now: after `Welcome` and
/// after each `Configure` it applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// JPEG quality 1 to 100, or 0: the source's own JPEGs are sent as the
    /// camera made them.
    pub quality: u8,
    /// Frames per second asked of the source, in thousandths.
    pub fps_milli: u32,
    /// Pictures are scaled down to at most this width; 0: not scaled.
    pub max_width: u32,
}

/// The agent's spool of frames the panel has not acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStatus {
    /// Bytes on the agent's disk.
    pub bytes: u64,
    /// Frames in the spool not yet acknowledged.
    pub frames: u32,
    /// Capture time of the oldest of them (µs since the epoch); 0: none.
    pub oldest_us: u64,
    /// Frames still to send as `Backfill` on this connection.
    pub backlog: u32,
    /// Frames the spool dropped unsent since the agent started, oldest
    /// first, because it was full.
    pub dropped: u64,
    /// Capture times of the first and last frame dropped (0: none).
    pub dropped_from_us: u64,
    pub dropped_to_us: u64,
}

/// Most ranges one `Ack` carries.
pub const MAX_ACK_RANGES: usize = 256;

/// Frames the panel holds durably (written and synced), or chose not to
/// keep: the agent may forget them. Ranges of sequence numbers, both ends
/// included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ack {
    pub ranges: Vec<(u64, u64)>,
}

/// The panel accepts the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    pub panel_version: String,
    /// How often the agent must send something (a frame or a heartbeat).
    pub heartbeat_ms: u32,
}

/// Changes to the agent's encoding, applied without reconnecting.
/// A field left `None` keeps its current value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Configure {
    /// JPEG quality, 1 to 100.
    pub quality: Option<u8>,
    /// Frame rate limit in thousandths of a frame per second (greater than 0).
    pub fps_milli: Option<u32>,
    /// Widest frame to send, in pixels; 0 means no limit.
    pub max_width: Option<u32>,
}

/// Cells of the ignore grid: 16 columns by 12 rows, row by row.
pub const IGNORE_CELLS: usize = 16 * 12;

/// Changes to the agent's motion analysis and pacing, applied without
/// reconnecting. A field left `None` keeps its current value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Detect {
    /// 1 (only large, strong changes) to 100 (the faintest).
    pub sensitivity: Option<u8>,
    /// Share of the watched picture that must move, in hundredths of a
    /// percent (0 to 10000).
    pub min_area: Option<u16>,
    /// Cells of the 16x12 grid where motion does not count, one bit each,
    /// row by row, the first cell in the high bit of the first byte.
    pub ignore: Option<[u8; IGNORE_CELLS / 8]>,
    /// Frames per second sent while nothing moves, in thousandths (> 0).
    pub idle_fps_milli: Option<u32>,
    /// Pre-roll and post-roll, milliseconds (at most 60000 each).
    pub preroll_ms: Option<u32>,
    pub postroll_ms: Option<u32>,
    /// Send every frame, moving or not.
    pub full_rate: Option<bool>,
}

/// Checks a `Detect`'s values are in range.
pub fn validate_detect(d: &Detect) -> Result<(), &'static str> {
    if d.sensitivity.is_some_and(|s| !(1..=100).contains(&s)) {
        return Err("sensitivity is outside 1..=100");
    }
    if d.min_area.is_some_and(|a| a > 10_000) {
        return Err("minimum area is over 10000 (100 %)");
    }
    if d.idle_fps_milli == Some(0) {
        return Err("idle fps is 0");
    }
    if d.preroll_ms.is_some_and(|v| v > 60_000) || d.postroll_ms.is_some_and(|v| v > 60_000) {
        return Err("pre-roll or post-roll is over 60 s");
    }
    Ok(())
}

/// The panel's first message on every connection: a fresh random nonce
/// the agent's `Hello` must prove its secret over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    pub nonce: [u8; crate::auth::NONCE_LEN],
}

/// An agent asks to pair: a fresh random nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairHello {
    pub nonce: [u8; crate::auth::NONCE_LEN],
}

/// The agent proves it holds the pairing code (`pair::agent_proof`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairProof {
    pub proof: [u8; crate::auth::PROOF_LEN],
}

/// The panel gives the paired camera its id, name and secret, and proves
/// it holds the code too (`pair::panel_proof`).
#[derive(Clone, PartialEq, Eq)]
pub struct PairGrant {
    pub camera_id: String,
    pub name: String,
    pub secret: [u8; crate::auth::SECRET_LEN],
    pub proof: [u8; crate::auth::PROOF_LEN],
}

impl std::fmt::Debug for PairGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairGrant")
            .field("camera_id", &self.camera_id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The one-byte code of each message type on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    Hello = 0x01,
    Frame = 0x02,
    Heartbeat = 0x03,
    Goodbye = 0x04,
    PairHello = 0x05,
    PairProof = 0x06,
    AnalyzedFrame = 0x07,
    Encoding = 0x08,
    Backfill = 0x09,
    Spool = 0x0a,
    Audio = 0x0b,
    ViewHello = 0x0c,
    Fetch = 0x0d,
    PreviewedFrame = 0x0e,

    Welcome = 0x81,
    Reject = 0x82,
    Configure = 0x83,
    Ping = 0x84,
    Challenge = 0x85,
    PairGrant = 0x86,
    Detect = 0x87,
    Ack = 0x88,
    View = 0x89,
    FileData = 0x8a,
    FileEnd = 0x8b,
}

impl MessageType {
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x01 => Self::Hello,
            0x02 => Self::Frame,
            0x03 => Self::Heartbeat,
            0x04 => Self::Goodbye,
            0x05 => Self::PairHello,
            0x06 => Self::PairProof,
            0x07 => Self::AnalyzedFrame,
            0x08 => Self::Encoding,
            0x09 => Self::Backfill,
            0x0a => Self::Spool,
            0x0b => Self::Audio,
            0x0c => Self::ViewHello,
            0x0d => Self::Fetch,
            0x0e => Self::PreviewedFrame,
            0x81 => Self::Welcome,
            0x82 => Self::Reject,
            0x83 => Self::Configure,
            0x84 => Self::Ping,
            0x85 => Self::Challenge,
            0x86 => Self::PairGrant,
            0x87 => Self::Detect,
            0x88 => Self::Ack,
            0x89 => Self::View,
            0x8a => Self::FileData,
            0x8b => Self::FileEnd,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    /// Frames may be large; every other message is a small control message.
    pub fn is_frame(self) -> bool {
        matches!(
            self,
            Self::Frame
                | Self::AnalyzedFrame
                | Self::PreviewedFrame
                | Self::Backfill
                | Self::View
                | Self::FileData
        )
    }
}

impl std::fmt::Display for MessageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl Message {
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Hello(_) => MessageType::Hello,
            Message::Frame(f) if f.preview.is_some() => MessageType::PreviewedFrame,
            Message::Frame(f) if f.analysis.is_some() => MessageType::AnalyzedFrame,
            Message::Frame(_) => MessageType::Frame,
            Message::Heartbeat(_) => MessageType::Heartbeat,
            Message::Encoding(_) => MessageType::Encoding,
            Message::Backfill(_) => MessageType::Backfill,
            Message::Spool(_) => MessageType::Spool,
            Message::Audio(_) => MessageType::Audio,
            Message::Ack(_) => MessageType::Ack,
            Message::Goodbye { .. } => MessageType::Goodbye,
            Message::Welcome(_) => MessageType::Welcome,
            Message::Reject { .. } => MessageType::Reject,
            Message::Configure(_) => MessageType::Configure,
            Message::Ping { .. } => MessageType::Ping,
            Message::Challenge(_) => MessageType::Challenge,
            Message::PairHello(_) => MessageType::PairHello,
            Message::PairProof(_) => MessageType::PairProof,
            Message::ViewHello(_) => MessageType::ViewHello,
            Message::View(_) => MessageType::View,
            Message::Fetch { .. } => MessageType::Fetch,
            Message::FileData(_) => MessageType::FileData,
            Message::FileEnd { .. } => MessageType::FileEnd,
            Message::PairGrant(_) => MessageType::PairGrant,
            Message::Detect(_) => MessageType::Detect,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_ids_that_could_escape_a_directory_are_refused() {
        for bad in [
            "",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "caf\u{e9}",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(validate_camera_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["cam-1", "front_door.2", "A", &"x".repeat(64)] {
            assert!(validate_camera_id(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn every_type_code_maps_back() {
        for t in [
            MessageType::Hello,
            MessageType::Frame,
            MessageType::Heartbeat,
            MessageType::Goodbye,
            MessageType::Welcome,
            MessageType::Reject,
            MessageType::Configure,
            MessageType::Ping,
            MessageType::AnalyzedFrame,
            MessageType::PreviewedFrame,
            MessageType::Detect,
            MessageType::Backfill,
            MessageType::Spool,
            MessageType::Ack,
        ] {
            assert_eq!(MessageType::from_code(t.code()), Some(t));
        }
        assert_eq!(MessageType::from_code(0x00), None);
        assert_eq!(MessageType::from_code(0x7f), None);
    }
}
