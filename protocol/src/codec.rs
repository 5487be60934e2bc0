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
}

impl Codec {
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }
}

impl Decoder for Codec {
    type Item = Message;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, CodecError> {
        Ok(wire::decode(src, &self.limits)?)
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
