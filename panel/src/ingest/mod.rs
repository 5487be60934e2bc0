//! Ingest: the TCP listener agents connect to. One task per connection, a
//! cap on connections at once; a peer over the cap is told so and dropped.
//! A bad peer costs only its own connection.

mod conn;

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
            Ok((stream, addr)) => match permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    let shared2 = shared.clone();
                    shared.tasks.spawn(async move {
                        conn::handle(shared2, stream, addr).await;
                        drop(permit);
                    });
                }
                Err(_) => {
                    warn!(%addr, limit = shared.config.max_connections, "refused a connection: too many connections");
                    shared
                        .tasks
                        .spawn(refuse(stream, "the panel has too many connections"));
                }
            },
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
