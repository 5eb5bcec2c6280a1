//! Strict query-string parsing: every parameter is known, given once and well-formed, or
//! the request is a 400 naming the field (and its allowed values where the list is closed).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use uuid::Uuid;

use crate::error::ApiError;

/// The parsed query string of one request.
#[derive(Debug)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Parses `query`, refusing unknown and repeated parameters.
    pub fn parse(query: &str, allowed: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|e| {
            ApiError::bad_field("query", format!("the query string is malformed: {e}"))
        })?;
        let mut values = BTreeMap::new();
        for (name, value) in pairs {
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::BadRequest {
                    message: format!("unknown parameter {name}"),
                    details: serde_json::json!({ "field": name, "allowed_values": allowed }),
                });
            }
            if values.insert(name.clone(), value).is_some() {
                return Err(ApiError::bad_field(
                    &name,
                    format!("{name} is given more than once"),
                ));
            }
        }
        Ok(Self { values })
    }

    /// A raw value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A required UUID.
    pub fn uuid(&self, name: &str) -> Result<Uuid, ApiError> {
        let raw = self
            .get(name)
            .ok_or_else(|| ApiError::bad_field(name, format!("{name} is required")))?;
        Uuid::parse_str(raw.trim())
            .map_err(|_| ApiError::bad_field(name, format!("{name} must be a UUID")))
    }

    /// An optional instant: an RFC 3339 date-time, or a date (its start, or with
    /// `end_of_day`, the start of the next day).
    pub fn instant(&self, name: &str, end_of_day: bool) -> Result<Option<DateTime<Utc>>, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        parse_instant(raw.trim(), end_of_day).map(Some).ok_or_else(|| {
            ApiError::bad_field(
                name,
                format!("{name} must be a date (2026-03-01) or an RFC 3339 date-time (2026-03-01T12:00:00Z)"),
            )
        })
    }
}

/// Parses a date or date-time; a date is its day's start (or the next day's, for an
/// inclusive end).
pub fn parse_instant(raw: &str, end_of_day: bool) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?;
    let day = if end_of_day { day.succ_opt()? } else { day };
    Some(Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        assert!(Params::parse("project_id=x&color=red", &["project_id"]).is_err());
        assert!(Params::parse("project_id=a&project_id=b", &["project_id"]).is_err());
        assert!(Params::parse("project_id=a", &["project_id"]).is_ok());
    }

    #[test]
    fn dates_and_date_times_parse_with_an_inclusive_end() {
        let start = parse_instant("2026-03-01", false).unwrap();
        let end = parse_instant("2026-03-01", true).unwrap();
        assert_eq!((end - start).num_hours(), 24);
        assert!(parse_instant("2026-02-30", false).is_none());
        assert!(parse_instant("yesterday", false).is_none());
        assert!(parse_instant("2026-03-01T10:00:00+02:00", false).is_some());
    }
}
