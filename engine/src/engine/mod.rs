//! The engine: starts the catalog (repairing what a crash left), the ingest
//! listener, a recorder per camera and the housekeeping (disk guard,
//! retention, liveness beat), and is the one handle the CLI and the GUI use:
//! commands in, state and events out. It runs without any window.

mod access;
mod evidence;
mod housekeeping;
mod panorama;
mod queries;
mod remote;
mod start;
mod stop;

use housekeeping::{housekeeping, run_retention};
use start::{bind, fit_connections, open_catalog};

pub use access::{agent_settings, new_pairing_code, new_secret};
pub use panorama::{
    PanoramaError, PanoramaFrom, PanoramaJob, PanoramaMade, PanoramaMaker, PanoramaNotMade,
    StitchMode,
};
pub use queries::{FrameRef, History, HistoryQuery, RecordingIndex};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use cctv_protocol::{Configure, Detect, Message};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::catalog::{Catalog, CatalogError, RecordMode};
use crate::writes::Writes;

use crate::config::PanelConfig;
use crate::evidence::dispatch::Dispatcher;
use crate::ingest::rate::RateLimit;
use crate::ingest::{IngestCtx, Limits};
use crate::live::{CameraSlot, CameraStatus, EngineEvent, LinkCommand, LiveFrame, Registry};
use crate::recorder::camera::{RecorderCtx, RecorderMsg, Recorders};
use crate::recorder::repair::Repaired;
use crate::recorder::retention::RetentionReport;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("the agent would not accept this: {0}")]
    Configure(&'static str),
    #[error("{0}")]
    Name(&'static str),
    #[error("pairing needs TLS (the secret crosses the network); this panel is set to plain_tcp")]
    PairingNeedsTls,
    #[error("the panel's TLS identity: {0}")]
    Identity(#[from] crate::tls::IdentityError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("no camera with id {0:?}")]
    UnknownCamera(String),
    #[error("camera {0} is not connected")]
    NotLive(String),
    #[error("camera {0}'s agent does not analyse its frames (it is older, or analysis is off)")]
    NotAnalysing(String),
    #[error("event {0} has no picture")]
    NoThumbnail(i64),
    #[error(transparent)]
    Export(#[from] crate::evidence::export::ExportError),
    #[error(transparent)]
    Panorama(#[from] PanoramaError),
    #[error("cannot read {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read the recording {path}: {source}")]
    Scan {
        path: String,
        source: cctv_mkv::scan::ScanError,
    },
    #[error("{0} has no frames to play")]
    NoFrames(String),
    /// A recording another server holds, which cannot be fetched now.
    #[error("{0}")]
    Remote(String),
    #[error(transparent)]
    Verify(#[from] crate::evidence::verify::VerifyError),
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("no dispatch target named {name:?}; the config has: {configured}")]
    NoSuchTarget { name: String, configured: String },
    #[error("no dispatch targets are configured ([[dispatch_targets]] in the panel config)")]
    NoTargets,
}

/// What the engine's own parts share (commands, housekeeping, access
/// control, evidence, panoramas). Ingest and the recorders get narrower
/// contexts of their own ([`IngestCtx`], the recorders' `RecorderCtx`).
struct Shared {
    config: PanelConfig,
    catalog: Catalog,
    registry: Arc<Registry>,
    recorders: Arc<Recorders>,
    ingest: Arc<IngestCtx>,
    events: broadcast::Sender<EngineEvent>,
    shutdown: CancellationToken,
    /// Every task the engine starts, awaited at shutdown.
    tasks: TaskTracker,
    disk_full: Arc<AtomicBool>,
    /// Catalog writes the frame path never waits for.
    writes: Writes,
    dispatcher: Arc<Dispatcher>,
    /// Export and dispatch every completed segment of every camera.
    auto_dispatch: AtomicBool,
    /// What makes panoramas, when the binary provides it.
    panoramas: Option<Arc<dyn PanoramaMaker>>,
    /// Panoramas being made: id -> (cancel flag, current stage).
    panorama_jobs: Mutex<HashMap<i64, (Arc<AtomicBool>, String)>>,
    /// The panel certificate's fingerprint, for agents to pin.
    fingerprint: Option<cctv_protocol::tls::Fingerprint>,
}

/// The running engine. Dropping it without [`Engine::shutdown`] leaves open
/// segments to the start-up repair.
pub struct Engine {
    shared: Arc<Shared>,
    /// Where agents connect now, and the token that stops that listener.
    listening: Mutex<(SocketAddr, CancellationToken)>,
    repaired: Vec<Repaired>,
}

impl Engine {
    /// Opens the catalog, repairs interrupted segments, starts listening.
    /// Panoramas are not available (see [`Engine::start_with_panoramas`]).
    pub async fn start(config: PanelConfig) -> Result<Self, EngineError> {
        Self::start_inner(config, None).await
    }

    /// [`Engine::start`], with `maker` stitching the panoramas asked for.
    pub async fn start_with_panoramas(
        config: PanelConfig,
        maker: Arc<dyn PanoramaMaker>,
    ) -> Result<Self, EngineError> {
        Self::start_inner(config, Some(maker)).await
    }

    async fn start_inner(
        mut config: PanelConfig,
        panoramas: Option<Arc<dyn PanoramaMaker>>,
    ) -> Result<Self, EngineError> {
        config.check()?;
        let default_mode = config.record_mode()?;
        let (catalog, repaired) = open_catalog(&mut config).await?;
        let cameras = catalog.cameras().await?;
        fit_connections(&mut config, cameras.len());
        let (tls, fingerprint) = access::transport(&config)?;
        let (listener, local_addr) = bind(config.listen).await?;
        if config.listen.port() == 0 {
            // Listening on a port the system chose: say which.
            catalog
                .set_server_address(&config.server_address_at(local_addr))
                .await?;
        }
        let (events, _) = broadcast::channel(1024);
        // Detached: the engine waits for it through `Writes::flush`.
        let (writes, _) = Writes::start(catalog.clone(), events.clone());
        let disk_full = Arc::new(AtomicBool::new(false));
        let dispatcher = Arc::new(Dispatcher::new(catalog.clone(), &config, events.clone()));
        let auto = match catalog.setting("auto_dispatch").await? {
            Some(v) => v == "on",
            None => config.auto_dispatch,
        };
        let registry = Arc::new(Registry::default());
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let recorders = Arc::new(Recorders::new(Arc::new(RecorderCtx {
            writes: writes.clone(),
            root: config.recordings_dir.clone(),
            segment_us: config.segment_secs as i64 * 1_000_000,
            writeback_step: config.writeback_step_kb.saturating_mul(1024),
            disk_full: disk_full.clone(),
            events: events.clone(),
            latency: Default::default(),
        })));
        let ingest = Arc::new(IngestCtx {
            limits: Limits::of(&config),
            catalog: catalog.clone(),
            writes: writes.clone(),
            registry: registry.clone(),
            recorders: recorders.clone(),
            events: events.clone(),
            shutdown: shutdown.clone(),
            tasks: tasks.clone(),
            tls,
            fingerprint,
            replays: Default::default(),
            rate: Mutex::new(RateLimit::new(
                config.connect_burst_per_ip,
                config.connects_per_minute_per_ip,
            )),
            permits: Arc::new(tokio::sync::Semaphore::new(config.max_connections)),
            default_mode,
            next_conn: AtomicU64::new(1),
            previews: config.previews,
        });
        let shared = Arc::new(Shared {
            fingerprint,
            dispatcher,
            auto_dispatch: AtomicBool::new(auto),
            panoramas,
            panorama_jobs: Default::default(),
            config,
            catalog: catalog.clone(),
            registry,
            recorders,
            ingest,
            events,
            shutdown,
            tasks,
            disk_full,
            writes,
        });
        for row in &cameras {
            shared.registry.slot(row);
        }
        let listen_token = spawn_background(&shared, listener);
        info!(listen = %local_addr, catalog = %shared.config.catalog_location(), recordings = %shared.config.recordings_dir.display(), "panel engine started");
        Ok(Self {
            shared,
            listening: Mutex::new((local_addr, listen_token)),
            repaired,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        crate::sync::lock(&self.listening).0
    }

    /// Moves the listener to `addr` without a restart: the new address is
    /// bound first (on failure nothing changes), then the old one closes.
    /// Connected agents stay connected. Saved for the next start.
    pub async fn listen_on(&self, addr: SocketAddr) -> Result<SocketAddr, EngineError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| EngineError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| EngineError::Bind { addr, source })?;
        let token = self.shared.shutdown.child_token();
        let old = {
            let mut l = crate::sync::lock(&self.listening);
            std::mem::replace(&mut *l, (local, token.clone()))
        };
        old.1.cancel();
        self.shared.tasks.spawn(crate::ingest::serve(
            self.shared.ingest.clone(),
            listener,
            token,
        ));
        self.shared
            .catalog
            .set_setting("listen", &addr.to_string())
            .await?;
        self.shared
            .catalog
            .set_server_address(&self.shared.config.server_address_at(local))
            .await?;
        info!(listen = %local, "now listening here (saved for the next start)");
        Ok(local)
    }

    /// Free bytes on the recordings disk.
    pub fn free_bytes(&self) -> std::io::Result<u64> {
        housekeeping::free_bytes(&self.shared.config.recordings_dir).map(|(free, _)| free)
    }

    /// Saves the camera's newest frame, exactly as received, under
    /// `data/snapshots/`; returns the file's path.
    pub async fn snapshot(&self, id: &str) -> Result<std::path::PathBuf, EngineError> {
        let slot = self.slot(id)?;
        let frame = slot
            .frames
            .borrow()
            .clone()
            .ok_or_else(|| EngineError::NotLive(id.to_string()))?;
        let dir = self.shared.config.data_dir.join("snapshots");
        let (_, stamp) = crate::time::utc_day_and_stamp(frame.capture_us);
        let path = dir.join(format!("{id}_{stamp}_{}.jpg", frame.seq));
        let p = path.clone();
        let jpeg = frame.jpeg.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(p.parent().unwrap_or(std::path::Path::new(".")))?;
            std::fs::write(&p, &jpeg)
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r)
        .map_err(|source| EngineError::Dir {
            path: path.display().to_string(),
            source,
        })?;
        info!(camera = id, path = %path.display(), "snapshot saved");
        Ok(path)
    }

    pub fn config(&self) -> &PanelConfig {
        &self.shared.config
    }

    pub fn catalog(&self) -> &Catalog {
        &self.shared.catalog
    }

    /// Capture-to-disk latency of every frame recorded since start.
    pub fn latency(&self) -> &crate::stats::Latency {
        self.shared.recorders.latency()
    }

    /// Segments the start-up repair fixed.
    pub fn repaired(&self) -> &[Repaired] {
        &self.repaired
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.shared.events.subscribe()
    }

    /// Every known camera's status, by id.
    pub fn cameras(&self) -> Vec<CameraStatus> {
        self.shared
            .registry
            .all()
            .iter()
            .map(|s| s.status())
            .collect()
    }

    pub fn camera(&self, id: &str) -> Option<CameraStatus> {
        self.shared.registry.get(id).map(|s| s.status())
    }

    /// The camera's status channel: changes as they happen.
    pub fn watch_status(&self, id: &str) -> Option<watch::Receiver<CameraStatus>> {
        self.shared.registry.get(id).map(|s| s.status.subscribe())
    }

    /// The camera's newest frame; a slow reader simply sees fewer frames.
    pub fn watch_frames(&self, id: &str) -> Option<watch::Receiver<Option<Arc<LiveFrame>>>> {
        self.shared.registry.get(id).map(|s| s.frames.subscribe())
    }

    /// The camera's sound from now on, packet by packet (Opus, 20 ms); a
    /// listener that falls behind loses the oldest (`Lagged`).
    pub fn listen(
        &self,
        id: &str,
    ) -> Option<tokio::sync::broadcast::Receiver<Arc<cctv_protocol::AudioPacket>>> {
        self.shared.registry.get(id).map(|s| s.sound.listen())
    }

    /// The level of the camera's sound now, in dB below full scale; `None`
    /// when none came in the last half second.
    pub fn sound_level(&self, id: &str) -> Option<u8> {
        self.shared
            .registry
            .get(id)
            .and_then(|s| s.sound.level_db(crate::time::now_us()))
    }

    fn slot(&self, id: &str) -> Result<Arc<CameraSlot>, EngineError> {
        self.shared
            .registry
            .get(id)
            .ok_or_else(|| EngineError::UnknownCamera(id.to_string()))
    }

    /// Starts or stops recording one camera (its mode becomes continuous or off).
    pub async fn set_recording(&self, id: &str, on: bool) -> Result<(), EngineError> {
        let mode = if on {
            RecordMode::Continuous
        } else {
            RecordMode::Off
        };
        self.set_record_mode(id, mode).await
    }

    /// Sets how one camera records: continuously, only around motion
    /// (pre-roll and post-roll included), or not at all.
    pub async fn set_record_mode(&self, id: &str, mode: RecordMode) -> Result<(), EngineError> {
        let slot = self.slot(id)?;
        self.shared.catalog.set_record_mode(id, mode).await?;
        self.shared.registry.set_record_enabled(&slot, mode);
        if mode == RecordMode::Off {
            let rec = self.shared.recorders.for_camera(&slot);
            let _ = rec
                .send(RecorderMsg::Close {
                    reason: "recording stopped by the operator".into(),
                })
                .await;
        }
        info!(camera = id, mode = mode.as_str(), "recording mode changed");
        let _ = self.shared.events.send(EngineEvent::Camera(id.to_string()));
        Ok(())
    }

    /// Starts or stops recording every known camera.
    pub async fn set_recording_all(&self, on: bool) -> Result<(), EngineError> {
        for slot in self.shared.registry.all() {
            self.set_recording(&slot.id, on).await?;
        }
        Ok(())
    }

    /// Sends encoding changes to a live agent.
    pub async fn configure(&self, id: &str, c: Configure) -> Result<(), EngineError> {
        cctv_protocol::validate_configure(&c).map_err(EngineError::Configure)?;
        let link = self
            .slot(id)?
            .link()
            .ok_or_else(|| EngineError::NotLive(id.to_string()))?;
        link.commands
            .send(LinkCommand::Send(Message::Configure(c)))
            .await
            .map_err(|_| EngineError::NotLive(id.to_string()))
    }

    /// Sends motion analysis changes (sensitivity, minimum area, ignore
    /// zones, pacing) to a live agent that analyses its frames.
    pub async fn configure_detection(&self, id: &str, d: Detect) -> Result<(), EngineError> {
        cctv_protocol::validate_detect(&d).map_err(EngineError::Configure)?;
        let slot = self.slot(id)?;
        if !slot.status().analysed {
            return Err(EngineError::NotAnalysing(id.to_string()));
        }
        let link = slot
            .link()
            .ok_or_else(|| EngineError::NotLive(id.to_string()))?;
        link.commands
            .send(LinkCommand::Send(Message::Detect(d)))
            .await
            .map_err(|_| EngineError::NotLive(id.to_string()))
    }

    /// Cuts a live agent off with a reason.
    pub async fn disconnect(&self, id: &str, reason: &str) -> Result<(), EngineError> {
        let link = self
            .slot(id)?
            .link()
            .ok_or_else(|| EngineError::NotLive(id.to_string()))?;
        let _ = link
            .commands
            .send(LinkCommand::Disconnect(reason.to_string()))
            .await;
        Ok(())
    }

    pub async fn rename(&self, id: &str, name: &str) -> Result<(), EngineError> {
        cctv_protocol::validate_camera_name(name.trim()).map_err(EngineError::Name)?;
        let slot = self.slot(id)?;
        self.shared.catalog.rename_camera(id, name).await?;
        slot.update(|s| s.name = name.trim().to_string());
        let _ = self.shared.events.send(EngineEvent::Camera(id.to_string()));
        Ok(())
    }

    /// Per-camera retention limits (`None` removes a limit).
    pub async fn set_retention(
        &self,
        id: &str,
        max_bytes: Option<i64>,
        max_days: Option<i64>,
    ) -> Result<(), EngineError> {
        self.slot(id)?;
        self.shared
            .catalog
            .set_retention(id, max_bytes, max_days)
            .await?;
        Ok(())
    }

    /// Applies retention now.
    pub async fn run_retention(&self) -> Result<RetentionReport, EngineError> {
        Ok(run_retention(&self.shared).await?)
    }
}

/// Starts the engine's own tasks (agents' connections, housekeeping,
/// revocations, dispatch, auto-dispatch), each tracked; returns the token
/// that stops the listener alone (to move it).
fn spawn_background(shared: &Arc<Shared>, listener: TcpListener) -> CancellationToken {
    let listen_token = shared.shutdown.child_token();
    let tasks = &shared.tasks;
    tasks.spawn(crate::ingest::serve(
        shared.ingest.clone(),
        listener,
        listen_token.clone(),
    ));
    tasks.spawn(housekeeping(shared.clone()));
    tasks.spawn(access::enforce_revocations(shared.clone()));
    tasks.spawn(shared.dispatcher.clone().run(shared.shutdown.child_token()));
    tasks.spawn(evidence::auto_dispatch(shared.clone()));
    let peers = crate::peers::Peers {
        catalog: shared.catalog.clone(),
        registry: shared.registry.clone(),
        events: shared.events.clone(),
        max_frame_bytes: shared.config.max_frame_bytes,
    };
    if shared.catalog.backend() == "postgres" {
        tasks.spawn(crate::peers::run(
            Arc::new(peers),
            shared.shutdown.child_token(),
        ));
    }
    if let Some(mqtt) = &shared.config.mqtt {
        tasks.spawn(crate::mqtt::run(
            mqtt.clone(),
            shared.registry.clone(),
            shared.events.subscribe(),
            shared.shutdown.child_token(),
        ));
    }
    listen_token
}
