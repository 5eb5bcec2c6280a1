//! Writing the rows of changes, deployments and incidents a delta names: one upsert per
//! table. An entity's row is its whole fact (`facts` JSONB, what the fold reloads through
//! `flowmeter_shared::db::dora::load_facts`) with the columns a reader filters on.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;

use crate::fold::dora::DoraKind;
use crate::fold::{Delta, ProjectState};

fn ids_of(delta: &Delta, kind: DoraKind) -> impl Iterator<Item = &String> {
    delta
        .dora
        .iter()
        .filter(move |(k, _)| *k == kind)
        .map(|(_, id)| id)
}

fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(value)?)
}

/// Upserts the delta's DORA rows.
pub(super) async fn write_dora(
    client: &impl GenericClient,
    state: &ProjectState,
    delta: &Delta,
    last_seq: i64,
) -> anyhow::Result<()> {
    let project = state.project_id;
    let dora = &state.dora;
    let changes: Vec<_> = ids_of(delta, DoraKind::Change)
        .filter_map(|id| dora.changes.get(id).map(|c| (id, c)))
        .collect();
    if !changes.is_empty() {
        let ids: Vec<&str> = changes.iter().map(|(id, _)| id.as_str()).collect();
        let at: Vec<DateTime<Utc>> = changes.iter().map(|(_, c)| c.committed_at).collect();
        let service: Vec<Option<&str>> =
            changes.iter().map(|(_, c)| c.service.as_deref()).collect();
        let facts = changes
            .iter()
            .map(|(_, c)| json(c))
            .collect::<anyhow::Result<Vec<_>>>()?;
        client
            .execute(
                "INSERT INTO metrics_change (project_id, change_id, committed_at, service, facts, last_seq)
                 SELECT $1, *, $6 FROM UNNEST($2::text[], $3::timestamptz[], $4::text[], $5::jsonb[])
                 ON CONFLICT (project_id, change_id) DO UPDATE SET committed_at = EXCLUDED.committed_at,
                     service = EXCLUDED.service, facts = EXCLUDED.facts, last_seq = EXCLUDED.last_seq",
                &[&project, &ids, &at, &service, &facts, &last_seq],
            )
            .await?;
    }
    let deployments: Vec<_> = ids_of(delta, DoraKind::Deployment)
        .filter_map(|id| dora.deployments.get(id).map(|d| (id, d)))
        .collect();
    if !deployments.is_empty() {
        let ids: Vec<&str> = deployments.iter().map(|(id, _)| id.as_str()).collect();
        let env: Vec<Option<&str>> = deployments.iter().map(|(_, d)| d.environment()).collect();
        let service: Vec<Option<&str>> = deployments.iter().map(|(_, d)| d.service()).collect();
        let finished: Vec<Option<DateTime<Utc>>> = deployments
            .iter()
            .map(|(_, d)| d.finished.as_ref().map(|f| f.at))
            .collect();
        let status: Vec<Option<&str>> = deployments
            .iter()
            .map(|(_, d)| {
                d.finished
                    .as_ref()
                    .and_then(|f| f.status)
                    .map(|s| s.as_str())
            })
            .collect();
        let changes: Vec<Value> = deployments
            .iter()
            .map(|(_, d)| {
                let all: std::collections::BTreeSet<&String> = d.change_ids().collect();
                Value::from_iter(all.into_iter().cloned())
            })
            .collect();
        let facts = deployments
            .iter()
            .map(|(_, d)| json(d))
            .collect::<anyhow::Result<Vec<_>>>()?;
        client
            .execute(
                "INSERT INTO metrics_deployment (project_id, deployment_id, environment, service,
                     finished_at, status, change_ids, facts, last_seq)
                 SELECT $1, u.id, u.env, u.service, u.finished, u.status,
                     ARRAY(SELECT jsonb_array_elements_text(u.changes)), u.facts, $9
                   FROM UNNEST($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[],
                        $7::jsonb[], $8::jsonb[]) AS u(id, env, service, finished, status, changes, facts)
                 ON CONFLICT (project_id, deployment_id) DO UPDATE SET environment = EXCLUDED.environment,
                     service = EXCLUDED.service, finished_at = EXCLUDED.finished_at,
                     status = EXCLUDED.status, change_ids = EXCLUDED.change_ids,
                     facts = EXCLUDED.facts, last_seq = EXCLUDED.last_seq",
                &[&project, &ids, &env, &service, &finished, &status, &changes, &facts, &last_seq],
            )
            .await?;
    }
    let incidents: Vec<_> = ids_of(delta, DoraKind::Incident)
        .filter_map(|id| dora.incidents.get(id).map(|i| (id, i)))
        .collect();
    if !incidents.is_empty() {
        let ids: Vec<&str> = incidents.iter().map(|(id, _)| id.as_str()).collect();
        let service: Vec<Option<&str>> = incidents.iter().map(|(_, i)| i.service()).collect();
        let opened: Vec<Option<DateTime<Utc>>> = incidents
            .iter()
            .map(|(_, i)| i.opened.as_ref().map(|e| e.at))
            .collect();
        let resolved: Vec<Option<DateTime<Utc>>> = incidents
            .iter()
            .map(|(_, i)| i.resolved.as_ref().map(|e| e.at))
            .collect();
        let causes: Vec<Value> = incidents
            .iter()
            .map(|(_, i)| {
                let all: std::collections::BTreeSet<&str> = i.causes().collect();
                Value::from_iter(all)
            })
            .collect();
        let facts = incidents
            .iter()
            .map(|(_, i)| json(i))
            .collect::<anyhow::Result<Vec<_>>>()?;
        client
            .execute(
                "INSERT INTO metrics_incident (project_id, incident_id, service, opened_at, resolved_at,
                     caused_by_deployment_ids, facts, last_seq)
                 SELECT $1, u.id, u.service, u.opened, u.resolved,
                     ARRAY(SELECT jsonb_array_elements_text(u.causes)), u.facts, $8
                   FROM UNNEST($2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
                        $6::jsonb[], $7::jsonb[]) AS u(id, service, opened, resolved, causes, facts)
                 ON CONFLICT (project_id, incident_id) DO UPDATE SET service = EXCLUDED.service,
                     opened_at = EXCLUDED.opened_at, resolved_at = EXCLUDED.resolved_at,
                     caused_by_deployment_ids = EXCLUDED.caused_by_deployment_ids,
                     facts = EXCLUDED.facts, last_seq = EXCLUDED.last_seq",
                &[&project, &ids, &service, &opened, &resolved, &causes, &facts, &last_seq],
            )
            .await?;
    }
    Ok(())
}
