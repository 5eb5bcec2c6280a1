//! `GET /v1/projects` and `GET /v1/projects/{id}`: the projects a key may read, for the
//! dashboard's project picker and for people looking for a project's id.
//!
//! `event_count` and `last_event_at` come from the per-project log head (`event_stream_head`:
//! sequence numbers are gapless and the log is append-only, so the head is the count) and one
//! primary-key lookup of the head event; `freshness` from the latest snapshot by its key. No
//! request counts or scans the event log (`tests/tests/it/query_plans.rs` checks the plan).

use std::sync::LazyLock;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use flowmeter_shared::auth::Role;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::metrics::params::{query_names, Params};
use super::metrics::{body_tagged_json, one_of, Freshness};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::startup::{resource, AppState};

/// Mounts both project routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/projects").route(web::get().to(list_projects)))
        .service(resource("/projects/{id}").route(web::get().to(get_project)));
}

/// A project's lifecycle status (the values `status` filters on).
pub const PROJECT_STATUSES: [&str; 3] = ["active", "paused", "archived"];

/// Query parameters of `GET /v1/projects`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectsQuery {
    /// Page size, 1–500 (default 100).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only projects with this status (`active`, `paused`, `archived`).
    pub status: Option<String>,
    /// Only projects whose name contains this text (case-insensitive), 1–200 characters.
    pub q: Option<String>,
}

static PARAMETERS: LazyLock<Vec<String>> = LazyLock::new(query_names::<ProjectsQuery>);

/// One project.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectItem {
    /// The project's id (the `project_id` of every metrics endpoint).
    pub id: Uuid,
    /// Its name (the id as text until a producer names it).
    pub name: String,
    /// `active`, `paused` or `archived`.
    pub status: String,
    /// When its row was created (its first event, or when it was registered).
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When its last event was appended (`recorded_at` of the log head); `null` without events.
    #[schema(required = true, format = DateTime)]
    pub last_event_at: Option<String>,
    /// Events in its log (the log head: sequence numbers are gapless).
    pub event_count: i64,
    /// How far its read model is behind its event log.
    pub freshness: Freshness,
}

/// The body of `GET /v1/projects`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProjectsResponse {
    /// Always `1.0`.
    pub version: String,
    /// One page of projects, ordered by name, then id.
    pub data: Vec<ProjectItem>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// The body of `GET /v1/projects/{id}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProjectResponse {
    /// Always `1.0`.
    pub version: String,
    /// The project.
    pub data: ProjectItem,
}

/// The projects' rows with their log head, head event and latest snapshot. `$1` limits to
/// one project (a scoped key, or the single-project route); `$2` status; `$3` a LIKE pattern
/// on the name; `$4`/`$5` the cursor's (name, id); `$6` the limit.
pub const PROJECTS_SQL: &str = "SELECT p.id, p.name, p.status, p.created_at,
       coalesce(h.last_seq, 0) AS event_count, e.recorded_at, s.captured_at, s.as_of_seq
  FROM project p
  LEFT JOIN event_stream_head h ON h.project_id = p.id
  LEFT JOIN LATERAL (SELECT l.recorded_at FROM event_log l
                      WHERE l.project_id = p.id AND l.seq = h.last_seq) e ON true
  LEFT JOIN LATERAL (SELECT m.captured_at, m.as_of_seq FROM metrics_summary m
                      WHERE m.project_id = p.id ORDER BY m.captured_at DESC LIMIT 1) s ON true
 WHERE ($1::uuid IS NULL OR p.id = $1)
   AND ($2::text IS NULL OR p.status = $2)
   AND ($3::text IS NULL OR p.name ILIKE $3 ESCAPE '\\')
   AND ($4::text IS NULL OR (p.name, p.id) > ($4, $5::uuid))
 ORDER BY p.name, p.id
 LIMIT $6";

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn item(row: &tokio_postgres::Row) -> ProjectItem {
    let head: i64 = row.get(4);
    let captured_at: Option<DateTime<Utc>> = row.get(6);
    let as_of_seq: i64 = row.get::<_, Option<i64>>(7).unwrap_or(0);
    ProjectItem {
        id: row.get(0),
        name: row.get(1),
        status: row.get(2),
        created_at: time(row.get(3)),
        last_event_at: row.get::<_, Option<DateTime<Utc>>>(5).map(time),
        event_count: head,
        freshness: Freshness {
            as_of_seq,
            log_head_seq: head,
            lag_events: (head - as_of_seq).max(0),
            captured_at: captured_at.map(time),
        },
    }
}

/// `q` as a case-insensitive LIKE pattern matching it anywhere, its wildcards escaped.
pub fn name_pattern(q: &str) -> String {
    let mut pattern = String::with_capacity(q.len() + 2);
    pattern.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The project a key is limited to (`None`: every project).
fn scope(principal: &Principal) -> Option<Uuid> {
    match principal {
        Principal::Key(key) => key.project_id,
        Principal::Anonymous => None,
    }
}

/// Lists the projects the key may read.
#[utoipa::path(
    get,
    path = "/v1/projects",
    tag = "projects",
    params(ProjectsQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of the projects the key may read (a key for one project lists only it).", body = ProjectsResponse),
        (status = 304, description = "Not modified: `If-None-Match` names the current `ETag`."),
        (status = 400, description = "`bad_request`: a malformed parameter (named in `details.field`).", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid key.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the key lacks the viewer role.", body = ErrorBody),
        (status = 422, description = "`validation_error`: a parameter out of range or not in its list (`details.allowed_values`).", body = ErrorBody),
        (status = 503, description = "`service_unavailable`: the database is unavailable.", body = ErrorBody),
    )
)]
pub async fn list_projects(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &PARAMETERS)?;
    principal.require_role(Role::Viewer)?;
    let limit = params.integer("limit", 100, 1, 500)?;
    let status = match params.get("status") {
        None => None,
        Some(_) => Some(one_of(&params, "status", &PROJECT_STATUSES, None)?),
    };
    let pattern = match params.get("q") {
        None => None,
        Some(q) if q.trim().is_empty() || q.chars().count() > 200 => {
            return Err(ApiError::bad_field("q", "q must be 1–200 characters"))
        }
        Some(q) => Some(name_pattern(q.trim())),
    };
    let client = state.read_pool.get().await?;
    let cursor = match params.get("cursor") {
        None => None,
        Some(raw) => Some(resolve_cursor(&client, raw).await?),
    };
    let (after_name, after_id) = cursor.unzip();
    let stmt = client.prepare_cached(PROJECTS_SQL).await?;
    let rows = client
        .query(
            &stmt,
            &[
                &scope(&principal),
                &status,
                &pattern,
                &after_name,
                &after_id,
                &(limit + 1),
            ],
        )
        .await?;
    let more = rows.len() as i64 > limit;
    let data: Vec<ProjectItem> = rows.iter().take(limit as usize).map(item).collect();
    let next_cursor = more
        .then(|| data.last().map(|p| p.id.simple().to_string()))
        .flatten();
    let body = ProjectsResponse {
        version: flowmeter_shared::API_VERSION.to_owned(),
        data,
        next_cursor,
    };
    // Counts and freshness change without any snapshot of their own: the tag is the body's.
    body_tagged_json(
        &req,
        &state,
        &format!("projects?{}", req.query_string()),
        &body,
    )
}

/// A cursor is the id of the last project of the previous page; its name is read back so
/// the next page starts after it in (name, id) order.
async fn resolve_cursor(
    client: &deadpool_postgres::Client,
    raw: &str,
) -> Result<(String, Uuid), ApiError> {
    let bad = || {
        ApiError::bad_field(
            "cursor",
            "cursor is not a value this API returned as next_cursor",
        )
    };
    let id = Uuid::try_parse(raw.trim()).map_err(|_| bad())?;
    let stmt = client
        .prepare_cached("SELECT name FROM project WHERE id = $1")
        .await?;
    let row = client.query_opt(&stmt, &[&id]).await?;
    let name: String = row
        .ok_or_else(|| {
            ApiError::invalid_field(
                "cursor",
                "cursor names a project that no longer exists",
                &[],
            )
        })?
        .get(0);
    Ok((name, id))
}

/// One project.
#[utoipa::path(
    get,
    path = "/v1/projects/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "The project.")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The project.", body = ProjectResponse),
        (status = 304, description = "Not modified: `If-None-Match` names the current `ETag`."),
        (status = 400, description = "`bad_request`: `id` is not a UUID, or a query parameter was given.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid key.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the key lacks the viewer role or is for another project (checked before existence).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such project.", body = ErrorBody),
        (status = 503, description = "`service_unavailable`: the database is unavailable.", body = ErrorBody),
    )
)]
pub async fn get_project(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Params::parse::<&str>(req.query_string(), &[])?;
    let raw = req.match_info().get("id").unwrap_or_default();
    if raw.contains('\0') {
        return Err(ApiError::invalid_field(
            "id",
            "id must not contain the NUL character (%00)",
            &[],
        ));
    }
    let id =
        Uuid::try_parse(raw.trim()).map_err(|_| ApiError::bad_field("id", "id must be a UUID"))?;
    principal.require(Role::Viewer, id)?;
    let client = state.read_pool.get().await?;
    let stmt = client.prepare_cached(PROJECTS_SQL).await?;
    let none: Option<String> = None;
    let rows = client
        .query(
            &stmt,
            &[&Some(id), &none, &none, &none, &None::<Uuid>, &1_i64],
        )
        .await?;
    let data = rows
        .first()
        .map(item)
        .ok_or_else(|| ApiError::NotFound(format!("no project {id}")))?;
    let body = ProjectResponse {
        version: flowmeter_shared::API_VERSION.to_owned(),
        data,
    };
    body_tagged_json(&req, &state, "project", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_pattern_matches_the_text_literally_anywhere() {
        assert_eq!(name_pattern("demo"), "%demo%");
        assert_eq!(name_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
