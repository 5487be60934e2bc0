//! Start-up repair: segments a crash left `recording` are made playable to
//! their last whole frame, get their true end time and frame count, and are
//! marked `interrupted`. Segment files with no row at all (the panel
//! stopped while the catalog was not taking writes) are adopted the same way.

use std::path::Path;

use tracing::{info, warn};

use crate::catalog::{
    Catalog, CatalogError, Finished, NewRecording, RecordingRow, RecordingStatus,
};
use cctv_mkv::scan::{ScanError, repair, scan};

const DAY_US: i64 = 86_400_000_000;

/// One repaired segment.
#[derive(Debug, Clone)]
pub struct Repaired {
    pub row: RecordingRow,
    pub frames: u64,
    pub end_us: i64,
    pub detail: String,
}

pub async fn repair_open_segments(
    catalog: &Catalog,
    root: &Path,
) -> Result<Vec<Repaired>, CatalogError> {
    let mut out = Vec::new();
    for row in catalog.open_recordings().await? {
        let path = root.join(&row.path);
        let result = tokio::task::spawn_blocking(move || repair(&path)).await;
        let (frames, end_us, bytes, detail) = match result {
            Ok(Ok(s)) => (
                s.frames,
                if s.frames > 0 {
                    s.last_us
                } else {
                    row.start_us
                },
                s.bytes,
                "the panel stopped unexpectedly; repaired to the last whole frame".to_string(),
            ),
            Ok(Err(ScanError::Io { source, .. }))
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                (
                    0,
                    row.start_us,
                    0,
                    "the panel stopped before the file was created".to_string(),
                )
            }
            Ok(Err(e)) => (0, row.start_us, 0, format!("cannot repair: {e}")),
            Err(e) => (0, row.start_us, 0, format!("cannot repair: {e}")),
        };
        catalog
            .finish_recording(
                row.id,
                end_us,
                frames as i64,
                bytes as i64,
                RecordingStatus::Interrupted,
                &detail,
            )
            .await?;
        if frames > 0 {
            info!(camera = %row.camera_id, path = %row.path, frames, "repaired an interrupted recording");
        } else {
            warn!(camera = %row.camera_id, path = %row.path, "{detail}");
        }
        out.push(Repaired {
            row,
            frames,
            end_us,
            detail,
        });
    }
    Ok(out)
}

/// Finds segment files of known cameras that have no catalog row, from the
/// day of each camera's newest row on, makes them playable and gives each
/// an `interrupted` row saying it was adopted.
pub async fn adopt_orphans(catalog: &Catalog, root: &Path) -> Result<Vec<Repaired>, CatalogError> {
    let mut out = Vec::new();
    for camera in catalog.cameras().await? {
        let newest = catalog.newest_recording_start(&camera.id).await?;
        let from_day = newest.map(|us| crate::time::utc_day_and_stamp(us).0);
        // The rows of those days, read once: one query per camera, not per file.
        let day_start = newest.map_or(i64::MIN, |us| us - us.rem_euclid(DAY_US));
        let listed = catalog.recording_paths_since(&camera.id, day_start).await?;
        for rel in files_from_day(root, &camera.id, from_day.as_deref()) {
            if listed.contains(&rel) {
                continue;
            }
            let path = root.join(&rel);
            let found = tokio::task::spawn_blocking(move || {
                let s = scan(&path)?;
                Ok::<_, ScanError>((repair(&path)?, s.width, s.height))
            })
            .await;
            let Ok(Ok((summary, width, height))) = found else {
                warn!(camera = %camera.id, path = %rel, "a segment file without a catalog row cannot be read; left alone");
                continue;
            };
            let detail = "found without its catalog row (the catalog was not taking writes when the panel stopped); adopted".to_string();
            let end_us = summary.last_us.max(summary.first_us);
            let (frames, bytes) = (summary.frames as i64, summary.bytes as i64);
            let id = catalog
                .insert_finished_recording(
                    &NewRecording {
                        camera_id: camera.id.clone(),
                        path: rel.clone(),
                        start_us: summary.first_us,
                        width,
                        height,
                        backfilled: false,
                    },
                    &Finished {
                        end_us,
                        frames,
                        bytes,
                        status: RecordingStatus::Interrupted,
                        detail: &detail,
                    },
                )
                .await?;
            info!(camera = %camera.id, path = %rel, frames, "adopted a recording the catalog had not heard of");
            if let Some(row) = catalog.recording(id).await? {
                out.push(Repaired {
                    row,
                    frames: summary.frames,
                    end_us,
                    detail,
                });
            }
        }
    }
    Ok(out)
}

/// `<camera>/<day>/*.mkv` under `root`, relative to it, for days from
/// `from_day` (`YYYY-MM-DD`) on, or every day.
fn files_from_day(root: &Path, camera: &str, from_day: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(days) = std::fs::read_dir(root.join(camera)) else {
        return out;
    };
    for day in days.flatten() {
        let day = day.file_name().to_string_lossy().into_owned();
        if from_day.is_some_and(|from| day.as_str() < from) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(root.join(camera).join(&day)) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".mkv") && f.file_type().is_ok_and(|t| t.is_file()) {
                out.push(format!("{camera}/{day}/{name}"));
            }
        }
    }
    out.sort();
    out
}
