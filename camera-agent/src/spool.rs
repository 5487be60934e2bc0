//! The spool: every frame the agent sends or could not send, on the camera
//! host's disk, until the panel acknowledges it (`Ack`).
//!
//! Frames are appended to files of a few MiB (`<first seq>.spool` in the
//! camera's spool directory); an index in memory says where each frame
//! not yet acknowledged is. A file goes once every frame in it is
//! acknowledged, or when the spool is over its size or age limit: then the
//! oldest file goes first, and the frames in it are counted as dropped.
//!
//! It survives a restart: at start the files are read back (a record cut
//! short by a crash is cut off) and sequence numbers carry on after the
//! highest one found. The newest file is kept even when acknowledged, so
//! they can. A spool that cannot write (a read-only or full disk) says so
//! once and stops taking frames for a while; the agent then works as it
//! does without one.
//!
//! Each frame remembers the connection it was captured during (`epoch`):
//! the link sends those of earlier connections as backfill.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

/// A file is closed for appending at this size or age.
const FILE_BYTES: u64 = 4 << 20;
const FILE_AGE: Duration = Duration::from_secs(10);
/// After a write fails, the spool rests this long before trying again.
const BROKEN_PAUSE: Duration = Duration::from_secs(30);
/// While nothing takes frames, the newest file is synced this often.
const SYNC_EVERY: Duration = Duration::from_secs(5);
/// The smallest size limit: a few files.
pub const MIN_BYTES: u64 = 16 << 20;

/// How much the spool may hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub max_bytes: u64,
    /// Frames older than this are dropped; `None`: no age limit.
    pub max_age: Option<Duration>,
}

/// Where one frame not yet acknowledged is.
#[derive(Debug, Clone, Copy)]
struct Entry {
    file: u64,
    offset: u64,
    len: u32,
    capture_us: u64,
    epoch: u64,
    /// Sent live when it was kept (a panel was taking frames).
    sent: bool,
}

struct SpoolFile {
    path: PathBuf,
    file: Arc<File>,
    bytes: u64,
    /// Frames in it not yet acknowledged.
    unacked: u32,
    newest_us: u64,
}

/// Drops further apart than this (in capture time) are separate stretches.
const DROP_STRETCH_GAP_US: u64 = 30_000_000;

/// Frames the spool dropped unsent, because it was full or they were too
/// old: how many since the agent started, and the capture times of the
/// first and last of the latest stretch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub frames: u64,
    pub from_us: u64,
    pub to_us: u64,
}

impl Dropped {
    fn add(&mut self, capture_us: u64) {
        self.merge(Dropped {
            frames: 1,
            from_us: capture_us,
            to_us: capture_us,
        });
    }

    /// Counts `other`; the times are those of the latest stretch dropped
    /// (a drop long after the last one starts a new stretch).
    fn merge(&mut self, other: Dropped) {
        if other.frames == 0 {
            return;
        }
        let apart = other.from_us > self.to_us.saturating_add(DROP_STRETCH_GAP_US);
        if self.frames == 0 || apart {
            self.from_us = other.from_us;
            self.to_us = other.to_us;
        } else {
            self.from_us = self.from_us.min(other.from_us);
            self.to_us = self.to_us.max(other.to_us);
        }
        self.frames += other.frames;
    }
}

/// What the spool holds, for the panel and the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    pub bytes: u64,
    pub frames: u32,
    pub oldest_us: u64,
    pub dropped: Dropped,
}

/// The spool the capture thread and the link share.
pub type Shared = Arc<std::sync::Mutex<Spool>>;

/// The spool, even if a holder panicked (its state is plain data).
pub fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Spool> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub struct Spool {
    dir: PathBuf,
    limits: Limits,
    /// Held for as long as the spool is open: one agent per directory.
    _lock: File,
    files: BTreeMap<u64, SpoolFile>,
    index: BTreeMap<u64, Entry>,
    /// The file appended to, its first seq, and when it was started.
    active: Option<(u64, Instant)>,
    next_seq: u64,
    bytes: u64,
    dropped: Dropped,
    /// Connections so far; frames of earlier ones are backfill.
    epoch: u64,
    /// A panel takes frames now.
    live: bool,
    broken_until: Option<Instant>,
    last_sync: Instant,
    /// Files finished while no panel took frames, not yet synced.
    to_sync: Vec<Arc<File>>,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, reading back what it holds.
    pub fn open(dir: &Path, limits: Limits) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let lock = File::create(dir.join("lock"))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |_| {
                io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "another agent uses this spool (same camera id and spool directory)",
                )
            },
        )?;
        let mut spool = Self {
            dir: dir.to_path_buf(),
            limits,
            _lock: lock,
            files: BTreeMap::new(),
            index: BTreeMap::new(),
            active: None,
            next_seq: 0,
            bytes: 0,
            dropped: Dropped::default(),
            epoch: 0,
            live: false,
            broken_until: None,
            last_sync: Instant::now(),
            to_sync: Vec::new(),
        };
        let mut names: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let path = e.path();
                let first = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".spool")?
                    .parse()
                    .ok()?;
                Some((first, path))
            })
            .collect();
        names.sort();
        for (first, path) in names {
            if let Err(e) = spool.read_back(first, &path) {
                warn!(file = %path.display(), "a spool file cannot be read; it is left out: {e}");
            }
        }
        if !spool.index.is_empty() {
            let st = spool.status();
            info!(
                frames = st.frames,
                bytes = st.bytes,
                next_seq = spool.next_seq,
                "the spool holds frames from before this start; they will be sent"
            );
        }
        Ok(spool)
    }

    /// Whether frames are kept now (not resting after a write failed).
    pub fn working(&self) -> bool {
        self.broken_until.is_none_or(|t| Instant::now() >= t)
    }

    /// The sequence number the next captured frame gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Keeps a frame until it is acknowledged. Returns whether a panel
    /// takes frames now (the frame should go out live), or an error once
    /// when the spool cannot write; it then rests before trying again.
    pub fn append(&mut self, seq: u64, capture_us: u64, jpeg: &[u8]) -> Result<bool, io::Error> {
        self.next_seq = self.next_seq.max(seq + 1);
        if self.broken_until.is_some_and(|t| Instant::now() < t) {
            return Ok(self.live);
        }
        if let Err(e) = self.write(seq, capture_us, jpeg) {
            self.broken_until = Some(Instant::now() + BROKEN_PAUSE);
            self.active = None;
            return Err(e);
        }
        if self.broken_until.take().is_some() {
            info!("the spool writes again");
        }
        self.enforce_limits(cctv_protocol::now_us());
        Ok(self.live)
    }

    fn write(&mut self, seq: u64, capture_us: u64, jpeg: &[u8]) -> io::Result<()> {
        let rotate = match &self.active {
            Some((first, started)) => {
                started.elapsed() >= FILE_AGE
                    || self.files.get(first).is_none_or(|f| f.bytes >= FILE_BYTES)
            }
            None => true,
        };
        if rotate {
            self.start_file()?;
        }
        let first = self
            .active
            .map(|(f, _)| f)
            .ok_or_else(|| io::Error::other("the spool has no file open"))?;
        let f = self
            .files
            .get_mut(&first)
            .ok_or_else(|| io::Error::other("the spool lost its file"))?;
        let len = u32::try_from(jpeg.len()).map_err(|_| io::Error::other("frame too large"))?;
        let head = disk::head(len, seq, capture_us, jpeg);
        let offset = f.bytes;
        let mut w: &File = &f.file;
        let written = w
            .write_all(&head)
            .and_then(|()| w.write_all(jpeg))
            .inspect_err(|_| {
                // Whatever part reached the file is cut off.
                let _ = f.file.set_len(offset);
            });
        written?;
        let n = (RECORD_HEAD + jpeg.len()) as u64;
        f.bytes += n;
        f.unacked += 1;
        f.newest_us = f.newest_us.max(capture_us);
        self.bytes += n;
        self.index.insert(
            seq,
            Entry {
                file: first,
                offset,
                len,
                capture_us,
                epoch: self.epoch,
                sent: self.live,
            },
        );
        Ok(())
    }

    /// Starts a new file, named after a number above every file's: files
    /// sort oldest first.
    fn start_file(&mut self) -> io::Result<()> {
        let old = self.active.take().map(|(old, _)| old);
        if let Some(old) = old
            && !self.live
            && let Some(f) = self.files.get(&old)
        {
            // Synced by whoever appends, once the lock is let go.
            self.to_sync.push(f.file.clone());
        }
        let first = self
            .files
            .keys()
            .next_back()
            .map_or(self.next_seq, |last| self.next_seq.max(last + 1));
        let path = self.dir.join(format!("{first:020}.spool"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        if let Err(e) = file.write_all(MAGIC) {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        self.bytes += MAGIC.len() as u64;
        self.files.insert(
            first,
            SpoolFile {
                path,
                file: Arc::new(file),
                bytes: MAGIC.len() as u64,
                unacked: 0,
                newest_us: 0,
            },
        );
        self.active = Some((first, Instant::now()));
        if let Some(old) = old {
            self.forget_if_done(old);
        }
        Ok(())
    }

    /// Files to sync now, to be synced without the lock held (a sync can
    /// take seconds on a busy disk, and the link must not wait for it).
    /// While no panel takes frames the spool is the only copy: its newest
    /// file is synced every few seconds, and a file finished then at once.
    /// Call after each append; it checks the time.
    pub fn take_syncs(&mut self) -> Vec<Arc<File>> {
        if !self.live
            && self.last_sync.elapsed() >= SYNC_EVERY
            && let Some(f) = self.active.and_then(|(first, _)| self.files.get(&first))
        {
            self.last_sync = Instant::now();
            self.to_sync.push(f.file.clone());
        }
        std::mem::take(&mut self.to_sync)
    }

    /// Drops the oldest files while over the size limit, and files whose
    /// newest frame is past the age limit. The file being written stays.
    fn enforce_limits(&mut self, now_us: u64) {
        let too_old = |f: &SpoolFile| {
            self.limits
                .max_age
                .is_some_and(|age| now_us.saturating_sub(f.newest_us) > age.as_micros() as u64)
        };
        let active = self.active.map(|(f, _)| f);
        let mut drop = Vec::new();
        let mut bytes = self.bytes;
        for (first, f) in &self.files {
            if Some(*first) == active {
                break;
            }
            if bytes > self.limits.max_bytes || too_old(f) {
                drop.push(*first);
                bytes -= f.bytes;
            } else {
                break;
            }
        }
        for first in drop {
            self.remove_file(first, true);
        }
    }

    /// Deletes a file; its frames not acknowledged count as dropped.
    fn remove_file(&mut self, first: u64, count: bool) {
        let Some(f) = self.files.remove(&first) else {
            return;
        };
        let gone: Vec<u64> = self
            .index
            .iter()
            .filter(|(_, e)| e.file == first)
            .map(|(s, _)| *s)
            .collect();
        let mut lost = Dropped::default();
        for seq in gone {
            if let Some(e) = self.index.remove(&seq) {
                lost.add(e.capture_us);
            }
        }
        self.bytes -= f.bytes;
        if let Err(e) = std::fs::remove_file(&f.path) {
            warn!(file = %f.path.display(), "cannot delete a spool file: {e}");
        }
        if count && lost.frames > 0 {
            warn!(
                frames = lost.frames,
                "the spool is full: dropped its oldest {} frames, captured over {:.1} s, unsent",
                lost.frames,
                lost.to_us.saturating_sub(lost.from_us) as f64 / 1e6
            );
            self.dropped.merge(lost);
        }
    }

    /// A file fully acknowledged goes, unless it is the newest.
    fn forget_if_done(&mut self, first: u64) {
        let newest = self.files.keys().next_back().copied();
        if self.active.map(|(f, _)| f) == Some(first) || newest == Some(first) {
            return;
        }
        if self.files.get(&first).is_some_and(|f| f.unacked == 0) {
            self.remove_file(first, false);
        }
    }

    /// The panel holds `first..=last`: they are forgotten.
    pub fn ack(&mut self, first: u64, last: u64) {
        let seqs: Vec<u64> = self.index.range(first..=last).map(|(s, _)| *s).collect();
        let mut touched = Vec::new();
        for seq in seqs {
            if let Some(e) = self.index.remove(&seq)
                && let Some(f) = self.files.get_mut(&e.file)
            {
                f.unacked = f.unacked.saturating_sub(1);
                if f.unacked == 0 {
                    touched.push(e.file);
                }
            }
        }
        for file in touched {
            self.forget_if_done(file);
        }
    }

    /// A panel welcomed the agent: what the spool holds so far is
    /// backfill for this connection, except the newest frames no panel has
    /// had, captured in the last `recent`, at most `most` of them (while
    /// connecting, or since the agent started): they go first, live, and
    /// the live recording starts with them. Returned oldest first. (A
    /// frame sent on an earlier connection is always backfill: the panel
    /// may hold it already, and skips it there.)
    pub fn connected(&mut self, now_us: u64, recent: Duration, most: usize) -> Vec<Pending> {
        self.epoch += 1;
        self.live = true;
        let since = now_us.saturating_sub(recent.as_micros() as u64);
        let mut out = Vec::new();
        for (seq, e) in self.index.iter_mut().rev() {
            if out.len() >= most || e.sent || e.capture_us < since {
                break;
            }
            e.epoch = self.epoch;
            e.sent = true;
            if let Some(f) = self.files.get(&e.file) {
                out.push(Pending {
                    seq: *seq,
                    capture_us: e.capture_us,
                    file: f.file.clone(),
                    offset: e.offset,
                    len: e.len,
                });
            }
        }
        out.reverse();
        out
    }

    pub fn disconnected(&mut self) {
        self.live = false;
    }

    /// The oldest frame after `after` (by seq) from before this connection,
    /// and how many such remain from there.
    pub fn next_backfill(&self, after: Option<u64>) -> Option<Pending> {
        let from = after.map_or(0, |a| a.saturating_add(1));
        if after == Some(u64::MAX) {
            return None;
        }
        let (seq, e) = self
            .index
            .range(from..)
            .find(|(_, e)| e.epoch < self.epoch)?;
        let f = self.files.get(&e.file)?;
        Some(Pending {
            seq: *seq,
            capture_us: e.capture_us,
            file: f.file.clone(),
            offset: e.offset,
            len: e.len,
        })
    }

    /// Frames from before this connection after `after`, still to send.
    pub fn backlog(&self, after: Option<u64>) -> u32 {
        let from = after.map_or(0, |a| a.saturating_add(1));
        if after == Some(u64::MAX) {
            return 0;
        }
        self.index
            .range(from..)
            .filter(|(_, e)| e.epoch < self.epoch)
            .count() as u32
    }

    /// A frame that cannot be read back is given up (and counted dropped).
    pub fn give_up(&mut self, seq: u64) {
        if let Some(e) = self.index.remove(&seq) {
            if let Some(f) = self.files.get_mut(&e.file) {
                f.unacked = f.unacked.saturating_sub(1);
            }
            self.dropped.add(e.capture_us);
        }
    }

    pub fn status(&self) -> Status {
        Status {
            bytes: self.bytes,
            frames: self.index.len() as u32,
            oldest_us: self.index.values().map(|e| e.capture_us).min().unwrap_or(0),
            dropped: self.dropped,
        }
    }
}

mod disk;
pub use disk::Pending;
use disk::{MAGIC, RECORD_HEAD};

#[cfg(test)]
mod tests;
