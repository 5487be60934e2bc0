//! Import of a verified export into a panel's own catalog, so a second panel
//! (the archive) can browse dispatched evidence in its history. Only files
//! the manifest lists are written, each under the recordings directory at a
//! path that was checked to stay inside it, each re-hashed as it is copied.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::{Manifest, safe_recording_path};
use super::verify::read_manifest;
use crate::catalog::{
    CameraSettings, Catalog, EventKind, NewRecording, RecordMode, RecordingStatus,
};
use crate::time::now_us;

/// Copies the manifest's files out of the zip into `recordings_dir`;
/// returns the manifest and the (manifest entry index, relative path) of
/// each file now in place. Nothing outside `recordings_dir` is written.
fn extract(
    zip_path: &Path,
    recordings_dir: &Path,
) -> Result<(Manifest, Vec<(usize, String)>), String> {
    let name = zip_path.display().to_string();
    let file = File::open(zip_path).map_err(|e| format!("cannot open {name}: {e}"))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("{name} is not a zip: {e}"))?;
    let manifest = read_manifest(&mut zip, &name).map_err(|e| e.to_string())?;
    let mut placed = Vec::new();
    for (i, entry) in manifest.files.iter().enumerate() {
        let rel = safe_recording_path(&entry.path)?.to_string();
        let dest = recordings_dir.join(&rel);
        if !dest.exists() {
            let mut src = zip
                .by_name(&entry.path)
                .map_err(|_| format!("{} is listed but not in the zip", entry.path))?;
            let dir = dest
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let tmp = dest.with_extension("mkv.importing");
            let copied = (|| -> io::Result<String> {
                let mut out = File::create(&tmp)?;
                let mut h = Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = src.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    out.write_all(&buf[..n])?;
                }
                out.sync_all()?;
                Ok(hex::encode(h.finalize()))
            })();
            match copied {
                Ok(sha) if sha.eq_ignore_ascii_case(&entry.sha256) => {
                    std::fs::rename(&tmp, &dest).map_err(|e| format!("cannot place {rel}: {e}"))?;
                }
                Ok(_) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(format!(
                        "{} does not match its SHA-256 in the manifest",
                        entry.path
                    ));
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(format!("cannot extract {}: {e}", entry.path));
                }
            }
        }
        placed.push((i, rel));
    }
    Ok((manifest, placed))
}

/// Imports an export into `catalog`; returns how many recordings are new.
pub async fn import(
    catalog: &Catalog,
    recordings_dir: &Path,
    zip_path: &Path,
) -> Result<u64, String> {
    let (zp, rd) = (zip_path.to_path_buf(), recordings_dir.to_path_buf());
    let (manifest, placed) = tokio::task::spawn_blocking(move || extract(&zp, &rd))
        .await
        .map_err(|e| e.to_string())??;
    let db = |e: crate::catalog::CatalogError| e.to_string();
    let origin = format!(
        "imported from {} ({})",
        manifest.panel.name,
        zip_path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("export")
    );
    let now = now_us();
    for c in &manifest.cameras {
        if cctv_protocol::validate_camera_id(&c.id).is_err() {
            return Err(format!("camera id {:?} in the manifest is not valid", c.id));
        }
        if catalog.camera(&c.id).await.map_err(db)?.is_none() {
            let settings = CameraSettings {
                id: c.id.clone(),
                name: c.name.chars().take(cctv_protocol::MAX_NAME_LEN).collect(),
                address: origin.clone(),
                agent_version: String::new(),
                width: 0,
                height: 0,
                fps_milli: 0,
            };
            catalog
                .register_camera(&settings, RecordMode::Off, now)
                .await
                .map_err(db)?;
        }
    }
    let mut new = 0;
    for (i, rel) in placed {
        let f = &manifest.files[i];
        if catalog.recording_by_path(&rel).await.map_err(db)?.is_some() {
            continue;
        }
        if catalog.camera(&f.camera_id).await.map_err(db)?.is_none() {
            return Err(format!(
                "{} belongs to camera {} the manifest does not list",
                f.path, f.camera_id
            ));
        }
        let id = catalog
            .insert_recording(&NewRecording {
                camera_id: f.camera_id.clone(),
                path: rel,
                start_us: f.start_us,
                width: f.width.clamp(0, i64::from(u32::MAX)) as u32,
                height: f.height.clamp(0, i64::from(u32::MAX)) as u32,
            })
            .await
            .map_err(db)?;
        let status = if f.status == "interrupted" {
            RecordingStatus::Interrupted
        } else {
            RecordingStatus::Complete
        };
        catalog
            .finish_recording(id, f.end_us, f.frames, f.bytes, status, &origin)
            .await
            .map_err(db)?;
        new += 1;
    }
    for e in &manifest.events {
        let kind = match e.kind.as_str() {
            "live" => EventKind::Live,
            "stalled" => EventKind::Stalled,
            "offline" => EventKind::Offline,
            "recording_error" => EventKind::RecordingError,
            "disk_full" => EventKind::DiskFull,
            _ => continue,
        };
        if manifest.cameras.iter().any(|c| c.id == e.camera_id)
            && !catalog
                .has_event(&e.camera_id, kind, e.at_us)
                .await
                .map_err(db)?
        {
            catalog
                .add_event(&e.camera_id, kind, e.at_us, &e.detail)
                .await
                .map_err(db)?;
        }
    }
    Ok(new)
}
