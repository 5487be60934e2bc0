//! One open recording file and its catalog row. File I/O runs on tokio's
//! blocking pool so a slow disk never stalls ingest. The row is inserted
//! before the file exists and is completed only after the file is synced.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::catalog::{Catalog, NewRecording, RecordingStatus};
use crate::time::utc_day_and_stamp;
use cctv_mkv::mux::{MkvMuxer, SegmentInfo, Summary};
use tokio_util::task::TaskTracker;

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("cannot write {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("catalog: {0}")]
    Catalog(#[from] crate::catalog::CatalogError),
}

pub struct Segment {
    pub row_id: i64,
    pub rel_path: String,
    path: PathBuf,
    /// Shared with the periodic sync, which so needs no descriptor of its own.
    file: Option<Arc<File>>,
    mux: MkvMuxer,
    pub start_us: i64,
    pub width: u16,
    pub height: u16,
    last_sync: Instant,
    /// A sync in progress on the blocking pool.
    syncing: Option<tokio::task::JoinHandle<io::Result<()>>>,
    last_progress: Instant,
}

/// How often an open segment is synced to the disk. Frames reach the page
/// cache as they arrive, so a killed panel loses nothing; this bounds what a
/// power cut can take. (15 s was tried against 5 s at 256 cameras: p99
/// latency got worse, 750 ms against 150 ms, as writeback came in bursts.)
pub const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// `<camera>/<YYYY-MM-DD>/<camera>_<YYYYMMDDTHHMMSS>.<mmm>Z.mkv`, in UTC.
pub fn relative_path(camera_id: &str, start_us: i64, attempt: u32) -> String {
    let (day, stamp) = utc_day_and_stamp(start_us);
    let millis = (start_us / 1000).rem_euclid(1000);
    let stamp = stamp.trim_end_matches('Z');
    let suffix = if attempt == 0 {
        String::new()
    } else {
        format!("-{attempt}")
    };
    format!("{camera_id}/{day}/{camera_id}_{stamp}.{millis:03}Z{suffix}.mkv")
}

async fn blocking<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, SegmentError> {
    let path_s = path.display().to_string();
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(SegmentError::Io {
            path: path_s,
            source,
        }),
        Err(e) => Err(SegmentError::Io {
            path: path_s,
            source: io::Error::other(e.to_string()),
        }),
    }
}

impl Segment {
    /// Inserts the row, creates the file and writes its header.
    pub async fn open(
        catalog: &Catalog,
        root: &Path,
        camera_id: &str,
        title: String,
        start_us: i64,
        width: u16,
        height: u16,
    ) -> Result<Self, SegmentError> {
        // A new name if a file of the same millisecond exists (a quick reconnect).
        let mut attempt = 0;
        let (rel_path, path) = loop {
            let rel = relative_path(camera_id, start_us, attempt);
            let path = root.join(&rel);
            if !path.exists() || attempt >= 100 {
                break (rel, path);
            }
            attempt += 1;
        };
        let row_id = catalog
            .insert_recording(&NewRecording {
                camera_id: camera_id.to_string(),
                path: rel_path.clone(),
                start_us,
                width: u32::from(width),
                height: u32::from(height),
            })
            .await?;
        let (mux, header) = MkvMuxer::new(&SegmentInfo {
            title,
            width: u32::from(width),
            height: u32::from(height),
            origin_us: start_us,
        });
        let p = path.clone();
        let opened = blocking(&path, move || {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = OpenOptions::new().write(true).create_new(true).open(&p)?;
            f.write_all(&header)?;
            Ok(f)
        })
        .await;
        let file = match opened {
            Ok(f) => f,
            Err(e) => {
                let _ = catalog
                    .finish_recording(
                        row_id,
                        start_us,
                        0,
                        0,
                        RecordingStatus::Interrupted,
                        &e.to_string(),
                    )
                    .await;
                return Err(e);
            }
        };
        Ok(Self {
            row_id,
            rel_path,
            path,
            file: Some(Arc::new(file)),
            mux,
            start_us,
            width,
            height,
            last_sync: Instant::now(),
            syncing: None,
            last_progress: Instant::now(),
        })
    }

    /// Writes a frame now: it reaches the page cache before this returns, so
    /// a killed panel loses nothing it had received. Returns the time it was
    /// written (microseconds since the epoch).
    ///
    /// The write is done on the calling task: a page-cache write of one frame
    /// takes microseconds, far less than handing it to another thread.
    /// Syncing to the disk, which can take long, happens in `sync_if_due`.
    pub fn push(&mut self, capture_us: i64, jpeg: &[u8]) -> Result<i64, SegmentError> {
        let io_err = |source| SegmentError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let file = self
            .file
            .as_deref()
            .ok_or_else(|| io_err(io::Error::other("file already failed")))?;
        let w = self.mux.push(capture_us, jpeg.len());
        let result = (|| {
            if let Some((pos, bytes)) = w.patch {
                file.write_all_at(&bytes, pos)?;
            }
            write_two(file, &w.head, jpeg)
        })();
        if let Err(e) = result {
            // What reached the disk is unknown: closing repairs from the file itself.
            self.file = None;
            return Err(io_err(e));
        }
        Ok(crate::time::now_us())
    }

    /// Every [`SYNC_EVERY`], asks the disk to hold what was written. The sync
    /// runs on the blocking pool while frames go on being written; its
    /// outcome is checked on the next call, so a slow disk never delays a
    /// frame and a failing one is still noticed.
    pub fn sync_if_due(&mut self) -> Result<(), SegmentError> {
        let io_err = |source| SegmentError::Io {
            path: self.path.display().to_string(),
            source,
        };
        match self.syncing.take_if(|job| job.is_finished()) {
            Some(done) => {
                if let Some(Ok(Err(e))) = futures::FutureExt::now_or_never(done) {
                    return Err(io_err(e));
                }
            }
            None if self.syncing.is_some() => return Ok(()),
            None => {}
        }
        if self.last_sync.elapsed() < SYNC_EVERY {
            return Ok(());
        }
        self.last_sync = Instant::now();
        let Some(file) = self.file.as_ref() else {
            return Ok(());
        };
        let file = file.clone();
        self.syncing = Some(tokio::task::spawn_blocking(move || file.sync_data()));
        Ok(())
    }

    /// Every ten seconds, writes how far the segment has got into its row,
    /// on its own task: the recorder never waits for the database.
    /// Every 10 s, the row's end, frames and bytes, written on a task of
    /// `tasks` (the engine awaits them before closing the catalog).
    pub fn report_progress(&mut self, catalog: &Catalog, tasks: &TaskTracker) {
        if self.last_progress.elapsed().as_secs() < 10 {
            return;
        }
        self.last_progress = Instant::now();
        let (catalog, id) = (catalog.clone(), self.row_id);
        let (end, frames, bytes) = (
            self.mux.last_capture_us(),
            self.mux.frames() as i64,
            self.mux.bytes() as i64,
        );
        tasks.spawn(async move {
            let _ = catalog.recording_progress(id, end, frames, bytes).await;
        });
    }

    pub fn frames(&self) -> u64 {
        self.mux.frames()
    }

    pub fn last_capture_us(&self) -> i64 {
        self.mux.last_capture_us()
    }

    /// Finishes the file (index, duration), syncs it, then marks the row.
    pub async fn close(
        self,
        catalog: &Catalog,
        status: RecordingStatus,
        detail: &str,
    ) -> Result<Summary, SegmentError> {
        let closing = self.mux.finish();
        let fallback = closing.summary;
        let finished = match self.file {
            Some(file) => {
                blocking(&self.path, move || {
                    let mut f: &File = &file;
                    let s = closing.apply(&mut f)?;
                    f.sync_all()?;
                    Ok(s)
                })
                .await
            }
            // A write failed earlier: make what reached the disk playable.
            None => {
                let path = self.path.clone();
                blocking(&self.path, move || {
                    cctv_mkv::scan::repair(&path).map_err(|e| io::Error::other(e.to_string()))
                })
                .await
            }
        };
        let (summary, status, detail) = match &finished {
            Ok(s) => (*s, status, detail.to_string()),
            Err(e) => (fallback, RecordingStatus::Interrupted, e.to_string()),
        };
        catalog
            .finish_recording(
                self.row_id,
                summary.last_us,
                summary.frames as i64,
                summary.bytes as i64,
                status,
                &detail,
            )
            .await?;
        finished
    }
}

/// Appends `a` then `b`, in one system call when the kernel takes both.
fn write_two(mut f: &File, a: &[u8], b: &[u8]) -> io::Result<()> {
    let mut done = 0;
    let total = a.len() + b.len();
    while done < total {
        let n = if done < a.len() {
            f.write_vectored(&[IoSlice::new(&a[done..]), IoSlice::new(b)])?
        } else {
            f.write(&b[done - a.len()..])?
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the disk took nothing",
            ));
        }
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_tell_camera_and_start_time() {
        // 2026-11-21 14:02:11.123 UTC
        let p = relative_path("door", 1_795_269_731_123_456, 0);
        assert_eq!(p, "door/2026-11-21/door_20261121T140211.123Z.mkv");
        let p = relative_path("door", 1_795_269_731_123_456, 2);
        assert_eq!(p, "door/2026-11-21/door_20261121T140211.123Z-2.mkv");
    }
}
