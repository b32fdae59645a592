//! The application: shared state, the router, and the background workers (projectors, NATS
//! relay, scheduler). Built by a function so tests can serve it on port 0.

use crate::auth::{Caller, SessionCache};
use crate::config::Config;
use crate::error::ApiError;
use crate::registry::{CommandSpec, ContextModule, Replayer, RoleOf, TableSpec};
use commands::relay::{NatsRelay, RelayConfig};
use commands::scheduler::{DispatchOutcome, Dispatcher, ScheduledCommand, Scheduler};
use commands::shutdown::Shutdown;
use commands::upcast::Upcasters;
use commands::{BusConfig, CommandBus, CommandContext, LogWake, PgEventStore, SharedClock};
use futures::future::BoxFuture;
use projections::query::{Index, TableDef};
use projections::{ProjectorRuntime, RuntimeConfig};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::collections::HashMap;
use std::ops::Deref;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub struct Inner {
    pub config: Config,
    pub pool: PgPool,
    pub store: PgEventStore,
    pub bus: CommandBus<PgEventStore>,
    pub runtime: ProjectorRuntime,
    pub clock: SharedClock,
    pub sessions: SessionCache,
    pub commands: HashMap<(String, String), CommandSpec>,
    pub tables: HashMap<(String, String), (TableSpec, TableDef)>,
    pub replayers: HashMap<String, Replayer>,
    pub roles: HashMap<String, RoleOf>,
    pub nats: Option<async_nats::Client>,
    pub upcasters: Arc<Upcasters>,
    pub routes: Vec<fn() -> axum::Router<AppState>>,
    pub route_docs: Vec<&'static crate::registry::RouteDoc>,
    pub payments: Arc<dyn crate::providers::PaymentProvider>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The seed indexes of every read table, from the spec (`read-tables.json`, kept in the repo).
const READ_TABLES: &str = include_str!("../../migrations/read-tables.json");

fn seed_indexes(table: &str) -> Vec<Index> {
    let spec: serde_json::Value = serde_json::from_str(READ_TABLES).expect("read-tables.json parses");
    let (schema, name) = table.split_once('.').unwrap_or(("public", table));
    let Some(indexes) = spec[schema][name]["indexes"].as_object() else { return Vec::new() };
    indexes
        .iter()
        .map(|(n, cols)| Index {
            name: n.clone(),
            columns: cols.as_array().into_iter().flatten().filter_map(|c| c.as_str().map(str::to_owned)).collect(),
        })
        .collect()
}

/// Connects the pool with the settings the log needs: a bounded idle-in-transaction time, since
/// any long-open transaction holds every log reader back.
pub async fn connect(config: &Config) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(&config.database_url)?
        .application_name("escrowd")
        .options([("idle_in_transaction_session_timeout", "30s")]);
    PgPoolOptions::new()
        .max_connections(config.db_pool_size)
        .acquire_timeout(Duration::from_secs(10))
        // No ping before every checkout: it doubled the round trips of each query. A connection
        // that died idle fails its next query, which the pipeline and the consumers retry.
        .test_before_acquire(false)
        .connect_with(options)
        .await
}

pub struct Built {
    pub state: AppState,
    pub router: axum::Router,
}

impl AppState {
    /// Builds the whole application over a migrated database.
    pub async fn build(config: Config, clock: SharedClock, modules: Vec<ContextModule>) -> anyhow_like::Result<Built> {
        let pool = connect(&config).await?;
        let wake = LogWake::listen(&pool).await?;
        let store = PgEventStore::new(pool.clone(), wake);
        let mut upcasters = Upcasters::new();
        for m in &modules {
            (m.upcasters)(&mut upcasters);
        }
        let upcasters = Arc::new(upcasters);
        let bus = CommandBus::start(
            Arc::new(store.clone()),
            upcasters.clone(),
            BusConfig { shards: config.pipeline_shards, ..Default::default() },
        );
        let mut commands = HashMap::new();
        let mut tables = HashMap::new();
        let mut replayers = HashMap::new();
        let mut roles = HashMap::new();
        let mut projectors = Vec::new();
        let mut routes = Vec::new();
        let mut route_docs = Vec::new();
        for m in modules {
            routes.extend(m.routes);
            route_docs.extend(m.route_docs.iter());
            for c in m.commands {
                commands.insert((c.context.to_owned(), c.name.to_owned()), c);
            }
            for t in m.tables {
                let mut indexes = seed_indexes(t.table);
                indexes.extend(t.extra_indexes.iter().map(|(n, cols)| Index {
                    name: (*n).to_owned(),
                    columns: cols.iter().map(|c| (*c).to_owned()).collect(),
                }));
                let def =
                    TableDef::load(&pool, t.table, indexes, t.hidden).await.map_err(|e| format!("{}: {e}", t.table))?;
                tables.insert((t.context.to_owned(), t.name.to_owned()), (t, def));
            }
            replayers.extend(m.replayers.into_iter().map(|(k, v)| (k.to_owned(), v)));
            if let Some(r) = m.role_of {
                roles.insert(m.name.to_owned(), r);
            }
            projectors.extend(m.projectors);
        }
        let runtime = ProjectorRuntime::new(store.clone(), projectors, RuntimeConfig::default());
        let nats = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            .connect(&config.nats_url)
            .await
            .ok();
        let payments: Arc<dyn crate::providers::PaymentProvider> =
            Arc::new(crate::providers::HttpPaymentProvider::new(
                &config.payment_provider_url,
                config.payment_provider_key.clone(),
            )?);
        let state = AppState(Arc::new(Inner {
            config,
            pool,
            store,
            bus,
            runtime,
            clock,
            sessions: SessionCache::default(),
            commands,
            tables,
            replayers,
            roles,
            nats,
            upcasters,
            routes,
            route_docs,
            payments,
        }));
        let router = crate::http::router(state.clone());
        Ok(Built { state, router })
    }

    /// Starts the projectors, the NATS relay and the scheduler; they stop on `shutdown`.
    pub fn start_workers(&self, shutdown: Shutdown) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = self.runtime.spawn(shutdown.clone());
        if let Some(client) = &self.nats {
            let config = RelayConfig {
                stream_name: self.config.nats_stream.clone(),
                subject_prefix: self.config.nats_subject_prefix.clone(),
                ..Default::default()
            };
            let relay = NatsRelay::new(self.store.clone(), client.clone(), config);
            tasks.push(tokio::spawn(relay.run(shutdown.clone())));
        }
        tasks.push(tokio::spawn(self.scheduler().run(shutdown)));
        tasks
    }

    pub fn scheduler(&self) -> Scheduler {
        Scheduler::new(self.pool.clone(), Arc::new(RegistryDispatcher(self.clone())), self.clock.clone())
    }

    /// The context role of an account (`None` when not a member of that context).
    pub async fn role_in(
        &self,
        context: &str,
        account: uuid::Uuid,
    ) -> Result<Option<crate::registry::ContextRole>, ApiError> {
        match self.roles.get(context) {
            Some(f) => f(self.clone(), account).await,
            None => Ok(None),
        }
    }

    /// Runs a command as the HTTP layer would, for a given caller.
    pub async fn run_command(
        &self,
        context: &str,
        name: &str,
        caller: Caller,
        body: serde_json::Value,
        ctx: CommandContext,
    ) -> Result<crate::registry::CommandReply, ApiError> {
        let spec = self
            .commands
            .get(&(context.to_owned(), name.to_owned()))
            .ok_or_else(|| ApiError::NotFound(format!("no command {context}/{name}")))?;
        if spec.auth == crate::registry::Auth::SignedIn && caller.account.is_none() && !caller.is_system() {
            return Err(ApiError::Unauthenticated("this command needs a signed-in caller".into()));
        }
        (spec.handler)(self.clone(), caller, body, ctx).await
    }
}

/// Scheduled commands run through the same registry as HTTP commands, as the system actor, with
/// the idempotency key `scheduled:{id}`.
struct RegistryDispatcher(AppState);

impl Dispatcher for RegistryDispatcher {
    fn dispatch<'a>(&'a self, command: &'a ScheduledCommand) -> BoxFuture<'a, Result<DispatchOutcome, String>> {
        Box::pin(async move {
            let state = &self.0;
            let mut ctx = CommandContext::new(&command.command, state.clock.now()).with_actor("system", "system");
            ctx.correlation_id = command.source_event.unwrap_or(command.id);
            ctx.causation_id = command.source_event;
            ctx.idempotency = Some(commands::store::IdempotencyKey {
                scope: "system".into(),
                key: format!("scheduled:{}", command.id),
                command_name: format!("{}/{}", command.context, command.command),
                request_hash: command.id.to_string(),
            });
            match state
                .run_command(&command.context, &command.command, Caller::system(), command.payload.clone(), ctx)
                .await
            {
                Ok(reply) => Ok(DispatchOutcome::Done(
                    json!({ "stream": reply.result.stream, "version": reply.result.version, "position": reply.result.position }),
                )),
                Err(
                    e @ (ApiError::Conflict(_)
                    | ApiError::Forbidden(_)
                    | ApiError::NotFound(_)
                    | ApiError::Invalid(_)
                    | ApiError::VersionMismatch { .. }),
                ) => Ok(DispatchOutcome::Refused(e.to_string())),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

/// A tiny boxed-error result for start-up code.
pub mod anyhow_like {
    pub type Error = Box<dyn std::error::Error + Send + Sync>;
    pub type Result<T> = std::result::Result<T, Error>;
}
