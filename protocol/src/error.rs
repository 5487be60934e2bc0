//! Errors of decoding and encoding. Each says what was wrong and, for
//! decoding, at which byte of the message, so a log line is enough to find
//! the fault in a capture.

use crate::message::MessageType;

/// The bytes received are not a valid message. The stream cannot continue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("bad magic {found:02x?} at byte 0 (expected \"CCTV\"): not a camera agent stream")]
    BadMagic { found: [u8; 4] },
    #[error(
        "unsupported protocol version {found} at byte 4 (this side speaks version {})",
        crate::VERSION
    )]
    UnsupportedVersion { found: u8 },
    #[error("unknown message type 0x{code:02x} at byte 5")]
    UnknownType { code: u8 },
    #[error("{message_type} payload of {len} bytes at byte 8 is over the limit of {limit} bytes")]
    TooLarge {
        message_type: MessageType,
        len: u32,
        limit: u32,
    },
    #[error("truncated header: {have} of 12 bytes")]
    TruncatedHeader { have: usize },
    #[error("truncated {message_type} payload: {have} of {need} bytes")]
    TruncatedPayload {
        message_type: MessageType,
        have: usize,
        need: usize,
    },
    #[error("{extra} unexpected bytes after the {message_type} message")]
    TrailingBytes {
        message_type: MessageType,
        extra: usize,
    },
    #[error("malformed {message_type}: bad {what} at byte {offset}")]
    Malformed {
        message_type: MessageType,
        /// Byte offset from the start of the message (header included).
        offset: usize,
        what: &'static str,
    },
}

/// A message could not be encoded because a value breaks the protocol's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{field} is {len} bytes, over the limit of {max}")]
    FieldTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{message_type} payload of {len} bytes is over the limit of {limit} bytes")]
    TooLarge {
        message_type: MessageType,
        len: usize,
        limit: u32,
    },
    #[error("{0}")]
    Invalid(&'static str),
}

/// Errors of the tokio codec: the stream broke, or carried an invalid message.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol error: {0}")]
    Decode(#[from] DecodeError),
    #[error("cannot send: {0}")]
    Encode(#[from] EncodeError),
}
