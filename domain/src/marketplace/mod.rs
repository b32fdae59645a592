//! The freelance escrow marketplace (seed 000).
//!
//! Streams: `mkt-user-{accountId}` (profile and role), `mkt-project-{projectId}` (the project
//! with its milestones, disputes and escrow: every money invariant lives in this one aggregate so
//! it is checked in one decision, never across streams).

pub mod chat;
pub mod matching;
pub mod payment;
pub mod project;
pub mod user;
pub mod vetting;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A role in the marketplace. Clients and freelancers choose theirs when they join; moderators
/// and admins are appointed by an admin. `System` is the scheduler and webhooks.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Client,
    Freelancer,
    Moderator,
    Admin,
    System,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Freelancer => "freelancer",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
            Role::System => "system",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "client" => Role::Client,
            "freelancer" => Role::Freelancer,
            "moderator" => Role::Moderator,
            "admin" => Role::Admin,
            "system" => Role::System,
            _ => return None,
        })
    }
}

/// Who sends a marketplace command: always taken from the session (or the scheduler), never
/// from the request body.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: Uuid,
    pub role: Role,
}

impl Actor {
    pub fn system() -> Self {
        Self { id: Uuid::nil(), role: Role::System }
    }
    pub fn is_staff(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Moderator)
    }
}
