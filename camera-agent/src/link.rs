//! The link to the panels: connect to the first that answers, say `Hello`,
//! stream live frames, send what the spool holds from before as backfill,
//! forget what the panel acknowledges, answer `Configure` and `Ping`, send
//! heartbeats when idle, and reconnect forever with capped, jittered
//! backoff. A panel unreachable for longer than `failover` gives way to
//! the next one listed; streaming to a standby, the agent goes back to the
//! first as soon as it answers again. It never captures or encodes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use cctv_protocol::{
    AudioPacket, CodecError, Configure, Encoding, FEATURE_ANALYSIS, FEATURE_AUDIO, FEATURE_SPOOL,
    Frame, Heartbeat, Hello, Message, SpoolStatus,
};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, interval, sleep, sleep_until, timeout};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::capture::Shared;
use crate::config::AgentConfig;
use crate::encode::{EncodeSettings, output_size};
use crate::framelog::{FrameLog, note};
use crate::spool;

mod backfill;
mod connect;
use backfill::Backfill;
use connect::{Connected, address, connect};

/// A send that takes this long means the connection is dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const INITIAL_BACKOFF: Duration = Duration::from_millis(250);
/// Frames no panel has had, captured this recently when a panel welcomes
/// the agent (while connecting, or since the agent started), open the live
/// stream instead of coming as backfill: at most [`CONNECTING_FRAMES`], so
/// the burst fits the panel's recorder queue (64).
const CONNECTING: Duration = Duration::from_secs(10);
const CONNECTING_FRAMES: usize = 40;
/// How often the agent tells the panel what its spool holds.
const SPOOL_STATUS_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("the panel refused this camera: {0}")]
    Rejected(String),
    #[error("the panel closed the connection")]
    Closed,
    #[error("the panel sent {0} where it should not")]
    Unexpected(cctv_protocol::MessageType),
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// How a connection ended.
enum SessionEnd {
    /// We were asked to stop; `Goodbye` was sent.
    Shutdown,
    /// The connection was up and then broke.
    Lost(LinkError),
    /// The first panel answers again: this connection to it replaces the
    /// one to a standby.
    MovedTo(Connected),
}

pub struct Link {
    pub cfg: Arc<AgentConfig>,
    pub shared: Arc<Shared>,
    pub settings: watch::Sender<EncodeSettings>,
    pub analysis: watch::Sender<Option<crate::config::AnalysisConfig>>,
    pub frames: mpsc::Receiver<Frame>,
    /// The camera's sound, 20 ms packets (nothing comes when it is off).
    pub audio: mpsc::Receiver<AudioPacket>,
    pub spool: Option<spool::Shared>,
    pub log: Option<Arc<FrameLog>>,
    pub shutdown: CancellationToken,
}

/// A connection's byte stream: TLS, or plain TCP where configured.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

type Conn = Framed<Box<dyn Io>, cctv_protocol::Codec>;

impl Link {
    pub async fn run(mut self) {
        let mut backoff = Backoff::new(INITIAL_BACKOFF, self.cfg.max_backoff);
        let panels = self.cfg.panels.len();
        let mut current = 0;
        // Since when the panel tried now has not answered.
        let mut down_since: Option<Instant> = None;
        let mut ready: Option<Connected> = None;
        loop {
            if self.shutdown.is_cancelled() {
                return;
            }
            let attempt = match ready.take() {
                Some(c) => Ok(c),
                None => {
                    // With a standby, an attempt that hangs (a dead route)
                    // must not outlast the failover time.
                    let limit = match down_since {
                        Some(since) if panels > 1 => self
                            .cfg
                            .failover
                            .saturating_sub(since.elapsed())
                            .max(Duration::from_secs(1)),
                        _ => Duration::from_secs(3600),
                    };
                    let attempt = timeout(limit, connect(self.cfg.clone(), current, self.hello()));
                    tokio::select! {
                        r = attempt => r.unwrap_or(Err(LinkError::Timeout("connecting, past the failover time"))),
                        _ = self.shutdown.cancelled() => return,
                    }
                }
            };
            match attempt {
                Ok(c) => {
                    current = c.panel;
                    down_since = None;
                    backoff.reset();
                    let end = self.session(c).await;
                    self.shared.connected.store(false, Ordering::Release);
                    if let Some(s) = &self.spool {
                        let mut s = spool::lock(s);
                        s.disconnected();
                        // Queued for this connection: they are in the spool,
                        // and go to the next as backfill, not as live.
                        while self.frames.try_recv().is_ok() {}
                    }
                    match end {
                        SessionEnd::Shutdown => return,
                        SessionEnd::Lost(e) => {
                            warn!(panel = %address(&self.cfg, current), "connection lost: {e}");
                            down_since = Some(Instant::now());
                        }
                        SessionEnd::MovedTo(c) => {
                            ready = Some(c);
                            continue;
                        }
                    }
                }
                Err(e) => {
                    warn!(panel = %address(&self.cfg, current), "{e}");
                    down_since.get_or_insert_with(Instant::now);
                }
            }
            if panels > 1
                && let Some(since) = down_since
                && since.elapsed() >= self.cfg.failover
            {
                let next = (current + 1) % panels;
                warn!(
                    "{} has not answered for {:.0} s: streaming to {} instead",
                    address(&self.cfg, current),
                    since.elapsed().as_secs_f64(),
                    address(&self.cfg, next)
                );
                current = next;
                down_since = Some(Instant::now());
                backoff.reset();
                continue;
            }
            let delay = backoff.next_delay();
            info!("reconnecting in {:.1} s", delay.as_secs_f64());
            tokio::select! {
                _ = sleep(delay) => {}
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    fn hello(&self) -> Hello {
        let s = *self.settings.borrow();
        let (w, h) = self.shared.source_size.lock().map(|g| *g).unwrap_or((0, 0));
        let (w, h) = output_size(w, h, s.max_width);
        Hello {
            camera_id: self.cfg.camera_id.clone(),
            name: self.cfg.name.clone(),
            agent_version: agent_version(
                self.cfg.analysis.is_some(),
                self.spool.is_some(),
                self.cfg.audio.is_on(),
            ),
            width: w,
            height: h,
            fps_milli: (s.fps * 1000.0).round() as u32,
            credentials: Bytes::new(),
        }
    }

    async fn session(&mut self, c: Connected) -> SessionEnd {
        let Connected {
            mut conn,
            heartbeat,
            panel,
            analysis,
            encoding,
            spool: takes_spool,
            audio: takes_audio,
            preview,
        } = c;
        // Sound is live only: of what was captured while no panel took it,
        // what the queue holds (its first 2 s) goes out, like the frames
        // captured while connecting; later sound was dropped.
        self.shared
            .panel_analysis
            .store(analysis, Ordering::Release);
        self.shared
            .panel_encoding
            .store(encoding, Ordering::Release);
        self.shared.panel_preview.store(preview, Ordering::Release);
        if encoding && let Err(e) = send(&mut conn, self.encoding()).await {
            return SessionEnd::Lost(e);
        }
        let mut backfill = Backfill::new(
            self.spool.clone().filter(|_| takes_spool),
            self.cfg.spool.backfill_rate,
        );
        let mut just_now = Vec::new();
        if let Some(s) = &self.spool {
            let mut s = spool::lock(s);
            just_now = s.connected(cctv_protocol::now_us(), CONNECTING, CONNECTING_FRAMES);
            let held = s.backlog(None);
            if !takes_spool && held > 0 {
                warn!(
                    held,
                    "the panel takes no backfill (it is older): the spooled frames wait for one that does"
                );
            }
        }
        self.shared.connected.store(true, Ordering::Release);
        // Captured while connecting: the start of the live stream.
        for p in just_now {
            let Ok(jpeg) = p.read() else {
                continue;
            };
            let f = Frame {
                seq: p.seq,
                capture_us: p.capture_us,
                jpeg,
                analysis: None,
                preview: None,
            };
            if let Err(e) = send(&mut conn, Message::Frame(f)).await {
                return SessionEnd::Lost(e);
            }
            if !takes_spool && let Some(s) = &self.spool {
                spool::lock(s).ack(p.seq, p.seq);
            }
        }
        let panel_name = address(&self.cfg, panel).to_string();
        let mut last_sent = Instant::now();
        let mut tick = interval(heartbeat.min(SPOOL_STATUS_EVERY) / 2);
        let mut last_status = Instant::now() - SPOOL_STATUS_EVERY;
        // Streaming to a standby: when to try the first panel again.
        let mut next_probe = (panel != 0).then(|| Instant::now() + self.cfg.failover);
        let mut probe: Option<JoinHandle<Result<Connected, LinkError>>> = None;
        // A panel with `+spool` pings an agent with a spool every
        // heartbeat: silence means the route is dead, even while TCP
        // still takes what is sent.
        let pinged = takes_spool && self.spool.is_some();
        let mut last_heard = Instant::now();
        let silent_after = (heartbeat * 4).max(Duration::from_secs(2));
        loop {
            let step = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => {
                    self.goodbye(&mut conn, "agent stopping").await;
                    return SessionEnd::Shutdown;
                }
                incoming = conn.next() => {
                    last_heard = Instant::now();
                    self.on_message(&mut conn, incoming, &panel_name).await
                }
                frame = self.frames.recv() => match frame {
                    Some(mut f) => {
                        // Queued for an earlier connection, to a panel that took it.
                                                if !analysis {
                            f.analysis = None;
                        }
                        if !preview {
                            f.preview = None;
                        }
                        let seq = f.seq;
                        let sent = send(&mut conn, Message::Frame(f)).await;
                        if !takes_spool
                            && sent.is_ok()
                            && let Some(s) = &self.spool
                        {
                            // A panel that acknowledges nothing: sent is as
                            // far as the agent can follow a frame.
                            spool::lock(s).ack(seq, seq);
                        }
                        sent
                    }
                    None => {
                        self.goodbye(&mut conn, "capture ended").await;
                        return SessionEnd::Shutdown;
                    }
                },
                Some(packet) = self.audio.recv() => {
                    if takes_audio {
                        send(&mut conn, Message::Audio(packet)).await
                    } else {
                        continue;
                    }
                }
                done = async { probe.as_mut().expect("guarded").await }, if probe.is_some() => {
                    probe = None;
                    match done {
                        Ok(Ok(first)) => {
                            info!("{} answers again: moving back to it", address(&self.cfg, 0));
                            self.goodbye(&mut conn, "moving back to the first panel").await;
                            return SessionEnd::MovedTo(first);
                        }
                        Ok(Err(e)) => debug!("the first panel still does not answer: {e}"),
                        Err(e) => debug!("trying the first panel: {e}"),
                    }
                    next_probe = Some(Instant::now() + self.cfg.failover);
                    continue;
                }
                _ = sleep_until(backfill.due()), if backfill.active() => {
                    backfill.step(&mut conn, &self.log, &panel_name).await
                }
                _ = tick.tick() => {
                    if pinged && last_heard.elapsed() > silent_after {
                        return SessionEnd::Lost(LinkError::Timeout("waiting: the panel went silent"));
                    }
                    if takes_spool && last_status.elapsed() >= SPOOL_STATUS_EVERY {
                        last_status = Instant::now();
                        if let Some(status) = self.spool_status(&backfill) {
                            if let Err(e) = send(&mut conn, Message::Spool(status)).await {
                                return SessionEnd::Lost(e);
                            }
                            last_sent = Instant::now();
                        }
                    }
                    if probe.is_none() && next_probe.is_some_and(|t| Instant::now() >= t) {
                        next_probe = None;
                        probe = Some(tokio::spawn(connect(self.cfg.clone(), 0, self.hello())));
                    }
                    if last_sent.elapsed() >= heartbeat {
                        send(&mut conn, heartbeat_message(0)).await
                    } else {
                        continue;
                    }
                }
            };
            match step {
                Ok(true) => last_sent = Instant::now(),
                Ok(false) => {}
                Err(e) => {
                    if let Some(p) = probe {
                        p.abort();
                    }
                    return SessionEnd::Lost(e);
                }
            }
        }
    }

    fn spool_status(&self, backfill: &Backfill) -> Option<SpoolStatus> {
        let s = spool::lock(self.spool.as_ref()?);
        let st = s.status();
        Some(SpoolStatus {
            bytes: st.bytes,
            frames: st.frames,
            oldest_us: st.oldest_us,
            backlog: backfill.backlog(&s),
            dropped: st.dropped.frames,
            dropped_from_us: st.dropped.from_us,
            dropped_to_us: st.dropped.to_us,
        })
    }

    /// Handles one message from the panel; `Ok(true)` if we sent something.
    async fn on_message(
        &self,
        conn: &mut Conn,
        incoming: Option<Result<Message, CodecError>>,
        panel: &str,
    ) -> Result<bool, LinkError> {
        match incoming {
            Some(Ok(Message::Configure(c))) => {
                self.apply(c);
                if self.shared.panel_encoding.load(Ordering::Acquire) {
                    return send(conn, self.encoding()).await;
                }
                Ok(false)
            }
            Some(Ok(Message::Detect(d))) => {
                self.analysis.send_modify(|a| {
                    if let Some(a) = a {
                        a.apply(&d);
                    }
                });
                info!(detect = ?d, "the panel changed the motion settings");
                Ok(false)
            }
            Some(Ok(Message::Ack(a))) => {
                if let Some(s) = &self.spool {
                    let mut s = spool::lock(s);
                    for (first, last) in &a.ranges {
                        s.ack(*first, *last);
                        note(&self.log, format_args!("acked {panel} {first} {last}"));
                    }
                }
                Ok(false)
            }
            Some(Ok(Message::Ping { nonce })) => send(conn, heartbeat_message(nonce)).await,
            Some(Ok(Message::Reject { reason })) => Err(LinkError::Rejected(
                cctv_protocol::printable(&reason).into_owned(),
            )),
            Some(Ok(other)) => {
                debug!(kind = %other.message_type(), "ignoring a message the panel should not send");
                Ok(false)
            }
            Some(Err(e)) => Err(e.into()),
            None => Err(LinkError::Closed),
        }
    }

    fn apply(&self, c: Configure) {
        self.settings.send_modify(|s| {
            if let Some(q) = c.quality {
                s.quality = Some(q);
            }
            if let Some(f) = c.fps_milli {
                s.fps = f64::from(f) / 1000.0;
            }
            if let Some(w) = c.max_width {
                s.max_width = (w > 0).then_some(w);
            }
        });
        let s = *self.settings.borrow();
        info!(
            quality = ?s.quality,
            fps = s.fps,
            max_width = ?s.max_width,
            "the panel changed the encoding settings"
        );
    }

    /// The encoding settings as they are now, for the panel.
    fn encoding(&self) -> Message {
        let s = *self.settings.borrow();
        let passthrough = self.shared.passthrough.load(Ordering::Acquire);
        Message::Encoding(Encoding {
            quality: match s.quality {
                Some(q) => q,
                None if passthrough => 0,
                None => crate::config::DEFAULT_QUALITY,
            },
            fps_milli: (s.fps * 1000.0).round() as u32,
            max_width: s.max_width.unwrap_or(0),
        })
    }

    /// Sends what is already queued, then `Goodbye`, briefly.
    async fn goodbye(&mut self, conn: &mut Conn, reason: &str) {
        let flush = async {
            while let Ok(f) = self.frames.try_recv() {
                conn.feed(Message::Frame(f)).await?;
            }
            conn.send(Message::Goodbye {
                reason: reason.into(),
            })
            .await
        };
        match timeout(Duration::from_secs(2), flush).await {
            Ok(Ok(())) => info!("said goodbye to the panel"),
            Ok(Err(e)) => warn!("could not say goodbye: {e}"),
            Err(_) => warn!("could not say goodbye: timed out"),
        }
    }
}

/// This agent's version, with `+analysis` when it analyses its frames,
/// `+spool` when it keeps a spool and `+audio` when it sends sound.
fn agent_version(analysis: bool, spool: bool, audio: bool) -> String {
    let mut v = concat!("camera-agent ", env!("CARGO_PKG_VERSION")).to_string();
    for (on, feature) in [
        (analysis, FEATURE_ANALYSIS),
        (spool, FEATURE_SPOOL),
        (audio, FEATURE_AUDIO),
    ] {
        if on {
            v.push(' ');
            v.push_str(feature);
        }
    }
    v
}

fn heartbeat_message(echo: u64) -> Message {
    Message::Heartbeat(Heartbeat {
        sent_us: cctv_protocol::now_us(),
        echo,
    })
}

async fn send(conn: &mut Conn, message: Message) -> Result<bool, LinkError> {
    timeout(WRITE_TIMEOUT, conn.send(message))
        .await
        .map_err(|_| LinkError::Timeout("sending to the panel"))??;
    Ok(true)
}
