//! `GET /v1/openapi.json`: the OpenAPI 3 document of every route, generated from the
//! handlers' `#[utoipa::path]` annotations and the request and response types, so it cannot
//! drift from the code. The closed lists (metrics, granularities, dimensions, ranges, sort
//! fields) are built from the same constants the handlers validate against, and each
//! handler accepts exactly the query parameters its documented parameter struct declares.
//!
//! Documenting a new route: annotate its handler with `#[utoipa::path(...)]` and add the
//! handler to `paths(...)` below. The `openapi` integration test compares the routes the
//! app registers with this document and fails for a route that is missing here.

use std::sync::LazyLock;

use actix_web::{web, HttpResponse};
use flowmeter_shared::read_model::{DRILLDOWN_METRICS, TREND_DIMENSIONS, TREND_METRICS};
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, RefOr};
use utoipa::{Modify, OpenApi};

use crate::error::{ApiError, ErrorBody};
use crate::routes;
use crate::routes::metrics::{alerts, breakdown, drilldown, trends};
use crate::startup::resource;

/// The document's description of the API as a whole.
const DESCRIPTION: &str = "Flowmeter's delivery-flow metrics read model. Producers append \
events to `/v1/events`; the worker folds them into the read model that `/v1/metrics/*` serves. \
Every response carries `X-API-Version` and `X-Request-ID`; every successful `/v1` JSON body \
carries `\"version\": \"1.0\"`; errors use one envelope (`ErrorBody`). Metrics responses carry \
`freshness`, an `ETag` (send it back in `If-None-Match` for a 304) and `Cache-Control`.";

/// The OpenAPI document. Every route's handler is listed in `paths`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Flowmeter API", version = "1.0", description = DESCRIPTION,
         license(name = "Apache-2.0", identifier = "Apache-2.0")),
    paths(
        routes::health::get_health,
        routes::health::get_health_db,
        routes::health::get_health_all,
        routes::prometheus::get_metrics,
        routes::events::post_events,
        routes::integrations::post_github_delivery,
        routes::metrics::summary::get_summary,
        routes::metrics::trends::get_trends,
        routes::metrics::breakdown::get_breakdown,
        routes::metrics::drilldown::get_drilldown,
        routes::metrics::milestones::get_milestone_health,
        routes::metrics::actions::get_actions,
        routes::metrics::alerts::get_alerts,
        routes::metrics::alerts::acknowledge,
        get_openapi,
        routes::projects::list_projects,
        routes::projects::get_project,
        routes::session::get_session,
        routes::dashboard::get_index,
        routes::dashboard::get_asset,
    ),
    components(schemas(
        ErrorBody,
        flowmeter_shared::events::FieldError,
        TrendMetric,
        BreakdownMetric,
        DrilldownMetric,
        Granularity,
        TrendDimensions,
        BreakdownDimension,
        DoraMetric,
        DoraDimension,
        TimeRange,
        SortField,
        SortOrder,
        AlertSeverity,
        AlertState,
    )),
    modifiers(&Conventions),
    tags(
        (name = "metrics", description = "The read model for dashboards (key with the viewer role)."),
        (name = "ingest", description = "Appending events (key with the ingest role)."),
        (name = "integrations", description = "Webhooks of other systems, authenticated by their own signatures (no key): GitHub (docs/GITHUB.md)."),
        (name = "operations", description = "Health, Prometheus metrics and this document (no key)."),
        (name = "projects", description = "The projects a key may read (key with the viewer role)."),
        (name = "dashboard", description = "The built-in web dashboard at `/` and what it asks before its first request."),
    )
)]
pub struct ApiDoc;

/// A string parameter restricted to a closed list, as a named schema whose `enum` is the
/// list the handler validates against.
macro_rules! closed_list {
    ($(#[$meta:meta])* $name:ident, $values:expr, $description:literal) => {
        $(#[$meta])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some($description))
                    .enum_values(Some($values.iter().copied()))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

closed_list!(
    /// `metric` of `/v1/metrics/trends`.
    TrendMetric,
    TREND_METRICS,
    "A metric with trend points."
);
closed_list!(
    /// `metric` of `/v1/metrics/breakdown`.
    BreakdownMetric,
    breakdown::BREAKDOWN_METRICS,
    "A metric that can be broken down by a dimension."
);
closed_list!(
    /// `metric` of `/v1/metrics/drilldown`.
    DrilldownMetric,
    DRILLDOWN_METRICS,
    "A metric with per-task drill-down rows."
);
closed_list!(
    /// `granularity` of `/v1/metrics/trends`.
    Granularity,
    trends::GRANULARITIES,
    "Bucket size of trend points (weeks start on Monday, UTC)."
);
closed_list!(
    /// One name of the comma list `dimensions` of `/v1/metrics/trends`.
    TrendDimensions,
    TREND_DIMENSIONS,
    "A dimension trend points can be grouped by; `dimensions` is a comma-separated list of these."
);
closed_list!(
    /// `dimension` of `/v1/metrics/breakdown`.
    BreakdownDimension,
    breakdown::DIMENSIONS,
    "The dimension a breakdown groups by: phase, milestone, assignee, task_class or state for the task metrics; environment or service for the DORA metrics."
);
closed_list!(
    /// The DORA keys among the trend and breakdown metrics.
    DoraMetric,
    flowmeter_shared::metrics::dora::TREND_METRICS,
    "The DORA metrics of trends and breakdowns; a breakdown of one of these groups by a DoraDimension, the other metrics by the task dimensions."
);
closed_list!(
    /// The breakdown dimensions of the DORA metrics.
    DoraDimension,
    flowmeter_shared::metrics::dora_breakdown::DIMENSIONS,
    "The dimensions a DORA metric can be broken down by."
);
closed_list!(
    /// `time_range` of `/v1/metrics/breakdown`.
    TimeRange,
    breakdown::TIME_RANGES,
    "A range ending at the snapshot time."
);
closed_list!(
    /// `sort_by` of `/v1/metrics/drilldown`.
    SortField,
    drilldown::SORT_FIELDS,
    "The field drill-down items are sorted by."
);
closed_list!(
    /// `sort_order` of `/v1/metrics/drilldown`.
    SortOrder,
    drilldown::SORT_ORDERS,
    "Ascending or descending."
);

closed_list!(
    /// `severity` of `/v1/metrics/alerts`.
    AlertSeverity,
    alerts::SEVERITIES,
    "An alert severity."
);
closed_list!(
    /// `state` of `/v1/metrics/alerts`.
    AlertState,
    alerts::STATES,
    "An alert state."
);

/// The security scheme names used in `#[utoipa::path(security(...))]`.
pub mod schemes {
    /// `Authorization: Bearer <key>`.
    pub const BEARER: &str = "bearer";
    /// `X-API-Key: <key>`.
    pub const API_KEY: &str = "api_key";
}

/// What every operation shares, added in one place rather than on every handler: the
/// security schemes, the `X-API-Version`/`X-Request-ID` headers on every response, 401 and
/// 403 on operations that need a key, 429 on rate-limited ones (and on every keyed one, for
/// failed authentication) and 500 everywhere.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            schemes::BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key (`fm_…`) as a bearer token."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            schemes::API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key (`fm_…`); `Authorization` wins when both are sent.",
            ))),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let rate_limited = path.starts_with("/v1/metrics/") || path.starts_with("/v1/projects");
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_common_responses(operation, rate_limited);
            }
        }
    }
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::response::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "ErrorBody",
                ))))
                .build(),
        )
        .into()
}

fn add_common_responses(operation: &mut Operation, rate_limited: bool) {
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let responses = &mut operation.responses.responses;
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description));
    };
    if secured {
        add(
            "401",
            "`unauthorized`: the key is missing, unknown, revoked or expired (with `WWW-Authenticate: Bearer`).",
        );
        add(
            "403",
            "`forbidden`: the key lacks the role, or is limited to another project.",
        );
    }
    if rate_limited {
        add(
            "429",
            "`rate_limited`: over the per-key budget, or too many failed authentications from this address; `Retry-After` says when to retry.",
        );
    } else if secured {
        add(
            "429",
            "`rate_limited`: too many failed authentications from this address (`FLOWMETER_RATE_LIMIT_UNAUTHENTICATED`); `Retry-After` says when to retry.",
        );
    }
    add(
        "500",
        "`internal_error`: logged with its cause, never detailed.",
    );
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            response.headers.insert(
                "X-API-Version".to_owned(),
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some("Always `1.0`."))
                    .build(),
            );
            response.headers.insert(
                "X-Request-ID".to_owned(),
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some(
                        "The client's `X-Request-ID` when it is 1–128 characters of `[A-Za-z0-9-_.:]`, else a generated UUID.",
                    ))
                    .build(),
            );
        }
    }
}

/// The document as served, rendered once.
static DOCUMENT: LazyLock<Result<String, String>> =
    LazyLock::new(|| ApiDoc::openapi().to_json().map_err(|e| e.to_string()));

/// Mounts `/openapi.json` (inside `/v1`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/openapi.json").route(web::get().to(get_openapi)));
}

/// Serves the OpenAPI document (no key needed).
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 document of this API.", content_type = "application/json", body = Object))
)]
pub async fn get_openapi() -> Result<HttpResponse, ApiError> {
    let document = DOCUMENT
        .as_ref()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("rendering the OpenAPI document: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(document.as_str()))
}
