//! Camera secrets and refused connections.

use serde::Serialize;

use super::{Catalog, CatalogError, RefusalCode, Result, on_db};

/// Rows kept in `auth_failures`; older ones are dropped. Each row is a
/// burst of attempts, so a flood from one address takes one row.
const KEEP_FAILURES: i64 = 10_000;
/// Attempts with no longer pause than this between them are one burst.
const BURST_GAP_US: i64 = 600_000_000;

/// A camera's secret as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredKey {
    Valid([u8; 32]),
    Revoked,
    None,
}

impl StoredKey {
    /// From a `(secret, revoked_us)` row, or its absence.
    fn from_row(row: Option<(Vec<u8>, Option<i64>)>) -> Self {
        match row {
            None => Self::None,
            Some((_, Some(_))) => Self::Revoked,
            Some((secret, None)) => <[u8; 32]>::try_from(secret.as_slice())
                .map(Self::Valid)
                .unwrap_or(Self::None),
        }
    }
}

/// A burst of refused connections from one host, for one reason.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct AuthFailureRow {
    pub id: i64,
    /// The latest attempt.
    pub at_us: i64,
    /// The latest attempt's HOST:PORT.
    pub address: String,
    pub claimed_id: Option<String>,
    pub code: RefusalCode,
    /// The latest attempt's reason, in words.
    pub reason: String,
    pub host: String,
    pub attempts: i64,
    pub first_us: i64,
    #[serde(skip)]
    pub event_id: Option<i64>,
    /// The recording server that refused it.
    pub server_id: String,
}

/// A pairing code that may still be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPairing {
    pub id: i64,
    pub camera_id: String,
    pub key: [u8; 32],
}

/// Refused connections to record, added up: `attempts` of them from
/// `host` between `first_us` and `at_us`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub at_us: i64,
    pub first_us: i64,
    pub attempts: i64,
    /// The latest attempt's HOST:PORT.
    pub address: String,
    pub host: String,
    pub claimed: Option<String>,
    pub code: RefusalCode,
    pub reason: String,
}

impl Refusal {
    pub fn new(
        at_us: i64,
        address: std::net::SocketAddr,
        claimed: Option<&str>,
        code: RefusalCode,
        reason: &str,
    ) -> Self {
        Self {
            at_us,
            first_us: at_us,
            attempts: 1,
            address: address.to_string(),
            host: address.ip().to_string(),
            claimed: claimed.map(str::to_string),
            code,
            reason: reason.to_string(),
        }
    }

    /// Adds `other`'s attempts; the latest address and reason are kept.
    pub fn merge(&mut self, other: &Refusal) {
        self.attempts = self.attempts.saturating_add(other.attempts);
        self.first_us = self.first_us.min(other.first_us);
        if other.at_us >= self.at_us {
            self.at_us = other.at_us;
            self.address.clone_from(&other.address);
            self.reason.clone_from(&other.reason);
        }
    }

    /// What the claimed camera's history says of the burst.
    fn event_detail(&self, attempts: i64, first_us: i64) -> String {
        if attempts <= 1 {
            return format!("{}; attempt from {}", self.reason, self.address);
        }
        let secs = (self.at_us.saturating_sub(first_us)) / 1_000_000;
        format!(
            "{}; {attempts} attempts from {} over {secs} s",
            self.reason, self.host
        )
    }
}

impl Catalog {
    /// Creates the camera if it is new and gives it `secret`. A camera that
    /// already has a valid secret keeps it unless `replace` is set.
    pub async fn add_credentials(
        &self,
        id: &str,
        name: &str,
        secret: &[u8; 32],
        replace: bool,
        now_us: i64,
    ) -> Result<()> {
        on_db!(self, |pool| {
            cctv_protocol::validate_camera_id(id)
                .map_err(|e| CatalogError::Invalid(format!("{e}: {id:?}")))?;
            let mut tx = pool.begin().await?;
            // Writing first makes this a write transaction from the start, so it
            // cannot fail on upgrade when another connection wrote meanwhile.
            sqlx::query(
                "INSERT INTO cameras (id, name, name_locked, state, state_since_us, first_seen_us, last_seen_us)
                 VALUES ($1, CASE WHEN $2 = '' THEN $1 ELSE $2 END, $2 != '', 'offline', $3, $3, $3)
                 ON CONFLICT (id) DO UPDATE SET
                    name = CASE WHEN $2 = '' THEN cameras.name ELSE $2 END,
                    name_locked = CASE WHEN $2 = '' THEN cameras.name_locked ELSE TRUE END",
            )
            .bind(id)
            .bind(name)
            .bind(now_us)
            .execute(&mut *tx)
            .await?;
            let existing: Option<(Option<i64>,)> =
                sqlx::query_as("SELECT revoked_us FROM camera_credentials WHERE camera_id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some((None,)) = existing
                && !replace
            {
                return Err(CatalogError::Invalid(format!(
                    "camera {id} already has a secret (revoke it first, or use --replace to issue a new one)"
                )));
            }
            sqlx::query(
                "INSERT INTO camera_credentials (camera_id, secret, created_us) VALUES ($1, $2, $3)
                 ON CONFLICT (camera_id) DO UPDATE SET
                    secret = excluded.secret, created_us = excluded.created_us, revoked_us = NULL",
            )
            .bind(id)
            .bind(&secret[..])
            .bind(now_us)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn camera_key(&self, id: &str) -> Result<StoredKey> {
        on_db!(self, |pool| {
            let row: Option<(Vec<u8>, Option<i64>)> = sqlx::query_as(
                "SELECT secret, revoked_us FROM camera_credentials WHERE camera_id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?;
            Ok(StoredKey::from_row(row))
        })
    }

    /// Revokes a camera's secret. `false` if it had none to revoke.
    pub async fn revoke_credentials(&self, id: &str, now_us: i64) -> Result<bool> {
        on_db!(self, |pool| {
            let done = sqlx::query(
                "UPDATE camera_credentials SET revoked_us = $2
                 WHERE camera_id = $1 AND revoked_us IS NULL",
            )
            .bind(id)
            .bind(now_us)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Every camera whose secret is revoked.
    pub async fn revoked_cameras(&self) -> Result<Vec<String>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT camera_id FROM camera_credentials WHERE revoked_us IS NOT NULL",
            )
            .fetch_all(pool)
            .await?)
        })
    }

    /// Gives a sending panel a secret (replacing any it had).
    pub async fn add_sender(&self, id: &str, secret: &[u8; 32], now_us: i64) -> Result<()> {
        on_db!(self, |pool| {
            cctv_protocol::validate_camera_id(id)
                .map_err(|e| CatalogError::Invalid(format!("sender id: {e}: {id:?}")))?;
            sqlx::query(
                "INSERT INTO dispatch_senders (id, secret, created_us) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET
                    secret = excluded.secret, created_us = excluded.created_us, revoked_us = NULL",
            )
            .bind(id)
            .bind(&secret[..])
            .bind(now_us)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn sender_key(&self, id: &str) -> Result<StoredKey> {
        on_db!(self, |pool| {
            let row: Option<(Vec<u8>, Option<i64>)> =
                sqlx::query_as("SELECT secret, revoked_us FROM dispatch_senders WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
            Ok(StoredKey::from_row(row))
        })
    }

    pub async fn revoke_sender(&self, id: &str, now_us: i64) -> Result<bool> {
        on_db!(self, |pool| {
            let done = sqlx::query(
                "UPDATE dispatch_senders SET revoked_us = $2 WHERE id = $1 AND revoked_us IS NULL",
            )
            .bind(id)
            .bind(now_us)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Records refused connections, each added to the burst it continues
    /// (same host, reason and claimed camera, the last attempt at most 10
    /// minutes before) or starting a new one. A burst claiming a known
    /// camera has one `rejected` event in that camera's history, its detail
    /// kept up to date with the count. One transaction.
    pub async fn add_refusals(&self, refusals: &[Refusal]) -> Result<()> {
        on_db!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut newest = 0;
            for r in refusals {
                let burst: Option<(i64, i64, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT id, attempts, first_us, event_id FROM auth_failures
                     WHERE host = $1 AND code = $2 AND claimed_id IS NOT DISTINCT FROM $3 AND at_us >= $4
                     ORDER BY id DESC LIMIT 1",
                )
                .bind(&r.host)
                .bind(r.code.as_str())
                .bind(&r.claimed)
                .bind(r.first_us.saturating_sub(BURST_GAP_US))
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((id, attempts, first_us, event_id)) = burst {
                    let attempts = attempts.saturating_add(r.attempts);
                    let first_us = first_us.min(r.first_us);
                    sqlx::query(
                        "UPDATE auth_failures SET attempts = $2, first_us = $3,
                            at_us = CASE WHEN at_us > $4 THEN at_us ELSE $4 END, address = $5, reason = $6 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(attempts)
                    .bind(first_us)
                    .bind(r.at_us)
                    .bind(&r.address)
                    .bind(&r.reason)
                    .execute(&mut *tx)
                    .await?;
                    if let Some(event) = event_id {
                        sqlx::query("UPDATE camera_events SET detail = $2 WHERE id = $1")
                            .bind(event)
                            .bind(r.event_detail(attempts, first_us))
                            .execute(&mut *tx)
                            .await?;
                    }
                    continue;
                }
                // Only a camera the catalog knows has a history to write in.
                let event_id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO camera_events (camera_id, kind, at_us, detail, server_id)
                     SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM cameras WHERE id = $1)
                     RETURNING id",
                )
                .bind(&r.claimed)
                .bind(super::EventKind::Rejected.as_str())
                .bind(r.first_us)
                .bind(r.event_detail(r.attempts, r.first_us))
                .bind(&*self.server)
                .fetch_optional(&mut *tx)
                .await?;
                newest = sqlx::query_scalar(
                    "INSERT INTO auth_failures
                        (at_us, address, claimed_id, code, reason, host, attempts, first_us, event_id, server_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     RETURNING id",
                )
                .bind(r.at_us)
                .bind(&r.address)
                .bind(&r.claimed)
                .bind(r.code.as_str())
                .bind(&r.reason)
                .bind(&r.host)
                .bind(r.attempts)
                .bind(r.first_us)
                .bind(event_id)
                .bind(&*self.server)
                .fetch_one(&mut *tx)
                .await?;
            }
            if newest > KEEP_FAILURES {
                sqlx::query("DELETE FROM auth_failures WHERE id <= $1")
                    .bind(newest - KEEP_FAILURES)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Bursts of refused connections whose last attempt is older than
    /// `before_us` are forgotten. Returns how many.
    pub async fn prune_refusals(&self, before_us: i64) -> Result<u64> {
        on_db!(self, |pool| {
            let done = sqlx::query("DELETE FROM auth_failures WHERE at_us < $1")
                .bind(before_us)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
    }

    /// Keeps a pairing code's key for `camera_id`, valid until `expires_us`.
    pub async fn add_pairing(
        &self,
        camera_id: &str,
        key: &[u8; 32],
        now_us: i64,
        expires_us: i64,
    ) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query(
                "INSERT INTO pairing_codes (camera_id, code_key, created_us, expires_us)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(camera_id)
            .bind(&key[..])
            .bind(now_us)
            .bind(expires_us)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Codes not yet used nor expired at `now_us`.
    pub async fn open_pairings(&self, now_us: i64) -> Result<Vec<OpenPairing>> {
        on_db!(self, |pool| {
            let rows: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(
                "SELECT id, camera_id, code_key FROM pairing_codes
                 WHERE used_us IS NULL AND expires_us > $1",
            )
            .bind(now_us)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .filter_map(|(id, camera_id, key)| {
                    Some(OpenPairing {
                        id,
                        camera_id,
                        key: key.try_into().ok()?,
                    })
                })
                .collect())
        })
    }

    /// Marks a code used, if it still was open: false if another agent
    /// used it first or it expired meanwhile.
    pub async fn use_pairing(&self, id: i64, now_us: i64, by: &str) -> Result<bool> {
        on_db!(self, |pool| {
            let done = sqlx::query(
                "UPDATE pairing_codes SET used_us = $2, used_by = $3
                 WHERE id = $1 AND used_us IS NULL AND expires_us > $2",
            )
            .bind(id)
            .bind(now_us)
            .bind(by)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// The newest refused connections first.
    pub async fn auth_failures(&self, limit: i64) -> Result<Vec<AuthFailureRow>> {
        on_db!(self, |pool| {
            Ok(
                sqlx::query_as("SELECT * FROM auth_failures ORDER BY at_us DESC, id DESC LIMIT $1")
                    .bind(limit)
                    .fetch_all(pool)
                    .await?,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_secret_is_issued_once_revoked_and_replaced_on_request() {
        let c = Catalog::open_in_memory().await.unwrap();
        c.add_credentials("door", "Front door", &[1; 32], false, 10)
            .await
            .unwrap();
        assert_eq!(
            c.camera_key("door").await.unwrap(),
            StoredKey::Valid([1; 32])
        );
        assert_eq!(c.camera("door").await.unwrap().unwrap().name, "Front door");
        let again = c.add_credentials("door", "", &[2; 32], false, 11).await;
        assert!(
            again
                .unwrap_err()
                .to_string()
                .contains("already has a secret")
        );
        assert!(c.revoke_credentials("door", 12).await.unwrap());
        assert!(!c.revoke_credentials("door", 13).await.unwrap());
        assert_eq!(c.camera_key("door").await.unwrap(), StoredKey::Revoked);
        assert_eq!(c.revoked_cameras().await.unwrap(), vec!["door".to_string()]);
        c.add_credentials("door", "", &[3; 32], false, 14)
            .await
            .unwrap();
        assert_eq!(
            c.camera_key("door").await.unwrap(),
            StoredKey::Valid([3; 32])
        );
        assert_eq!(c.camera("door").await.unwrap().unwrap().name, "Front door");
        assert_eq!(c.camera_key("nobody").await.unwrap(), StoredKey::None);
        assert!(
            c.add_credentials("../x", "", &[0; 32], false, 1)
                .await
                .is_err()
        );
    }

    fn refusal(at_us: i64, port: u16, claimed: Option<&str>, code: RefusalCode) -> Refusal {
        let addr = std::net::SocketAddr::from(([10, 0, 0, 9], port));
        Refusal::new(at_us, addr, claimed, code, code.as_str())
    }

    #[tokio::test]
    async fn refused_connections_are_counted_per_burst_and_listed_newest_first() {
        let c = Catalog::open_in_memory().await.unwrap();
        c.add_credentials("door", "Front door", &[1; 32], false, 1)
            .await
            .unwrap();
        let wrong = |at, port| refusal(at, port, Some("door"), RefusalCode::WrongSecret);
        c.add_refusals(&[wrong(1_000_000, 4000), wrong(2_000_000, 4001)])
            .await
            .unwrap();
        c.add_refusals(&[wrong(5_000_000, 4002)]).await.unwrap();
        c.add_refusals(&[refusal(6_000_000, 4003, None, RefusalCode::NotTls)])
            .await
            .unwrap();
        let rows = c.auth_failures(10).await.unwrap();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].code, RefusalCode::NotTls);
        let burst = &rows[1];
        assert_eq!(
            (burst.attempts, burst.first_us, burst.at_us),
            (3, 1_000_000, 5_000_000)
        );
        assert_eq!(burst.address, "10.0.0.9:4002");
        let history = c.events(Some("door"), None, None, 10, 0).await.unwrap();
        assert_eq!(history.len(), 1, "one event for the burst: {history:?}");
        assert!(
            history[0].detail.contains("3 attempts from 10.0.0.9"),
            "{}",
            history[0].detail
        );
        // Eleven minutes of quiet start a new burst.
        c.add_refusals(&[wrong(5_000_000 + 660_000_000, 4004)])
            .await
            .unwrap();
        assert_eq!(c.auth_failures(10).await.unwrap().len(), 3);
        assert_eq!(c.prune_refusals(6_000_001).await.unwrap(), 2);
    }
}
