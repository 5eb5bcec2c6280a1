//! Small numeric helpers shared by every formula: percentiles, mean, population standard
//! deviation, clamping and the one rounding policy. Keeping them in one place means the fold,
//! `verify` and the API cannot disagree on, say, how a p90 is interpolated or how a score is
//! rounded.

/// Percentile with linear interpolation, exactly like PostgreSQL `percentile_cont`: the value
/// at position `1 + (n − 1)·p` of the sorted values (1-based), interpolating between the two
/// neighbours. `p` is clamped to [0, 1]. Empty input (or only NaN values) → `None`.
pub fn percentile_cont(values: &[f64], p: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let p = p.clamp(0.0, 1.0);
    // Zero-based position of `1 + (n − 1)·p`.
    let position = (sorted.len() - 1) as f64 * p;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    let fraction = position - lower as f64;
    Some(sorted[lower] + (sorted[upper] - sorted[lower]) * fraction)
}

/// Arithmetic mean; empty input → `None`.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        None
    } else {
        Some(values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// The sum of values kept to [`DURATION_DECIMALS`], computed exactly: each value in
/// hundredths (rounded half to even), added as integers, divided back once. A float sum
/// depends on the order of its terms; this one does not, so the sum of a set of drill-down
/// rows is the same however they are stored or scanned. [`VALUE_SUM_SQL`] is the same sum in
/// PostgreSQL (`round` of a float8 and the cast of the numeric total both round half to even).
///
/// [`VALUE_SUM_SQL`]: crate::db::read_model::VALUE_SUM_SQL
pub fn exact_sum(values: impl IntoIterator<Item = f64>) -> f64 {
    let hundredths: i128 = values
        .into_iter()
        .map(|v| (v * 100.0).round_ties_even() as i128)
        .sum();
    hundredths as f64 / 100.0
}

/// Population standard deviation (divides by n, not n − 1); empty input → `None`.
pub fn population_std_dev(values: &[f64]) -> Option<f64> {
    let mu = mean(values)?;
    let variance = values.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / values.len() as f64;
    Some(variance.sqrt())
}

/// Clamps a ratio to [0, 1] (`clamp` in SPEC §4). NaN becomes 0 so a broken input can never
/// leak into a payload as a non-number.
pub fn clamp_unit(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

/// `numerator / denominator`, or `None` when the denominator is 0.
pub fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    if denominator == 0.0 {
        None
    } else {
        Some(numerator / denominator)
    }
}

/// Decimals kept for 0–100 scores and `*_pct` shares (DPI, FES, IRS, health score, change_pct).
pub const SCORE_DECIMALS: i32 = 2;
/// Decimals kept for 0–1 ratios, rates, DPI components and probabilities.
pub const RATIO_DECIMALS: i32 = 4;
/// Decimals kept for durations in minutes or hours.
pub const DURATION_DECIMALS: i32 = 2;

/// The single rounding rule of every payload number: round half away from zero to
/// `decimals` places. Formulas always work on unrounded values and round only when a
/// number is placed into an output struct.
pub fn round_to(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    let rounded = (value * factor).round() / factor;
    // Normalise -0.0 so JSON never shows "-0.0".
    if rounded == 0.0 {
        0.0
    } else {
        rounded
    }
}

/// Rounds a 0–100 score or percentage share ([`SCORE_DECIMALS`]).
pub fn round_score(value: f64) -> f64 {
    round_to(value, SCORE_DECIMALS)
}

/// Rounds a 0–1 ratio, rate, component or probability ([`RATIO_DECIMALS`]).
pub fn round_ratio(value: f64) -> f64 {
    round_to(value, RATIO_DECIMALS)
}

/// Rounds a duration in minutes or hours ([`DURATION_DECIMALS`]).
pub fn round_duration(value: f64) -> f64 {
    round_to(value, DURATION_DECIMALS)
}

/// Percentage shares of `values` (non-negative) rounded to [`SCORE_DECIMALS`] so that they
/// add up to exactly 100 (largest-remainder method; ties go to the earlier value). All
/// zero or empty → all zeros.
pub fn round_shares_to_100(values: &[f64]) -> Vec<f64> {
    let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
    if total <= 0.0 {
        return vec![0.0; values.len()];
    }
    let unit = 10f64.powi(SCORE_DECIMALS);
    let target = (100.0 * unit).round() as i64;
    let exact: Vec<f64> = values
        .iter()
        .map(|v| v.max(0.0) / total * 100.0 * unit)
        .collect();
    let mut units: Vec<i64> = exact.iter().map(|e| e.floor() as i64).collect();
    let mut order: Vec<usize> = (0..values.len()).collect();
    // Stable sort keeps earlier values first among equal remainders.
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    let missing = (target - units.iter().sum::<i64>()).max(0) as usize;
    for &index in order.iter().take(missing) {
        units[index] += 1;
    }
    units.iter().map(|&u| u as f64 / unit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn exact_sum_does_not_depend_on_the_order_of_its_terms() {
        // As floats, 0.1 + 0.2 + 0.3 is 0.6000000000000001 and 0.3 + 0.2 + 0.1 is 0.6.
        assert_ne!(0.1 + 0.2 + 0.3, 0.3 + 0.2 + 0.1);
        assert_eq!(exact_sum([0.1, 0.2, 0.3]), 0.6);
        assert_eq!(exact_sum([0.3, 0.2, 0.1]), 0.6);
        assert_eq!(exact_sum([1234.56, -0.01, 0.0]), 1234.55);
        assert_eq!(exact_sum([]), 0.0);
    }

    #[test]
    fn percentile_of_empty_input_is_none() {
        assert_eq!(percentile_cont(&[], 0.5), None);
    }

    #[test]
    fn percentile_interpolates_like_percentile_cont() {
        // Sorted [10, 20, 30, 40]: p50 position 1 + 3·0.5 = 2.5 → 20 + 0.5·10 = 25;
        // p90 position 1 + 3·0.9 = 3.7 → 30 + 0.7·10 = 37; p95 → 3.85 → 38.5.
        let values = [40.0, 10.0, 30.0, 20.0];
        assert!(close(percentile_cont(&values, 0.5).unwrap(), 25.0));
        assert!(close(percentile_cont(&values, 0.9).unwrap(), 37.0));
        assert!(close(percentile_cont(&values, 0.95).unwrap(), 38.5));
        assert!(close(percentile_cont(&values, 0.0).unwrap(), 10.0));
        assert!(close(percentile_cont(&values, 1.0).unwrap(), 40.0));
    }

    #[test]
    fn percentile_of_single_value_is_that_value() {
        assert_eq!(percentile_cont(&[7.0], 0.95), Some(7.0));
    }

    #[test]
    fn mean_and_population_std_dev() {
        // [2, 4, 4, 4, 5, 5, 7, 9]: mean 5, squared deviations sum 32, /8 = 4, σ = 2.
        let values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&values), Some(5.0));
        assert_eq!(population_std_dev(&values), Some(2.0));
        assert_eq!(mean(&[]), None);
        assert_eq!(population_std_dev(&[]), None);
    }

    #[test]
    fn clamp_unit_bounds_values() {
        assert_eq!(clamp_unit(-0.2), 0.0);
        assert_eq!(clamp_unit(1.7), 1.0);
        assert_eq!(clamp_unit(0.61), 0.61);
        assert_eq!(clamp_unit(f64::NAN), 0.0);
    }

    #[test]
    fn ratio_with_zero_denominator_is_none() {
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(1.0, 4.0), Some(0.25));
    }

    #[test]
    fn shares_sum_to_exactly_100() {
        // Thirds: 3333.33… hundredths each, floors sum to 9999, one unit goes to the first.
        assert_eq!(round_shares_to_100(&[1.0, 1.0, 1.0]), [33.34, 33.33, 33.33]);
        // 1/6, 2/6, 3/6 → 16.6666, 33.3333, 50: the 0.66 remainder wins the spare unit.
        assert_eq!(round_shares_to_100(&[1.0, 2.0, 3.0]), [16.67, 33.33, 50.0]);
        assert_eq!(round_shares_to_100(&[0.0, 0.0]), [0.0, 0.0]);
        assert!(round_shares_to_100(&[]).is_empty());
    }

    #[test]
    fn rounding_policy() {
        assert_eq!(round_score(53.33333), 53.33);
        assert_eq!(round_score(60.1), 60.1);
        assert_eq!(round_ratio(0.5333333), 0.5333);
        assert_eq!(round_duration(2.125), 2.13);
        assert_eq!(round_to(-0.0001, 2), 0.0);
        assert!(round_to(-0.0001, 2).is_sign_positive());
    }
}
