//! Import of a verified export into a panel's own catalog, so a second panel
//! (the archive) can browse dispatched evidence in its history. Only files
//! the manifest lists are written, each under the recordings directory at a
//! path that was checked to stay inside it, each re-hashed as it is copied.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::{FileEntry, Manifest, UnsafePath, safe_recording_path};
use super::verify::{VerifyError, read_manifest};
use crate::catalog::{
    CameraSettings, Catalog, CatalogError, EventKind, NewRecording, RecordMode, RecordingStatus,
};
use crate::time::now_us;

/// Why an export could not be imported. Files already placed stay (they
/// were checked against the manifest); the catalog is only written for
/// what is in place.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path} is not a zip: {source}")]
    NotZip {
        path: PathBuf,
        source: zip::result::ZipError,
    },
    #[error(transparent)]
    Manifest(#[from] VerifyError),
    #[error(transparent)]
    Path(#[from] UnsafePath),
    #[error("{0} is listed but not in the zip")]
    Missing(String),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("{0} does not match its SHA-256 in the manifest")]
    Mismatch(String),
    #[error("camera id {0:?} in the manifest is not valid")]
    CameraId(String),
    #[error("{path} belongs to camera {camera} the manifest does not list")]
    Unlisted { path: String, camera: String },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("the import stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Copies the manifest's files out of the zip into `recordings_dir`;
/// returns the manifest and the (manifest entry index, relative path) of
/// each file now in place. Nothing outside `recordings_dir` is written.
fn extract(
    zip_path: &Path,
    recordings_dir: &Path,
) -> Result<(Manifest, Vec<(usize, String)>), ImportError> {
    let file = File::open(zip_path).map_err(|source| ImportError::Open {
        path: zip_path.to_path_buf(),
        source,
    })?;
    let mut zip = zip::ZipArchive::new(file).map_err(|source| ImportError::NotZip {
        path: zip_path.to_path_buf(),
        source,
    })?;
    let manifest = read_manifest(&mut zip, &zip_path.display().to_string())?;
    let mut placed = Vec::new();
    for (i, entry) in manifest.files.iter().enumerate() {
        let rel = safe_recording_path(&entry.path)?.to_string();
        let dest = recordings_dir.join(&rel);
        if !dest.exists() {
            let src = zip
                .by_name(&entry.path)
                .map_err(|_| ImportError::Missing(entry.path.clone()))?;
            place(src, &dest, entry)?;
        }
        placed.push((i, rel));
    }
    Ok((manifest, placed))
}

/// Copies one file to `dest` through a temporary name, hashing it; it is
/// renamed into place only if it matches the manifest.
fn place(mut src: impl Read, dest: &Path, entry: &FileEntry) -> Result<(), ImportError> {
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Write { path, source }
    };
    let dir = dest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).map_err(write_error(&dir))?;
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
    let outcome = match copied {
        Ok(sha) if sha.eq_ignore_ascii_case(&entry.sha256) => {
            return std::fs::rename(&tmp, dest).map_err(write_error(dest));
        }
        Ok(_) => ImportError::Mismatch(entry.path.clone()),
        Err(e) => write_error(&tmp)(e),
    };
    let _ = std::fs::remove_file(&tmp);
    Err(outcome)
}

/// Imports an export into `catalog`; returns how many recordings are new.
pub async fn import(
    catalog: &Catalog,
    recordings_dir: &Path,
    zip_path: &Path,
) -> Result<u64, ImportError> {
    let (zp, rd) = (zip_path.to_path_buf(), recordings_dir.to_path_buf());
    let (manifest, placed) = tokio::task::spawn_blocking(move || extract(&zp, &rd)).await??;
    let origin = format!(
        "imported from {} ({})",
        cctv_protocol::printable(&manifest.panel.name),
        zip_path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("export")
    );
    add_cameras(catalog, &manifest, &origin).await?;
    let new = add_recordings(catalog, &manifest, placed, &origin).await?;
    add_events(catalog, &manifest).await?;
    Ok(new)
}

/// The manifest's cameras this catalog does not know yet, not recording.
async fn add_cameras(
    catalog: &Catalog,
    manifest: &Manifest,
    origin: &str,
) -> Result<(), ImportError> {
    for c in &manifest.cameras {
        if cctv_protocol::validate_camera_id(&c.id).is_err() {
            return Err(ImportError::CameraId(c.id.clone()));
        }
        if catalog.camera(&c.id).await?.is_none() {
            let settings = CameraSettings {
                id: c.id.clone(),
                name: cctv_protocol::printable(&c.name)
                    .chars()
                    .take(cctv_protocol::MAX_NAME_LEN)
                    .collect(),
                address: origin.to_string(),
                agent_version: String::new(),
                width: 0,
                height: 0,
                fps_milli: 0,
            };
            catalog
                .register_camera(&settings, RecordMode::Off, now_us())
                .await?;
        }
    }
    Ok(())
}

/// A catalog row for each placed file not already listed; how many.
async fn add_recordings(
    catalog: &Catalog,
    manifest: &Manifest,
    placed: Vec<(usize, String)>,
    origin: &str,
) -> Result<u64, ImportError> {
    let mut new = 0;
    for (i, rel) in placed {
        let f = &manifest.files[i];
        if catalog.recording_by_path(&rel).await?.is_some() {
            continue;
        }
        if catalog.camera(&f.camera_id).await?.is_none() {
            return Err(ImportError::Unlisted {
                path: f.path.clone(),
                camera: f.camera_id.clone(),
            });
        }
        let id = catalog
            .insert_recording(&NewRecording {
                camera_id: f.camera_id.clone(),
                path: rel,
                start_us: f.start_us,
                width: f.width.clamp(0, i64::from(u32::MAX)) as u32,
                height: f.height.clamp(0, i64::from(u32::MAX)) as u32,
                backfilled: false,
            })
            .await?;
        let status = if f.status == "interrupted" {
            RecordingStatus::Interrupted
        } else {
            RecordingStatus::Complete
        };
        catalog
            .finish_recording(id, f.end_us, f.frames, f.bytes, status, origin)
            .await?;
        new += 1;
    }
    Ok(new)
}

/// The manifest's events of its cameras that the catalog lacks.
async fn add_events(catalog: &Catalog, manifest: &Manifest) -> Result<(), ImportError> {
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
            && !catalog.has_event(&e.camera_id, kind, e.at_us).await?
        {
            let detail = cctv_protocol::printable(&e.detail);
            catalog
                .add_event(&e.camera_id, kind, e.at_us, &detail)
                .await?;
        }
    }
    Ok(())
}
