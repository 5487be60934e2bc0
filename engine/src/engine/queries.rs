//! What a client of the engine reads: pages of history, a recording's frame
//! index and its frames, exports and their checks, refused connections, panorama
//! images. The window asks these of the engine instead of holding a catalog
//! or reading recording files itself. File work runs on the blocking pool.

use std::path::Path;
use std::sync::Arc;

pub use cctv_mkv::scan::{FrameRef, Scan as RecordingIndex};

use super::{Engine, EngineError};
use crate::catalog::{
    AuthFailureRow, CameraRow, DispatchRow, EventFilter, EventRow, ExportRow, ExportStatus,
    PanoramaRow, RecordingFilter, RecordingRow,
};
use crate::evidence::verify::{self, Report as VerifyReport};

/// A page of the history: recordings newest first, `page_size` a page.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    pub camera: Option<String>,
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    pub page: i64,
    pub page_size: i64,
    /// Only recordings during which the camera saw motion.
    pub with_motion: bool,
}

impl HistoryQuery {
    /// Recordings a page unless asked otherwise.
    pub const PAGE: i64 = 25;
}

impl Default for HistoryQuery {
    fn default() -> Self {
        Self {
            camera: None,
            from_us: None,
            to_us: None,
            page: 0,
            page_size: Self::PAGE,
            with_motion: false,
        }
    }
}

/// The recordings of a page, the camera events over the time it covers
/// (so that gaps between recordings are explained), and the motion and
/// tamper spans over it (for the timeline).
#[derive(Debug, Clone)]
pub struct History {
    pub recordings: Vec<RecordingRow>,
    pub events: Vec<EventRow>,
    pub spans: Vec<EventRow>,
}

/// Most rows of each kind a timeline reads (a day of 10-minute segments is 144).
const TIMELINE_ROWS: i64 = 5000;

impl Engine {
    pub async fn history(&self, query: &HistoryQuery) -> Result<History, EngineError> {
        let catalog = &self.shared.catalog;
        let recordings = catalog
            .recordings(&RecordingFilter {
                camera_id: query.camera.clone(),
                from_us: query.from_us,
                to_us: query.to_us,
                limit: Some(query.page_size),
                offset: query.page * query.page_size,
                with_motion: query.with_motion,
            })
            .await?;
        let (from, to) = if recordings.is_empty() {
            (query.from_us, query.to_us)
        } else {
            let from = recordings.iter().map(|r| r.start_us).min();
            let to = (query.page > 0 || query.to_us.is_some())
                .then(|| recordings.iter().map(|r| r.end_us).max().unwrap_or(0) + 1)
                .map(|t| query.to_us.map_or(t, |q| t.min(q)));
            (from, to)
        };
        let from = match (from, query.from_us) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let events = catalog
            .events(query.camera.as_deref(), from, to, 200, 0)
            .await?
            .into_iter()
            .filter(|e| e.kind.explains_gaps())
            .collect();
        let spans = catalog
            .spans_overlapping(query.camera.as_deref(), from, to, 1000)
            .await?;
        Ok(History {
            recordings: self.as_they_are_now(recordings).await,
            events,
            spans,
        })
    }

    /// Recordings being written, with their size on disk and their newest
    /// frame now (the catalog learns them every few seconds).
    async fn as_they_are_now(&self, mut rows: Vec<RecordingRow>) -> Vec<RecordingRow> {
        let root = self.shared.config.recordings_dir.clone();
        for r in rows
            .iter_mut()
            .filter(|r| r.status == crate::catalog::RecordingStatus::Recording)
        {
            let path = root.join(&r.path);
            if let Ok(Ok(m)) = tokio::task::spawn_blocking(move || std::fs::metadata(path)).await {
                r.bytes = r.bytes.max(m.len() as i64);
            }
            if let Some(last) = self.camera(&r.camera_id).and_then(|c| c.last_frame_us) {
                r.end_us = r.end_us.max(last);
            }
        }
        rows
    }

    /// One camera's footage over `[from_us, to_us]`, for a timeline: every
    /// recording overlapping it and the events that explain what lies
    /// between them (with the last one before the range: the camera's
    /// state as it begins), oldest first; motion and tamper spans.
    pub async fn timeline(
        &self,
        camera: &str,
        from_us: i64,
        to_us: i64,
    ) -> Result<History, EngineError> {
        let catalog = &self.shared.catalog;
        let mut recordings = catalog
            .recordings(&RecordingFilter {
                camera_id: Some(camera.to_string()),
                from_us: Some(from_us),
                to_us: Some(to_us),
                limit: Some(TIMELINE_ROWS),
                ..Default::default()
            })
            .await?;
        recordings.reverse();
        let gap_kinds = |e: &EventRow| e.kind.explains_gaps() || e.kind.is_recording_switch();
        let mut events: Vec<EventRow> = catalog
            .events(Some(camera), Some(from_us), Some(to_us), TIMELINE_ROWS, 0)
            .await?
            .into_iter()
            .filter(gap_kinds)
            .collect();
        let before = catalog
            .find_events(&EventFilter {
                camera_id: Some(camera.to_string()),
                to_us: Some(from_us),
                limit: 50,
                ..Default::default()
            })
            .await?;
        events.extend(before.into_iter().find(gap_kinds));
        events.reverse();
        let spans = catalog
            .spans_overlapping(Some(camera), Some(from_us), Some(to_us), TIMELINE_ROWS)
            .await?;
        Ok(History {
            recordings: self.as_they_are_now(recordings).await,
            events,
            spans,
        })
    }

    /// The small JPEG of a motion or tamper event's peak frame.
    pub async fn event_thumbnail(&self, id: i64) -> Result<Vec<u8>, EngineError> {
        self.shared
            .catalog
            .event_thumbnail(id)
            .await?
            .ok_or(EngineError::NoThumbnail(id))
    }

    /// The index of every frame of a recording, for playback.
    pub async fn open_recording(
        &self,
        row: &RecordingRow,
    ) -> Result<Arc<RecordingIndex>, EngineError> {
        let path = self.recording_path(row).await?;
        let index = blocking(move || {
            let scan = cctv_mkv::scan::scan(&path).map_err(|source| EngineError::Scan {
                path: path.display().to_string(),
                source,
            })?;
            if scan.frames.is_empty() {
                return Err(EngineError::NoFrames(path.display().to_string()));
            }
            Ok(scan)
        })
        .await?;
        Ok(Arc::new(index))
    }

    /// One frame of a recording, the JPEG exactly as recorded.
    pub async fn recording_frame(
        &self,
        row: &RecordingRow,
        frame: FrameRef,
    ) -> Result<Vec<u8>, EngineError> {
        let path = self.recording_path(row).await?;
        blocking(move || read_frame(&path, &frame)).await
    }

    /// Packets of a recording's sound (from its index), each with its
    /// capture time, read in one go.
    pub async fn recording_sound(
        &self,
        row: &RecordingRow,
        packets: Vec<(i64, FrameRef)>,
    ) -> Result<Vec<(i64, Vec<u8>)>, EngineError> {
        let path = self.recording_path(row).await?;
        blocking(move || {
            let file_error = |source| EngineError::File {
                path: path.display().to_string(),
                source,
            };
            let mut f = std::fs::File::open(&path).map_err(file_error)?;
            packets
                .into_iter()
                .map(|(at, p)| {
                    Ok((
                        at,
                        cctv_mkv::scan::read_frame(&mut f, &p).map_err(file_error)?,
                    ))
                })
                .collect()
        })
        .await
    }

    /// A recording's first frame (for its thumbnail).
    pub async fn first_frame(&self, row: &RecordingRow) -> Result<Vec<u8>, EngineError> {
        let index = self.open_recording(row).await?;
        let first = index.frames[0];
        self.recording_frame(row, first).await
    }

    pub async fn exports(&self, limit: i64) -> Result<Vec<ExportRow>, EngineError> {
        Ok(self.shared.catalog.exports(limit).await?)
    }

    pub async fn dispatches(&self, limit: i64) -> Result<Vec<DispatchRow>, EngineError> {
        Ok(self.shared.catalog.dispatches(limit).await?)
    }

    /// The newest export that finished, if any.
    pub async fn latest_complete_export(&self) -> Result<Option<ExportRow>, EngineError> {
        Ok(self
            .shared
            .catalog
            .exports(20)
            .await?
            .into_iter()
            .find(|e| e.status == ExportStatus::Complete))
    }

    /// Re-hashes an export against its manifest.
    pub async fn verify_export(&self, export: &ExportRow) -> Result<VerifyReport, EngineError> {
        let path = self.shared.config.data_dir.join(&export.path);
        blocking(move || verify::verify(&path).map_err(EngineError::from)).await
    }

    /// Every camera's row: its settings as saved (name, recording mode,
    /// retention limits).
    pub async fn camera_rows(&self) -> Result<Vec<CameraRow>, EngineError> {
        Ok(self.shared.catalog.cameras().await?)
    }

    /// The wall's order of cameras as last saved (ids; cameras not in it
    /// go after). Empty when never saved.
    pub async fn wall_layout(&self) -> Result<Vec<String>, EngineError> {
        let saved = self.shared.catalog.setting("wall_layout").await?;
        Ok(saved
            .unwrap_or_default()
            .split(',')
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Keeps the wall's order of cameras across restarts.
    pub async fn set_wall_layout(&self, ids: &[String]) -> Result<(), EngineError> {
        // Camera ids hold no commas (`validate_camera_id`).
        Ok(self
            .shared
            .catalog
            .set_setting("wall_layout", &ids.join(","))
            .await?)
    }

    /// The newest refused connections.
    pub async fn refused(&self, limit: i64) -> Result<Vec<AuthFailureRow>, EngineError> {
        Ok(self.shared.catalog.auth_failures(limit).await?)
    }

    /// Bytes of every recording in the catalog, those being written
    /// counted as they are on disk now.
    pub async fn recorded_bytes(&self) -> Result<i64, EngineError> {
        let (done, open) = self.shared.catalog.recorded_bytes_and_open().await?;
        let root = self.shared.config.recordings_dir.clone();
        let open = tokio::task::spawn_blocking(move || {
            open.iter()
                .filter_map(|p| std::fs::metadata(root.join(p)).ok())
                .map(|m| m.len() as i64)
                .sum::<i64>()
        })
        .await
        .unwrap_or(0);
        Ok(done + open)
    }

    /// A finished panorama's image, or its thumbnail (JPEG bytes).
    pub async fn panorama_image(
        &self,
        row: &PanoramaRow,
        thumbnail: bool,
    ) -> Result<Vec<u8>, EngineError> {
        let rel = if thumbnail {
            &row.thumb_path
        } else {
            &row.path
        };
        let path = self.shared.config.data_dir.join(rel);
        blocking(move || {
            std::fs::read(&path).map_err(|source| EngineError::File {
                path: path.display().to_string(),
                source,
            })
        })
        .await
    }
}

fn read_frame(path: &Path, frame: &FrameRef) -> Result<Vec<u8>, EngineError> {
    let file_error = |source| EngineError::File {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(file_error)?;
    cctv_mkv::scan::read_frame(&mut f, frame).map_err(file_error)
}

/// Runs file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f).await?
}
