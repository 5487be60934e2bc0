//! One agent connection: handshake (`Hello` within a time limit), claim of
//! the camera id, then frames into the live channel and the recorder, with
//! the watchdog that turns a silent camera `stalled` and then `offline`.
//! This module admits a connection; [`super::session`] runs it once live.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cctv_protocol::auth::{CameraKey, Secret, ServerHandshake};
use cctv_protocol::{Codec, Hello, Limits, Message, Welcome, printable};
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{timeout, timeout_at};
use tokio_util::codec::Framed;
use tracing::{error, info, warn};

use super::IngestCtx;
use super::session::Session;
use crate::catalog::{CameraRow, CameraSettings, CameraState, Refusal, RefusalCode, StoredKey};
use crate::live::{CameraSlot, EngineEvent, LinkCommand};
use crate::recorder::camera::RecorderMsg;
use crate::time::now_us;
use crate::tls::Io;
use crate::writes::Write;

pub(super) type Conn = Framed<Box<dyn Io>, Codec>;

pub async fn handle(ctx: Arc<IngestCtx>, stream: TcpStream, addr: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let handshake = Duration::from_millis(ctx.limits.handshake_timeout_ms);
    let deadline = tokio::time::Instant::now() + handshake;
    let (mut conn, hello) = match timeout_at(deadline, handshake_io(&ctx, stream, addr)).await {
        Ok(Ok(Opened::Camera(conn, hello))) => (conn, hello),
        // A pairing, done: the agent connects again as the camera.
        Ok(Ok(Opened::Paired)) => return,
        Ok(Ok(Opened::Viewer(conn, server))) => {
            super::view::serve(&ctx, conn, addr, server).await;
            return;
        }
        Ok(Err(Refused {
            claimed,
            code,
            reason,
        })) => {
            refused(&ctx, addr, claimed.as_deref(), code, &reason);
            return;
        }
        Err(_) => {
            let reason = format!("no handshake within {:.1} s", handshake.as_secs_f64());
            refused(&ctx, addr, None, RefusalCode::Timeout, &reason);
            return;
        }
    };
    // Authenticated: from here a frame may be as large as configured.
    conn.codec_mut().limits = Limits {
        max_frame_bytes: ctx.limits.max_frame_bytes,
        ..Limits::default()
    };
    let Some((slot, mut commands, conn_id)) = admit(&ctx, &mut conn, &hello, addr).await else {
        return;
    };
    let recorder = ctx.recorders.for_camera(&slot);
    let session =
        Session::new(&ctx, &slot, recorder, &hello.agent_version).run(&mut conn, &mut commands);
    // A fault in the session ends this connection only: the slot is
    // released and the camera shown offline like any other end.
    let reason = match std::panic::AssertUnwindSafe(session).catch_unwind().await {
        Ok(reason) => reason,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            error!(camera = %slot.id, %addr, "the connection failed on a fault: {what}");
            format!("panel fault: {what}")
        }
    };
    // A clean close (TLS close_notify), so the agent sees an end, not a cut.
    let _ = timeout(Duration::from_millis(500), conn.get_mut().shutdown()).await;
    ctx.registry.release(&slot, conn_id);
    let _ = ctx
        .recorders
        .for_camera(&slot)
        .send(RecorderMsg::Close {
            reason: reason.clone(),
        })
        .await;
    set_state(&ctx, &slot, CameraState::Offline, &reason);
    slot.update(|s| {
        s.fps = 0.0;
        s.bitrate_bps = 0.0;
    });
    info!(camera = %slot.id, %addr, "camera offline: {reason}");
}

/// Why a connection was refused before it became a camera.
pub(super) struct Refused {
    claimed: Option<String>,
    code: RefusalCode,
    reason: String,
}

impl Refused {
    pub(super) fn new(claimed: Option<&str>, code: RefusalCode, reason: impl Into<String>) -> Self {
        Self {
            claimed: claimed.map(str::to_string),
            code,
            reason: reason.into(),
        }
    }
}

/// What a connection became once its handshake was done.
enum Opened {
    Camera(Conn, Hello),
    /// An agent paired (`PairHello` first; see `super::pairing`).
    Paired,
    /// Another recording server, to view (see `super::view`): its id.
    Viewer(Conn, String),
}

/// TLS (unless plain TCP is configured), then `Hello`, `Challenge`, and a
/// `Hello` that proves the camera's secret. Until it is proven, no message
/// over the control-message limit is read.
async fn handshake_io(
    ctx: &IngestCtx,
    stream: TcpStream,
    addr: SocketAddr,
) -> Result<Opened, Refused> {
    let io = transport(ctx, stream).await?;
    let mut conn = Framed::new(io, Codec::new(Limits::control_only()));
    let announced = match first_message(&mut conn).await? {
        First::Hello(h) => h,
        First::Pair(p) => {
            super::pairing::pair(ctx, &mut conn, addr, p).await?;
            let _ = timeout(Duration::from_millis(500), conn.get_mut().shutdown()).await;
            return Ok(Opened::Paired);
        }
        First::View(v) => {
            let server = super::view::prove(ctx, &mut conn, v).await?;
            return Ok(Opened::Viewer(conn, server));
        }
    };
    let hello = prove(ctx, &mut conn, &announced.camera_id).await?;
    Ok(Opened::Camera(conn, hello))
}

/// The first bytes the peer sent, without consuming them.
async fn sniff(stream: &TcpStream) -> Result<([u8; 4], usize), Refused> {
    let mut first = [0u8; 4];
    loop {
        let n = stream
            .peek(&mut first)
            .await
            .map_err(|e| Refused::new(None, RefusalCode::Protocol, super::lost_words(&e)))?;
        if n == 0 {
            return Err(Refused::new(
                None,
                RefusalCode::Protocol,
                "closed without a word",
            ));
        }
        if n >= 4 || first[0] != b'C' {
            return Ok((first, n));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// TLS, or plain TCP where configured; a peer speaking the other one is
/// refused with an answer it can read.
async fn transport(ctx: &IngestCtx, stream: TcpStream) -> Result<Box<dyn Io>, Refused> {
    let (first, n) = sniff(&stream).await?;
    let Some(acceptor) = &ctx.tls else {
        if first[0] == 0x16 {
            return Err(Refused::new(
                None,
                RefusalCode::Tls,
                "a TLS client on the plain-TCP port (set plain_tcp on the agent too, or turn TLS back on)",
            ));
        }
        return Ok(Box::new(stream));
    };
    if first[..n].starts_with(b"CCTV") {
        let mut conn = Framed::new(stream, Codec::new(Limits::control_only()));
        let reason = "plain TCP on the TLS port: this panel accepts agents over TLS only";
        // Read its Hello first: closing on unread bytes would reset the
        // connection and lose the answer.
        let _ = timeout(Duration::from_millis(500), conn.next()).await;
        let _ = conn
            .send(Message::Reject {
                reason: format!("{reason} (set the agent's panel_fingerprint, not plain_tcp)"),
            })
            .await;
        let _ = conn.get_mut().shutdown().await;
        return Err(Refused::new(None, RefusalCode::NotTls, reason));
    }
    match acceptor.accept(stream).await {
        Ok(s) => Ok(Box::new(s)),
        Err(e) => Err(Refused::new(
            None,
            RefusalCode::Tls,
            crate::explain::tls_failure(&e.to_string()),
        )),
    }
}

/// What a connection opens with.
enum First {
    /// A camera: who it says it is.
    Hello(Hello),
    /// An agent pairing with a one-time code.
    Pair(cctv_protocol::PairHello),
    /// Another recording server asking to view.
    View(cctv_protocol::ViewHello),
}

/// The agent's first message: `Hello`, or `PairHello`.
async fn first_message(conn: &mut Conn) -> Result<First, Refused> {
    match conn.next().await {
        Some(Ok(Message::Hello(h))) => Ok(First::Hello(h)),
        Some(Ok(Message::PairHello(p))) => Ok(First::Pair(p)),
        Some(Ok(Message::ViewHello(v))) => Ok(First::View(v)),
        Some(Ok(other)) => {
            let why = format!("it sent {} before Hello", other.message_type());
            reject(conn, "the first message must be Hello").await;
            Err(Refused::new(None, RefusalCode::Protocol, why))
        }
        Some(Err(e)) => Err(Refused::new(None, RefusalCode::Protocol, e.to_string())),
        None => Err(Refused::new(
            None,
            RefusalCode::Protocol,
            "closed before saying Hello",
        )),
    }
}

/// The challenge, and the answering `Hello` checked against the secret
/// stored for `claimed` (and against replays).
async fn prove(ctx: &IngestCtx, conn: &mut Conn, claimed: &str) -> Result<Hello, Refused> {
    let lost = |why: String| Refused::new(Some(claimed), RefusalCode::Protocol, why);
    let mut nonce = [0u8; cctv_protocol::auth::NONCE_LEN];
    rand::fill(&mut nonce);
    let server = ServerHandshake::new(nonce);
    let key = match ctx.catalog.camera_key(claimed).await {
        Ok(StoredKey::Valid(s)) => CameraKey::Known(Secret::from_bytes(s)),
        Ok(StoredKey::Revoked) => CameraKey::Revoked,
        Ok(StoredKey::None) => CameraKey::Unknown,
        Err(e) => {
            reject(conn, "the panel cannot check credentials (database error)").await;
            return Err(Refused::new(
                Some(claimed),
                RefusalCode::Database,
                e.to_string(),
            ));
        }
    };
    if let Err(e) = conn.send(server.challenge()).await {
        return Err(lost(super::lost_words(&e)));
    }
    let answer = match conn.next().await {
        Some(Ok(m)) => m,
        Some(Err(e)) => return Err(lost(e.to_string())),
        None => return Err(lost("closed instead of answering the challenge".into())),
    };
    let checked = {
        let mut replays = crate::sync::lock(&ctx.replays);
        let key_of = |id: &str| {
            if id == claimed {
                key
            } else {
                CameraKey::Unknown
            }
        };
        server.check(answer, key_of, &mut replays)
    };
    match checked {
        Ok(hello) => Ok(hello),
        Err((id, why)) => {
            let reason = why.to_string();
            reject(conn, &reason).await;
            Err(Refused::new(
                Some(id.as_deref().unwrap_or(claimed)),
                RefusalCode::from(&why),
                reason,
            ))
        }
    }
}

/// Logs a refused connection and queues it to be counted; a known camera
/// also gets it in its history (see `Catalog::add_refusals`).
pub(super) fn refused(
    ctx: &IngestCtx,
    addr: SocketAddr,
    claimed: Option<&str>,
    code: RefusalCode,
    reason: &str,
) {
    warn!(%addr, claimed = claimed.unwrap_or("-"), code = code.as_str(), "refused a connection: {reason}");
    ctx.writes.send(Write::Refused(Refusal::new(
        now_us(),
        addr,
        claimed,
        code,
        reason,
    )));
}

pub(super) async fn reject(conn: &mut Conn, reason: &str) {
    let _ = timeout(
        Duration::from_secs(1),
        conn.send(Message::Reject {
            reason: reason.into(),
        }),
    )
    .await;
}

/// Registers the camera, claims its id, welcomes it. `None` if refused.
async fn admit(
    ctx: &Arc<IngestCtx>,
    conn: &mut Conn,
    hello: &Hello,
    addr: SocketAddr,
) -> Option<(Arc<CameraSlot>, mpsc::Receiver<LinkCommand>, u64)> {
    let now = now_us();
    let row = register(ctx, conn, hello, addr, now).await?;
    let slot = ctx.registry.slot(&row);
    let (link, rx) = ctx.new_link(addr);
    let conn_id = link.conn_id;
    if let Err(taken) = ctx.registry.claim(&slot, link) {
        let reason = taken.to_string();
        refused(ctx, addr, Some(&slot.id), RefusalCode::AlreadyLive, &reason);
        reject(conn, &reason).await;
        return None;
    }
    let welcome = Message::Welcome(Welcome {
        // Features this panel takes (see the protocol's README).
        panel_version: format!(
            "panel {} +analysis +encoding +spool +audio{}",
            env!("CARGO_PKG_VERSION"),
            if ctx.previews { " +preview" } else { "" }
        ),
        heartbeat_ms: ctx.limits.heartbeat_ms,
    });
    if let Err(e) = conn.send(welcome).await {
        ctx.registry.release(&slot, conn_id);
        warn!(camera = %slot.id, %addr, "lost the camera during the handshake: {e}");
        return None;
    }
    slot.update(|s| {
        s.name = row.name.clone();
        s.address = addr.to_string();
        s.width = hello.width;
        s.height = hello.height;
        s.analysed =
            cctv_protocol::has_feature(&hello.agent_version, cctv_protocol::FEATURE_ANALYSIS);
        s.encoding = None;
        s.spool = None;
        s.backfilled = 0;
        s.audio = cctv_protocol::has_feature(&hello.agent_version, cctv_protocol::FEATURE_AUDIO);
    });
    slot.sound.set_on(cctv_protocol::has_feature(
        &hello.agent_version,
        cctv_protocol::FEATURE_AUDIO,
    ));
    let detail = format!("connected from {addr}");
    set_state(ctx, &slot, CameraState::Live, &detail);
    info!(camera = %slot.id, %addr, name = %row.name, "camera live");
    Some((slot, rx, conn_id))
}

/// The camera's catalog row, created or brought up to date from its Hello
/// (the panel keeps its own name once renamed).
async fn register(
    ctx: &IngestCtx,
    conn: &mut Conn,
    hello: &Hello,
    addr: SocketAddr,
    now: i64,
) -> Option<CameraRow> {
    let name = match hello.name.trim().is_empty() {
        true => hello.camera_id.clone(),
        false => printable(&hello.name).into_owned(),
    };
    let settings = CameraSettings {
        id: hello.camera_id.clone(),
        name,
        address: addr.to_string(),
        agent_version: printable(&hello.agent_version).into_owned(),
        width: hello.width,
        height: hello.height,
        fps_milli: hello.fps_milli,
    };
    // A known camera's row is read (a locked catalog still reads) and its
    // update queued; only a camera new to the catalog waits for its row.
    let known = match ctx.catalog.camera(&settings.id).await {
        Ok(row) => row,
        Err(e) => {
            warn!(camera = %hello.camera_id, %addr, "cannot read the camera's row: {e}");
            None
        }
    };
    if let Some(mut row) = known {
        if !row.name_locked {
            row.name.clone_from(&settings.name);
        }
        ctx.writes.send(Write::Register {
            settings,
            mode: ctx.default_mode,
            at_us: now,
        });
        return Some(row);
    }
    match ctx
        .catalog
        .register_camera(&settings, ctx.default_mode, now)
        .await
    {
        Ok(row) => Some(row),
        Err(e) => {
            warn!(camera = %hello.camera_id, %addr, "cannot register the camera: {e}");
            reject(
                conn,
                "the panel cannot register the camera (database error)",
            )
            .await;
            None
        }
    }
}

/// Records a state change in the catalog and the live status, and tells clients.
pub(super) fn set_state(ctx: &IngestCtx, slot: &CameraSlot, state: CameraState, detail: &str) {
    let now = now_us();
    ctx.writes.send(Write::State {
        camera: slot.id.clone(),
        state,
        at_us: now,
        detail: detail.to_string(),
    });
    slot.update(|s| {
        s.state = state;
        s.since_us = now;
        s.detail = detail.to_string();
        if state == CameraState::Live {
            s.server.clear();
        }
    });
    let _ = ctx.events.send(EngineEvent::Camera(slot.id.clone()));
}
