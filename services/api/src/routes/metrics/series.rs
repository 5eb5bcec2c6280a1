//! Turning stored trend points into the series a client draws (SPEC §13): one point per
//! bucket of the requested range. Count metrics are 0 in a bucket without a point. Level
//! metrics are stored as change points, so a bucket without a point has the value of the
//! latest point before it (carried forward); before a series' first point there is no data
//! and no point. Dimensioned level points of a bucket are complete: a tuple without a point
//! in a bucket that has a total point is 0 there.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use flowmeter_shared::db::read_model::TrendRow;
use flowmeter_shared::read_model::Grain;
use serde_json::{Map, Value};

/// One point of a served series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    /// Bucket start.
    pub bucket: DateTime<Utc>,
    /// The value.
    pub value: Option<f64>,
    /// Samples behind it.
    pub sample_size: i64,
    /// Extra detail (confidence interval) of the stored point.
    pub detail: Value,
    /// The group's dimensions (`{}` for the total).
    pub dimensions: Map<String, Value>,
}

/// Bucket starts of `grain` from `from` through `last`.
pub fn buckets(grain: Grain, from: DateTime<Utc>, last: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut bucket = grain.bucket(from);
    while bucket <= last {
        out.push(bucket);
        bucket = grain.next(bucket);
    }
    out
}

/// The project total of a metric over `buckets`: `baseline` is the latest point before them
/// (levels only), `rows` the stored points among them.
pub fn totals(
    level: bool,
    baseline: Option<&TrendRow>,
    rows: &[TrendRow],
    buckets: &[DateTime<Utc>],
) -> Vec<SeriesPoint> {
    let by_bucket: BTreeMap<DateTime<Utc>, &TrendRow> =
        rows.iter().map(|r| (r.bucket, r)).collect();
    let mut carried = baseline.filter(|_| level);
    let mut out = Vec::with_capacity(buckets.len());
    for bucket in buckets {
        let row = by_bucket.get(bucket).copied();
        if level {
            carried = row.or(carried);
            if let Some(row) = carried {
                out.push(SeriesPoint {
                    bucket: *bucket,
                    value: row.value,
                    sample_size: row.sample_size,
                    detail: row.detail.clone(),
                    dimensions: Map::new(),
                });
            }
        } else {
            out.push(SeriesPoint {
                bucket: *bucket,
                value: Some(row.and_then(|r| r.value).unwrap_or(0.0)),
                sample_size: row.map_or(0, |r| r.sample_size),
                detail: row.map_or_else(|| Value::Object(Map::new()), |r| r.detail.clone()),
                dimensions: Map::new(),
            });
        }
    }
    out
}

/// The group of a dimensioned point: its values of `dimensions`.
fn group_of(row: &TrendRow, dimensions: &[&str]) -> Map<String, Value> {
    dimensions
        .iter()
        .map(|d| {
            (
                (*d).to_owned(),
                row.dimensions.get(*d).cloned().unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// A metric grouped by `dimensions` over `buckets`, summing the stored tuples of each group.
/// For levels, `closed` are the buckets with a total point (their tuples are complete) and
/// `baseline` the tuples of the latest such bucket before the range.
pub fn grouped(
    level: bool,
    dimensions: &[&str],
    baseline: &[TrendRow],
    closed: &BTreeSet<DateTime<Utc>>,
    has_baseline: bool,
    rows: &[TrendRow],
    buckets: &[DateTime<Utc>],
) -> Vec<SeriesPoint> {
    let mut by_bucket: BTreeMap<DateTime<Utc>, Vec<&TrendRow>> = BTreeMap::new();
    for row in rows {
        by_bucket.entry(row.bucket).or_default().push(row);
    }
    let key = |group: &Map<String, Value>| Value::Object(group.clone()).to_string();
    let mut groups: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for row in rows.iter().chain(baseline) {
        let group = group_of(row, dimensions);
        groups.entry(key(&group)).or_insert(group);
    }
    let sum = |tuples: &[&TrendRow]| {
        let mut sums: BTreeMap<String, (f64, i64)> = BTreeMap::new();
        for row in tuples {
            let entry = sums.entry(key(&group_of(row, dimensions))).or_default();
            entry.0 += row.value.unwrap_or(0.0);
            entry.1 += row.sample_size;
        }
        sums
    };
    let mut current: Option<BTreeMap<String, (f64, i64)>> =
        (level && has_baseline).then(|| sum(&baseline.iter().collect::<Vec<_>>()));
    let mut out = Vec::new();
    for bucket in buckets {
        let stored = by_bucket.get(bucket).map(Vec::as_slice).unwrap_or(&[]);
        let values = if level {
            if closed.contains(bucket) {
                current = Some(sum(stored));
            }
            match &current {
                Some(values) => values.clone(),
                None => continue,
            }
        } else {
            sum(stored)
        };
        for (name, group) in &groups {
            let (value, samples) = values.get(name).copied().unwrap_or((0.0, 0));
            out.push(SeriesPoint {
                bucket: *bucket,
                value: Some(value),
                sample_size: samples,
                detail: Value::Object(Map::new()),
                dimensions: group.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn row(at: &str, value: f64, dims: Value) -> TrendRow {
        TrendRow {
            bucket: t(at),
            dimensions: dims,
            value: Some(value),
            sample_size: value as i64,
            detail: json!({}),
        }
    }

    fn values(points: &[SeriesPoint]) -> Vec<(String, Option<f64>)> {
        points
            .iter()
            .map(|p| (p.bucket.format("%dT%H").to_string(), p.value))
            .collect()
    }

    #[test]
    fn counts_are_zero_where_no_point_is_stored() {
        let buckets = buckets(
            Grain::Hour,
            t("2026-03-02T10:00:00Z"),
            t("2026-03-02T13:00:00Z"),
        );
        let rows = [row("2026-03-02T11:00:00Z", 3.0, json!({}))];
        let served = totals(false, None, &rows, &buckets);
        assert_eq!(
            values(&served),
            [
                ("02T10".into(), Some(0.0)),
                ("02T11".into(), Some(3.0)),
                ("02T12".into(), Some(0.0)),
                ("02T13".into(), Some(0.0))
            ]
        );
    }

    #[test]
    fn levels_carry_the_latest_point_forward_and_start_with_the_baseline() {
        let buckets = buckets(
            Grain::Day,
            t("2026-03-02T00:00:00Z"),
            t("2026-03-05T00:00:00Z"),
        );
        let baseline = row("2026-02-20T00:00:00Z", 7.0, json!({}));
        let rows = [row("2026-03-04T00:00:00Z", 2.0, json!({}))];
        let served = totals(true, Some(&baseline), &rows, &buckets);
        assert_eq!(
            values(&served),
            [
                ("02T00".into(), Some(7.0)),
                ("03T00".into(), Some(7.0)),
                ("04T00".into(), Some(2.0)),
                ("05T00".into(), Some(2.0))
            ]
        );
        // Before a series' first point there is no data.
        let served = totals(true, None, &rows, &buckets);
        assert_eq!(values(&served).len(), 2);
    }

    #[test]
    fn grouped_levels_take_each_closed_bucket_as_complete() {
        let buckets = buckets(
            Grain::Day,
            t("2026-03-02T00:00:00Z"),
            t("2026-03-04T00:00:00Z"),
        );
        let a = json!({"assignee": "a", "phase": "p"});
        let b = json!({"assignee": "b", "phase": "p"});
        let baseline = [
            row("2026-03-01T00:00:00Z", 2.0, a.clone()),
            row("2026-03-01T00:00:00Z", 1.0, b.clone()),
        ];
        // On the 3rd only b holds WIP: a dropped to 0.
        let rows = [row("2026-03-03T00:00:00Z", 4.0, b)];
        let closed: BTreeSet<_> = [t("2026-03-03T00:00:00Z")].into();
        let served = grouped(
            true,
            &["assignee"],
            &baseline,
            &closed,
            true,
            &rows,
            &buckets,
        );
        let by: Vec<(String, String, Option<f64>)> = served
            .iter()
            .map(|p| {
                (
                    p.bucket.format("%d").to_string(),
                    p.dimensions["assignee"].as_str().unwrap().to_owned(),
                    p.value,
                )
            })
            .collect();
        assert_eq!(
            by,
            [
                ("02".into(), "a".into(), Some(2.0)),
                ("02".into(), "b".into(), Some(1.0)),
                ("03".into(), "a".into(), Some(0.0)),
                ("03".into(), "b".into(), Some(4.0)),
                ("04".into(), "a".into(), Some(0.0)),
                ("04".into(), "b".into(), Some(4.0)),
            ]
        );
    }
}
