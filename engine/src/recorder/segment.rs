//! One open recording file and its catalog row. Frames are written on
//! the recorder's task (a page-cache write takes microseconds); the calls
//! that wait for the disk run elsewhere (opening and closing on tokio's
//! blocking pool, the periodic sync and the paced writeback on the disk
//! threads of `recorder/disk.rs`), so a slow disk never stalls ingest.
//! The row is queued before the file is created and marked complete only
//! after the file is synced; the catalog writes are queued
//! (`crate::writes`), so a busy database never holds up a frame.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::disk::{self, Pace, SYNC_EVERY, sync_phase};
use crate::acks::{AckSet, Acks};
use crate::catalog::{NewRecording, RecordingStatus};
use crate::time::utc_day_and_stamp;
use crate::writes::{Write as CatalogWrite, Writes};
use cctv_mkv::mux::{MkvMuxer, SegmentInfo, Summary};

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("cannot write {path}: {source}")]
    Io { path: String, source: io::Error },
}

pub struct Segment {
    /// Closes the row if the segment is dropped without `close`.
    guard: DropGuard,
    pub camera_id: String,
    pub rel_path: String,
    path: PathBuf,
    /// Shared with the periodic sync, which so needs no descriptor of its own.
    file: Option<Arc<File>>,
    mux: MkvMuxer,
    pub start_us: i64,
    pub width: u16,
    pub height: u16,
    /// The file has an audio track for the camera's sound.
    pub audio: bool,
    last_sync: Instant,
    /// A sync in progress on the disk threads, and the frames it makes durable.
    syncing: Option<(disk::Job<io::Result<()>>, AckSet)>,
    last_progress: Instant,
    /// Frames written since the last sync started.
    unsynced: AckSet,
    acks: Acks,
    pace: Pace,
}

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

/// What a new segment is.
pub struct NewSegment<'a> {
    pub camera_id: &'a str,
    pub title: String,
    pub start_us: i64,
    pub width: u16,
    pub height: u16,
    /// Frames from the agent's spool, after an outage.
    pub backfilled: bool,
    /// The camera sends sound: the file gets an audio track.
    pub audio: bool,
    /// Writeback is started every this many bytes (0: left to the kernel).
    pub writeback_step: u64,
}

impl Segment {
    /// Queues the row, creates the file and writes its header. Frames
    /// pushed are acknowledged to `acks` once they are synced.
    pub async fn open(
        writes: &Writes,
        root: &Path,
        new: NewSegment<'_>,
        acks: Acks,
    ) -> Result<Self, SegmentError> {
        let NewSegment {
            camera_id,
            title,
            start_us,
            width,
            height,
            backfilled,
            audio,
            writeback_step,
        } = new;
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
        writes.send(CatalogWrite::Opened(NewRecording {
            camera_id: camera_id.to_string(),
            path: rel_path.clone(),
            start_us,
            width: u32::from(width),
            height: u32::from(height),
            backfilled,
        }));
        let (mux, header) = MkvMuxer::new(&SegmentInfo {
            title,
            width: u32::from(width),
            height: u32::from(height),
            origin_us: start_us,
            audio,
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
                writes.send(CatalogWrite::Closed {
                    camera: camera_id.to_string(),
                    path: rel_path,
                    end_us: start_us,
                    frames: 0,
                    bytes: 0,
                    status: RecordingStatus::Interrupted,
                    detail: e.to_string(),
                });
                return Err(e);
            }
        };
        Ok(Self {
            guard: DropGuard {
                writes: Some(writes.clone()),
                camera: camera_id.to_string(),
                rel_path: rel_path.clone(),
                path: path.clone(),
                start_us,
            },
            camera_id: camera_id.to_string(),
            rel_path,
            path,
            file: Some(Arc::new(file)),
            mux,
            start_us,
            width,
            height,
            audio,
            // As if synced a part of the period ago: see `sync_phase`.
            last_sync: Instant::now()
                .checked_sub(sync_phase(camera_id))
                .unwrap_or_else(Instant::now),
            syncing: None,
            last_progress: Instant::now(),
            unsynced: AckSet::default(),
            acks,
            pace: Pace::new(writeback_step),
        })
    }

    /// Writes a frame now: it reaches the page cache before this returns, so
    /// a killed panel loses nothing it had received. Returns the time it was
    /// written (microseconds since the epoch).
    ///
    /// The write is done on the calling task: a page-cache write of one frame
    /// takes microseconds, far less than handing it to another thread.
    /// Syncing to the disk, which can take long, happens in `sync_if_due`.
    pub fn push(&mut self, seq: u64, capture_us: i64, jpeg: &[u8]) -> Result<i64, SegmentError> {
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
        self.unsynced.add(seq);
        let written = crate::time::now_us();
        self.pace_writeback();
        Ok(written)
    }

    /// When the file has grown a step, lets go of what is settled (see
    /// [`Pace`]).
    fn pace_writeback(&mut self) {
        let written = self.mux.bytes();
        if !self.pace.due(written) {
            return;
        }
        if let Some(file) = self.file.clone() {
            self.pace.start(written, file, self.mux.settled());
        }
    }

    /// Writes a packet of the camera's sound now, like a frame. Sound from
    /// before the segment's first frame, or with no track to go in, is
    /// left out (it was the recording before's).
    pub fn push_audio(&mut self, capture_us: i64, opus: &[u8]) -> Result<(), SegmentError> {
        let io_err = |source| SegmentError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let Some(file) = self.file.as_deref() else {
            return Err(io_err(io::Error::other("file already failed")));
        };
        let Some(w) = self.mux.push_audio(capture_us, opus.len()) else {
            return Ok(());
        };
        let result = (|| {
            if let Some((pos, bytes)) = w.patch {
                file.write_all_at(&bytes, pos)?;
            }
            write_two(file, &w.head, opus)
        })();
        if let Err(e) = result {
            self.file = None;
            return Err(io_err(e));
        }
        Ok(())
    }

    /// Every [`SYNC_EVERY`], asks the disk to hold what was written. The sync
    /// runs on the disk threads while frames go on being written; its
    /// outcome is checked on the next call, so a slow disk never delays a
    /// frame and a failing one is still noticed.
    pub fn sync_if_due(&mut self) -> Result<(), SegmentError> {
        let io_err = |source| SegmentError::Io {
            path: self.path.display().to_string(),
            source,
        };
        if let Some((job, durable)) = self.syncing.as_mut() {
            match job.outcome() {
                disk::Outcome::Running => return Ok(()),
                disk::Outcome::Done(Ok(())) => self.acks.append(durable),
                disk::Outcome::Done(Err(e)) => {
                    self.syncing = None;
                    return Err(io_err(e));
                }
                // Not known to be durable: the next sync or the close says.
                disk::Outcome::Lost => {
                    durable.append(&mut self.unsynced);
                    self.unsynced = std::mem::take(durable);
                }
            }
            self.syncing = None;
        }
        if self.last_sync.elapsed() < SYNC_EVERY {
            return Ok(());
        }
        self.last_sync = Instant::now();
        let Some(file) = self.file.as_ref() else {
            return Ok(());
        };
        let file = file.clone();
        let durable = std::mem::take(&mut self.unsynced);
        self.syncing = Some((disk::run(move || file.sync_data()), durable));
        Ok(())
    }

    /// Every 10 s, queues the row's end, frames and bytes.
    pub fn report_progress(&mut self, writes: &Writes) {
        if self.last_progress.elapsed().as_secs() < 10 {
            return;
        }
        self.last_progress = Instant::now();
        writes.send(CatalogWrite::Progress {
            path: self.rel_path.clone(),
            end_us: self.mux.last_capture_us(),
            frames: self.mux.frames() as i64,
            bytes: self.mux.bytes() as i64,
        });
    }

    pub fn frames(&self) -> u64 {
        self.mux.frames()
    }

    pub fn last_capture_us(&self) -> i64 {
        self.mux.last_capture_us()
    }

    /// Finishes the file (index, duration), syncs it, then queues the row's
    /// completion.
    pub async fn close(
        mut self,
        writes: &Writes,
        status: RecordingStatus,
        detail: &str,
    ) -> Result<Summary, SegmentError> {
        self.guard.writes = None;
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
        if finished.is_ok() {
            // Synced whole: every frame in it is durable.
            if let Some((_, mut durable)) = self.syncing.take() {
                self.acks.append(&mut durable);
            }
            self.acks.append(&mut self.unsynced);
        }
        let (summary, status, detail) = match &finished {
            Ok(s) => (*s, status, detail.to_string()),
            Err(e) => (fallback, RecordingStatus::Interrupted, e.to_string()),
        };
        writes.send(CatalogWrite::Closed {
            camera: self.camera_id,
            path: self.rel_path,
            end_us: summary.last_us,
            frames: summary.frames as i64,
            bytes: summary.bytes as i64,
            status,
            detail,
        });
        finished
    }
}

/// A segment dropped without `close` (its recorder stopped on a fault):
/// the file is repaired on the blocking pool, to its last whole frame,
/// and the row queued as `interrupted`, instead of staying `recording`
/// until the next start.
struct DropGuard {
    /// `None` once the segment closed normally.
    writes: Option<Writes>,
    camera: String,
    rel_path: String,
    path: PathBuf,
    start_us: i64,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        let Some(writes) = self.writes.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // No runtime: the next start repairs it.
        };
        let (camera, path, file) = (
            std::mem::take(&mut self.camera),
            std::mem::take(&mut self.rel_path),
            std::mem::take(&mut self.path),
        );
        let start_us = self.start_us;
        runtime.spawn_blocking(move || {
            let (summary, detail) = match cctv_mkv::scan::repair(&file) {
                Ok(s) => (
                    s,
                    "the recorder stopped on a fault; repaired to the last whole frame".to_string(),
                ),
                Err(e) => (
                    Summary::default(),
                    format!("the recorder stopped on a fault; cannot repair: {e}"),
                ),
            };
            writes.send(CatalogWrite::Closed {
                camera,
                path,
                end_us: summary.last_us.max(start_us),
                frames: summary.frames as i64,
                bytes: summary.bytes as i64,
                status: RecordingStatus::Interrupted,
                detail,
            });
        });
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
    use crate::catalog::Catalog;

    fn door(start_us: i64) -> NewSegment<'static> {
        NewSegment {
            camera_id: "door",
            title: "t".into(),
            start_us,
            width: 64,
            height: 48,
            backfilled: false,
            audio: false,
            writeback_step: 1 << 20,
        }
    }

    #[tokio::test]
    async fn a_segment_dropped_without_closing_is_repaired_and_marked_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open_in_memory().await.unwrap();
        catalog
            .add_credentials("door", "", &[1; 32], false, 1)
            .await
            .unwrap();
        let (events, _) = tokio::sync::broadcast::channel(8);
        let (writes, _) = Writes::start(catalog.clone(), events);
        let start = 1_795_269_731_000_000;
        let new = door(start);
        let mut seg = Segment::open(&writes, dir.path(), new, Acks::default())
            .await
            .unwrap();
        for i in 0..3 {
            seg.push(i as u64, start + i * 100_000, &[0xFF, 0xD8, 0xFF, 0xD9])
                .unwrap();
        }
        let rel = seg.rel_path.clone();
        // What a recorder that panics does with its open segment.
        drop(seg);
        let row = loop {
            assert!(writes.flush(std::time::Duration::from_secs(10)).await);
            let row = catalog.recording_by_path(&rel).await.unwrap().unwrap();
            if row.status != RecordingStatus::Recording {
                break row;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(row.status, RecordingStatus::Interrupted);
        assert_eq!(row.frames, 3, "{row:?}");
        assert_eq!(row.end_us, start + 200_000);
        assert!(row.detail.contains("stopped on a fault"), "{}", row.detail);
        let scanned = cctv_mkv::scan::scan(&dir.path().join(&rel)).unwrap();
        assert!(scanned.finalized, "the file was repaired");
    }

    #[tokio::test]
    async fn frames_are_acknowledged_once_synced_not_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open_in_memory().await.unwrap();
        let (events, _) = tokio::sync::broadcast::channel(8);
        let (writes, _) = Writes::start(catalog.clone(), events);
        let acks = Acks::default();
        let start = 1_795_269_731_000_000;
        let new = door(start);
        let mut seg = Segment::open(&writes, dir.path(), new, acks.clone())
            .await
            .unwrap();
        for seq in 10..13 {
            seg.push(seq, start + seq as i64, &[0xFF, 0xD8, 0xFF, 0xD9])
                .unwrap();
        }
        seg.sync_if_due().unwrap();
        assert!(
            acks.take_chunks(256).is_empty(),
            "written, not yet synced: nothing to acknowledge"
        );
        seg.close(&writes, RecordingStatus::Complete, "")
            .await
            .unwrap();
        assert_eq!(acks.take_chunks(256), vec![vec![(10, 12)]]);
    }

    #[test]
    fn file_names_tell_camera_and_start_time() {
        // 2026-11-21 14:02:11.123 UTC
        let p = relative_path("door", 1_795_269_731_123_456, 0);
        assert_eq!(p, "door/2026-11-21/door_20261121T140211.123Z.mkv");
        let p = relative_path("door", 1_795_269_731_123_456, 2);
        assert_eq!(p, "door/2026-11-21/door_20261121T140211.123Z-2.mkv");
    }
}
