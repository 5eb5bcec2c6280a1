//! `POST /v1/events`: all-or-nothing, idempotent ingest of a JSON array or NDJSON.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use flowmeter_shared::auth::Role;
use flowmeter_shared::db::events::{self as event_repo, ProjectAppend};
use flowmeter_shared::events::{validate_event, NewEvent};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

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

/// Reads the body up to the configured limit; a larger body is a 413 before it is all read.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let too_large = || ApiError::PayloadTooLarge {
        message: format!("the request body is larger than {limit} bytes"),
        details: json!({ "max_bytes": limit }),
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_field("body", format!("reading the body failed: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn is_ndjson(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|v| v == "application/x-ndjson" || v == "application/ndjson")
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
        description = "A JSON array of events, or one event per line with `Content-Type: application/x-ndjson`. All or nothing: one invalid event refuses the batch.",
        content(
            (Vec<EventInput> = "application/json"),
            (EventInput = "application/x-ndjson"),
        ),
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Every event is stored or was already stored.", body = IngestResponse),
        (status = 400, description = "`bad_request`: the body is not valid JSON or NDJSON.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body or the batch is over its limit (`details.max_bytes`, `details.max_events`).", body = ErrorBody),
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
    let body = read_body(&req, payload, settings.ingest_max_bytes).await?;
    let raw = parse_batch(&body, is_ndjson(&req))?;
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

    let mut events: Vec<NewEvent> = Vec::with_capacity(raw.len());
    let mut errors = Vec::new();
    let mut invalid_events = 0;
    let now = chrono::Utc::now();
    for (index, value) in raw.iter().enumerate() {
        match validate_event(index, value).and_then(|event| {
            settings
                .event_time_bounds
                .check(index, event.occurred_at, now)
                .map(|()| event)
                .map_err(|error| vec![error])
        }) {
            Ok(event) => events.push(event),
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
    for event in &events {
        principal.require_project(event.project_id)?;
    }

    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let projects = event_repo::append(&tx, &events).await?;
    for project in projects.iter().filter(|p| p.accepted > 0) {
        event_repo::notify_appended(&tx, project.project_id).await?;
    }
    tx.commit().await?;

    let accepted: u64 = projects.iter().map(|p| p.accepted).sum();
    let duplicates: u64 = projects.iter().map(|p| p.duplicates).sum();
    for (result, count) in [("accepted", accepted), ("duplicate", duplicates)] {
        state
            .metrics
            .ingest_events
            .get_or_create(&IngestLabels { result })
            .inc_by(count);
    }
    Ok(HttpResponse::Ok().json(IngestResponse {
        version: flowmeter_shared::API_VERSION,
        accepted,
        duplicates,
        projects,
    }))
}
