//! The catalog: SQLite (the default) or PostgreSQL, through the same sqlx
//! code. Owns the schema (`migrations/` at the
//! repository root, embedded and applied at open), and every query the panel
//! runs. It never touches recording files: callers write the file first and
//! the row second.

mod cameras;
mod credentials;
mod events;
mod exports;
mod panoramas;
mod recordings;
mod servers;
mod states;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub use cameras::{CameraRow, CameraSettings};
pub use credentials::{AuthFailureRow, OpenPairing, Refusal, StoredKey};
pub use events::{EventFilter, EventRow, SpanEnd};
pub use exports::{DispatchRow, ExportRow};
pub use panoramas::{PanoramaResult, PanoramaRow};
pub use recordings::{Finished, NewRecording, RecordingFilter, RecordingRow};
pub use servers::{BEAT_STALE_US, ServerRow, ServerState};
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

/// Where the catalog lives: a SQLite file (the default, under `data/`) or a
/// PostgreSQL server shared by several panels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    /// `postgres://...` (or `postgresql://...`) is a server; anything else
    /// is a SQLite file's path.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Self::Postgres(s.to_string())
        } else {
            Self::Sqlite(PathBuf::from(s.strip_prefix("sqlite://").unwrap_or(s)))
        }
    }
}

impl std::fmt::Display for Location {
    /// For logs: a server's URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => match url.split_once('@') {
                Some((user, host)) => match user.rsplit_once(':') {
                    Some((user, _)) if !user.ends_with('/') => write!(f, "{user}:***@{host}"),
                    _ => f.write_str(url),
                },
                None => f.write_str(url),
            },
        }
    }
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same sqlx code on whichever backend the catalog has: the body
/// is compiled once per backend with `$pool` naming its pool. Queries are
/// written once, in SQL both understand (`$1` parameters, `RETURNING id`,
/// `CASE` rather than two-argument `MAX`).
macro_rules! on_db {
    ($catalog:expr, |$pool:ident| $body:expr) => {
        match &$catalog.pool {
            $crate::catalog::Pool::Sqlite($pool) => $body,
            $crate::catalog::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

/// A handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Catalog {
    pool: Pool,
    /// The recording server this handle writes as. '' for none (a command
    /// line tool, a test): then what is scoped to one server's rows
    /// (repair, retention, a path's row) takes every server's.
    server: Arc<str>,
}

impl Catalog {
    /// Opens the catalog where `location` says, applying migrations.
    pub async fn connect(location: &Location) -> Result<Self> {
        match location {
            Location::Sqlite(path) => Self::open(path).await,
            Location::Postgres(url) => Self::open_postgres(url).await,
        }
    }

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
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        Ok(Self {
            pool: Pool::Sqlite(pool),
            server: "".into(),
        })
    }

    /// Connects to a PostgreSQL server and applies migrations. Several
    /// panels may do this at once: sqlx serialises migrations with an
    /// advisory lock.
    pub async fn open_postgres(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        Ok(Self {
            pool: Pool::Postgres(pool),
            server: "".into(),
        })
    }

    /// A private in-memory database, for tests.
    pub async fn open_in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        Ok(Self {
            pool: Pool::Sqlite(pool),
            server: "".into(),
        })
    }

    /// Which backend this catalog is on: `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        on_db!(self, |pool| pool.close().await)
    }

    /// A setting changed on this server's panel (e.g. `listen`), kept
    /// across restarts. Each server has its own; one written before there
    /// were servers is read as this server's until it writes its own.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        on_db!(self, |pool| {
            let v: Option<(String,)> = sqlx::query_as(
                "SELECT value FROM panel_state WHERE key IN ($1, $2)
                 ORDER BY CASE key WHEN $1 THEN 0 ELSE 1 END LIMIT 1",
            )
            .bind(self.setting_key(key))
            .bind(format!("setting.{key}"))
            .fetch_optional(pool)
            .await?;
            Ok(v.map(|(s,)| s))
        })
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query(
                "INSERT INTO panel_state (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(self.setting_key(key))
            .bind(value)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    fn setting_key(&self, key: &str) -> String {
        match &*self.server {
            "" => format!("setting.{key}"),
            server => format!("server.{server}.setting.{key}"),
        }
    }
}
