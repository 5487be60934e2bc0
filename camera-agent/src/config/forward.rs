//! The agent's store-and-forward settings: the panels it streams to, in
//! order, and its spool of frames not yet acknowledged.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::{Cli, FileConfig, Transport, transport};
use crate::spool;

/// The spool's size limit unless set: 4 GiB.
pub const DEFAULT_SPOOL_BYTES: u64 = 4 << 30;
/// How long a panel may be unreachable before the agent tries the next.
pub const DEFAULT_FAILOVER_SECS: f64 = 30.0;

/// One value or several, in a config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMore {
    One(String),
    More(Vec<String>),
}

impl OneOrMore {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMore::One(s) => vec![s],
            OneOrMore::More(v) => v,
        }
    }
}

/// A size in bytes, as a number or with a unit: "4G", "512M", "64K".
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Size {
    Bytes(u64),
    Text(String),
}

impl Size {
    fn bytes(&self) -> anyhow::Result<u64> {
        match self {
            Size::Bytes(n) => Ok(*n),
            Size::Text(s) => parse_size(s),
        }
    }
}

/// "4G" (GiB), "512M", "64K", or a plain number of bytes.
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], Some(c.to_ascii_uppercase())),
        _ => (t, None),
    };
    let n: f64 = digits
        .trim()
        .parse()
        .with_context(|| format!("size {s:?} is not a number of bytes (e.g. 4G, 512M)"))?;
    let unit = match unit {
        None => 1.0,
        Some('K') => 1024.0,
        Some('M') => 1024.0 * 1024.0,
        Some('G') => 1024.0 * 1024.0 * 1024.0,
        Some('T') => 1024.0_f64.powi(4),
        Some(u) => bail!("size {s:?}: unknown unit {u} (K, M, G or T)"),
    };
    if !(n >= 0.0 && n.is_finite()) {
        bail!("size {s:?} is negative");
    }
    Ok((n * unit) as u64)
}

/// A panel to stream to, and how to trust it.
#[derive(Debug, Clone)]
pub struct PanelAddr {
    pub address: String,
    pub transport: Transport,
}

/// Where frames wait for the panel, and how fast the backlog goes out.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// This camera's spool directory; `None`: no spool.
    pub dir: Option<PathBuf>,
    pub limits: spool::Limits,
    /// Backfill at most this many bytes a second; `None`: at most about
    /// half of what the link takes.
    pub backfill_rate: Option<u64>,
}

/// The panels in order, from flags over the file: each with its
/// fingerprint (the same position in `panel_fingerprint`), or plain TCP.
pub(super) fn panels(cli: &Cli, file: &FileConfig) -> anyhow::Result<Vec<PanelAddr>> {
    let addresses = if cli.panel.is_empty() {
        file.panel
            .clone()
            .map(OneOrMore::into_vec)
            .unwrap_or_default()
    } else {
        cli.panel.clone()
    };
    if addresses.is_empty() {
        bail!("no panel address: pass --panel HOST:PORT or set panel in the config file");
    }
    for a in &addresses {
        if !a.contains(':') {
            bail!("panel address {a:?} has no port (HOST:PORT, e.g. 127.0.0.1:7700)");
        }
    }
    let prints = if cli.panel_fingerprint.is_empty() {
        file.panel_fingerprint
            .clone()
            .map(OneOrMore::into_vec)
            .unwrap_or_default()
    } else {
        cli.panel_fingerprint.clone()
    };
    let plain = cli.plain_tcp || file.plain_tcp.unwrap_or(false);
    if addresses.len() > 1 && !plain && prints.len() != addresses.len() {
        bail!(
            "{} panels and {} fingerprints: with several panels, give each its fingerprint \
             (panel_fingerprint = [\"sha256:...\", ...], in the same order)",
            addresses.len(),
            prints.len()
        );
    }
    if prints.len() > addresses.len() {
        bail!("more fingerprints than panels");
    }
    let mut prints = prints.into_iter();
    addresses
        .into_iter()
        .map(|address| {
            Ok(PanelAddr {
                transport: transport(plain, prints.next())?,
                address,
            })
        })
        .collect()
}

pub(super) fn failover(cli: &Cli, file: &FileConfig) -> anyhow::Result<Duration> {
    let secs = cli
        .failover
        .or(file.failover)
        .unwrap_or(DEFAULT_FAILOVER_SECS);
    if !(1.0..=86_400.0).contains(&secs) {
        bail!("failover {secs} s is outside 1..86400");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The spool: `spool_dir` (or the service's state directory, or the
/// user's), one directory per camera inside it; "none" turns it off.
pub(super) fn spool_config(
    cli: &Cli,
    file: &FileConfig,
    camera_id: &str,
) -> anyhow::Result<SpoolConfig> {
    let base = if cli.no_spool {
        None
    } else {
        match cli.spool_dir.clone().or(file.spool_dir.clone()) {
            Some(d) if d.as_os_str() == "none" => None,
            Some(d) => Some(d),
            None => default_spool_base(),
        }
    };
    let max_bytes = match (&cli.spool_max_bytes, &file.spool_max_bytes) {
        (Some(s), _) => parse_size(s)?,
        (None, Some(s)) => s.bytes()?,
        (None, None) => DEFAULT_SPOOL_BYTES,
    };
    if max_bytes < spool::MIN_BYTES {
        bail!(
            "spool_max_bytes {max_bytes} is under {} MiB",
            spool::MIN_BYTES >> 20
        );
    }
    let max_age = match cli.spool_max_hours.or(file.spool_max_hours) {
        Some(h) if h > 0.0 && h <= 24.0 * 365.0 => Some(Duration::from_secs_f64(h * 3600.0)),
        Some(h) => bail!("spool_max_hours {h} is outside 0..8760"),
        None => None,
    };
    let backfill_rate = match (&cli.backfill_rate, &file.backfill_rate) {
        (Some(s), _) => Some(parse_size(s)?),
        (None, Some(s)) => Some(s.bytes()?),
        (None, None) => None,
    }
    .filter(|r| *r > 0);
    if backfill_rate.is_some_and(|r| r < 16 * 1024) {
        bail!("backfill_rate under 16K a second would never catch up");
    }
    Ok(SpoolConfig {
        dir: base.map(|b| b.join(camera_id)),
        limits: spool::Limits { max_bytes, max_age },
        backfill_rate,
    })
}

/// `$STATE_DIRECTORY/spool` (systemd's StateDirectory), else
/// `$XDG_STATE_HOME/camera-agent/spool`, else `~/.local/state/camera-agent/spool`.
fn default_spool_base() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = env("STATE_DIRECTORY") {
        // systemd may list several, separated by ':'.
        let first = d.to_string_lossy().split(':').next().map(PathBuf::from)?;
        return Some(first.join("spool"));
    }
    env("XDG_STATE_HOME")
        .or_else(|| env("HOME").map(|h| h.join(".local/state")))
        .map(|d| d.join("camera-agent/spool"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_or_without_units() {
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("64KiB").unwrap(), 64 << 10);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("4X").is_err());
        assert!(parse_size("lots").is_err());
    }
}
