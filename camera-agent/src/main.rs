//! `camera-agent`: one small process per camera host. It captures a webcam,
//! a video file or a test pattern, encodes JPEG frames and pushes them to the
//! panel over TCP, reconnecting forever. Capture runs on its own thread; the
//! network link runs on tokio.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use camera_agent::capture::{Capture, Shared};
use camera_agent::config::{AgentCommand, AgentConfig, Cli, DEFAULT_PATTERN_FPS, DEFAULT_QUALITY};
use camera_agent::encode::EncodeSettings;
use camera_agent::framelog::FrameLog;
use camera_agent::link::Link;
use camera_agent::pair;
use camera_agent::spool::Spool;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
                // Symphonia calls the 4-byte box size MP4 files start with
                // "junk", on every pass over a file.
                .add_directive(
                    "symphonia_core::formats::probe=error"
                        .parse()
                        .expect("a valid directive"),
                ),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("camera-agent: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(mut cli: Cli) -> anyhow::Result<()> {
    if let Some(AgentCommand::Pair {
        panel,
        code,
        config,
    }) = cli.command.take()
    {
        return pair::run(&panel, &code, &config);
    }
    let cfg = Arc::new(AgentConfig::from_cli(cli)?);
    let (settings_tx, settings_rx) = watch::channel(EncodeSettings {
        quality: cfg.quality,
        fps: cfg.fps.unwrap_or(DEFAULT_PATTERN_FPS),
        max_width: cfg.max_width,
        overlay: cfg.overlay,
    });
    let (analysis_tx, analysis_rx) = watch::channel(cfg.analysis.clone());
    let shared = Arc::new(Shared::default());
    let shutdown = CancellationToken::new();
    // About a second of frames: rides out a short network stall without
    // adding latency in the normal case; and room for a pre-roll, sent
    // all at once when motion starts.
    let second = cfg.fps.unwrap_or(30.0).ceil().clamp(2.0, 60.0);
    let preroll = cfg
        .analysis
        .as_ref()
        .map_or(0.0, |a| a.pace.preroll.as_secs_f64());
    let queue = (second * (1.0 + preroll)).ceil() as usize;
    let (frames_tx, frames_rx) = mpsc::channel(queue);
    let spool = open_spool(&cfg);
    let log = match &cfg.frame_log {
        Some(path) => Some(Arc::new(FrameLog::open(path).map_err(|e| {
            anyhow::anyhow!("cannot open the frame log {}: {e}", path.display())
        })?)),
        None => None,
    };
    let clock = camera_agent::source::PlayClock::default();
    let (audio_tx, audio_rx) = mpsc::channel(camera_agent::audio::QUEUE_PACKETS);
    let audio_thread = camera_agent::audio::spawn(
        &cfg.audio,
        &cfg.source,
        clock.clone(),
        audio_tx,
        shutdown.clone(),
    )?;
    let capture = Capture {
        clock,
        cfg: cfg.clone(),
        spool: spool.clone(),
        log: log.clone(),
        shared: shared.clone(),
        settings: settings_rx,
        analysis: analysis_rx,
        frames: frames_tx,
        shutdown: shutdown.clone(),
    };
    // The source is opened on the capture thread (webcams stay on the thread
    // that opened them); a missing device or file is reported here at once.
    let (opened_tx, opened_rx) = std::sync::mpsc::sync_channel(1);
    let capture_thread = std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || capture.run(opened_tx))?;
    let info = match opened_rx.recv() {
        Ok(Ok(info)) => info,
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => anyhow::bail!("the capture thread stopped before opening the source"),
    };
    let fps = cfg.fps.or(info.native_fps).unwrap_or(DEFAULT_PATTERN_FPS);
    settings_tx.send_modify(|s| s.fps = fps);
    if let Ok(mut size) = shared.source_size.lock() {
        *size = info.size;
    }
    info!(
        camera = %cfg.camera_id,
        source = %info.describe,
        size = ?info.size,
        fps,
        quality = cfg.quality.unwrap_or(DEFAULT_QUALITY),
        panel = %cfg.panels.iter().map(|p| p.address.as_str()).collect::<Vec<_>>().join(", then "),
        "starting"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::spawn(stop_on_signal(shutdown.clone()));
        Link {
            cfg,
            shared,
            settings: settings_tx,
            analysis: analysis_tx,
            frames: frames_rx,
            audio: audio_rx,
            spool,
            log,
            shutdown: shutdown.clone(),
        }
        .run()
        .await;
    });
    shutdown.cancel();
    let _ = capture_thread.join();
    if let Some(t) = audio_thread {
        let _ = t.join();
    }
    info!("stopped");
    Ok(())
}

/// The camera's spool, or none (said why): the agent then loses what it
/// captures while no panel takes it, as it always did without one.
fn open_spool(cfg: &AgentConfig) -> Option<camera_agent::spool::Shared> {
    let Some(dir) = &cfg.spool.dir else {
        info!("no spool: frames captured while no panel takes them are lost");
        return None;
    };
    match Spool::open(dir, cfg.spool.limits) {
        Ok(s) => {
            info!(
                dir = %dir.display(),
                max_bytes = cfg.spool.limits.max_bytes,
                "frames wait in the spool until a panel acknowledges them"
            );
            Some(Arc::new(std::sync::Mutex::new(s)))
        }
        Err(e) => {
            warn!(
                dir = %dir.display(),
                "no spool: {e}; frames captured while no panel takes them are lost"
            );
            None
        }
    }
}

/// Ctrl-C or SIGTERM (systemd's stop) ends the agent cleanly.
async fn stop_on_signal(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot watch for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("Ctrl-C: stopping"),
        _ = term.recv() => info!("SIGTERM: stopping"),
    }
    shutdown.cancel();
}
