//! One API error type with one code table: every error has a stable problem `type`, a status and
//! a title. Bodies are RFC 9457 `application/problem+json`. 5xx bodies are generic; the cause is
//! logged (inside the request's trace span), never sent.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// The code table: (code, status, title). The problem `type` is `/problems/{code}`.
pub const PROBLEMS: &[(&str, u16, &str)] = &[
    ("malformed-request", 400, "The request could not be read"),
    ("unauthenticated", 401, "Sign in first"),
    ("forbidden", 403, "You may not do this"),
    ("not-found", 404, "Not found"),
    ("conflict", 409, "The request conflicts with the current state"),
    ("version-mismatch", 409, "The stream is not at the expected version"),
    ("concurrency-conflict", 409, "The stream kept changing; try again"),
    ("idempotency-key-reused", 422, "This Idempotency-Key was used for another request"),
    ("invalid-field", 422, "A field is invalid"),
    ("unsupported-filter", 400, "No index serves this filter"),
    ("invalid-signature", 401, "The webhook signature does not verify"),
    ("webhook-refused", 400, "The webhook names nothing we know"),
    ("payload-too-large", 413, "The request body is too large"),
    ("throttled", 429, "Too many requests"),
    ("unavailable", 503, "The service is not available right now"),
    ("internal", 500, "Something went wrong on our side"),
];

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: unreadable JSON, bad query parameters.
    #[error("{0}")]
    Malformed(String),
    /// 401
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: the caller may not send this command or read this row.
    #[error("{0}")]
    Forbidden(String),
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 409: a rule of the domain refused the command in the current state.
    #[error("{0}")]
    Conflict(String),
    /// 409: `If-Match` named another version.
    #[error("stream is at version {actual}, If-Match said {expected}")]
    VersionMismatch { expected: i64, actual: i64 },
    /// 409: conflicts persisted after the bounded retries.
    #[error("{0}")]
    ConcurrencyConflict(String),
    /// 422
    #[error("the Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    /// 422: a field is present but invalid (unknown field, wrong type, broken value rule).
    #[error("{0}")]
    Invalid(String),
    /// 400: a filter no index serves.
    #[error("{0}")]
    UnsupportedFilter(String),
    /// 401: a provider webhook whose signature does not verify.
    #[error("{0}")]
    InvalidSignature(String),
    /// 400: a signed provider webhook about something we never created.
    #[error("{0}")]
    WebhookRefused(String),
    /// 503
    #[error("{0}")]
    Unavailable(String),
    /// 500: logged, never sent.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Malformed(_) => "malformed-request",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::Conflict(_) => "conflict",
            ApiError::VersionMismatch { .. } => "version-mismatch",
            ApiError::ConcurrencyConflict(_) => "concurrency-conflict",
            ApiError::IdempotencyKeyReused => "idempotency-key-reused",
            ApiError::Invalid(_) => "invalid-field",
            ApiError::UnsupportedFilter(_) => "unsupported-filter",
            ApiError::InvalidSignature(_) => "invalid-signature",
            ApiError::WebhookRefused(_) => "webhook-refused",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }
}

pub fn problem(code: &str) -> (StatusCode, &'static str) {
    let (_, status, title) = PROBLEMS.iter().find(|p| p.0 == code).copied().unwrap_or(PROBLEMS[PROBLEMS.len() - 1]);
    (StatusCode::from_u16(status).expect("valid status"), title)
}

pub fn problem_body(code: &str, detail: Option<String>) -> (StatusCode, Value) {
    let (status, title) = problem(code);
    let mut body = json!({ "type": format!("/problems/{code}"), "title": title, "status": status.as_u16() });
    if let Some(detail) = detail {
        body["detail"] = Value::String(detail);
    }
    (status, body)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let detail = match &self {
            ApiError::Internal(cause) | ApiError::Unavailable(cause) => {
                tracing::error!(error = %cause, code, "request failed");
                None
            }
            other => Some(other.to_string()),
        };
        let (status, body) = problem_body(code, detail);
        let mut response = (status, body.to_string()).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, "application/problem+json".parse().expect("static"));
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(format!("database: {e}"))
    }
}

impl From<commands::store::StoreError> for ApiError {
    fn from(e: commands::store::StoreError) -> Self {
        ApiError::Internal(format!("store: {e}"))
    }
}

impl From<projections::ProjectionError> for ApiError {
    fn from(e: projections::ProjectionError) -> Self {
        ApiError::Internal(format!("projection: {e}"))
    }
}
