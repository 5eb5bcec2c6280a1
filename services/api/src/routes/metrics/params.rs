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
    pub fn parse<S: AsRef<str> + serde::Serialize>(
        query: &str,
        allowed: &[S],
    ) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|e| {
            ApiError::bad_field("query", format!("the query string is malformed: {e}"))
        })?;
        let mut values = BTreeMap::new();
        for (name, value) in pairs {
            // PostgreSQL cannot store or compare NUL; no parameter may carry one.
            if name.contains('\0') || value.contains('\0') {
                let field = name.replace('\0', "\\u0000");
                return Err(ApiError::invalid_field(
                    &field,
                    format!("{field} must not contain the NUL character (%00)"),
                    &[],
                ));
            }
            if !allowed.iter().any(|a| a.as_ref() == name) {
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
        let instant = parse_instant(raw.trim(), end_of_day).ok_or_else(|| {
            ApiError::bad_field(
                name,
                format!("{name} must be a date (2026-03-01) or an RFC 3339 date-time (2026-03-01T12:00:00Z)"),
            )
        })?;
        if !in_supported_years(instant) {
            return Err(ApiError::invalid_field(
                name,
                format!("{name} must lie between the years 1 and 9999"),
                &[],
            ));
        }
        Ok(Some(instant))
    }
}

impl Params {
    /// An optional integer in `min..=max`: 400 when it is not an integer, 422 when it is out
    /// of range.
    pub fn integer(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let value: i64 = raw
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_field(name, format!("{name} must be an integer")))?;
        if !(min..=max).contains(&value) {
            return Err(ApiError::invalid_field(
                name,
                format!("{name} must be between {min} and {max}"),
                &[],
            ));
        }
        Ok(value)
    }

    /// An optional JSON object of filters: each key one of `allowed`, each value a string or
    /// an array of strings. 400 for malformed JSON, 422 for an unknown key or a bad value.
    pub fn filters(
        &self,
        name: &str,
        allowed: &[&str],
    ) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
        let Some(raw) = self.get(name).map(str::trim).filter(|r| !r.is_empty()) else {
            return Ok(BTreeMap::new());
        };
        let value: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_field(name, format!("{name} is not valid JSON: {e}")))?;
        let object = value.as_object().ok_or_else(|| {
            ApiError::invalid_field(
                name,
                format!("{name} must be a JSON object such as {{\"assignee\": \"ana\"}}"),
                &[],
            )
        })?;
        let mut filters = BTreeMap::new();
        for (key, value) in object {
            if !allowed.contains(&key.as_str()) {
                return Err(ApiError::invalid_field(
                    name,
                    format!("unknown filter {key:?}"),
                    allowed,
                ));
            }
            let values: Option<Vec<String>> = match value {
                serde_json::Value::String(s) => Some(vec![s.clone()]),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                _ => None,
            };
            if key.contains('\0') || values.iter().flatten().any(|v| v.contains('\0')) {
                return Err(ApiError::invalid_field(
                    name,
                    format!("filter {:?} must not contain the NUL character", key),
                    &[],
                ));
            }
            let values = values.filter(|v| !v.is_empty()).ok_or_else(|| {
                ApiError::invalid_field(
                    name,
                    format!("filter {key:?} must be a string or a non-empty array of strings"),
                    &[],
                )
            })?;
            filters.insert(key.clone(), values);
        }
        Ok(filters)
    }
}

/// The query parameters a documented parameter struct declares, in declaration order: the
/// handler accepts exactly what `/v1/openapi.json` lists.
pub fn query_names<P: utoipa::IntoParams>() -> Vec<String> {
    P::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query))
        .into_iter()
        .map(|p| p.name)
        .collect()
}

/// Whether an instant lies in the years 1–9999, which PostgreSQL, RFC 3339 and the read
/// model all represent (SPEC §14).
pub fn in_supported_years(instant: DateTime<Utc>) -> bool {
    (1..=9999).contains(&chrono::Datelike::year(&instant))
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

    #[test]
    fn nul_and_years_outside_1_to_9999_are_422_naming_the_field() {
        for (query, field) in [
            ("timestamp=-5000-01-01", "timestamp"),
            ("timestamp=%2B10000-01-01", "timestamp"),
            ("timestamp=0000-12-31T23:00:00Z", "timestamp"),
            ("timestamp=2026-01-01%00", "timestamp"),
        ] {
            let params = Params::parse(query, &["timestamp"]);
            let error = match params {
                Err(e) => e,
                Ok(p) => p.instant("timestamp", false).unwrap_err(),
            };
            match error {
                ApiError::Validation { details, .. } => {
                    assert_eq!(details["field"], field, "{query}")
                }
                other => panic!("{query}: {other:?}"),
            }
        }
        let params =
            Params::parse("filters=%7B%22a%22%3A%22x%5Cu0000%22%7D", &["filters"]).unwrap();
        assert!(matches!(
            params.filters("filters", &["a"]),
            Err(ApiError::Validation { .. })
        ));
    }
}
