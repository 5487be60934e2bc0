//! Opening a connection to one panel: TCP, TLS to its pinned certificate
//! (or the first one seen), `Hello`, the challenge, `Welcome`. Owns no
//! state of the link, so a standby can be tried while another panel
//! streams.

use std::sync::Arc;
use std::time::Duration;

use cctv_protocol::{
    Codec, FEATURE_ANALYSIS, FEATURE_AUDIO, FEATURE_ENCODING, FEATURE_PREVIEW, FEATURE_SPOOL,
    Hello, Message, has_feature,
};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::codec::Framed;
use tracing::{info, warn};

use super::{Conn, Io, LinkError};
use crate::config::{AgentConfig, PanelAddr, Transport};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A welcomed connection and what the panel said it takes.
pub(super) struct Connected {
    pub conn: Conn,
    pub heartbeat: Duration,
    /// Which of the configured panels.
    pub panel: usize,
    pub analysis: bool,
    pub encoding: bool,
    pub spool: bool,
    /// The panel takes sound (`+audio`).
    pub audio: bool,
    /// The panel takes previews (`+preview`).
    pub preview: bool,
}

/// Connects to `cfg.panels[panel]` and is welcomed, or says why not.
pub(super) async fn connect(
    cfg: Arc<AgentConfig>,
    panel: usize,
    hello: Hello,
) -> Result<Connected, LinkError> {
    let target = &cfg.panels[panel];
    let stream = timeout(CONNECT_TIMEOUT, TcpStream::connect(&target.address))
        .await
        .map_err(|_| LinkError::Timeout("connecting"))?
        .map_err(LinkError::Connect)?;
    stream.set_nodelay(true).map_err(LinkError::Connect)?;
    let io: Box<dyn Io> = match &target.transport {
        Transport::Plain => Box::new(stream),
        Transport::Tls(pin) => {
            let had_pin = pin.current().is_some();
            let connector =
                tokio_rustls::TlsConnector::from(cctv_protocol::tls::client_config(pin.clone()));
            let tls = timeout(
                HANDSHAKE_TIMEOUT,
                connector.connect(cctv_protocol::tls::panel_server_name(), stream),
            )
            .await
            .map_err(|_| LinkError::Timeout("in the TLS handshake"))?
            .map_err(LinkError::Tls)?;
            if !had_pin && let Some(f) = pin.current() {
                trusted_first_use(&cfg, f);
            }
            Box::new(tls)
        }
    };
    let mut conn = Framed::new(io, Codec::default());
    // Announce, answer the challenge with proof of the secret, be welcomed.
    conn.send(Message::Hello(hello.clone())).await?;
    let challenge = match reply(&mut conn).await? {
        Message::Challenge(c) => c,
        other => return Err(LinkError::Unexpected(other.message_type())),
    };
    let proven = cctv_protocol::auth::prove(&cfg.secret, &challenge, hello);
    conn.send(Message::Hello(proven)).await?;
    match reply(&mut conn).await? {
        Message::Welcome(w) => {
            info!(panel = %target.address, version = %cctv_protocol::printable(&w.panel_version), "connected to the panel");
            let analysis = has_feature(&w.panel_version, FEATURE_ANALYSIS);
            if cfg.analysis.is_some() && !analysis {
                warn!(
                    "the panel takes no frame analysis (it is older): sending every frame, no motion or tamper events"
                );
            }
            let heartbeat = Duration::from_millis(u64::from(w.heartbeat_ms).clamp(100, 60_000));
            Ok(Connected {
                conn,
                heartbeat,
                panel,
                analysis,
                encoding: has_feature(&w.panel_version, FEATURE_ENCODING),
                spool: has_feature(&w.panel_version, FEATURE_SPOOL),
                audio: has_feature(&w.panel_version, FEATURE_AUDIO),
                preview: has_feature(&w.panel_version, FEATURE_PREVIEW),
            })
        }
        other => Err(LinkError::Unexpected(other.message_type())),
    }
}

/// The panel's next handshake message; a `Reject` is an error.
pub(super) async fn reply(conn: &mut Conn) -> Result<Message, LinkError> {
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
fn trusted_first_use(cfg: &AgentConfig, f: cctv_protocol::tls::Fingerprint) {
    let line = format!("panel_fingerprint = \"{f}\"");
    let Some(path) = &cfg.config_path else {
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

/// A panel's address, for logs.
pub(super) fn address(cfg: &AgentConfig, panel: usize) -> &str {
    cfg.panels
        .get(panel)
        .map_or("?", |p: &PanelAddr| p.address.as_str())
}
