//! Writing the read-model points of a delta: trend points, breakdown points and drill-down
//! rows. Points that cannot exist yet are inserted without conflict handling.

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use flowmeter_shared::read_model::{BreakdownKey, BreakdownValue, DrilldownRow, TrendKey};
use serde_json::Value;
use uuid::Uuid;

use super::insert_sql;
use crate::fold::model::{keys, BREAKDOWN_LEVEL_METRICS, LEVEL_METRICS};
use crate::fold::{Delta, ProjectState};
use crate::store::dims_json;

struct TrendColumns {
    metric: Vec<String>,
    grain: Vec<&'static str>,
    bucket: Vec<DateTime<Utc>>,
    dims: Vec<String>,
    value: Vec<Option<f64>>,
    samples: Vec<i64>,
    detail: Vec<Value>,
}

fn trend_columns<'a>(
    points: impl Iterator<
        Item = (
            &'a flowmeter_shared::read_model::TrendKey,
            &'a flowmeter_shared::read_model::TrendValue,
        ),
    >,
) -> TrendColumns {
    let mut c = TrendColumns {
        metric: Vec::new(),
        grain: Vec::new(),
        bucket: Vec::new(),
        dims: Vec::new(),
        value: Vec::new(),
        samples: Vec::new(),
        detail: Vec::new(),
    };
    for (key, value) in points {
        c.metric.push(key.metric.clone());
        c.grain.push(key.grain.as_str());
        c.bucket.push(key.bucket);
        c.dims.push(dims_json(key.dims.as_ref()));
        c.value.push(value.value);
        c.samples.push(value.sample_size);
        c.detail.push(value.detail.clone());
    }
    c
}

pub(super) async fn write_trend(
    client: &impl GenericClient,
    project: Uuid,
    delta: &Delta,
) -> anyhow::Result<()> {
    // A point in a bucket no earlier delta wrote cannot exist yet.
    let is_new = |key: &TrendKey| {
        delta
            .trend_written
            .as_ref()
            .is_some_and(|written| !written.may_exist(&key.metric, key.grain, key.bucket))
    };
    let (fresh, existing): (Vec<_>, Vec<_>) = delta
        .trend_add
        .iter()
        .partition(|(k, v)| v.sample_size > 0 && is_new(k));
    for (fresh, points) in [(true, fresh), (false, existing)] {
        if points.is_empty() {
            continue;
        }
        let c = trend_columns(points.into_iter());
        let sql = insert_sql(
            "INSERT INTO metrics_trend_point AS t (project_id, metric_key, time_grain, time_bucket,
                 dimensions, value_numeric, sample_size, value_json)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::timestamptz[], $5::text[],
                 $6::float8[], $7::int8[], $8::jsonb[])",
            fresh,
            "ON CONFLICT (project_id, metric_key, time_grain, time_bucket, dimensions) DO UPDATE
                SET value_numeric = COALESCE(t.value_numeric, 0) + COALESCE(EXCLUDED.value_numeric, 0),
                    sample_size = t.sample_size + EXCLUDED.sample_size",
        );
        client
            .execute(
                &sql,
                &[
                    &project, &c.metric, &c.grain, &c.bucket, &c.dims, &c.value, &c.samples,
                    &c.detail,
                ],
            )
            .await?;
    }
    // Counts that a task moved away from may have dropped to nothing: such a point does not
    // exist in a fold that never counted it there.
    let lowered: Vec<_> = delta
        .trend_add
        .iter()
        .filter(|(_, v)| v.sample_size < 0)
        .collect();
    if !lowered.is_empty() {
        let c = trend_columns(lowered.into_iter());
        client
            .execute(
                "DELETE FROM metrics_trend_point t
                  USING UNNEST($2::text[], $3::text[], $4::timestamptz[], $5::text[]) AS r(m, g, b, d)
                  WHERE t.project_id = $1 AND t.metric_key = r.m AND t.time_grain = r.g
                    AND t.time_bucket = r.b AND t.dimensions = r.d AND t.sample_size = 0",
                &[&project, &c.metric, &c.grain, &c.bucket, &c.dims],
            )
            .await?;
    }
    clear_levels(client, project, delta).await?;
    // Buckets no earlier delta wrote have nothing to delete.
    let replaced: Vec<_> = delta
        .trend_replace_dims
        .iter()
        .filter(|(metric, grain, bucket)| {
            delta
                .trend_written
                .as_ref()
                .is_none_or(|written| written.may_exist(metric, *grain, *bucket))
        })
        .collect();
    if !replaced.is_empty() {
        let metric: Vec<&str> = replaced.iter().map(|(m, _, _)| m.as_str()).collect();
        let grain: Vec<&str> = replaced.iter().map(|(_, g, _)| g.as_str()).collect();
        let bucket: Vec<DateTime<Utc>> = replaced.iter().map(|(_, _, b)| *b).collect();
        // The metric, grain and bucket-range bounds let the index find the rows even when the
        // planner's statistics of a freshly filled table say the project has almost none (it
        // then scanned every point of the project per call).
        let first = bucket.iter().min();
        let last = bucket.iter().max();
        client
            .execute(
                "DELETE FROM metrics_trend_point t USING UNNEST($2::text[], $3::text[], $4::timestamptz[]) AS r(m, g, b)
                  WHERE t.project_id = $1 AND t.metric_key = ANY($2) AND t.time_grain = ANY($3)
                    AND t.time_bucket BETWEEN $5 AND $6
                    AND t.metric_key = r.m AND t.time_grain = r.g
                    AND t.time_bucket = r.b AND t.dimensions <> '{}'",
                &[&project, &metric, &grain, &bucket, &first, &last],
            )
            .await?;
    }
    // Dimensioned points of a replaced (metric, grain, bucket) were just deleted.
    let (fresh, existing): (Vec<_>, Vec<_>) = delta.trend_set.iter().partition(|(key, _)| {
        is_new(key)
            || (key.dims.is_some()
                && delta
                    .trend_replace_dims
                    .contains(&(key.metric.clone(), key.grain, key.bucket)))
    });
    for (fresh, points) in [(true, fresh), (false, existing)] {
        if points.is_empty() {
            continue;
        }
        let c = trend_columns(points.into_iter());
        let sql = insert_sql(
            "INSERT INTO metrics_trend_point (project_id, metric_key, time_grain, time_bucket,
                 dimensions, value_numeric, sample_size, value_json)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::timestamptz[], $5::text[],
                 $6::float8[], $7::int8[], $8::jsonb[])",
            fresh,
            "ON CONFLICT (project_id, metric_key, time_grain, time_bucket, dimensions) DO UPDATE
                SET value_numeric = EXCLUDED.value_numeric, sample_size = EXCLUDED.sample_size,
                    value_json = EXCLUDED.value_json",
        );
        client
            .execute(
                &sql,
                &[
                    &project, &c.metric, &c.grain, &c.bucket, &c.dims, &c.value, &c.samples,
                    &c.detail,
                ],
            )
            .await?;
    }
    Ok(())
}

/// Deletes the level points (and WIP/blocked breakdown levels) of `delta.level_clear`.
async fn clear_levels(
    client: &impl GenericClient,
    project: Uuid,
    delta: &Delta,
) -> anyhow::Result<()> {
    if delta.level_clear.is_empty() {
        return Ok(());
    }
    let grain: Vec<&str> = delta
        .level_clear
        .iter()
        .map(|(g, _, _)| g.as_str())
        .collect();
    let from: Vec<DateTime<Utc>> = delta.level_clear.iter().map(|(_, f, _)| *f).collect();
    // 'infinity' stands for an open end.
    let to: Vec<Option<DateTime<Utc>>> = delta.level_clear.iter().map(|(_, _, t)| *t).collect();
    client
        .execute(
            "DELETE FROM metrics_trend_point t
              USING UNNEST($3::text[], $4::timestamptz[], $5::timestamptz[]) AS r(g, f, e)
              WHERE t.project_id = $1 AND t.metric_key = ANY($2) AND t.time_grain = r.g
                AND t.time_bucket >= r.f AND t.time_bucket < COALESCE(r.e, 'infinity')",
            &[&project, &LEVEL_METRICS.to_vec(), &grain, &from, &to],
        )
        .await?;
    let days: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = delta
        .level_clear
        .iter()
        .filter(|(g, _, _)| *g == flowmeter_shared::read_model::Grain::Day)
        .map(|(_, f, t)| (*f, *t))
        .collect();
    if !days.is_empty() {
        let from: Vec<DateTime<Utc>> = days.iter().map(|(f, _)| *f).collect();
        let to: Vec<Option<DateTime<Utc>>> = days.iter().map(|(_, t)| *t).collect();
        client
            .execute(
                "DELETE FROM metrics_breakdown_point b
                  USING UNNEST($3::timestamptz[], $4::timestamptz[]) AS r(f, e)
                  WHERE b.project_id = $1 AND b.metric_key = ANY($2)
                    AND b.day >= (r.f AT TIME ZONE 'UTC')::date
                    AND (r.e IS NULL OR b.day < (r.e AT TIME ZONE 'UTC')::date)",
                &[&project, &BREAKDOWN_LEVEL_METRICS.to_vec(), &from, &to],
            )
            .await?;
    }
    Ok(())
}

pub(super) async fn write_breakdown(
    client: &impl GenericClient,
    project: Uuid,
    delta: &Delta,
) -> anyhow::Result<()> {
    let added: Vec<_> = delta.breakdown_add.iter().collect();
    write_breakdown_points(
        client,
        project,
        &added,
        Some("value_numeric = b.value_numeric + EXCLUDED.value_numeric, sample_size = b.sample_size + EXCLUDED.sample_size"),
    )
    .await?;
    let lowered: Vec<_> = delta
        .breakdown_add
        .iter()
        .filter(|(_, v)| v.sample_size < 0)
        .collect();
    if !lowered.is_empty() {
        let metric: Vec<&str> = lowered.iter().map(|(k, _)| k.metric.as_str()).collect();
        let dimension: Vec<&str> = lowered.iter().map(|(k, _)| k.dimension.as_str()).collect();
        let value_of: Vec<&str> = lowered.iter().map(|(k, _)| k.value.as_str()).collect();
        let day: Vec<NaiveDate> = lowered.iter().map(|(k, _)| k.day).collect();
        client
            .execute(
                "DELETE FROM metrics_breakdown_point b
                  USING UNNEST($2::text[], $3::text[], $4::text[], $5::date[]) AS r(m, d, v, day)
                  WHERE b.project_id = $1 AND b.metric_key = r.m AND b.dimension = r.d
                    AND b.dimension_value = r.v AND b.day = r.day AND b.sample_size = 0",
                &[&project, &metric, &dimension, &value_of, &day],
            )
            .await?;
    }
    if !delta.breakdown_replace.is_empty() {
        let metric: Vec<&str> = delta
            .breakdown_replace
            .iter()
            .map(|(m, _)| m.as_str())
            .collect();
        let day: Vec<NaiveDate> = delta.breakdown_replace.iter().map(|(_, d)| *d).collect();
        client
            .execute(
                "DELETE FROM metrics_breakdown_point b USING UNNEST($2::text[], $3::date[]) AS r(m, d)
                  WHERE b.project_id = $1 AND b.metric_key = r.m AND b.day = r.d",
                &[&project, &metric, &day],
            )
            .await?;
    }
    // Levels of a replaced (metric, day) were just deleted; the others are upserted.
    let (fresh, set): (Vec<_>, Vec<_>) = delta.breakdown_set.iter().partition(|(key, _)| {
        delta
            .breakdown_replace
            .contains(&(key.metric.clone(), key.day))
    });
    write_breakdown_points(client, project, &fresh, None).await?;
    write_breakdown_points(
        client,
        project,
        &set,
        Some("value_numeric = EXCLUDED.value_numeric, sample_size = EXCLUDED.sample_size"),
    )
    .await
}

/// Inserts breakdown points; with `update`, an upsert that applies it on conflict.
async fn write_breakdown_points(
    client: &impl GenericClient,
    project: Uuid,
    points: &[(&BreakdownKey, &BreakdownValue)],
    update: Option<&str>,
) -> anyhow::Result<()> {
    if points.is_empty() {
        return Ok(());
    }
    let insert = "INSERT INTO metrics_breakdown_point AS b (project_id, metric_key, dimension,
             dimension_value, day, value_numeric, sample_size)
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::date[], $6::float8[], $7::int8[])";
    let sql = match update {
        Some(update) => format!(
            "{insert} ON CONFLICT (project_id, metric_key, dimension, dimension_value, day) DO UPDATE SET {update}"
        ),
        None => insert.to_owned(),
    };
    let metric: Vec<&str> = points.iter().map(|(k, _)| k.metric.as_str()).collect();
    let dimension: Vec<&str> = points.iter().map(|(k, _)| k.dimension.as_str()).collect();
    let value_of: Vec<&str> = points.iter().map(|(k, _)| k.value.as_str()).collect();
    let day: Vec<NaiveDate> = points.iter().map(|(k, _)| k.day).collect();
    let value: Vec<f64> = points.iter().map(|(_, v)| v.value).collect();
    let samples: Vec<i64> = points.iter().map(|(_, v)| v.sample_size).collect();
    client
        .execute(
            &sql,
            &[
                &project, &metric, &dimension, &value_of, &day, &value, &samples,
            ],
        )
        .await?;
    Ok(())
}

/// Tasks whose drill-down rows go into one statement: bounds the rows held in memory when a
/// snapshot writes every task changed during a long catch-up.
const DRILLDOWN_TASKS_PER_STATEMENT: usize = 500;

pub(super) async fn write_drilldown(
    client: &impl GenericClient,
    state: &ProjectState,
    delta: &Delta,
) -> anyhow::Result<()> {
    let project = state.project_id;
    if let Some((metrics, rows)) = &delta.drilldown_replace {
        client
            .execute(
                "DELETE FROM metrics_drilldown WHERE project_id = $1 AND metric_key = ANY($2)",
                &[&project, metrics],
            )
            .await?;
        let rows: Vec<_> = rows
            .iter()
            .map(|((metric, task), row)| (metric.as_str(), task.as_str(), row))
            .collect();
        // Every row of these metrics was just deleted.
        insert_drilldown(client, project, &rows, true).await?;
    }
    let tasks: Vec<&String> = delta.drilldown_tasks.iter().collect();
    for chunk in tasks.chunks(DRILLDOWN_TASKS_PER_STATEMENT) {
        let owned: Vec<(&str, Vec<(&'static str, DrilldownRow)>)> = chunk
            .iter()
            .map(|id| (id.as_str(), state.task_rows(id)))
            .collect();
        let (fresh, existing): (Vec<_>, Vec<_>) = owned
            .iter()
            .flat_map(|(id, rows)| rows.iter().map(move |(metric, row)| (*metric, *id, row)))
            .partition(|(metric, id, _)| {
                delta.drilldown_fresh.contains(*id)
                    || (*metric != keys::ARRIVALS && delta.drilldown_fresh_marks.contains(*id))
            });
        insert_drilldown(client, project, &fresh, true).await?;
        insert_drilldown(client, project, &existing, false).await?;
    }
    Ok(())
}

/// Writes drill-down rows: a plain insert when none of them can exist (`fresh`), else an
/// upsert.
async fn insert_drilldown(
    client: &impl GenericClient,
    project: Uuid,
    rows: &[(&str, &str, &DrilldownRow)],
    fresh: bool,
) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let metric: Vec<&str> = rows.iter().map(|(m, _, _)| *m).collect();
    let task: Vec<&str> = rows.iter().map(|(_, t, _)| *t).collect();
    let value: Vec<f64> = rows.iter().map(|(_, _, r)| r.value).collect();
    let ts: Vec<DateTime<Utc>> = rows.iter().map(|(_, _, r)| r.ts).collect();
    let title: Vec<Option<&str>> = rows.iter().map(|(_, _, r)| r.title.as_deref()).collect();
    let phase: Vec<Option<&str>> = rows.iter().map(|(_, _, r)| r.phase_id.as_deref()).collect();
    let milestone: Vec<Option<&str>> = rows
        .iter()
        .map(|(_, _, r)| r.milestone_id.as_deref())
        .collect();
    let assignee: Vec<Option<&str>> = rows.iter().map(|(_, _, r)| r.assignee.as_deref()).collect();
    let class: Vec<Option<&str>> = rows
        .iter()
        .map(|(_, _, r)| r.task_class.as_deref())
        .collect();
    let task_state: Vec<&str> = rows.iter().map(|(_, _, r)| r.state.as_str()).collect();
    let stmt = client
        .prepare_cached(&insert_sql(
            "INSERT INTO metrics_drilldown (project_id, metric_key, task_id, value, ts, title, phase_id,
                 milestone_id, assignee, task_class, state)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::float8[], $5::timestamptz[], $6::text[],
                 $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])",
            fresh,
            "ON CONFLICT (project_id, metric_key, task_id) DO UPDATE SET value = EXCLUDED.value,
                 ts = EXCLUDED.ts, title = EXCLUDED.title, phase_id = EXCLUDED.phase_id,
                 milestone_id = EXCLUDED.milestone_id, assignee = EXCLUDED.assignee,
                 task_class = EXCLUDED.task_class, state = EXCLUDED.state",
        ))
        .await?;
    client
        .execute(
            &stmt,
            &[
                &project,
                &metric,
                &task,
                &value,
                &ts,
                &title,
                &phase,
                &milestone,
                &assignee,
                &class,
                &task_state,
            ],
        )
        .await?;
    Ok(())
}
