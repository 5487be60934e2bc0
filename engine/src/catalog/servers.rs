//! Recording servers: the panels sharing one catalog. Each registers at
//! start, says it is alive every few seconds and marks a clean stop; the
//! rows it writes carry its id. A server whose beat is older than
//! [`BEAT_STALE_US`] is unreachable, whatever its rows last said.

use serde::Serialize;

use super::{Catalog, CatalogError, Result, on_db};

/// A server that has not said it is alive for this long is down.
pub const BEAT_STALE_US: i64 = 15_000_000;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct ServerRow {
    pub id: String,
    pub address: String,
    #[serde(skip)]
    pub instance: String,
    pub started_us: i64,
    pub heartbeat_us: i64,
    pub stopped_us: Option<i64>,
    /// Its TLS certificate's fingerprint (`sha256:...`); empty for plain TCP.
    pub fingerprint: String,
}

/// What a server is doing, as far as the catalog can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    Running,
    /// Stopped cleanly.
    Stopped,
    /// No beat for [`BEAT_STALE_US`]: killed, crashed, or cut off.
    Unreachable,
}

impl ServerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Running => "running",
            ServerState::Stopped => "stopped",
            ServerState::Unreachable => "unreachable",
        }
    }
}

impl ServerRow {
    pub fn state(&self, now_us: i64) -> ServerState {
        if self.stopped_us.is_some() {
            ServerState::Stopped
        } else if now_us - self.heartbeat_us < BEAT_STALE_US {
            ServerState::Running
        } else {
            ServerState::Unreachable
        }
    }

    /// Why a camera of this server shows offline when the server is not
    /// running, in words (`None` while it runs).
    pub fn why_down(&self, now_us: i64) -> Option<String> {
        match self.state(now_us) {
            ServerState::Running => None,
            ServerState::Stopped => Some(format!(
                "server {} stopped (its panel is not running)",
                self.id
            )),
            ServerState::Unreachable => Some(format!("server {} unreachable", self.id)),
        }
    }
}

/// Rows of a catalog from before servers.
const CLAIM_UNOWNED: [&str; 6] = [
    "UPDATE cameras SET server_id = $1 WHERE server_id = ''",
    "UPDATE camera_events SET server_id = $1 WHERE server_id = ''",
    "UPDATE recordings SET server_id = $1 WHERE server_id = ''",
    "UPDATE exports SET server_id = $1 WHERE server_id = ''",
    "UPDATE auth_failures SET server_id = $1 WHERE server_id = ''",
    "UPDATE panoramas SET server_id = $1 WHERE server_id = ''",
];

impl Catalog {
    /// This catalog handle's server: the id its rows are written with.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The same catalog, writing as server `id`.
    pub fn with_server(mut self, id: &str) -> Self {
        self.server = id.into();
        self
    }

    /// Registers this server at start. Refused while another panel runs
    /// with the same id (its beat fresh, its instance another), so two
    /// panels cannot write as one.
    pub async fn register_server(
        &self,
        address: &str,
        instance: &str,
        fingerprint: &str,
        now_us: i64,
    ) -> Result<()> {
        if let Some(other) = self.server_row(&self.server).await?
            && other.instance != instance
            && other.state(now_us) == ServerState::Running
        {
            return Err(CatalogError::Invalid(format!(
                "another panel runs as server {:?} (at {}, alive {} s ago): give each panel its own server_id",
                self.server,
                other.address,
                (now_us - other.heartbeat_us) / 1_000_000
            )));
        }
        on_db!(self, |pool| {
            sqlx::query(
                "INSERT INTO servers (id, address, instance, started_us, heartbeat_us, fingerprint, secret)
                 VALUES ($1, $2, $3, $4, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET address = excluded.address,
                    instance = excluded.instance, started_us = excluded.started_us,
                    heartbeat_us = excluded.heartbeat_us, stopped_us = NULL,
                    fingerprint = excluded.fingerprint,
                    secret = COALESCE(servers.secret, excluded.secret)",
            )
            .bind(&*self.server)
            .bind(address)
            .bind(instance)
            .bind(now_us)
            .bind(fingerprint)
            .bind(&crate::engine::new_secret().as_bytes()[..])
            .execute(pool)
            .await?;
            if let super::Pool::Sqlite(_) = self.pool {
                // A catalog from before servers held one panel's rows:
                // this one's.
                for claim in CLAIM_UNOWNED {
                    sqlx::query(claim).bind(&*self.server).execute(pool).await?;
                }
            }
            Ok(())
        })
    }

    /// Where agents and other panels reach this server, once known.
    pub async fn set_server_address(&self, address: &str) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query("UPDATE servers SET address = $2 WHERE id = $1")
                .bind(&*self.server)
                .bind(address)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Records that this server is alive.
    pub async fn beat(&self, now_us: i64) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query("UPDATE servers SET heartbeat_us = $2, stopped_us = NULL WHERE id = $1")
                .bind(&*self.server)
                .bind(now_us)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// When this server last said it was alive, unless it stopped cleanly.
    pub async fn last_beat(&self) -> Result<Option<i64>> {
        Ok(self
            .server_row(&self.server)
            .await?
            .filter(|s| s.stopped_us.is_none())
            .map(|s| s.heartbeat_us))
    }

    /// Marks this server stopped (a clean shutdown).
    pub async fn stop_server(&self, now_us: i64) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query("UPDATE servers SET stopped_us = $2 WHERE id = $1")
                .bind(&*self.server)
                .bind(now_us)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The secret a server proves when it views another's cameras.
    pub async fn server_secret(&self, id: &str) -> Result<Option<[u8; 32]>> {
        let row: Option<(Option<Vec<u8>>,)> = on_db!(self, |pool| {
            sqlx::query_as("SELECT secret FROM servers WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.and_then(|(s,)| s?.try_into().ok()))
    }

    pub async fn server_row(&self, id: &str) -> Result<Option<ServerRow>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_as("SELECT * FROM servers WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Every server that has ever run on this catalog, by id.
    pub async fn servers(&self) -> Result<Vec<ServerRow>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_as("SELECT * FROM servers ORDER BY id")
                .fetch_all(pool)
                .await?)
        })
    }
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

    use super::*;
    use crate::catalog::NewRecording;

    #[tokio::test]
    async fn a_catalog_from_before_servers_keeps_its_recordings_as_this_servers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("panel.db");
        // The catalog as a panel from before servers left it.
        {
            let options = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true);
            let pool = SqlitePool::connect_with(options).await.unwrap();
            let mut before = sqlx::migrate!("../migrations/sqlite");
            let older: Vec<_> = before
                .migrations
                .iter()
                .filter(|m| m.version <= 8)
                .cloned()
                .collect();
            before.migrations = older.into();
            before.run(&pool).await.unwrap();
            sqlx::query(
                "INSERT INTO cameras (id, name, state_since_us, first_seen_us, last_seen_us)
                 VALUES ('door', 'Door', 1, 1, 1)",
            )
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO recordings (camera_id, path, start_us, end_us, frames, width, height, status)
                 VALUES ('door', 'door/a.mkv', 10, 20, 5, 640, 480, 'complete')",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let hall = Catalog::open(&path).await.unwrap().with_server("hall");
        hall.register_server("hall:7700", "here", "", 100)
            .await
            .unwrap();
        let rows = hall.finished_oldest_first(None).await.unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        let r = &rows[0];
        assert_eq!(
            (r.path.as_str(), r.frames, r.server_id.as_str()),
            ("door/a.mkv", 5, "hall")
        );
        // A path is unique on its server only.
        let same = NewRecording {
            camera_id: "door".into(),
            path: "door/a.mkv".into(),
            start_us: 30,
            width: 640,
            height: 480,
            backfilled: false,
        };
        let gate = hall.clone().with_server("gate");
        gate.insert_recording(&same).await.unwrap();
        assert!(hall.insert_recording(&same).await.is_err());
    }
}
