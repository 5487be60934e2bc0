//! The engine's panorama commands: stitch from a recording, a time range of
//! a camera's recordings, or its last N seconds; list, cancel. The engine
//! knows which footage and where the image goes; the stitching itself is a
//! [`PanoramaMaker`] handed in by the binary (the `cctv-panorama` crate), so
//! the engine links no OpenCV. The work runs on the blocking pool, never on
//! ingest tasks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{Engine, EngineError, Shared};
use crate::catalog::{
    PanoramaResult, PanoramaRow, PanoramaStatus, RecordingFilter, RecordingStatus,
};
use crate::live::EngineEvent;
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

/// How the stitcher models the footage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StitchMode {
    /// A camera turning about its centre (pans, PTZ sweeps).
    Panorama,
    /// A flat subject under affine motion (documents, a wall).
    Scans,
}

impl StitchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StitchMode::Panorama => "panorama",
            StitchMode::Scans => "scans",
        }
    }
}

/// A panorama to make: recording files (each with the capture-time range to
/// use, or all of it), in time order.
#[derive(Debug, Clone)]
pub struct PanoramaJob {
    pub recordings: Vec<(PathBuf, Option<(i64, i64)>)>,
    pub mode: StitchMode,
    /// The image to write (JPEG); its thumbnail goes beside it.
    pub out: PathBuf,
    /// Stop and fail after this long (`panorama_time_limit_secs`).
    pub time_limit: std::time::Duration,
}

/// A panorama that was made.
#[derive(Debug, Clone)]
pub struct PanoramaMade {
    pub out: PathBuf,
    pub thumb: PathBuf,
    pub width: u32,
    pub height: u32,
    pub frames_seen: usize,
    pub frames_chosen: usize,
    pub blurred: usize,
    pub duplicates: usize,
    /// How many of the chosen frames the stitcher kept.
    pub frames_used: usize,
    pub stitch_ms: u64,
}

/// A panorama that could not be made, in words a user can act on.
#[derive(Debug, Clone)]
pub struct PanoramaNotMade {
    pub message: String,
    /// The frames that were tried, kept for the user to look at.
    pub samples: PathBuf,
    pub frames_seen: usize,
    pub frames_chosen: usize,
    pub stitch_ms: u64,
}

/// Makes panoramas. Blocking: the engine calls it on the blocking pool.
/// `cancel` set means stop soon; `stage` hears what it is doing.
pub trait PanoramaMaker: Send + Sync + 'static {
    fn make(
        &self,
        job: &PanoramaJob,
        cancel: &Arc<AtomicBool>,
        stage: &mut dyn FnMut(&str),
    ) -> Result<PanoramaMade, PanoramaNotMade>;
}

/// Why a panorama could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PanoramaError {
    #[error("this panel was started without a stitcher: panoramas are not available")]
    Unavailable,
    #[error("camera {camera} has no recording {id}")]
    NoSuchRecording { camera: String, id: i64 },
    #[error("camera {0} has no recordings in that range: a panorama is made from recorded footage")]
    NoFootage(String),
}

impl Engine {
    /// Starts a panorama; returns its id. Progress: [`Engine::panorama_jobs`];
    /// the end: an [`EngineEvent::Panorama`] and the catalog row.
    pub async fn panorama(
        &self,
        camera: &str,
        from: PanoramaFrom,
        mode: StitchMode,
    ) -> Result<i64, EngineError> {
        let maker = self
            .shared
            .panoramas
            .clone()
            .ok_or(EngineError::Panorama(PanoramaError::Unavailable))?;
        let footage = self.footage(camera, from).await?;
        let catalog = &self.shared.catalog;
        let id = catalog
            .insert_panorama(
                camera,
                &footage.source,
                footage.from_us,
                footage.to_us,
                mode.as_str(),
                now_us(),
            )
            .await?;
        let (_, a) = utc_day_and_stamp(footage.from_us);
        let (_, b) = utc_day_and_stamp(footage.to_us);
        let dir = self.shared.config.data_dir.join("panoramas").join(camera);
        let job = PanoramaJob {
            recordings: footage.files,
            mode,
            out: dir.join(format!("{camera}_{a}_{b}_{id}.jpg")),
            time_limit: std::time::Duration::from_secs(
                self.shared.config.panorama_time_limit_secs.max(1),
            ),
        };
        info!(camera, id, source = %footage.source, "panorama started");
        let cancel = Arc::new(AtomicBool::new(false));
        crate::sync::lock(&self.shared.panorama_jobs)
            .insert(id, (cancel.clone(), "starting".into()));
        let shared = self.shared.clone();
        let camera = camera.to_string();
        self.shared.tasks.spawn(async move {
            let row = make(&shared, maker, job, id, cancel).await;
            if row.status == PanoramaStatus::Complete {
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

    /// The recording files a panorama is made from, with the time range and
    /// a description of the source.
    async fn footage(&self, camera: &str, from: PanoramaFrom) -> Result<Footage, EngineError> {
        let (from_us, to_us, source) = match from {
            PanoramaFrom::Recording(id) => {
                let r = self
                    .shared
                    .catalog
                    .recording(id)
                    .await?
                    .filter(|r| r.camera_id == camera)
                    .ok_or_else(|| PanoramaError::NoSuchRecording {
                        camera: camera.to_string(),
                        id,
                    })?;
                let file = self.shared.config.recordings_dir.join(&r.path);
                return Ok(Footage {
                    files: vec![(file, None)],
                    from_us: r.start_us,
                    to_us: r.end_us,
                    source: format!("recording {id}"),
                });
            }
            PanoramaFrom::Range { from_us, to_us } => (
                from_us,
                to_us,
                format!(
                    "{} to {}",
                    crate::time::local(from_us),
                    crate::time::local(to_us)
                ),
            ),
            PanoramaFrom::LastSeconds(n) => {
                let to_us = now_us();
                (
                    to_us - i64::from(n) * 1_000_000,
                    to_us,
                    format!("last {n} s"),
                )
            }
        };
        let files: Vec<_> = self
            .recordings_between(camera, from_us, to_us)
            .await?
            .into_iter()
            .map(|p| (p, Some((from_us, to_us))))
            .collect();
        if files.is_empty() {
            return Err(PanoramaError::NoFootage(camera.to_string()).into());
        }
        Ok(Footage {
            files,
            from_us,
            to_us,
            source,
        })
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
            .filter(|r| r.frames > 0 || r.status == RecordingStatus::Recording)
            .map(|r| self.shared.config.recordings_dir.join(r.path))
            .collect())
    }

    /// Panoramas being made: id -> current stage.
    pub fn panorama_jobs(&self) -> HashMap<i64, String> {
        crate::sync::lock(&self.shared.panorama_jobs)
            .iter()
            .map(|(id, (_, s))| (*id, s.clone()))
            .collect()
    }

    pub fn cancel_panorama(&self, id: i64) -> bool {
        crate::sync::lock(&self.shared.panorama_jobs)
            .get(&id)
            .map(|(c, _)| c.store(true, Ordering::Release))
            .is_some()
    }

    pub async fn panoramas(&self, camera: Option<&str>) -> Result<Vec<PanoramaRow>, EngineError> {
        Ok(self.shared.catalog.panoramas(camera, 200).await?)
    }
}

/// What a panorama is made from.
struct Footage {
    files: Vec<(PathBuf, Option<(i64, i64)>)>,
    from_us: i64,
    to_us: i64,
    /// In words, for the panorama's row.
    source: String,
}

/// Runs the maker on the blocking pool, keeping the job's stage current;
/// returns the row that records how it ended.
async fn make(
    shared: &Arc<Shared>,
    maker: Arc<dyn PanoramaMaker>,
    job: PanoramaJob,
    id: i64,
    cancel: Arc<AtomicBool>,
) -> PanoramaResult {
    let s2 = shared.clone();
    let result = tokio::task::spawn_blocking(move || {
        maker.make(&job, &cancel, &mut |stage| {
            if let Some(j) = crate::sync::lock(&s2.panorama_jobs).get_mut(&id) {
                j.1 = stage.to_string();
            }
        })
    })
    .await;
    let cancelled = crate::sync::lock(&shared.panorama_jobs)
        .remove(&id)
        .is_some_and(|(c, _)| c.load(Ordering::Acquire));
    let data = &shared.config.data_dir;
    let rel = |p: &std::path::Path| {
        p.strip_prefix(data)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    match result {
        Ok(Ok(r)) => PanoramaResult {
            status: PanoramaStatus::Complete,
            message: format!(
                "{} of {} frames chosen ({} blurred and {} near-duplicates skipped), {} kept by the stitcher",
                r.frames_chosen, r.frames_seen, r.blurred, r.duplicates, r.frames_used
            ),
            path: rel(&r.out),
            thumb_path: rel(&r.thumb),
            frames_seen: r.frames_seen as i64,
            frames_used: r.frames_used as i64,
            width: i64::from(r.width),
            height: i64::from(r.height),
            stitch_ms: r.stitch_ms as i64,
        },
        Ok(Err(f)) => PanoramaResult {
            status: if cancelled {
                PanoramaStatus::Cancelled
            } else {
                PanoramaStatus::Failed
            },
            message: if shared.shutdown.is_cancelled() {
                "the panel closed first".into()
            } else if cancelled {
                "from the window".into()
            } else {
                f.message
            },
            path: rel(&f.samples),
            frames_seen: f.frames_seen as i64,
            frames_used: f.frames_chosen as i64,
            stitch_ms: f.stitch_ms as i64,
            ..Default::default()
        },
        Err(e) => PanoramaResult {
            status: PanoramaStatus::Failed,
            message: format!("the panorama job failed: {e}"),
            ..Default::default()
        },
    }
}
