//! Writing a delta: one bulk statement per table, in the caller's transaction.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

mod points;

use points::{write_breakdown, write_drilldown, write_trend};

use crate::fold::{Delta, ProjectState};

/// Writes every change of `delta` for `state`'s project.
#[tracing::instrument(skip_all, fields(project = %state.project_id), err)]
pub async fn write_delta(
    client: &impl GenericClient,
    state: &ProjectState,
    delta: &Delta,
    last_seq: i64,
) -> anyhow::Result<()> {
    let project = state.project_id;
    write_tasks(client, state, delta, last_seq).await?;
    write_other_projections(client, state, delta, last_seq).await?;
    write_counters(client, project, delta, last_seq).await?;
    write_trend(client, project, delta).await?;
    write_breakdown(client, project, delta).await?;
    write_drilldown(client, state, delta).await?;
    write_quarantine(client, project, delta).await?;
    super::dora::write_dora(client, state, delta, last_seq).await?;
    if let Some(summary) = &delta.summary {
        // Keep one snapshot per hour: the newest replaces earlier ones of the same hour.
        client
            .execute(
                "DELETE FROM metrics_summary WHERE project_id = $1
                    AND captured_at >= date_trunc('hour', $2::timestamptz) AND captured_at < $2",
                &[&project, &summary.captured_at],
            )
            .await?;
        client
            .execute(
                "INSERT INTO metrics_summary (project_id, captured_at, as_of_seq, payload, health, gap_filled)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (project_id, captured_at) DO UPDATE
                    SET as_of_seq = EXCLUDED.as_of_seq, payload = EXCLUDED.payload, health = EXCLUDED.health,
                        gap_filled = EXCLUDED.gap_filled",
                &[&project, &summary.captured_at, &summary.as_of_seq, &summary.payload, &summary.health, &summary.gap_filled],
            )
            .await?;
        // The drill-down rows were just written as of this snapshot.
        super::precompute::refresh(client, project, summary.captured_at).await?;
    }
    Ok(())
}

/// Rows that cannot exist yet get a plain `INSERT`; the others an upsert, whose conflict
/// handling costs about as much again per row.
fn split_fresh<'a>(
    ids: &'a std::collections::BTreeSet<String>,
    fresh: &std::collections::BTreeSet<String>,
) -> [(bool, Vec<&'a String>); 2] {
    let (new, old): (Vec<_>, Vec<_>) = ids.iter().partition(|id| fresh.contains(*id));
    [(true, new), (false, old)]
}

/// `sql` followed by its conflict clause unless the rows are fresh.
pub(super) fn insert_sql(sql: &str, fresh: bool, on_conflict: &str) -> String {
    if fresh {
        sql.to_owned()
    } else {
        format!("{sql} {on_conflict}")
    }
}

async fn write_tasks(
    client: &impl GenericClient,
    state: &ProjectState,
    delta: &Delta,
    last_seq: i64,
) -> anyhow::Result<()> {
    for (fresh, ids) in split_fresh(&delta.tasks, &delta.fresh_tasks) {
        let tasks: Vec<_> = ids.iter().filter_map(|id| state.task(id)).collect();
        write_task_rows(client, state, &tasks, fresh, last_seq).await?;
    }
    Ok(())
}

async fn write_task_rows(
    client: &impl GenericClient,
    state: &ProjectState,
    tasks: &[&flowmeter_shared::metrics::TaskFacts],
    fresh: bool,
    last_seq: i64,
) -> anyhow::Result<()> {
    if tasks.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();
    let title: Vec<Option<&str>> = tasks.iter().map(|t| t.title.as_deref()).collect();
    let phase: Vec<Option<&str>> = tasks.iter().map(|t| t.phase_id.as_deref()).collect();
    let milestone: Vec<Option<&str>> = tasks.iter().map(|t| t.milestone_id.as_deref()).collect();
    let assignee: Vec<Option<&str>> = tasks.iter().map(|t| t.assignee.as_deref()).collect();
    let class: Vec<Option<&str>> = tasks.iter().map(|t| t.task_class.as_deref()).collect();
    let priority: Vec<Option<i64>> = tasks.iter().map(|t| t.priority).collect();
    let task_state: Vec<&str> = tasks.iter().map(|t| t.state.as_str()).collect();
    let inferred: Vec<bool> = tasks.iter().map(|t| t.inferred).collect();
    let created: Vec<DateTime<Utc>> = tasks.iter().map(|t| t.created_at).collect();
    let claimed: Vec<Option<DateTime<Utc>>> = tasks.iter().map(|t| t.claimed_at).collect();
    let implemented: Vec<Option<DateTime<Utc>>> = tasks.iter().map(|t| t.implemented_at).collect();
    let integrated: Vec<Option<DateTime<Utc>>> = tasks.iter().map(|t| t.integrated_at).collect();
    let terminal: Vec<Option<DateTime<Utc>>> = tasks.iter().map(|t| t.terminal_at).collect();
    let entered: Vec<DateTime<Utc>> = tasks.iter().map(|t| t.state_entered_at).collect();
    let blocked: Vec<Option<DateTime<Utc>>> = tasks.iter().map(|t| t.blocked_since).collect();
    let attempts: Vec<i32> = tasks
        .iter()
        .map(|t| t.integration_attempts as i32)
        .collect();
    let failures: Vec<i32> = tasks
        .iter()
        .map(|t| t.integration_failures as i32)
        .collect();
    let mismatches: Vec<i32> = tasks
        .iter()
        .map(|t| t.from_state_mismatches as i32)
        .collect();
    let inferred_start: Vec<bool> = tasks.iter().map(|t| t.inferred_start).collect();
    // The per-task arrays are jagged, which a multi-dimensional array parameter cannot be,
    // so each travels as an array literal and is cast per row.
    let time_in_state: Vec<String> = tasks
        .iter()
        .map(|t| {
            array_literal(
                t.time_in_state_seconds
                    .0
                    .iter()
                    .map(|s| Some(s.to_string())),
            )
        })
        .collect();
    let blocked_started: Vec<String> = tasks
        .iter()
        .map(|t| {
            array_literal(
                t.blocked_episodes
                    .iter()
                    .map(|e| Some(timestamp(e.started_at))),
            )
        })
        .collect();
    let blocked_ended: Vec<String> = tasks
        .iter()
        .map(|t| array_literal(t.blocked_episodes.iter().map(|e| e.ended_at.map(timestamp))))
        .collect();
    let stmt = client
        .prepare_cached(&insert_sql(
            "INSERT INTO metrics_task (project_id, task_id, title, phase_id, milestone_id, assignee,
                 task_class, priority, state, inferred, created_at, claimed_at, implemented_at,
                 integrated_at, terminal_at, state_entered_at, blocked_since, integration_attempts,
                 integration_failures, time_in_state_seconds, blocked_started_at, blocked_ended_at,
                 facts, last_seq, from_state_mismatches, inferred_start)
             SELECT $1, u.id, u.title, u.phase, u.milestone, u.assignee, u.class, u.priority, u.state,
                 u.inferred, u.created, u.claimed, u.implemented, u.integrated, u.terminal, u.entered,
                 u.blocked, u.attempts, u.failures, u.times::float8[], u.started::timestamptz[],
                 u.ended::timestamptz[], NULL, $23, u.mismatches, u.inferred_start
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                 $7::text[], $8::int8[], $9::text[], $10::bool[], $11::timestamptz[], $12::timestamptz[],
                 $13::timestamptz[], $14::timestamptz[], $15::timestamptz[], $16::timestamptz[],
                 $17::timestamptz[], $18::int4[], $19::int4[], $20::text[], $21::text[], $22::text[],
                 $24::int4[], $25::bool[])
                 AS u(id, title, phase, milestone, assignee, class, priority, state, inferred, created,
                      claimed, implemented, integrated, terminal, entered, blocked, attempts, failures,
                      times, started, ended, mismatches, inferred_start)",
            fresh,
            "ON CONFLICT (project_id, task_id) DO UPDATE SET
                 title = EXCLUDED.title, phase_id = EXCLUDED.phase_id, milestone_id = EXCLUDED.milestone_id,
                 assignee = EXCLUDED.assignee, task_class = EXCLUDED.task_class, priority = EXCLUDED.priority,
                 state = EXCLUDED.state, inferred = EXCLUDED.inferred, created_at = EXCLUDED.created_at,
                 claimed_at = EXCLUDED.claimed_at, implemented_at = EXCLUDED.implemented_at,
                 integrated_at = EXCLUDED.integrated_at, terminal_at = EXCLUDED.terminal_at,
                 state_entered_at = EXCLUDED.state_entered_at, blocked_since = EXCLUDED.blocked_since,
                 integration_attempts = EXCLUDED.integration_attempts,
                 integration_failures = EXCLUDED.integration_failures,
                 time_in_state_seconds = EXCLUDED.time_in_state_seconds,
                 blocked_started_at = EXCLUDED.blocked_started_at,
                 blocked_ended_at = EXCLUDED.blocked_ended_at, facts = NULL,
                 last_seq = EXCLUDED.last_seq,
                 from_state_mismatches = EXCLUDED.from_state_mismatches,
                 inferred_start = EXCLUDED.inferred_start",
        ))
        .await?;
    client
        .execute(
            &stmt,
            &[
                &state.project_id,
                &ids,
                &title,
                &phase,
                &milestone,
                &assignee,
                &class,
                &priority,
                &task_state,
                &inferred,
                &created,
                &claimed,
                &implemented,
                &integrated,
                &terminal,
                &entered,
                &blocked,
                &attempts,
                &failures,
                &time_in_state,
                &blocked_started,
                &blocked_ended,
                &last_seq,
                &mismatches,
                &inferred_start,
            ],
        )
        .await?;
    Ok(())
}

/// A PostgreSQL array literal of already formatted elements (`None` is NULL).
fn array_literal(items: impl Iterator<Item = Option<String>>) -> String {
    let mut out = String::from("{");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            Some(text) => {
                out.push('"');
                out.push_str(&text);
                out.push('"');
            }
            None => out.push_str("NULL"),
        }
    }
    out.push('}');
    out
}

/// A timestamp with its full (microsecond) precision, as PostgreSQL parses it.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

async fn write_other_projections(
    client: &impl GenericClient,
    state: &ProjectState,
    delta: &Delta,
    last_seq: i64,
) -> anyhow::Result<()> {
    let project = state.project_id;
    for (fresh, ids) in split_fresh(&delta.gates, &delta.fresh_gates) {
        let gates: Vec<_> = ids.iter().filter_map(|id| state.gate(id)).collect();
        if gates.is_empty() {
            continue;
        }
        let ids: Vec<&str> = gates.iter().map(|g| g.gate_id.as_str()).collect();
        let task: Vec<&str> = gates.iter().map(|g| g.task_id.as_str()).collect();
        let kind: Vec<Option<&str>> = gates.iter().map(|g| g.gate_type.as_deref()).collect();
        let reviewer: Vec<Option<&str>> = gates.iter().map(|g| g.reviewer.as_deref()).collect();
        let requested: Vec<Option<DateTime<Utc>>> = gates.iter().map(|g| g.requested_at).collect();
        let decided: Vec<Option<DateTime<Utc>>> = gates.iter().map(|g| g.decided_at).collect();
        let outcome: Vec<Option<&str>> = gates
            .iter()
            .map(|g| g.outcome.map(|o| o.as_str()))
            .collect();
        let sla: Vec<Option<f64>> = gates.iter().map(|g| g.sla_hours).collect();
        let sql = insert_sql(
            "INSERT INTO metrics_gate (project_id, gate_id, task_id, gate_type, reviewer, requested_at,
                 decided_at, outcome, sla_hours, last_seq)
             SELECT $1, *, $10 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[],
                 $6::timestamptz[], $7::timestamptz[], $8::text[], $9::float8[])",
            fresh,
            "ON CONFLICT (project_id, gate_id) DO UPDATE SET task_id = EXCLUDED.task_id,
                 gate_type = EXCLUDED.gate_type, reviewer = EXCLUDED.reviewer,
                 requested_at = EXCLUDED.requested_at, decided_at = EXCLUDED.decided_at,
                 outcome = EXCLUDED.outcome, sla_hours = EXCLUDED.sla_hours, last_seq = EXCLUDED.last_seq",
        );
        client
            .execute(
                &sql,
                &[
                    &project, &ids, &task, &kind, &reviewer, &requested, &decided, &outcome, &sla,
                    &last_seq,
                ],
            )
            .await?;
    }
    for (fresh, ids) in split_fresh(&delta.attempts, &delta.fresh_attempts) {
        let attempts: Vec<_> = ids.iter().filter_map(|id| state.attempt(id)).collect();
        if attempts.is_empty() {
            continue;
        }
        let ids: Vec<&str> = attempts.iter().map(|a| a.attempt_id.as_str()).collect();
        let task: Vec<&str> = attempts.iter().map(|a| a.task_id.as_str()).collect();
        let number: Vec<Option<i64>> = attempts.iter().map(|a| a.attempt_number).collect();
        let started: Vec<Option<DateTime<Utc>>> = attempts.iter().map(|a| a.started_at).collect();
        let finished: Vec<Option<DateTime<Utc>>> = attempts.iter().map(|a| a.finished_at).collect();
        let result: Vec<Option<&str>> = attempts
            .iter()
            .map(|a| a.result.map(|r| r.as_str()))
            .collect();
        let sql = insert_sql(
            "INSERT INTO metrics_integration_attempt (project_id, attempt_id, task_id, attempt_number,
                 started_at, finished_at, result, last_seq)
             SELECT $1, *, $8 FROM UNNEST($2::text[], $3::text[], $4::int8[], $5::timestamptz[],
                 $6::timestamptz[], $7::text[])",
            fresh,
            "ON CONFLICT (project_id, attempt_id) DO UPDATE SET task_id = EXCLUDED.task_id,
                 attempt_number = EXCLUDED.attempt_number, started_at = EXCLUDED.started_at,
                 finished_at = EXCLUDED.finished_at, result = EXCLUDED.result, last_seq = EXCLUDED.last_seq",
        );
        client
            .execute(
                &sql,
                &[
                    &project, &ids, &task, &number, &started, &finished, &result, &last_seq,
                ],
            )
            .await?;
    }
    let milestones: Vec<_> = delta
        .milestones
        .iter()
        .filter_map(|id| state.milestone(id))
        .collect();
    if !milestones.is_empty() {
        let ids: Vec<&str> = milestones.iter().map(|m| m.milestone_id.as_str()).collect();
        let name: Vec<Option<&str>> = milestones.iter().map(|m| m.name.as_deref()).collect();
        let phase: Vec<Option<&str>> = milestones.iter().map(|m| m.phase_id.as_deref()).collect();
        let sequence: Vec<Option<i64>> = milestones.iter().map(|m| m.sequence).collect();
        let planned: Vec<Option<DateTime<Utc>>> =
            milestones.iter().map(|m| m.planned_start_at).collect();
        let due: Vec<Option<DateTime<Utc>>> = milestones.iter().map(|m| m.due_at).collect();
        let created: Vec<DateTime<Utc>> = milestones.iter().map(|m| m.created_at).collect();
        client
            .execute(
                "INSERT INTO metrics_milestone (project_id, milestone_id, name, phase_id, sequence,
                     planned_start_at, due_at, created_at, last_seq)
                 SELECT $1, *, $9 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::int8[],
                     $6::timestamptz[], $7::timestamptz[], $8::timestamptz[])
                 ON CONFLICT (project_id, milestone_id) DO UPDATE SET name = EXCLUDED.name,
                     phase_id = EXCLUDED.phase_id, sequence = EXCLUDED.sequence,
                     planned_start_at = EXCLUDED.planned_start_at, due_at = EXCLUDED.due_at,
                     created_at = EXCLUDED.created_at, last_seq = EXCLUDED.last_seq",
                &[
                    &project, &ids, &name, &phase, &sequence, &planned, &due, &created, &last_seq,
                ],
            )
            .await?;
    }
    let phases: Vec<_> = delta
        .phases
        .iter()
        .filter_map(|id| state.phases.get(id))
        .collect();
    if !phases.is_empty() {
        let ids: Vec<&str> = phases.iter().map(|p| p.phase_id.as_str()).collect();
        let name: Vec<Option<&str>> = phases.iter().map(|p| p.name.as_deref()).collect();
        let sequence: Vec<Option<i64>> = phases.iter().map(|p| p.sequence).collect();
        client
            .execute(
                "INSERT INTO metrics_phase (project_id, phase_id, name, sequence, last_seq)
                 SELECT $1, *, $5 FROM UNNEST($2::text[], $3::text[], $4::int8[])
                 ON CONFLICT (project_id, phase_id) DO UPDATE SET name = EXCLUDED.name,
                     sequence = EXCLUDED.sequence, last_seq = EXCLUDED.last_seq",
                &[&project, &ids, &name, &sequence, &last_seq],
            )
            .await?;
    }
    Ok(())
}

async fn write_counters(
    client: &impl GenericClient,
    project: Uuid,
    delta: &Delta,
    last_seq: i64,
) -> anyhow::Result<()> {
    if !delta.transitions.is_empty() {
        let names: Vec<&str> = delta.transitions.keys().map(String::as_str).collect();
        let counts: Vec<i64> = delta.transitions.values().copied().collect();
        client
            .execute(
                "INSERT INTO metrics_state_transition_counter AS c (project_id, task_state, transition_count, last_seq)
                 SELECT $1, s, n, $4 FROM UNNEST($2::text[], $3::int8[]) AS u(s, n)
                 ON CONFLICT (project_id, task_state) DO UPDATE
                    SET transition_count = c.transition_count + EXCLUDED.transition_count,
                        last_seq = EXCLUDED.last_seq",
                &[&project, &names, &counts, &last_seq],
            )
            .await?;
    }
    if !delta.data_quality.is_empty() {
        let issues: Vec<&str> = delta.data_quality.keys().map(String::as_str).collect();
        let counts: Vec<i64> = delta.data_quality.values().copied().collect();
        client
            .execute(
                "INSERT INTO metrics_data_quality_counter AS c (project_id, issue, count, last_seq)
                 SELECT $1, s, n, $4 FROM UNNEST($2::text[], $3::int8[]) AS u(s, n)
                 ON CONFLICT (project_id, issue) DO UPDATE
                    SET count = c.count + EXCLUDED.count, last_seq = EXCLUDED.last_seq",
                &[&project, &issues, &counts, &last_seq],
            )
            .await?;
        // A finding that a re-folded task no longer has may leave nothing to count.
        client
            .execute(
                "DELETE FROM metrics_data_quality_counter
                  WHERE project_id = $1 AND issue = ANY($2) AND count = 0",
                &[&project, &issues],
            )
            .await?;
    }
    Ok(())
}

async fn write_quarantine(
    client: &impl GenericClient,
    project: Uuid,
    delta: &Delta,
) -> anyhow::Result<()> {
    if delta.quarantine.is_empty() {
        return Ok(());
    }
    let seq: Vec<i64> = delta.quarantine.keys().copied().collect();
    let event_id: Vec<&str> = delta
        .quarantine
        .values()
        .map(|q| q.event_id.as_str())
        .collect();
    let event_type: Vec<&str> = delta
        .quarantine
        .values()
        .map(|q| q.event_type.as_str())
        .collect();
    let error: Vec<&str> = delta
        .quarantine
        .values()
        .map(|q| q.error.as_str())
        .collect();
    client
        .execute(
            "INSERT INTO metrics_event_quarantine (project_id, seq, event_id, event_type, error)
             SELECT $1, * FROM UNNEST($2::int8[], $3::text[], $4::text[], $5::text[])
             ON CONFLICT (project_id, seq) DO NOTHING",
            &[&project, &seq, &event_id, &event_type, &error],
        )
        .await?;
    Ok(())
}
