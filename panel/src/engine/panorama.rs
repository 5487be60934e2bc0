//! The engine's panorama commands: stitch from a recording, a time range of
//! a camera's recordings, or its last N seconds; list, cancel. The work runs
//! on the blocking pool and in a worker process, never on ingest tasks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{info, warn};

use super::{Engine, EngineError};
use crate::catalog::{PanoramaResult, PanoramaRow, RecordingFilter};
use crate::live::EngineEvent;
use crate::panorama::stitch::Mode;
use crate::panorama::{self, Request, Source};
use crate::time::{now_us, utc_day_and_stamp};

/// What footage a panorama is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanoramaFrom {
    Recording(i64),
    Range {
        from_us: i64,
        to_us: i64,
    },
    /// The last N seconds of the camera's feed (from what it recorded).
    LastSeconds(u32),
}

impl Engine {
    /// Starts a panorama; returns its id. Progress: [`Engine::panorama_jobs`];
    /// the end: an [`EngineEvent::Panorama`] and the catalog row.
    pub async fn panorama(
        &self,
        camera: &str,
        from: PanoramaFrom,
        mode: Mode,
    ) -> Result<i64, EngineError> {
        let shared = self.shared.clone();
        let root = &shared.config.recordings_dir;
        let (range, label) = match from {
            PanoramaFrom::Recording(_) => (None, String::new()),
            PanoramaFrom::Range { from_us, to_us } => (
                Some((from_us, to_us)),
                format!(
                    "{} to {}",
                    crate::time::local(from_us),
                    crate::time::local(to_us)
                ),
            ),
            PanoramaFrom::LastSeconds(n) => {
                let to_us = now_us();
                (
                    Some((to_us - i64::from(n) * 1_000_000, to_us)),
                    format!("last {n} s"),
                )
            }
        };
        let (files, from_us, to_us, source) = match (from, range) {
            (PanoramaFrom::Recording(id), _) => {
                let r = shared
                    .catalog
                    .recording(id)
                    .await?
                    .filter(|r| r.camera_id == camera)
                    .ok_or_else(|| {
                        EngineError::Dispatch(format!("camera {camera} has no recording {id}"))
                    })?;
                (
                    vec![(root.join(&r.path), None)],
                    r.start_us,
                    r.end_us,
                    format!("recording {id}"),
                )
            }
            (_, Some((from_us, to_us))) => {
                let rows = self.recordings_between(camera, from_us, to_us).await?;
                (
                    rows.into_iter()
                        .map(|p| (p, Some((from_us, to_us))))
                        .collect(),
                    from_us,
                    to_us,
                    label,
                )
            }
            (_, None) => (Vec::new(), 0, 0, label),
        };
        if files.is_empty() {
            return Err(EngineError::Dispatch(format!(
                "camera {camera} has no recordings in that range: a panorama is made from recorded footage"
            )));
        }
        let id = shared
            .catalog
            .insert_panorama(camera, &source, from_us, to_us, mode.as_str(), now_us())
            .await?;
        let (_, a) = utc_day_and_stamp(from_us);
        let (_, b) = utc_day_and_stamp(to_us);
        let dir = shared.config.data_dir.join("panoramas").join(camera);
        let out = dir.join(format!("{camera}_{a}_{b}_{id}.jpg"));
        let worker = shared
            .config
            .stitch_worker
            .clone()
            .or_else(|| std::env::current_exe().ok())
            .unwrap_or_else(|| PathBuf::from("panel"));
        let cancel = Arc::new(AtomicBool::new(false));
        if let Ok(mut jobs) = shared.panorama_jobs.lock() {
            jobs.insert(id, (cancel.clone(), "starting".into()));
        }
        let req = Request {
            source: Source::Recordings(files),
            mode,
            out,
            worker,
            params: Default::default(),
            every: None,
        };
        let camera = camera.to_string();
        info!(camera = %camera, id, source = %source, "panorama started");
        tokio::spawn(async move {
            let s2 = shared.clone();
            let result = tokio::task::spawn_blocking(move || {
                panorama::run(&req, &cancel, &mut |stage| {
                    if let Ok(mut jobs) = s2.panorama_jobs.lock()
                        && let Some(j) = jobs.get_mut(&id)
                    {
                        j.1 = stage.to_string();
                    }
                })
            })
            .await;
            let data = &shared.config.data_dir;
            let rel = |p: &std::path::Path| {
                p.strip_prefix(data)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .into_owned()
            };
            let cancelled = shared
                .panorama_jobs
                .lock()
                .ok()
                .and_then(|mut j| j.remove(&id))
                .is_some_and(|(c, _)| c.load(Ordering::Acquire));
            let row = match result {
                Ok(Ok(r)) => PanoramaResult {
                    status: "complete",
                    message: format!(
                        "{} of {} frames chosen ({} blurred and {} near-duplicates skipped), {} kept by the stitcher",
                        r.chosen.len(),
                        r.stats.seen,
                        r.stats.blurred,
                        r.stats.duplicates,
                        r.used
                    ),
                    path: rel(&r.out),
                    thumb_path: rel(&r.thumb),
                    frames_seen: r.stats.seen as i64,
                    frames_used: r.used as i64,
                    width: i64::from(r.width),
                    height: i64::from(r.height),
                    stitch_ms: r.stitch_ms as i64,
                },
                Ok(Err(f)) => PanoramaResult {
                    status: if cancelled { "cancelled" } else { "failed" },
                    message: if cancelled {
                        "cancelled".into()
                    } else {
                        f.message()
                    },
                    path: rel(&f.samples),
                    frames_seen: f.stats.seen as i64,
                    frames_used: f.chosen.len() as i64,
                    stitch_ms: f.stitch_ms as i64,
                    ..Default::default()
                },
                Err(e) => PanoramaResult {
                    status: "failed",
                    message: format!("the panorama job failed: {e}"),
                    ..Default::default()
                },
            };
            if row.status == "complete" {
                info!(camera = %camera, id, path = %row.path, "panorama made");
            } else {
                warn!(camera = %camera, id, "panorama {}: {}", row.status, row.message);
            }
            if let Err(e) = shared.catalog.finish_panorama(id, &row).await {
                warn!("cannot record the panorama's result: {e}");
            }
            let _ = shared.events.send(EngineEvent::Panorama { camera, id });
        });
        Ok(id)
    }

    async fn recordings_between(
        &self,
        camera: &str,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<PathBuf>, EngineError> {
        let mut rows = self
            .shared
            .catalog
            .recordings(&RecordingFilter {
                camera_id: Some(camera.to_string()),
                from_us: Some(from_us),
                to_us: Some(to_us),
                ..Default::default()
            })
            .await?;
        rows.reverse();
        Ok(rows
            .into_iter()
            .filter(|r| r.frames > 0 || r.status == "recording")
            .map(|r| self.shared.config.recordings_dir.join(r.path))
            .collect())
    }

    /// Panoramas being made: id -> current stage.
    pub fn panorama_jobs(&self) -> HashMap<i64, String> {
        self.shared
            .panorama_jobs
            .lock()
            .map(|j| j.iter().map(|(id, (_, s))| (*id, s.clone())).collect())
            .unwrap_or_default()
    }

    pub fn cancel_panorama(&self, id: i64) -> bool {
        self.shared
            .panorama_jobs
            .lock()
            .ok()
            .and_then(|j| j.get(&id).map(|(c, _)| c.store(true, Ordering::Release)))
            .is_some()
    }

    pub async fn panoramas(&self, camera: Option<&str>) -> Result<Vec<PanoramaRow>, EngineError> {
        Ok(self.shared.catalog.panoramas(camera, 200).await?)
    }
}
