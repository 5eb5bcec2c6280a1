//! What filter-free breakdown and drill-down requests read (migration 0013, SPEC §18),
//! computed at snapshot time from the drill-down rows as stored in the snapshot's transaction.
//!
//! The rows are read back one metric at a time, streamed into a compact form (dimension values
//! interned), and aggregated here, where they are grouped by hashing and sorted once per metric; the same aggregation in SQL scanned them seven times per metric and
//! sorted each window's groups apart. Every number is the one the API computes from the rows
//! for a request with filters: counts, minima and maxima are exact, medians and percentiles
//! interpolate as `percentile_cont` does ([`percentile_cont`]), and the sum is the exact sum
//! both sides compute ([`exact_sum`], `VALUE_SUM_SQL`), so no figure depends on the order the
//! rows are read in.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::GenericClient;
use flowmeter_shared::db::read_path::PRECOMPUTED_PAGE_ROWS;
use flowmeter_shared::metrics::stats::{exact_sum, percentile_cont};
use flowmeter_shared::read_model::{
    keys, BREAKDOWN_DIMENSIONS, BREAKDOWN_METRICS, BREAKDOWN_RANGES, DRILLDOWN_METRICS,
};
use futures_util::TryStreamExt;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// The percentiles of an aggregation, in the order of its `percentiles` column.
const PERCENTILES: [f64; 3] = [0.5, 0.9, 0.95];

/// Breakdown metrics whose groups carry a median (the durations); the API serves counts for
/// the others, so they get none.
const MEDIAN_METRICS: [&str; 2] = [keys::CYCLE_TIME, keys::LEAD_TIME];

/// One stored drill-down row, as read back.
struct Row {
    task: String,
    value: f64,
    ts: DateTime<Utc>,
    /// The values of [`BREAKDOWN_DIMENSIONS`], in that order, as ids in [`Names`].
    dims: [u32; 5],
}

/// The dimension values met so far, per dimension; id 0 is the null value.
struct Names {
    names: [Vec<Option<String>>; 5],
    ids: [HashMap<String, u32>; 5],
}

impl Names {
    fn new() -> Self {
        Names {
            names: std::array::from_fn(|_| vec![None]),
            ids: Default::default(),
        }
    }

    fn id(&mut self, dimension: usize, value: Option<&str>) -> u32 {
        let Some(value) = value else { return 0 };
        if let Some(id) = self.ids[dimension].get(value) {
            return *id;
        }
        let names = &mut self.names[dimension];
        let id = names.len() as u32;
        names.push(Some(value.to_owned()));
        self.ids[dimension].insert(value.to_owned(), id);
        id
    }
}

/// The aggregation of one drill-down metric with the first task ids of every page order.
struct Aggregate<'a> {
    count: i64,
    sum: Option<f64>,
    avg: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    percentiles: Option<Vec<f64>>,
    /// By value, timestamp and task id; each ascending and descending.
    orders: [Vec<&'a str>; 6],
}

/// One group of a breakdown (`dimension` '' is the total).
struct Group {
    metric: &'static str,
    dimension: &'static str,
    time_range: &'static str,
    period: i16,
    value: Option<String>,
    count: i64,
    p50: Option<f64>,
}

/// PostgreSQL's order of float8 values: NaN after every number, −0 equal to 0.
fn float_order(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        (a_nan, b_nan) => a_nan.cmp(&b_nan),
    }
}

/// `value ASC, task_id ASC`: the value, then the id in byte order (the column's C collation).
fn by_value(a: &Row, b: &Row) -> Ordering {
    float_order(a.value, b.value).then_with(|| a.task.cmp(&b.task))
}

/// The first [`PRECOMPUTED_PAGE_ROWS`] task ids of `sorted` ascending, and descending. Task
/// ids are unique within a metric, so each order is total and descending is its reverse.
fn ends<'a>(sorted: &[&'a Row]) -> [Vec<&'a str>; 2] {
    let n = PRECOMPUTED_PAGE_ROWS as usize;
    [
        sorted.iter().take(n).map(|r| r.task.as_str()).collect(),
        sorted
            .iter()
            .rev()
            .take(n)
            .map(|r| r.task.as_str())
            .collect(),
    ]
}

fn aggregate(rows: &[Row]) -> Aggregate<'_> {
    let mut sorted: Vec<&Row> = rows.iter().collect();
    sorted.sort_unstable_by(|a, b| by_value(a, b));
    let [value_asc, value_desc] = ends(&sorted);
    let values: Vec<f64> = sorted.iter().map(|r| r.value).collect();
    sorted.sort_unstable_by(|a, b| a.ts.cmp(&b.ts).then_with(|| a.task.cmp(&b.task)));
    let [ts_asc, ts_desc] = ends(&sorted);
    sorted.sort_unstable_by(|a, b| a.task.cmp(&b.task));
    let [task_asc, task_desc] = ends(&sorted);
    let count = rows.len() as i64;
    let sum = (count > 0).then(|| exact_sum(values.iter().copied()));
    Aggregate {
        count,
        sum,
        avg: sum.map(|sum| sum / count as f64),
        min: values.first().copied(),
        max: values.last().copied(),
        percentiles: (count > 0).then(|| {
            PERCENTILES
                .iter()
                .filter_map(|p| percentile_cont(&values, *p))
                .collect()
        }),
        orders: [value_desc, value_asc, ts_desc, ts_asc, task_desc, task_asc],
    }
}

/// The breakdown groups of one metric: per range and period, the total and the groups of every
/// dimension, with medians when `median`. A window is `[at − hours·(period + 1), at −
/// hours·period)`; groups without rows are not stored.
fn groups(
    metric: &'static str,
    rows: &[Row],
    names: &Names,
    at: DateTime<Utc>,
    median: bool,
) -> Vec<Group> {
    // Rows in value order, so every group's values are collected sorted.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_unstable_by(|a, b| float_order(rows[*a].value, rows[*b].value));
    let mut out = Vec::new();
    for (time_range, hours) in BREAKDOWN_RANGES {
        for period in 0..2i16 {
            let lo = at - Duration::hours(hours * (i64::from(period) + 1));
            let hi = at - Duration::hours(hours * i64::from(period));
            let inside: Vec<usize> = order
                .iter()
                .copied()
                .filter(|i| rows[*i].ts >= lo && rows[*i].ts < hi)
                .collect();
            if inside.is_empty() {
                continue;
            }
            let p50 = |values: &[f64]| {
                if median {
                    percentile_cont(values, 0.5)
                } else {
                    None
                }
            };
            let all: Vec<f64> = inside.iter().map(|i| rows[*i].value).collect();
            out.push(Group {
                metric,
                dimension: "",
                time_range,
                period,
                value: None,
                count: all.len() as i64,
                p50: p50(&all),
            });
            for (d, dimension) in BREAKDOWN_DIMENSIONS.into_iter().enumerate() {
                let mut values: Vec<Vec<f64>> = vec![Vec::new(); names.names[d].len()];
                for i in &inside {
                    values[rows[*i].dims[d] as usize].push(rows[*i].value);
                }
                for (id, values) in values.iter().enumerate() {
                    if !values.is_empty() {
                        out.push(Group {
                            metric,
                            dimension,
                            time_range,
                            period,
                            value: names.names[d][id].clone(),
                            count: values.len() as i64,
                            p50: p50(values),
                        });
                    }
                }
            }
        }
    }
    out
}

/// Replaces the project's precomputed rows with those of the drill-down rows as of the
/// snapshot at `captured_at`. Runs in the snapshot's transaction, after the drill-down rows are
/// written (and again after retention removed some).
pub async fn refresh(
    client: &impl GenericClient,
    project: Uuid,
    captured_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    for table in ["metrics_drilldown_aggregate", "metrics_breakdown_group"] {
        let stmt = client
            .prepare_cached(&format!("DELETE FROM {table} WHERE project_id = $1"))
            .await?;
        client.execute(&stmt, &[&project]).await?;
    }
    // The windows end at the instant as stored (PostgreSQL keeps microseconds).
    let at = DateTime::from_timestamp_micros(captured_at.timestamp_micros()).unwrap_or(captured_at);
    let read = client
        .prepare_cached(
            "SELECT task_id, value, ts, phase_id, milestone_id, assignee, task_class, state
               FROM metrics_drilldown WHERE project_id = $1 AND metric_key = $2",
        )
        .await?;
    let insert = client
        .prepare_cached(
            "INSERT INTO metrics_drilldown_aggregate
                 (project_id, metric_key, captured_at, row_count, value_sum, value_avg, value_min,
                  value_max, percentiles, by_value_desc, by_value_asc, by_ts_desc, by_ts_asc,
                  by_task_desc, by_task_asc)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .await?;
    // One metric's rows in memory at a time, each in a compact form.
    let mut names = Names::new();
    let mut groups_of_all = Vec::new();
    for metric in DRILLDOWN_METRICS {
        let params: [&(dyn ToSql + Sync); 2] = [&project, &metric];
        let stream = client.query_raw(&read, params).await?;
        futures_util::pin_mut!(stream);
        let mut rows = Vec::new();
        while let Some(row) = stream.try_next().await? {
            let dims = std::array::from_fn(|d| names.id(d, row.get(3 + d)));
            rows.push(Row {
                task: row.get(0),
                value: row.get(1),
                ts: row.get(2),
                dims,
            });
        }
        let a = aggregate(&rows);
        let [o0, o1, o2, o3, o4, o5] = &a.orders;
        client
            .execute(
                &insert,
                &[
                    &project,
                    &metric,
                    &at,
                    &a.count,
                    &a.sum,
                    &a.avg,
                    &a.min,
                    &a.max,
                    &a.percentiles,
                    o0,
                    o1,
                    o2,
                    o3,
                    o4,
                    o5,
                ],
            )
            .await?;
        if BREAKDOWN_METRICS.contains(&metric) {
            groups_of_all.extend(groups(
                metric,
                &rows,
                &names,
                at,
                MEDIAN_METRICS.contains(&metric),
            ));
        }
    }
    let groups = groups_of_all;

    let stmt = client
        .prepare_cached(
            "INSERT INTO metrics_breakdown_group
                 (project_id, captured_at, metric_key, dimension, time_range, period,
                  dimension_value, row_count, p50)
             SELECT $1, $2, * FROM UNNEST($3::text[], $4::text[], $5::text[], $6::int2[],
                                          $7::text[], $8::int8[], $9::float8[])",
        )
        .await?;
    client
        .execute(
            &stmt,
            &[
                &project,
                &at,
                &groups.iter().map(|g| g.metric).collect::<Vec<_>>(),
                &groups.iter().map(|g| g.dimension).collect::<Vec<_>>(),
                &groups.iter().map(|g| g.time_range).collect::<Vec<_>>(),
                &groups.iter().map(|g| g.period).collect::<Vec<_>>(),
                &groups
                    .iter()
                    .map(|g| g.value.as_deref())
                    .collect::<Vec<_>>(),
                &groups.iter().map(|g| g.count).collect::<Vec<_>>(),
                &groups.iter().map(|g| g.p50).collect::<Vec<_>>(),
            ],
        )
        .await?;
    Ok(())
}
