//! The GUI's worker: every command that touches the engine, the database or
//! the disk runs here, on the engine's runtime, never on the UI thread.
//! Results come back as [`Reply`] values the UI drains on its tick.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use cctv_protocol::Configure;
use iced::widget::image::Handle;
use tokio::sync::mpsc;
use turbojpeg::Decompressor;

use super::decode::decode_to_width;
use std::collections::HashMap;

use tokio_util::sync::CancellationToken;

pub use cctv_engine::HistoryQuery;
use cctv_engine::catalog::{
    DispatchRow, EventRow, ExportRow, PanoramaRow, RecordMode, RecordingRow,
};
use cctv_engine::{Engine, FrameRef, RecordingIndex as Scan, StitchMode};

/// What the UI asks for.
#[derive(Debug, Clone)]
pub enum Command {
    SetRecording(String, bool),
    SetRecordingAll(bool),
    Configure(String, Configure),
    Snapshot(String),
    Rename(String, String),
    SetMode(String, RecordMode),
    SetRetention(String, Option<i64>, Option<i64>),
    Listen(std::net::SocketAddr),
    History(HistoryQuery),
    Thumbnail(RecordingRow),
    Open(RecordingRow),
    Frame {
        request: u64,
        recording: RecordingRow,
        frame: FrameRef,
        width: u32,
    },
    Disk,
    Export(Vec<RecordingRow>),
    CancelExport,
    Evidence,
    Dispatch(i64),
    DispatchLatest,
    AutoDispatch(bool),
    Verify(ExportRow),
    Panorama(String, cctv_engine::PanoramaFrom),
    Panoramas(Option<String>),
    PanoramaThumb(PanoramaRow),
    PanoramaImage(PanoramaRow),
    CancelPanorama(i64),
    /// The newest refused connections.
    Refused,
}

/// Recordings on a page of the history browser.
pub const PAGE: i64 = HistoryQuery::PAGE;

/// What comes back.
#[derive(Debug, Clone)]
pub enum Reply {
    Notice(String),
    Error(String),
    History {
        query: HistoryQuery,
        recordings: Vec<RecordingRow>,
        events: Vec<EventRow>,
    },
    Thumbnail(i64, Handle),
    Opened(RecordingRow, Arc<Scan>),
    Frame(u64, Handle),
    Disk {
        recorded_bytes: i64,
        free_bytes: u64,
    },
    Listening(std::net::SocketAddr),
    ExportProgress(u64, u64),
    Exported(ExportRow),
    /// An export ended without a zip (failed or cancelled), and why.
    ExportFailed(String),
    Evidence(Evidence),
    Panoramas(Vec<PanoramaRow>, HashMap<i64, String>),
    PanoramaThumb(i64, Handle),
    PanoramaImage(i64, Handle),
    Refused(Vec<cctv_engine::catalog::AuthFailureRow>),
}

/// The evidence screen's data.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub exports: Vec<ExportRow>,
    pub dispatches: Vec<DispatchRow>,
    /// Transfers in flight: dispatch id -> (bytes at the target, total).
    pub progress: HashMap<i64, (u64, u64)>,
    pub auto_dispatch: bool,
    pub targets: Vec<String>,
}

pub struct Backend {
    tx: mpsc::UnboundedSender<Command>,
    rx: std_mpsc::Receiver<Reply>,
}

impl Backend {
    /// Starts the worker on `runtime` (the engine's).
    pub fn start(engine: Arc<Engine>, runtime: &tokio::runtime::Handle) -> Self {
        let (tx, mut cmd_rx) = mpsc::unbounded_channel::<Command>();
        let (reply_tx, rx) = std_mpsc::channel();
        runtime.spawn(async move {
            let export_cancel: Arc<std::sync::Mutex<Option<CancellationToken>>> =
                Default::default();
            while let Some(cmd) = cmd_rx.recv().await {
                let engine = engine.clone();
                let reply_tx = reply_tx.clone();
                match cmd {
                    Command::Export(rows) => {
                        let token = CancellationToken::new();
                        if let Ok(mut c) = export_cancel.lock() {
                            *c = Some(token.clone());
                        }
                        tokio::spawn(run_export(engine, rows, reply_tx, token));
                    }
                    Command::CancelExport => {
                        if let Some(t) = export_cancel.lock().ok().and_then(|mut c| c.take()) {
                            t.cancel();
                        }
                    }
                    // Each command on its own task: a slow query never holds up a click.
                    cmd => {
                        tokio::spawn(async move {
                            if let Some(reply) = run(&engine, cmd).await {
                                let _ = reply_tx.send(reply);
                            }
                        });
                    }
                }
            }
        });
        Self { tx, rx }
    }

    pub fn send(&self, cmd: Command) {
        let _ = self.tx.send(cmd);
    }

    /// Replies that have arrived, without waiting.
    pub fn drain(&self) -> Vec<Reply> {
        self.rx.try_iter().collect()
    }
}

fn handle_of(img: super::decode::Rgba) -> Handle {
    Handle::from_rgba(img.width, img.height, img.pixels)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())?
}

/// An export with its progress reported as it goes.
async fn run_export(
    engine: Arc<Engine>,
    rows: Vec<RecordingRow>,
    reply: std_mpsc::Sender<Reply>,
    cancel: CancellationToken,
) {
    let (tx, mut rx) = tokio::sync::watch::channel(cctv_engine::ExportProgress::default());
    let r = reply.clone();
    let reporter = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let p = rx.borrow_and_update().clone();
            let _ = r.send(Reply::ExportProgress(p.done_bytes, p.total_bytes));
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    let result = engine.export(rows, Some(tx), cancel).await;
    reporter.abort();
    let _ = reply.send(match result {
        Ok(row) => Reply::Exported(row),
        Err(e) => Reply::ExportFailed(e.to_string()),
    });
}

/// Decodes JPEG bytes for the screen (`width` 0: full size).
async fn decode(jpeg: Vec<u8>, width: u32) -> Option<Handle> {
    blocking(move || {
        let mut dec = Decompressor::new().map_err(|e| e.to_string())?;
        decode_to_width(&mut dec, &jpeg, width).map_err(|e| e.to_string())
    })
    .await
    .ok()
    .map(handle_of)
}

async fn run(engine: &Engine, cmd: Command) -> Option<Reply> {
    let done = |r: Result<(), cctv_engine::EngineError>, ok: String| {
        Some(match r {
            Ok(()) => Reply::Notice(ok),
            Err(e) => Reply::Error(e.to_string()),
        })
    };
    match cmd {
        Command::SetRecording(id, on) => {
            let what = if on { "recording" } else { "stopped recording" };
            done(engine.set_recording(&id, on).await, format!("{id}: {what}"))
        }
        Command::SetRecordingAll(on) => {
            let what = if on {
                "all cameras recording"
            } else {
                "all recording stopped"
            };
            done(engine.set_recording_all(on).await, what.into())
        }
        Command::Configure(id, c) => {
            let mut parts = Vec::new();
            if let Some(q) = c.quality {
                parts.push(format!("quality {q}"));
            }
            if let Some(f) = c.fps_milli {
                parts.push(format!("{} fps", f as f64 / 1000.0));
            }
            done(
                engine.configure(&id, c).await,
                format!("{id}: asked for {}", parts.join(", ")),
            )
        }
        Command::Snapshot(id) => Some(match engine.snapshot(&id).await {
            Ok(path) => Reply::Notice(format!("snapshot saved: {}", path.display())),
            Err(e) => Reply::Error(e.to_string()),
        }),
        Command::Rename(id, name) => done(
            engine.rename(&id, &name).await,
            format!("{id} renamed to {name}"),
        ),
        Command::SetMode(id, mode) => done(
            engine.set_recording(&id, mode != RecordMode::Off).await,
            format!("{id}: recording mode {}", mode.as_str()),
        ),
        Command::SetRetention(id, bytes, days) => done(
            engine.set_retention(&id, bytes, days).await,
            format!("{id}: retention saved"),
        ),
        Command::Listen(addr) => Some(match engine.listen_on(addr).await {
            Ok(a) => Reply::Listening(a),
            Err(e) => Reply::Error(e.to_string()),
        }),
        Command::History(query) => Some(match engine.history(&query).await {
            Ok(h) => Reply::History {
                query,
                recordings: h.recordings,
                events: h.events,
            },
            Err(e) => Reply::Error(e.to_string()),
        }),
        Command::Thumbnail(row) => {
            let jpeg = engine.first_frame(&row).await.ok()?;
            decode(jpeg, 96).await.map(|h| Reply::Thumbnail(row.id, h))
        }
        Command::Open(row) => Some(match engine.open_recording(&row).await {
            Ok(index) => Reply::Opened(row, index),
            Err(e) => Reply::Error(e.to_string()),
        }),
        Command::Frame {
            request,
            recording,
            frame,
            width,
        } => {
            let jpeg = engine.recording_frame(&recording, frame).await.ok()?;
            decode(jpeg, width).await.map(|h| Reply::Frame(request, h))
        }
        Command::Export(_) | Command::CancelExport => None,
        Command::Evidence => match (engine.exports(100).await, engine.dispatches(500).await) {
            (Ok(exports), Ok(dispatches)) => Some(Reply::Evidence(Evidence {
                exports,
                dispatches,
                progress: engine.dispatch_progress(),
                auto_dispatch: engine.auto_dispatch(),
                targets: engine.dispatch_targets(),
            })),
            (Err(e), _) | (_, Err(e)) => Some(Reply::Error(e.to_string())),
        },
        Command::Dispatch(id) => Some(match engine.dispatch(id, None).await {
            Ok(ids) => Reply::Notice(format!(
                "export queued for dispatch ({} transfer(s))",
                ids.len()
            )),
            Err(e) => Reply::Error(e.to_string()),
        }),
        Command::DispatchLatest => {
            let latest = engine.latest_complete_export().await.ok().flatten();
            Some(match latest {
                Some(e) => match engine.dispatch(e.id, None).await {
                    Ok(_) => Reply::Notice(format!("dispatching {}", e.path)),
                    Err(err) => Reply::Error(err.to_string()),
                },
                None => Reply::Error(
                    "no export to dispatch yet: export recordings from the history first".into(),
                ),
            })
        }
        Command::AutoDispatch(on) => {
            let what = if on {
                "auto-dispatch on: each finished segment is exported and sent"
            } else {
                "auto-dispatch off"
            };
            done(engine.set_auto_dispatch(on).await, what.into())
        }
        Command::Verify(export) => {
            let name = export.path.clone();
            Some(match engine.verify_export(&export).await {
                Ok(r) if r.intact() => Reply::Notice(format!(
                    "{name}: INTACT, {} files match",
                    r.intact_files.len()
                )),
                Ok(r) => Reply::Error(format!(
                    "{name}: NOT INTACT: {}",
                    r.findings
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
                Err(e) => Reply::Error(e.to_string()),
            })
        }
        Command::Panorama(camera, from) => Some(
            match engine.panorama(&camera, from, StitchMode::Panorama).await {
                Ok(_) => Reply::Notice(format!("{camera}: making a panorama (see Panoramas)")),
                Err(e) => Reply::Error(e.to_string()),
            },
        ),
        Command::Panoramas(camera) => Some(match engine.panoramas(camera.as_deref()).await {
            Ok(rows) => Reply::Panoramas(rows, engine.panorama_jobs()),
            Err(e) => Reply::Error(e.to_string()),
        }),
        Command::PanoramaThumb(row) | Command::PanoramaImage(row)
            if row.status != cctv_engine::catalog::PanoramaStatus::Complete =>
        {
            None
        }
        Command::PanoramaThumb(row) => {
            let jpeg = engine.panorama_image(&row, true).await.ok()?;
            decode(jpeg, 0)
                .await
                .map(|h| Reply::PanoramaThumb(row.id, h))
        }
        Command::PanoramaImage(row) => {
            let decoded = match engine.panorama_image(&row, false).await {
                Ok(jpeg) => decode(jpeg, 0).await,
                Err(_) => None,
            };
            Some(match decoded {
                Some(h) => Reply::PanoramaImage(row.id, h),
                None => Reply::Error(format!("cannot read {}", row.path)),
            })
        }
        Command::CancelPanorama(id) => Some(if engine.cancel_panorama(id) {
            Reply::Notice("panorama cancelled".into())
        } else {
            Reply::Error("that panorama is no longer running".into())
        }),
        Command::Refused => match engine.refused(50).await {
            Ok(rows) => Some(Reply::Refused(rows)),
            Err(e) => Some(Reply::Error(e.to_string())),
        },
        Command::Disk => {
            let recorded_bytes = engine.recorded_bytes().await.unwrap_or(0);
            let free_bytes = engine.free_bytes().unwrap_or(0);
            Some(Reply::Disk {
                recorded_bytes,
                free_bytes,
            })
        }
    }
}
