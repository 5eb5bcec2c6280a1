//! Monte Carlo forecast of a milestone's completion date (SPEC §4 "milestone health"). Each
//! trial replays history: every simulated day draws one of the project's daily integrated
//! counts of the last 30 complete UTC days (zero days included) until the remaining tasks are
//! done. The random stream is ChaCha8 seeded from (project, as_of_seq) and sampled with an
//! explicit unbiased 32-bit method, so the stored forecast is identical on every platform and
//! `verify` can recompute it bit for bit.

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::facts::ProjectFacts;

/// Trials per forecast.
pub const FORECAST_TRIALS: u32 = 10_000;
/// Complete UTC days of throughput history sampled.
pub const FORECAST_HISTORY_DAYS: u32 = 30;
/// Minimum number of history days with at least one integration for a forecast.
pub const FORECAST_MIN_ACTIVE_DAYS: usize = 5;
/// Longest simulated horizon; a trial not done by then counts as never finishing.
pub const FORECAST_MAX_DAYS: u32 = 3650;

/// `forecast.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ForecastStatus {
    /// Simulated; dates and probability are set.
    Ok,
    /// Fewer than 5 days with integrations in the last 30 d: no forecast.
    InsufficientData,
    /// No task remains; the dates are the actual completion date.
    Completed,
    /// The milestone has no tasks.
    NoTasks,
}

/// `forecast` of a `/v1/metrics/health` milestone: completion dates (UTC) by which the
/// remaining work is done in 50 %, 85 % and 95 % of trials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Forecast {
    /// How the dates were obtained.
    pub status: ForecastStatus,
    /// Median completion date.
    #[schema(required = true)]
    pub p50: Option<NaiveDate>,
    /// 85th percentile completion date.
    #[schema(required = true)]
    pub p85: Option<NaiveDate>,
    /// 95th percentile completion date.
    #[schema(required = true)]
    pub p95: Option<NaiveDate>,
}

impl Forecast {
    /// A forecast with `status` and no dates.
    pub fn without_dates(status: ForecastStatus) -> Self {
        Forecast {
            status,
            p50: None,
            p85: None,
            p95: None,
        }
    }
}

/// A forecast plus the unrounded probability of finishing after the due date.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastOutcome {
    /// Status and dates.
    pub forecast: Forecast,
    /// P(completion date > due date); `None` without a due date or without a forecast.
    pub breach_probability: Option<f64>,
}

/// Integrated tasks per UTC day over the [`FORECAST_HISTORY_DAYS`] complete days before
/// `now`'s day (today is partial and would bias the sample towards zero), oldest first.
pub fn daily_integrated_counts(facts: &ProjectFacts, now: DateTime<Utc>) -> Vec<u32> {
    let today = now.date_naive();
    let first = today - TimeDelta::days(i64::from(FORECAST_HISTORY_DAYS));
    let mut counts = vec![0u32; FORECAST_HISTORY_DAYS as usize];
    for integrated_at in facts.tasks.iter().filter_map(|t| t.integrated_at) {
        let day = integrated_at.date_naive();
        if day >= first && day < today {
            if let Some(slot) = usize::try_from((day - first).num_days())
                .ok()
                .and_then(|index| counts.get_mut(index))
            {
                *slot += 1;
            }
        }
    }
    counts
}

/// The 32-byte ChaCha seed of a forecast: project id bytes, `as_of_seq` little-endian and a
/// fixed tag, so one snapshot always yields the same forecast and the next one a fresh draw.
pub fn forecast_seed(project_id: Uuid, as_of_seq: i64) -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(project_id.as_bytes());
    seed[16..24].copy_from_slice(&as_of_seq.to_le_bytes());
    seed[24..].copy_from_slice(b"fm-fcst1");
    seed
}

/// Uniform draw in `0..bound` (`bound > 0`) from 32-bit outputs (Lemire's unbiased
/// multiply-and-reject), independent of `usize` width and of `rand`'s own range algorithms.
fn draw_below(rng: &mut ChaCha8Rng, bound: u32) -> u32 {
    let mut product = u64::from(rng.next_u32()) * u64::from(bound);
    if (product as u32) < bound {
        let threshold = bound.wrapping_neg() % bound;
        while (product as u32) < threshold {
            product = u64::from(rng.next_u32()) * u64::from(bound);
        }
    }
    (product >> 32) as u32
}

/// Days needed per trial to integrate `remaining` tasks, each day drawing one value of
/// `daily_counts`; `None` for a trial not done within [`FORECAST_MAX_DAYS`]. Empty history
/// yields only `None`.
pub fn simulate_days_to_finish(
    daily_counts: &[u32],
    remaining: u32,
    seed: [u8; 32],
    trials: u32,
) -> Vec<Option<u32>> {
    let Ok(bound) = u32::try_from(daily_counts.len()) else {
        return vec![None; trials as usize];
    };
    if bound == 0 {
        return vec![None; trials as usize];
    }
    let mut rng = ChaCha8Rng::from_seed(seed);
    (0..trials)
        .map(|_| {
            let mut done = 0u64;
            for day in 1..=FORECAST_MAX_DAYS {
                done += u64::from(daily_counts[draw_below(&mut rng, bound) as usize]);
                if done >= u64::from(remaining) {
                    return Some(day);
                }
            }
            None
        })
        .collect()
}

/// Nearest-rank percentile of sorted trial outcomes (`None` = never, sorted last): the
/// smallest day count reached by at least `percent` % of the trials (rank
/// ⌈percent·n/100⌉, integer arithmetic so no float rounding can shift it). Dates are
/// discrete, so no interpolation.
fn nearest_rank(sorted: &[Option<u32>], percent: u32) -> Option<u32> {
    let rank = (u64::from(percent) * sorted.len() as u64).div_ceil(100);
    let index = usize::try_from(rank.max(1) - 1).ok()?;
    sorted.get(index).copied().flatten()
}

/// Forecast for `remaining` tasks (> 0) starting on `first_day` (day 1 of every trial), with
/// [`FORECAST_TRIALS`] trials. A trial taking `d` days completes on `first_day + (d − 1)` and
/// breaches when that date is after `due_date`; trials that never finish breach.
pub fn monte_carlo_forecast(
    daily_counts: &[u32],
    remaining: u32,
    first_day: NaiveDate,
    due_date: Option<NaiveDate>,
    seed: [u8; 32],
) -> ForecastOutcome {
    let active_days = daily_counts.iter().filter(|count| **count > 0).count();
    if active_days < FORECAST_MIN_ACTIVE_DAYS {
        return ForecastOutcome {
            forecast: Forecast::without_dates(ForecastStatus::InsufficientData),
            breach_probability: None,
        };
    }
    let days = simulate_days_to_finish(daily_counts, remaining, seed, FORECAST_TRIALS);
    outcome_of_trials(days, first_day, due_date)
}

/// Turns trial outcomes (days needed, `None` = never) into dates and a breach probability.
fn outcome_of_trials(
    mut days: Vec<Option<u32>>,
    first_day: NaiveDate,
    due_date: Option<NaiveDate>,
) -> ForecastOutcome {
    days.sort_by_key(|d| d.unwrap_or(u32::MAX));
    let date_at = |p| {
        nearest_rank(&days, p)
            .and_then(|d| first_day.checked_add_days(Days::new(u64::from(d).saturating_sub(1))))
    };
    let breach_probability = due_date.filter(|_| !days.is_empty()).map(|due| {
        // Days available up to and including the due date.
        let allowed = (due - first_day).num_days() + 1;
        let breaches = days
            .iter()
            .filter(|d| d.is_none_or(|d| i64::from(d) > allowed))
            .count();
        breaches as f64 / days.len() as f64
    });
    ForecastOutcome {
        forecast: Forecast {
            status: ForecastStatus::Ok,
            p50: date_at(50),
            p85: date_at(85),
            p95: date_at(95),
        },
        breach_probability,
    }
}

#[cfg(test)]
#[path = "forecast_tests.rs"]
mod tests;
