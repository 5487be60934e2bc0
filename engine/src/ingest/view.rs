//! Another recording server viewing this one's cameras: it opens with
//! `ViewHello`, proves its server's secret from the shared catalog, and is
//! sent the newest frame of each camera live here (`View`), never a
//! backlog: a viewer that reads slowly gets fewer frames. Nothing it sends
//! after the handshake is read but to notice it is gone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cctv_protocol::auth::Secret;
use cctv_protocol::view::check_viewer_proof;
use cctv_protocol::{Challenge, Message, ViewFrame, ViewHello, Welcome};
use futures::{SinkExt, StreamExt};
use tracing::info;

use super::IngestCtx;
use super::conn::{Conn, Refused, reject};
use crate::catalog::RefusalCode;

/// The largest piece of a fetched file in one message.
const CHUNK: usize = 256 * 1024;

/// How often the cameras are looked at for a newer frame.
const TICK: Duration = Duration::from_millis(100);
/// A viewer that hears nothing for this long takes the link for dead.
const PING_EVERY: Duration = Duration::from_secs(1);

/// The challenge, and the second `ViewHello` checked against the viewer
/// server's secret. The viewer's server id, once proven.
pub(super) async fn prove(
    ctx: &IngestCtx,
    conn: &mut Conn,
    first: ViewHello,
) -> Result<String, Refused> {
    let claimed = first.server_id;
    let refuse = |code, why: String| Refused::new(Some(&claimed), code, why);
    let mut nonce = [0u8; cctv_protocol::auth::NONCE_LEN];
    rand::fill(&mut nonce);
    let secret = match ctx.catalog.server_secret(&claimed).await {
        Ok(s) => s,
        Err(e) => {
            reject(conn, "the panel cannot check credentials (database error)").await;
            return Err(refuse(RefusalCode::Database, e.to_string()));
        }
    };
    if let Err(e) = conn.send(Message::Challenge(Challenge { nonce })).await {
        return Err(refuse(RefusalCode::Protocol, super::lost_words(&e)));
    }
    let proof = match conn.next().await {
        Some(Ok(Message::ViewHello(v))) if v.server_id == claimed => v.proof,
        Some(Ok(other)) => {
            let why = format!("it answered the challenge with {}", other.message_type());
            reject(conn, "answer the challenge with ViewHello").await;
            return Err(refuse(RefusalCode::Protocol, why));
        }
        Some(Err(e)) => return Err(refuse(RefusalCode::Protocol, e.to_string())),
        None => {
            let why = "closed instead of answering the challenge".to_string();
            return Err(refuse(RefusalCode::Protocol, why));
        }
    };
    let Some(secret) = secret else {
        let why = format!("no recording server {claimed:?} in the catalog");
        reject(conn, &why).await;
        return Err(refuse(RefusalCode::UnknownSender, why));
    };
    if !check_viewer_proof(&Secret::from_bytes(secret), &nonce, &claimed, &proof) {
        let why = "wrong secret".to_string();
        reject(conn, &why).await;
        return Err(refuse(RefusalCode::WrongSecret, why));
    }
    Ok(claimed)
}

/// Welcomes the proven viewer and sends it frames until it goes away or
/// the panel stops.
pub(super) async fn serve(ctx: &IngestCtx, mut conn: Conn, addr: SocketAddr, viewer: String) {
    let welcome = Message::Welcome(Welcome {
        panel_version: concat!("panel ", env!("CARGO_PKG_VERSION")).into(),
        heartbeat_ms: PING_EVERY.as_millis() as u32,
    });
    if conn.send(welcome).await.is_err() {
        return;
    }
    conn.codec_mut().limits.max_frame_bytes = ctx.limits.max_frame_bytes;
    info!(server = %viewer, %addr, "a recording server views this panel's cameras");
    let mut sent: HashMap<String, u64> = HashMap::new();
    let mut last_send = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let why = loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break "the panel stopped".to_string(),
            heard = conn.next() => match heard {
                None => break "the viewer closed the connection".to_string(),
                Some(Err(e)) => break e.to_string(),
                Some(Ok(Message::Fetch { path })) => match send_file(ctx, &mut conn, &path).await {
                    Ok(size) => {
                        info!(server = %viewer, %path, size, "sent a recording to another server");
                        continue;
                    }
                                        Err(e) => {
                        let why = e.to_string();
                        reject(&mut conn, &why).await;
                        break why;
                    }
                },
                Some(Ok(_)) => continue,
            },
            _ = tick.tick() => {}
        }
        let mut failed = None;
        for slot in ctx.registry.all() {
            if slot.link().is_none() {
                continue;
            }
            let frame = slot.frames.borrow().clone();
            let Some(frame) = frame else { continue };
            if sent.get(&slot.id) == Some(&frame.seq) {
                continue;
            }
            sent.insert(slot.id.clone(), frame.seq);
            let view = Message::View(ViewFrame {
                camera_id: slot.id.clone(),
                capture_us: frame.capture_us.max(0) as u64,
                jpeg: frame.jpeg.clone(),
            });
            if let Err(e) = conn.send(view).await {
                failed = Some(super::lost_words(&e));
                break;
            }
            last_send = Instant::now();
        }
        if let Some(why) = failed {
            break why;
        }
        if last_send.elapsed() >= PING_EVERY {
            if let Err(e) = conn.send(Message::Ping { nonce: 0 }).await {
                break super::lost_words(&e);
            }
            last_send = Instant::now();
        }
    };
    info!(server = %viewer, %addr, "the viewing ended: {why}");
}

/// Why a recording asked for was not sent.
#[derive(Debug, thiserror::Error)]
enum SendFileError {
    #[error("{0:?} is not a recording of this server")]
    NotOurs(String),
    #[error("the catalog cannot say: {0}")]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Lost(String),
}

/// Sends a recording this server holds, by its catalog path, in order;
/// its size. Only a path the catalog lists as this server's is read.
async fn send_file(ctx: &IngestCtx, conn: &mut Conn, path: &str) -> Result<u64, SendFileError> {
    use tokio::io::AsyncReadExt;
    let row = ctx
        .catalog
        .recording_by_path(path)
        .await?
        .ok_or_else(|| SendFileError::NotOurs(path.to_string()))?;
    let read_err = |source| SendFileError::Read {
        path: row.path.clone(),
        source,
    };
    let lost = |e| SendFileError::Lost(super::lost_words(&e));
    let full = ctx.recorders.root().join(&row.path);
    let mut file = tokio::fs::File::open(&full).await.map_err(read_err)?;
    let mut offset = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf).await.map_err(read_err)?;
        if n == 0 {
            break;
        }
        let data = Message::FileData(cctv_protocol::FileData {
            offset,
            bytes: bytes::Bytes::copy_from_slice(&buf[..n]),
        });
        conn.send(data).await.map_err(lost)?;
        offset += n as u64;
    }
    conn.send(Message::FileEnd { size: offset })
        .await
        .map_err(lost)?;
    Ok(offset)
}
