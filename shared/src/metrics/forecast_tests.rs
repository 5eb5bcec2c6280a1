//! Tests of the Monte Carlo forecast, including a closed-form check of the breach
//! probability.

use super::*;
use crate::metrics::facts::TaskFacts;
use crate::metrics::state::TaskState;
use chrono::TimeZone;

fn date(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, month, day).unwrap()
}

fn seed() -> [u8; 32] {
    forecast_seed(Uuid::from_u128(0x1234_5678_9abc_def0), 42)
}

/// 15 days with 0 and 15 days with 1 integration: each simulated day completes a task with
/// probability ½.
fn half_and_half() -> Vec<u32> {
    (0..30).map(|i| i % 2).collect()
}

/// P(at least `r` successes in `d` Bernoulli(½) days) = P(done within `d` days) for the
/// negative-binomial number of days needed to complete `r` tasks.
fn done_within(r: u32, d: u32) -> f64 {
    let mut binomial = 1.0; // C(d, 0)
    let mut at_least = 0.0;
    for k in 0..=d {
        if k > 0 {
            binomial = binomial * f64::from(d - k + 1) / f64::from(k);
        }
        if k >= r {
            at_least += binomial;
        }
    }
    at_least / 2f64.powi(d as i32)
}

#[test]
fn daily_counts_cover_the_30_complete_days_before_today() {
    // now 03-31 12:00 → days 03-01 ..= 03-30. 03-01 00:00 is index 0, 03-30 23:59 index 29;
    // 02-28 23:59 and today (03-31 01:00) are outside; two tasks on 03-15 (index 14).
    let now = Utc.with_ymd_and_hms(2025, 3, 31, 12, 0, 0).unwrap();
    let at = |m, d, h, min| Utc.with_ymd_and_hms(2025, m, d, h, min, 0).unwrap();
    let integrated = |id: &str, t| TaskFacts {
        state: TaskState::Integrated,
        integrated_at: Some(t),
        ..TaskFacts::new(id, at(1, 1, 0, 0))
    };
    let facts = ProjectFacts {
        tasks: vec![
            integrated("a", at(3, 1, 0, 0)),
            integrated("b", at(3, 30, 23, 59)),
            integrated("c", at(2, 28, 23, 59)),
            integrated("d", at(3, 31, 1, 0)),
            integrated("e", at(3, 15, 8, 0)),
            integrated("f", at(3, 15, 9, 0)),
            TaskFacts::new("open", at(3, 2, 0, 0)),
        ],
        ..ProjectFacts::default()
    };
    let counts = daily_integrated_counts(&facts, now);
    assert_eq!(counts.len(), 30);
    assert_eq!(counts[0], 1);
    assert_eq!(counts[14], 2);
    assert_eq!(counts[29], 1);
    assert_eq!(counts.iter().sum::<u32>(), 4);
}

#[test]
fn seed_depends_on_project_and_sequence() {
    let project = Uuid::from_u128(7);
    assert_eq!(forecast_seed(project, 1), forecast_seed(project, 1));
    assert_ne!(forecast_seed(project, 1), forecast_seed(project, 2));
    assert_ne!(
        forecast_seed(project, 1),
        forecast_seed(Uuid::from_u128(8), 1)
    );
}

#[test]
fn draws_are_uniform_and_in_range() {
    // 30 000 draws below 3: each value expected 10 000 times (σ ≈ 82), allow ±500.
    let mut rng = ChaCha8Rng::from_seed(seed());
    let mut histogram = [0u32; 3];
    for _ in 0..30_000 {
        histogram[draw_below(&mut rng, 3) as usize] += 1;
    }
    for count in histogram {
        assert!((9_500..=10_500).contains(&count), "{histogram:?}");
    }
}

#[test]
fn fewer_than_five_active_days_is_insufficient_data() {
    let mut counts = vec![0u32; 30];
    counts[..4].copy_from_slice(&[3, 1, 2, 5]);
    let outcome = monte_carlo_forecast(&counts, 5, date(4, 1), Some(date(4, 30)), seed());
    assert_eq!(
        outcome.forecast,
        Forecast::without_dates(ForecastStatus::InsufficientData)
    );
    assert_eq!(outcome.breach_probability, None);
}

#[test]
fn breach_probability_matches_the_negative_binomial() {
    // 10 tasks at ½ per day; due on day 20 (first day 04-01 → due 04-20).
    // Exact P(breach) = 1 − P(Bin(20, ½) ≥ 10) = P(Bin(20, ½) ≤ 9) = 0.411901.
    let exact = 1.0 - done_within(10, 20);
    assert!((exact - 0.411901).abs() < 1e-6);
    let outcome = monte_carlo_forecast(&half_and_half(), 10, date(4, 1), Some(date(4, 20)), seed());
    let breach = outcome.breach_probability.unwrap();
    assert!(
        (breach - exact).abs() <= 0.03,
        "simulated {breach}, exact {exact}"
    );
    assert_eq!(outcome.forecast.status, ForecastStatus::Ok);

    // Percentiles: the exact quantile is the smallest d with P(done within d) ≥ p; the
    // simulated date may differ by one day at most.
    for (p, simulated) in [
        (0.50, outcome.forecast.p50),
        (0.85, outcome.forecast.p85),
        (0.95, outcome.forecast.p95),
    ] {
        let exact_days = (10..200).find(|&d| done_within(10, d) >= p).unwrap();
        let simulated_days = (simulated.unwrap() - date(4, 1)).num_days() + 1;
        assert!(
            (simulated_days - i64::from(exact_days)).abs() <= 1,
            "p{p}: simulated {simulated_days} days, exact {exact_days}"
        );
    }
}

#[test]
fn forecast_is_repeatable_for_one_seed() {
    let first = monte_carlo_forecast(&half_and_half(), 10, date(4, 1), Some(date(4, 20)), seed());
    let second = monte_carlo_forecast(&half_and_half(), 10, date(4, 1), Some(date(4, 20)), seed());
    assert_eq!(first, second);
    eprintln!(
        "PINNED {:?} {:?} {:?} {:?}",
        first.forecast.p50, first.forecast.p85, first.forecast.p95, first.breach_probability
    );
    // Pinned output: a change here means stored forecasts would no longer verify.
    assert_eq!(first.forecast.p50, Some(date(4, 20)));
    assert_eq!(first.forecast.p85, Some(date(4, 25)));
    assert_eq!(first.forecast.p95, Some(date(4, 28)));
    assert_eq!(first.breach_probability, Some(0.4142));
}

#[test]
fn due_date_already_past_always_breaches() {
    let outcome = monte_carlo_forecast(&half_and_half(), 1, date(4, 1), Some(date(3, 20)), seed());
    assert_eq!(outcome.breach_probability, Some(1.0));
}

#[test]
fn no_due_date_means_no_breach_probability() {
    let outcome = monte_carlo_forecast(&half_and_half(), 3, date(4, 1), None, seed());
    assert_eq!(outcome.breach_probability, None);
    assert!(outcome.forecast.p50.is_some());
}

#[test]
fn history_without_integrations_never_finishes() {
    let days = simulate_days_to_finish(&[0; 30], 1, seed(), 3);
    assert_eq!(days, [None, None, None]);
    assert_eq!(simulate_days_to_finish(&[], 1, seed(), 2), [None, None]);
}

#[test]
fn capped_trials_breach_and_have_no_date() {
    // 10 trials: 9 done on day 1, 1 never. p50 and p85 are day 1 (ranks 5 and ⌈8.5⌉ = 9
    // of 10); p95 (rank ⌈9.5⌉ = 10) never finishes → null. Breach (due 04-01, 1 day
    // allowed) = 1/10.
    let mut trials = vec![Some(1); 9];
    trials.push(None);
    let outcome = outcome_of_trials(trials, date(4, 1), Some(date(4, 1)));
    assert_eq!(outcome.forecast.p50, Some(date(4, 1)));
    assert_eq!(outcome.forecast.p85, Some(date(4, 1)));
    assert_eq!(outcome.forecast.p95, None);
    assert_eq!(outcome.breach_probability, Some(0.1));
}

#[test]
fn nearest_rank_percentiles() {
    // Sorted days 1..=10: p50 → rank 5 → 5; p85 → rank ⌈8.5⌉ = 9; p95 → rank 10.
    let days: Vec<Option<u32>> = (1..=10).map(Some).collect();
    assert_eq!(nearest_rank(&days, 50), Some(5));
    assert_eq!(nearest_rank(&days, 85), Some(9));
    assert_eq!(nearest_rank(&days, 95), Some(10));
    assert_eq!(nearest_rank(&[], 50), None);
}
