//! Camera rows: registration on first sight, state, per-camera settings.

use serde::Serialize;

use super::{CameraState, Catalog, CatalogError, RecordMode, Result, on_db};

/// One row of `cameras`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct CameraRow {
    pub id: String,
    pub name: String,
    pub name_locked: bool,
    pub record_mode: RecordMode,
    pub retain_bytes: Option<i64>,
    pub retain_days: Option<i64>,
    pub state: CameraState,
    pub state_since_us: i64,
    pub state_detail: String,
    pub first_seen_us: i64,
    pub last_seen_us: i64,
    pub last_address: String,
    pub agent_version: String,
    pub width: i64,
    pub height: i64,
    pub fps_milli: i64,
    pub auto_dispatch: bool,
    /// The recording server it is (or was last) connected to; '' before
    /// it first connects.
    pub server_id: String,
}

/// What an agent says about itself when it connects.
#[derive(Debug, Clone)]
pub struct CameraSettings {
    pub id: String,
    pub name: String,
    pub address: String,
    pub agent_version: String,
    pub width: u32,
    pub height: u32,
    pub fps_milli: u32,
}

impl Catalog {
    /// Registers a camera on first sight, or refreshes what its agent says
    /// about it. A name set on the panel is kept.
    pub async fn register_camera(
        &self,
        c: &CameraSettings,
        default_mode: RecordMode,
        now_us: i64,
    ) -> Result<CameraRow> {
        on_db!(self, |pool| {
            sqlx::query(
                "INSERT INTO cameras (id, name, record_mode, state, state_since_us, first_seen_us,
                                      last_seen_us, last_address, agent_version, width, height, fps_milli,
                                      server_id)
                 VALUES ($1, $2, $3, 'offline', $4, $4, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (id) DO UPDATE SET
                    name = CASE WHEN cameras.name_locked THEN cameras.name ELSE excluded.name END,
                    last_seen_us = excluded.last_seen_us,
                    last_address = excluded.last_address,
                    agent_version = excluded.agent_version,
                    width = excluded.width,
                    height = excluded.height,
                    fps_milli = excluded.fps_milli,
                    server_id = excluded.server_id",
            )
            .bind(&c.id)
            .bind(&c.name)
            .bind(default_mode.as_str())
            .bind(now_us)
            .bind(&c.address)
            .bind(&c.agent_version)
            .bind(i64::from(c.width))
            .bind(i64::from(c.height))
            .bind(i64::from(c.fps_milli))
            .bind(&*self.server)
            .execute(pool)
            .await?;
            self.camera(&c.id)
                .await?
                .ok_or_else(|| CatalogError::Invalid(format!("camera {} vanished", c.id)))
        })
    }

    pub async fn camera(&self, id: &str) -> Result<Option<CameraRow>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_as("SELECT * FROM cameras WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// All cameras with their current state, by name.
    pub async fn cameras(&self) -> Result<Vec<CameraRow>> {
        on_db!(self, |pool| {
            Ok(
                sqlx::query_as("SELECT * FROM cameras ORDER BY lower(name), id")
                    .fetch_all(pool)
                    .await?,
            )
        })
    }

    /// Sets a camera's state and records the change as an event, together.
    /// A camera live here is this server's; a server it has left cannot
    /// mark it offline or stalled (the event is still its history).
    pub async fn set_state(
        &self,
        id: &str,
        state: CameraState,
        at_us: i64,
        detail: &str,
    ) -> Result<()> {
        on_db!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE cameras SET state = $2, state_since_us = $3, state_detail = $4,
                        last_seen_us = CASE WHEN last_seen_us > $3 THEN last_seen_us ELSE $3 END,
                        server_id = CASE WHEN $2 = 'live' THEN $5 ELSE server_id END
                 WHERE id = $1 AND ($2 = 'live' OR server_id IN ($5, ''))",
            )
            .bind(id)
            .bind(state.as_str())
            .bind(at_us)
            .bind(detail)
            .bind(&*self.server)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO camera_events (camera_id, kind, at_us, detail, server_id)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(state.event_kind().as_str())
            .bind(at_us)
            .bind(detail)
            .bind(&*self.server)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// At start-up: this server's cameras the last run left live or
    /// stalled are offline now.
    pub async fn mark_all_offline(&self, at_us: i64, detail: &str) -> Result<Vec<String>> {
        let ids: Vec<(String,)> = on_db!(self, |pool| {
            sqlx::query_as(
                "SELECT id FROM cameras WHERE state != 'offline' AND ($1 = '' OR server_id = $1)",
            )
            .bind(&*self.server)
            .fetch_all(pool)
            .await?
        });
        for (id,) in &ids {
            self.set_state(id, CameraState::Offline, at_us, detail)
                .await?;
        }
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    pub async fn set_record_mode(&self, id: &str, mode: RecordMode) -> Result<bool> {
        on_db!(self, |pool| {
            let r = sqlx::query("UPDATE cameras SET record_mode = $2 WHERE id = $1")
                .bind(id)
                .bind(mode.as_str())
                .execute(pool)
                .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// Renames a camera on the panel; the agent's own name no longer applies.
    pub async fn rename_camera(&self, id: &str, name: &str) -> Result<bool> {
        on_db!(self, |pool| {
            if name.trim().is_empty() || name.len() > cctv_protocol::MAX_NAME_LEN {
                return Err(CatalogError::Invalid(format!(
                    "a camera name must be 1 to {} bytes",
                    cctv_protocol::MAX_NAME_LEN
                )));
            }
            let r = sqlx::query("UPDATE cameras SET name = $2, name_locked = TRUE WHERE id = $1")
                .bind(id)
                .bind(name.trim())
                .execute(pool)
                .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// Per-camera retention limits; `None` removes a limit.
    pub async fn set_retention(
        &self,
        id: &str,
        max_bytes: Option<i64>,
        max_days: Option<i64>,
    ) -> Result<bool> {
        on_db!(self, |pool| {
            let r =
                sqlx::query("UPDATE cameras SET retain_bytes = $2, retain_days = $3 WHERE id = $1")
                    .bind(id)
                    .bind(max_bytes)
                    .bind(max_days)
                    .execute(pool)
                    .await?;
            Ok(r.rows_affected() == 1)
        })
    }
}
