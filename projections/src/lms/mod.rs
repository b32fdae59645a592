//! Projectors of the learning platform's read tables (schema `lms`) and its process managers.
//!
//! The table projectors are declarative: each handled event type maps to SQL statements that read
//! the event's JSON payload (bound as `$1`, aliased `p`) and write the tables. `{lms.x}` in a
//! statement names a table the projector owns; it is replaced by the table being written (the
//! live one, or its shadow during a rebuild). Counters (`lessonCount`, `studentCount`, `rating`,
//! `reviewCount`, download and favourite counts) are kept here, never by commands.

pub mod catalog;
pub mod community;
pub mod learning;
pub mod processes;
pub mod users;

use crate::{ProjectionError, Projector, Tables};
use commands::RecordedEvent;
use futures::future::BoxFuture;
use serde_json::Value;
use sqlx::PgConnection;
use std::sync::Arc;

pub fn projectors() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(users::projector()),
        Arc::new(catalog::projector()),
        Arc::new(learning::projector()),
        Arc::new(community::projector()),
        Arc::new(processes::LmsProcesses),
    ]
}

/// One handled event: the stream type prefix it must come from (event types are not unique
/// across contexts: `admin-granted` is also the identity account's), its type, and the SQL.
pub struct Handler {
    pub stream_prefix: &'static str,
    pub event_type: &'static str,
    pub statements: &'static [&'static str],
}

/// A projector whose every effect is SQL over the event payload.
pub struct SqlProjector {
    pub name: &'static str,
    pub tables: &'static [&'static str],
    pub handlers: &'static [Handler],
    event_types: &'static [&'static str],
}

impl SqlProjector {
    pub fn new(name: &'static str, tables: &'static [&'static str], handlers: &'static [Handler]) -> Self {
        let mut types: Vec<&'static str> = handlers.iter().map(|h| h.event_type).collect();
        types.sort_unstable();
        types.dedup();
        // Built once per application; the list lives as long as the projector registry.
        Self { name, tables, handlers, event_types: Box::leak(types.into_boxed_slice()) }
    }

    fn resolve(&self, tables: &Tables, sql: &str) -> String {
        self.tables.iter().fold(sql.to_owned(), |sql, t| sql.replace(&format!("{{{t}}}"), tables.get(t)))
    }
}

/// The payload in its current shape: stored `user-ensured` v1 carries the old `role` enum.
pub fn current_payload(e: &RecordedEvent) -> Value {
    if e.event_type == domain::lms::user::USER_ENSURED && e.schema_version < domain::lms::user::USER_ENSURED_VERSION {
        domain::lms::user::upcast_user_ensured_v1(e.payload.clone())
    } else {
        e.payload.clone()
    }
}

impl Projector for SqlProjector {
    fn name(&self) -> &'static str {
        self.name
    }
    fn event_types(&self) -> &'static [&'static str] {
        self.event_types
    }
    fn tables(&self) -> &'static [&'static str] {
        self.tables
    }
    fn reads_metadata(&self) -> bool {
        false
    }
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        tables: &'a Tables,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            for e in events {
                let handler = self
                    .handlers
                    .iter()
                    .find(|h| h.event_type == e.event_type && e.stream_type.starts_with(h.stream_prefix));
                let Some(handler) = handler else { continue };
                let payload = current_payload(e);
                for sql in handler.statements {
                    sqlx::query(&self.resolve(tables, sql)).bind(&payload).execute(&mut *conn).await?;
                }
            }
            Ok(())
        })
    }
}
