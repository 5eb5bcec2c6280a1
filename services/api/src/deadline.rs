//! A database that stops answering costs a request at most `FLOWMETER_DB_TIMEOUT_MS`
//! (SPEC §14). Requests without a body are bounded as a whole by [`bound_requests`]; routes
//! that read a body (whose arrival has its own timeout) bound their database work with
//! [`bounded`]. Either way the answer is a 503 in the envelope.
//!
//! Dropping a database future mid-query is safe with tokio-postgres: the connection task
//! discards the late answer, and an unfinished transaction is rolled back when dropped.

use std::future::Future;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error, ResponseError};

use crate::error::ApiError;
use crate::startup::AppState;

fn timed_out(state: &AppState) -> ApiError {
    ApiError::Unavailable(format!(
        "the database did not answer within {} ms; retry shortly",
        state.settings.database.timeout.as_millis()
    ))
}

/// Runs `work` (a handler's database part) under the database timeout.
pub async fn bounded<T>(
    state: &AppState,
    work: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout(state.settings.database.timeout, work)
        .await
        .unwrap_or_else(|_| Err(timed_out(state)))
}

/// The middleware: bounds every GET and HEAD request but the health checks (which bound
/// their own checks and answer in their documented shape).
pub async fn bound_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let bodiless = matches!(req.method().as_str(), "GET" | "HEAD");
    let health = req.path().starts_with("/health");
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let Some(state) = state.filter(|_| bodiless && !health) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    match tokio::time::timeout(state.settings.database.timeout, next.call(req)).await {
        Ok(response) => response.map(ServiceResponse::map_into_boxed_body),
        // The request went with the dropped future, so the answer travels as an error
        // carrying the rendered envelope (`context` adds the common headers).
        Err(_) => Err(actix_web::error::InternalError::from_response(
            "database timeout",
            timed_out(&state).error_response(),
        )
        .into()),
    }
}
