//! `GET /v1/session`: what the dashboard needs before its first metrics request — whether
//! the server asks for a key at all and, for the key presented, its roles and project. No
//! key is needed to ask; a key that is presented must be valid.

use actix_web::{FromRequest, HttpRequest, HttpResponse};
use flowmeter_shared::auth::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::metrics::params::Params;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};

/// The body of `GET /v1/session`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionResponse {
    /// Always `1.0`.
    pub version: String,
    /// Whether requests need a key (`false` when `FLOWMETER_AUTH_DISABLED` is set: every
    /// request then acts as admin).
    pub auth_required: bool,
    /// Whether this request presented a valid key (always `true` when no key is required).
    pub authenticated: bool,
    /// The roles this request acts with (`viewer`, `planner`, `ingest`, `admin`); empty
    /// without a key.
    pub roles: Vec<String>,
    /// The one project the key is limited to; `null` for every project (`*`) or no key.
    #[schema(required = true)]
    pub project_id: Option<Uuid>,
}

fn presents_key(req: &HttpRequest) -> bool {
    ["authorization", "x-api-key"]
        .iter()
        .any(|h| req.headers().contains_key(*h))
}

/// Says whether a key is needed and what the presented one may do.
#[utoipa::path(
    get,
    path = "/v1/session",
    tag = "dashboard",
    security((), ("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Whether a key is required and, for a presented key, its roles and project.", body = SessionResponse),
        (status = 400, description = "`bad_request`: a query parameter was given.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: the presented key is unknown, revoked or expired.", body = ErrorBody),
    )
)]
pub async fn get_session(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Params::parse::<&str>(req.query_string(), &[])?;
    let auth_required = req
        .app_data::<actix_web::web::Data<crate::startup::AppState>>()
        .is_none_or(|state| !state.settings.auth_disabled);
    let principal = if auth_required && !presents_key(&req) {
        None
    } else {
        Some(Principal::extract(&req).await?)
    };
    let (roles, project_id) = match &principal {
        None => (Vec::new(), None),
        Some(Principal::Anonymous) => (vec![Role::Admin.to_string()], None),
        Some(Principal::Key(key)) => (
            key.roles.iter().map(ToString::to_string).collect(),
            key.project_id,
        ),
    };
    Ok(HttpResponse::Ok().json(SessionResponse {
        version: flowmeter_shared::API_VERSION.to_owned(),
        auth_required,
        authenticated: principal.is_some(),
        roles,
        project_id,
    }))
}
