//! The wire protocol between `camera-agent` and `panel`.
//!
//! Length-prefixed binary messages over a byte stream (TCP). This crate owns
//! the message types, their encoding, and a pure decoder that checks every
//! length against a limit before anything is buffered. It never does I/O; the
//! tokio codec in [`codec`] adapts it to sockets. The format is described for
//! implementers in `protocol/README.md`.

pub mod auth;
pub mod codec;
pub mod error;
pub mod message;
pub mod pair;
pub mod text;
#[cfg(feature = "tls")]
pub mod tls;
pub mod view;
pub mod wire;

pub use codec::Codec;
pub use error::{CodecError, DecodeError, EncodeError};
pub use message::*;
pub use text::printable;
pub use view::{FileData, ViewFrame, ViewHello};
pub use wire::{
    DEFAULT_MAX_CONTROL_BYTES, DEFAULT_MAX_FRAME_BYTES, HEADER_LEN, Header, Limits, MAGIC, Status,
    VERSION, decode, decode_exact, encode, encode_to_bytes, peek,
};

/// Microseconds since the Unix epoch, now. The clock of capture timestamps.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
