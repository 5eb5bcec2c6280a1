//! Integration settings per project: the GitHub webhook secret, stored encrypted (the
//! caller seals and opens it; this module only moves the bytes).

use deadpool_postgres::GenericClient;
use uuid::Uuid;

/// Stores (or replaces) a project's encrypted GitHub webhook secret.
pub async fn store_github_secret(
    client: &impl GenericClient,
    project_id: Uuid,
    nonce: &[u8],
    ciphertext: &[u8],
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO integration_github_secret (project_id, nonce, ciphertext)
             VALUES ($1, $2, $3)
             ON CONFLICT (project_id) DO UPDATE
                SET nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, updated_at = now()",
            &[&project_id, &nonce, &ciphertext],
        )
        .await
        .map(drop)
}

/// A project's encrypted GitHub webhook secret (nonce, ciphertext), if one is set.
pub async fn github_secret(
    client: &impl GenericClient,
    project_id: Uuid,
) -> Result<Option<(Vec<u8>, Vec<u8>)>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT nonce, ciphertext FROM integration_github_secret WHERE project_id = $1",
            &[&project_id],
        )
        .await?
        .map(|row| (row.get(0), row.get(1))))
}
