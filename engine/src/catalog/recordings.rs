//! Recording rows: one per segment file. A row is inserted as `recording`
//! before its file exists and becomes `complete` only after the file is
//! finished and synced.

use serde::Serialize;

use super::{Catalog, CatalogError, RecordingStatus, Result, on_db};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct RecordingRow {
    pub id: i64,
    pub camera_id: String,
    /// Relative to the recordings directory.
    pub path: String,
    pub start_us: i64,
    pub end_us: i64,
    pub frames: i64,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    pub status: RecordingStatus,
    pub detail: String,
    /// Written from an agent's spool after an outage.
    pub backfilled: bool,
    /// The recording server holding its file.
    pub server_id: String,
}

/// A segment about to be written.
#[derive(Debug, Clone)]
pub struct NewRecording {
    pub camera_id: String,
    pub path: String,
    pub start_us: i64,
    pub width: u32,
    pub height: u32,
    /// Frames from an agent's spool, received after an outage.
    pub backfilled: bool,
}

/// How a recording ended: its extent and status.
#[derive(Debug, Clone)]
pub struct Finished<'a> {
    pub end_us: i64,
    pub frames: i64,
    pub bytes: i64,
    pub status: RecordingStatus,
    pub detail: &'a str,
}

/// Which recordings to list. Everything is optional.
#[derive(Debug, Clone, Default)]
pub struct RecordingFilter {
    pub camera_id: Option<String>,
    /// Recordings that end at or after this time.
    pub from_us: Option<i64>,
    /// Recordings that start before this time.
    pub to_us: Option<i64>,
    pub limit: Option<i64>,
    pub offset: i64,
    /// Only recordings during which the camera saw motion.
    pub with_motion: bool,
}

impl Catalog {
    pub async fn insert_recording(&self, r: &NewRecording) -> Result<i64> {
        on_db!(self, |pool| {
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO recordings (camera_id, path, start_us, end_us, width, height, status, backfilled, server_id)
                 VALUES ($1, $2, $3, $3, $4, $5, 'recording', $6, $7)
                 RETURNING id",
            )
            .bind(&r.camera_id)
            .bind(&r.path)
            .bind(r.start_us)
            .bind(i64::from(r.width))
            .bind(i64::from(r.height))
            .bind(r.backfilled)
            .bind(&*self.server)
            .fetch_one(pool)
            .await?;
            Ok(id)
        })
    }

    /// A finished recording's row, whole in one statement (a file adopted
    /// at start-up): never seen half-written.
    pub async fn insert_finished_recording(
        &self,
        r: &NewRecording,
        end: &Finished<'_>,
    ) -> Result<i64> {
        on_db!(self, |pool| {
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO recordings
                     (camera_id, path, start_us, end_us, width, height, status, backfilled, frames, bytes, detail, server_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 RETURNING id",
            )
            .bind(&r.camera_id)
            .bind(&r.path)
            .bind(r.start_us)
            .bind(end.end_us)
            .bind(i64::from(r.width))
            .bind(i64::from(r.height))
            .bind(end.status.as_str())
            .bind(r.backfilled)
            .bind(end.frames)
            .bind(end.bytes)
            .bind(end.detail)
            .bind(&*self.server)
            .fetch_one(pool)
            .await?;
            Ok(id)
        })
    }

    /// Closes a recording row: its final extent and status.
    pub async fn finish_recording(
        &self,
        id: i64,
        end_us: i64,
        frames: i64,
        bytes: i64,
        status: RecordingStatus,
        detail: &str,
    ) -> Result<()> {
        on_db!(self, |pool| {
            let r = sqlx::query(
                "UPDATE recordings SET end_us = $2, frames = $3, bytes = $4, status = $5, detail = $6
                 WHERE id = $1",
            )
            .bind(id)
            .bind(end_us)
            .bind(frames)
            .bind(bytes)
            .bind(status.as_str())
            .bind(detail)
            .execute(pool)
            .await?;
            if r.rows_affected() != 1 {
                return Err(CatalogError::Invalid(format!("no recording with id {id}")));
            }
            Ok(())
        })
    }

    /// Progress of a segment being written, so lists show it growing.
    pub async fn recording_progress(
        &self,
        id: i64,
        end_us: i64,
        frames: i64,
        bytes: i64,
    ) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query(
                "UPDATE recordings SET end_us = $2, frames = $3, bytes = $4 WHERE id = $1 AND status = 'recording'",
            )
            .bind(id)
            .bind(end_us)
            .bind(frames)
            .bind(bytes)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// When the camera's newest recording on this server starts, if it has any.
    pub async fn newest_recording_start(&self, camera_id: &str) -> Result<Option<i64>> {
        on_db!(self, |pool| {
            let v: (Option<i64>,) = sqlx::query_as(
                "SELECT MAX(start_us) FROM recordings WHERE camera_id = $1 AND ($2 = '' OR server_id = $2)",
            )
            .bind(camera_id)
            .bind(&*self.server)
            .fetch_one(pool)
            .await?;
            Ok(v.0)
        })
    }

    /// Paths of the camera's recordings that start at or after `since_us`.
    pub async fn recording_paths_since(
        &self,
        camera_id: &str,
        since_us: i64,
    ) -> Result<std::collections::HashSet<String>> {
        on_db!(self, |pool| {
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT path FROM recordings WHERE camera_id = $1 AND start_us >= $2 AND ($3 = '' OR server_id = $3)",
            )
            .bind(camera_id)
            .bind(since_us)
                .bind(&*self.server)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(|(p,)| p).collect())
        })
    }

    pub async fn recording_by_path(&self, path: &str) -> Result<Option<RecordingRow>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT * FROM recordings WHERE path = $1 AND ($2 = '' OR server_id = $2)",
            )
            .bind(path)
            .bind(&*self.server)
            .fetch_optional(pool)
            .await?)
        })
    }

    pub async fn recording(&self, id: i64) -> Result<Option<RecordingRow>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_as("SELECT * FROM recordings WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Recordings matching `f`, newest first.
    pub async fn recordings(&self, f: &RecordingFilter) -> Result<Vec<RecordingRow>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT * FROM recordings r
                 WHERE ($1 IS NULL OR camera_id = $1)
                   AND ($2 IS NULL OR end_us >= $2)
                   AND ($3 IS NULL OR start_us < $3)
                   AND (NOT $6 OR EXISTS (
                       SELECT 1 FROM camera_events e
                       WHERE e.camera_id = r.camera_id AND e.kind = 'motion'
                         AND e.at_us <= r.end_us AND COALESCE(e.end_us, r.end_us) >= r.start_us))
                 ORDER BY start_us DESC, id DESC
                 LIMIT $4 OFFSET $5",
            )
            .bind(&f.camera_id)
            .bind(f.from_us)
            .bind(f.to_us)
            .bind(f.limit.unwrap_or(i64::MAX))
            .bind(f.offset)
            .bind(f.with_motion)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Rows a crash left open.
    pub async fn open_recordings(&self) -> Result<Vec<RecordingRow>> {
        on_db!(self, |pool| {
            Ok(
                sqlx::query_as(
                "SELECT * FROM recordings WHERE status = 'recording' AND ($1 = '' OR server_id = $1) ORDER BY id",
            )
            .bind(&*self.server)
                    .fetch_all(pool)
                    .await?,
            )
        })
    }

    /// Finished recordings (never the ones being written), oldest first,
    /// of one camera or all.
    pub async fn finished_oldest_first(
        &self,
        camera_id: Option<&str>,
    ) -> Result<Vec<RecordingRow>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT * FROM recordings
                 WHERE status != 'recording' AND ($1 IS NULL OR camera_id = $1) AND ($2 = '' OR server_id = $2)
                 ORDER BY start_us, id",
            )
            .bind(camera_id)
            .bind(&*self.server)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Bytes of recordings held, of one camera or all.
    pub async fn recorded_bytes(&self, camera_id: Option<&str>) -> Result<i64> {
        on_db!(self, |pool| {
            let (b,): (i64,) = sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM recordings
                 WHERE ($1 IS NULL OR camera_id = $1) AND ($2 = '' OR server_id = $2)",
            )
            .bind(camera_id)
            .bind(&*self.server)
            .fetch_one(pool)
            .await?;
            Ok(b)
        })
    }

    /// Bytes of the finished recordings, and the paths of those still being
    /// written (whose size the catalog learns only every few seconds).
    pub async fn recorded_bytes_and_open(&self) -> Result<(i64, Vec<String>)> {
        on_db!(self, |pool| {
            let (b,): (i64,) = sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM recordings
                 WHERE status != 'recording' AND ($1 = '' OR server_id = $1)",
            )
            .bind(&*self.server)
            .fetch_one(pool)
            .await?;
            let open: Vec<(String,)> = sqlx::query_as(
                "SELECT path FROM recordings WHERE status = 'recording' AND ($1 = '' OR server_id = $1)",
            )
            .bind(&*self.server)
            .fetch_all(pool)
            .await?;
            Ok((b, open.into_iter().map(|(p,)| p).collect()))
        })
    }

    pub async fn delete_recording(&self, id: i64) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query("DELETE FROM recordings WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
