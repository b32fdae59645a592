//! Projectors of the marketplace read tables (schema `marketplace`).

pub mod audit;
pub mod auto_release;
pub mod conversations;
pub mod matches;
pub mod projects;
pub mod users;
pub mod vetting;

use crate::{ProjectionError, Projector};
use commands::RecordedEvent;
use std::sync::Arc;

pub fn projectors() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(users::UsersProjector),
        Arc::new(projects::ProjectsProjector),
        Arc::new(audit::AuditLogProjector),
        Arc::new(auto_release::AutoRelease),
        Arc::new(conversations::ConversationsProjector),
        Arc::new(vetting::VettingProjector),
        Arc::new(matches::MatchesProjector),
        Arc::new(matches::MatchProcess),
    ]
}

/// Event types are global across contexts (another context may also have a `message-sent`):
/// marketplace projectors only take events of marketplace streams.
pub(crate) fn is_marketplace(e: &RecordedEvent) -> bool {
    e.stream_type.starts_with("marketplace.")
}

/// Decodes a stored event into the domain's own type, so a payload that no longer fits fails
/// loudly instead of projecting nonsense.
pub(crate) fn decode<E: domain::kernel::DomainEvent>(e: &RecordedEvent) -> Result<E, ProjectionError> {
    domain::kernel::decode_event(&e.event_type, &e.payload).map_err(|err| ProjectionError::Event {
        position: e.position,
        event_type: e.event_type.clone(),
        message: err.to_string(),
    })
}
