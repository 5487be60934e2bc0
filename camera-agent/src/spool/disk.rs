//! The spool's files on disk: their format, and reading them back.
//!
//! A file is `CCTVSPL1`, then records: length u32, seq u64, capture time
//! u64, CRC-32 u32 of those 20 bytes and the picture, then the picture
//! (all big-endian).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use tracing::warn;

use super::{Entry, Spool, SpoolFile};

/// The first bytes of every spool file.
pub(super) const MAGIC: &[u8; 8] = b"CCTVSPL1";
/// Bytes before each frame's picture: length u32, seq u64, capture u64, crc u32.
pub(super) const RECORD_HEAD: usize = 24;
/// A record's head for a picture.
pub(super) fn head(len: u32, seq: u64, capture_us: u64, jpeg: &[u8]) -> [u8; RECORD_HEAD] {
    let mut head = [0u8; RECORD_HEAD];
    head[0..4].copy_from_slice(&len.to_be_bytes());
    head[4..12].copy_from_slice(&seq.to_be_bytes());
    head[12..20].copy_from_slice(&capture_us.to_be_bytes());
    let crc = checksum(&head[..20], jpeg);
    head[20..24].copy_from_slice(&crc.to_be_bytes());
    head
}

/// The frame to send next as backfill, and where to read it.
pub struct Pending {
    pub seq: u64,
    pub capture_us: u64,
    pub(super) file: Arc<File>,
    pub(super) offset: u64,
    pub(super) len: u32,
}

impl Pending {
    /// Reads the picture (on the caller's thread; the lock is not held).
    /// A record whose check fails is an error: the caller drops it.
    pub fn read(&self) -> io::Result<Bytes> {
        let mut head = [0u8; RECORD_HEAD];
        self.file.read_exact_at(&mut head, self.offset)?;
        let mut jpeg = vec![0u8; self.len as usize];
        self.file
            .read_exact_at(&mut jpeg, self.offset + RECORD_HEAD as u64)?;
        let crc = u32::from_be_bytes(head[20..24].try_into().unwrap_or_default());
        if crc != checksum(&head[..20], &jpeg) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a spooled frame does not match its checksum",
            ));
        }
        Ok(Bytes::from(jpeg))
    }
}

impl Spool {
    /// Indexes one file's records; a record cut short ends the file there.
    pub(super) fn read_back(&mut self, first: u64, path: &Path) -> io::Result<()> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        let mut magic = [0u8; 8];
        if len < MAGIC.len() as u64 || {
            file.read_exact_at(&mut magic, 0)?;
            &magic != MAGIC
        } {
            std::fs::remove_file(path)?;
            return Ok(());
        }
        let mut offset = MAGIC.len() as u64;
        let mut entries = Vec::new();
        let mut newest_us = 0;
        let mut head = [0u8; RECORD_HEAD];
        while offset + RECORD_HEAD as u64 <= len {
            file.read_exact_at(&mut head, offset)?;
            let n = u32::from_be_bytes(head[0..4].try_into().unwrap_or_default());
            let seq = u64::from_be_bytes(head[4..12].try_into().unwrap_or_default());
            let capture_us = u64::from_be_bytes(head[12..20].try_into().unwrap_or_default());
            if offset + RECORD_HEAD as u64 + u64::from(n) > len {
                break;
            }
            entries.push((seq, offset, n, capture_us));
            newest_us = newest_us.max(capture_us);
            offset += RECORD_HEAD as u64 + u64::from(n);
        }
        if offset < len {
            warn!(file = %path.display(), cut = len - offset, "a spool file ends in a frame cut short (a crash); cut off");
            file.set_len(offset)?;
        }
        for (seq, offset, len, capture_us) in &entries {
            self.index.insert(
                *seq,
                Entry {
                    file: first,
                    offset: *offset,
                    len: *len,
                    capture_us: *capture_us,
                    epoch: 0,
                    sent: true,
                },
            );
            self.next_seq = self.next_seq.max(seq + 1);
        }
        self.bytes += offset;
        self.files.insert(
            first,
            SpoolFile {
                path: path.to_path_buf(),
                file: Arc::new(file),
                bytes: offset,
                unacked: entries.len() as u32,
                newest_us,
            },
        );
        self.next_seq = self.next_seq.max(first);
        Ok(())
    }
}

/// CRC-32 of a record's head (without its checksum) and picture.
fn checksum(head: &[u8], jpeg: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(head);
    h.update(jpeg);
    h.finalize()
}
