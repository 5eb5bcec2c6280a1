//! The single error envelope of every API response (SPEC §5):
//! `{"error", "message", "details", "request_id", "timestamp"}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::context::current_request_id;

/// The stable code of an error envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the request cannot be read.
    BadRequest,
    /// 401: missing, unknown, revoked or expired key.
    Unauthorized,
    /// 403: the key's project scope or roles do not allow this.
    Forbidden,
    /// 404: no such project, snapshot or route.
    NotFound,
    /// 405: the path exists but not with this method.
    MethodNotAllowed,
    /// 408: the request body did not arrive in time.
    RequestTimeout,
    /// 409: the request conflicts with stored data (an event id reused with other content).
    Conflict,
    /// 413: the body or batch is too large.
    PayloadTooLarge,
    /// 415: a body in a content type or encoding the route does not read.
    UnsupportedMediaType,
    /// 422: well-formed but invalid input.
    ValidationError,
    /// 429: over the rate limit.
    RateLimited,
    /// 500: an internal error (never detailed).
    InternalError,
    /// 503: the database is unavailable or a feature is switched off.
    ServiceUnavailable,
}

/// The error envelope of every non-2xx response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub error: ErrorCode,
    /// A sentence for people, naming the field when one is at fault.
    pub message: String,
    /// Machine-readable detail: `field` (the parameter at fault), `allowed_values` (its closed
    /// list), `errors` (per-event ingest errors), `conflicts` (ingest events reusing an
    /// event_id with other content), `sqlstate` (a data error PostgreSQL refused),
    /// `max_bytes`, `max_events`, `retry_after`…;
    /// `{}` when there is nothing to add.
    #[schema(value_type = Object)]
    pub details: Value,
    /// The request's id (also in `X-Request-ID`).
    pub request_id: String,
    /// When the error was answered (RFC 3339, UTC, milliseconds).
    #[schema(format = DateTime)]
    pub timestamp: String,
}

/// Every error the API answers with. Codes are stable snake_case strings.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `bad_request`: the request cannot be read (malformed JSON, bad parameter syntax).
    #[error("{message}")]
    BadRequest {
        /// A sentence naming the field.
        message: String,
        /// Machine-readable detail, e.g. `{"field": "limit"}`.
        details: Value,
    },
    /// 401 `unauthorized`: missing, unknown, revoked or expired key.
    #[error("{0}")]
    Unauthorized(String),
    /// 403 `forbidden`: the key's project scope or roles do not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// 404 `not_found`.
    #[error("{0}")]
    NotFound(String),
    /// 405 `method_not_allowed`: the path exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 408 `request_timeout`: the body did not arrive within `FLOWMETER_HTTP_BODY_TIMEOUT_MS`.
    #[error("{0}")]
    RequestTimeout(String),
    /// 409 `conflict`: e.g. an event id already stored with different content.
    #[error("{message}")]
    Conflict {
        /// A sentence.
        message: String,
        /// e.g. `{"conflicts": [{"index", "event_id"}]}`.
        details: Value,
    },
    /// 415 `unsupported_media_type`: a `Content-Type` or `Content-Encoding` the route does
    /// not read.
    #[error("{message}")]
    UnsupportedMediaType {
        /// A sentence naming what is accepted.
        message: String,
        /// `{"field": "content-type", "allowed_values": [...]}`.
        details: Value,
    },
    /// 413 `payload_too_large`.
    #[error("{message}")]
    PayloadTooLarge {
        /// A sentence naming the limit.
        message: String,
        /// The limit that was exceeded.
        details: Value,
    },
    /// 422 `validation_error`: well-formed but invalid input.
    #[error("{message}")]
    Validation {
        /// A sentence.
        message: String,
        /// e.g. `{"errors": [...]}` or `{"field": ..., "allowed_values": [...]}`.
        details: Value,
    },
    /// 429 `rate_limited`.
    #[error("rate limit exceeded")]
    RateLimited {
        /// Seconds until the window resets.
        retry_after_secs: u64,
    },
    /// 500 `internal_error`: logged with its cause, never echoed.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// 503 `service_unavailable`: the database is unreachable or a feature is switched off.
    #[error("{0}")]
    Unavailable(String),
    /// Any other status produced outside our handlers (actix's own refusals), rendered in
    /// the envelope with the code of its status class.
    #[error("{message}")]
    Status {
        /// The status to answer with.
        status: StatusCode,
        /// A sentence.
        message: String,
    },
}

impl ApiError {
    /// A 400 naming one field.
    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            details: json!({ "field": field }),
        }
    }

    /// A 422 naming one field and, when the field has a closed list, its allowed values.
    pub fn invalid_field(field: &str, message: impl Into<String>, allowed: &[&str]) -> Self {
        let details = if allowed.is_empty() {
            json!({ "field": field })
        } else {
            json!({ "field": field, "allowed_values": allowed })
        };
        Self::Validation {
            message: message.into(),
            details,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest { .. } => ErrorCode::BadRequest,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::RequestTimeout(_) => ErrorCode::RequestTimeout,
            Self::Conflict { .. } => ErrorCode::Conflict,
            Self::UnsupportedMediaType { .. } => ErrorCode::UnsupportedMediaType,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::Validation { .. } => ErrorCode::ValidationError,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Internal(_) => ErrorCode::InternalError,
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Status { status, .. } => ErrorCode::for_status(*status),
        }
    }
}

impl ErrorCode {
    /// The code of a status that no handler chose (actix's own answers).
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            408 => Self::RequestTimeout,
            409 => Self::Conflict,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::ValidationError,
            429 => Self::RateLimited,
            503 => Self::ServiceUnavailable,
            500..=599 => Self::InternalError,
            _ => Self::BadRequest,
        }
    }
}

/// The first PostgreSQL server error in a cause chain.
fn db_error(error: &anyhow::Error) -> Option<&tokio_postgres::error::DbError> {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<tokio_postgres::Error>())
        .find_map(tokio_postgres::Error::as_db_error)
}

/// Repository errors: a lost or unreachable database becomes 503 (the client may retry), a
/// data error of PostgreSQL (SQLSTATE class 22: a value out of range, a character it cannot
/// store) 422 — the edge validates first, this is the safety net — anything else 500.
impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        if let Some(conflict) = error.downcast_ref::<flowmeter_shared::db::events::ConflictError>()
        {
            return Self::Conflict {
                message: format!(
                    "{conflict}: an event_id must always carry the same event; nothing was stored"
                ),
                details: json!({ "conflicts": conflict.conflicts }),
            };
        }
        if let Some(db) = db_error(&error).filter(|db| db.code().code().starts_with("22")) {
            return Self::Validation {
                message: "a value is out of range or cannot be stored; nothing was changed".into(),
                details: json!({ "sqlstate": db.code().code() }),
            };
        }
        let unavailable = error.chain().any(|cause| {
            if let Some(pool) = cause.downcast_ref::<deadpool_postgres::PoolError>() {
                return flowmeter_shared::db::is_unavailable(pool);
            }
            if let Some(pg) = cause.downcast_ref::<tokio_postgres::Error>() {
                // No server error attached means the connection itself failed; 57P01 and
                // friends are the server shutting down; 57014 is a statement timeout.
                return match pg.as_db_error() {
                    None => true,
                    Some(db) => {
                        let code = db.code().code();
                        code.starts_with("57P") || code == "57014" || code.starts_with("08")
                    }
                };
            }
            false
        });
        if unavailable {
            Self::Unavailable("the database is unavailable; retry shortly".into())
        } else {
            Self::Internal(error)
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        anyhow::Error::new(error).into()
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(error: tokio_postgres::Error) -> Self {
        anyhow::Error::new(error).into()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Status { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = current_request_id();
        let details = match self {
            Self::BadRequest { details, .. }
            | Self::PayloadTooLarge { details, .. }
            | Self::Conflict { details, .. }
            | Self::UnsupportedMediaType { details, .. }
            | Self::Validation { details, .. } => details.clone(),
            Self::RateLimited { retry_after_secs } => json!({ "retry_after": retry_after_secs }),
            _ => json!({}),
        };
        match self {
            Self::Internal(cause) => {
                // The SQLSTATE and the server's message say what went wrong; the cause chain
                // is logged as text (not Debug, which would include the statement's values).
                let db = db_error(cause);
                tracing::error!(
                    request_id = %request_id,
                    error = format!("{cause:#}"),
                    sqlstate = db.map(|db| db.code().code()),
                    db_message = db.map(tokio_postgres::error::DbError::message),
                    "Request failed."
                );
            }
            Self::Unavailable(message) => {
                tracing::warn!(request_id = %request_id, %message, "Answered 503.");
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Self::RateLimited { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            _ => {}
        }
        response.json(ErrorBody {
            error: self.code(),
            message: self.to_string(),
            details,
            request_id,
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
    }
}
