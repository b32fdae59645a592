//! The contexts the gateway serves. Each is a `ContextModule`: commands, tables, projectors.

pub mod identity;
pub mod lms;
pub mod marketplace;
pub mod marketplace_routes;

use crate::error::ApiError;
use crate::registry::ContextModule;
use commands::ExecuteError;

pub fn all() -> Vec<ContextModule> {
    vec![identity::module(), marketplace::module(), lms::module()]
}

/// How a domain rule error reads over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Forbidden,
    NotFound,
    Conflict,
    Invalid,
}

/// Maps a pipeline error to the API's error table; `kind` classifies the aggregate's rule errors.
pub fn map_exec<E: std::fmt::Display>(error: ExecuteError<E>, kind: impl FnOnce(&E) -> Kind) -> ApiError {
    match error {
        ExecuteError::Rejected(e) => {
            let message = e.to_string();
            match kind(&e) {
                Kind::Forbidden => ApiError::Forbidden(message),
                Kind::NotFound => ApiError::NotFound(message),
                Kind::Conflict => ApiError::Conflict(message),
                Kind::Invalid => ApiError::Invalid(message),
            }
        }
        ExecuteError::Conflict { stream_id, attempts } => {
            ApiError::ConcurrencyConflict(format!("{stream_id} kept changing ({attempts} attempts)"))
        }
        ExecuteError::IdempotencyMismatch => ApiError::IdempotencyKeyReused,
        ExecuteError::VersionMismatch { expected, actual } => ApiError::VersionMismatch { expected, actual },
        ExecuteError::WrongStreamType { stream_id, expected, .. } => {
            ApiError::NotFound(format!("{stream_id} is not a {expected}"))
        }
        ExecuteError::Corrupt { stream_id, message } => ApiError::Internal(format!("{stream_id}: {message}")),
        ExecuteError::Invalid(m) => ApiError::Invalid(m),
        ExecuteError::Store(e) => ApiError::Internal(e.to_string()),
        ExecuteError::Unavailable => ApiError::Unavailable("the command pipeline is shutting down".into()),
    }
}
