//! Projectors of the marketplace read tables (schema `marketplace`).

pub mod audit;
pub mod auto_release;
pub mod projects;
pub mod users;

use crate::Projector;
use std::sync::Arc;

pub fn projectors() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(users::UsersProjector),
        Arc::new(projects::ProjectsProjector),
        Arc::new(audit::AuditLogProjector),
        Arc::new(auto_release::AutoRelease),
    ]
}
