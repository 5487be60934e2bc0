//! The panel's settings: a TOML file with a default for every field, under
//! the command-line flags. Checked here so the engine gets valid values.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::catalog::{Location, RecordMode};

pub const DEFAULT_LISTEN: &str = "0.0.0.0:7700";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PanelConfig {
    /// Where agents connect.
    pub listen: SocketAddr,
    /// The database and other state.
    pub data_dir: PathBuf,
    /// Recording files.
    pub recordings_dir: PathBuf,
    /// The catalog on a PostgreSQL server shared by several recording
    /// servers (`postgres://USER@HOST:PORT/DB`); without it, SQLite at
    /// `<data_dir>/panel.db`.
    pub database: Option<String>,
    /// How this panel names itself (in logs and, later, evidence manifests).
    pub panel_name: String,
    /// This panel's id as a recording server on a shared catalog
    /// [default: `panel_name`]. Each panel on one catalog needs its own.
    pub server_id: String,
    /// Where agents and other panels reach this one, HOST:PORT [default:
    /// the listen address; this host's name when it listens on all].
    pub server_address: Option<String>,
    /// How often agents must send something; a camera is offline after two
    /// intervals of silence.
    pub heartbeat_ms: u32,
    /// A connected camera with no frame for this long is `stalled`.
    pub stall_after_ms: u64,
    /// A frame whose capture time is further than this from the panel's
    /// clock is timed on arrival instead (and counted), so one bad clock
    /// reading cannot date a recording years away.
    pub max_clock_skew_secs: u64,
    /// Time a new connection has to say `Hello`.
    pub handshake_timeout_ms: u64,
    /// Most agent connections at once (including ones still handshaking).
    pub max_connections: usize,
    /// Largest JPEG frame accepted, in bytes.
    pub max_frame_bytes: u32,
    /// Largest picture accepted, in pixels (width x height from the JPEG
    /// header, checked before anything is decoded).
    pub max_pixels: u64,
    /// Connection attempts one address may make at once before it is held
    /// to `connects_per_minute_per_ip`.
    pub connect_burst_per_ip: u32,
    /// Sustained connection attempts one address may make per minute.
    pub connects_per_minute_per_ip: u32,
    /// Agents connect over TLS (the default). `true` allows plain TCP
    /// instead, for a trusted LAN only: video and handshakes are then in
    /// the clear.
    pub plain_tcp: bool,
    /// Length of one recording file, in seconds.
    pub segment_secs: u64,
    /// Every this many KiB a recording file grows, the recorder starts the
    /// disk writing it and lets go of the pages already written, so the
    /// kernel never has a pile of dirty pages to throttle writers on
    /// (0: writeback is left to the kernel). The largest step: with many
    /// cameras recording each file's step is smaller, down to 1 MiB, so
    /// that together they hold at most 256 MiB (or a thirty-second of the
    /// host's memory) not yet handed to the disk.
    pub writeback_step_kb: u64,
    /// Agents send a small copy of each live frame, which a window's wall
    /// decodes instead of the frame: set by `panel` when it opens its
    /// window, never read from the file (a headless server needs none).
    #[serde(skip)]
    pub previews: bool,
    /// Recording mode of a camera seen for the first time: "continuous" or "off".
    pub default_record_mode: String,
    /// Global retention: keep at most this many bytes of recordings (0: no limit).
    pub retain_bytes: u64,
    /// Global retention: keep recordings at most this many days (0: no limit).
    pub retain_days: u64,
    /// How often retention runs, in seconds.
    pub retention_interval_secs: u64,
    /// Keep cameras' events and refused connections this many days (0: no
    /// limit); older ones are pruned with retention.
    pub events_retain_days: u64,
    /// Stop recording when the recordings disk has less free space than
    /// this. Below it on the data disk (the catalog's), when that is
    /// another disk, the panel warns and goes on recording; catalog writes
    /// wait for space.
    pub min_free_bytes: u64,
    /// Where exports are dispatched: `[[dispatch_targets]]` with `name` and
    /// either `dir` (a directory, e.g. a NAS mount) or `address` (a `panel
    /// receive`, HOST:PORT).
    pub dispatch_targets: Vec<crate::evidence::dispatch::TargetConfig>,
    /// Upload limit for dispatch, bytes per second (0: no limit).
    pub dispatch_rate_limit: u64,
    /// Export and dispatch every completed segment of every camera, from start.
    pub auto_dispatch: bool,
    /// The program that runs stitch jobs (`<it> stitch-worker`) [default: this panel binary].
    pub stitch_worker: Option<PathBuf>,
    /// A panorama that takes longer than this (seconds) is stopped and
    /// fails with a message.
    pub panorama_time_limit_secs: u64,
    /// Notifications through an MQTT broker (`[mqtt]`, see `crate::mqtt`);
    /// none without it.
    pub mqtt: Option<crate::mqtt::MqttConfig>,
    /// Set when `--listen` was given: it then wins over the address saved
    /// in the panel's settings.
    #[serde(skip)]
    pub listen_from_flag: bool,
}

impl Default for PanelConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 7700))),
            data_dir: PathBuf::from("data"),
            recordings_dir: PathBuf::from("recordings"),
            database: None,
            panel_name: hostname(),
            server_id: String::new(),
            server_address: None,
            heartbeat_ms: 1000,
            stall_after_ms: 3000,
            handshake_timeout_ms: 5000,
            max_connections: 1024,
            max_clock_skew_secs: 300,
            max_frame_bytes: cctv_protocol::DEFAULT_MAX_FRAME_BYTES,
            max_pixels: 40_000_000,
            connect_burst_per_ip: 32,
            connects_per_minute_per_ip: 60,
            plain_tcp: false,
            segment_secs: 600,
            writeback_step_kb: 8192,
            previews: false,
            default_record_mode: "continuous".into(),
            retain_bytes: 0,
            retain_days: 0,
            retention_interval_secs: 60,
            events_retain_days: 365,
            min_free_bytes: 1 << 30,
            listen_from_flag: false,
            dispatch_targets: Vec::new(),
            dispatch_rate_limit: 0,
            auto_dispatch: false,
            stitch_worker: None,
            panorama_time_limit_secs: 300,
            mqtt: None,
        }
    }
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "panel".into())
}

/// A panel config that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{setting} must be at least {min}")]
    TooSmall { setting: &'static str, min: u64 },
    #[error("server_id {0:?}: {1} (letters, digits, '_', '.', '-')")]
    ServerId(String, String),
    #[error("default_record_mode {0:?} is not \"continuous\", \"motion\" or \"off\"")]
    RecordMode(String),
    #[error(transparent)]
    Target(#[from] crate::evidence::dispatch::TargetError),
    #[error(transparent)]
    Mqtt(#[from] crate::mqtt::MqttConfigError),
}

impl PanelConfig {
    /// Reads a TOML file; missing fields keep their defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let cfg: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        cfg.check()?;
        Ok(cfg)
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        let at_least = |setting, value: u64, min| match value >= min {
            true => Ok(()),
            false => Err(ConfigError::TooSmall { setting, min }),
        };
        at_least("heartbeat_ms", self.heartbeat_ms.into(), 100)?;
        at_least("max_connections", self.max_connections as u64, 1)?;
        at_least("segment_secs", self.segment_secs, 1)?;
        at_least("max_clock_skew_secs", self.max_clock_skew_secs, 1)?;
        at_least("max_frame_bytes", self.max_frame_bytes as u64, 1024)?;
        at_least("max_pixels", self.max_pixels, 16 * 16)?;
        at_least("connect_burst_per_ip", self.connect_burst_per_ip.into(), 1)?;
        at_least(
            "connects_per_minute_per_ip",
            self.connects_per_minute_per_ip.into(),
            1,
        )?;
        self.record_mode()?;
        if !self.server_id.is_empty() {
            cctv_protocol::validate_camera_id(&self.server_id)
                .map_err(|e| ConfigError::ServerId(self.server_id.clone(), e.to_string()))?;
        }
        for t in &self.dispatch_targets {
            t.check()?;
        }
        if let Some(m) = &self.mqtt {
            m.check()?;
        }
        Ok(())
    }

    pub fn record_mode(&self) -> Result<RecordMode, ConfigError> {
        RecordMode::parse(&self.default_record_mode)
            .ok_or_else(|| ConfigError::RecordMode(self.default_record_mode.clone()))
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("panel.db")
    }

    /// Where the catalog is: `database` when set, else SQLite under `data_dir`.
    pub fn catalog_location(&self) -> Location {
        match &self.database {
            Some(url) => Location::parse(url),
            None => Location::Sqlite(self.db_path()),
        }
    }

    /// This panel's server id: `server_id`, else `panel_name`.
    pub fn server_id(&self) -> String {
        if !self.server_id.is_empty() {
            return self.server_id.clone();
        }
        let id: String = self
            .panel_name
            .chars()
            .map(|c| match c.is_ascii_alphanumeric() || "_.-".contains(c) {
                true => c,
                false => '-',
            })
            .take(64)
            .collect();
        match id.is_empty() {
            true => "panel".into(),
            false => id,
        }
    }

    /// Where agents and other panels reach this one: `server_address`,
    /// else the listen address, with this host's name when it listens on
    /// every address.
    pub fn server_address(&self) -> String {
        self.server_address_at(self.listen)
    }

    /// [`Self::server_address`] for a panel listening at `listen` (the
    /// port it was given when the config said 0).
    pub fn server_address_at(&self, listen: SocketAddr) -> String {
        if let Some(a) = &self.server_address {
            return a.clone();
        }
        match listen.ip().is_unspecified() {
            true => format!("{}:{}", hostname(), listen.port()),
            false => listen.to_string(),
        }
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(u64::from(self.heartbeat_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_in_deploy_is_valid_and_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/panel.toml");
        let cfg = PanelConfig::load(&path).unwrap();
        let d = PanelConfig::default();
        assert_eq!(cfg.listen, d.listen);
        assert_eq!(cfg.heartbeat_ms, d.heartbeat_ms);
        assert_eq!(cfg.segment_secs, d.segment_secs);
        assert_eq!(cfg.writeback_step_kb, d.writeback_step_kb);
        assert_eq!(cfg.min_free_bytes, d.min_free_bytes);
        assert_eq!(cfg.max_frame_bytes, d.max_frame_bytes);
        assert_eq!(cfg.max_pixels, d.max_pixels);
        assert_eq!(cfg.connect_burst_per_ip, d.connect_burst_per_ip);
        assert_eq!(cfg.connects_per_minute_per_ip, d.connects_per_minute_per_ip);
        assert_eq!(cfg.plain_tcp, d.plain_tcp);
        assert_eq!(cfg.max_clock_skew_secs, d.max_clock_skew_secs);
        assert_eq!(cfg.max_connections, d.max_connections);
        // The package's copy differs only in where state goes.
        let packaged =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/debian/cctv-panel/panel.toml");
        let mut p = PanelConfig::load(&packaged).unwrap();
        assert_eq!(p.data_dir, Path::new("/var/lib/cctv-panel/data"));
        assert_eq!(
            p.recordings_dir,
            Path::new("/var/lib/cctv-panel/recordings")
        );
        (p.data_dir, p.recordings_dir) = (cfg.data_dir.clone(), cfg.recordings_dir.clone());
        assert_eq!(format!("{p:?}"), format!("{cfg:?}"));
    }

    #[test]
    fn an_mqtt_section_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.toml");
        std::fs::write(
            &p,
            "[mqtt]\nbroker = \"10.0.0.2:1883\"\nusername = \"cam\"\npassword = \"pw\"\n",
        )
        .unwrap();
        let m = PanelConfig::load(&p).unwrap().mqtt.unwrap();
        assert_eq!(m.broker, "10.0.0.2:1883");
        assert_eq!(m.topic_prefix, "cctv");
        assert!(!m.tls);
        for (bad, says) in [
            ("broker = \"no-port\"", "HOST:PORT"),
            ("broker = \"h:1\"\ntopic_prefix = \"a/#\"", "topic_prefix"),
            ("broker = \"h:1\"\npassword = \"x\"", "without a username"),
            (
                "broker = \"h:1\"\nca_file = \"/nonexistent.pem\"",
                "ca_file",
            ),
            ("brokr = \"h:1\"", "brokr"),
        ] {
            std::fs::write(&p, format!("[mqtt]\n{bad}\n")).unwrap();
            let err = PanelConfig::load(&p).unwrap_err();
            assert!(format!("{err:#}").contains(says), "{bad}: {err:#}");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.toml");
        std::fs::write(&p, "default_record_mode = \"sometimes\"\n").unwrap();
        assert!(
            PanelConfig::load(&p)
                .unwrap_err()
                .to_string()
                .contains("sometimes")
        );
        // A misspelt setting is named, not ignored.
        std::fs::write(&p, "heartbeat = 5\n").unwrap();
        let e = PanelConfig::load(&p).unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
        assert!(e.to_string().contains("heartbeat"), "{e}");
        std::fs::write(&p, "heartbeat_ms = 5\n").unwrap();
        assert!(matches!(
            PanelConfig::load(&p).unwrap_err(),
            ConfigError::TooSmall {
                setting: "heartbeat_ms",
                ..
            }
        ));
    }
}
