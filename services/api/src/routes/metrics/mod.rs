//! `/v1/metrics/*`: the read model for the web dashboard. Every response carries
//! `freshness`, an `ETag` (from the snapshot's identity and the log head, so a changed body
//! always has a new tag; `If-None-Match` answers 304) and `Cache-Control`.

pub mod actions;
pub mod alerts;
pub mod breakdown;
pub mod dora_breakdown;
pub mod drilldown;
pub mod milestones;
pub mod params;
pub mod series;
pub mod summary;
pub mod trends;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use flowmeter_shared::auth::Role;
use flowmeter_shared::db::{events, read_model};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::settings::Feature;
use crate::startup::{resource, AppState};
use params::Params;

/// Mounts every metrics route. Each handler carries `#[utoipa::path]` and is listed in
/// `openapi::ApiDoc`; its query parameters are the names of its documented `IntoParams`
/// struct (`params::query_names`), so the document and the handler cannot disagree.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/metrics/summary").route(web::get().to(summary::get_summary)))
        .service(resource("/metrics/health").route(web::get().to(milestones::get_milestone_health)))
        .service(resource("/metrics/actions").route(web::get().to(actions::get_actions)))
        .service(resource("/metrics/trends").route(web::get().to(trends::get_trends)))
        .service(resource("/metrics/drilldown").route(web::get().to(drilldown::get_drilldown)))
        .service(resource("/metrics/breakdown").route(web::get().to(breakdown::get_breakdown)))
        .service(resource("/metrics/alerts").route(web::get().to(alerts::get_alerts)))
        .service(
            resource("/metrics/alerts/{id}/acknowledge").route(web::post().to(alerts::acknowledge)),
        );
}

/// Query parameters of the metrics endpoints that take nothing but the project.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectQuery {
    /// The project.
    pub project_id: Uuid,
}

/// The names of [`ProjectQuery`].
pub static PROJECT_PARAMETERS: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(params::query_names::<ProjectQuery>);

/// Answers 503 when a feature is switched off.
pub fn require_feature(state: &AppState, feature: Feature) -> Result<(), ApiError> {
    if state.settings.disabled_features.contains(&feature) {
        return Err(ApiError::Unavailable(format!(
            "{} disabled",
            feature.as_str()
        )));
    }
    Ok(())
}

/// A parameter from a closed list: 400 when required and missing, 422 with the allowed
/// values when unknown.
pub fn one_of<'a>(
    params: &Params,
    name: &str,
    allowed: &[&'a str],
    default: Option<&'a str>,
) -> Result<&'a str, ApiError> {
    match params.get(name).map(str::trim) {
        None | Some("") => {
            default.ok_or_else(|| ApiError::bad_field(name, format!("{name} is required")))
        }
        Some(value) => allowed
            .iter()
            .copied()
            .find(|a| *a == value)
            .ok_or_else(|| {
                ApiError::invalid_field(name, format!("unknown {name} {value:?}"), allowed)
            }),
    }
}

/// A metrics request after its common checks: a viewer of an existing project.
pub struct MetricsRequest {
    /// The project.
    pub project_id: Uuid,
    /// Every parameter.
    pub params: Params,
}

/// Parses the query, checks the role and the key's scope (before existence, so a key
/// cannot probe other projects) and that the project exists.
pub async fn metrics_request(
    req: &HttpRequest,
    principal: &Principal,
    state: &AppState,
    allowed: &[impl AsRef<str> + Serialize],
) -> Result<MetricsRequest, ApiError> {
    let params = Params::parse(req.query_string(), allowed)?;
    let project_id = params.uuid("project_id")?;
    principal.require(Role::Viewer, project_id)?;
    let client = state.read_pool.get().await?;
    if events::find_project(&client, project_id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no project {project_id}")));
    }
    Ok(MetricsRequest { project_id, params })
}

/// The latest snapshot (or the latest at or before `at`) with the log head, or 404.
pub async fn load_snapshot(
    state: &AppState,
    project_id: Uuid,
    at: Option<DateTime<Utc>>,
) -> Result<(read_model::Snapshot, i64), ApiError> {
    let client = state.read_pool.get().await?;
    let snapshot = read_model::snapshot(&client, project_id, at).await?.ok_or_else(|| match at {
        Some(at) => ApiError::NotFound(format!(
            "project {project_id} has no snapshot at or before {}",
            at.to_rfc3339_opts(SecondsFormat::Secs, true)
        )),
        None => ApiError::NotFound(format!(
            "project {project_id} has not been folded yet; its first snapshot appears once the worker has run"
        )),
    })?;
    let head = events::head_seq(&client, project_id).await?;
    Ok((snapshot, head))
}

/// `freshness` of every metrics response: how far the read model is behind the event log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Freshness {
    /// The last event folded into the read model.
    pub as_of_seq: i64,
    /// The project's last appended event.
    pub log_head_seq: i64,
    /// `log_head_seq − as_of_seq` (never negative).
    pub lag_events: i64,
    /// When the snapshot was taken (RFC 3339, UTC, microseconds); `null` when the project
    /// has not been folded yet.
    #[schema(required = true, format = DateTime)]
    pub captured_at: Option<String>,
}

/// The freshness of a response built from `snapshot`.
pub fn freshness(snapshot: &read_model::Snapshot, head: i64) -> Freshness {
    optional_freshness(Some(snapshot), head).0
}

/// Freshness for responses that do not need a snapshot to exist (trends, drill-downs): the
/// freshness object and the part of the ETag identity that changes with it.
pub fn optional_freshness(
    snapshot: Option<&read_model::Snapshot>,
    head: i64,
) -> (Freshness, String) {
    let as_of_seq = snapshot.map_or(0, |s| s.as_of_seq);
    let captured_at = snapshot.map(|s| s.captured_at.to_rfc3339_opts(SecondsFormat::Micros, true));
    let identity = format!(
        "{as_of_seq}|{head}|{}",
        captured_at.as_deref().unwrap_or("-")
    );
    let freshness = Freshness {
        as_of_seq,
        log_head_seq: head,
        lag_events: (head - as_of_seq).max(0),
        captured_at,
    };
    (freshness, identity)
}

/// The strong ETag of a response identity.
pub fn etag(identity: &str) -> String {
    format!(
        "\"{}\"",
        flowmeter_shared::auth::hash_key(identity)
            .get(..32)
            .unwrap_or_default()
    )
}

/// A response builder carrying the validators, and whether it is a 304 (the client's
/// `If-None-Match` already names this version) rather than a 200.
pub fn validated_response(
    req: &HttpRequest,
    state: &AppState,
    etag: &str,
) -> (actix_web::HttpResponseBuilder, bool) {
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let mut response = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag.to_owned()))
        .insert_header((
            header::CACHE_CONTROL,
            format!("private, max-age={}", state.settings.cache_max_age_seconds),
        ));
    (response, matches)
}

/// A JSON response with its validators: 304 when the client already has this version.
pub fn cached_json(
    req: &HttpRequest,
    state: &AppState,
    identity: &str,
    body: &impl Serialize,
) -> HttpResponse {
    let (mut response, not_modified) = validated_response(req, state, &etag(identity));
    if not_modified {
        response.finish()
    } else {
        response.json(body)
    }
}

/// The identity of a response built from a snapshot: route, parameters, snapshot and log head.
pub fn snapshot_identity(
    route: &str,
    req: &HttpRequest,
    snapshot: &read_model::Snapshot,
    head: i64,
) -> String {
    format!(
        "{route}?{}|{}|{}|{head}",
        req.query_string(),
        snapshot.captured_at.timestamp_micros(),
        snapshot.as_of_seq
    )
}
