//! The other recording servers of a shared catalog, viewed: for each one
//! running, a link to its agents' port as a viewer (see `ingest::view`)
//! that puts the newest frame of each of its live cameras in this panel's
//! live slots, so the wall shows them. Nothing of it is recorded here. A
//! link that breaks is tried again while the catalog says that server
//! runs; the camera's state on the wall comes from the catalog (see
//! `engine::housekeeping`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cctv_protocol::auth::Secret;
use cctv_protocol::tls::Fingerprint;
use cctv_protocol::view::viewer_proof;
use cctv_protocol::{Codec, Limits, Message, ViewFrame, ViewHello};
use futures::{SinkExt, StreamExt};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::catalog::{Catalog, ServerRow, ServerState};
use crate::live::{EngineEvent, LiveFrame, Registry};
use crate::time::now_us;

/// How often the catalog is read for servers to view.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// A link that hears nothing (not even a ping) for this long is dead.
const SILENCE: Duration = Duration::from_secs(5);
/// Largest message of a fetch: a piece of the file, or a camera's frame
/// between them.
const FETCH_FRAME_BYTES: u32 = cctv_protocol::DEFAULT_MAX_FRAME_BYTES;

/// Why another server could not be viewed or a file fetched from it.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("the catalog: {0}")]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("this server has no secret in the catalog yet")]
    NoSecret,
    #[error("its fingerprint {0:?}: {1}")]
    Fingerprint(String, String),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection: {0}")]
    Codec(#[from] cctv_protocol::CodecError),
    #[error("silent for {} s", SILENCE.as_secs())]
    Silent,
    #[error("it closed the connection")]
    Closed,
    #[error("refused: {0}")]
    Refused(String),
    #[error("it sent {0} out of turn")]
    Unexpected(cctv_protocol::MessageType),
    #[error("a piece of the file at {at} where {due} was due")]
    OutOfOrder { at: u64, due: u64 },
    #[error("{said} bytes said, {got} received")]
    Short { said: u64, got: u64 },
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

impl PeerError {
    fn file(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::File {
            path: path.display().to_string(),
            source,
        }
    }
}

pub struct Peers {
    pub catalog: Catalog,
    pub registry: Arc<Registry>,
    pub events: tokio::sync::broadcast::Sender<EngineEvent>,
    pub max_frame_bytes: u32,
}

/// Keeps a viewing link to every other running server until `stop`.
pub async fn run(peers: Arc<Peers>, stop: CancellationToken) {
    let mut links: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        if let Ok(servers) = peers.catalog.servers().await {
            let now = now_us();
            for s in servers {
                let wanted = s.id != peers.catalog.server()
                    && s.state(now) == ServerState::Running
                    && !s.address.is_empty();
                let running = links.get(&s.id).is_some_and(|l| !l.is_finished());
                if wanted && !running {
                    let (peers, stop) = (peers.clone(), stop.child_token());
                    links.insert(s.id.clone(), tokio::spawn(view(peers, s, stop)));
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
    for (_, link) in links {
        link.abort();
    }
}

async fn view(peers: Arc<Peers>, server: ServerRow, stop: CancellationToken) {
    tokio::select! {
        _ = stop.cancelled() => {}
        r = link(&peers, &server) => match r {
            Ok(()) => debug!(server = %server.id, "the viewing ended"),
            Err(why) => debug!(server = %server.id, address = %server.address, "cannot view: {why}"),
        },
    }
}

type Conn = Framed<Box<dyn crate::tls::Io>, Codec>;

/// A viewing connection to `server`, welcomed: TLS pinned to the
/// certificate it registered, this server's secret proven.
async fn open(
    catalog: &Catalog,
    server: &ServerRow,
    max_frame_bytes: u32,
) -> Result<Conn, PeerError> {
    let me = catalog.server().to_string();
    let secret = match catalog.server_secret(&me).await {
        Ok(Some(s)) => Secret::from_bytes(s),
        Ok(None) => return Err(PeerError::NoSecret),
        Err(e) => return Err(PeerError::Catalog(e)),
    };
    let pin = match server.fingerprint.as_str() {
        "" => None,
        f => Some(
            Fingerprint::parse(f).map_err(|e| PeerError::Fingerprint(f.into(), e.to_string()))?,
        ),
    };
    let io = timeout(SILENCE, crate::tls::connect(&server.address, pin))
        .await
        .map_err(|_| PeerError::Silent)??;
    let mut conn = Framed::new(io, Codec::new(Limits::control_only()));
    let hello = |proof: &[u8]| {
        Message::ViewHello(ViewHello {
            server_id: me.clone(),
            proof: bytes::Bytes::copy_from_slice(proof),
        })
    };
    conn.send(hello(&[])).await?;
    let nonce = match next(&mut conn).await? {
        Message::Challenge(c) => c.nonce,
        other => return Err(PeerError::Unexpected(other.message_type())),
    };
    let proof = viewer_proof(&secret, &nonce, &me);
    conn.send(hello(&proof)).await?;
    match next(&mut conn).await? {
        Message::Welcome(_) => {}
        Message::Reject { reason } => return Err(PeerError::Refused(reason)),
        other => return Err(PeerError::Unexpected(other.message_type())),
    }
    conn.codec_mut().limits.max_frame_bytes = max_frame_bytes;
    Ok(conn)
}

/// Fetches the recording `path` that `server` holds into `dest` (whole,
/// or not at all); its size.
pub async fn fetch(
    catalog: &Catalog,
    server: &ServerRow,
    path: &str,
    dest: &std::path::Path,
) -> Result<u64, PeerError> {
    use tokio::io::AsyncWriteExt;
    let mut conn = open(catalog, server, FETCH_FRAME_BYTES).await?;
    conn.send(Message::Fetch { path: path.into() }).await?;
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| PeerError::file(dir, e))?;
    }
    let part = dest.with_extension(format!("part{}", rand::random::<u32>()));
    let written = async {
        let mut file = tokio::fs::File::create(&part)
            .await
            .map_err(|e| PeerError::file(&part, e))?;
        let mut at = 0u64;
        loop {
            match next(&mut conn).await? {
                Message::FileData(d) if d.offset == at => {
                    file.write_all(&d.bytes)
                        .await
                        .map_err(|e| PeerError::file(&part, e))?;
                    at += d.bytes.len() as u64;
                }
                Message::FileData(d) => {
                    return Err(PeerError::OutOfOrder {
                        at: d.offset,
                        due: at,
                    });
                }
                Message::FileEnd { size } if size == at => break,
                Message::FileEnd { size } => {
                    return Err(PeerError::Short {
                        said: size,
                        got: at,
                    });
                }
                Message::Reject { reason } => return Err(PeerError::Refused(reason)),
                _ => {}
            }
        }
        file.flush().await.map_err(|e| PeerError::file(&part, e))?;
        Ok(at)
    }
    .await;
    match written {
        Ok(size) => {
            tokio::fs::rename(&part, dest)
                .await
                .map_err(|e| PeerError::file(dest, e))?;
            Ok(size)
        }
        Err(why) => {
            let _ = tokio::fs::remove_file(&part).await;
            Err(why)
        }
    }
}

async fn link(peers: &Peers, server: &ServerRow) -> Result<(), PeerError> {
    let mut conn = open(&peers.catalog, server, peers.max_frame_bytes).await?;
    info!(server = %server.id, address = %server.address, "viewing the cameras of another recording server");
    let mut seq = 0u64;
    loop {
        match next(&mut conn).await? {
            Message::View(f) => {
                seq += 1;
                show(peers, &server.id, f, seq).await;
            }
            Message::Ping { .. } => {}
            Message::Goodbye { reason } | Message::Reject { reason } => {
                return Err(PeerError::Refused(reason));
            }
            other => return Err(PeerError::Unexpected(other.message_type())),
        }
    }
}

async fn next(conn: &mut Conn) -> Result<Message, PeerError> {
    match timeout(SILENCE, conn.next()).await {
        Err(_) => Err(PeerError::Silent),
        Ok(None) => Err(PeerError::Closed),
        Ok(Some(Err(e))) => Err(e.into()),
        Ok(Some(Ok(m))) => Ok(m),
    }
}

/// A frame of another server's camera on this panel's wall, unless the
/// camera is connected here (then its own frames are shown).
async fn show(peers: &Peers, server: &str, f: ViewFrame, seq: u64) {
    let slot = match peers.registry.get(&f.camera_id) {
        Some(slot) => slot,
        None => match peers.catalog.camera(&f.camera_id).await {
            Ok(Some(row)) => peers.registry.slot(&row),
            _ => return,
        },
    };
    if slot.link().is_some() {
        return;
    }
    let Some((width, height)) = crate::jpeg::dimensions(&f.jpeg) else {
        return;
    };
    let now = now_us();
    slot.frames.send_replace(Some(Arc::new(LiveFrame {
        seq,
        capture_us: f.capture_us as i64,
        received_us: now,
        width,
        height,
        jpeg: f.jpeg,
        analysis: None,
        preview: None,
    })));
    let first = slot.status().server.is_empty();
    slot.update(|s| {
        s.last_frame_us = Some(f.capture_us as i64);
        s.frames_received += 1;
        if first {
            s.server = server.to_string();
        }
    });
    if first {
        let _ = peers.events.send(EngineEvent::Camera(f.camera_id));
    }
}
