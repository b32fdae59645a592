//! What a context contributes to the gateway: its commands (with body schemas and handlers), its
//! read tables (with who may read which rows), its projectors, upcasters and replayers. Adding a
//! context means writing one of these, never editing the engine or the HTTP layer.

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use commands::store::RecordedEvent;
use commands::upcast::Upcasters;
use commands::{CommandContext, CommandResult};
use futures::future::BoxFuture;
use projections::Projector;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use utoipa::openapi::{RefOr, Schema};

/// What a command handler answers: the write, and anything the caller needs beyond it (a
/// session token, a generated id).
pub struct CommandReply {
    pub result: CommandResult,
    pub created: bool,
    pub extra: Option<Value>,
}

impl CommandReply {
    pub fn ok(result: CommandResult) -> Self {
        Self { result, created: false, extra: None }
    }
    pub fn created(result: CommandResult) -> Self {
        Self { result, created: true, extra: None }
    }
    pub fn with(mut self, extra: Value) -> Self {
        self.extra = Some(extra);
        self
    }
}

pub type Handler = Arc<
    dyn Fn(AppState, Caller, Value, CommandContext) -> BoxFuture<'static, Result<CommandReply, ApiError>> + Send + Sync,
>;

/// Who may call a command at all (finer rules are the aggregate's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Anonymous,
    SignedIn,
}

pub struct CommandSpec {
    pub context: &'static str,
    pub name: &'static str,
    /// Who may send it, in words (OpenAPI description).
    pub who: &'static str,
    pub auth: Auth,
    pub body_schema: (String, RefOr<Schema>),
    pub nested_schemas: Vec<(String, RefOr<Schema>)>,
    pub handler: Handler,
}

/// Builds a command whose body deserialises into `B` (unknown fields and wrong types → 422).
pub fn command<B, F, Fut>(context: &'static str, name: &'static str, who: &'static str, auth: Auth, f: F) -> CommandSpec
where
    B: DeserializeOwned + utoipa::ToSchema + Send + 'static,
    F: Fn(AppState, Caller, B, CommandContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<CommandReply, ApiError>> + Send + 'static,
{
    let f = Arc::new(f);
    let handler: Handler = Arc::new(move |state, caller, body, ctx| {
        let f = f.clone();
        Box::pin(async move {
            let body: B = serde_json::from_value(body).map_err(|e| ApiError::Invalid(e.to_string()))?;
            f(state, caller, body, ctx).await
        })
    });
    let mut nested = Vec::new();
    <B as utoipa::ToSchema>::schemas(&mut nested);
    CommandSpec {
        context,
        name,
        who,
        auth,
        body_schema: (<B as utoipa::ToSchema>::name().into_owned(), <B as utoipa::PartialSchema>::schema()),
        nested_schemas: nested,
        handler,
    }
}

/// Who may read which rows of a read table.
#[derive(Debug, Clone)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in caller.
    SignedIn,
    /// Only the context's staff (admins, moderators).
    Staff,
    /// Staff see every row; others only rows where one of these columns is their account id
    /// (array columns: contain it).
    Own(&'static [&'static str]),
    /// Staff see every row; others only rows matching this SQL condition, where `$caller` is
    /// the caller's account id (as text).
    OwnWhere(&'static str),
    /// Anyone, signed in or not, sees the rows matching this SQL condition (`$caller` is the
    /// caller's account id as text, empty when anonymous); staff see every row. A public
    /// catalogue with each owner's unpublished rows.
    PublicWhere(&'static str),
}

pub struct TableSpec {
    pub context: &'static str,
    /// The path segment, e.g. `projects`.
    pub name: &'static str,
    /// The SQL table, schema-qualified.
    pub table: &'static str,
    pub access: Access,
    /// Columns never returned (secrets).
    pub hidden: &'static [&'static str],
    /// Extra indexes beyond the seed's (name, columns).
    pub extra_indexes: &'static [(&'static str, &'static [&'static str])],
}

/// Rebuilds an aggregate's state after each event of its stream, for auditors.
pub type Replayer = fn(&[RecordedEvent], &Upcasters) -> Result<Vec<Value>, String>;

/// The role of an account in a context (`None`: not a member), and whether it is staff.
pub type RoleOf = fn(AppState, uuid::Uuid) -> BoxFuture<'static, Result<Option<ContextRole>, ApiError>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextRole {
    pub role: String,
    pub staff: bool,
    pub suspended: bool,
}

pub struct ContextModule {
    pub name: &'static str,
    pub commands: Vec<CommandSpec>,
    pub tables: Vec<TableSpec>,
    pub projectors: Vec<Arc<dyn Projector>>,
    /// stream type → replayer.
    pub replayers: Vec<(&'static str, Replayer)>,
    pub upcasters: fn(&mut Upcasters),
    pub role_of: Option<RoleOf>,
    /// Endpoints outside the command/query contract (signed provider webhooks, public
    /// verification pages), merged into the router as they are.
    pub routes: Option<fn() -> axum::Router<AppState>>,
    /// What those extra endpoints are, for the OpenAPI document.
    pub route_docs: &'static [RouteDoc],
}

/// One endpoint outside the command/query contract, as the OpenAPI document lists it.
pub struct RouteDoc {
    pub method: utoipa::openapi::HttpMethod,
    pub path: &'static str,
    pub summary: &'static str,
    /// Who may call it and how it authenticates, in words.
    pub description: &'static str,
}

/// Folds each prefix of a stream with aggregate `A`: the state after every event.
pub fn replay_states<A: domain::Aggregate>(
    events: &[RecordedEvent],
    upcasters: &Upcasters,
) -> Result<Vec<Value>, String> {
    let mut state = A::default();
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        let mut event = event.clone();
        upcasters.upcast(&mut event);
        let decoded: A::Event =
            domain::kernel::decode_event(&event.event_type, &event.payload).map_err(|e| e.to_string())?;
        state.evolve(&decoded);
        out.push(serde_json::to_value(&state).map_err(|e| e.to_string())?);
    }
    Ok(out)
}
