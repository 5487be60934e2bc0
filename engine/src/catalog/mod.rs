//! The catalog: SQLite through sqlx. Owns the schema (`migrations/` at the
//! repository root, embedded and applied at open), and every query the panel
//! runs. It never touches recording files: callers write the file first and
//! the row second.

mod cameras;
mod credentials;
mod events;
mod exports;
mod panoramas;
mod recordings;
mod states;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub use cameras::{CameraRow, CameraSettings};
pub use credentials::{AuthFailureRow, OpenPairing, Refusal, StoredKey};
pub use events::{EventFilter, EventRow, SpanEnd};
pub use exports::{DispatchRow, ExportRow};
pub use panoramas::{PanoramaResult, PanoramaRow};
pub use recordings::{Finished, NewRecording, RecordingFilter, RecordingRow};
pub use states::{
    CameraState, DispatchState, EventKind, ExportStatus, PanoramaStatus, RecordMode,
    RecordingStatus, RefusalCode,
};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("cannot apply the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, CatalogError>;

/// A handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Catalog {
    pool: SqlitePool,
}

impl Catalog {
    /// Opens (creating if needed) the database file and applies migrations.
    /// WAL mode, foreign keys on.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| CatalogError::Dir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// A private in-memory database, for tests.
    pub async fn open_in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Records that the engine is alive, so other processes reading the
    /// catalog can tell a live camera from one whose panel has stopped.
    pub async fn beat(&self, now_us: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO panel_state (key, value) VALUES ('heartbeat_us', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(now_us.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// When the engine last said it was alive, if ever.
    pub async fn last_beat(&self) -> Result<Option<i64>> {
        let v: Option<(String,)> =
            sqlx::query_as("SELECT value FROM panel_state WHERE key = 'heartbeat_us'")
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.and_then(|(s,)| s.parse().ok()))
    }

    /// A setting changed on the panel (e.g. `listen`), kept across restarts.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let v: Option<(String,)> = sqlx::query_as("SELECT value FROM panel_state WHERE key = ?1")
            .bind(format!("setting.{key}"))
            .fetch_optional(&self.pool)
            .await?;
        Ok(v.map(|(s,)| s))
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO panel_state (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(format!("setting.{key}"))
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks the engine stopped (a clean shutdown).
    pub async fn clear_beat(&self) -> Result<()> {
        sqlx::query("DELETE FROM panel_state WHERE key = 'heartbeat_us'")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
