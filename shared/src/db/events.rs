//! Repository for the event log and projects.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

use crate::events::{EventType, NewEvent};

/// Per-project outcome of an append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ProjectAppend {
    /// The project.
    pub project_id: Uuid,
    /// Events stored.
    pub accepted: u64,
    /// Events skipped because their `(project_id, event_id)` already existed.
    pub duplicates: u64,
    /// First sequence number assigned, when any event was stored.
    #[schema(required = true)]
    pub first_seq: Option<i64>,
    /// Last sequence number assigned, when any event was stored.
    #[schema(required = true)]
    pub last_seq: Option<i64>,
}

/// Appends a batch in one statement. Events are inserted grouped by project in a fixed
/// order (so concurrent batches lock project heads in the same order and cannot
/// deadlock) and, within a project, in batch order (so seq follows the producer's
/// order). Existing event ids are skipped without consuming a seq. The caller owns the
/// transaction; this also records project names from accepted `project_upserted` events.
#[tracing::instrument(skip_all, fields(events = events.len()), err)]
pub async fn append(
    client: &impl GenericClient,
    events: &[NewEvent],
) -> anyhow::Result<Vec<ProjectAppend>> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| (events[i].project_id, i));

    let mut project_ids = Vec::with_capacity(events.len());
    let mut event_ids = Vec::with_capacity(events.len());
    let mut entity_types = Vec::with_capacity(events.len());
    let mut entity_ids = Vec::with_capacity(events.len());
    let mut event_types = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    let mut occurred = Vec::with_capacity(events.len());
    let mut caused_by = Vec::with_capacity(events.len());
    let mut correlation = Vec::with_capacity(events.len());
    for &i in &order {
        let e = &events[i];
        project_ids.push(e.project_id);
        event_ids.push(e.event_id.as_str());
        entity_types.push(e.entity_type.as_str());
        entity_ids.push(e.entity_id.as_str());
        event_types.push(e.event_type.as_str());
        payloads.push(&e.payload);
        occurred.push(e.occurred_at);
        caused_by.push(e.caused_by.as_deref());
        correlation.push(e.correlation_id.as_deref());
    }

    let stmt = client
        .prepare_cached(
            "INSERT INTO event_log (project_id, event_id, entity_type, entity_id, event_type,
                                    payload, occurred_at, caused_by, correlation_id)
             SELECT p, e, et, ei, ty, pl, oc, cb, co
               FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                           $6::jsonb[], $7::timestamptz[], $8::text[], $9::text[])
                    WITH ORDINALITY AS b(p, e, et, ei, ty, pl, oc, cb, co, ord)
              ORDER BY ord
             ON CONFLICT DO NOTHING
             RETURNING project_id, seq, event_id",
        )
        .await?;
    let rows = client
        .query(
            &stmt,
            &[
                &project_ids,
                &event_ids,
                &entity_types,
                &entity_ids,
                &event_types,
                &payloads,
                &occurred,
                &caused_by,
                &correlation,
            ],
        )
        .await?;

    let mut summary: BTreeMap<Uuid, ProjectAppend> = BTreeMap::new();
    for e in events {
        summary
            .entry(e.project_id)
            .or_insert(ProjectAppend {
                project_id: e.project_id,
                accepted: 0,
                duplicates: 0,
                first_seq: None,
                last_seq: None,
            })
            // Every submitted event is a duplicate unless a row came back for it.
            .duplicates += 1;
    }
    let mut stored = std::collections::HashSet::with_capacity(rows.len());
    for row in &rows {
        let project_id: Uuid = row.get(0);
        let seq: i64 = row.get(1);
        if let Some(p) = summary.get_mut(&project_id) {
            p.accepted += 1;
            p.duplicates -= 1;
            p.first_seq = Some(p.first_seq.map_or(seq, |s| s.min(seq)));
            p.last_seq = Some(p.last_seq.map_or(seq, |s| s.max(seq)));
        }
        stored.insert((project_id, row.get::<_, String>(2)));
    }

    // Names from project_upserted events that were stored (a replayed old event must not
    // rename a project); the last one of the batch wins.
    let mut names: BTreeMap<Uuid, (&str, &str)> = BTreeMap::new();
    for e in events.iter().filter(|e| {
        e.event_type == EventType::ProjectUpserted
            && stored.contains(&(e.project_id, e.event_id.clone()))
    }) {
        let name = e.payload["name"].as_str().unwrap_or_default();
        let status = e.payload["status"].as_str().unwrap_or("active");
        names.insert(e.project_id, (name, status));
    }
    for (project_id, (name, status)) in names {
        client
            .execute(
                "UPDATE project SET name = $2, status = $3, updated_at = now() WHERE id = $1",
                &[&project_id, &name, &status],
            )
            .await?;
    }
    Ok(summary.into_values().collect())
}

/// Wakes listening workers; delivered by PostgreSQL when the transaction commits.
pub async fn notify_appended(client: &impl GenericClient, project_id: Uuid) -> anyhow::Result<()> {
    client
        .execute(
            "SELECT pg_notify('flowmeter_events', $1)",
            &[&project_id.to_string()],
        )
        .await?;
    Ok(())
}

/// A project row.
#[derive(Debug, Clone, Serialize)]
pub struct Project {
    /// Project id.
    pub id: Uuid,
    /// Name (from `project_upserted`, else the id).
    pub name: String,
    /// active, paused or archived.
    pub status: String,
    /// When the first event arrived.
    pub created_at: DateTime<Utc>,
}

/// Looks a project up.
pub async fn find_project(
    client: &impl GenericClient,
    project_id: Uuid,
) -> anyhow::Result<Option<Project>> {
    let stmt = client
        .prepare_cached("SELECT id, name, status, created_at FROM project WHERE id = $1")
        .await?;
    Ok(client
        .query_opt(&stmt, &[&project_id])
        .await?
        .map(|row| Project {
            id: row.get(0),
            name: row.get(1),
            status: row.get(2),
            created_at: row.get(3),
        }))
}

/// The last committed seq of a project (0 when it has no events).
pub async fn head_seq(client: &impl GenericClient, project_id: Uuid) -> anyhow::Result<i64> {
    let stmt = client
        .prepare_cached("SELECT last_seq FROM event_stream_head WHERE project_id = $1")
        .await?;
    Ok(client
        .query_opt(&stmt, &[&project_id])
        .await?
        .map_or(0, |row| row.get(0)))
}
