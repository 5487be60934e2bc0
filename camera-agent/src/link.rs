//! The link to the panel: connect, say `Hello`, stream frames, answer the
//! panel's `Configure` and `Ping`, send heartbeats when idle, and reconnect
//! forever with capped, jittered backoff. It never captures or encodes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use cctv_protocol::{
    Codec, CodecError, Configure, Encoding, FEATURE_ANALYSIS, FEATURE_ENCODING, Frame, Heartbeat,
    Hello, Message,
};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, interval, sleep, timeout};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::capture::Shared;
use crate::config::{AgentConfig, Transport};
use crate::encode::{EncodeSettings, output_size};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A send that takes this long means the connection is dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const INITIAL_BACKOFF: Duration = Duration::from_millis(250);

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
}

pub struct Link {
    pub cfg: Arc<AgentConfig>,
    pub shared: Arc<Shared>,
    pub settings: watch::Sender<EncodeSettings>,
    pub analysis: watch::Sender<Option<crate::config::AnalysisConfig>>,
    pub frames: mpsc::Receiver<Frame>,
    pub shutdown: CancellationToken,
}

/// A connection's byte stream: TLS, or plain TCP where configured.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

type Conn = Framed<Box<dyn Io>, Codec>;

impl Link {
    pub async fn run(mut self) {
        let mut backoff = Backoff::new(INITIAL_BACKOFF, self.cfg.max_backoff);
        loop {
            if self.shutdown.is_cancelled() {
                return;
            }
            let outcome = self.session().await;
            self.shared.connected.store(false, Ordering::Release);
            match outcome {
                Ok(SessionEnd::Shutdown) => return,
                Ok(SessionEnd::Lost(e)) => {
                    warn!(panel = %self.cfg.panel, "connection lost: {e}");
                    backoff.reset();
                }
                Err(e) => warn!(panel = %self.cfg.panel, "{e}"),
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
            agent_version: agent_version(self.cfg.analysis.is_some()),
            width: w,
            height: h,
            fps_milli: (s.fps * 1000.0).round() as u32,
            credentials: Bytes::new(),
        }
    }

    async fn connect(&self) -> Result<(Conn, Duration), LinkError> {
        let stream = timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.cfg.panel))
            .await
            .map_err(|_| LinkError::Timeout("connecting"))?
            .map_err(LinkError::Connect)?;
        stream.set_nodelay(true).map_err(LinkError::Connect)?;
        let io: Box<dyn Io> = match &self.cfg.transport {
            Transport::Plain => Box::new(stream),
            Transport::Tls(pin) => {
                let had_pin = pin.current().is_some();
                let connector = tokio_rustls::TlsConnector::from(
                    cctv_protocol::tls::client_config(pin.clone()),
                );
                let tls = timeout(
                    HANDSHAKE_TIMEOUT,
                    connector.connect(cctv_protocol::tls::panel_server_name(), stream),
                )
                .await
                .map_err(|_| LinkError::Timeout("in the TLS handshake"))?
                .map_err(LinkError::Tls)?;
                if !had_pin && let Some(f) = pin.current() {
                    self.trusted_first_use(f);
                }
                Box::new(tls)
            }
        };
        let mut conn = Framed::new(io, Codec::default());
        // Announce, answer the challenge with proof of the secret, be welcomed.
        let hello = self.hello();
        conn.send(Message::Hello(hello.clone())).await?;
        let challenge = match self.reply(&mut conn).await? {
            Message::Challenge(c) => c,
            other => return Err(LinkError::Unexpected(other.message_type())),
        };
        let proven = cctv_protocol::auth::prove(&self.cfg.secret, &challenge, hello);
        conn.send(Message::Hello(proven)).await?;
        match self.reply(&mut conn).await? {
            Message::Welcome(w) => {
                info!(panel = %self.cfg.panel, version = %cctv_protocol::printable(&w.panel_version), "connected to the panel");
                let takes = cctv_protocol::has_feature(&w.panel_version, FEATURE_ANALYSIS);
                if self.cfg.analysis.is_some() && !takes {
                    warn!(
                        "the panel takes no frame analysis (it is older): sending every frame, no motion or tamper events"
                    );
                }
                self.shared.panel_analysis.store(takes, Ordering::Release);
                let encoding = cctv_protocol::has_feature(&w.panel_version, FEATURE_ENCODING);
                self.shared
                    .panel_encoding
                    .store(encoding, Ordering::Release);
                if encoding {
                    conn.send(self.encoding()).await?;
                }
                let heartbeat = Duration::from_millis(u64::from(w.heartbeat_ms).clamp(100, 60_000));
                Ok((conn, heartbeat))
            }
            other => Err(LinkError::Unexpected(other.message_type())),
        }
    }

    /// The panel's next handshake message; a `Reject` is an error.
    async fn reply(&self, conn: &mut Conn) -> Result<Message, LinkError> {
        let reply = timeout(HANDSHAKE_TIMEOUT, conn.next())
            .await
            .map_err(|_| LinkError::Timeout("waiting for the panel's answer"))?;
        match reply {
            Some(Ok(Message::Reject { reason })) => Err(LinkError::Rejected(
                cctv_protocol::printable(&reason).into_owned(),
            )),
            Some(Ok(m)) => Ok(m),
            Some(Err(e)) => Err(e.into()),
            None => Err(LinkError::Closed),
        }
    }

    /// Records a certificate trusted on first use in the config file, so
    /// from now on only that certificate is accepted.
    fn trusted_first_use(&self, f: cctv_protocol::tls::Fingerprint) {
        let line = format!("panel_fingerprint = \"{f}\"");
        let Some(path) = &self.cfg.config_path else {
            warn!(fingerprint = %f, "trusting the panel's certificate for this run only; put `{line}` in the agent's config");
            return;
        };
        let saved = std::fs::read_to_string(path).and_then(|text| {
            let sep = if text.is_empty() || text.ends_with('\n') {
                ""
            } else {
                "\n"
            };
            std::fs::write(
                path,
                format!(
                    "{text}{sep}# Trusted on first use; check it against the panel's log.\n{line}\n"
                ),
            )
        });
        match saved {
            Ok(()) => {
                warn!(fingerprint = %f, config = %path.display(), "trusted the panel's certificate on first use and pinned it in the config")
            }
            Err(e) => {
                warn!(fingerprint = %f, "trusting the panel's certificate for this run only: cannot write {}: {e}", path.display())
            }
        }
    }

    async fn session(&mut self) -> Result<SessionEnd, LinkError> {
        let (mut conn, heartbeat) = tokio::select! {
            r = self.connect() => r?,
            _ = self.shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
        };
        self.shared.connected.store(true, Ordering::Release);
        let mut last_sent = Instant::now();
        let mut tick = interval(heartbeat / 2);
        loop {
            let step = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => {
                    self.goodbye(&mut conn, "agent stopping").await;
                    return Ok(SessionEnd::Shutdown);
                }
                incoming = conn.next() => self.on_message(&mut conn, incoming).await,
                frame = self.frames.recv() => match frame {
                    Some(mut f) => {
                        // Queued for an earlier connection, to a panel that took it.
                        if !self.shared.panel_analysis.load(Ordering::Acquire) {
                            f.analysis = None;
                        }
                        send(&mut conn, Message::Frame(f)).await
                    }
                    None => {
                        self.goodbye(&mut conn, "capture ended").await;
                        return Ok(SessionEnd::Shutdown);
                    }
                },
                _ = tick.tick() => {
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
                Err(e) => return Ok(SessionEnd::Lost(e)),
            }
        }
    }

    /// Handles one message from the panel; `Ok(true)` if we sent something.
    async fn on_message(
        &self,
        conn: &mut Conn,
        incoming: Option<Result<Message, CodecError>>,
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

/// This agent's version, with `+analysis` when it analyses its frames.
fn agent_version(analysis: bool) -> String {
    let base = concat!("camera-agent ", env!("CARGO_PKG_VERSION"));
    if analysis {
        format!("{base} {FEATURE_ANALYSIS}")
    } else {
        base.to_string()
    }
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
