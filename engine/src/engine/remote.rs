//! Recordings another recording server holds, played here: fetched over a
//! viewing connection into `<data>/remote/<server>/`, kept there while
//! they are finished and whole, and the least recently fetched removed
//! once the folder passes [`CACHE_BYTES`].

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{Engine, EngineError};
use crate::catalog::{RecordingRow, RecordingStatus};
use crate::time::now_us;

/// Most bytes of other servers' recordings kept here.
pub const CACHE_BYTES: u64 = 4 << 30;
/// A copy of a recording still being written is fetched again after this.
const GROWING_FRESH: Duration = Duration::from_secs(10);

impl Engine {
    /// Where a recording's file is on this machine: under the recordings
    /// directory when this server holds it, else a copy fetched from the
    /// server that does.
    pub async fn recording_path(&self, row: &RecordingRow) -> Result<PathBuf, EngineError> {
        let catalog = &self.shared.catalog;
        if row.server_id.is_empty() || row.server_id == catalog.server() {
            return Ok(self.shared.config.recordings_dir.join(&row.path));
        }
        let relative = Path::new(&row.path);
        if !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(EngineError::Remote(format!(
                "recording path {:?} is not a relative path",
                row.path
            )));
        }
        let cache = self.shared.config.data_dir.join("remote");
        let copy = cache.join(&row.server_id).join(relative);
        if let Ok(m) = tokio::fs::metadata(&copy).await {
            let fresh = match row.status {
                RecordingStatus::Recording => m
                    .modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age < GROWING_FRESH),
                _ => m.len() as i64 == row.bytes,
            };
            if fresh {
                return Ok(copy);
            }
        }
        let server = catalog.server_row(&row.server_id).await?.ok_or_else(|| {
            EngineError::Remote(format!(
                "no recording server {:?} in the catalog",
                row.server_id
            ))
        })?;
        if let Some(why) = server.why_down(now_us()) {
            return Err(EngineError::Remote(format!(
                "{why}: its recordings play here again when it is back"
            )));
        }
        crate::peers::fetch(catalog, &server, &row.path, &copy)
            .await
            .map_err(|why| {
                EngineError::Remote(format!(
                    "cannot fetch {} from server {}: {why}",
                    row.path, row.server_id
                ))
            })?;
        let keep = copy.clone();
        let _ = tokio::task::spawn_blocking(move || prune(&cache, CACHE_BYTES, &keep)).await;
        Ok(copy)
    }
}

/// Removes the oldest files under `dir` until they take at most `max`
/// bytes, never `keep`.
fn prune(dir: &Path, max: u64, keep: &Path) {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                let at = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                files.push((at, m.len(), e.path()));
            }
        }
    }
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= max {
            break;
        }
        if path != keep && std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_oldest_copies_go_first_and_the_one_in_use_stays() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("a/old.mkv");
        let new = dir.path().join("b/new.mkv");
        std::fs::create_dir_all(old.parent().unwrap()).unwrap();
        std::fs::create_dir_all(new.parent().unwrap()).unwrap();
        std::fs::write(&old, [0u8; 600]).unwrap();
        std::fs::write(&new, [0u8; 600]).unwrap();
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        super::prune(dir.path(), 1000, &new);
        assert!(!old.exists() && new.exists());
        super::prune(dir.path(), 100, &new);
        assert!(new.exists(), "the copy in use stays");
    }
}
