//! The rows of changes, deployments and incidents (`metrics_change`, `metrics_deployment`,
//! `metrics_incident`) read back as [`DoraFacts`]: the worker reloads its fold state from
//! them, and the trends endpoint computes the DORA series from them.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use crate::metrics::dora::DoraFacts;

/// A project's changes, deployments and incidents.
pub async fn load_facts(
    client: &impl GenericClient,
    project_id: Uuid,
) -> anyhow::Result<DoraFacts> {
    let mut dora = DoraFacts::default();
    let p = &[&project_id as &(dyn tokio_postgres::types::ToSql + Sync)];
    for row in client
        .query(
            &client
                .prepare_cached("SELECT change_id, facts FROM metrics_change WHERE project_id = $1")
                .await?,
            p,
        )
        .await?
    {
        dora.changes
            .insert(row.get(0), serde_json::from_value(row.get(1))?);
    }
    for row in client
        .query(
            &client
                .prepare_cached(
                    "SELECT deployment_id, facts FROM metrics_deployment WHERE project_id = $1",
                )
                .await?,
            p,
        )
        .await?
    {
        dora.deployments
            .insert(row.get(0), serde_json::from_value(row.get(1))?);
    }
    for row in client
        .query(
            &client
                .prepare_cached(
                    "SELECT incident_id, facts FROM metrics_incident WHERE project_id = $1",
                )
                .await?,
            p,
        )
        .await?
    {
        dora.incidents
            .insert(row.get(0), serde_json::from_value(row.get(1))?);
    }
    Ok(dora)
}
