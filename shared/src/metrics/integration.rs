//! Integration (merge) attempt figures: `operational.integration_outcomes` over the last 7 d
//! and the integration reliability score (IRS) over the last 30 d. Both look at each task's
//! finished attempts in time order, because "retry" and "recovery" are about what happened to
//! the same task after a failure.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};

use super::facts::{AttemptFacts, AttemptResult, ProjectFacts};
use super::stats::{clamp_unit, mean, round_duration, round_ratio, round_score};
use super::summary::{reasons, IntegrationOutcomes, IntegrationReliabilityScore};
use super::time::{minutes_between, FLOW_WINDOW, INTEGRATION_OUTCOME_WINDOW};

/// Weight of the success rate in IRS.
pub const IRS_SUCCESS_WEIGHT: f64 = 0.60;
/// Weight of the recovery speed in IRS.
pub const IRS_RECOVERY_WEIGHT: f64 = 0.40;
/// Mean recovery time (minutes) at which the recovery speed reaches 0.
pub const IRS_RECOVERY_HORIZON_MINUTES: f64 = 24.0 * 60.0;

/// One finished attempt on a task's timeline.
pub type Finish = (DateTime<Utc>, AttemptResult);

/// Finished attempts of one task, in finish order.
pub type Timeline<'a> = (&'a str, Vec<Finish>);

/// Finished attempts in the window ending at `now`, per task (in task id order), each task's
/// in finish order (ties broken by attempt number, then attempt id, so the order never
/// depends on input order). One sort groups them; this runs at every scored bucket close.
fn timelines(
    attempts: &[AttemptFacts],
    now: DateTime<Utc>,
    window: TimeDelta,
) -> Vec<Timeline<'_>> {
    let mut finished: Vec<(&AttemptFacts, Finish)> = attempts
        .iter()
        .filter_map(|a| Some((a, a.finished_within(now, window)?)))
        .collect();
    finished.sort_unstable_by(|(a, (a_at, _)), (b, (b_at, _))| {
        a.task_id
            .cmp(&b.task_id)
            .then_with(|| a_at.cmp(b_at))
            .then_with(|| a.attempt_number.cmp(&b.attempt_number))
            .then_with(|| a.attempt_id.cmp(&b.attempt_id))
    });
    let mut per_task: Vec<Timeline<'_>> = Vec::new();
    for (attempt, finish) in finished {
        match per_task.last_mut() {
            Some((task, timeline)) if *task == attempt.task_id => timeline.push(finish),
            _ => per_task.push((&attempt.task_id, vec![finish])),
        }
    }
    per_task
}

/// Minutes from a task's first failure to the first success after it, or `None` when the
/// task has no failure followed by a success.
fn retry_to_success_minutes(timeline: &[Finish]) -> Option<f64> {
    let first_failure = timeline.iter().position(|(_, r)| r.is_failure())?;
    let failed_at = timeline[first_failure].0;
    let (succeeded_at, _) = timeline[first_failure..]
        .iter()
        .find(|(_, r)| *r == AttemptResult::Success)?;
    Some(minutes_between(failed_at, *succeeded_at))
}

/// `operational.integration_outcomes`: counts per result of attempts finished in the last
/// 7 d, and the mean over tasks of the minutes from the first failure to the next success.
pub fn integration_outcomes(facts: &ProjectFacts, now: DateTime<Utc>) -> IntegrationOutcomes {
    let per_task = timelines(&facts.attempts, now, INTEGRATION_OUTCOME_WINDOW);
    let mut outcomes = IntegrationOutcomes {
        success: 0,
        conflict: 0,
        failed_checks: 0,
        aborted: 0,
        avg_retry_to_success_minutes: None,
        reason: None,
    };
    for (_, result) in per_task.iter().flat_map(|(_, timeline)| timeline) {
        match result {
            AttemptResult::Success => outcomes.success += 1,
            AttemptResult::Conflict => outcomes.conflict += 1,
            AttemptResult::FailedChecks => outcomes.failed_checks += 1,
            AttemptResult::Aborted => outcomes.aborted += 1,
        }
    }
    let retries: Vec<f64> = per_task
        .iter()
        .filter_map(|(_, timeline)| retry_to_success_minutes(timeline))
        .collect();
    outcomes.avg_retry_to_success_minutes = mean(&retries).map(round_duration);
    if retries.is_empty() {
        outcomes.reason = Some(reasons::NO_RETRIED_SUCCESSES.to_owned());
    }
    outcomes
}

/// Recovery-time samples (minutes) of the failures finished in the last 30 d. A failure's
/// recovery time runs from its finish to the task's next successful finish. A failure not
/// (yet) followed by a success counts with the time so far (`now − finish`) while its task is
/// still open, so an unfixed failure weighs on recovery speed; if the task ended without a
/// later success (abandoned, cancelled, or integrated outside the attempt flow) the failure
/// has no recovery to measure and only lowers the success rate.
pub fn recovery_minutes(facts: &ProjectFacts, now: DateTime<Utc>) -> Vec<f64> {
    recovery_samples(facts, &timelines(&facts.attempts, now, FLOW_WINDOW), now)
}

/// [`recovery_minutes`] over timelines already gathered. Only failures without a later
/// success need their task's state, so the task list is scanned only when there are some.
fn recovery_samples(
    facts: &ProjectFacts,
    per_task: &[Timeline<'_>],
    now: DateTime<Utc>,
) -> Vec<f64> {
    let closed_tasks = closed_unrecovered_tasks(facts, per_task);
    recovery_samples_with(per_task, |task_id| closed_tasks.contains(task_id), now)
}

/// The terminal tasks among those with a failure not followed by a success.
fn closed_unrecovered_tasks<'a>(
    facts: &'a ProjectFacts,
    per_task: &[Timeline<'_>],
) -> HashSet<&'a str> {
    let unrecovered: HashSet<&str> = per_task
        .iter()
        .filter(|(_, timeline)| {
            timeline.iter().enumerate().any(|(index, (_, result))| {
                result.is_failure()
                    && !timeline[index + 1..]
                        .iter()
                        .any(|(_, r)| *r == AttemptResult::Success)
            })
        })
        .map(|(task_id, _)| *task_id)
        .collect();
    if unrecovered.is_empty() {
        return HashSet::new();
    }
    facts
        .tasks
        .iter()
        .filter(|task| task.state.is_terminal() && unrecovered.contains(task.task_id.as_str()))
        .map(|task| task.task_id.as_str())
        .collect()
}

/// Recovery samples of timelines, given which tasks are closed (terminal).
fn recovery_samples_with(
    per_task: &[Timeline<'_>],
    is_closed: impl Fn(&str) -> bool,
    now: DateTime<Utc>,
) -> Vec<f64> {
    let mut samples = Vec::new();
    for (task_id, timeline) in per_task {
        // Unknown tasks are treated as open: nothing says the failure was given up. Asked
        // only for a failure without a later success.
        let mut open: Option<bool> = None;
        let mut task_open = || *open.get_or_insert_with(|| !is_closed(task_id));
        for (index, (failed_at, result)) in timeline.iter().enumerate() {
            if !result.is_failure() {
                continue;
            }
            let next_success = timeline[index + 1..]
                .iter()
                .find(|(_, r)| *r == AttemptResult::Success);
            match next_success {
                Some((succeeded_at, _)) => samples.push(minutes_between(*failed_at, *succeeded_at)),
                None if task_open() => samples.push(minutes_between(*failed_at, now)),
                None => {}
            }
        }
    }
    samples
}

/// Recovery speed: `clamp(1 − mean recovery / 24 h)`, or 1.0 when there is no recovery
/// sample (nothing failed, or every failure ended with its task).
pub fn recovery_speed(mean_recovery_minutes: Option<f64>) -> f64 {
    match mean_recovery_minutes {
        Some(minutes) => clamp_unit(1.0 - minutes / IRS_RECOVERY_HORIZON_MINUTES),
        None => 1.0,
    }
}

/// IRS on the 0–1 scale: `0.60·success_rate + 0.40·recovery_speed`.
pub fn irs_combine(success_rate: f64, recovery_speed: f64) -> f64 {
    IRS_SUCCESS_WEIGHT * success_rate + IRS_RECOVERY_WEIGHT * recovery_speed
}

/// `north_star.integration_reliability_score` over attempts finished in the last 30 d;
/// everything `null` when none finished.
pub fn integration_reliability_score(
    facts: &ProjectFacts,
    now: DateTime<Utc>,
) -> IntegrationReliabilityScore {
    let per_task = timelines(&facts.attempts, now, FLOW_WINDOW);
    let closed_tasks = closed_unrecovered_tasks(facts, &per_task);
    integration_reliability_of(&per_task, |task_id| closed_tasks.contains(task_id), now)
}

/// [`integration_reliability_score`] over the timelines of the attempts finished in the 30
/// days before `now` (per task in task id order, each in finish order with ties broken by
/// attempt number then attempt id), given which tasks are terminal. The fold keeps the
/// attempts in that order, so each of its many score points costs no sort.
pub fn integration_reliability_of(
    per_task: &[Timeline<'_>],
    is_closed: impl Fn(&str) -> bool,
    now: DateTime<Utc>,
) -> IntegrationReliabilityScore {
    let mut tally = ReliabilityTally::default();
    for (task_id, timeline) in per_task {
        let mut open: Option<bool> = None;
        for (index, (finished_at, result)) in timeline.iter().enumerate() {
            let next_success = timeline[index + 1..]
                .iter()
                .find(|(_, r)| *r == AttemptResult::Success)
                .map(|(at, _)| *at);
            tally.add(*finished_at, *result, next_success, now, || {
                *open.get_or_insert_with(|| !is_closed(task_id))
            });
        }
    }
    tally.score()
}

/// What IRS is computed from: the finished attempts of a window, how many succeeded, and the
/// recovery samples summed in whole microseconds (so the mean does not depend on the order
/// the samples are added in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReliabilityTally {
    pub finished: u64,
    pub successes: u64,
    pub recovery_micros: i128,
    pub recoveries: u64,
}

impl ReliabilityTally {
    /// Adds one finished attempt of the window ending at `now`. `next_success` is the finish
    /// of the first success after it on its task's timeline (before `now`, or it is ignored);
    /// `task_open` says whether its task is still open, asked only for a failure without one.
    pub fn add(
        &mut self,
        finished_at: DateTime<Utc>,
        result: AttemptResult,
        next_success: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        task_open: impl FnOnce() -> bool,
    ) {
        self.finished += 1;
        if result == AttemptResult::Success {
            self.successes += 1;
            return;
        }
        if !result.is_failure() {
            return;
        }
        let until = match next_success.filter(|at| *at < now) {
            Some(succeeded_at) => succeeded_at,
            None if task_open() => now,
            None => return,
        };
        self.recovery_micros += micros_between(finished_at, until);
        self.recoveries += 1;
    }

    /// IRS from the tally; everything `null` when nothing finished.
    pub fn score(&self) -> IntegrationReliabilityScore {
        if self.finished == 0 {
            return IntegrationReliabilityScore {
                value: None,
                success_rate: None,
                avg_recovery_minutes: None,
                reason: Some(reasons::NO_FINISHED_ATTEMPTS.to_owned()),
            };
        }
        let failures = self.finished - self.successes;
        let success_rate = self.successes as f64 / self.finished as f64;
        let mean_recovery = (self.recoveries > 0)
            .then(|| self.recovery_micros as f64 / self.recoveries as f64 / MICROS_PER_MINUTE);
        let value = irs_combine(success_rate, recovery_speed(mean_recovery));
        let reason = match (mean_recovery, failures) {
            (Some(_), _) => None,
            (None, 0) => Some(reasons::NO_FAILED_ATTEMPTS),
            (None, _) => Some(reasons::NO_RECOVERIES),
        };
        IntegrationReliabilityScore {
            value: Some(round_score(100.0 * value)),
            success_rate: Some(round_ratio(success_rate)),
            avg_recovery_minutes: mean_recovery.map(round_duration),
            reason: reason.map(str::to_owned),
        }
    }
}

const MICROS_PER_MINUTE: f64 = 60_000_000.0;

/// Non-negative whole microseconds from `from` to `to`.
fn micros_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i128 {
    let delta = to - from;
    let micros = delta
        .num_microseconds()
        .map_or(i128::from(delta.num_seconds()) * 1_000_000, i128::from);
    micros.max(0)
}

#[cfg(test)]
#[path = "integration_tests.rs"]
mod tests;
