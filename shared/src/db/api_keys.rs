//! Repository for `api_key` rows.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::auth::{self, Role};

/// A stored key, without its secret.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiKey {
    /// Key id (for revocation).
    pub id: Uuid,
    /// A name for people.
    pub name: String,
    /// The first characters of the key.
    pub key_prefix: String,
    /// The project the key is limited to; `None` means every project.
    pub project_id: Option<Uuid>,
    /// What the key may do.
    pub roles: Vec<Role>,
    /// `active` or `revoked`.
    pub status: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last use, updated at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Whether the key is active and not expired at `now`.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.status == "active" && self.expires_at.is_none_or(|at| at > now)
    }

    /// Whether the key covers `project_id`.
    pub fn covers(&self, project_id: Uuid) -> bool {
        self.project_id.is_none_or(|p| p == project_id)
    }

    /// Whether any of the key's roles grants `needed`.
    pub fn has_role(&self, needed: Role) -> bool {
        self.roles.iter().any(|r| r.grants(needed))
    }
}

impl ApiKey {
    /// Reads a key from the row's columns `first..first + 9`, in the order of `COLUMNS`
    /// (for statements that select a key next to other data).
    pub fn from_columns(row: &Row, first: usize) -> anyhow::Result<Self> {
        let roles: Vec<String> = row.try_get(first + 4)?;
        Ok(Self {
            id: row.try_get(first)?,
            name: row.try_get(first + 1)?,
            key_prefix: row.try_get(first + 2)?,
            project_id: row.try_get(first + 3)?,
            roles: roles
                .iter()
                .map(|r| r.parse())
                .collect::<Result<_, String>>()
                .map_err(anyhow::Error::msg)?,
            status: row.try_get(first + 5)?,
            created_at: row.try_get(first + 6)?,
            expires_at: row.try_get(first + 7)?,
            last_used_at: row.try_get(first + 8)?,
        })
    }
}

impl TryFrom<&Row> for ApiKey {
    type Error = anyhow::Error;
    fn try_from(row: &Row) -> Result<Self, Self::Error> {
        Self::from_columns(row, 0)
    }
}

const COLUMNS: &str =
    "id, name, key_prefix, project_id, roles, status, created_at, expires_at, last_used_at";

/// What is needed to create a key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// A name for people.
    pub name: String,
    /// `None` for every project.
    pub project_id: Option<Uuid>,
    /// Granted roles (at least one).
    pub roles: Vec<Role>,
    /// Expiry, if any.
    pub expires_at: Option<DateTime<Utc>>,
}

fn role_names(roles: &[Role]) -> Vec<String> {
    roles.iter().map(|r| r.as_str().to_owned()).collect()
}

/// Creates a key and returns it with its secret, which is not stored and cannot be shown again.
pub async fn create(
    client: &impl GenericClient,
    new: &NewApiKey,
) -> anyhow::Result<(ApiKey, String)> {
    let secret = auth::generate_key();
    let sql = format!(
        "INSERT INTO api_key (id, name, key_hash, key_prefix, project_id, roles, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    );
    let row = client
        .query_one(
            &sql,
            &[
                &Uuid::new_v4(),
                &new.name,
                &auth::hash_key(&secret),
                &auth::key_prefix(&secret),
                &new.project_id,
                &role_names(&new.roles),
                &new.expires_at,
            ],
        )
        .await?;
    Ok((ApiKey::try_from(&row)?, secret))
}

/// Registers a key whose secret comes from outside (the `FLOWMETER_API_KEY` bootstrap):
/// an admin key for every project. Idempotent: the same secret is registered once.
pub async fn ensure_bootstrap(client: &impl GenericClient, secret: &str) -> anyhow::Result<()> {
    client
        .execute(
            "INSERT INTO api_key (id, name, key_hash, key_prefix, project_id, roles)
             VALUES ($1, 'bootstrap (FLOWMETER_API_KEY)', $2, $3, NULL, ARRAY['admin'])
             ON CONFLICT (key_hash) DO NOTHING",
            &[
                &Uuid::new_v4(),
                &auth::hash_key(secret),
                &auth::key_prefix(secret),
            ],
        )
        .await?;
    Ok(())
}

/// Finds a key by the SHA-256 hash of its secret ([`auth::hash_key`]).
pub async fn find_by_hash(
    client: &impl GenericClient,
    key_hash: &str,
) -> anyhow::Result<Option<ApiKey>> {
    let sql = format!("SELECT {COLUMNS} FROM api_key WHERE key_hash = $1");
    let stmt = client.prepare_cached(&sql).await?;
    client
        .query_opt(&stmt, &[&key_hash])
        .await?
        .as_ref()
        .map(ApiKey::try_from)
        .transpose()
}

/// Records a use, at most once a minute per key, so reads do not turn into writes.
pub async fn touch(client: &impl GenericClient, id: Uuid) -> anyhow::Result<()> {
    let stmt = client
        .prepare_cached(
            "UPDATE api_key SET last_used_at = now()
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        )
        .await?;
    client.execute(&stmt, &[&id]).await?;
    Ok(())
}

/// Every key, newest first.
pub async fn list(client: &impl GenericClient) -> anyhow::Result<Vec<ApiKey>> {
    let sql = format!("SELECT {COLUMNS} FROM api_key ORDER BY created_at DESC, id");
    client
        .query(&sql, &[])
        .await?
        .iter()
        .map(ApiKey::try_from)
        .collect()
}

/// Revokes a key; returns whether a key with that id exists.
pub async fn revoke(client: &impl GenericClient, id: Uuid) -> anyhow::Result<bool> {
    let updated = client
        .execute(
            "UPDATE api_key SET status = 'revoked', revoked_at = COALESCE(revoked_at, now())
             WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(updated == 1)
}
