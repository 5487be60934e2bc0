//! The `panel` command line: every command and flag, with its help text.

use std::path::PathBuf;

use cctv_engine::catalog::Location;
use cctv_engine::config::PanelConfig;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "panel",
    version,
    about = "CCTV control panel: ingest, recording and catalog"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the engine without a window: ingest, recording, catalog.
    Serve(EngineArgs),
    /// List cameras with their state (live, stalled, offline).
    Cameras {
        #[command(flatten)]
        data: DataArgs,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Who may connect: issue a camera's secret, or revoke it.
    #[command(subcommand)]
    Camera(CameraCommand),
    /// Connections the panel refused (wrong secret, unknown camera, not TLS,
    /// replays, rate limit), newest first.
    Refused {
        #[command(flatten)]
        engine: EngineArgs,
        /// At most this many rows.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// List recordings, newest first.
    Recordings {
        #[command(flatten)]
        data: DataArgs,
        /// Only this camera.
        #[arg(long)]
        camera: Option<String>,
        /// Only recordings that end after this time (RFC 3339 or local "YYYY-MM-DD HH:MM[:SS]").
        #[arg(long)]
        since: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// List events, newest first: motion and tamper (covered, blinded,
    /// defocused, moved) with their start and end, and state changes
    /// (offline, live, ...).
    Events {
        #[command(flatten)]
        data: DataArgs,
        /// Only this camera.
        #[arg(long)]
        camera: Option<String>,
        /// Only this kind: motion, covered, blinded, defocused, moved,
        /// offline, live, stalled, rejected, recording_started, ...
        #[arg(long)]
        kind: Option<String>,
        /// Only events that started at or after this time (RFC 3339 or local "YYYY-MM-DD HH:MM[:SS]").
        #[arg(long)]
        since: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// One JSON object per line: camera_id, kind, start_us, end_us, ...
        #[arg(long)]
        json: bool,
    },
    /// Pack a camera's finished recordings in a time range into a zip with a
    /// manifest of SHA-256 hashes, under <data>/exports/; prints its path.
    Export {
        #[command(flatten)]
        engine: EngineArgs,
        /// A camera; repeat for more (every camera when left out).
        #[arg(long)]
        camera: Vec<String>,
        /// Start of the range (RFC 3339 or local "YYYY-MM-DD HH:MM[:SS]"):
        /// with --from or --to, one clip per camera holds exactly the
        /// frames captured in the range.
        #[arg(long)]
        from: Option<String>,
        /// End of the range (the frame captured at this time included).
        #[arg(long)]
        to: Option<String>,
        /// Whole recordings that overlap the range instead of a clip.
        #[arg(long)]
        whole: bool,
    },
    /// Re-hash every file of an export against its manifest; exit status 0
    /// only when the evidence is intact.
    Verify {
        /// The export zip.
        zip: PathBuf,
    },
    /// List exports and their dispatches.
    Exports {
        #[command(flatten)]
        data: DataArgs,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Send an export to a dispatch target from the panel config (all
    /// targets when --target is left out); waits for the acknowledgement.
    Dispatch {
        #[command(flatten)]
        engine: EngineArgs,
        /// The export zip (under <data>/exports/).
        export: PathBuf,
        /// A dispatch target's name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Stitch a panorama from a video (frames chosen automatically) or a
    /// folder of photos; prints the image's path, or explains the failure.
    Panorama {
        /// A video of a camera panning.
        #[arg(long, conflicts_with = "images", required_unless_present = "images")]
        video: Option<PathBuf>,
        /// A folder of overlapping photos, stitched in name order.
        #[arg(long)]
        images: Option<PathBuf>,
        /// Where to write the panorama [default: <input>_panorama.jpg here].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Scans mode, for flat subjects (documents, a wall) instead of a turning camera.
        #[arg(long)]
        scans: bool,
        /// Stop and fail after this many seconds.
        #[arg(long, default_value_t = 300, value_name = "SECS")]
        time_limit: u64,
    },
    /// (internal) Runs one stitch job in a memory-capped process.
    #[command(hide = true)]
    StitchWorker {
        #[arg(long)]
        job: PathBuf,
    },
    /// The archive end of dispatch: accept exports, verify, store in DIR and
    /// import them into this side's catalog.
    Receive(ReceiveArgs),
    /// Who may send exports to this machine's `panel receive`.
    #[command(subcommand)]
    Sender(SenderCommand),
}

#[derive(Debug, Subcommand)]
pub enum CameraCommand {
    /// Make a camera's secret (creating the camera) and print the agent's
    /// settings: camera id, secret, and the panel's certificate fingerprint.
    Add {
        #[command(flatten)]
        engine: EngineArgs,
        /// The camera id the agent will use.
        #[arg(long)]
        id: String,
        /// What people call the camera.
        #[arg(long, default_value = "")]
        name: String,
        /// Replace a secret the camera already has (the old one stops working).
        #[arg(long)]
        replace: bool,
        /// Also print `panel = ADDR` for the agent, HOST:PORT as the agent reaches the panel.
        #[arg(long)]
        panel: Option<String>,
        /// Show a one-time pairing code instead of the secret: on the
        /// camera host, `camera-agent pair HOST:PORT CODE` fetches it.
        #[arg(long)]
        pair: bool,
        /// How long the pairing code works, in seconds.
        #[arg(long, default_value_t = 600, requires = "pair")]
        pair_valid_secs: u64,
        /// The secret the camera already has with another panel (64 hex
        /// digits), to make this one a standby its agent can move to.
        #[arg(
            long,
            conflicts_with = "pair",
            env = "CCTV_CAMERA_SECRET",
            hide_env_values = true
        )]
        secret: Option<String>,
    },
    /// Revoke a camera's secret; a running panel cuts the agent off at once.
    Revoke {
        #[command(flatten)]
        engine: EngineArgs,
        /// The camera id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SenderCommand {
    /// Make a sending panel's secret and print its [[dispatch_targets]] entry.
    Add {
        #[command(flatten)]
        data: DataArgs,
        /// The sender's id (letters, digits, _ . -).
        #[arg(long)]
        id: String,
        /// This receiver's address as the sender reaches it, HOST:PORT.
        #[arg(long)]
        address: Option<String>,
        /// The receiver runs with --plain-tcp.
        #[arg(long)]
        plain_tcp: bool,
    },
    /// Revoke a sender's secret.
    Revoke {
        #[command(flatten)]
        data: DataArgs,
        id: String,
    },
}

#[derive(Debug, Args, Default, Clone)]
pub struct EngineArgs {
    /// Address agents connect to [default: 0.0.0.0:7700].
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Directory for the database and other state [default: data].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Directory for recording files [default: recordings].
    #[arg(long)]
    pub recordings: Option<PathBuf>,
    /// The catalog on a PostgreSQL server (postgres://USER@HOST:PORT/DB),
    /// shared by several recording servers [default: SQLite, <data>/panel.db].
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// TOML file with any setting (see README); flags win over it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// On a clean stop, write the engine's counters (capture-to-disk latency) as JSON here.
    #[arg(long, hide = true)]
    pub stats: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// Directory holding panel.db [default: data].
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// The catalog on a PostgreSQL server (postgres://USER@HOST:PORT/DB),
    /// shared by several recording servers, instead of <data>/panel.db.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

impl DataArgs {
    pub fn location(&self) -> Location {
        match &self.database {
            Some(url) => Location::parse(url),
            None => Location::Sqlite(self.data.join("panel.db")),
        }
    }
}

impl EngineArgs {
    pub fn config(&self) -> anyhow::Result<PanelConfig> {
        let mut cfg = match &self.config {
            Some(p) => PanelConfig::load(p)?,
            None => PanelConfig::default(),
        };
        if let Some(l) = self.listen {
            cfg.listen = l;
            cfg.listen_from_flag = true;
        }
        if let Some(d) = &self.data {
            cfg.data_dir = d.clone();
        }
        if let Some(r) = &self.recordings {
            cfg.recordings_dir = r.clone();
        }
        if let Some(url) = &self.database {
            cfg.database = Some(url.clone());
        }
        Ok(cfg)
    }
}

/// `panel receive`'s settings.
#[derive(Debug, Args)]
pub struct ReceiveArgs {
    /// Address senders connect to.
    #[arg(long, default_value = "0.0.0.0:7710")]
    pub listen: std::net::SocketAddr,
    /// Where received exports are kept.
    #[arg(long)]
    pub dir: PathBuf,
    /// Catalog to import into [default: data].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Recordings directory to import into [default: recordings].
    #[arg(long)]
    pub recordings: Option<PathBuf>,
    /// Keep the zips only; do not import.
    #[arg(long)]
    pub no_import: bool,
    /// No TLS (trusted LAN only): senders must set plain_tcp too.
    #[arg(long)]
    pub plain_tcp: bool,
    /// Connections at once; one over it is closed unread.
    #[arg(long, default_value_t = cctv_engine::evidence::receive::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
}
