//! The engine's evidence commands: export, dispatch, auto-dispatch of each
//! completed segment. The work itself is in `crate::evidence`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Engine, EngineError, Shared};
use crate::catalog::{ExportRow, RecordingRow, RecordingStatus};
use crate::evidence::export::{self, Places, Progress};
use crate::live::EngineEvent;
use crate::time::now_us;

fn places(shared: &Shared) -> Places {
    Places {
        panel_name: shared.config.panel_name.clone(),
        data_dir: shared.config.data_dir.clone(),
        recordings_dir: shared.config.recordings_dir.clone(),
    }
}

impl Engine {
    /// Finished recordings of a camera (or all) in a range, oldest first.
    pub async fn select_recordings(
        &self,
        camera: Option<&str>,
        from_us: Option<i64>,
        to_us: Option<i64>,
    ) -> Result<Vec<RecordingRow>, EngineError> {
        Ok(export::select(&self.shared.catalog, camera, from_us, to_us).await?)
    }

    /// Packs recordings into a zip under `data/exports/`.
    pub async fn export(
        &self,
        rows: Vec<RecordingRow>,
        progress: Option<watch::Sender<Progress>>,
        cancel: CancellationToken,
    ) -> Result<ExportRow, EngineError> {
        let rows: Vec<RecordingRow> = rows
            .into_iter()
            .filter(|r| r.status != RecordingStatus::Recording)
            .collect();
        let row = export::export(
            &self.shared.catalog,
            &places(&self.shared),
            rows,
            progress,
            cancel,
        )
        .await?;
        let _ = self.shared.events.send(EngineEvent::Export { id: row.id });
        Ok(row)
    }

    /// Exports exactly `[from_us, to_us]` of `cameras` (every camera when
    /// empty): one clip per camera, cut at frame boundaries from its
    /// finished recordings.
    pub async fn export_range(
        &self,
        cameras: &[String],
        from_us: i64,
        to_us: i64,
        progress: Option<watch::Sender<Progress>>,
        cancel: CancellationToken,
    ) -> Result<ExportRow, EngineError> {
        let row = crate::evidence::clip::export_range(
            &self.shared.catalog,
            &places(&self.shared),
            cameras,
            from_us,
            to_us,
            progress,
            cancel,
        )
        .await?;
        let _ = self.shared.events.send(EngineEvent::Export { id: row.id });
        Ok(row)
    }

    /// Queues an export for a target (or every configured target).
    pub async fn dispatch(
        &self,
        export_id: i64,
        target: Option<&str>,
    ) -> Result<Vec<i64>, EngineError> {
        queue(&self.shared, export_id, target).await
    }

    /// Transfers in flight: dispatch id -> (bytes at the target, total).
    pub fn dispatch_progress(&self) -> HashMap<i64, (u64, u64)> {
        crate::sync::lock(&self.shared.dispatcher.progress).clone()
    }

    pub fn dispatch_targets(&self) -> Vec<String> {
        self.shared
            .config
            .dispatch_targets
            .iter()
            .map(|t| t.name.clone())
            .collect()
    }

    pub fn auto_dispatch(&self) -> bool {
        self.shared.auto_dispatch.load(Ordering::Acquire)
    }

    /// Turns automatic export and dispatch of completed segments on or off
    /// for all cameras; kept across restarts.
    pub async fn set_auto_dispatch(&self, on: bool) -> Result<(), EngineError> {
        self.shared.auto_dispatch.store(on, Ordering::Release);
        self.shared
            .catalog
            .set_setting("auto_dispatch", if on { "on" } else { "off" })
            .await?;
        info!(on, "auto-dispatch changed");
        Ok(())
    }

    /// The same for one camera.
    pub async fn set_camera_auto_dispatch(&self, id: &str, on: bool) -> Result<(), EngineError> {
        if !self.shared.catalog.set_auto_dispatch(id, on).await? {
            return Err(EngineError::UnknownCamera(id.to_string()));
        }
        Ok(())
    }
}

async fn queue(
    shared: &Shared,
    export_id: i64,
    target: Option<&str>,
) -> Result<Vec<i64>, EngineError> {
    let targets: Vec<String> = match target {
        Some(t) if shared.dispatcher.target(t).is_some() => vec![t.to_string()],
        Some(t) => {
            return Err(EngineError::NoSuchTarget {
                name: t.to_string(),
                configured: shared
                    .config
                    .dispatch_targets
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        None if shared.config.dispatch_targets.is_empty() => {
            return Err(EngineError::NoTargets);
        }
        None => shared
            .config
            .dispatch_targets
            .iter()
            .map(|t| t.name.clone())
            .collect(),
    };
    let mut ids = Vec::new();
    for t in targets {
        let id = shared
            .catalog
            .queue_dispatch(export_id, &t, now_us())
            .await?;
        let _ = shared.events.send(EngineEvent::Dispatch {
            id,
            export: export_id,
        });
        ids.push(id);
    }
    shared.dispatcher.wake.notify_one();
    Ok(ids)
}

/// When a segment is finished, exports and dispatches it if auto-dispatch
/// is on for all cameras or for its camera.
pub(super) async fn auto_dispatch(shared: Arc<Shared>) {
    let mut events = shared.events.subscribe();
    loop {
        let event = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            e = events.recv() => e,
        };
        let (camera, id) = match event {
            Ok(EngineEvent::Recording { camera, id }) => (camera, id),
            Ok(_) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                warn!(missed = n, "auto-dispatch missed engine events");
                continue;
            }
            Err(_) => return,
        };
        let camera_on =
            matches!(shared.catalog.camera(&camera).await, Ok(Some(c)) if c.auto_dispatch);
        if !(shared.auto_dispatch.load(Ordering::Acquire) || camera_on)
            || shared.config.dispatch_targets.is_empty()
        {
            continue;
        }
        let Ok(Some(row)) = shared.catalog.recording(id).await else {
            continue;
        };
        if row.status == RecordingStatus::Recording || row.frames == 0 {
            continue;
        }
        match export::export(
            &shared.catalog,
            &places(&shared),
            vec![row],
            None,
            CancellationToken::new(),
        )
        .await
        {
            Ok(e) => {
                let _ = shared.events.send(EngineEvent::Export { id: e.id });
                if let Err(err) = queue(&shared, e.id, None).await {
                    warn!("auto-dispatch cannot queue {}: {err}", e.path);
                }
            }
            Err(err) => warn!(camera = %camera, "auto-dispatch cannot export: {err}"),
        }
    }
}
