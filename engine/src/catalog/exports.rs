//! Export and dispatch rows: what evidence was packed, where it must go, and
//! how far each transfer has got.

use serde::Serialize;

use super::{Catalog, DispatchState, ExportStatus, Result};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct ExportRow {
    pub id: i64,
    /// Relative to the data directory.
    pub path: String,
    pub created_us: i64,
    pub cameras: String,
    pub from_us: i64,
    pub to_us: i64,
    pub files: i64,
    pub bytes: i64,
    pub sha256: String,
    pub status: ExportStatus,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct DispatchRow {
    pub id: i64,
    pub export_id: i64,
    pub target: String,
    pub state: DispatchState,
    pub attempts: i64,
    pub bytes_sent: i64,
    pub next_attempt_us: i64,
    pub created_us: i64,
    pub done_us: Option<i64>,
    pub last_error: String,
}

impl Catalog {
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_export(
        &self,
        path: &str,
        created_us: i64,
        cameras: &str,
        from_us: i64,
        to_us: i64,
        files: i64,
        bytes: i64,
        sha256: &str,
    ) -> Result<i64> {
        Ok(sqlx::query(
            "INSERT INTO exports (path, created_us, cameras, from_us, to_us, files, bytes, sha256, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'complete')",
        )
        .bind(path)
        .bind(created_us)
        .bind(cameras)
        .bind(from_us)
        .bind(to_us)
        .bind(files)
        .bind(bytes)
        .bind(sha256)
        .execute(&self.pool)
        .await?
        .last_insert_rowid())
    }

    /// Logs an export that did not finish (cancelled or failed); no file is kept.
    pub async fn log_failed_export(
        &self,
        created_us: i64,
        cameras: &str,
        status: ExportStatus,
        detail: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO exports (path, created_us, cameras, from_us, to_us, files, bytes, sha256, status, detail)
             VALUES (?1, ?2, ?3, 0, 0, 0, 0, '', ?4, ?5)",
        )
        .bind(format!("({status} {created_us})"))
        .bind(created_us)
        .bind(cameras)
        .bind(status.as_str())
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Exports, newest first.
    pub async fn exports(&self, limit: i64) -> Result<Vec<ExportRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM exports ORDER BY created_us DESC, id DESC LIMIT ?1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn export(&self, id: i64) -> Result<Option<ExportRow>> {
        Ok(sqlx::query_as("SELECT * FROM exports WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn export_by_path(&self, path: &str) -> Result<Option<ExportRow>> {
        Ok(sqlx::query_as("SELECT * FROM exports WHERE path = ?1")
            .bind(path)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Queues a transfer of an export to a target (once per pair while pending).
    pub async fn queue_dispatch(&self, export_id: i64, target: &str, now_us: i64) -> Result<i64> {
        if let Some((id,)) = sqlx::query_as::<_, (i64,)>(
            "SELECT id FROM dispatches WHERE export_id = ?1 AND target = ?2 AND state = 'pending'",
        )
        .bind(export_id)
        .bind(target)
        .fetch_optional(&self.pool)
        .await?
        {
            return Ok(id);
        }
        Ok(sqlx::query(
            "INSERT INTO dispatches (export_id, target, state, next_attempt_us, created_us)
             VALUES (?1, ?2, 'pending', ?3, ?3)",
        )
        .bind(export_id)
        .bind(target)
        .bind(now_us)
        .execute(&self.pool)
        .await?
        .last_insert_rowid())
    }

    /// Pending transfers whose time has come, oldest first.
    pub async fn due_dispatches(&self, now_us: i64) -> Result<Vec<DispatchRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM dispatches WHERE state = 'pending' AND next_attempt_us <= ?1
             ORDER BY next_attempt_us, id",
        )
        .bind(now_us)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn dispatches(&self, limit: i64) -> Result<Vec<DispatchRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM dispatches ORDER BY id DESC LIMIT ?1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn dispatch(&self, id: i64) -> Result<Option<DispatchRow>> {
        Ok(sqlx::query_as("SELECT * FROM dispatches WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// One attempt ended: bytes it sent, and either done or the next try.
    pub async fn dispatch_attempt(
        &self,
        id: i64,
        sent: i64,
        outcome: std::result::Result<i64, (String, i64, bool)>,
    ) -> Result<()> {
        match outcome {
            Ok(done_us) => {
                sqlx::query(
                    "UPDATE dispatches SET state = 'done', attempts = attempts + 1,
                        bytes_sent = bytes_sent + ?2, done_us = ?3, last_error = '' WHERE id = ?1",
                )
                .bind(id)
                .bind(sent)
                .bind(done_us)
                .execute(&self.pool)
                .await?;
            }
            Err((error, next_us, give_up)) => {
                sqlx::query(
                    "UPDATE dispatches SET attempts = attempts + 1, bytes_sent = bytes_sent + ?2,
                        last_error = ?3, next_attempt_us = ?4,
                        state = CASE WHEN ?5 THEN 'failed' ELSE state END
                     WHERE id = ?1",
                )
                .bind(id)
                .bind(sent)
                .bind(error)
                .bind(next_us)
                .bind(give_up)
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }

    pub async fn set_auto_dispatch(&self, camera: &str, on: bool) -> Result<bool> {
        let r = sqlx::query("UPDATE cameras SET auto_dispatch = ?2 WHERE id = ?1")
            .bind(camera)
            .bind(on)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
