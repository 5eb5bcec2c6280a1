//! `POST /v1/integrations/github?project_id=P`: GitHub webhook deliveries. GitHub cannot
//! send an API key, so the delivery authenticates itself: `X-Hub-Signature-256` must be the
//! HMAC-SHA256 of the body under the project's secret (`flowmeter-api integrations github
//! set-secret`). Mapped deliveries are validated and stored like `POST /v1/events`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::body;
use super::events::{append_events, validate_batch};
use crate::error::{ApiError, ErrorBody};
use crate::integrations::github::{map_delivery, Mapped};
use crate::integrations::secrets::Sealed;
use crate::integrations::signature_matches;
use crate::observability::GithubDeliveryLabels;
use crate::startup::{resource, AppState};

/// Mounts the integration routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/integrations/github").route(web::post().to(post_github_delivery)));
}

/// The body of a delivery's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct GithubDeliveryResponse {
    /// Always `1.0`.
    pub version: &'static str,
    /// The project.
    pub project_id: Uuid,
    /// `X-GitHub-Delivery`.
    pub delivery_id: String,
    /// `X-GitHub-Event`.
    pub event_kind: String,
    /// True when the delivery maps to no event (202).
    pub ignored: bool,
    /// Why it was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Events stored.
    pub accepted: u64,
    /// Events already stored (a redelivery).
    pub duplicates: u64,
    /// The types of the events the delivery maps to, in order.
    pub event_types: Vec<String>,
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A required header: 1–128 visible ASCII characters, else 400 naming it.
fn required_header(req: &HttpRequest, name: &str) -> Result<String, ApiError> {
    match header(req, name).map(str::trim) {
        Some(v) if !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(v.to_owned())
        }
        _ => Err(ApiError::bad_field(
            name,
            format!("{name} is required (1-128 visible characters), as GitHub sends it"),
        )),
    }
}

fn count(state: &AppState, result: &'static str) {
    state
        .metrics
        .github_deliveries
        .get_or_create(&GithubDeliveryLabels { result })
        .inc();
}

/// Takes one GitHub webhook delivery for a project.
#[utoipa::path(
    post,
    path = "/v1/integrations/github",
    tag = "integrations",
    params(
        ("project_id" = Uuid, Query, description = "The project whose secret signs the deliveries."),
        ("X-Hub-Signature-256" = String, Header, description = "`sha256=` and the hex HMAC-SHA256 of the body under the project's webhook secret."),
        ("X-GitHub-Event" = String, Header, description = "The delivery's event kind (`pull_request`, `push`, …)."),
        ("X-GitHub-Delivery" = String, Header, description = "The delivery's id; a redelivery with the same id stores nothing new."),
    ),
    request_body(description = "The webhook payload as GitHub sends it (content type `application/json`).", content_type = "application/json"),
    responses(
        (status = 200, description = "The delivery's events are stored (or were already).", body = GithubDeliveryResponse),
        (status = 202, description = "The event kind or action maps to nothing; counted in `flowmeter_github_deliveries_total{result=\"ignored\"}`.", body = GithubDeliveryResponse),
        (status = 400, description = "`bad_request`: a missing or malformed `project_id`, `X-GitHub-Event` or `X-GitHub-Delivery`, or a body that is not JSON.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no secret is set for the project, or the signature is missing or wrong; nothing is stored.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: over `FLOWMETER_INGEST_MAX_BYTES`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the webhook is not set to `application/json`.", body = ErrorBody),
        (status = 422, description = "`validation_error`: the payload lacks a field the mapping needs (`details.field`), or a mapped event is invalid.", body = ErrorBody),
        (status = 503, description = "`service_unavailable`: the database is unavailable, ingest is switched off, or FLOWMETER_SECRET_KEY is not set or cannot open the stored secret.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(kind = tracing::field::Empty, delivery = tracing::field::Empty))]
pub async fn post_github_delivery(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    crate::routes::metrics::require_feature(&state, crate::settings::Feature::Ingest)?;
    let params = super::metrics::params::Params::parse(req.query_string(), &["project_id"])?;
    let project = params.uuid("project_id")?;
    body::format(&req, false)?;
    let rules = body::BodyRules {
        max_bytes: state.settings.ingest_max_bytes,
        timeout: state.settings.http_body_timeout,
        gzip: false,
    };
    let raw = body::read(&req, payload, rules).await?;

    let stored = crate::deadline::bounded(&state, async {
        let client = state.pool.get().await?;
        Ok(flowmeter_shared::db::integrations::github_secret(&client, project).await?)
    })
    .await?;
    let Some((nonce, ciphertext)) = stored else {
        count(&state, "unauthorized");
        return Err(ApiError::Unauthorized(format!(
            "no GitHub webhook secret is set for project {project} (flowmeter-api integrations github set-secret)"
        )));
    };
    let key = state.settings.secret_key.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "FLOWMETER_SECRET_KEY is not set; webhook secrets cannot be read".into(),
        )
    })?;
    let secret = key.open(project, &Sealed { nonce, ciphertext }).ok_or_else(|| {
        ApiError::Unavailable(
            "the project's webhook secret does not open with FLOWMETER_SECRET_KEY; set it again".into(),
        )
    })?;
    if !signature_matches(&secret, &raw, header(&req, "x-hub-signature-256")) {
        count(&state, "unauthorized");
        return Err(ApiError::Unauthorized(
            "X-Hub-Signature-256 is missing or is not the body's HMAC-SHA256 under the project's secret".into(),
        ));
    }

    let kind = required_header(&req, "X-GitHub-Event")?;
    let delivery = required_header(&req, "X-GitHub-Delivery")?;
    tracing::Span::current().record("kind", kind.as_str());
    tracing::Span::current().record("delivery", delivery.as_str());
    let body: serde_json::Value = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::bad_field("body", format!("the body is not valid JSON: {e}")))?;
    let mut answer = GithubDeliveryResponse {
        version: flowmeter_shared::API_VERSION,
        project_id: project,
        delivery_id: delivery.clone(),
        event_kind: kind.clone(),
        ignored: false,
        reason: None,
        accepted: 0,
        duplicates: 0,
        event_types: Vec::new(),
    };
    let events = match map_delivery(project, &kind, &delivery, &body) {
        Err(missing) => {
            return Err(ApiError::Validation {
                message: format!(
                    "the {kind} delivery lacks {}, which Flowmeter maps",
                    missing.field
                ),
                details: serde_json::json!({ "field": missing.field }),
            })
        }
        Ok(Mapped::Ignored(reason)) => {
            count(&state, "ignored");
            answer.ignored = true;
            answer.reason = Some(reason);
            return Ok(HttpResponse::Accepted().json(answer));
        }
        Ok(Mapped::Events(events)) => events,
    };
    let texts = vec![None; events.len()];
    let events = validate_batch(&state, &events, texts)?;
    answer.event_types = events
        .iter()
        .map(|e| e.event_type.as_str().to_owned())
        .collect();
    let projects = append_events(&state, &events).await?;
    answer.accepted = projects.iter().map(|p| p.accepted).sum();
    answer.duplicates = projects.iter().map(|p| p.duplicates).sum();
    count(&state, "stored");
    Ok(HttpResponse::Ok().json(answer))
}
