//! Export: recordings packed, unchanged, into one zip with a manifest of
//! SHA-256 hashes. Streams file by file in 1 MiB chunks (memory stays flat
//! for any size), reports progress, can be cancelled (the partial zip is
//! removed), and logs every export in the catalog.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::info;
use zip::write::SimpleFileOptions;

use super::manifest::*;
use crate::catalog::{
    Catalog, CatalogError, ExportRow, ExportStatus, RecordingFilter, RecordingRow, RecordingStatus,
};
use crate::time::{now_us, utc_day_and_stamp};

const CHUNK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("nothing to export: no finished recordings match")]
    Nothing,
    #[error("the range ends before it starts")]
    BadRange,
    #[error("export cancelled; no file was kept")]
    Cancelled,
    #[error("cannot write the export {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("recording {path} cannot be read: {source}")]
    Recording { path: String, source: io::Error },
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// How far an export has got.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub done_bytes: u64,
    pub total_bytes: u64,
    pub file: String,
}

/// Where exports read from and write to, and who the panel is.
#[derive(Debug, Clone)]
pub struct Places {
    pub panel_name: String,
    pub data_dir: PathBuf,
    pub recordings_dir: PathBuf,
}

/// Finished recordings (not the ones being written) of a camera in a range,
/// oldest first.
pub async fn select(
    catalog: &Catalog,
    camera: Option<&str>,
    from_us: Option<i64>,
    to_us: Option<i64>,
) -> Result<Vec<RecordingRow>, CatalogError> {
    let mut rows = catalog
        .recordings(&RecordingFilter {
            camera_id: camera.map(str::to_string),
            from_us,
            to_us,
            ..Default::default()
        })
        .await?;
    rows.retain(|r| r.status != RecordingStatus::Recording);
    rows.reverse();
    Ok(rows)
}

fn hex_sha(h: Sha256) -> String {
    hex::encode(h.finalize())
}

/// SHA-256 of a whole file, streamed.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hex_sha(h));
        }
        h.update(&buf[..n]);
    }
}

/// [`sha256_file`] on the blocking pool, for async callers.
pub async fn sha256_off_thread(path: &Path) -> Result<String, ExportError> {
    let p = path.to_path_buf();
    let io_error = |source| ExportError::Io {
        path: path.display().to_string(),
        source,
    };
    tokio::task::spawn_blocking(move || sha256_file(&p))
        .await
        .map_err(|e| io_error(io::Error::other(e)))?
        .map_err(io_error)
}

/// An export's name: its cameras (or how many) and its range.
pub(super) fn zip_name(cameras: &[String], from_us: i64, to_us: i64) -> String {
    let cams = if cameras.len() <= 3 {
        cameras.join("+")
    } else {
        format!("{}-cameras", cameras.len())
    };
    let (_, from) = utc_day_and_stamp(from_us);
    let (_, to) = utc_day_and_stamp(to_us);
    format!("{cams}_{from}_{to}")
}

/// Packs `rows` into `<data>/exports/<cameras>_<from>_<to>.zip`.
pub async fn export(
    catalog: &Catalog,
    places: &Places,
    rows: Vec<RecordingRow>,
    progress: Option<watch::Sender<Progress>>,
    cancel: CancellationToken,
) -> Result<ExportRow, ExportError> {
    if rows.is_empty() {
        return Err(ExportError::Nothing);
    }
    let created_us = now_us();
    let manifest = manifest_for(catalog, places, &rows, created_us).await?;
    let camera_ids: Vec<String> = manifest.cameras.iter().map(|c| c.id.clone()).collect();
    let (from_us, to_us) = (manifest.from_us, manifest.to_us);
    let dir = places.data_dir.join("exports");
    let base = zip_name(&camera_ids, from_us, to_us);
    let items = rows
        .iter()
        .map(|r| Item::recording(&places.recordings_dir, r))
        .collect();
    let outcome = off_thread(cancel, move |cancelled| {
        write_zip(&dir, &base, items, manifest, progress, cancelled)
    })
    .await;
    finish(catalog, places, created_us, &camera_ids, outcome).await
}

/// Logs an export that was written (or why not) in the catalog; its row.
pub(super) async fn finish(
    catalog: &Catalog,
    places: &Places,
    created_us: i64,
    camera_ids: &[String],
    outcome: Result<Written, ExportError>,
) -> Result<ExportRow, ExportError> {
    let cams = camera_ids.join(",");
    let written = match outcome {
        Ok(w) => w,
        Err(e) => {
            let status = match e {
                ExportError::Cancelled => ExportStatus::Cancelled,
                _ => ExportStatus::Failed,
            };
            catalog
                .log_failed_export(created_us, &cams, status, &e.to_string())
                .await?;
            return Err(e);
        }
    };
    let path = &written.path;
    let rel = path
        .strip_prefix(&places.data_dir)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned();
    let (files, bytes, sha) = (written.files, written.bytes, &written.sha256);
    let (from_us, to_us) = (written.from_us, written.to_us);
    let id = catalog
        .insert_export(&rel, created_us, &cams, from_us, to_us, files, bytes, sha)
        .await?;
    info!(path = %path.display(), files, bytes, sha256 = %sha, "export written");
    catalog.export(id).await?.ok_or(ExportError::Nothing)
}

/// The manifest of `rows`, without its files yet: the cameras (by name),
/// the range, and every event of those cameras in it, with the first one
/// after it (why the last recording ends where it does).
async fn manifest_for(
    catalog: &Catalog,
    places: &Places,
    rows: &[RecordingRow],
    created_us: i64,
) -> Result<Manifest, ExportError> {
    let mut camera_ids: Vec<String> = rows.iter().map(|r| r.camera_id.clone()).collect();
    camera_ids.sort();
    camera_ids.dedup();
    let from_us = rows.iter().map(|r| r.start_us).min().unwrap_or(0);
    let to_us = rows.iter().map(|r| r.end_us).max().unwrap_or(0);
    manifest_over(catalog, places, camera_ids, from_us, to_us, created_us).await
}

/// The manifest of an export of `camera_ids` over a time range, without
/// its files yet.
pub(super) async fn manifest_over(
    catalog: &Catalog,
    places: &Places,
    camera_ids: Vec<String>,
    from_us: i64,
    to_us: i64,
    created_us: i64,
) -> Result<Manifest, ExportError> {
    let mut cameras = Vec::new();
    let mut events = Vec::new();
    for id in camera_ids {
        let name = catalog
            .camera(&id)
            .await?
            .map(|c| c.name)
            .unwrap_or_else(|| id.clone());
        let mut evs = catalog
            .events(Some(&id), Some(from_us), Some(to_us + 1), 10_000, 0)
            .await?;
        evs.reverse();
        evs.extend(catalog.first_event_after(&id, to_us).await?);
        events.extend(evs.into_iter().map(|e| EventEntry {
            camera_id: e.camera_id,
            kind: e.kind.to_string(),
            at_us: e.at_us,
            detail: e.detail,
        }));
        cameras.push(CameraInfo { id, name });
    }
    events.sort_by_key(|e| e.at_us);
    Ok(Manifest {
        format: FORMAT.into(),
        panel: PanelInfo {
            name: places.panel_name.clone(),
            version: concat!("panel ", env!("CARGO_PKG_VERSION")).into(),
        },
        created_us,
        created: chrono::DateTime::from_timestamp_micros(created_us)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default(),
        from_us,
        to_us,
        cameras,
        files: Vec::new(),
        events,
    })
}

/// Runs the blocking `job` on the blocking pool; `cancel` raises the flag
/// it watches.
pub(super) async fn off_thread<T: Send + 'static>(
    cancel: CancellationToken,
    job: impl FnOnce(&AtomicBool) -> Result<T, ExportError> + Send + 'static,
) -> Result<T, ExportError> {
    let cancelled = Arc::new(AtomicBool::new(false));
    let watcher = {
        let flag = cancelled.clone();
        tokio::spawn(async move {
            cancel.cancelled().await;
            flag.store(true, Ordering::Release);
        })
    };
    let done = tokio::task::spawn_blocking(move || job(&cancelled)).await;
    watcher.abort();
    done.map_err(|e| ExportError::Io {
        path: "export".into(),
        source: io::Error::other(e.to_string()),
    })?
}

/// A zip written and in place.
pub(super) struct Written {
    path: PathBuf,
    files: i64,
    bytes: i64,
    sha256: String,
    from_us: i64,
    to_us: i64,
}

/// A file to put in an export: where it is read from, and its manifest
/// entry (path in the zip, times, frames); size and SHA-256 are filled in
/// as it is packed.
pub(super) struct Item {
    pub source: PathBuf,
    pub entry: FileEntry,
}

impl Item {
    /// A recording, unchanged.
    fn recording(recordings_dir: &Path, r: &RecordingRow) -> Self {
        Self {
            source: recordings_dir.join(&r.path),
            entry: FileEntry {
                path: format!("recordings/{}", r.path),
                camera_id: r.camera_id.clone(),
                start_us: r.start_us,
                end_us: r.end_us,
                frames: r.frames,
                bytes: 0,
                sha256: String::new(),
                status: r.status.to_string(),
                width: r.width,
                height: r.height,
                clip_of: Vec::new(),
            },
        }
    }
}

/// The blocking part: writes under a temporary name, then renames.
pub(super) fn write_zip(
    dir: &Path,
    base: &str,
    items: Vec<Item>,
    manifest: Manifest,
    progress: Option<watch::Sender<Progress>>,
    cancelled: &AtomicBool,
) -> Result<Written, ExportError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let final_path = free_name(dir, base);
    let partial = final_path.with_extension("zip.partial");
    let (from_us, to_us) = (manifest.from_us, manifest.to_us);
    let mut packer = Packer {
        total: items
            .iter()
            .map(|i| std::fs::metadata(&i.source).map(|m| m.len()).unwrap_or(0))
            .sum(),
        done: 0,
        progress,
        cancelled,
    };
    let files = items.len() as i64;
    if let Err(e) = packer.pack(&partial, items, manifest) {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    let sha256 = sha256_file(&partial).map_err(io_err(&partial))?;
    let bytes = std::fs::metadata(&partial).map_err(io_err(&partial))?.len() as i64;
    std::fs::rename(&partial, &final_path).map_err(io_err(&final_path))?;
    Ok(Written {
        path: final_path,
        files,
        bytes,
        sha256,
        from_us,
        to_us,
    })
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ExportError {
    let path = path.display().to_string();
    move |source| ExportError::Io { path, source }
}

/// `<base>.zip`, or `<base>-1.zip`, ... if taken.
fn free_name(dir: &Path, base: &str) -> PathBuf {
    (0..)
        .map(|n| match n {
            0 => dir.join(format!("{base}.zip")),
            n => dir.join(format!("{base}-{n}.zip")),
        })
        .find(|p| !p.exists())
        .expect("some name is free")
}

/// Streams files into a zip, hashing and reporting as it goes.
struct Packer<'a> {
    total: u64,
    done: u64,
    progress: Option<watch::Sender<Progress>>,
    cancelled: &'a AtomicBool,
}

impl Packer<'_> {
    /// The files, stored as they are, then the manifest; synced.
    fn pack(
        &mut self,
        partial: &Path,
        items: Vec<Item>,
        mut manifest: Manifest,
    ) -> Result<(), ExportError> {
        let file = File::create(partial).map_err(io_err(partial))?;
        let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(CHUNK, file));
        for item in items {
            manifest.files.push(self.add(&mut zip, item, partial)?);
        }
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| ExportError::Io {
            path: MANIFEST_NAME.into(),
            source: io::Error::other(e),
        })?;
        zip.start_file(
            MANIFEST_NAME,
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated),
        )?;
        zip.write_all(&json).map_err(io_err(partial))?;
        let writer = zip.finish()?;
        let file = writer.into_inner().map_err(|e| ExportError::Io {
            path: partial.display().to_string(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_err(partial))
    }

    /// One file into the zip; its manifest entry.
    fn add(
        &mut self,
        zip: &mut zip::ZipWriter<BufWriter<File>>,
        item: Item,
        partial: &Path,
    ) -> Result<FileEntry, ExportError> {
        let Item { source, mut entry } = item;
        let shown = entry.path.clone();
        let rec_err = |source| ExportError::Recording {
            path: shown.clone(),
            source,
        };
        let mut f = File::open(&source).map_err(rec_err)?;
        let size = f.metadata().map_err(rec_err)?.len();
        let name = entry.path.clone();
        let modified = chrono::DateTime::from_timestamp_micros(entry.start_us)
            .map(|t| t.naive_utc())
            .and_then(|t| zip::DateTime::try_from(t).ok())
            .unwrap_or_default();
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .last_modified_time(modified)
            .large_file(size >= u32::MAX as u64);
        zip.start_file(name.as_str(), options)?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            if self.cancelled.load(Ordering::Acquire) {
                return Err(ExportError::Cancelled);
            }
            let k = f.read(&mut buf).map_err(rec_err)?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            zip.write_all(&buf[..k]).map_err(io_err(partial))?;
            self.done += k as u64;
            if let Some(p) = &self.progress {
                p.send_replace(Progress {
                    done_bytes: self.done,
                    total_bytes: self.total,
                    file: name.clone(),
                });
            }
        }
        entry.bytes = size as i64;
        entry.sha256 = hex_sha(h);
        Ok(entry)
    }
}
