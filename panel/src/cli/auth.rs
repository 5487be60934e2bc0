//! `panel camera add | revoke` and `panel refused`: who may connect, and
//! who tried and was turned away.

use anyhow::Context;
use cctv_engine::catalog::Location;
use cctv_engine::config::PanelConfig;
use cctv_engine::time;

use super::catalog::open_catalog;

/// How `panel camera add` hands the secret over.
pub struct Enrol<'a> {
    /// Replace a secret the camera already has.
    pub replace: bool,
    /// HOST:PORT as the agent reaches the panel, for the printed settings.
    pub panel: Option<&'a str>,
    /// A one-time pairing code valid this long, instead of printing the secret.
    pub pair: Option<std::time::Duration>,
    /// The secret the camera already has with another panel (a standby it
    /// moves to), instead of a new one.
    pub secret: Option<&'a str>,
}

/// Issues a camera's secret and prints the agent's settings, once; or a
/// one-time pairing code that lets the agent fetch them.
pub async fn add(cfg: &PanelConfig, id: &str, name: &str, how: Enrol<'_>) -> anyhow::Result<()> {
    cctv_protocol::validate_camera_id(id).map_err(|e| anyhow::anyhow!("{e}: {id:?}"))?;
    cctv_protocol::validate_camera_name(name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    if how.pair.is_some() && cfg.plain_tcp {
        anyhow::bail!(
            "--pair needs TLS (the secret crosses the network); this panel is set to plain_tcp"
        );
    }
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create {}", cfg.data_dir.display()))?;
    let catalog = cctv_engine::catalog::Catalog::connect(&cfg.catalog_location())
        .await?
        .with_server(&cfg.server_id());
    let fingerprint = if cfg.plain_tcp {
        None
    } else {
        Some(cctv_engine::tls::load_or_create(&cfg.data_dir)?.fingerprint)
    };
    let secret = match how.secret {
        Some(hex) => cctv_protocol::auth::Secret::parse(hex)
            .map_err(|why| anyhow::anyhow!("--secret: {why}"))?,
        None => cctv_engine::new_secret(),
    };
    let now = time::now_us();
    catalog
        .add_credentials(id, name, secret.as_bytes(), how.replace, now)
        .await?;
    if let (Some(valid), Some(fingerprint)) = (how.pair, fingerprint) {
        let code = cctv_engine::new_pairing_code();
        let expires = now.saturating_add(valid.as_micros().min(i64::MAX as u128) as i64);
        catalog.add_pairing(id, &code.key(), now, expires).await?;
        catalog.close().await;
        let panel = how
            .panel
            .map_or_else(|| format!("HOST:{}", cfg.listen.port()), str::to_string);
        say!("camera {id}: pairing code {}", code.display());
        say!(
            "It works once, for {} minutes, from any camera host that reaches this panel.",
            valid.as_secs().div_ceil(60)
        );
        say!("On the camera host:");
        say!("  sudo camera-agent pair {panel} {}", code.display());
        say!("  sudo systemctl enable --now camera-agent");
        say!("The agent prints the panel's fingerprint; it must be {fingerprint}");
        return Ok(());
    }
    catalog.close().await;
    say!("# camera-agent settings for camera {id}; paste them into the agent's config file.");
    say!("# The secret is shown only this once. Keep the file private (chmod 600).");
    let settings = cctv_engine::agent_settings(how.panel, id, name, &secret, fingerprint);
    say!("{}", settings.trim_end());
    Ok(())
}

pub async fn revoke(cfg: &PanelConfig, id: &str) -> anyhow::Result<()> {
    let catalog = open_catalog(&cfg.catalog_location())
        .await?
        .with_server(&cfg.server_id());
    let done = catalog.revoke_credentials(id, time::now_us()).await?;
    catalog.close().await;
    if !done {
        return Err(anyhow::anyhow!(
            "camera {id} has no valid credentials to revoke"
        ));
    }
    say!("revoked camera {id}: a running panel cuts it off within a second");
    Ok(())
}

/// Refused connections, newest first: one line per burst from an address,
/// with its count of attempts.
pub async fn refused(cfg: &PanelConfig, limit: i64, json: bool) -> anyhow::Result<()> {
    let catalog = open_catalog(&cfg.catalog_location())
        .await?
        .with_server(&cfg.server_id());
    let rows = catalog.auth_failures(limit).await?;
    catalog.close().await;
    for r in rows {
        if json {
            say!("{}", serde_json::to_string(&r)?);
        } else {
            say!(
                "{}  {:<22} {:>7}x {:<16} {:<14} {}",
                time::local(r.at_us),
                r.address,
                r.attempts,
                r.claimed_id.as_deref().unwrap_or("-"),
                r.code,
                r.reason
            );
        }
    }
    Ok(())
}

/// Lets a panel send exports to this machine's `panel receive`: makes the
/// sender's secret and prints its `[[dispatch_targets]]` entry, once.
pub async fn add_sender(
    data: &std::path::Path,
    at: &Location,
    id: &str,
    address: Option<&str>,
    plain_tcp: bool,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    let catalog = cctv_engine::catalog::Catalog::connect(at).await?;
    let fingerprint = if plain_tcp {
        None
    } else {
        Some(cctv_engine::tls::load_or_create(data)?.fingerprint)
    };
    let secret = cctv_engine::new_secret();
    catalog
        .add_sender(id, secret.as_bytes(), time::now_us())
        .await?;
    catalog.close().await;
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    say!("# For the sending panel's config; the secret is shown only this once.");
    say!("[[dispatch_targets]]");
    say!("name = {}", quote("archive"));
    say!("address = {}", quote(address.unwrap_or("THIS-HOST:7710")));
    say!("sender_id = {}", quote(id));
    say!("secret = {}", quote(&secret.to_hex()));
    match fingerprint {
        Some(f) => say!("fingerprint = {}", quote(&f.to_string())),
        None => say!("plain_tcp = true"),
    }
    Ok(())
}

pub async fn revoke_sender(at: &Location, id: &str) -> anyhow::Result<()> {
    let catalog = open_catalog(at).await?;
    let done = catalog.revoke_sender(id, time::now_us()).await?;
    catalog.close().await;
    if !done {
        return Err(anyhow::anyhow!("sender {id} has no valid secret to revoke"));
    }
    say!("revoked sender {id}");
    Ok(())
}
