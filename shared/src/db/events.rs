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

/// An event of a batch whose `(project_id, event_id)` is already stored, or appears
/// earlier in the same batch, with different content (SPEC §14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Conflict {
    /// Position of the event in the batch (0-based).
    pub index: usize,
    /// Its event id.
    pub event_id: String,
}

/// [`append`] refused the batch: some events conflict with stored ones (or with earlier
/// events of the batch). The caller must roll the transaction back.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} event(s) reuse an event_id with different content", conflicts.len())]
pub struct ConflictError {
    /// Every conflicting event, in batch order.
    pub conflicts: Vec<Conflict>,
}

/// The columns of a batch, in the order events are inserted.
#[derive(Default)]
struct Columns<'a> {
    project_ids: Vec<Uuid>,
    event_ids: Vec<&'a str>,
    entity_types: Vec<&'a str>,
    entity_ids: Vec<&'a str>,
    event_types: Vec<&'a str>,
    payloads: Vec<std::borrow::Cow<'a, str>>,
    occurred: Vec<DateTime<Utc>>,
    caused_by: Vec<Option<&'a str>>,
    correlation: Vec<Option<&'a str>>,
}

impl<'a> Columns<'a> {
    fn of(events: &'a [NewEvent], order: impl Iterator<Item = usize>) -> anyhow::Result<Self> {
        let mut columns = Self::default();
        for i in order {
            let e = &events[i];
            columns.project_ids.push(e.project_id);
            columns.event_ids.push(e.event_id.as_str());
            columns.entity_types.push(e.entity_type.as_str());
            columns.entity_ids.push(e.entity_id.as_str());
            columns.event_types.push(e.event_type.as_str());
            // The producer's text when kept, so numbers are stored with every digit.
            columns.payloads.push(match &e.payload_text {
                Some(text) => std::borrow::Cow::Borrowed(text.as_str()),
                None => std::borrow::Cow::Owned(serde_json::to_string(&e.payload)?),
            });
            columns.occurred.push(e.occurred_at);
            columns.caused_by.push(e.caused_by.as_deref());
            columns.correlation.push(e.correlation_id.as_deref());
        }
        Ok(columns)
    }

    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 9] {
        [
            &self.project_ids,
            &self.event_ids,
            &self.entity_types,
            &self.entity_ids,
            &self.event_types,
            &self.payloads,
            &self.occurred,
            &self.caused_by,
            &self.correlation,
        ]
    }
}

const BATCH: &str = "UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                            $6::text[], $7::timestamptz[], $8::text[], $9::text[])
                     WITH ORDINALITY AS b(p, e, et, ei, ty, pl, oc, cb, co, ord)";

/// Appends a batch in one statement. Events are inserted grouped by project in a fixed
/// order (so concurrent batches lock project heads in the same order and cannot
/// deadlock) and, within a project, in batch order (so seq follows the producer's
/// order). Existing event ids are skipped without consuming a seq; inside the batch the
/// first occurrence of an event id is the one stored. The caller owns the transaction;
/// this also records project names from accepted `project_upserted` events.
///
/// A skipped event whose content (entity_type, entity_id, event_type, occurred_at,
/// payload, caused_by, correlation_id) differs from the stored one is a conflict: the
/// error is a [`ConflictError`] and the caller must roll back.
#[tracing::instrument(skip_all, fields(events = events.len()), err)]
pub async fn append(
    client: &impl GenericClient,
    events: &[NewEvent],
) -> anyhow::Result<Vec<ProjectAppend>> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| (events[i].project_id, i));
    let columns = Columns::of(events, order.iter().copied())?;

    let stmt = client
        .prepare_cached(&format!(
            "INSERT INTO event_log (project_id, event_id, entity_type, entity_id, event_type,
                                    payload, occurred_at, caused_by, correlation_id)
             SELECT p, e, et, ei, ty, pl::jsonb, oc, cb, co
               FROM {BATCH}
              ORDER BY ord
             ON CONFLICT DO NOTHING
             RETURNING project_id, seq, event_id"
        ))
        .await?;
    let rows = client.query(&stmt, &columns.params()).await?;

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
    let mut inserted = std::collections::HashSet::with_capacity(rows.len());
    for row in &rows {
        let project_id: Uuid = row.get(0);
        let seq: i64 = row.get(1);
        if let Some(p) = summary.get_mut(&project_id) {
            p.accepted += 1;
            p.duplicates -= 1;
            p.first_seq = Some(p.first_seq.map_or(seq, |s| s.min(seq)));
            p.last_seq = Some(p.last_seq.map_or(seq, |s| s.max(seq)));
        }
        inserted.insert((project_id, row.get::<_, String>(2)));
    }

    // The events whose row was stored by this statement: the first occurrence of each
    // inserted key. Every other event was skipped and must match what is stored.
    let mut first_of_key = std::collections::HashSet::with_capacity(events.len());
    let stored_here: Vec<bool> = events
        .iter()
        .map(|e| {
            first_of_key.insert((e.project_id, e.event_id.as_str()))
                && inserted.contains(&(e.project_id, e.event_id.clone()))
        })
        .collect();
    let skipped: Vec<usize> = (0..events.len()).filter(|&i| !stored_here[i]).collect();
    if !skipped.is_empty() {
        let conflicts = conflicting(client, events, &skipped).await?;
        if !conflicts.is_empty() {
            return Err(ConflictError { conflicts }.into());
        }
    }

    // Names from project_upserted events that were stored (a replayed old event or a
    // later copy must not rename a project); the last one of the batch wins.
    let mut names: BTreeMap<Uuid, (&str, &str)> = BTreeMap::new();
    for (e, _) in events
        .iter()
        .zip(&stored_here)
        .filter(|(e, stored)| **stored && e.event_type == EventType::ProjectUpserted)
    {
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

/// The skipped events whose stored row (committed earlier, or the batch's first copy)
/// differs from them, compared by PostgreSQL (so JSONB equality decides for payloads).
async fn conflicting(
    client: &impl GenericClient,
    events: &[NewEvent],
    skipped: &[usize],
) -> anyhow::Result<Vec<Conflict>> {
    let columns = Columns::of(events, skipped.iter().copied())?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT b.ord
               FROM {BATCH}
               JOIN event_log l ON l.project_id = b.p AND l.event_id = b.e
              WHERE (l.entity_type, l.entity_id, l.event_type, l.payload, l.occurred_at,
                     l.caused_by, l.correlation_id)
                    IS DISTINCT FROM (b.et, b.ei, b.ty, b.pl::jsonb, b.oc, b.cb, b.co)
              ORDER BY b.ord"
        ))
        .await?;
    let rows = client.query(&stmt, &columns.params()).await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let ord: i64 = row.get(0);
            let index = *skipped.get(usize::try_from(ord).ok()?.checked_sub(1)?)?;
            Some(Conflict {
                index,
                event_id: events[index].event_id.clone(),
            })
        })
        .collect())
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
