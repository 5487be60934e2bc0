//! Ingest: the TCP listener agents connect to. One task per connection, a
//! cap on connections at once; a peer over the cap is told so and dropped.
//! A bad peer costs only its own connection.

mod conn;
pub mod rate;

use std::sync::Arc;
use std::time::Duration;

use futures::SinkExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::engine::Shared;

/// Accepts agents until `stop` (shutdown, or the listener moved elsewhere).
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, stop: CancellationToken) {
    let permits = shared.connection_permits.clone();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, addr)) => {
                let verdict = shared
                    .rate
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .check(addr.ip(), std::time::Instant::now());
                if let rate::Verdict::Refuse { report } = verdict {
                    // Closed at once, unread: a flood costs one accept each.
                    drop(stream);
                    if let Some(n) = report {
                        let reason = format!(
                            "{n} connection(s) from {} refused: over {} per minute",
                            addr.ip(),
                            shared.config.connects_per_minute_per_ip
                        );
                        let shared2 = shared.clone();
                        shared.tasks.spawn(async move {
                            conn::refused(&shared2, addr, None, "rate_limited", &reason).await;
                        });
                    }
                    continue;
                }
                match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let shared2 = shared.clone();
                        shared.tasks.spawn(async move {
                            conn::handle(shared2, stream, addr).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        warn!(%addr, limit = shared.config.max_connections, "refused a connection: too many connections");
                        // A TLS client could not read a plain refusal.
                        if shared.tls.is_none() {
                            shared
                                .tasks
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
