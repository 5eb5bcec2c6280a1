//! Review and merge gate figures of `operational.gates`: the pending queue and the latency
//! and SLA breach rate of recent decisions. A decision whose request was never seen has no
//! latency, so it is left out of both averages rather than counted as instantaneous.

use chrono::{DateTime, Utc};

use super::facts::{GateFacts, ProjectFacts};
use super::stats::{mean, round_duration, round_ratio};
use super::summary::{reasons, Gates};
use super::time::{in_window, minutes_between, GATE_WINDOW};

/// SLA in hours applied to a gate requested without `sla_hours`.
pub const DEFAULT_GATE_SLA_HOURS: f64 = 48.0;

impl GateFacts {
    /// True while the gate is requested and not decided.
    pub fn is_pending(&self) -> bool {
        self.requested_at.is_some() && self.decided_at.is_none()
    }

    /// The gate's SLA in hours, defaulting to [`DEFAULT_GATE_SLA_HOURS`].
    pub fn effective_sla_hours(&self) -> f64 {
        self.sla_hours.unwrap_or(DEFAULT_GATE_SLA_HOURS)
    }

    /// Request-to-decision minutes (clamped at 0); `None` unless both are known.
    pub fn latency_minutes(&self) -> Option<f64> {
        Some(minutes_between(self.requested_at?, self.decided_at?))
    }
}

/// `operational.gates`: `queue_length` = pending gates; `avg_latency_minutes` = mean latency
/// of decisions in the last 7 d (by `decided_at`) whose request is known; `sla_breach_rate` =
/// share of those whose latency is strictly above the gate's SLA. Both `null` without such
/// decisions.
pub fn gates(facts: &ProjectFacts, now: DateTime<Utc>) -> Gates {
    let queue_length = facts.gates.iter().filter(|g| g.is_pending()).count() as u64;
    let decided: Vec<(f64, f64)> = facts
        .gates
        .iter()
        .filter(|gate| {
            gate.decided_at
                .is_some_and(|t| in_window(t, now, GATE_WINDOW))
        })
        .filter_map(|gate| Some((gate.latency_minutes()?, gate.effective_sla_hours() * 60.0)))
        .collect();
    let latencies: Vec<f64> = decided.iter().map(|(latency, _)| *latency).collect();
    let breaches = decided
        .iter()
        .filter(|(latency, sla_minutes)| latency > sla_minutes)
        .count();
    let sla_breach_rate =
        (!decided.is_empty()).then(|| round_ratio(breaches as f64 / decided.len() as f64));
    Gates {
        queue_length,
        avg_latency_minutes: mean(&latencies).map(round_duration),
        sla_breach_rate,
        reason: decided
            .is_empty()
            .then(|| reasons::NO_GATE_DECISIONS.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::facts::GateOutcome;
    use chrono::{TimeDelta, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 31, 12, 0, 0).unwrap()
    }

    fn gate(
        id: &str,
        requested_h_ago: Option<i64>,
        decided_h_ago: Option<i64>,
        sla: Option<f64>,
    ) -> GateFacts {
        let at = |h: i64| now() - TimeDelta::hours(h);
        GateFacts {
            gate_id: id.into(),
            task_id: format!("task-{id}"),
            gate_type: Some("review_gate".into()),
            reviewer: Some("rev".into()),
            requested_at: requested_h_ago.map(at),
            decided_at: decided_h_ago.map(at),
            outcome: decided_h_ago.map(|_| GateOutcome::Approved),
            sla_hours: sla,
        }
    }

    #[test]
    fn latency_and_sla_over_recent_decisions() {
        // Decided in the window: a (2 h, SLA 48), b (exactly 48 h, SLA 48: not a breach),
        // c (10 h, SLA 8: breach). Mean latency (120 + 2880 + 600) / 3 = 1200 min; 1 of 3
        // breached → 0.3333. d was decided 8 d ago (out), e has no request (no latency),
        // f and g are pending; h has neither request nor decision (not pending).
        let facts = ProjectFacts {
            gates: vec![
                gate("a", Some(3), Some(1), None),
                gate("b", Some(50), Some(2), Some(48.0)),
                gate("c", Some(20), Some(10), Some(8.0)),
                gate("d", Some(200), Some(192), None),
                gate("e", None, Some(1), None),
                gate("f", Some(5), None, None),
                gate("g", Some(100), None, None),
                gate("h", None, None, None),
            ],
            ..ProjectFacts::default()
        };
        let result = gates(&facts, now());
        assert_eq!(result.queue_length, 2);
        assert_eq!(result.avg_latency_minutes, Some(1200.0));
        assert_eq!(result.sla_breach_rate, Some(0.3333));
        assert_eq!(result.reason, None);
    }

    #[test]
    fn decision_at_window_start_counts() {
        // Decided exactly 7 d ago: inside [now − 7 d, now); latency 49 h > 48 h default SLA.
        let facts = ProjectFacts {
            gates: vec![gate("a", Some(7 * 24 + 49), Some(7 * 24), None)],
            ..ProjectFacts::default()
        };
        let result = gates(&facts, now());
        assert_eq!(result.avg_latency_minutes, Some(49.0 * 60.0));
        assert_eq!(result.sla_breach_rate, Some(1.0));
    }

    #[test]
    fn no_decisions_gives_null_latency() {
        let facts = ProjectFacts {
            gates: vec![gate("f", Some(5), None, None)],
            ..ProjectFacts::default()
        };
        let result = gates(&facts, now());
        assert_eq!(result.queue_length, 1);
        assert_eq!(result.avg_latency_minutes, None);
        assert_eq!(result.sla_breach_rate, None);
        assert_eq!(result.reason.as_deref(), Some(reasons::NO_GATE_DECISIONS));
    }
}
