//! The snapshot step: the summary in the exact API shape, milestone health with its
//! forecast, level points for the open buckets and the buckets that ended in wall-clock
//! time, and the age drill-downs — all as of one instant, `now`.

use chrono::{DateTime, Duration, Utc};
use flowmeter_shared::metrics::dora::compute_dora;
use flowmeter_shared::metrics::{compute_summary, milestone_health};

use super::drilldown::SNAPSHOT_METRICS;
use super::model::{keys, Delta, SummaryRow, TrendKey};
use super::state::ProjectState;
use flowmeter_shared::read_model::Grain;

impl ProjectState {
    /// The instant at or before which a snapshot at `now` needs the latest stored DPI day
    /// point: the reference bucket, unless the snapshot deletes the points from before it
    /// (those ahead of event time), in which case only older stored points count.
    pub fn dpi_lookup(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let reference = dpi_reference_bucket(now);
        match self.cursors.open.get(&Grain::Day) {
            Some(open) if Grain::Day.next(*open) <= reference => {
                Grain::Day.next(*open) - Duration::microseconds(1)
            }
            _ => reference,
        }
    }
}

/// The day bucket whose DPI is "the value 7 days earlier" for a snapshot at `now`: the
/// latest day that ended at or before `now − 7 d`.
pub fn dpi_reference_bucket(now: DateTime<Utc>) -> DateTime<Utc> {
    Grain::Day.bucket(now - Duration::days(7)) - Duration::days(1)
}

impl ProjectState {
    /// Computes the snapshot as of `now`, including the drill-down rows of the tasks changed
    /// since the previous snapshot (which it marks as written). `stored` is the latest stored
    /// DPI day point at or before [`ProjectState::dpi_lookup`] (bucket and value); points this
    /// snapshot itself writes take precedence.
    ///
    /// `fill_gap` writes the buckets between event time and `now` too. A snapshot taken
    /// while the project is still catching up skips them: the events still to come close
    /// those buckets and overwrite whatever it wrote, so the work would be thrown away.
    pub fn snapshot(
        &mut self,
        now: DateTime<Utc>,
        as_of_seq: i64,
        fill_gap: bool,
        stored: Option<(DateTime<Utc>, Option<f64>)>,
    ) -> Delta {
        let mut delta = Delta::default();
        self.close_until(now, fill_gap, &mut delta);

        // DPI as of the reference day's end: the latest day point at or before it (points
        // are change points, carried forward). This snapshot's own points win over the
        // stored one, looked up by the caller at `dpi_lookup(now)`.
        let reference = dpi_reference_bucket(now);
        let own = delta
            .trend_set
            .range(
                TrendKey {
                    metric: keys::DPI.to_owned(),
                    grain: Grain::Day,
                    bucket: DateTime::<Utc>::MIN_UTC,
                    dims: None,
                }..=TrendKey {
                    metric: keys::DPI.to_owned(),
                    grain: Grain::Day,
                    bucket: reference,
                    dims: None,
                },
            )
            .filter(|(key, _)| key.dims.is_none())
            .map(|(key, point)| (key.bucket, point.value))
            .next_back();
        let dpi_7d_ago = match (own, stored) {
            (Some(own), Some(stored)) if stored.0 > own.0 => stored.1,
            (Some(own), _) => own.1,
            (None, stored) => stored.and_then(|(_, value)| value),
        };

        let mut summary = compute_summary(&self.facts, now, dpi_7d_ago);
        summary.dora = compute_dora(&self.dora, now, super::dora::production());
        let health = milestone_health(&self.facts, now, self.project_id, as_of_seq);

        // The open bucket of every grain, as of now: the same computation as a close,
        // ending at `now`, with scores at every grain.
        self.open_buckets(now, &mut delta);
        delta.drilldown_tasks = std::mem::take(&mut self.drilldown_pending);
        self.mark_fresh_drilldown(&mut delta);
        self.mark_fresh_trend(&mut delta, true);
        delta.drilldown_replace = Some((
            SNAPSHOT_METRICS.iter().map(|m| (*m).to_owned()).collect(),
            self.snapshot_rows(now),
        ));
        delta.summary = Some(SummaryRow {
            captured_at: now,
            as_of_seq,
            payload: serde_json::to_value(&summary).unwrap_or_default(),
            health: serde_json::to_value(&health).unwrap_or_default(),
            gap_filled: fill_gap,
        });
        delta
    }
}
