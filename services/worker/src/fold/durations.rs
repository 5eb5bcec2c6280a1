//! The cycle and lead times (minutes) of the tasks integrated in the trailing duration
//! window, kept sorted between bucket closes. Consecutive hour closes share all but an hour's
//! worth of samples at each end of their windows, so a close moves the window by the samples
//! that enter and leave it instead of collecting and ordering the whole window again; a
//! change to the integration index inside the window is applied to it as it happens. The
//! values are the ones a fresh collection would give (the same division of the same seconds),
//! in ascending `total_cmp` order, so every median, interval and mean read from them is a
//! function of the set of samples.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use super::state::IntegratedSample;

/// Above this many samples entering at once, they are appended and the whole list sorted
/// rather than inserted one by one.
const BULK: usize = 64;

/// The integration index the window reads.
pub type Integrated = BTreeMap<(DateTime<Utc>, String), IntegratedSample>;

/// The sorted samples of the tasks integrated in `[from, to)`.
#[derive(Debug, Default)]
pub struct Window {
    /// The window the lists hold; `None`: nothing held yet.
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Cycle times (claimed tasks only), ascending.
    pub cycle: Vec<f64>,
    /// Lead times, ascending.
    pub lead: Vec<f64>,
}

/// The minutes a sample contributes (NaN never comes from the fold; it is left out, as
/// `percentile_cont` leaves it out).
fn minutes(sample: &IntegratedSample) -> (Option<f64>, Option<f64>) {
    let keep = |m: f64| (!m.is_nan()).then_some(m);
    (
        sample.cycle_seconds.map(|s| s / 60.0).and_then(keep),
        keep(sample.lead_seconds / 60.0),
    )
}

fn insert_sorted(values: &mut Vec<f64>, value: f64) {
    let at = values.partition_point(|v| v.total_cmp(&value) == Ordering::Less);
    values.insert(at, value);
}

fn remove_sorted(values: &mut Vec<f64>, value: f64) {
    let at = values.partition_point(|v| v.total_cmp(&value) == Ordering::Less);
    debug_assert!(
        values
            .get(at)
            .is_some_and(|v| v.total_cmp(&value) == Ordering::Equal),
        "a sample leaving the duration window was in it"
    );
    if values
        .get(at)
        .is_some_and(|v| v.total_cmp(&value) == Ordering::Equal)
    {
        values.remove(at);
    }
}

impl Window {
    /// Applies an insertion (`sign` = 1) or removal (−1) in the integration index.
    pub fn note(&mut self, at: DateTime<Utc>, sample: &IntegratedSample, sign: i64) {
        let Some((from, to)) = self.span else { return };
        if at < from || at >= to {
            return;
        }
        let (cycle, lead) = minutes(sample);
        for (values, value) in [(&mut self.cycle, cycle), (&mut self.lead, lead)] {
            let Some(value) = value else { continue };
            if sign > 0 {
                insert_sorted(values, value);
            } else {
                remove_sorted(values, value);
            }
        }
    }

    /// Moves the window to `[from, to)` of `integrated`.
    pub fn move_to(&mut self, integrated: &Integrated, from: DateTime<Utc>, to: DateTime<Utc>) {
        let range = |a: DateTime<Utc>, b: DateTime<Utc>| {
            integrated
                .range((a, String::new())..(b, String::new()))
                .map(|(_, sample)| sample)
        };
        match self.span {
            Some(span) if span == (from, to) => {}
            // Forward and overlapping (or touching): drop the samples that left, add those
            // that entered.
            Some((old_from, old_to)) if from >= old_from && to >= old_to && from <= old_to => {
                for sample in range(old_from, from) {
                    let (cycle, lead) = minutes(sample);
                    if let Some(value) = cycle {
                        remove_sorted(&mut self.cycle, value);
                    }
                    if let Some(value) = lead {
                        remove_sorted(&mut self.lead, value);
                    }
                }
                self.add(range(old_to, to));
                self.span = Some((from, to));
            }
            _ => {
                self.cycle.clear();
                self.lead.clear();
                self.add(range(from, to));
                self.span = Some((from, to));
            }
        }
    }

    fn add<'a>(&mut self, samples: impl Iterator<Item = &'a IntegratedSample>) {
        let entering: Vec<(Option<f64>, Option<f64>)> = samples.map(minutes).collect();
        if entering.len() > BULK {
            self.cycle.extend(entering.iter().filter_map(|(c, _)| *c));
            self.lead.extend(entering.iter().filter_map(|(_, l)| *l));
            self.cycle.sort_unstable_by(f64::total_cmp);
            self.lead.sort_unstable_by(f64::total_cmp);
            return;
        }
        for (cycle, lead) in entering {
            if let Some(value) = cycle {
                insert_sorted(&mut self.cycle, value);
            }
            if let Some(value) = lead {
                insert_sorted(&mut self.lead, value);
            }
        }
    }
}

/// The window behind a lock, so a close (which reads the state) can move it. Cloning a state
/// starts its copy with an empty window, filled on its first close.
#[derive(Debug, Default)]
pub struct Cache(Mutex<Window>);

impl Clone for Cache {
    fn clone(&self) -> Self {
        Cache::default()
    }
}

impl Cache {
    /// The window, for a change made through `&mut` (no locking).
    pub fn get_mut(&mut self) -> &mut Window {
        self.0.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    /// The window moved to `[from, to)` of `integrated`.
    pub fn at(
        &self,
        integrated: &Integrated,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> MutexGuard<'_, Window> {
        let mut window = self.0.lock().unwrap_or_else(|e| e.into_inner());
        window.move_to(integrated, from, to);
        window
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn sample(cycle: Option<f64>, lead: f64) -> IntegratedSample {
        IntegratedSample {
            cycle_seconds: cycle,
            lead_seconds: lead,
            time_in_state_seconds: Default::default(),
        }
    }

    /// What a fresh collection of `[from, to)` gives, sorted.
    fn collected(integrated: &Integrated, from: DateTime<Utc>, to: DateTime<Utc>) -> Window {
        let mut fresh = Window::default();
        fresh.move_to(integrated, from, to);
        let mut cycle: Vec<f64> = Vec::new();
        let mut lead: Vec<f64> = Vec::new();
        for ((at, _), s) in integrated {
            if *at >= from && *at < to {
                cycle.extend(s.cycle_seconds.map(|c| c / 60.0));
                lead.push(s.lead_seconds / 60.0);
            }
        }
        cycle.sort_by(f64::total_cmp);
        lead.sort_by(f64::total_cmp);
        assert_eq!(fresh.cycle, cycle);
        assert_eq!(fresh.lead, lead);
        fresh
    }

    /// A window moved forward, backward and across gaps, with samples added and removed inside
    /// and outside it between moves, always equals a fresh sorted collection.
    #[test]
    fn a_moved_window_equals_a_fresh_collection() {
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut seed: u64 = 11;
        let mut next = |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        let mut integrated = Integrated::new();
        let mut window = Window::default();
        let mut end = t0 + Duration::days(10);
        for step in 0..3000 {
            match next(10) {
                0..=3 => {
                    let at = t0 + Duration::minutes(next(60 * 24 * 60) as i64);
                    // Many ties, as durations rounded to minutes have.
                    let s = sample(
                        (next(3) > 0).then(|| (next(50) * 60) as f64),
                        (next(80) * 60) as f64,
                    );
                    let key = (at, format!("t{step}"));
                    window.note(at, &s, 1);
                    integrated.insert(key, s);
                }
                4..=5 if !integrated.is_empty() => {
                    let n = next(integrated.len() as u64) as usize;
                    let key = integrated.keys().nth(n).unwrap().clone();
                    let s = integrated.remove(&key).unwrap();
                    window.note(key.0, &s, -1);
                }
                6 => end -= Duration::hours(next(48) as i64),
                7 => end += Duration::days(next(20) as i64),
                _ => end += Duration::hours(1),
            }
            let from = end - Duration::days(7);
            window.move_to(&integrated, from, end);
            let fresh = collected(&integrated, from, end);
            assert_eq!(window.cycle, fresh.cycle, "cycle at step {step}");
            assert_eq!(window.lead, fresh.lead, "lead at step {step}");
        }
    }
}
