//! The finished attempts IRS reads (SPEC §4), kept so that a score point costs a pass over
//! the window's attempts only: in IRS order per task (to find each failure's next success)
//! and by finish time (to walk a window), each failure carrying the finish of the success
//! that recovers it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use flowmeter_shared::metrics::integration::ReliabilityTally;
use flowmeter_shared::metrics::AttemptResult;

/// A finished attempt in IRS order: task id, finish time, attempt number, attempt id, and the
/// result's index in `AttemptResult::ALL`.
pub type FinishedAttempt = (String, DateTime<Utc>, Option<i64>, String, u8);

/// A finished attempt by finish time: finish time, task id, attempt number, attempt id.
type ByTime = (DateTime<Utc>, String, Option<i64>, String);

#[derive(Debug, Clone)]
struct Finish {
    result: AttemptResult,
    /// The finish of the first success after this attempt on its task's timeline.
    next_success: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct FinishedAttempts {
    by_task: BTreeSet<FinishedAttempt>,
    by_time: BTreeMap<ByTime, Finish>,
}

impl FinishedAttempts {
    pub fn insert(&mut self, attempt: FinishedAttempt) {
        let (task_id, at, number, id, rank) = &attempt;
        let finish = Finish {
            result: AttemptResult::ALL[usize::from(*rank)],
            next_success: None,
        };
        self.by_time
            .insert((*at, task_id.clone(), *number, id.clone()), finish);
        let task_id = task_id.clone();
        self.by_task.insert(attempt);
        self.relink(&task_id);
    }

    pub fn remove(&mut self, attempt: &FinishedAttempt) {
        let (task_id, at, number, id, _) = attempt;
        self.by_time
            .remove(&(*at, task_id.clone(), *number, id.clone()));
        self.by_task.remove(attempt);
        self.relink(task_id);
    }

    /// Points each of the task's attempts at the first success after it.
    fn relink(&mut self, task_id: &str) {
        let first = (
            task_id.to_owned(),
            DateTime::<Utc>::MIN_UTC,
            None,
            String::new(),
            0,
        );
        let mut next_success = None;
        let timeline: Vec<&FinishedAttempt> = self
            .by_task
            .range(first..)
            .take_while(|(task, ..)| task == task_id)
            .collect();
        for (task, at, number, id, rank) in timeline.into_iter().rev() {
            if let Some(finish) = self
                .by_time
                .get_mut(&(*at, task.clone(), *number, id.clone()))
            {
                finish.next_success = next_success;
            }
            if AttemptResult::ALL[usize::from(*rank)] == AttemptResult::Success {
                next_success = Some(*at);
            }
        }
    }

    /// The IRS tally of the attempts finished in `[end − window, end)`; `task_open` says
    /// whether a task is still open (asked only for failures not recovered before `end`).
    pub fn tally(
        &self,
        end: DateTime<Utc>,
        window: Duration,
        task_open: impl Fn(&str) -> bool,
    ) -> ReliabilityTally {
        let mut tally = ReliabilityTally::default();
        let from = (end - window, String::new(), None, String::new());
        for ((at, task_id, ..), finish) in self.by_time.range(from..) {
            if *at >= end {
                break;
            }
            tally.add(*at, finish.result, finish.next_success, end, || {
                task_open(task_id)
            });
        }
        tally
    }
}
