//! Camera secrets and refused connections.

use serde::Serialize;

use super::{Catalog, CatalogError, RefusalCode, Result};

/// Rows kept in `auth_failures`; older ones are dropped.
const KEEP_FAILURES: i64 = 10_000;

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

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct AuthFailureRow {
    pub id: i64,
    pub at_us: i64,
    pub address: String,
    pub claimed_id: Option<String>,
    pub code: RefusalCode,
    pub reason: String,
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
        cctv_protocol::validate_camera_id(id)
            .map_err(|e| CatalogError::Invalid(format!("{e}: {id:?}")))?;
        let mut tx = self.pool.begin().await?;
        // Writing first makes this a write transaction from the start, so it
        // cannot fail on upgrade when another connection wrote meanwhile.
        sqlx::query(
            "INSERT INTO cameras (id, name, name_locked, state, state_since_us, first_seen_us, last_seen_us)
             VALUES (?1, CASE WHEN ?2 = '' THEN ?1 ELSE ?2 END, ?2 != '', 'offline', ?3, ?3, ?3)
             ON CONFLICT (id) DO UPDATE SET
                name = CASE WHEN ?2 = '' THEN cameras.name ELSE ?2 END,
                name_locked = CASE WHEN ?2 = '' THEN cameras.name_locked ELSE 1 END",
        )
        .bind(id)
        .bind(name)
        .bind(now_us)
        .execute(&mut *tx)
        .await?;
        let existing: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT revoked_us FROM camera_credentials WHERE camera_id = ?1")
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
            "INSERT INTO camera_credentials (camera_id, secret, created_us) VALUES (?1, ?2, ?3)
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
    }

    pub async fn camera_key(&self, id: &str) -> Result<StoredKey> {
        let row: Option<(Vec<u8>, Option<i64>)> = sqlx::query_as(
            "SELECT secret, revoked_us FROM camera_credentials WHERE camera_id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(StoredKey::from_row(row))
    }

    /// Revokes a camera's secret. `false` if it had none to revoke.
    pub async fn revoke_credentials(&self, id: &str, now_us: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE camera_credentials SET revoked_us = ?2
             WHERE camera_id = ?1 AND revoked_us IS NULL",
        )
        .bind(id)
        .bind(now_us)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every camera whose secret is revoked.
    pub async fn revoked_cameras(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT camera_id FROM camera_credentials WHERE revoked_us IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Gives a sending panel a secret (replacing any it had).
    pub async fn add_sender(&self, id: &str, secret: &[u8; 32], now_us: i64) -> Result<()> {
        cctv_protocol::validate_camera_id(id)
            .map_err(|e| CatalogError::Invalid(format!("sender id: {e}: {id:?}")))?;
        sqlx::query(
            "INSERT INTO dispatch_senders (id, secret, created_us) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET
                secret = excluded.secret, created_us = excluded.created_us, revoked_us = NULL",
        )
        .bind(id)
        .bind(&secret[..])
        .bind(now_us)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn sender_key(&self, id: &str) -> Result<StoredKey> {
        let row: Option<(Vec<u8>, Option<i64>)> =
            sqlx::query_as("SELECT secret, revoked_us FROM dispatch_senders WHERE id = ?1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(StoredKey::from_row(row))
    }

    pub async fn revoke_sender(&self, id: &str, now_us: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE dispatch_senders SET revoked_us = ?2 WHERE id = ?1 AND revoked_us IS NULL",
        )
        .bind(id)
        .bind(now_us)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a refused connection. With `event`, the claimed camera's
    /// history gets a `rejected` event with that detail in the same
    /// transaction, so a reader sees both rows or neither.
    pub async fn add_auth_failure(
        &self,
        at_us: i64,
        address: &str,
        claimed_id: Option<&str>,
        code: RefusalCode,
        reason: &str,
        event: Option<&str>,
    ) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let id = sqlx::query(
            "INSERT INTO auth_failures (at_us, address, claimed_id, code, reason)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(at_us)
        .bind(address)
        .bind(claimed_id)
        .bind(code.as_str())
        .bind(reason)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        if let (Some(camera), Some(detail)) = (claimed_id, event) {
            sqlx::query(
                "INSERT INTO camera_events (camera_id, kind, at_us, detail) VALUES (?1, ?2, ?3, ?4)",
            )
            .bind(camera)
            .bind(super::EventKind::Rejected.as_str())
            .bind(at_us)
            .bind(detail)
            .execute(&mut *tx)
            .await?;
        }
        if id % 100 == 0 {
            sqlx::query("DELETE FROM auth_failures WHERE id <= ?1")
                .bind(id - KEEP_FAILURES)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// The newest refused connections first.
    pub async fn auth_failures(&self, limit: i64) -> Result<Vec<AuthFailureRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM auth_failures ORDER BY id DESC LIMIT ?1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
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

    #[tokio::test]
    async fn refused_connections_are_listed_newest_first() {
        let c = Catalog::open_in_memory().await.unwrap();
        c.add_auth_failure(
            1,
            "10.0.0.9:4000",
            Some("door"),
            RefusalCode::WrongSecret,
            "wrong secret",
            None,
        )
        .await
        .unwrap();
        c.add_auth_failure(
            2,
            "10.0.0.9:4001",
            None,
            RefusalCode::NotTls,
            "plain TCP",
            None,
        )
        .await
        .unwrap();
        let rows = c.auth_failures(10).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].code, RefusalCode::NotTls);
        assert_eq!(rows[1].claimed_id.as_deref(), Some("door"));
    }
}
