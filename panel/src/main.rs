//! `panel`: the control room. `panel` opens the window with the engine
//! inside; `panel serve` runs the engine headless; the other commands read
//! the catalog, handle evidence (export, verify, dispatch) or run the
//! archive end (`panel receive`). This binary wires the crates together:
//! the engine, the window, and the stitcher the engine makes panoramas with.

use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use cctv_engine::Engine;
use cctv_engine::config::PanelConfig;
use clap::Parser;
use tracing::info;

/// `println!` for the commands' output: when the reader has gone away
/// (`panel refused --json | head -1`), the command ends quietly instead of
/// panicking on the closed pipe.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::stdout_line(format_args!($($arg)*))
    };
}

mod cli;

use cli::args::{CameraCommand, Cli, Command, EngineArgs, SenderCommand};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("panel: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        None => window(&runtime, &cli.engine).map(|()| ExitCode::SUCCESS),
        Some(command) => runtime.block_on(run(command)),
    };
    // A blocking task that never returns (a disk that stopped answering)
    // must not keep the process from exiting: the next start repairs.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("panel: {}", in_words(&e));
            ExitCode::from(2)
        }
    }
}

/// The runtime the engine and the window's tasks run on: a worker for
/// every two cores, at least one (`TOKIO_WORKER_THREADS` sets another
/// count).
///
/// Most of what records a frame is the kernel's work done in system calls
/// (reading the socket, copying into the page cache: four fifths of the
/// panel's CPU in `perf`), so the engine's tasks are many and short. With a
/// worker on every core, a worker that wakes with two tasks ready wakes
/// another to take one, and the wake-up costs more than the task. On two
/// cores, at 64 cameras, one worker recorded the same frames with 8% less
/// CPU than two, and as much at hundreds of cameras
/// (`docs/performance.md`). Blocking work (decoding tiles, syncs,
/// exports) runs on threads of its own.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        builder.worker_threads((cores / 2).max(1));
    }
    builder.build()
}

/// An error and its causes on one line, each cause said once (typed errors
/// often already include their source in their own words).
fn in_words(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line = format!("{line}: {cause}");
        }
    }
    line
}

/// Starts the engine and opens the window on it (the window owns the main
/// thread's event loop); stops the engine cleanly when the window closes.
fn window(runtime: &tokio::runtime::Runtime, args: &EngineArgs) -> anyhow::Result<()> {
    if let Some(why) = cctv_window::no_display() {
        anyhow::bail!(why);
    }
    let config = PanelConfig {
        // The wall decodes the agents' small copies for its tiles.
        previews: true,
        ..args.config()?
    };
    let engine = Arc::new(runtime.block_on(start_engine(config))?);
    let shown = cctv_window::run(engine.clone(), runtime.handle());
    runtime.block_on(engine.shutdown());
    Ok(shown?)
}

/// The engine, with this binary's stitcher for panoramas.
async fn start_engine(cfg: PanelConfig) -> anyhow::Result<Engine> {
    let worker = cfg
        .stitch_worker
        .clone()
        .or_else(|| std::env::current_exe().ok())
        .unwrap_or_else(|| PathBuf::from("panel"));
    let stitcher = Arc::new(cctv_panorama::Stitcher { worker });
    Ok(Engine::start_with_panoramas(cfg, stitcher).await?)
}

/// Runs one command; its exit status.
async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve(args).await?,
        Command::Cameras { data, json } => cli::catalog::cameras(&data.location(), json).await?,
        Command::Camera(CameraCommand::Add {
            engine,
            id,
            name,
            replace,
            panel,
            pair,
            pair_valid_secs,
            secret,
        }) => {
            let how = cli::auth::Enrol {
                replace,
                panel: panel.as_deref(),
                pair: pair.then(|| std::time::Duration::from_secs(pair_valid_secs)),
                secret: secret.as_deref(),
            };
            cli::auth::add(&engine.config()?, &id, &name, how).await?
        }
        Command::Camera(CameraCommand::Revoke { engine, id }) => {
            cli::auth::revoke(&engine.config()?, &id).await?
        }
        Command::Refused {
            engine,
            limit,
            json,
        } => cli::auth::refused(&engine.config()?, limit, json).await?,
        Command::Recordings {
            data,
            camera,
            since,
            limit,
            json,
        } => cli::catalog::recordings(&data.location(), camera, since, limit, json).await?,
        Command::Events {
            data,
            camera,
            kind,
            since,
            limit,
            json,
        } => {
            let filter = cli::catalog::EventQuery {
                camera,
                kind,
                since,
                limit,
            };
            cli::catalog::events(&data.location(), filter, json).await?
        }
        Command::Export {
            engine,
            camera,
            from,
            to,
            whole,
        } => cli::evidence::export(&engine.config()?, camera, from, to, whole).await?,
        // Exit status 1 when the evidence is not intact, 2 when it cannot be read.
        Command::Verify { zip } => {
            let intact = cli::evidence::verify(&zip)?;
            return Ok(if intact {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        Command::Exports { data, json } => cli::evidence::exports(&data.location(), json).await?,
        Command::Dispatch {
            engine,
            export,
            target,
        } => cli::evidence::dispatch(&engine.config()?, &export, target).await?,
        Command::Receive(args) => cli::evidence::receive(args).await?,
        Command::Sender(SenderCommand::Add {
            data,
            id,
            address,
            plain_tcp,
        }) => {
            cli::auth::add_sender(
                &data.data,
                &data.location(),
                &id,
                address.as_deref(),
                plain_tcp,
            )
            .await?
        }
        Command::Sender(SenderCommand::Revoke { data, id }) => {
            cli::auth::revoke_sender(&data.location(), &id).await?
        }
        Command::Panorama {
            video,
            images,
            out,
            scans,
            time_limit,
        } => return cli::panorama::run(video, images, out, scans, time_limit).await,
        Command::StitchWorker { job } => {
            return Ok(ExitCode::from(cctv_panorama::worker::main(&job) as u8));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: EngineArgs) -> anyhow::Result<()> {
    let engine = start_engine(args.config()?).await?;
    info!(listen = %engine.local_addr(), "serving; Ctrl-C to stop");
    wait_for_stop().await;
    engine.shutdown().await;
    if let Some(path) = &args.stats {
        let l = engine.latency();
        let json = serde_json::json!({
            "frames_written": l.count(),
            "latency_p50_ms": l.quantile_ms(0.5),
            "latency_p99_ms": l.quantile_ms(0.99),
            "latency_max_ms": l.quantile_ms(1.0),
        });
        std::fs::write(path, json.to_string())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

pub(crate) async fn wait_for_stop() {
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

/// Writes one line to standard output; see [`say!`].
pub(crate) fn stdout_line(line: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("panel: cannot write the output: {e}");
        std::process::exit(2);
    }
}
