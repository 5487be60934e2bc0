//! `panel`: the control room. `panel` opens the window with the engine
//! inside; `panel serve` runs the engine headless;
//! `panel cameras` and `panel recordings` print what the catalog holds.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use panel::catalog::{CameraState, Catalog, RecordingFilter};
use panel::config::PanelConfig;
use panel::engine::Engine;
use panel::time;
use tracing::info;

#[derive(Debug, Parser)]
#[command(
    name = "panel",
    version,
    about = "CCTV control panel: ingest, recording and catalog"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
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
}

#[derive(Debug, Args, Default, Clone)]
struct EngineArgs {
    /// Address agents connect to [default: 0.0.0.0:7700].
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Directory for the database and other state [default: data].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Directory for recording files [default: recordings].
    #[arg(long)]
    recordings: Option<PathBuf>,
    /// TOML file with any setting (see README); flags win over it.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
struct DataArgs {
    /// Directory holding panel.db [default: data].
    #[arg(long, default_value = "data")]
    data: PathBuf,
}

impl EngineArgs {
    fn config(&self) -> Result<PanelConfig, String> {
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
        Ok(cfg)
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if cli.command.is_none() {
        // The window owns its own event loop; the engine gets its own runtime.
        return match cli.engine.config().and_then(panel::gui::run) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("panel: {e}");
                ExitCode::from(2)
            }
        };
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("panel: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Some(Command::Serve(args)) => serve(args).await,
            Some(Command::Cameras { data, json }) => cameras(&data, json).await,
            Some(Command::Recordings {
                data,
                camera,
                since,
                limit,
                json,
            }) => recordings(&data, camera, since, limit, json).await,
            None => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("panel: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: EngineArgs) -> Result<(), String> {
    let cfg = args.config()?;
    let engine = Engine::start(cfg).await.map_err(|e| e.to_string())?;
    info!(listen = %engine.local_addr(), "serving; Ctrl-C to stop");
    wait_for_stop().await;
    engine.shutdown().await;
    Ok(())
}

async fn wait_for_stop() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => info!("Ctrl-C: stopping"),
                _ = term.recv() => info!("SIGTERM: stopping"),
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn open_catalog(data: &DataArgs) -> Result<Catalog, String> {
    let path = data.data.join("panel.db");
    if !path.exists() {
        return Err(format!(
            "no catalog at {} (has `panel serve --data {}` run yet?)",
            path.display(),
            data.data.display()
        ));
    }
    Catalog::open(&path).await.map_err(|e| e.to_string())
}

/// A panel that has not said it is alive for this long is not running.
const BEAT_STALE_US: i64 = 15_000_000;

async fn cameras(data: &DataArgs, json: bool) -> Result<(), String> {
    let catalog = open_catalog(data).await?;
    let running = catalog
        .last_beat()
        .await
        .map_err(|e| e.to_string())?
        .is_some_and(|b| time::now_us() - b < BEAT_STALE_US);
    for c in catalog.cameras().await.map_err(|e| e.to_string())? {
        let (state, detail) = if running {
            (c.state(), c.state_detail.clone())
        } else {
            (CameraState::Offline, "the panel is not running".to_string())
        };
        if json {
            let v = serde_json::json!({
                "id": c.id, "name": c.name, "state": state.as_str(), "since_us": c.state_since_us,
                "detail": detail, "record_mode": c.record_mode, "address": c.last_address,
                "width": c.width, "height": c.height, "fps": c.fps_milli as f64 / 1000.0,
            });
            println!("{v}");
        } else {
            println!(
                "{:<20} {:<8} since {}  {:<24} rec:{:<10} {}x{}  {}",
                c.id,
                state.as_str(),
                time::local(c.state_since_us),
                c.name,
                c.record_mode,
                c.width,
                c.height,
                detail
            );
        }
    }
    catalog.close().await;
    Ok(())
}

async fn recordings(
    data: &DataArgs,
    camera: Option<String>,
    since: Option<String>,
    limit: i64,
    json: bool,
) -> Result<(), String> {
    let catalog = open_catalog(data).await?;
    let from_us = since.as_deref().map(time::parse).transpose()?;
    let rows = catalog
        .recordings(&RecordingFilter {
            camera_id: camera,
            from_us,
            limit: Some(limit),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    for r in rows {
        if json {
            println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
        } else {
            println!(
                "{:<20} {}  {:>7.1} s  {:>6} frames  {:>8.1} MB  {:<11} {}",
                r.camera_id,
                time::local(r.start_us),
                (r.end_us - r.start_us) as f64 / 1e6,
                r.frames,
                r.bytes as f64 / 1e6,
                r.status,
                r.path
            );
        }
    }
    catalog.close().await;
    Ok(())
}
