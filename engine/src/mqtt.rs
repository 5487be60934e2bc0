//! Notifications through MQTT, the way home-automation users already wire
//! their cameras: per camera, its state, motion ON/OFF and tamper as
//! retained messages, and a JPEG snapshot when motion starts or a tamper
//! is raised; the panel's own availability as its last will.
//!
//! Topics, under `topic_prefix` (default `cctv`):
//!
//! | topic | payload | retained |
//! |---|---|---|
//! | `<prefix>/status` | `online` / `offline` (the last will) | yes |
//! | `<prefix>/<camera>/state` | `live` / `stalled` / `offline` | yes |
//! | `<prefix>/<camera>/motion` | `ON` / `OFF` | yes |
//! | `<prefix>/<camera>/tamper` | `covered` / `blinded` / `defocused` / `moved` / `none` | yes |
//! | `<prefix>/<camera>/snapshot` | the JPEG of the frame that started motion or tamper | no |
//!
//! It follows the engine's camera statuses, like a window does: it never
//! sits in the frame path. Messages go into a bounded queue and are dropped
//! (counted, logged) when it is full, so a broker that is down or slow
//! never slows ingest or recording; when the broker is back every camera's
//! retained state is published again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, Incoming, LastWill, MqttOptions, QoS, TlsConfiguration, Transport,
};
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::catalog::{CameraState, EventKind};
use crate::live::{CameraStatus, EngineEvent, Registry};

/// Messages waiting for the broker; more are dropped.
const QUEUE: usize = 256;
/// Largest message: a snapshot of a big camera.
const MAX_PACKET: usize = 16 * 1024 * 1024;

/// `[mqtt]` in the panel config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// The broker, HOST:PORT (1883 plain, 8883 TLS by custom).
    pub broker: String,
    /// How the panel names itself to the broker.
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Connect with TLS.
    pub tls: bool,
    /// PEM file of the CA that signed the broker's certificate [default:
    /// the system's roots].
    pub ca_file: Option<PathBuf>,
    /// First level of every topic.
    pub topic_prefix: String,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            broker: String::new(),
            client_id: "cctv-panel".into(),
            username: None,
            password: None,
            tls: false,
            ca_file: None,
            topic_prefix: "cctv".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MqttConfigError {
    #[error("mqtt broker {0:?} is not HOST:PORT")]
    Broker(String),
    #[error("mqtt topic_prefix {0:?} must be non-empty, without + # or a leading or trailing /")]
    Prefix(String),
    #[error("mqtt ca_file {path}: {why}")]
    Ca { path: String, why: String },
    #[error("mqtt password without a username")]
    Password,
}

impl MqttConfig {
    /// The broker's host and port.
    fn address(&self) -> Result<(String, u16), MqttConfigError> {
        let bad = || MqttConfigError::Broker(self.broker.clone());
        let (host, port) = self.broker.rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse::<u16>().map_err(|_| bad())?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok((host.to_string(), port))
    }

    pub fn check(&self) -> Result<(), MqttConfigError> {
        self.address()?;
        let p = &self.topic_prefix;
        if p.is_empty() || p.contains(['+', '#']) || p.starts_with('/') || p.ends_with('/') {
            return Err(MqttConfigError::Prefix(p.clone()));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(MqttConfigError::Password);
        }
        if let Some(ca) = &self.ca_file {
            self.roots(ca)?;
        }
        Ok(())
    }

    /// The CAs in `path`.
    fn roots(&self, path: &std::path::Path) -> Result<rustls::RootCertStore, MqttConfigError> {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let err = |why: String| MqttConfigError::Ca {
            path: path.display().to_string(),
            why,
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))? {
            roots
                .add(cert.map_err(|e| err(e.to_string()))?)
                .map_err(|e| err(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(err("no certificate in it".into()));
        }
        Ok(roots)
    }

    fn options(&self) -> Result<MqttOptions, MqttConfigError> {
        let (host, port) = self.address()?;
        let mut o = MqttOptions::new(self.client_id.clone(), host, port);
        o.set_keep_alive(Duration::from_secs(15));
        o.set_max_packet_size(MAX_PACKET, MAX_PACKET);
        o.set_last_will(LastWill::new(
            format!("{}/status", self.topic_prefix),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(user) = &self.username {
            o.set_credentials(user.clone(), self.password.clone().unwrap_or_default());
        }
        if self.tls {
            let roots = match &self.ca_file {
                Some(ca) => self.roots(ca)?,
                None => {
                    let mut roots = rustls::RootCertStore::empty();
                    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                    roots
                }
            };
            let config =
                rustls::ClientConfig::builder_with_provider(cctv_protocol::tls::provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| MqttConfigError::Ca {
                        path: "(TLS versions)".into(),
                        why: e.to_string(),
                    })?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::new(config),
            )));
        }
        Ok(o)
    }
}

/// What was last published of a camera.
#[derive(Debug, Clone, PartialEq)]
struct Published {
    state: CameraState,
    motion: bool,
    tamper: Option<EventKind>,
}

impl Published {
    fn of(c: &CameraStatus) -> Self {
        Self {
            state: c.state,
            motion: c.motion,
            tamper: c.tamper,
        }
    }
}

/// Publishes the cameras' states to the broker until `shutdown`.
pub async fn run(
    cfg: MqttConfig,
    registry: Arc<Registry>,
    mut events: broadcast::Receiver<EngineEvent>,
    shutdown: CancellationToken,
) {
    let options = match cfg.options() {
        Ok(o) => o,
        Err(e) => {
            warn!("MQTT is off: {e}");
            return;
        }
    };
    let (client, mut eventloop) = AsyncClient::new(options, QUEUE);
    let mut publisher = Publisher {
        client: client.clone(),
        prefix: cfg.topic_prefix.clone(),
        last: HashMap::new(),
        dropped: 0,
    };
    // Connecting, reconnecting (after a pause) and sending: on its own task.
    let (connected_tx, mut connected) = tokio::sync::mpsc::channel::<()>(4);
    let broker = cfg.broker.clone();
    let pump = tokio::spawn(async move {
        let mut down_since_logged = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    info!(%broker, "connected to the MQTT broker");
                    down_since_logged = false;
                    let _ = connected_tx.try_send(());
                }
                Ok(_) => {}
                Err(e) => {
                    if !down_since_logged {
                        warn!(%broker, "the MQTT broker is unreachable ({e}); notifications wait, recording goes on");
                        down_since_logged = true;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    });
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = connected.recv() => {
                // A (new) session: everything retained, again.
                publisher.online();
                publisher.last.clear();
                publisher.follow(&registry);
            }
            e = events.recv() => match e {
                Ok(EngineEvent::Camera(_)) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    publisher.follow(&registry)
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    // A clean stop says so itself; the last will covers the rest.
    let _ = client.try_publish(
        format!("{}/status", cfg.topic_prefix),
        QoS::AtLeastOnce,
        true,
        "offline",
    );
    let _ = tokio::time::timeout(Duration::from_millis(500), client.disconnect()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    pump.abort();
}

struct Publisher {
    client: AsyncClient,
    prefix: String,
    last: HashMap<String, Published>,
    dropped: u64,
}

impl Publisher {
    fn send(&mut self, topic: String, retain: bool, payload: Vec<u8>) {
        if self
            .client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
            .is_err()
        {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                warn!(
                    dropped = self.dropped,
                    "MQTT messages dropped: the broker is not keeping up"
                );
            }
        }
    }

    fn online(&mut self) {
        self.send(format!("{}/status", self.prefix), true, b"online".to_vec());
    }

    /// Publishes what changed of every camera since the last look.
    fn follow(&mut self, registry: &Registry) {
        for slot in registry.all() {
            let c = slot.status();
            let now = Published::of(&c);
            let before = self.last.get(&c.id).cloned();
            if before.as_ref() == Some(&now) {
                continue;
            }
            let base = format!("{}/{}", self.prefix, c.id);
            let topic = |leaf: &str| format!("{base}/{leaf}");
            if before.as_ref().map(|b| b.state) != Some(now.state) {
                self.send(topic("state"), true, now.state.as_str().into());
            }
            if before.as_ref().map(|b| b.motion) != Some(now.motion) {
                let on = if now.motion { "ON" } else { "OFF" };
                self.send(topic("motion"), true, on.into());
            }
            if before.as_ref().map(|b| b.tamper) != Some(now.tamper) {
                let t = now.tamper.map_or("none", |k| k.as_str());
                self.send(topic("tamper"), true, t.into());
            }
            // A snapshot as motion starts or a tamper is raised (not at a
            // reconnection, when `before` is unknown).
            let started = before.as_ref().is_some_and(|b| {
                (now.motion && !b.motion) || (now.tamper.is_some() && now.tamper != b.tamper)
            });
            if started && let Some(frame) = slot.frames.borrow().clone() {
                self.send(topic("snapshot"), false, frame.jpeg.to_vec());
            }
            self.last.insert(c.id.clone(), now);
        }
    }
}
