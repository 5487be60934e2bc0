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
