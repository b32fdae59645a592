//! Projectors of the marketplace read tables (schema `marketplace`).

pub mod audit;
pub mod auto_release;
pub mod conversations;
pub mod matches;
pub mod projects;
pub mod users;
pub mod vetting;

use crate::{ProjectionError, Projector};
use chrono::{DateTime, Utc};
use commands::RecordedEvent;
use sqlx::PgConnection;
use std::sync::Arc;
use uuid::Uuid;

/// `impl Projector` for a projector that applies each marketplace event on its own with
/// `$apply(conn, tables, event)`.
macro_rules! per_event_projector {
    ($ty:ident, $name:literal, $events:expr, $tables:expr, $apply:path) => {
        impl crate::Projector for $ty {
            fn name(&self) -> &'static str {
                $name
            }
            fn event_types(&self) -> &'static [&'static str] {
                $events
            }
            fn tables(&self) -> &'static [&'static str] {
                $tables
            }
            fn reads_metadata(&self) -> bool {
                false
            }
            fn apply<'a>(
                &'a self,
                conn: &'a mut sqlx::PgConnection,
                tables: &'a crate::Tables,
                events: &'a [commands::RecordedEvent],
            ) -> futures::future::BoxFuture<'a, Result<(), crate::ProjectionError>> {
                Box::pin(async move {
                    for e in events.iter().filter(|e| super::is_marketplace(e)) {
                        $apply(conn, tables, e).await?;
                    }
                    Ok(())
                })
            }
        }
    };
}
pub(crate) use per_event_projector;

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

/// Sets a row's status (and `updated_at`).
pub(crate) async fn set_status(
    conn: &mut PgConnection,
    table: &str,
    id: Uuid,
    status: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("update {table} set status = $2, updated_at = $3 where id = $1"))
        .bind(id)
        .bind(status)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}
