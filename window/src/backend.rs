//! The window's commands: each one that touches the engine, the database or
//! the disk runs on the engine's runtime, never on the UI thread, as an iced
//! [`Task`] whose output is the [`Reply`] values.

use std::sync::Arc;

use cctv_protocol::Configure;
use iced::Task;
use iced::futures::stream;
use iced::widget::image::Handle;
use tokio::sync::mpsc;
use turbojpeg::Decompressor;

use super::decode::decode_to_width;
use std::collections::HashMap;

use tokio_util::sync::CancellationToken;

pub use cctv_engine::HistoryQuery;
use cctv_engine::catalog::{
    DispatchRow, EventRow, ExportRow, PanoramaRow, PanoramaStatus, RecordMode, RecordingRow,
};
use cctv_engine::{Engine, EngineError, FrameRef, RecordingIndex as Scan, StitchMode};

/// What the UI asks for.
#[derive(Debug, Clone)]
pub enum Command {
    SetRecording(String, bool),
    SetRecordingAll(bool),
    Configure(String, Configure),
    /// Motion analysis changes for an agent that analyses.
    Detect(String, cctv_protocol::Detect),
    Snapshot(String),
    Rename(String, String),
    SetMode(String, RecordMode),
    SetRetention(String, Option<i64>, Option<i64>),
    Listen(std::net::SocketAddr),
    History(HistoryQuery),
    Thumbnail(RecordingRow),
    /// The picture of a motion or tamper event.
    EventThumbnail(i64),
    Open(RecordingRow),
    /// Play the newest finished recording of any camera.
    PlayNewest,
    /// A camera's footage over a range, for playback.
    Timeline(String, i64, i64),
    Frame {
        request: u64,
        recording: RecordingRow,
        frame: FrameRef,
        width: u32,
    },
    /// Packets of a recording's sound, for playback's speaker.
    Sound(RecordingRow, Vec<(i64, FrameRef)>),
    Disk,
    /// Write these recordings to a zip, until done or cancelled.
    Export(Vec<RecordingRow>, CancellationToken),
    /// Write a clip of exactly this range (capture times) of these cameras
    /// (every camera when empty) to a zip, until done or cancelled.
    ExportRange(Vec<String>, i64, i64, CancellationToken),
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
    /// Every camera's saved settings.
    CameraRows,
    /// Enrol a camera: a pairing code, or its agent's settings.
    AddCamera {
        id: String,
        name: String,
        pair: bool,
    },
    Revoke(String),
    /// The wall's saved order of cameras.
    WallLayout,
    SaveWallLayout(Vec<String>),
}

/// Recordings on a page of the history browser.
pub const PAGE: i64 = HistoryQuery::PAGE;

/// What comes back.
#[derive(Debug, Clone)]
pub enum Reply {
    Notice(String),
    Error(String),
    /// The query, the recordings on its page and the events in its range.
    /// A history page: recordings, state events, motion and tamper spans.
    History(
        HistoryQuery,
        Vec<RecordingRow>,
        Vec<EventRow>,
        Vec<EventRow>,
    ),
    Thumbnail(i64, Handle),
    EventThumbnail(i64, Handle),
    Opened(RecordingRow, Arc<Scan>),
    /// Play from the start of this recording.
    PlayFrom(RecordingRow),
    /// A camera's footage over a range: camera, from, to, what is there.
    Timeline(String, i64, i64, cctv_engine::History),
    Frame(u64, Handle),
    /// A recording's sound: capture time and Opus packet.
    Sound(Vec<(i64, Vec<u8>)>),
    /// The frame asked for could not be read.
    FrameFailed(u64),
    Disk {
        recorded_bytes: i64,
        free_bytes: u64,
    },
    Listening(std::net::SocketAddr),
    ExportProgress(u64, u64),
    Exported(ExportRow),
    /// Auto-dispatch was switched on or off.
    AutoDispatch(bool),
    /// An export ended without a zip (failed or cancelled), and why.
    ExportFailed(String),
    Evidence(Evidence),
    /// The panorama rows, the stitches running (id -> stage), and when they
    /// were read (a [`read_number`]).
    Panoramas(Vec<PanoramaRow>, HashMap<i64, String>, u64),
    PanoramaThumb(i64, Handle),
    PanoramaImage(i64, Handle),
    Refused(Vec<cctv_engine::catalog::AuthFailureRow>),
    CameraRows(Vec<cctv_engine::catalog::CameraRow>),
    WallLayout(Vec<String>),
    /// What to tell a camera just added.
    Enrolled(String),
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
    /// When this was read (a [`read_number`]).
    pub read: u64,
}

/// Numbers reads of the catalog in the order they start, so a reply that
/// was overtaken by a newer one (they run concurrently) is not shown.
pub fn read_number() -> u64 {
    static READS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Runs the window's commands on the engine's runtime.
#[derive(Clone)]
pub struct Backend {
    engine: Arc<Engine>,
    runtime: tokio::runtime::Handle,
}

impl Backend {
    /// A backend on `runtime` (the engine's).
    pub fn new(engine: Arc<Engine>, runtime: &tokio::runtime::Handle) -> Self {
        Self {
            engine,
            runtime: runtime.clone(),
        }
    }

    /// Runs `cmd` on its own engine task (a slow query never holds up a
    /// click); its replies are the returned task's output, as they come.
    pub fn task(&self, cmd: Command) -> Task<Reply> {
        let (tx, rx) = mpsc::unbounded_channel();
        let engine = self.engine.clone();
        self.runtime.spawn(async move {
            match cmd {
                Command::Export(rows, cancel) => {
                    run_export(engine, What::Recordings(rows), tx, cancel).await
                }
                Command::ExportRange(cameras, from, to, cancel) => {
                    run_export(engine, What::Range(cameras, from, to), tx, cancel).await
                }
                cmd => {
                    if let Some(reply) = run(&engine, cmd).await {
                        let _ = tx.send(reply);
                    }
                }
            }
        });
        Task::stream(stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|reply| (reply, rx))
        }))
    }
}

fn handle_of(img: super::decode::Rgba) -> Handle {
    Handle::from_rgba(img.width, img.height, img.pixels)
}

/// What an export holds.
enum What {
    Recordings(Vec<RecordingRow>),
    Range(Vec<String>, i64, i64),
}

/// An export with its progress reported as it goes.
async fn run_export(
    engine: Arc<Engine>,
    what: What,
    reply: mpsc::UnboundedSender<Reply>,
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
    let result = match what {
        What::Recordings(rows) => engine.export(rows, Some(tx), cancel).await,
        What::Range(cameras, from, to) => {
            engine
                .export_range(&cameras, from, to, Some(tx), cancel)
                .await
        }
    };
    reporter.abort();
    let _ = reply.send(match result {
        Ok(row) => Reply::Exported(row),
        Err(e) => Reply::ExportFailed(e.to_string()),
    });
}

/// Decodes JPEG bytes for the screen (`width` 0: full size); nothing when
/// they are not a picture.
async fn decode(jpeg: Vec<u8>, width: u32) -> Option<Handle> {
    let decoded = tokio::task::spawn_blocking(move || {
        let mut dec = Decompressor::new().ok()?;
        decode_to_width(&mut dec, &jpeg, width).ok()
    });
    decoded.await.ok().flatten().map(handle_of)
}

/// An engine call's outcome as a reply: `ok` of its value, or its error.
fn reply<T>(r: Result<T, EngineError>, ok: impl FnOnce(T) -> Reply) -> Option<Reply> {
    Some(match r {
        Ok(v) => ok(v),
        Err(e) => Reply::Error(e.to_string()),
    })
}

/// A notice when the call worked, its error when not.
fn done(r: Result<(), EngineError>, ok: String) -> Option<Reply> {
    reply(r, |()| Reply::Notice(ok))
}

async fn run(engine: &Engine, cmd: Command) -> Option<Reply> {
    match cmd {
        Command::SetRecording(id, on) => set_recording(engine, id, on).await,
        Command::SetRecordingAll(on) => set_recording_all(engine, on).await,
        Command::Configure(id, c) => configure(engine, id, c).await,
        Command::Detect(id, d) => done(
            engine.configure_detection(&id, d).await,
            format!("{id}: motion settings sent"),
        ),
        Command::Snapshot(id) => reply(engine.snapshot(&id).await, |path| {
            Reply::Notice(format!("snapshot saved: {}", path.display()))
        }),
        Command::Rename(id, name) => done(
            engine.rename(&id, &name).await,
            format!("{id} renamed to {name}"),
        ),
        Command::SetMode(id, mode) => done(
            engine.set_record_mode(&id, mode).await,
            format!("{id}: recording mode {}", mode.as_str()),
        ),
        Command::SetRetention(id, bytes, days) => done(
            engine.set_retention(&id, bytes, days).await,
            format!("{id}: retention saved"),
        ),
        Command::Listen(addr) => reply(engine.listen_on(addr).await, Reply::Listening),
        Command::History(query) => {
            let h = engine.history(&query).await;
            reply(h, |h| {
                Reply::History(query, h.recordings, h.events, h.spans)
            })
        }
        Command::Thumbnail(row) => {
            let id = row.id;
            decoded(engine.first_frame(&row).await, 96, |h| {
                Reply::Thumbnail(id, h)
            })
            .await
        }
        Command::EventThumbnail(id) => {
            decoded(engine.event_thumbnail(id).await, 96, |h| {
                Reply::EventThumbnail(id, h)
            })
            .await
        }
        Command::Open(row) => reply(engine.open_recording(&row).await, |index| {
            Reply::Opened(row, index)
        }),
        Command::PlayNewest => play_newest(engine).await,
        Command::Timeline(camera, from, to) => {
            reply(engine.timeline(&camera, from, to).await, |h| {
                Reply::Timeline(camera, from, to, h)
            })
        }
        Command::Frame {
            request,
            recording,
            frame,
            width,
        } => {
            let jpeg = engine.recording_frame(&recording, frame).await;
            decoded(jpeg, width, |h| Reply::Frame(request, h))
                .await
                .or(Some(Reply::FrameFailed(request)))
        }
        Command::Sound(row, packets) => Some(match engine.recording_sound(&row, packets).await {
            Ok(p) => Reply::Sound(p),
            // Sound that cannot be read is silence; the pictures say the rest.
            Err(_) => Reply::Sound(Vec::new()),
        }),
        Command::Export(..) | Command::ExportRange(..) => None,
        Command::Evidence => evidence(engine).await,
        Command::Dispatch(id) => reply(engine.dispatch(id, None).await, |ids| {
            Reply::Notice(format!(
                "export queued for dispatch ({} transfer(s))",
                ids.len()
            ))
        }),
        Command::DispatchLatest => dispatch_latest(engine).await,
        Command::AutoDispatch(on) => reply(engine.set_auto_dispatch(on).await, |()| {
            Reply::AutoDispatch(on)
        }),
        Command::Verify(export) => verify(engine, export).await,
        Command::Panorama(camera, from) => reply(
            engine.panorama(&camera, from, StitchMode::Panorama).await,
            |_| Reply::Notice(format!("{camera}: making a panorama (see Panoramas)")),
        ),
        Command::Panoramas(camera) => {
            let read = read_number();
            reply(engine.panoramas(camera.as_deref()).await, |rows| {
                Reply::Panoramas(rows, engine.panorama_jobs(), read)
            })
        }
        Command::PanoramaThumb(row) => panorama_picture(engine, row, true).await,
        Command::PanoramaImage(row) => panorama_picture(engine, row, false).await,
        Command::CancelPanorama(id) => Some(match engine.cancel_panorama(id) {
            true => Reply::Notice("panorama cancelled".into()),
            false => Reply::Error("that panorama is no longer running".into()),
        }),
        Command::Refused => reply(engine.refused(50).await, Reply::Refused),
        Command::CameraRows => reply(engine.camera_rows().await, Reply::CameraRows),
        Command::WallLayout => reply(engine.wall_layout().await, Reply::WallLayout),
        Command::AddCamera { id, name, pair } => add_camera(engine, id, name, pair).await,
        Command::Revoke(id) => reply(engine.revoke(&id).await, |done| match done {
            true => Reply::Notice(format!("{id} revoked: cut off and refused from now on")),
            false => Reply::Error(format!("{id} had no secret to revoke")),
        }),
        Command::SaveWallLayout(ids) => done(
            engine.set_wall_layout(&ids).await,
            "wall layout saved".into(),
        ),
        Command::Disk => Some(Reply::Disk {
            recorded_bytes: engine.recorded_bytes().await.unwrap_or(0),
            free_bytes: engine.free_bytes().unwrap_or(0),
        }),
    }
}

/// Adds a camera; what its agent needs: a pairing code and the command
/// that uses it, or its settings (the secret shown this once).
async fn add_camera(engine: &Engine, id: String, name: String, pair: bool) -> Option<Reply> {
    let addr = engine.local_addr();
    let host = match addr.ip().is_unspecified() {
        true => engine.config().panel_name.clone(),
        false => addr.ip().to_string(),
    };
    let panel = format!("{host}:{}", addr.port());
    if pair {
        let valid = std::time::Duration::from_secs(15 * 60);
        return reply(engine.pair_camera(&id, &name, valid).await, |code| {
            let fingerprint = engine
                .fingerprint()
                .map(|f| f.to_string())
                .unwrap_or_default();
            Reply::Enrolled(format!(
                "Camera {id}: pairing code {code} (works once, for 15 minutes). On the camera host:\n  \
                 sudo camera-agent pair {panel} {code}\n  sudo systemctl enable --now camera-agent\n\
                 The agent prints the panel's fingerprint; it must be {fingerprint}",
                code = code.display()
            ))
        });
    }
    reply(engine.add_camera(&id, &name, false).await, |secret| {
        let settings =
            cctv_engine::agent_settings(Some(&panel), &id, &name, &secret, engine.fingerprint());
        Reply::Enrolled(format!(
            "# camera-agent settings for {id}; the secret is shown only this once.\n{settings}"
        ))
    })
}

/// The newest finished recording of any camera (the newest at all when
/// none has finished yet), to play.
async fn play_newest(engine: &Engine) -> Option<Reply> {
    let page = match engine.history(&HistoryQuery::default()).await {
        Ok(h) => h.recordings,
        Err(e) => return Some(Reply::Error(e.to_string())),
    };
    let row = page
        .iter()
        .find(|r| r.status != cctv_engine::catalog::RecordingStatus::Recording)
        .or(page.first())
        .cloned();
    Some(match row {
        Some(row) => Reply::PlayFrom(row),
        None => Reply::Error("nothing recorded yet".into()),
    })
}

/// A picture read from a recording, decoded at `width`; nothing when it
/// cannot be read (the screen keeps what it shows).
async fn decoded(
    jpeg: Result<Vec<u8>, EngineError>,
    width: u32,
    ok: impl FnOnce(Handle) -> Reply,
) -> Option<Reply> {
    decode(jpeg.ok()?, width).await.map(ok)
}

async fn set_recording(engine: &Engine, id: String, on: bool) -> Option<Reply> {
    let what = if on { "recording" } else { "stopped recording" };
    done(engine.set_recording(&id, on).await, format!("{id}: {what}"))
}

async fn set_recording_all(engine: &Engine, on: bool) -> Option<Reply> {
    let what = match on {
        true => "all cameras recording",
        false => "all recording stopped",
    };
    done(engine.set_recording_all(on).await, what.into())
}

async fn configure(engine: &Engine, id: String, c: Configure) -> Option<Reply> {
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

/// The evidence screen's data, numbered by when it was read.
async fn evidence(engine: &Engine) -> Option<Reply> {
    let read = read_number();
    match (engine.exports(100).await, engine.dispatches(500).await) {
        (Ok(exports), Ok(dispatches)) => Some(Reply::Evidence(Evidence {
            exports,
            dispatches,
            progress: engine.dispatch_progress(),
            auto_dispatch: engine.auto_dispatch(),
            targets: engine.dispatch_targets(),
            read,
        })),
        (Err(e), _) | (_, Err(e)) => Some(Reply::Error(e.to_string())),
    }
}

async fn dispatch_latest(engine: &Engine) -> Option<Reply> {
    match engine.latest_complete_export().await {
        Ok(Some(e)) => reply(engine.dispatch(e.id, None).await, |_| {
            Reply::Notice(format!("dispatching {}", e.path))
        }),
        Ok(None) => Some(Reply::Error(
            "no export to dispatch yet: export recordings from the history first".into(),
        )),
        Err(e) => Some(Reply::Error(e.to_string())),
    }
}

async fn verify(engine: &Engine, export: ExportRow) -> Option<Reply> {
    let name = export.path.clone();
    reply(engine.verify_export(&export).await, |r| {
        if r.intact() {
            Reply::Notice(format!(
                "{name}: INTACT, {} files match",
                r.intact_files.len()
            ))
        } else {
            let findings: Vec<String> = r.findings.iter().map(ToString::to_string).collect();
            Reply::Error(format!("{name}: NOT INTACT: {}", findings.join("; ")))
        }
    })
}

/// A finished panorama's thumbnail (quietly nothing if unreadable) or its
/// full picture (an error if unreadable).
async fn panorama_picture(engine: &Engine, row: PanoramaRow, thumb: bool) -> Option<Reply> {
    if row.status != PanoramaStatus::Complete {
        return None;
    }
    let decoded = match engine.panorama_image(&row, thumb).await {
        Ok(jpeg) => decode(jpeg, 0).await,
        Err(_) => None,
    };
    match (decoded, thumb) {
        (Some(h), true) => Some(Reply::PanoramaThumb(row.id, h)),
        (Some(h), false) => Some(Reply::PanoramaImage(row.id, h)),
        (None, true) => None,
        (None, false) => Some(Reply::Error(format!("cannot read {}", row.path))),
    }
}
