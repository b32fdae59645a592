//! The learning platform (seed 004, Doctrina LMS).

pub mod catalog;
pub mod community;
pub mod enrollment;
pub mod live;
pub mod user;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who sends an LMS command: the session's account with its LMS flags (never from the body).
/// `system` is the scheduler and webhooks.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: Uuid,
    pub is_instructor: bool,
    pub is_admin: bool,
    pub system: bool,
}

impl Actor {
    pub fn system() -> Self {
        Self { id: Uuid::nil(), is_instructor: false, is_admin: false, system: true }
    }
}

/// How a refusal reads over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Forbidden,
    NotFound,
    Conflict,
    Invalid,
}
