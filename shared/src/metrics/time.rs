//! Time arithmetic used by the formulas: rolling windows that end at `now`, non-negative
//! durations in the units the payload names (`_minutes`, `_hours`) and the window lengths
//! of SPEC §4. "now" is always a parameter; nothing here reads a clock.

use chrono::{DateTime, TimeDelta, Utc};

/// Window of `operational.throughput` (`tasks_integrated_week`, `tasks_by_milestone`).
pub const THROUGHPUT_WINDOW: TimeDelta = TimeDelta::days(7);
/// Window of the gate latency and SLA figures (decisions in the last 7 d).
pub const GATE_WINDOW: TimeDelta = TimeDelta::days(7);
/// Window of `operational.integration_outcomes` (attempts finished in the last 7 d).
pub const INTEGRATION_OUTCOME_WINDOW: TimeDelta = TimeDelta::days(7);
/// Window of the "tasks integrated in the last 30 d" formulas (cycle/lead time, CTS, FES,
/// bottleneck contribution), of BRR and of IRS.
pub const FLOW_WINDOW: TimeDelta = TimeDelta::days(30);
/// Window of the schedule-reliability component (milestones completed in the last 90 d).
pub const SCHEDULE_WINDOW: TimeDelta = TimeDelta::days(90);

/// Seconds in a minute, as a float for conversions.
pub const SECONDS_PER_MINUTE: f64 = 60.0;
/// Seconds in an hour, as a float for conversions.
pub const SECONDS_PER_HOUR: f64 = 3600.0;

/// True when `t` lies in the rolling window of length `window` ending at `now`:
/// `now − window ≤ t < now` (start inclusive, end exclusive).
pub fn in_window(t: DateTime<Utc>, now: DateTime<Utc>, window: TimeDelta) -> bool {
    t >= now - window && t < now
}

/// Like [`in_window`] for an optional timestamp; `None` is never in a window.
pub fn opt_in_window(t: Option<DateTime<Utc>>, now: DateTime<Utc>, window: TimeDelta) -> bool {
    t.is_some_and(|t| in_window(t, now, window))
}

/// Seconds from `from` to `to`, clamped at 0: out-of-order facts never yield a negative
/// duration (SPEC §3.1). Microsecond precision, like PostgreSQL `timestamptz`.
pub fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    let delta = to - from;
    let seconds = match delta.num_microseconds() {
        Some(micros) => micros as f64 / 1_000_000.0,
        // Only reachable for spans of ~292 000 years; whole seconds are plenty there.
        None => delta.num_seconds() as f64,
    };
    seconds.max(0.0)
}

/// Non-negative minutes from `from` to `to`.
pub fn minutes_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    seconds_between(from, to) / SECONDS_PER_MINUTE
}

/// Non-negative hours from `from` to `to`.
pub fn hours_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    seconds_between(from, to) / SECONDS_PER_HOUR
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 10, hour, minute, 0).unwrap()
    }

    #[test]
    fn window_includes_its_start_and_excludes_now() {
        let now = at(12, 0);
        let window = TimeDelta::hours(2);
        assert!(in_window(at(10, 0), now, window), "start is inclusive");
        assert!(in_window(at(11, 59), now, window));
        assert!(!in_window(at(12, 0), now, window), "now itself is excluded");
        assert!(!in_window(at(9, 59), now, window));
        assert!(!opt_in_window(None, now, window));
        assert!(opt_in_window(Some(at(11, 0)), now, window));
    }

    #[test]
    fn durations_are_clamped_at_zero() {
        // 10:00 → 11:30 is 5400 s = 90 min = 1.5 h; the reverse is clamped to 0.
        assert_eq!(seconds_between(at(10, 0), at(11, 30)), 5400.0);
        assert_eq!(minutes_between(at(10, 0), at(11, 30)), 90.0);
        assert_eq!(hours_between(at(10, 0), at(11, 30)), 1.5);
        assert_eq!(seconds_between(at(11, 30), at(10, 0)), 0.0);
    }

    #[test]
    fn sub_second_precision_is_kept() {
        let from = at(10, 0);
        let to = from + TimeDelta::milliseconds(1500);
        assert_eq!(seconds_between(from, to), 1.5);
    }
}
