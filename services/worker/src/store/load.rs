//! Reading events and projections.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use flowmeter_shared::db::tasks;
use flowmeter_shared::metrics::{AttemptFacts, GateFacts, MilestoneFacts, ProjectFacts, TaskFacts};
use flowmeter_shared::read_model::{
    BreakdownKey, BreakdownValue, Dims, DrilldownRow, Grain, PhaseFacts, QuarantinedEvent,
    SummaryRow, TrendKey, TrendValue,
};
use futures_util::TryStreamExt;
use uuid::Uuid;

use crate::fold::state::{Cursors, TrendWritten};
use crate::fold::{LateInput, LoggedEvent, ProjectState, ReadModel};

/// Up to `limit` events after `after_seq`, in seq order. Rows are converted as they arrive,
/// so a batch is never held twice (as rows and as events). The sequence is gapless, so the
/// range is bounded on both sides: however stale the planner's statistics, the query reads
/// at most `limit` rows.
pub async fn read_events(
    client: &impl GenericClient,
    project_id: Uuid,
    after_seq: i64,
    limit: i64,
) -> anyhow::Result<Vec<LoggedEvent>> {
    collect_events(
        client,
        "SELECT seq, event_id, entity_id, event_type, payload::text, occurred_at
           FROM event_log WHERE project_id = $1 AND seq > $2 AND seq <= $2 + $3
          ORDER BY seq LIMIT $3",
        &[&project_id, &after_seq, &limit],
        usize::try_from(limit).unwrap_or(0).min(100_000),
    )
    .await
}

/// Streams events of `sql` (selecting seq, event_id, entity_id, event_type, payload::text,
/// occurred_at) into memory.
async fn collect_events(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    capacity: usize,
) -> anyhow::Result<Vec<LoggedEvent>> {
    let stmt = client.prepare_cached(sql).await?;
    let rows = client.query_raw(&stmt, params.iter().copied()).await?;
    futures_util::pin_mut!(rows);
    let mut events = Vec::with_capacity(capacity);
    while let Some(r) = rows.try_next().await? {
        events.push(LoggedEvent {
            seq: r.get(0),
            event_id: r.get(1),
            entity_id: r.get(2),
            event_type: r.get(3),
            payload: r.get::<_, String>(4).into_boxed_str(),
            occurred_at: r.get(5),
        });
    }
    Ok(events)
}

/// Up to `limit` events with seq ≤ `upto_seq` after `after` in canonical order
/// `(occurred_at, seq)` (from the start when `None`): a replay in event time.
pub async fn read_events_canonical(
    client: &impl GenericClient,
    project_id: Uuid,
    upto_seq: i64,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> anyhow::Result<Vec<LoggedEvent>> {
    match after {
        Some((at, seq)) => {
            collect_events(
                client,
                "SELECT seq, event_id, entity_id, event_type, payload::text, occurred_at
                   FROM event_log
                  WHERE project_id = $1 AND seq > 0 AND seq <= $2 AND (occurred_at, seq) > ($3, $4)
                  ORDER BY occurred_at, seq LIMIT $5",
                &[&project_id, &upto_seq, &at, &seq, &limit],
                0,
            )
            .await
        }
        None => {
            collect_events(
                client,
                "SELECT seq, event_id, entity_id, event_type, payload::text, occurred_at
                   FROM event_log WHERE project_id = $1 AND seq > 0 AND seq <= $2
                  ORDER BY occurred_at, seq LIMIT $3",
                &[&project_id, &upto_seq, &limit],
                0,
            )
            .await
        }
    }
}

/// What a late batch with earliest time `from` needs from the events folded so far (seq ≤
/// `upto_seq`): those at or after `from`, and the earlier events of the entities they touch.
pub async fn late_input(
    client: &impl GenericClient,
    project_id: Uuid,
    upto_seq: i64,
    from: DateTime<Utc>,
) -> anyhow::Result<LateInput> {
    let suffix = collect_events(
        client,
        "SELECT seq, event_id, entity_id, event_type, payload::text, occurred_at
           FROM event_log WHERE project_id = $1 AND seq > 0 AND seq <= $2 AND occurred_at >= $3
          ORDER BY occurred_at, seq",
        &[&project_id, &upto_seq, &from],
        0,
    )
    .await?;
    let mut entities: Vec<&str> = suffix.iter().map(|e| e.entity_id.as_str()).collect();
    entities.sort_unstable();
    entities.dedup();
    let prefix = if entities.is_empty() {
        Vec::new()
    } else {
        collect_events(
            client,
            "SELECT seq, event_id, entity_id, event_type, payload::text, occurred_at
               FROM event_log WHERE project_id = $1 AND entity_id = ANY($4) AND occurred_at < $3
                AND seq > 0 AND seq <= $2
              ORDER BY occurred_at, seq",
            &[&project_id, &upto_seq, &from, &entities],
            0,
        )
        .await?
    };
    Ok(LateInput {
        from,
        prefix,
        suffix,
    })
}

fn parse_enum<T: std::str::FromStr>(text: Option<String>) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    text.map(|t| t.parse::<T>().map_err(|e| anyhow::anyhow!("{e}")))
        .transpose()
}

async fn load_tasks(
    client: &impl GenericClient,
    project_id: Uuid,
) -> anyhow::Result<Vec<TaskFacts>> {
    let rows = client
        .query(
            &format!(
                "SELECT {} FROM metrics_task WHERE project_id = $1 ORDER BY task_id",
                tasks::columns("metrics_task")
            ),
            &[&project_id],
        )
        .await?;
    rows.iter().map(|r| tasks::task_from_row(r, 0)).collect()
}

async fn load_gates(
    client: &impl GenericClient,
    project_id: Uuid,
) -> anyhow::Result<Vec<GateFacts>> {
    let rows = client
        .query(
            "SELECT gate_id, task_id, gate_type, reviewer, requested_at, decided_at, outcome, sla_hours
               FROM metrics_gate WHERE project_id = $1 ORDER BY gate_id",
            &[&project_id],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(GateFacts {
                gate_id: r.get(0),
                task_id: r.get(1),
                gate_type: r.get(2),
                reviewer: r.get(3),
                requested_at: r.get(4),
                decided_at: r.get(5),
                outcome: parse_enum(r.get(6))?,
                sla_hours: r.get(7),
            })
        })
        .collect()
}

async fn load_attempts(
    client: &impl GenericClient,
    project_id: Uuid,
) -> anyhow::Result<Vec<AttemptFacts>> {
    let rows = client
        .query(
            "SELECT attempt_id, task_id, attempt_number, started_at, finished_at, result
               FROM metrics_integration_attempt WHERE project_id = $1 ORDER BY attempt_id",
            &[&project_id],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AttemptFacts {
                attempt_id: r.get(0),
                task_id: r.get(1),
                attempt_number: r.get(2),
                started_at: r.get(3),
                finished_at: r.get(4),
                result: parse_enum(r.get(5))?,
            })
        })
        .collect()
}

async fn load_milestones(
    client: &impl GenericClient,
    project_id: Uuid,
) -> anyhow::Result<Vec<MilestoneFacts>> {
    let rows = client
        .query(
            "SELECT milestone_id, name, phase_id, sequence, planned_start_at, due_at, created_at
               FROM metrics_milestone WHERE project_id = $1 ORDER BY milestone_id",
            &[&project_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| MilestoneFacts {
            milestone_id: r.get(0),
            name: r.get(1),
            phase_id: r.get(2),
            sequence: r.get(3),
            planned_start_at: r.get(4),
            due_at: r.get(5),
            created_at: r.get(6),
        })
        .collect())
}

async fn load_phases(
    client: &impl GenericClient,
    project_id: Uuid,
) -> anyhow::Result<BTreeMap<String, PhaseFacts>> {
    let rows = client
        .query(
            "SELECT phase_id, name, sequence FROM metrics_phase WHERE project_id = $1",
            &[&project_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let phase = PhaseFacts {
                phase_id: r.get(0),
                name: r.get(1),
                sequence: r.get(2),
            };
            (phase.phase_id.clone(), phase)
        })
        .collect())
}

/// A project's fold state from its projections, with the given cursors.
pub async fn load_state(
    client: &impl GenericClient,
    project_id: Uuid,
    cursors: Cursors,
) -> anyhow::Result<ProjectState> {
    let facts = ProjectFacts {
        tasks: load_tasks(client, project_id).await?,
        gates: load_gates(client, project_id).await?,
        attempts: load_attempts(client, project_id).await?,
        milestones: load_milestones(client, project_id).await?,
    };
    let phases = load_phases(client, project_id).await?;
    let mut state = ProjectState::from_parts(project_id, facts, phases, cursors);
    state.dora = flowmeter_shared::db::dora::load_facts(client, project_id).await?;
    // Tasks written after the latest snapshot still owe their drill-down rows to the next.
    let pending = client
        .query(
            "SELECT task_id FROM metrics_task WHERE project_id = $1
                AND last_seq > COALESCE((SELECT max(as_of_seq) FROM metrics_summary
                                          WHERE project_id = $1), 0)",
            &[&project_id],
        )
        .await?;
    state.drilldown_pending = pending.iter().map(|r| r.get(0)).collect();
    // Which trend points may exist: everything up to the latest bucket of each metric and
    // grain (conservative, as snapshots write the wall clock's bucket ahead of event time).
    let latest = client
        .query(
            "SELECT metric_key, time_grain, max(time_bucket) FROM metrics_trend_point
              WHERE project_id = $1 GROUP BY metric_key, time_grain",
            &[&project_id],
        )
        .await?
        .iter()
        .map(|row| {
            let grain: String = row.get(1);
            let grain =
                Grain::parse(&grain).ok_or_else(|| anyhow::anyhow!("unknown grain {grain}"))?;
            Ok((row.get(0), grain, row.get(2)))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    state.stored.trend = TrendWritten::from_latest(latest.into_iter());
    Ok(state)
}

/// The whole stored read model of a project (for `verify`).
pub async fn load_model(
    client: &impl GenericClient,
    project_id: Uuid,
) -> anyhow::Result<ReadModel> {
    let mut model = ReadModel {
        dora: flowmeter_shared::db::dora::load_facts(client, project_id).await?,
        ..ReadModel::default()
    };
    let p = &[&project_id as &(dyn tokio_postgres::types::ToSql + Sync)];
    model.tasks = load_tasks(client, project_id)
        .await?
        .into_iter()
        .map(|t| (t.task_id.clone(), t))
        .collect();
    model.gates = load_gates(client, project_id)
        .await?
        .into_iter()
        .map(|g| (g.gate_id.clone(), g))
        .collect();
    model.attempts = load_attempts(client, project_id)
        .await?
        .into_iter()
        .map(|a| (a.attempt_id.clone(), a))
        .collect();
    model.milestones = load_milestones(client, project_id)
        .await?
        .into_iter()
        .map(|m| (m.milestone_id.clone(), m))
        .collect();
    model.phases = load_phases(client, project_id).await?;
    for row in client
        .query(
            "SELECT task_state, transition_count FROM metrics_state_transition_counter WHERE project_id = $1",
            p,
        )
        .await?
    {
        model.transitions.insert(row.get(0), row.get(1));
    }
    for row in client
        .query(
            "SELECT issue, count FROM metrics_data_quality_counter WHERE project_id = $1",
            p,
        )
        .await?
    {
        model.data_quality.insert(row.get(0), row.get(1));
    }
    for row in client
        .query(
            "SELECT metric_key, time_grain, time_bucket, dimensions, value_numeric, sample_size, value_json
               FROM metrics_trend_point WHERE project_id = $1",
            p,
        )
        .await?
    {
        let grain: String = row.get(1);
        let dims: String = row.get(3);
        let dims = if dims == "{}" {
            None
        } else {
            Some(serde_json::from_str::<Dims>(&dims)?)
        };
        model.trend.insert(
            TrendKey {
                metric: row.get(0),
                grain: Grain::parse(&grain).ok_or_else(|| anyhow::anyhow!("unknown grain {grain}"))?,
                bucket: row.get(2),
                dims,
            },
            TrendValue {
                value: row.get(4),
                sample_size: row.get(5),
                detail: row.get(6),
            },
        );
    }
    for row in client
        .query(
            "SELECT metric_key, dimension, dimension_value, day, value_numeric, sample_size
               FROM metrics_breakdown_point WHERE project_id = $1",
            p,
        )
        .await?
    {
        model.breakdown.insert(
            BreakdownKey {
                metric: row.get(0),
                dimension: row.get(1),
                value: row.get(2),
                day: row.get(3),
            },
            BreakdownValue {
                value: row.get(4),
                sample_size: row.get(5),
            },
        );
    }
    for row in client
        .query(
            "SELECT metric_key, task_id, value, ts, title, phase_id, milestone_id, assignee, task_class,
                    state
               FROM metrics_drilldown WHERE project_id = $1",
            p,
        )
        .await?
    {
        model.drilldown.insert(
            (row.get(0), row.get(1)),
            DrilldownRow {
                value: row.get(2),
                ts: row.get(3),
                title: row.get(4),
                phase_id: row.get(5),
                milestone_id: row.get(6),
                assignee: row.get(7),
                task_class: row.get(8),
                state: row.get(9),
            },
        );
    }
    for row in client
        .query(
            "SELECT seq, event_id, event_type, error FROM metrics_event_quarantine WHERE project_id = $1",
            p,
        )
        .await?
    {
        model.quarantine.insert(
            row.get(0),
            QuarantinedEvent {
                event_id: row.get(1),
                event_type: row.get(2),
                error: row.get(3),
            },
        );
    }
    model.summary = latest_summary(client, project_id).await?;
    Ok(model)
}

/// The latest stored snapshot of a project.
pub async fn latest_summary(
    client: &impl GenericClient,
    project_id: Uuid,
) -> anyhow::Result<Option<SummaryRow>> {
    let row = client
        .query_opt(
            "SELECT captured_at, as_of_seq, payload, health, gap_filled FROM metrics_summary
              WHERE project_id = $1 ORDER BY captured_at DESC LIMIT 1",
            &[&project_id],
        )
        .await?;
    Ok(row.map(|r| SummaryRow {
        captured_at: r.get::<_, DateTime<Utc>>(0),
        as_of_seq: r.get(1),
        payload: r.get(2),
        health: r.get(3),
        gap_filled: r.get(4),
    }))
}
