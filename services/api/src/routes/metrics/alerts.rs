//! `GET /v1/metrics/alerts` (filters and cursor pagination, newest first) and
//! `POST /v1/metrics/alerts/{id}/acknowledge` (planner or admin; idempotent).

use std::sync::LazyLock;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use flowmeter_shared::alerts::Severity;
use flowmeter_shared::auth::Role;
use flowmeter_shared::db::alerts::{self, Alert, AlertFilter, Cursor};
use flowmeter_shared::db::events;
use flowmeter_shared::db::read_path::SnapshotPart;
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::params::query_names;
use super::{body_tagged_json, metrics_request, one_of, require_feature, Freshness, ProjectQuery};
use crate::auth::{Credentials, Principal};
use crate::error::{ApiError, ErrorBody};
use crate::settings::Feature;
use crate::startup::AppState;

/// Query parameters of `GET /v1/metrics/alerts`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// The project.
    pub project_id: Uuid,
    /// Only alerts of this severity.
    #[param(value_type = Option<crate::openapi::AlertSeverity>)]
    pub severity: Option<String>,
    /// Only `firing` or only `resolved` alerts.
    #[param(value_type = Option<crate::openapi::AlertState>)]
    pub state: Option<String>,
    /// `true`: only alerts with an acknowledgement that has not lapsed; `false`: only the others.
    pub acknowledged: Option<bool>,
    /// Only alerts of this metric key (e.g. `DPI`, `ini_backlog`).
    pub metric_key: Option<String>,
    /// Items per page, 1–500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

static PARAMETERS: LazyLock<Vec<String>> = LazyLock::new(query_names::<AlertsQuery>);

/// The body of `GET /v1/metrics/alerts`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertsResponse {
    /// Always `1.0`.
    pub version: &'static str,
    /// The project.
    pub project_id: Uuid,
    /// Alerts, newest first (`created_at`, then id).
    pub items: Vec<Alert>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// How far the read model is behind the event log.
    pub freshness: Freshness,
}

/// The optional body of `POST /v1/metrics/alerts/{id}/acknowledge`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct AcknowledgeBody {
    /// Why (at most 1000 characters).
    pub reason: Option<String>,
    /// When the acknowledgement lapses, in minutes from now (1–525600).
    #[schema(minimum = 1, maximum = 525_600)]
    pub expires_in_minutes: Option<i64>,
}

/// The body of `POST /v1/metrics/alerts/{id}/acknowledge`: the alert.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcknowledgeResponse {
    /// Always `1.0`.
    pub version: &'static str,
    /// The alert, with its acknowledgement.
    #[serde(flatten)]
    pub alert: Alert,
}

/// Values of `severity`.
pub const SEVERITIES: [&str; 3] = ["warning", "critical", "emergency"];
/// Values of `state`.
pub const STATES: [&str; 2] = ["firing", "resolved"];
const BOOLEANS: [&str; 2] = ["true", "false"];
/// Longest acknowledgement reason.
const MAX_REASON_CHARS: usize = 1000;
/// Largest acknowledgement body (a reason of 1000 characters fits many times over).
const MAX_ACK_BODY_BYTES: usize = 256 * 1024;
/// Longest acknowledgement expiry (one year).
const MAX_EXPIRY_MINUTES: i64 = 525_600;

/// Lists a project's alerts.
#[utoipa::path(
    get,
    path = "/v1/metrics/alerts",
    tag = "metrics",
    params(AlertsQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of alerts.", body = AlertsResponse),
        (status = 304, description = "Not modified: `If-None-Match` names the current `ETag`."),
        (status = 400, description = "`bad_request`: a missing or malformed parameter (named in `details.field`).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such project.", body = ErrorBody),
        (status = 422, description = "`validation_error`: a value outside its closed list or range (`details.allowed_values`).", body = ErrorBody),
        (status = 503, description = "`service_unavailable`: the database is unavailable, or alerts are switched off.", body = ErrorBody),
    )
)]
pub async fn get_alerts(
    req: HttpRequest,
    credentials: Credentials,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_feature(&state, Feature::Alerts)?;
    let request =
        metrics_request(&req, &credentials, &state, &PARAMETERS, SnapshotPart::None).await?;
    let p = &request.params;
    let filter = AlertFilter {
        severity: match p.get("severity") {
            None => None,
            Some(_) => Severity::parse(one_of(p, "severity", &SEVERITIES, None)?),
        },
        state: match p.get("state") {
            None => None,
            Some(_) => Some(one_of(p, "state", &STATES, None)?.to_owned()),
        },
        acknowledged: match p.get("acknowledged") {
            None => None,
            Some(_) => Some(one_of(p, "acknowledged", &BOOLEANS, None)? == "true"),
        },
        metric_key: match p.get("metric_key").map(str::trim) {
            None => None,
            Some(key) if key.is_empty() || key.len() > 200 => {
                return Err(ApiError::bad_field(
                    "metric_key",
                    "metric_key must be 1–200 characters",
                ))
            }
            Some(key) => Some(key.to_owned()),
        },
    };
    let limit = p.integer("limit", 50, 1, 500)?;
    let cursor = p.get("cursor").map(parse_cursor).transpose()?;

    let client = state.read_pool.get().await?;
    let (head, snapshot) = (request.head, request.latest());
    let (items, more) = alerts::list(&client, request.project_id, &filter, cursor, limit).await?;
    let next_cursor = more
        .then(|| items.last().map(|a| format_cursor((a.created_at, a.id))))
        .flatten();
    let (freshness, _) = super::optional_freshness(snapshot.as_ref(), head);
    let body = AlertsResponse {
        version: flowmeter_shared::API_VERSION,
        project_id: request.project_id,
        items,
        next_cursor,
        freshness,
    };
    // Acknowledgements change alerts between snapshots, so the tag comes from the body.
    body_tagged_json(
        &req,
        &state,
        &format!("alerts?{}", req.query_string()),
        &body,
    )
}

/// `<created_at in µs>.<id>` of the last item of a page.
fn format_cursor((at, id): Cursor) -> String {
    format!("{}.{}", at.timestamp_micros(), id.simple())
}

fn parse_cursor(raw: &str) -> Result<Cursor, ApiError> {
    let bad = || {
        ApiError::bad_field(
            "cursor",
            "cursor is not a value this API returned as next_cursor",
        )
    };
    let (micros, id) = raw.trim().split_once('.').ok_or_else(bad)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or_else(bad)?;
    if !super::params::in_supported_years(at) {
        return Err(ApiError::invalid_field(
            "cursor",
            "cursor points outside the years 1–9999; pass a next_cursor this API returned",
            &[],
        ));
    }
    let id = Uuid::try_parse(id).map_err(|_| bad())?;
    Ok((at, id))
}

/// Acknowledges an alert (role `planner` or `admin`). Idempotent: an alert already
/// acknowledged (and not lapsed) is returned unchanged. Acknowledging does not resolve.
#[utoipa::path(
    post,
    path = "/v1/metrics/alerts/{id}/acknowledge",
    tag = "metrics",
    params(
        ("id" = Uuid, Path, description = "The alert."),
        ProjectQuery,
    ),
    request_body(content = Option<AcknowledgeBody>, description = "Optional: a reason and an expiry.", content_type = "application/json"),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The alert with its acknowledgement.", body = AcknowledgeResponse),
        (status = 400, description = "`bad_request`: a malformed id, parameter or body (named in `details.field`).", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid key.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the key lacks the planner role or the project.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such project, or no such alert in it.", body = ErrorBody),
        (status = 408, description = "`request_timeout`: the body did not arrive within `FLOWMETER_HTTP_BODY_TIMEOUT_MS`.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over 256 KiB (`details.max_bytes`).", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: a body that is not `application/json`, or a `Content-Encoding`.", body = ErrorBody),
        (status = 422, description = "`validation_error`: an unknown field, a NUL character or a value out of range.", body = ErrorBody),
        (status = 503, description = "`service_unavailable`: the database is unavailable, or alerts are switched off.", body = ErrorBody),
    )
)]
pub async fn acknowledge(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    require_feature(&state, Feature::Alerts)?;
    let params = super::params::Params::parse(req.query_string(), &super::PROJECT_PARAMETERS)?;
    let project_id = params.uuid("project_id")?;
    principal.require(Role::Planner, project_id)?;
    let alert_id = Uuid::try_parse(path.trim()).map_err(|_| {
        ApiError::bad_field("id", format!("alert id {:?} is not a UUID", path.as_str()))
    })?;
    let body = crate::routes::body::read(
        &req,
        payload,
        crate::routes::body::BodyRules {
            max_bytes: MAX_ACK_BODY_BYTES,
            timeout: state.settings.http_body_timeout,
            gzip: false,
        },
    )
    .await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        crate::routes::body::format(&req, false)?;
    }
    let (reason, expires_in_minutes) = parse_ack_body(&body)?;

    let alert = crate::deadline::bounded(&state, async {
        let client = state.pool.get().await?;
        if events::find_project(&client, project_id).await?.is_none() {
            return Err(ApiError::NotFound(format!("no project {project_id}")));
        }
        alerts::acknowledge(
            &client,
            project_id,
            alert_id,
            &principal.actor(),
            reason.as_deref(),
            expires_in_minutes,
        )
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no alert {alert_id} in project {project_id}")))
    })
    .await?;
    Ok(HttpResponse::Ok().json(AcknowledgeResponse {
        version: flowmeter_shared::API_VERSION,
        alert,
    }))
}

/// `{reason?, expires_in_minutes?}`; an empty body is no reason and no expiry.
fn parse_ack_body(body: &[u8]) -> Result<(Option<String>, Option<i64>), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((None, None));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_field("body", format!("the body is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::bad_field(
            "body",
            "the body must be a JSON object",
        ));
    };
    for key in map.keys() {
        if key != "reason" && key != "expires_in_minutes" {
            return Err(ApiError::invalid_field(
                key,
                format!("unknown field {key:?}"),
                &["reason", "expires_in_minutes"],
            ));
        }
    }
    let reason = match map.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.contains('\0') => {
            return Err(ApiError::invalid_field(
                "reason",
                "reason must not contain the NUL character (\\u0000)",
                &[],
            ))
        }
        Some(Value::String(text)) if text.chars().count() <= MAX_REASON_CHARS => Some(text.clone()),
        Some(Value::String(_)) => {
            return Err(ApiError::invalid_field(
                "reason",
                format!("reason is longer than {MAX_REASON_CHARS} characters"),
                &[],
            ))
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                "reason",
                "reason must be a string",
                &[],
            ))
        }
    };
    let expires = match map.get("expires_in_minutes") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_i64() {
            Some(m) if (1..=MAX_EXPIRY_MINUTES).contains(&m) => Some(m),
            _ => {
                return Err(ApiError::invalid_field(
                    "expires_in_minutes",
                    format!(
                    "expires_in_minutes must be a whole number of minutes, 1–{MAX_EXPIRY_MINUTES}"
                ),
                    &[],
                ))
            }
        },
    };
    Ok((reason, expires))
}
