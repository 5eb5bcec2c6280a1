//! Bounds on an event's `occurred_at` (SPEC §13): a time before the earliest accepted
//! instant or too far after the server's clock is refused at ingest, so one mistyped year
//! can never make the fold walk centuries of empty buckets.

use chrono::{DateTime, Duration, SecondsFormat, Utc};

use super::FieldError;
use crate::config::{ConfigError, Env};

/// The earliest accepted `occurred_at` unless `FLOWMETER_EARLIEST_EVENT_TIME` says otherwise.
pub const DEFAULT_EARLIEST_EVENT_TIME: &str = "2000-01-01T00:00:00Z";

/// How far after the server's clock an `occurred_at` may lie, in seconds, unless
/// `FLOWMETER_MAX_FUTURE_SECONDS` says otherwise (clocks of producers drift; a day is generous).
pub const DEFAULT_MAX_FUTURE_SECONDS: u64 = 86_400;

/// The accepted range of `occurred_at`, relative to the clock at the time of ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    /// The earliest accepted instant (inclusive).
    pub earliest: DateTime<Utc>,
    /// How far after `now` an event may lie.
    pub max_future: Duration,
}

impl Default for TimeBounds {
    fn default() -> Self {
        Self {
            earliest: DateTime::parse_from_rfc3339(DEFAULT_EARLIEST_EVENT_TIME)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            max_future: Duration::seconds(DEFAULT_MAX_FUTURE_SECONDS as i64),
        }
    }
}

impl TimeBounds {
    /// From `FLOWMETER_EARLIEST_EVENT_TIME` (RFC 3339) and `FLOWMETER_MAX_FUTURE_SECONDS`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mut bounds = Self::default();
        if let Some(raw) = env.raw("FLOWMETER_EARLIEST_EVENT_TIME") {
            bounds.earliest = DateTime::parse_from_rfc3339(raw.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| ConfigError::Invalid {
                    name: "FLOWMETER_EARLIEST_EVENT_TIME",
                    value: raw.to_owned(),
                    message: format!("must be an RFC 3339 timestamp: {e}"),
                })?;
        }
        let seconds = env.int_in_range(
            "FLOWMETER_MAX_FUTURE_SECONDS",
            DEFAULT_MAX_FUTURE_SECONDS,
            0,
            10 * 366 * 86_400,
        )?;
        bounds.max_future = Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX));
        Ok(bounds)
    }

    /// The latest accepted instant when the clock reads `now`.
    pub fn latest(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.max_future
    }

    /// Refuses an `occurred_at` outside the bounds, naming the field and both bounds.
    pub fn check(
        &self,
        index: usize,
        occurred_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), FieldError> {
        let latest = self.latest(now);
        if occurred_at >= self.earliest && occurred_at <= latest {
            return Ok(());
        }
        let show = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        Err(FieldError {
            index,
            field: "occurred_at".into(),
            code: "out_of_range",
            message: format!(
                "occurred_at {} is outside the accepted range {} to {} \
                 (FLOWMETER_EARLIEST_EVENT_TIME, and now + FLOWMETER_MAX_FUTURE_SECONDS)",
                show(occurred_at),
                show(self.earliest),
                show(latest)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn bounds_are_inclusive_and_name_the_field() {
        let bounds = TimeBounds::default();
        let now = t("2026-12-01T12:00:00Z");
        assert!(bounds.check(0, t("2000-01-01T00:00:00Z"), now).is_ok());
        assert!(bounds.check(0, t("2026-12-02T12:00:00Z"), now).is_ok());
        let early = bounds.check(3, t("1999-12-31T23:59:59Z"), now).unwrap_err();
        assert_eq!((early.index, early.field.as_str()), (3, "occurred_at"));
        assert_eq!(early.code, "out_of_range");
        assert!(
            early.message.contains("2000-01-01T00:00:00Z"),
            "{}",
            early.message
        );
        assert!(bounds.check(0, t("2026-12-02T12:00:01Z"), now).is_err());
        assert!(bounds.check(0, t("9999-12-31T00:00:00Z"), now).is_err());
        assert!(bounds.check(0, t("0001-01-01T00:00:00Z"), now).is_err());
    }

    #[test]
    fn settings_are_read_and_checked() {
        let env = Env::from_pairs([
            ("FLOWMETER_EARLIEST_EVENT_TIME", "2020-06-01T00:00:00Z"),
            ("FLOWMETER_MAX_FUTURE_SECONDS", "60"),
        ]);
        let bounds = TimeBounds::from_env(&env).unwrap();
        assert_eq!(bounds.earliest, t("2020-06-01T00:00:00Z"));
        assert_eq!(bounds.max_future, Duration::seconds(60));
        let bad = Env::from_pairs([("FLOWMETER_EARLIEST_EVENT_TIME", "last year")]);
        assert!(TimeBounds::from_env(&bad)
            .unwrap_err()
            .to_string()
            .contains("FLOWMETER_EARLIEST_EVENT_TIME"));
    }
}
