//! Panorama rows: one per attempt, running, complete or failed with its
//! explanation.

use serde::Serialize;

use super::{Catalog, PanoramaStatus, Result, on_db};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct PanoramaRow {
    pub id: i64,
    pub camera_id: String,
    pub source: String,
    pub from_us: i64,
    pub to_us: i64,
    pub mode: String,
    pub frames_seen: i64,
    pub frames_used: i64,
    pub status: PanoramaStatus,
    pub message: String,
    /// Relative to the data directory.
    pub path: String,
    pub thumb_path: String,
    pub width: i64,
    pub height: i64,
    pub stitch_ms: i64,
    pub created_us: i64,
    /// The recording server that stitched it.
    pub server_id: String,
}

/// The end of an attempt.
#[derive(Debug, Clone)]
pub struct PanoramaResult {
    pub status: PanoramaStatus,
    pub message: String,
    pub path: String,
    pub thumb_path: String,
    pub frames_seen: i64,
    pub frames_used: i64,
    pub width: i64,
    pub height: i64,
    pub stitch_ms: i64,
}

impl Default for PanoramaResult {
    /// A failure with nothing to show.
    fn default() -> Self {
        Self {
            status: PanoramaStatus::Failed,
            message: String::new(),
            path: String::new(),
            thumb_path: String::new(),
            frames_seen: 0,
            frames_used: 0,
            width: 0,
            height: 0,
            stitch_ms: 0,
        }
    }
}

impl Catalog {
    pub async fn insert_panorama(
        &self,
        camera_id: &str,
        source: &str,
        from_us: i64,
        to_us: i64,
        mode: &str,
        now_us: i64,
    ) -> Result<i64> {
        on_db!(self, |pool| {
            Ok(sqlx::query_scalar(
                "INSERT INTO panoramas (camera_id, source, from_us, to_us, mode, status, created_us, server_id)
                 VALUES ($1, $2, $3, $4, $5, 'running', $6, $7)
                 RETURNING id",
            )
            .bind(camera_id)
            .bind(source)
            .bind(from_us)
            .bind(to_us)
            .bind(mode)
            .bind(now_us)
            .bind(&*self.server)
            .fetch_one(pool)
            .await?)
        })
    }

    pub async fn finish_panorama(&self, id: i64, r: &PanoramaResult) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query(
                "UPDATE panoramas SET status = $2, message = $3, path = $4, thumb_path = $5, frames_seen = $6,
                    frames_used = $7, width = $8, height = $9, stitch_ms = $10 WHERE id = $1",
            )
            .bind(id)
            .bind(r.status)
            .bind(&r.message)
            .bind(&r.path)
            .bind(&r.thumb_path)
            .bind(r.frames_seen)
            .bind(r.frames_used)
            .bind(r.width)
            .bind(r.height)
            .bind(r.stitch_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Panoramas of a camera (or all), newest first.
    pub async fn panoramas(&self, camera_id: Option<&str>, limit: i64) -> Result<Vec<PanoramaRow>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT * FROM panoramas WHERE ($1 IS NULL OR camera_id = $1) ORDER BY created_us DESC, id DESC LIMIT $2",
            )
            .bind(camera_id)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    pub async fn panorama(&self, id: i64) -> Result<Option<PanoramaRow>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_as("SELECT * FROM panoramas WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// At start-up: attempts a crash left running are failed.
    pub async fn fail_running_panoramas(&self) -> Result<u64> {
        on_db!(self, |pool| {
            Ok(sqlx::query(
                "UPDATE panoramas SET status = 'failed', message = 'the panel stopped during the stitch' WHERE status = 'running' AND ($1 = '' OR server_id = $1)",
            )
            .bind(&*self.server)
            .execute(pool)
            .await?
            .rows_affected())
        })
    }
}
