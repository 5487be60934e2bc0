//! The dispatch wire format between a sending panel and `panel receive`.
//!
//! Control messages are a 4-byte big-endian length and a JSON object, at
//! most 64 KiB. The connection is TLS to the receiver's pinned certificate
//! (plain TCP only where both ends allow it). The receiver opens with a
//! `challenge` nonce; the sender answers `hello` with its id and the HMAC
//! of its secret over the nonce; the receiver says `welcome` or refuses.
//! A transfer: the sender offers `{name, size, sha256}`, the
//! receiver answers with the offset it already holds (0, or more when a
//! dropped transfer is resumed), the sender streams the remaining bytes
//! raw, and the receiver acknowledges only after the whole file hashes to
//! the offered SHA-256 (or refuses, with the reason).

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const MAX_CONTROL: u32 = 64 * 1024;
pub const DEFAULT_PORT: u16 = 7710;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// Receiver, first: prove your secret over this nonce (64 hex digits).
    Challenge {
        nonce: String,
    },
    /// Sender: who it is, and HMAC-SHA256 of its secret over the nonce.
    Hello {
        sender: String,
        proof: String,
    },
    /// Receiver: the sender is known; make an offer.
    Welcome,
    Offer {
        name: String,
        size: u64,
        sha256: String,
    },
    Resume {
        offset: u64,
    },
    Ack {
        sha256: String,
        imported: u64,
    },
    Refused {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("control message of {0} bytes is over the limit of 64 KiB")]
    TooLarge(u32),
    #[error("control message is not valid: {0}")]
    Invalid(String),
}

pub async fn write_control<W: AsyncWrite + Unpin>(
    w: &mut W,
    c: &Control,
) -> Result<(), TransferError> {
    let json = serde_json::to_vec(c).map_err(|e| TransferError::Invalid(e.to_string()))?;
    w.write_all(&(json.len() as u32).to_be_bytes()).await?;
    w.write_all(&json).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one control message; the length is checked before anything is buffered.
pub async fn read_control<R: AsyncRead + Unpin>(r: &mut R) -> Result<Control, TransferError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len);
    if len > MAX_CONTROL {
        return Err(TransferError::TooLarge(len));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf).await?;
    serde_json::from_slice(&buf).map_err(|e| TransferError::Invalid(e.to_string()))
}

/// An export's file name as offered: a plain name ending in `.zip`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name.ends_with(".zip")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
}

pub fn valid_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn control_messages_round_trip_and_oversize_is_refused() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let offer = Control::Offer {
            name: "door_x.zip".into(),
            size: 42,
            sha256: "ab".repeat(32),
        };
        write_control(&mut a, &offer).await.unwrap();
        assert_eq!(read_control(&mut b).await.unwrap(), offer);
        a.write_all(&(MAX_CONTROL + 1).to_be_bytes()).await.unwrap();
        assert!(matches!(
            read_control(&mut b).await,
            Err(TransferError::TooLarge(_))
        ));
    }

    #[test]
    fn names_with_paths_are_not_names() {
        assert!(valid_name(
            "door+yard_20261121T140000Z_20261121T150000Z.zip"
        ));
        for bad in ["../x.zip", "a/b.zip", ".hidden.zip", "x.tar", "", "x\0.zip"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
