//! Per-request context: the request id (echoed or generated), the `X-API-Version` and
//! `X-Request-ID` headers on every response, the query-string bound, the request log
//! line and the HTTP metrics. It wraps the whole app, so errors raised anywhere inside
//! (extractors, handlers, the default service) are rendered with the request's id, and
//! refusals made outside our handlers (CORS, actix's own plain-text errors, the database
//! deadline) are rendered in the envelope too (SPEC §14).

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, ResponseError};
use flowmeter_shared::API_VERSION;

use crate::error::ApiError;
use crate::observability::{RequestLabels, RouteLabels};
use crate::startup::AppState;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The longest query string the app accepts (SPEC §5: 8 KiB).
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// The id of the request being served, for error envelopes and logs.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The request id, also stored in request extensions for handlers.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn incoming_request_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get("x-request-id")?.to_str().ok()?;
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| value.to_owned())
}

/// The middleware. See the module documentation.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let request_id = incoming_request_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let query_too_long = req.query_string().len() > MAX_QUERY_BYTES;

    if let Some(state) = &state {
        state.metrics.in_flight.inc();
    }
    // Handler and extractor errors are rendered inside the handler's future, so they see
    // the request id through the task-local. Middlewares that refuse (CORS, the database
    // deadline) fail the inner service instead; their answer is rendered here, in the same
    // scope, and handed back as an error that carries the finished response (the request
    // itself cannot be kept: routing needs it unshared).
    let outcome = REQUEST_ID
        .scope(request_id.clone(), async move {
            if query_too_long {
                let error = ApiError::BadRequest {
                    message: format!("the query string is longer than {MAX_QUERY_BYTES} bytes"),
                    details: serde_json::json!({ "field": "query", "max_bytes": MAX_QUERY_BYTES }),
                };
                return Answer::Served(req.error_response(error));
            }
            // Refusals made outside our handlers (CORS, actix's extractors and limits) are
            // rendered in the envelope too.
            match next.call(req).await {
                Ok(response) => Answer::Served(in_envelope(response.map_into_boxed_body())),
                Err(error) => Answer::Refused(foreign_response(&error)),
            }
        })
        .await;
    let mut answer = outcome;
    let headers = match &mut answer {
        Answer::Served(response) => response.headers_mut(),
        Answer::Refused(response) => response.headers_mut(),
    };
    headers.insert(
        HeaderName::from_static("x-api-version"),
        HeaderValue::from_static(API_VERSION),
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(HeaderName::from_static("x-request-id"), value);
    }

    let status = match &answer {
        Answer::Served(response) => response.status(),
        Answer::Refused(response) => response.status(),
    }
    .as_u16();
    let elapsed = started.elapsed();
    if let Some(state) = &state {
        state.metrics.in_flight.dec();
        state
            .metrics
            .requests
            .get_or_create(&RequestLabels {
                method: method.clone(),
                route: route.clone(),
                status,
            })
            .inc();
        state
            .metrics
            .duration
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
    }
    tracing::info!(
        request_id = %request_id,
        method = %method,
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "Request served."
    );
    match answer {
        Answer::Served(response) => Ok(response),
        Answer::Refused(response) => {
            Err(actix_web::error::InternalError::from_response("refused", response).into())
        }
    }
}

/// What the inner service produced: a response, or a refusal by a middleware rendered here.
enum Answer {
    Served(ServiceResponse<BoxBody>),
    Refused(actix_web::HttpResponse),
}

/// The envelope for an error a middleware (or actix) failed the request with. One that
/// already renders our envelope (the database deadline's 503) is kept as it is.
fn foreign_response(error: &Error) -> actix_web::HttpResponse {
    let response = error.error_response();
    if is_envelope(response.headers()) && error.as_error::<actix_cors::CorsError>().is_none() {
        return response;
    }
    foreign_error(error).error_response()
}

fn is_envelope(headers: &actix_web::http::header::HeaderMap) -> bool {
    headers
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Our error for an error raised by a middleware or actix itself: a refused CORS request
/// is 403 `forbidden`; anything else keeps its status.
fn foreign_error(error: &Error) -> ApiError {
    if error.as_error::<actix_cors::CorsError>().is_some() {
        return ApiError::Forbidden(format!("CORS: {error}"));
    }
    ApiError::Status {
        status: error.as_response_error().status_code(),
        message: error.to_string(),
    }
}

/// An error response that is not already our JSON envelope (actix's own plain-text
/// answers, such as its body-size limit) is rendered again in the envelope, same status.
fn in_envelope(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_envelope(response.headers()) {
        return response;
    }
    let error = match response.response().error() {
        Some(error) => foreign_error(error),
        None => ApiError::Status {
            status,
            message: status.canonical_reason().unwrap_or("error").to_owned(),
        },
    };
    let (request, _) = response.into_parts();
    ServiceResponse::new(request, error.error_response())
}

/// Answers paths that match no route.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such route".into()))
}

/// Answers known paths called with a method they do not support.
pub async fn method_not_allowed() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}
