//! Retention: deletes the oldest finished segments (file, then row) until
//! every per-camera and global limit in bytes and days holds. Segments being
//! written are never touched.

use std::path::Path;

use tracing::{info, warn};

use crate::catalog::{Catalog, CatalogError, RecordingRow};

/// Limits; `None` means no limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub max_bytes: Option<i64>,
    pub max_days: Option<i64>,
}

#[derive(Debug, Default, Clone)]
pub struct RetentionReport {
    pub deleted: Vec<RecordingRow>,
    pub freed_bytes: i64,
}

const DAY_US: i64 = 86_400 * 1_000_000;

pub async fn enforce(
    catalog: &Catalog,
    root: &Path,
    global: Limits,
    now_us: i64,
) -> Result<RetentionReport, CatalogError> {
    let mut report = RetentionReport::default();
    for cam in catalog.cameras().await? {
        let limits = Limits {
            max_bytes: cam.retain_bytes,
            max_days: cam.retain_days,
        };
        if limits.max_bytes.is_some() || limits.max_days.is_some() {
            trim(catalog, root, Some(&cam.id), limits, now_us, &mut report).await?;
        }
    }
    if global.max_bytes.is_some() || global.max_days.is_some() {
        trim(catalog, root, None, global, now_us, &mut report).await?;
    }
    if !report.deleted.is_empty() {
        info!(
            segments = report.deleted.len(),
            freed_bytes = report.freed_bytes,
            "retention deleted the oldest recordings"
        );
    }
    Ok(report)
}

async fn trim(
    catalog: &Catalog,
    root: &Path,
    camera: Option<&str>,
    limits: Limits,
    now_us: i64,
    report: &mut RetentionReport,
) -> Result<(), CatalogError> {
    let mut total = catalog.recorded_bytes(camera).await?;
    for row in catalog.finished_oldest_first(camera).await? {
        let too_old = limits
            .max_days
            .is_some_and(|d| row.end_us < now_us - d * DAY_US);
        let too_big = limits.max_bytes.is_some_and(|b| total > b);
        if !too_old && !too_big {
            break;
        }
        let path = root.join(&row.path);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                warn!(path = %path.display(), "retention cannot delete: {e}");
                continue;
            }
        }
        catalog.delete_recording(row.id).await?;
        // Remove the day directory once it is empty; ignore failure.
        if let Some(day) = path.parent() {
            let _ = tokio::fs::remove_dir(day).await;
        }
        total -= row.bytes;
        report.freed_bytes += row.bytes;
        report.deleted.push(row);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{CameraSettings, NewRecording, RecordMode, RecordingStatus};

    #[tokio::test]
    async fn a_day_limit_deletes_what_is_older() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open_in_memory().await.unwrap();
        let now = 100 * DAY_US;
        let cam = CameraSettings {
            id: "gate".into(),
            name: "Gate".into(),
            address: String::new(),
            agent_version: String::new(),
            width: 1,
            height: 1,
            fps_milli: 1,
        };
        catalog
            .register_camera(&cam, RecordMode::Continuous, now)
            .await
            .unwrap();
        let mut ids = Vec::new();
        for age_days in [30, 8, 6, 1] {
            let start = now - age_days * DAY_US;
            let path = format!("gate/{age_days}.mkv");
            std::fs::create_dir_all(dir.path().join("gate")).unwrap();
            std::fs::write(dir.path().join(&path), b"x").unwrap();
            let id = catalog
                .insert_recording(&NewRecording {
                    camera_id: "gate".into(),
                    path,
                    start_us: start,
                    width: 1,
                    height: 1,
                    backfilled: false,
                })
                .await
                .unwrap();
            catalog
                .finish_recording(id, start + 600_000_000, 1, 1, RecordingStatus::Complete, "")
                .await
                .unwrap();
            ids.push(id);
        }
        let limits = Limits {
            max_bytes: None,
            max_days: Some(7),
        };
        let report = enforce(&catalog, dir.path(), limits, now).await.unwrap();
        let deleted: Vec<i64> = report.deleted.iter().map(|r| r.id).collect();
        assert_eq!(deleted, ids[..2].to_vec());
        assert!(!dir.path().join("gate/30.mkv").exists());
        assert!(dir.path().join("gate/6.mkv").exists());
    }
}
