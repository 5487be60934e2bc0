//! Start-up repair: segments a crash left `recording` are made playable to
//! their last whole frame, get their true end time and frame count, and are
//! marked `interrupted`.

use std::path::Path;

use tracing::{info, warn};

use crate::catalog::{Catalog, CatalogError, RecordingRow, RecordingStatus};
use cctv_mkv::scan::{ScanError, repair};

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
