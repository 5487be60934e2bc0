//! Ingest: the TCP listener agents connect to. One task per connection, a
//! cap on connections at once; a peer over the cap is told so and dropped.
//! A bad peer costs only its own connection.

mod backfill;
mod conn;
mod pairing;
pub mod rate;
pub mod scene;
mod session;
mod view;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Semaphore, broadcast};
use tokio_util::task::TaskTracker;

use crate::catalog::{Catalog, RecordMode, Refusal, RefusalCode};
use crate::config::PanelConfig;
use crate::live::{EngineEvent, Registry};
use crate::recorder::camera::Recorders;
use crate::writes::Write;

use std::sync::Arc;
use std::time::Duration;

use futures::SinkExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// The settings ingest works to, from the panel config.
#[derive(Debug, Clone)]
pub struct Limits {
    pub handshake_timeout_ms: u64,
    pub max_frame_bytes: u32,
    pub max_pixels: u64,
    pub heartbeat_ms: u32,
    pub stall_after_ms: u64,
    pub max_clock_skew_us: i64,
    pub max_connections: usize,
    pub connects_per_minute_per_ip: u32,
}

impl Limits {
    pub fn of(c: &PanelConfig) -> Self {
        Self {
            handshake_timeout_ms: c.handshake_timeout_ms,
            max_frame_bytes: c.max_frame_bytes,
            max_pixels: c.max_pixels,
            heartbeat_ms: c.heartbeat_ms,
            stall_after_ms: c.stall_after_ms,
            max_clock_skew_us: (c.max_clock_skew_secs.min(i64::MAX as u64 / 1_000_000) * 1_000_000)
                as i64,
            max_connections: c.max_connections,
            connects_per_minute_per_ip: c.connects_per_minute_per_ip,
        }
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(u64::from(self.heartbeat_ms))
    }
}

/// All that ingest reaches, built by the engine: the camera registry, the
/// recorders, the catalog for keys and states, and the connection limits.
pub struct IngestCtx {
    pub limits: Limits,
    /// For reading keys and camera rows.
    pub catalog: Catalog,
    /// Where states, events and refusals are written, never waited for.
    pub writes: crate::writes::Writes,
    pub registry: Arc<Registry>,
    pub recorders: Arc<Recorders>,
    pub events: broadcast::Sender<EngineEvent>,
    /// Cancelled when the engine stops.
    pub shutdown: CancellationToken,
    /// Connection tasks, awaited at shutdown.
    pub tasks: TaskTracker,
    /// TLS for agents; `None` when plain TCP is configured.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// The certificate's fingerprint, which pairing proofs cover.
    pub fingerprint: Option<cctv_protocol::tls::Fingerprint>,
    /// Proofs of recent handshakes, to name replays.
    pub replays: Mutex<cctv_protocol::auth::ReplayGuard>,
    /// Connection attempts per address.
    pub rate: Mutex<rate::RateLimit>,
    /// Connections at once, shared by every listener.
    pub permits: Arc<Semaphore>,
    /// The recording mode a new camera gets.
    pub default_mode: RecordMode,
    /// The last connection id handed out.
    pub next_conn: AtomicU64,
    /// Agents are welcomed with `+preview` (see `PanelConfig::previews`).
    pub previews: bool,
}

impl IngestCtx {
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// A new connection's link (numbered, at `addr`) and where its commands
    /// arrive.
    pub fn new_link(
        &self,
        addr: std::net::SocketAddr,
    ) -> (
        crate::live::Link,
        tokio::sync::mpsc::Receiver<crate::live::LinkCommand>,
    ) {
        let (commands, rx) = tokio::sync::mpsc::channel(16);
        let link = crate::live::Link {
            conn_id: self.next_conn_id(),
            address: addr.to_string(),
            commands,
        };
        (link, rx)
    }
}

/// Accepts agents until `stop` (shutdown, or the listener moved elsewhere).
pub async fn serve(ctx: Arc<IngestCtx>, listener: TcpListener, stop: CancellationToken) {
    let permits = ctx.permits.clone();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, addr)) => {
                let verdict =
                    crate::sync::lock(&ctx.rate).check(addr.ip(), std::time::Instant::now());
                if let rate::Verdict::Refuse { report } = verdict {
                    // Closed at once, unread: a flood costs one accept each.
                    drop(stream);
                    if let Some(n) = report {
                        let reason = format!(
                            "{n} connection(s) from {} refused: over {} per minute",
                            addr.ip(),
                            ctx.limits.connects_per_minute_per_ip
                        );
                        warn!(%addr, "{reason}");
                        let mut r = Refusal::new(
                            crate::time::now_us(),
                            addr,
                            None,
                            RefusalCode::RateLimited,
                            &reason,
                        );
                        r.attempts = i64::try_from(n).unwrap_or(i64::MAX);
                        ctx.writes.send(Write::Refused(r));
                    }
                    continue;
                }
                match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let ctx2 = ctx.clone();
                        ctx.tasks.spawn(async move {
                            conn::handle(ctx2, stream, addr).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        // Counted per address (`panel refused`), not logged one by one.
                        let reason = format!(
                            "the panel has too many connections ({})",
                            ctx.limits.max_connections
                        );
                        ctx.writes.send(Write::Refused(Refusal::new(
                            crate::time::now_us(),
                            addr,
                            None,
                            RefusalCode::AtCapacity,
                            &reason,
                        )));
                        // A TLS client could not read a plain refusal.
                        if ctx.tls.is_none() {
                            ctx.tasks
                                .spawn(refuse(stream, "the panel has too many connections"));
                        }
                    }
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                warn!("cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Tells a peer why it is refused, briefly, then closes.
async fn refuse(stream: TcpStream, reason: &str) {
    let mut conn = Framed::new(stream, cctv_protocol::Codec::default());
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        conn.send(cctv_protocol::Message::Reject {
            reason: reason.into(),
        }),
    )
    .await;
}

/// "connection lost: " and what happened, in words (see `crate::explain`).
fn lost_words(e: &dyn std::fmt::Display) -> String {
    format!(
        "connection lost: {}",
        crate::explain::io_failure(&e.to_string())
    )
}
