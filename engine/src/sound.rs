//! A camera's live sound: whether its agent sends any, the level of the
//! newest packet (the tile's meter reads it without decoding anything), and
//! the packets themselves for whoever listens (the window's speaker). The
//! recorder gets its own copy through its queue. Never decodes Opus.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};

use cctv_protocol::{AudioPacket, SILENT_DB};
use tokio::sync::broadcast;

/// Packets a listener may fall behind by (about 1.3 s) before it loses some.
const LISTEN_QUEUE: usize = 64;
/// A level older than this is shown as no sound.
const LEVEL_FOR_US: i64 = 500_000;

#[derive(Debug)]
pub struct Sound {
    /// The camera's agent says it sends sound (`+audio`), on this connection.
    on: AtomicBool,
    peak_db: AtomicU8,
    /// When the newest packet arrived (µs since the epoch); 0: never.
    heard_us: AtomicI64,
    packets: broadcast::Sender<Arc<AudioPacket>>,
}

impl Default for Sound {
    fn default() -> Self {
        Self {
            on: AtomicBool::new(false),
            peak_db: AtomicU8::new(SILENT_DB),
            heard_us: AtomicI64::new(0),
            packets: broadcast::channel(LISTEN_QUEUE).0,
        }
    }
}

impl Sound {
    pub fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::Release);
        if !on {
            self.heard_us.store(0, Ordering::Release);
        }
    }

    /// The camera sends sound: its recordings get an audio track.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    /// A packet arrived at `now_us`: its level is kept, and listeners get it.
    pub fn heard(&self, packet: Arc<AudioPacket>, now_us: i64) {
        self.peak_db.store(packet.peak_db, Ordering::Release);
        self.heard_us.store(now_us, Ordering::Release);
        if self.packets.receiver_count() > 0 {
            let _ = self.packets.send(packet);
        }
    }

    /// The newest packet's peak in dB below full scale, if one arrived in
    /// the last half second.
    pub fn level_db(&self, now_us: i64) -> Option<u8> {
        let heard = self.heard_us.load(Ordering::Acquire);
        (heard > 0 && now_us - heard <= LEVEL_FOR_US).then(|| self.peak_db.load(Ordering::Acquire))
    }

    /// Every packet from now on, as it arrives.
    pub fn listen(&self) -> broadcast::Receiver<Arc<AudioPacket>> {
        self.packets.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn packet(peak_db: u8) -> Arc<AudioPacket> {
        Arc::new(AudioPacket {
            capture_us: 1,
            samples: 960,
            peak_db,
            opus: Bytes::from_static(b"\xf8\xff\xfe"),
        })
    }

    #[test]
    fn the_level_is_the_newest_packets_and_fades_to_none() {
        let s = Sound::default();
        assert_eq!(s.level_db(1_000_000), None);
        s.heard(packet(12), 1_000_000);
        s.heard(packet(6), 1_020_000);
        assert_eq!(s.level_db(1_100_000), Some(6));
        assert_eq!(s.level_db(1_600_000), None);
    }

    #[test]
    fn a_listener_gets_every_packet_from_when_it_started() {
        let s = Sound::default();
        s.heard(packet(30), 1);
        let mut rx = s.listen();
        s.heard(packet(20), 2);
        s.heard(packet(10), 3);
        assert_eq!(rx.try_recv().unwrap().peak_db, 20);
        assert_eq!(rx.try_recv().unwrap().peak_db, 10);
        assert!(rx.try_recv().is_err());
    }
}
