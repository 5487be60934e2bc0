//! Export and dispatch rows: what evidence was packed, where it must go, and
//! how far each transfer has got.

use serde::Serialize;

use super::{Catalog, DispatchState, ExportStatus, Result, on_db};

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
    /// The recording server holding the zip.
    pub server_id: String,
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
        on_db!(self, |pool| {
            Ok(sqlx::query_scalar(
                "INSERT INTO exports (path, created_us, cameras, from_us, to_us, files, bytes, sha256, status, server_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'complete', $9)
                 RETURNING id",
            )
            .bind(path)
            .bind(created_us)
            .bind(cameras)
            .bind(from_us)
            .bind(to_us)
            .bind(files)
            .bind(bytes)
            .bind(sha256)
            .bind(&*self.server)
            .fetch_one(pool)
            .await?)
        })
    }

    /// Logs an export that did not finish (cancelled or failed); no file is kept.
    pub async fn log_failed_export(
        &self,
        created_us: i64,
        cameras: &str,
        status: ExportStatus,
        detail: &str,
    ) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query(
                "INSERT INTO exports (path, created_us, cameras, from_us, to_us, files, bytes, sha256, status, detail, server_id)
                 VALUES ($1, $2, $3, 0, 0, 0, 0, '', $4, $5, $6)",
            )
            .bind(format!("({status} {created_us})"))
            .bind(created_us)
            .bind(cameras)
            .bind(status.as_str())
            .bind(detail)
            .bind(&*self.server)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Exports, newest first.
    pub async fn exports(&self, limit: i64) -> Result<Vec<ExportRow>> {
        on_db!(self, |pool| {
            Ok(
                sqlx::query_as("SELECT * FROM exports ORDER BY created_us DESC, id DESC LIMIT $1")
                    .bind(limit)
                    .fetch_all(pool)
                    .await?,
            )
        })
    }

    pub async fn export(&self, id: i64) -> Result<Option<ExportRow>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_as("SELECT * FROM exports WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    pub async fn export_by_path(&self, path: &str) -> Result<Option<ExportRow>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_as("SELECT * FROM exports WHERE path = $1")
                .bind(path)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Queues a transfer of an export to a target (once per pair while pending).
    pub async fn queue_dispatch(&self, export_id: i64, target: &str, now_us: i64) -> Result<i64> {
        on_db!(self, |pool| {
            if let Some((id,)) = sqlx::query_as::<_, (i64,)>(
                "SELECT id FROM dispatches WHERE export_id = $1 AND target = $2 AND state = 'pending'",
            )
            .bind(export_id)
            .bind(target)
            .fetch_optional(pool)
            .await?
            {
                return Ok(id);
            }
            Ok(sqlx::query_scalar(
                "INSERT INTO dispatches (export_id, target, state, next_attempt_us, created_us)
                 VALUES ($1, $2, 'pending', $3, $3)
                 RETURNING id",
            )
            .bind(export_id)
            .bind(target)
            .bind(now_us)
            .fetch_one(pool)
            .await?)
        })
    }

    /// Pending transfers whose time has come, oldest first.
    pub async fn due_dispatches(&self, now_us: i64) -> Result<Vec<DispatchRow>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT d.* FROM dispatches d JOIN exports e ON e.id = d.export_id
                 WHERE d.state = 'pending' AND d.next_attempt_us <= $1 AND ($2 = '' OR e.server_id = $2)
                 ORDER BY d.next_attempt_us, d.id",
            )
            .bind(now_us)
            .bind(&*self.server)
            .fetch_all(pool)
            .await?)
        })
    }

    pub async fn dispatches(&self, limit: i64) -> Result<Vec<DispatchRow>> {
        on_db!(self, |pool| {
            Ok(
                sqlx::query_as("SELECT * FROM dispatches ORDER BY id DESC LIMIT $1")
                    .bind(limit)
                    .fetch_all(pool)
                    .await?,
            )
        })
    }

    pub async fn dispatch(&self, id: i64) -> Result<Option<DispatchRow>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_as("SELECT * FROM dispatches WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// One attempt ended: bytes it sent, and either done or the next try.
    pub async fn dispatch_attempt(
        &self,
        id: i64,
        sent: i64,
        outcome: std::result::Result<i64, (String, i64, bool)>,
    ) -> Result<()> {
        on_db!(self, |pool| {
            match outcome {
                Ok(done_us) => {
                    sqlx::query(
                        "UPDATE dispatches SET state = 'done', attempts = attempts + 1,
                            bytes_sent = bytes_sent + $2, done_us = $3, last_error = '' WHERE id = $1",
                    )
                    .bind(id)
                    .bind(sent)
                    .bind(done_us)
                    .execute(pool)
                    .await?;
                }
                Err((error, next_us, give_up)) => {
                    sqlx::query(
                        "UPDATE dispatches SET attempts = attempts + 1, bytes_sent = bytes_sent + $2,
                            last_error = $3, next_attempt_us = $4,
                            state = CASE WHEN $5 THEN 'failed' ELSE state END
                         WHERE id = $1",
                    )
                    .bind(id)
                    .bind(sent)
                    .bind(error)
                    .bind(next_us)
                    .bind(give_up)
                    .execute(pool)
                    .await?;
                }
            }
            Ok(())
        })
    }

    pub async fn set_auto_dispatch(&self, camera: &str, on: bool) -> Result<bool> {
        on_db!(self, |pool| {
            let r = sqlx::query("UPDATE cameras SET auto_dispatch = $2 WHERE id = $1")
                .bind(camera)
                .bind(on)
                .execute(pool)
                .await?;
            Ok(r.rows_affected() == 1)
        })
    }
}
