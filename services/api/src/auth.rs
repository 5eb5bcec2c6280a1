//! Who is calling: the `Principal` extractor resolves the request's API key (Bearer or
//! `X-API-Key`) and handlers ask it for a role and a project. Scope is checked before
//! existence, so a key cannot probe other projects.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};
use flowmeter_shared::auth::Role;
use flowmeter_shared::db::api_keys::{self, ApiKey};
use uuid::Uuid;

use crate::error::ApiError;
use crate::startup::AppState;

/// The caller of a request.
#[derive(Debug, Clone)]
pub enum Principal {
    /// Authentication is disabled (`FLOWMETER_AUTH_DISABLED`): acts as admin everywhere.
    Anonymous,
    /// A valid, active, unexpired key.
    Key(ApiKey),
}

impl Principal {
    /// Requires a role; 403 when no role of the key grants it.
    pub fn require_role(&self, needed: Role) -> Result<(), ApiError> {
        match self {
            Principal::Anonymous => Ok(()),
            Principal::Key(key) if key.has_role(needed) => Ok(()),
            Principal::Key(_) => Err(ApiError::Forbidden(format!(
                "this key lacks the {needed} role"
            ))),
        }
    }

    /// Requires access to a project; 403 when the key is limited to another project.
    pub fn require_project(&self, project_id: Uuid) -> Result<(), ApiError> {
        match self {
            Principal::Key(key) if !key.covers(project_id) => Err(ApiError::Forbidden(
                "this key is not valid for that project".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Requires both a role and a project.
    pub fn require(&self, needed: Role, project_id: Uuid) -> Result<(), ApiError> {
        self.require_role(needed)?;
        self.require_project(project_id)
    }

    /// A stable identity for rate limiting and audit (`key:<id>`), if any.
    pub fn key_id(&self) -> Option<Uuid> {
        match self {
            Principal::Key(key) => Some(key.id),
            Principal::Anonymous => None,
        }
    }

    /// Who acted, for audit fields such as `acknowledged_by`.
    pub fn actor(&self) -> String {
        match self {
            Principal::Key(key) => format!("key:{} ({})", key.key_prefix, key.name),
            Principal::Anonymous => "anonymous".into(),
        }
    }
}

fn presented_key(req: &HttpRequest) -> Option<String> {
    if let Some(value) = req.headers().get("authorization") {
        let text = value.to_str().ok()?.trim();
        let (scheme, token) = text.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    req.headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let presented = presented_key(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("application state is not configured"))
            })?;
            if state.settings.auth_disabled {
                return Ok(Principal::Anonymous);
            }
            let Some(secret) = presented.filter(|k| !k.is_empty()) else {
                return Err(ApiError::Unauthorized(
                    "an API key is required: send Authorization: Bearer <key> or X-API-Key".into(),
                ));
            };
            let client = state.pool.get().await?;
            let key = api_keys::find_by_secret(&client, &secret)
                .await?
                .ok_or_else(|| ApiError::Unauthorized("unknown API key".into()))?;
            if key.status != "active" {
                return Err(ApiError::Unauthorized("this API key was revoked".into()));
            }
            if !key.is_usable(chrono::Utc::now()) {
                return Err(ApiError::Unauthorized("this API key has expired".into()));
            }
            let needs_touch = key
                .last_used_at
                .is_none_or(|t| chrono::Utc::now() - t > chrono::Duration::minutes(1));
            if needs_touch {
                api_keys::touch(&client, key.id).await?;
            }
            Ok(Principal::Key(key))
        })
    }
}
