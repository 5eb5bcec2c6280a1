//! `POST /v1/events`: all-or-nothing, idempotent ingest of a JSON array or NDJSON.

use actix_web::{web, HttpRequest, HttpResponse};
use flowmeter_shared::auth::Role;
use flowmeter_shared::db::events::{self as event_repo, ProjectAppend};
use flowmeter_shared::events::{validate_event, NewEvent};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::body;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::event_schemas::EventInput;
use crate::observability::IngestLabels;
use crate::startup::{resource, AppState};

/// Mounts the ingest route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/events").route(web::post().to(post_events)));
}

/// The body of `POST /v1/events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResponse {
    /// Always `1.0`.
    pub version: &'static str,
    /// Events stored.
    pub accepted: u64,
    /// Events skipped because their `(project_id, event_id)` was already stored.
    pub duplicates: u64,
    /// The outcome per project.
    pub projects: Vec<ProjectAppend>,
}

/// The payload of one event as the producer wrote it (the rest is ignored here).
#[derive(serde::Deserialize)]
struct RawPayload<'a> {
    #[serde(borrow, default)]
    payload: Option<&'a serde_json::value::RawValue>,
}

/// The payload texts of a batch, by event, exactly as sent: what is stored, so numbers keep
/// every digit (the parsed values hold them as `f64`). `None` where the event is not an
/// object with one payload (validation refuses those anyway).
fn payload_texts(body: &str, ndjson: bool) -> Vec<Option<String>> {
    let text_of = |raw: RawPayload<'_>| raw.payload.map(|p| p.get().to_owned());
    if ndjson {
        return body
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).ok().and_then(text_of))
            .collect();
    }
    match serde_json::from_str::<Vec<&serde_json::value::RawValue>>(body) {
        Ok(items) => items
            .into_iter()
            .map(|item| serde_json::from_str(item.get()).ok().and_then(text_of))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Parses the body into raw event values without interpreting them yet.
fn parse_batch(body: &[u8], ndjson: bool) -> Result<Vec<Value>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_field("body", "the request body is not valid UTF-8"))?;
    if ndjson {
        return text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(n, line)| {
                serde_json::from_str(line).map_err(|e| ApiError::BadRequest {
                    message: format!("line {} is not valid JSON: {e}", n + 1),
                    details: json!({ "field": "body", "line": n + 1 }),
                })
            })
            .collect();
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(_) => Err(ApiError::bad_field(
            "body",
            "the body must be a JSON array of events (or NDJSON with Content-Type: application/x-ndjson)",
        )),
        Err(e) => Err(ApiError::BadRequest {
            message: format!("the body is not valid JSON: {e}"),
            details: json!({ "field": "body", "line": e.line(), "column": e.column() }),
        }),
    }
}

/// Appends a batch of events (role `ingest`).
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "ingest",
    request_body(
        description = "A JSON array of events, or one event per line with `Content-Type: application/x-ndjson`; optionally `Content-Encoding: gzip`. All or nothing: one invalid event refuses the batch. Payload numbers are stored exactly as sent.",
        content(
            (Vec<EventInput> = "application/json"),
            (EventInput = "application/x-ndjson"),
        ),
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Every event is stored or was already stored.", body = IngestResponse),
        (status = 400, description = "`bad_request`: the body is not valid JSON or NDJSON.", body = ErrorBody),
        (status = 408, description = "`request_timeout`: the body did not arrive within `FLOWMETER_HTTP_BODY_TIMEOUT_MS`.", body = ErrorBody),
        (status = 409, description = "`conflict`: an event reuses a stored event_id (or one earlier in the batch) with different content; `details.conflicts` lists each as `{index, event_id}`, nothing was stored.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body (after gzip decompression) or the batch is over its limit (`details.max_bytes`, `details.max_events`).", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: a `Content-Type` other than `application/json` or `application/x-ndjson`, or a `Content-Encoding` other than `gzip`.", body = ErrorBody),
        (status = 422, description = "`validation_error`: invalid events; `details.errors` lists every invalid field of every invalid event as a `FieldError`, nothing was stored.", body = ErrorBody),
        (status = 503, description = "`service_unavailable`: the database is unavailable, or ingest is switched off.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(events = tracing::field::Empty))]
pub async fn post_events(
    req: HttpRequest,
    payload: web::Payload,
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    crate::routes::metrics::require_feature(&state, crate::settings::Feature::Ingest)?;
    principal.require_role(Role::Ingest)?;
    let settings = &state.settings;
    let ndjson = body::format(&req, true)? == body::BodyFormat::Ndjson;
    let rules = body::BodyRules {
        max_bytes: settings.ingest_max_bytes,
        timeout: settings.http_body_timeout,
        gzip: true,
    };
    let body = body::read(&req, payload, rules).await?;
    let raw = parse_batch(&body, ndjson)?;
    tracing::Span::current().record("events", raw.len());
    if raw.len() > settings.ingest_max_events {
        return Err(ApiError::PayloadTooLarge {
            message: format!(
                "the batch has {} events; at most {} are accepted per request",
                raw.len(),
                settings.ingest_max_events
            ),
            details: json!({ "max_events": settings.ingest_max_events, "events": raw.len() }),
        });
    }

    // parse_batch succeeded, so the body is UTF-8.
    let texts = payload_texts(std::str::from_utf8(&body).unwrap_or_default(), ndjson);
    let events = validate_batch(&state, &raw, texts)?;
    for event in &events {
        principal.require_project(event.project_id)?;
    }
    let projects = append_events(&state, &events).await?;
    let accepted: u64 = projects.iter().map(|p| p.accepted).sum();
    let duplicates: u64 = projects.iter().map(|p| p.duplicates).sum();
    Ok(HttpResponse::Ok().json(IngestResponse {
        version: flowmeter_shared::API_VERSION,
        accepted,
        duplicates,
        projects,
    }))
}

/// Validates a batch against the catalogue and the event-time bounds: every event, or a
/// 422 listing every invalid field of every invalid event (counted as rejected). `texts`
/// are the payloads as sent, by event.
pub(crate) fn validate_batch(
    state: &AppState,
    raw: &[Value],
    texts: Vec<Option<String>>,
) -> Result<Vec<NewEvent>, ApiError> {
    let mut events: Vec<NewEvent> = Vec::with_capacity(raw.len());
    let mut errors = Vec::new();
    let mut invalid_events = 0;
    let mut texts = texts.into_iter();
    let now = chrono::Utc::now();
    for (index, value) in raw.iter().enumerate() {
        let text = texts.next().flatten();
        match validate_event(index, value).and_then(|event| {
            state
                .settings
                .event_time_bounds
                .check(index, event.occurred_at, now)
                .map(|()| event)
                .map_err(|error| vec![error])
        }) {
            Ok(event) => events.push(NewEvent {
                payload_text: text,
                ..event
            }),
            Err(event_errors) => {
                invalid_events += 1;
                errors.extend(event_errors);
            }
        }
    }
    if !errors.is_empty() {
        state
            .metrics
            .ingest_events
            .get_or_create(&IngestLabels { result: "rejected" })
            .inc_by(raw.len() as u64);
        return Err(ApiError::Validation {
            message: format!(
                "{invalid_events} of {} events are invalid; nothing was stored",
                raw.len()
            ),
            details: json!({ "errors": errors }),
        });
    }
    Ok(events)
}

/// Appends validated events in one transaction, wakes the workers of the projects that got
/// new events and counts the accepted and duplicate events.
pub(crate) async fn append_events(
    state: &AppState,
    events: &[NewEvent],
) -> Result<Vec<ProjectAppend>, ApiError> {
    let projects = crate::deadline::bounded(state, async {
        let mut client = state.pool.get().await?;
        let tx = client.transaction().await?;
        let projects = event_repo::append(&tx, events).await?;
        for project in projects.iter().filter(|p| p.accepted > 0) {
            event_repo::notify_appended(&tx, project.project_id).await?;
        }
        tx.commit().await?;
        Ok(projects)
    })
    .await?;
    let accepted: u64 = projects.iter().map(|p| p.accepted).sum();
    let duplicates: u64 = projects.iter().map(|p| p.duplicates).sum();
    for (result, count) in [("accepted", accepted), ("duplicate", duplicates)] {
        state
            .metrics
            .ingest_events
            .get_or_create(&IngestLabels { result })
            .inc_by(count);
    }
    Ok(projects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_texts_keep_every_digit_in_arrays_and_ndjson() {
        let array =
            r#"[{"payload": {"n": 12345678901234567890123}, "x": 1}, 7, {"payload": null}]"#;
        assert_eq!(
            payload_texts(array, false),
            vec![
                Some(r#"{"n": 12345678901234567890123}"#.to_owned()),
                None,
                None
            ]
        );
        let ndjson = "{\"payload\":{\"r\":0.1000000000000000055511151231257827}}\n\n{\"a\":1}\n";
        assert_eq!(
            payload_texts(ndjson, true),
            vec![
                Some(r#"{"r":0.1000000000000000055511151231257827}"#.to_owned()),
                None
            ]
        );
        // One text per event of parse_batch, in the same order.
        assert_eq!(parse_batch(ndjson.as_bytes(), true).unwrap().len(), 2);
    }
}
