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

/// What a request presents, before any database lookup: handlers that fetch the key in
/// the same statement as their data (the summary) extract this instead of [`Principal`]
/// and call [`Credentials::verify`] on what the statement found.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Authentication is disabled: acts as admin everywhere.
    Anonymous,
    /// A key was presented; its SHA-256 hash is what the database stores.
    Key {
        /// `hash_key` of the presented secret.
        hash: String,
    },
}

impl Credentials {
    /// The hash to look the key up by, if any.
    pub fn key_hash(&self) -> Option<&str> {
        match self {
            Credentials::Anonymous => None,
            Credentials::Key { hash } => Some(hash),
        }
    }

    /// Checks the key found for these credentials: 401 when unknown, revoked or expired.
    /// Records the use (at most once a minute per key).
    pub async fn verify(
        &self,
        primary: &deadpool_postgres::Pool,
        found: Option<ApiKey>,
    ) -> Result<Principal, ApiError> {
        if let Credentials::Anonymous = self {
            return Ok(Principal::Anonymous);
        }
        let key = found.ok_or_else(|| ApiError::Unauthorized("unknown API key".into()))?;
        if key.status != "active" {
            return Err(ApiError::Unauthorized("this API key was revoked".into()));
        }
        let now = chrono::Utc::now();
        if !key.is_usable(now) {
            return Err(ApiError::Unauthorized("this API key has expired".into()));
        }
        if key
            .last_used_at
            .is_none_or(|t| now - t > chrono::Duration::minutes(1))
        {
            // A write: always on the primary, even when the key was read from a replica.
            let client = primary.get().await?;
            api_keys::touch(&client, key.id).await?;
        }
        Ok(Principal::Key(key))
    }
}

fn credentials(req: &HttpRequest) -> Result<(web::Data<AppState>, Credentials), ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("application state is not configured"))
        })?;
    if state.settings.auth_disabled {
        return Ok((state, Credentials::Anonymous));
    }
    // An address over its failed-authentication budget is refused before any lookup.
    crate::failed_auth::check(req)?;
    let Some(secret) = presented_key(req).filter(|k| !k.is_empty()) else {
        return crate::failed_auth::observe(
            req,
            Err(ApiError::Unauthorized(
                "an API key is required: send Authorization: Bearer <key> or X-API-Key".into(),
            )),
        );
    };
    let hash = flowmeter_shared::auth::hash_key(&secret);
    Ok((state, Credentials::Key { hash }))
}

impl FromRequest for Credentials {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(credentials(req).map(|(_, credentials)| credentials))
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let found = credentials(req);
        let req = req.clone();
        Box::pin(async move {
            let (state, credentials) = found?;
            let principal = match credentials.key_hash() {
                None => Principal::Anonymous,
                Some(hash) => {
                    let verified = crate::deadline::bounded(&state, async {
                        // The lookup's connection goes back to the pool before the check,
                        // which may take one to record the key's use: a request never
                        // holds two.
                        let key = {
                            let client = state.pool.get().await?;
                            api_keys::find_by_hash(&client, hash).await?
                        };
                        credentials.verify(&state.pool, key).await
                    })
                    .await;
                    crate::failed_auth::observe(&req, verified)?
                }
            };
            crate::rate_limit::admit(&req, &principal)?;
            Ok(principal)
        })
    }
}
