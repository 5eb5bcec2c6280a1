//! The bounded reads of the metrics routes (SPEC §18): one statement for what every route needs
//! (the presented key, the project, its log head and latest snapshot), and the rows the worker precomputes at
//! snapshot time for requests without filters (migration 0013).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;
use uuid::Uuid;

use crate::db::api_keys::ApiKey;
use crate::db::read_model::{
    aggregation_from_row, drilldown_item, Aggregation, BreakdownGroup, DrilldownItem, SortBy,
};
use crate::db::tasks;

/// The largest `offset + limit` of a drill-down page served from the precomputed task order
/// (the worker keeps this many task ids per order).
pub const PRECOMPUTED_PAGE_ROWS: i64 = 500;

/// A part of the latest snapshot a route serves besides its time and seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotPart {
    /// Nothing more.
    None,
    /// The milestone health.
    Health,
    /// The summary's suggested actions (`actionability.suggested_actions`).
    Actions,
}

impl SnapshotPart {
    fn as_str(self) -> &'static str {
        match self {
            SnapshotPart::None => "",
            SnapshotPart::Health => "health",
            SnapshotPart::Actions => "actions",
        }
    }
}

/// Whether the project exists, its log head, the latest snapshot's time, seq and the asked
/// part (`$2`: '', 'health' or 'actions'), and the key with the presented hash (`$3`, NULL
/// when authentication is off); one round trip.
pub const CONTEXT_SQL: &str =
    "SELECT p.id IS NOT NULL, COALESCE(h.last_seq, 0), s.captured_at, s.as_of_seq,
        CASE $2::text WHEN 'health' THEN s.health
                      WHEN 'actions' THEN s.payload #> '{actionability,suggested_actions}' END,
        s.xmin::text,
        k.id, k.name, k.key_prefix, k.project_id, k.roles, k.status, k.created_at,
        k.expires_at, k.last_used_at
   FROM (SELECT $1::uuid AS id) q
   LEFT JOIN project p ON p.id = q.id
   LEFT JOIN event_stream_head h ON h.project_id = q.id
   LEFT JOIN api_key k ON k.key_hash = $3::text
   LEFT JOIN LATERAL (
        SELECT captured_at, as_of_seq, health, payload, xmin FROM metrics_summary
         WHERE project_id = q.id ORDER BY captured_at DESC LIMIT 1) s ON true";

/// The latest snapshot as the routes use it.
#[derive(Debug, Clone)]
pub struct SnapshotMeta {
    /// Snapshot time.
    pub captured_at: DateTime<Utc>,
    /// Last folded seq behind it.
    pub as_of_seq: i64,
    /// The asked [`SnapshotPart`] (`None` when absent from the snapshot).
    pub part: Option<Value>,
    /// The snapshot row's version (`xmin`): a rewritten row gets a new one.
    pub row_version: String,
}

/// What [`CONTEXT_SQL`] finds.
#[derive(Debug, Clone)]
pub struct ReadContext {
    /// Whether the project exists.
    pub project_exists: bool,
    /// The project's log head (0 without events).
    pub head: i64,
    /// The latest snapshot, if any.
    pub snapshot: Option<SnapshotMeta>,
    /// The key with the presented hash, when one was presented and a key has it.
    pub key: Option<ApiKey>,
}

/// Runs [`CONTEXT_SQL`].
pub async fn context(
    client: &impl GenericClient,
    project_id: Uuid,
    part: SnapshotPart,
    key_hash: Option<&str>,
) -> anyhow::Result<ReadContext> {
    let stmt = client.prepare_cached(CONTEXT_SQL).await?;
    let row = client
        .query_one(&stmt, &[&project_id, &part.as_str(), &key_hash])
        .await?;
    let key = match row.get::<_, Option<Uuid>>(6) {
        Some(_) => Some(ApiKey::from_columns(&row, 6)?),
        None => None,
    };
    let snapshot = row
        .get::<_, Option<DateTime<Utc>>>(2)
        .map(|captured_at| SnapshotMeta {
            captured_at,
            as_of_seq: row.get(3),
            part: row.get(4),
            row_version: row.get(5),
        });
    Ok(ReadContext {
        project_exists: row.get(0),
        head: row.get(1),
        snapshot,
        key,
    })
}

/// The precomputed groups of one breakdown, both periods, with the totals (`$4` the
/// dimension, `$5` the snapshot time the rows must have been computed at). No row means
/// nothing was precomputed for that snapshot; a row without a period, that nothing fell in
/// either range.
pub const BREAKDOWN_GROUPS_SQL: &str =
    "SELECT g.period, g.dimension = '', g.dimension_value, g.row_count, g.p50
   FROM metrics_drilldown_aggregate a
   LEFT JOIN metrics_breakdown_group g
     ON g.project_id = a.project_id AND g.metric_key = a.metric_key AND g.captured_at = a.captured_at
    AND g.time_range = $3 AND g.dimension IN ($4, '')
  WHERE a.project_id = $1 AND a.metric_key = $2 AND a.captured_at = $5
  ORDER BY g.period, g.dimension = '', g.dimension_value";

/// One period of a precomputed breakdown: the groups in dimension-value order, the total
/// count and median.
#[derive(Debug, Clone, Default)]
pub struct BreakdownPeriod {
    /// The groups.
    pub groups: Vec<BreakdownGroup>,
    /// Rows in the range.
    pub total_count: i64,
    /// Their median.
    pub total_p50: Option<f64>,
}

/// The current and previous period of a filter-free breakdown as the worker precomputed them
/// for the snapshot at `captured_at`, or `None` when it did not.
pub async fn breakdown(
    client: &impl GenericClient,
    project_id: Uuid,
    metric: &str,
    dimension: &str,
    time_range: &str,
    captured_at: DateTime<Utc>,
) -> anyhow::Result<Option<[BreakdownPeriod; 2]>> {
    let stmt = client.prepare_cached(BREAKDOWN_GROUPS_SQL).await?;
    let rows = client
        .query(
            &stmt,
            &[&project_id, &metric, &time_range, &dimension, &captured_at],
        )
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut periods: [BreakdownPeriod; 2] = Default::default();
    for row in &rows {
        let Some(period) = row.get::<_, Option<i16>>(0) else {
            continue;
        };
        let target = &mut periods[usize::from(period == 1)];
        if row.get::<_, bool>(1) {
            target.total_count = row.get(3);
            target.total_p50 = row.get(4);
        } else {
            target.groups.push(BreakdownGroup {
                value: row.get(2),
                count: row.get(3),
                p50: row.get(4),
            });
        }
    }
    Ok(Some(periods))
}

/// The precomputed task-order column of a page order.
fn order_column(sort_by: SortBy, descending: bool) -> &'static str {
    match (sort_by, descending) {
        (SortBy::Value, true) => "by_value_desc",
        (SortBy::Value, false) => "by_value_asc",
        (SortBy::Timestamp, true) => "by_ts_desc",
        (SortBy::Timestamp, false) => "by_ts_asc",
        (SortBy::TaskId, true) => "by_task_desc",
        (SortBy::TaskId, false) => "by_task_asc",
    }
}

/// The precomputed aggregation of one drill-down metric with the page of rows `$3`..=`$4`
/// (1-based positions) in the order of `column`, for the snapshot at `$5`: one row per item,
/// or one row without an item when the page is empty. Each item is a primary-key lookup (the
/// `LIMIT 1` keeps the planner from joining the metric's and project's rows wholesale, which
/// it did while its estimates were off).
pub fn drilldown_sql(column: &str) -> String {
    format!(
        "SELECT a.row_count, a.value_sum, a.value_avg, a.value_min, a.value_max, a.percentiles,
                p.task_id, p.title, p.value, p.ts, p.phase_id, p.milestone_id, p.assignee,
                p.task_class, p.state, t.task_id IS NOT NULL, {task_columns}
           FROM metrics_drilldown_aggregate a
           LEFT JOIN LATERAL unnest(a.{column}[$3:$4]) WITH ORDINALITY i(task_id, n) ON true
           LEFT JOIN LATERAL (
                SELECT * FROM metrics_drilldown d
                 WHERE d.project_id = $1 AND d.metric_key = $2 AND d.task_id = i.task_id
                 LIMIT 1) p ON true
           LEFT JOIN LATERAL (
                SELECT * FROM metrics_task m WHERE m.project_id = $1 AND m.task_id = i.task_id
                 LIMIT 1) t ON true
          WHERE a.project_id = $1 AND a.metric_key = $2 AND a.captured_at = $5
          ORDER BY i.n",
        task_columns = tasks::columns("t"),
    )
}

/// A filter-free drill-down page (`offset + limit` at most [`PRECOMPUTED_PAGE_ROWS`] for the
/// items; the aggregation holds for any page) as precomputed for the snapshot at
/// `captured_at`, or `None` when it was not.
#[allow(clippy::too_many_arguments)]
pub async fn drilldown(
    client: &impl GenericClient,
    project_id: Uuid,
    metric: &str,
    sort_by: SortBy,
    descending: bool,
    limit: i64,
    offset: i64,
    captured_at: DateTime<Utc>,
) -> anyhow::Result<Option<(Vec<DrilldownItem>, Aggregation)>> {
    let stmt = client
        .prepare_cached(&drilldown_sql(order_column(sort_by, descending)))
        .await?;
    let (first, last) = page_positions(limit, offset);
    let rows = client
        .query(&stmt, &[&project_id, &metric, &first, &last, &captured_at])
        .await?;
    let Some(head) = rows.first() else {
        return Ok(None);
    };
    let aggregation = aggregation_from_row(head, 0);
    let items = rows
        .iter()
        .filter(|r| r.get::<_, Option<String>>(6).is_some())
        .map(|r| drilldown_item(r, 6, metric, Some(captured_at)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some((items, aggregation)))
}

/// The 1-based first and last array positions of a page; a page past the precomputed ids asks
/// for none (the caller reads such pages from the rows).
fn page_positions(limit: i64, offset: i64) -> (i32, i32) {
    if offset + limit > PRECOMPUTED_PAGE_ROWS {
        return (1, 0);
    }
    // Both are at most PRECOMPUTED_PAGE_ROWS here.
    ((offset + 1) as i32, (offset + limit) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_map_to_array_positions() {
        assert_eq!(page_positions(50, 0), (1, 50));
        assert_eq!(page_positions(10, 490), (491, 500));
        assert_eq!(page_positions(10, 491), (1, 0));
    }
}
