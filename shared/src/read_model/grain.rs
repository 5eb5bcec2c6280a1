//! Time grains of trend points and their bucket arithmetic, in UTC. Weeks start on Monday.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// A trend grain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grain {
    /// One hour.
    Hour,
    /// One UTC day.
    Day,
    /// Monday 00:00 UTC to the next Monday.
    Week,
    /// A calendar month.
    Month,
}

impl Grain {
    /// Every grain, finest first.
    pub const ALL: [Grain; 4] = [Grain::Hour, Grain::Day, Grain::Week, Grain::Month];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Hour => "hour",
            Grain::Day => "day",
            Grain::Week => "week",
            Grain::Month => "month",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Grain> {
        Grain::ALL.into_iter().find(|g| g.as_str() == text)
    }

    /// The start of the bucket containing `t`.
    pub fn bucket(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let day = t.date_naive();
        match self {
            Grain::Hour => midnight(day) + Duration::hours(i64::from(t.hour())),
            Grain::Day => midnight(day),
            Grain::Week => {
                midnight(day) - Duration::days(i64::from(day.weekday().num_days_from_monday()))
            }
            Grain::Month => midnight(day.with_day(1).unwrap_or(day)),
        }
    }

    /// The start of the bucket after the one starting at `start`.
    pub fn next(self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Grain::Hour => start + Duration::hours(1),
            Grain::Day => start + Duration::days(1),
            Grain::Week => start + Duration::days(7),
            Grain::Month => {
                let d = start.date_naive();
                let (year, month) = if d.month() == 12 {
                    (d.year() + 1, 1)
                } else {
                    (d.year(), d.month() + 1)
                };
                NaiveDate::from_ymd_opt(year, month, 1).map_or(start + Duration::days(31), midnight)
            }
        }
    }

    /// Midnight (UTC) starting `day`.
    pub fn bucket_of_day(self, day: NaiveDate) -> DateTime<Utc> {
        self.bucket(midnight(day))
    }

    /// Whether per-dimension points are kept at this grain (day and coarser).
    pub fn has_dimensions(self) -> bool {
        self != Grain::Hour
    }
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn buckets_truncate_in_utc_and_weeks_start_on_monday() {
        let at = t("2026-03-04T17:45:10Z"); // a Wednesday
        assert_eq!(Grain::Hour.bucket(at), t("2026-03-04T17:00:00Z"));
        assert_eq!(Grain::Day.bucket(at), t("2026-03-04T00:00:00Z"));
        assert_eq!(Grain::Week.bucket(at), t("2026-03-02T00:00:00Z"));
        assert_eq!(Grain::Month.bucket(at), t("2026-03-01T00:00:00Z"));
        assert_eq!(
            Grain::Week.bucket(t("2026-03-02T00:00:00Z")),
            t("2026-03-02T00:00:00Z")
        );
        assert_eq!(
            Grain::Week.bucket(t("2026-03-01T23:59:59Z")),
            t("2026-02-23T00:00:00Z")
        );
    }

    #[test]
    fn next_bucket_rolls_months_and_years() {
        assert_eq!(
            Grain::Month.next(t("2026-12-01T00:00:00Z")),
            t("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            Grain::Month.next(t("2026-01-01T00:00:00Z")),
            t("2026-02-01T00:00:00Z")
        );
        assert_eq!(
            Grain::Week.next(t("2026-03-02T00:00:00Z")),
            t("2026-03-09T00:00:00Z")
        );
    }
}
