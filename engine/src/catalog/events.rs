//! Camera events: the history of states and recording changes, so the
//! history view can show when and why each camera was down.

use serde::Serialize;

use super::{Catalog, EventKind, Result};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub camera_id: String,
    pub kind: EventKind,
    pub at_us: i64,
    pub detail: String,
}

impl Catalog {
    pub async fn add_event(
        &self,
        camera_id: &str,
        kind: EventKind,
        at_us: i64,
        detail: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO camera_events (camera_id, kind, at_us, detail) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(camera_id)
        .bind(kind.as_str())
        .bind(at_us)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Events older than `before_us` are forgotten. Returns how many.
    pub async fn prune_events(&self, before_us: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM camera_events WHERE at_us < ?1")
            .bind(before_us)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The first event of a camera after `at_us`, if any.
    pub async fn first_event_after(&self, camera_id: &str, at_us: i64) -> Result<Option<EventRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM camera_events WHERE camera_id = ?1 AND at_us > ?2 ORDER BY at_us, id LIMIT 1",
        )
        .bind(camera_id)
        .bind(at_us)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn has_event(&self, camera_id: &str, kind: EventKind, at_us: i64) -> Result<bool> {
        let n: (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM camera_events WHERE camera_id = ?1 AND kind = ?2 AND at_us = ?3",
        )
        .bind(camera_id)
        .bind(kind.as_str())
        .bind(at_us)
        .fetch_one(&self.pool)
        .await?;
        Ok(n.0 > 0)
    }

    /// Events of one camera (or all) in `[from_us, to_us)`, newest first, paged.
    pub async fn events(
        &self,
        camera_id: Option<&str>,
        from_us: Option<i64>,
        to_us: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<EventRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM camera_events
             WHERE (?1 IS NULL OR camera_id = ?1)
               AND (?2 IS NULL OR at_us >= ?2)
               AND (?3 IS NULL OR at_us < ?3)
             ORDER BY at_us DESC, id DESC
             LIMIT ?4 OFFSET ?5",
        )
        .bind(camera_id)
        .bind(from_us)
        .bind(to_us)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?)
    }
}
