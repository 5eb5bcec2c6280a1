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
pub mod rendered;
pub mod series;
pub mod summary;
pub mod trends;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::SecondsFormat;
use flowmeter_shared::auth::Role;
use flowmeter_shared::db::{read_model, read_path};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Credentials;
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

/// A metrics request after its common checks: a viewer of an existing project, with what
/// every route reads (log head, latest snapshot), all from one statement.
pub struct MetricsRequest {
    /// The project.
    pub project_id: Uuid,
    /// Every parameter.
    pub params: Params,
    /// The project's log head.
    pub head: i64,
    /// The latest snapshot (with the asked part), if any.
    pub snapshot: Option<read_path::SnapshotMeta>,
}

impl MetricsRequest {
    /// The latest snapshot as the routes' freshness and identities use it.
    pub fn latest(&self) -> Option<read_model::Snapshot> {
        self.snapshot.as_ref().map(|s| read_model::Snapshot {
            captured_at: s.captured_at,
            as_of_seq: s.as_of_seq,
            payload: serde_json::Value::Null,
            health: serde_json::Value::Null,
        })
    }

    /// The latest snapshot, or 404 when the project has not been folded yet.
    pub fn snapshot(&self) -> Result<read_model::Snapshot, ApiError> {
        self.latest().ok_or_else(|| {
            ApiError::NotFound(format!(
                "project {} has not been folded yet; its first snapshot appears once the worker has run",
                self.project_id
            ))
        })
    }

    /// The snapshot part asked for (`null` when the snapshot lacks it or there is none).
    pub fn part(&self) -> Option<serde_json::Value> {
        self.snapshot.as_ref().and_then(|s| s.part.clone())
    }
}

/// Parses the query, then reads the presented key, the project, its log head and latest
/// snapshot (with `part`) in one statement (as the summary does); checks the key, the rate
/// limit, the role and the key's scope (before existence, so a key cannot probe other
/// projects), and answers 404 when the project does not exist.
pub async fn metrics_request(
    req: &HttpRequest,
    credentials: &Credentials,
    state: &AppState,
    allowed: &[impl AsRef<str> + Serialize],
    part: read_path::SnapshotPart,
) -> Result<MetricsRequest, ApiError> {
    let params = Params::parse(req.query_string(), allowed)?;
    let project_id = params.uuid("project_id")?;
    let context = crate::deadline::bounded(state, async {
        let client = state.read_pool.get().await?;
        Ok(read_path::context(&client, project_id, part, credentials.key_hash()).await?)
    })
    .await?;
    // The connection is back in the pool before the key check, which may take a primary one.
    let verified =
        crate::deadline::bounded(state, credentials.verify(&state.pool, context.key)).await;
    let principal = crate::failed_auth::observe(req, verified)?;
    crate::rate_limit::admit(req, &principal)?;
    principal.require(Role::Viewer, project_id)?;
    if !context.project_exists {
        return Err(ApiError::NotFound(format!("no project {project_id}")));
    }
    Ok(MetricsRequest {
        project_id,
        params,
        head: context.head,
        snapshot: context.snapshot,
    })
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

/// A JSON response whose `ETag` is taken from the body itself (with `route`, the route and
/// its query), for answers that change without a snapshot of their own (alerts, projects):
/// the body is serialized once, for the tag and to send.
pub fn body_tagged_json(
    req: &HttpRequest,
    state: &AppState,
    route: &str,
    body: &impl Serialize,
) -> Result<HttpResponse, ApiError> {
    use sha2::{Digest, Sha256};
    let text = serde_json::to_vec(body).map_err(anyhow::Error::from)?;
    let digest = Sha256::new()
        .chain_update(route.as_bytes())
        .chain_update(b"|")
        .chain_update(&text)
        .finalize();
    let tag = format!("\"{}\"", hex::encode(&digest[..16]));
    let (mut response, not_modified) = validated_response(req, state, &tag);
    Ok(if not_modified {
        response.finish()
    } else {
        response.content_type("application/json").body(text)
    })
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
