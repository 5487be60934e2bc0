//! Sending what the spool holds from before this connection, oldest first,
//! without ever holding up live frames: the link sends a backfilled frame
//! only when no live one waits, and then rests at least as long as the
//! send took (so backfill has at most about half of the link), or longer
//! for a configured rate.

use std::sync::Arc;
use std::time::Duration;

use cctv_protocol::{Frame, Message};
use tokio::time::Instant;
use tracing::{info, warn};

use super::{Conn, LinkError, send};
use crate::framelog::{FrameLog, note};
use crate::spool::{self, Spool};

pub(super) struct Backfill {
    spool: Option<spool::Shared>,
    rate: Option<u64>,
    /// The last frame sent (by seq); the next is the oldest after it.
    after: Option<u64>,
    due: Instant,
    done: bool,
    frames: u64,
    bytes: u64,
    started: Option<Instant>,
}

impl Backfill {
    /// `spool`: `None` when the panel takes no backfill.
    pub(super) fn new(spool: Option<spool::Shared>, rate: Option<u64>) -> Self {
        Self {
            spool,
            rate,
            after: None,
            due: Instant::now(),
            done: false,
            frames: 0,
            bytes: 0,
            started: None,
        }
    }

    pub(super) fn active(&self) -> bool {
        self.spool.is_some() && !self.done
    }

    pub(super) fn due(&self) -> Instant {
        self.due
    }

    /// Frames still to send on this connection.
    pub(super) fn backlog(&self, spool: &Spool) -> u32 {
        if self.active() {
            spool.backlog(self.after)
        } else {
            0
        }
    }

    /// Sends the next frame; `Ok(true)` if one went.
    pub(super) async fn step(
        &mut self,
        conn: &mut Conn,
        log: &Option<Arc<FrameLog>>,
        panel: &str,
    ) -> Result<bool, LinkError> {
        let Some(shared) = &self.spool else {
            return Ok(false);
        };
        let Some(next) = spool::lock(shared).next_backfill(self.after) else {
            self.done = true;
            if let Some(started) = self.started {
                info!(
                    frames = self.frames,
                    bytes = self.bytes,
                    "backfill done: {} frames ({:.1} MB) in {:.1} s",
                    self.frames,
                    self.bytes as f64 / 1e6,
                    started.elapsed().as_secs_f64()
                );
            }
            return Ok(false);
        };
        let started = *self.started.get_or_insert_with(|| {
            info!("sending the spooled frames from before this connection");
            Instant::now()
        });
        let _ = started;
        self.after = Some(next.seq);
        let (seq, capture_us) = (next.seq, next.capture_us);
        let read = tokio::task::spawn_blocking(move || next.read()).await;
        let jpeg = match read {
            Ok(Ok(j)) => j,
            Ok(Err(e)) => {
                warn!(seq, "a spooled frame cannot be read; it is given up: {e}");
                spool::lock(shared).give_up(seq);
                return Ok(false);
            }
            Err(e) => {
                warn!(seq, "reading a spooled frame: {e}");
                return Ok(false);
            }
        };
        let len = jpeg.len() as u64;
        let t0 = Instant::now();
        send(
            conn,
            Message::Backfill(Frame {
                seq,
                capture_us,
                jpeg,
                analysis: None,
                preview: None,
            }),
        )
        .await?;
        let took = t0.elapsed();
        note(log, format_args!("backfilled {seq} {capture_us} {panel}"));
        self.frames += 1;
        self.bytes += len;
        let by_rate = self.rate.map_or(Duration::ZERO, |r| {
            Duration::from_secs_f64(len as f64 / r as f64)
        });
        self.due = Instant::now() + took.max(by_rate);
        Ok(true)
    }
}
