//! A `tokio_util` codec so either side can wrap a socket in `Framed`.
//! It adds no rules of its own: everything is in `wire.rs`.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{CodecError, DecodeError};
use crate::message::Message;
use crate::wire::{self, Limits};

/// Codec for `Framed<TcpStream, Codec>`, on the agent and on the panel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Codec {
    pub limits: Limits,
    /// The stream's usual message size: the largest of the last 64 to 128
    /// messages (this run of 64 and the one before), so a camera's frames
    /// are read whole although sound and acknowledgements come between.
    largest: [usize; 2],
    decoded: u32,
}

impl Codec {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }
}

impl Decoder for Codec {
    type Item = Message;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, CodecError> {
        let before = src.len();
        let expect = self.largest[0].max(self.largest[1]);
        let message = wire::decode_expecting(src, &self.limits, expect)?;
        if message.is_some() {
            self.decoded = self.decoded.wrapping_add(1);
            if self.decoded.is_multiple_of(64) {
                self.largest = [0, self.largest[0]];
            }
            self.largest[0] = self.largest[0].max(before - src.len());
        }
        Ok(message)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Message>, CodecError> {
        if let Some(message) = self.decode(src)? {
            return Ok(Some(message));
        }
        if src.is_empty() {
            return Ok(None);
        }
        // The peer closed in the middle of a message: decoding it as a whole
        // message names what is missing (header or payload).
        let have = src.len();
        match wire::decode_exact(src.split().freeze(), &self.limits) {
            Err(err) => Err(err.into()),
            Ok(_) => Err(DecodeError::TruncatedHeader { have }.into()),
        }
    }
}

impl Encoder<Message> for Codec {
    type Error = CodecError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(wire::encode(&item, dst, &self.limits)?)
    }
}

impl Encoder<&Message> for Codec {
    type Error = CodecError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(wire::encode(item, dst, &self.limits)?)
    }
}
