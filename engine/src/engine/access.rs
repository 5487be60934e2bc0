//! Who may connect: the panel's TLS identity (or plain TCP, loudly),
//! issuing and revoking camera secrets, and cutting off revoked cameras.

use std::sync::Arc;
use std::time::Duration;

use cctv_protocol::tls::Fingerprint;
use tracing::{info, warn};

use super::{Engine, EngineError, Shared};
use crate::config::PanelConfig;
use crate::live::{EngineEvent, LinkCommand};
use crate::time::now_us;

/// TLS for agents from the certificate under `data/tls/` (made on first
/// start), or nothing when plain TCP is configured.
pub(super) fn transport(
    config: &PanelConfig,
) -> Result<(Option<tokio_rustls::TlsAcceptor>, Option<Fingerprint>), EngineError> {
    if config.plain_tcp {
        for line in [
            "PLAIN TCP: agents connect without TLS (plain_tcp = true).",
            "PLAIN TCP: video and camera handshakes cross the network unencrypted;",
            "PLAIN TCP: use it only on a trusted, closed LAN.",
        ] {
            warn!("{line}");
        }
        return Ok((None, None));
    }
    let id = crate::tls::load_or_create(&config.data_dir)?;
    if id.created {
        info!(cert = %id.cert_path.display(), "made the panel's TLS certificate");
    }
    info!(fingerprint = %id.fingerprint, "agents connect over TLS; pin this fingerprint in each agent (panel_fingerprint)");
    Ok((
        Some(tokio_rustls::TlsAcceptor::from(id.server_config)),
        Some(id.fingerprint),
    ))
}

impl Engine {
    /// The fingerprint agents pin; `None` when plain TCP is configured.
    pub fn fingerprint(&self) -> Option<cctv_protocol::tls::Fingerprint> {
        self.shared.fingerprint
    }

    /// Gives a camera a new secret (creating the camera if it is new) and
    /// returns it: it is shown once, for the agent's config.
    pub async fn add_camera(
        &self,
        id: &str,
        name: &str,
        replace: bool,
    ) -> Result<cctv_protocol::auth::Secret, EngineError> {
        cctv_protocol::validate_camera_id(id).map_err(EngineError::Name)?;
        cctv_protocol::validate_camera_name(name).map_err(EngineError::Name)?;
        let secret = new_secret();
        self.shared
            .catalog
            .add_credentials(id, name, secret.as_bytes(), replace, now_us())
            .await?;
        if let Some(row) = self.shared.catalog.camera(id).await? {
            let slot = self.shared.registry.slot(&row);
            slot.update(|s| s.name = row.name.clone());
        }
        let _ = self.shared.events.send(EngineEvent::Camera(id.to_string()));
        info!(camera = id, "issued credentials");
        Ok(secret)
    }

    /// Adds a camera whose agent fetches its secret with a one-time code
    /// (`camera-agent pair`), valid for `valid`; needs TLS.
    pub async fn pair_camera(
        &self,
        id: &str,
        name: &str,
        valid: Duration,
    ) -> Result<cctv_protocol::pair::PairingCode, EngineError> {
        if self.shared.fingerprint.is_none() {
            return Err(EngineError::PairingNeedsTls);
        }
        self.add_camera(id, name, false).await?;
        let code = new_pairing_code();
        let now = now_us();
        let expires = now.saturating_add(valid.as_micros().min(i64::MAX as u128) as i64);
        self.shared
            .catalog
            .add_pairing(id, &code.key(), now, expires)
            .await?;
        Ok(code)
    }

    /// Revokes a camera's secret and cuts it off if it is live.
    pub async fn revoke(&self, id: &str) -> Result<bool, EngineError> {
        let revoked = self.shared.catalog.revoke_credentials(id, now_us()).await?;
        if let Some(link) = self.shared.registry.get(id).and_then(|s| s.link()) {
            let _ = link
                .commands
                .send(LinkCommand::Disconnect(
                    "the camera's credentials were revoked".into(),
                ))
                .await;
        }
        Ok(revoked)
    }
}

/// A camera agent's settings for a new camera, to paste into its config
/// file: `panel` (HOST:PORT, when known), id, name, secret and the
/// certificate to pin (or plain TCP).
pub fn agent_settings(
    panel: Option<&str>,
    id: &str,
    name: &str,
    secret: &cctv_protocol::auth::Secret,
    fingerprint: Option<cctv_protocol::tls::Fingerprint>,
) -> String {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut out = String::new();
    let mut line = |l: String| {
        out.push_str(&l);
        out.push('\n');
    };
    if let Some(p) = panel {
        line(format!("panel = {}", quote(p)));
    }
    line(format!("camera_id = {}", quote(id)));
    if !name.is_empty() {
        line(format!("name = {}", quote(name)));
    }
    line(format!("secret = {}", quote(&secret.to_hex())));
    match fingerprint {
        Some(f) => line(format!("panel_fingerprint = {}", quote(&f.to_string()))),
        None => line("plain_tcp = true".into()),
    }
    out
}

/// 32 random bytes from a cryptographically secure generator seeded by the system.
pub fn new_secret() -> cctv_protocol::auth::Secret {
    let mut b = [0u8; cctv_protocol::auth::SECRET_LEN];
    rand::fill(&mut b);
    cctv_protocol::auth::Secret::from_bytes(b)
}

/// A fresh one-time pairing code (50 random bits).
pub fn new_pairing_code() -> cctv_protocol::pair::PairingCode {
    cctv_protocol::pair::PairingCode::from_random(rand::random())
}

/// Cuts off live cameras whose secret was revoked, also by another process
/// (`panel camera revoke`), within a quarter of a second.
pub(super) async fn enforce_revocations(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let revoked = match shared.catalog.revoked_cameras().await {
            Ok(r) => r,
            Err(e) => {
                warn!("cannot read revoked cameras: {e}");
                continue;
            }
        };
        for id in revoked {
            if let Some(link) = shared.registry.get(&id).and_then(|s| s.link()) {
                warn!(camera = %id, "cutting off a camera whose credentials were revoked");
                let _ = link
                    .commands
                    .send(LinkCommand::Disconnect(
                        "the camera's credentials were revoked".into(),
                    ))
                    .await;
            }
        }
    }
}
