//! The projector runtime.
//!
//! A projector declares the event types it handles and the tables it owns, and applies a batch
//! of events inside a transaction the runtime opens; the runtime advances the projector's
//! checkpoint in that same transaction, so a crash can neither skip nor double-apply an event.
//! One process owns each projector at a time (advisory lock lease); several can run side by side.
//! It wakes on LISTEN/NOTIFY with polling as the fallback. An event that keeps failing is retried
//! with backoff, then the projector stops as `stalled` with the event and the error recorded.

use commands::consumer::{self, advance_checkpoint, lag, load_checkpoint, mark_stalled, LeaseHost};
use commands::metrics::METRICS;
use commands::shutdown::Shutdown;
use commands::store::{LogPosition, ReadBatch, RecordedEvent};
use commands::PgEventStore;
use futures::future::BoxFuture;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Where a projector writes: its logical table names mapped to the tables actually written (the
/// same, except during a rebuild, when they are fresh shadow tables).
#[derive(Debug, Clone, Default)]
pub struct Tables {
    map: HashMap<&'static str, String>,
}

impl Tables {
    pub fn live(names: &[&'static str]) -> Self {
        Self { map: names.iter().map(|n| (*n, (*n).to_owned())).collect() }
    }
    fn shadow(names: &[&'static str]) -> Self {
        Self { map: names.iter().map(|n| (*n, shadow_name(n))).collect() }
    }
    /// The table to write for `logical` (schema-qualified).
    pub fn get(&self, logical: &str) -> &str {
        self.map.get(logical).map(String::as_str).unwrap_or_else(|| panic!("projector does not own table {logical}"))
    }
}

fn shadow_name(table: &str) -> String {
    format!("{table}__rebuild")
}

fn split(table: &str) -> (&str, &str) {
    table.split_once('.').unwrap_or(("public", table))
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event {event_type} at {position}: {message}")]
    Event { position: i64, event_type: String, message: String },
    #[error("store: {0}")]
    Store(#[from] commands::store::StoreError),
    #[error("{0}")]
    Other(String),
}

/// One read model: the tables it owns and how events change them.
pub trait Projector: Send + Sync + 'static {
    /// Unique, stable: the checkpoint's name.
    fn name(&self) -> &'static str;
    /// The event types it handles; others are never read for it.
    fn event_types(&self) -> &'static [&'static str];
    /// Schema-qualified tables it owns (rebuilt together).
    fn tables(&self) -> &'static [&'static str];
    /// Whether `apply` reads the events' metadata (actor, command, client) or hashes. A projector
    /// that says no is handed events with null metadata and empty hashes, read at about half the
    /// cost.
    fn reads_metadata(&self) -> bool {
        true
    }
    /// Applies `events` (in log order) inside the runtime's transaction.
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        tables: &'a Tables,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>>;
}

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Events a live projector applies in one transaction at most.
    pub batch_size: i64,
    /// The same for catch-up and rebuilds (long replays: bigger pages cost less per event).
    pub replay_batch_size: i64,
    pub poll_interval: Duration,
    /// Attempts on one failing event before the projector stalls.
    pub max_attempts: u32,
    pub backoff_base: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            replay_batch_size: 5000,
            poll_interval: Duration::from_millis(500),
            max_attempts: 5,
            backoff_base: Duration::from_millis(50),
        }
    }
}

/// A projector's state as operators and the gateway see it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProjectorStatus {
    pub name: String,
    pub status: String,
    pub position: i64,
    pub txid: i64,
    pub lag_events: i64,
    pub lag_seconds: f64,
    pub failed_position: Option<i64>,
    pub last_error: Option<String>,
    pub tables: Vec<String>,
}

#[derive(Clone)]
pub struct ProjectorRuntime {
    store: PgEventStore,
    projectors: Vec<Arc<dyn Projector>>,
    config: RuntimeConfig,
    /// Every projector's lease of this runtime (one process) on one connection.
    leases: Arc<LeaseHost>,
}

enum Applied {
    Done(LogPosition),
    /// The checkpoint moved under us (another owner, or a rebuild swapped the tables).
    Moved,
}

impl ProjectorRuntime {
    pub fn new(store: PgEventStore, projectors: Vec<Arc<dyn Projector>>, config: RuntimeConfig) -> Self {
        METRICS.describe("projector_lag_events", "gauge", "Events a projector has not applied yet.");
        METRICS.describe("projector_lag_seconds", "gauge", "Age of the oldest event a projector has not applied yet.");
        METRICS.describe("projector_events_total", "counter", "Events applied by each projector.");
        METRICS.describe(
            "log_horizon_age_seconds",
            "gauge",
            "Age of the oldest open transaction holding every log reader back.",
        );
        let leases = LeaseHost::new(store.pool().clone());
        Self { store, projectors, config, leases }
    }

    fn pool(&self) -> &PgPool {
        self.store.pool()
    }

    pub fn projectors(&self) -> &[Arc<dyn Projector>] {
        &self.projectors
    }

    pub fn find(&self, name: &str) -> Option<Arc<dyn Projector>> {
        self.projectors.iter().find(|p| p.name() == name).cloned()
    }

    /// The projectors that own `table` (schema-qualified).
    pub fn owners_of(&self, table: &str) -> Vec<Arc<dyn Projector>> {
        self.projectors.iter().filter(|p| p.tables().contains(&table)).cloned().collect()
    }

    /// Spawns one task per projector; each runs until shutdown.
    pub fn spawn(&self, shutdown: Shutdown) -> Vec<tokio::task::JoinHandle<()>> {
        self.projectors
            .iter()
            .map(|p| {
                let rt = self.clone();
                let p = p.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move { rt.run(p, shutdown).await })
            })
            .collect()
    }

    fn types_of(projector: &dyn Projector) -> Vec<String> {
        projector.event_types().iter().map(|s| (*s).to_owned()).collect()
    }

    /// Applies one read batch and advances `name`'s checkpoint from `from`, in one transaction.
    async fn apply_batch(
        &self,
        projector: &dyn Projector,
        name: &str,
        tables: &Tables,
        from: LogPosition,
        events: &[RecordedEvent],
        to: LogPosition,
    ) -> Result<Applied, ProjectionError> {
        let mut tx = self.pool().begin().await?;
        // The checkpoint first: it checks that the tables are still the ones `from` describes and
        // locks the checkpoint row (a rebuild's swap takes that row before the tables, so the two
        // queue instead of deadlocking). Applied first, a batch already in the swapped-in tables
        // failed on their unique keys before the check could say "moved", and the projector
        // stalled on an event that was not at fault.
        if !advance_checkpoint(&mut tx, name, from, to).await? {
            tx.rollback().await?;
            return Ok(Applied::Moved);
        }
        if !events.is_empty() {
            projector.apply(&mut tx, tables, events).await?;
        }
        tx.commit().await?;
        if !events.is_empty() {
            METRICS.inc("projector_events_total", &[("projector", projector.name())], events.len() as f64);
        }
        Ok(Applied::Done(to))
    }

    /// Handles one batch with the failure policy: on error, isolate the failing event by applying
    /// the batch one event at a time, retry it with backoff, then stall.
    async fn handle(
        &self,
        projector: &dyn Projector,
        name: &str,
        tables: &Tables,
        from: LogPosition,
        batch: &ReadBatch,
        shutdown: &mut Shutdown,
    ) -> Result<Option<Applied>, sqlx::Error> {
        match self.apply_batch(projector, name, tables, from, &batch.events, batch.checkpoint).await {
            Ok(applied) => return Ok(Some(applied)),
            Err(error) => tracing::warn!(projector = name, %error, "batch failed; isolating the failing event"),
        }
        let mut at = from;
        for (i, event) in batch.events.iter().enumerate() {
            let to = if i + 1 == batch.events.len() { batch.checkpoint } else { event.log_position() };
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                match self.apply_batch(projector, name, tables, at, std::slice::from_ref(event), to).await {
                    Ok(Applied::Done(p)) => {
                        at = p;
                        break;
                    }
                    Ok(Applied::Moved) => return Ok(Some(Applied::Moved)),
                    Err(error) if attempts >= self.config.max_attempts => {
                        let message = error.to_string();
                        tracing::error!(projector = name, position = event.position, event_type = %event.event_type,
                            error = %message, attempts, "projector stalled");
                        mark_stalled(self.pool(), name, event.position, &message, attempts as i32).await?;
                        return Ok(None);
                    }
                    Err(error) => {
                        tracing::warn!(projector = name, position = event.position, %error, attempts, "event failed; retrying");
                        let backoff = self.config.backoff_base * 2u32.pow(attempts.min(10));
                        if shutdown.sleep(backoff).await {
                            return Ok(None);
                        }
                    }
                }
            }
        }
        Ok(Some(Applied::Done(at)))
    }

    /// The live loop of one projector.
    async fn run(&self, projector: Arc<dyn Projector>, mut shutdown: Shutdown) {
        let name = projector.name();
        let types = Self::types_of(&*projector);
        let tables = Tables::live(projector.tables());
        let mut waiter = self.store.wake().waiter(Some(types.clone()));
        'lease: while !shutdown.is_set() {
            let _lease = match self.leases.try_lease(name).await {
                Ok(Some(lease)) => lease,
                _ => {
                    if shutdown.sleep(self.config.poll_interval * 2).await {
                        return;
                    }
                    continue;
                }
            };
            // The owner keeps its checkpoint in memory; the stored one is re-read only when the
            // conditional update says it moved (a rebuild swapped tables) or after a stall.
            let mut known: Option<commands::consumer::Checkpoint> = None;
            // What the database holds (the conditional update's `from`), and when it was written.
            let mut stored: Option<LogPosition> = None;
            let mut persisted = std::time::Instant::now();
            loop {
                if shutdown.is_set() {
                    return;
                }
                let seen = waiter.seen();
                let checkpoint = match known.take() {
                    Some(cp) => cp,
                    None => match load_checkpoint(self.pool(), name).await {
                        Ok(cp) => {
                            stored = Some(cp.position);
                            cp
                        }
                        Err(_) => {
                            shutdown.sleep(self.config.poll_interval).await;
                            continue 'lease;
                        }
                    },
                };
                if checkpoint.status != "running" {
                    // Stalled: wait for an operator's resume or rebuild.
                    if shutdown.sleep(self.config.poll_interval).await {
                        return;
                    }
                    continue;
                }
                let batch = match self
                    .store
                    .read_filtered(checkpoint.position, self.config.batch_size, &types, projector.reads_metadata())
                    .await
                {
                    Ok(batch) => batch,
                    Err(error) => {
                        tracing::warn!(projector = name, %error, "reading the log failed");
                        shutdown.sleep(self.config.poll_interval).await;
                        continue;
                    }
                };
                let from = stored.unwrap_or(checkpoint.position);
                if batch.events.is_empty() {
                    // Nothing of ours: the checkpoint only follows the horizon, which moves with
                    // any transaction on the server. Move on in memory (persisted at most once a
                    // second), then wait for a wake-up: never spin on an idle log.
                    let moved = batch.checkpoint != checkpoint.position;
                    if moved && persisted.elapsed() >= Duration::from_secs(1) {
                        let mut tx_ok = false;
                        if let Ok(mut conn) = self.pool().acquire().await {
                            tx_ok =
                                matches!(advance_checkpoint(&mut conn, name, from, batch.checkpoint).await, Ok(true));
                        }
                        if !tx_ok {
                            known = None;
                            continue;
                        }
                        stored = Some(batch.checkpoint);
                        persisted = std::time::Instant::now();
                    }
                    known = Some(commands::consumer::Checkpoint { position: batch.checkpoint, ..checkpoint });
                    if !batch.full {
                        tokio::select! {
                            _ = waiter.wait(seen, batch.checkpoint.txid, self.config.poll_interval) => {}
                            _ = shutdown.wait() => return,
                        }
                    }
                    continue;
                }
                match self.handle(&*projector, name, &tables, from, &batch, &mut shutdown).await {
                    Ok(Some(Applied::Done(at))) => {
                        stored = Some(at);
                        persisted = std::time::Instant::now();
                        known = Some(commands::consumer::Checkpoint { position: at, ..checkpoint });
                        if !batch.full {
                            tokio::select! {
                                _ = waiter.wait(seen, at.txid, self.config.poll_interval) => {}
                                _ = shutdown.wait() => return,
                            }
                        }
                    }
                    // Moved, or stalled: re-read the stored checkpoint.
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(projector = name, %error, "projector lost its database connection");
                        shutdown.sleep(self.config.poll_interval).await;
                        continue 'lease;
                    }
                }
            }
        }
    }

    /// Applies everything committed so far for `name` in this task (no lease; for the CLI and
    /// tests where nothing else runs the projector). Returns the events applied.
    pub async fn catch_up(&self, name: &str) -> Result<u64, ProjectionError> {
        let projector = self.find(name).ok_or_else(|| ProjectionError::Other(format!("no projector {name}")))?;
        let tables = Tables::live(projector.tables());
        // Everything committed before this call has a transaction id below this. Done once the
        // horizon passed it. Not "until a read finds nothing new": our own checkpoint commits
        // move the horizon, so that never ends; nor "at the first short page": an older open
        // transaction anywhere on the server can hold the horizon below events already committed.
        let target: i64 = sqlx::query_scalar("select pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
            .fetch_one(self.pool())
            .await?;
        let mut applied = 0;
        'restart: loop {
            let mut from = load_checkpoint(self.pool(), name).await?.position;
            let mut pages = self.read_ahead(&*projector, from, Some(target));
            while let Some(batch) = pages.recv().await {
                let batch = batch?;
                if batch.events.is_empty() && batch.checkpoint == from {
                    continue;
                }
                match self.apply_batch(&*projector, name, &tables, from, &batch.events, batch.checkpoint).await? {
                    Applied::Done(at) => {
                        applied += batch.events.len() as u64;
                        from = at;
                    }
                    // Someone else moved the checkpoint: drop what was read ahead, start again.
                    Applied::Moved => continue 'restart,
                }
            }
            return Ok(applied);
        }
    }

    /// Reads pages of the log for `types` from `from` on a task of its own, one page ahead of
    /// the caller: the next page is read while the previous one is applied, so catch-up and
    /// rebuild keep the database busy on both ends instead of alternating read, apply, read.
    /// A full page is followed by the next at once. After a short page: with `until` (a
    /// transaction id), it waits (backing off) and reads on until the horizon passes `until`;
    /// without, it ends. An error is sent and ends the reading.
    fn read_ahead(
        &self,
        projector: &dyn Projector,
        from: LogPosition,
        until: Option<i64>,
    ) -> tokio::sync::mpsc::Receiver<Result<ReadBatch, ProjectionError>> {
        let types = Self::types_of(projector);
        let metadata = projector.reads_metadata();
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let store = self.store.clone();
        let page = self.config.replay_batch_size;
        tokio::spawn(async move {
            let mut at = from;
            let mut pause = Duration::from_millis(1);
            loop {
                let batch = match store.read_filtered(at, page, &types, metadata).await {
                    Ok(batch) => batch,
                    Err(error) => {
                        let _ = tx.send(Err(error.into())).await;
                        return;
                    }
                };
                let (full, next) = (batch.full, batch.checkpoint);
                if tx.send(Ok(batch)).await.is_err() {
                    return;
                }
                at = next;
                if full {
                    pause = Duration::from_millis(1);
                    continue;
                }
                match until {
                    Some(target) if next.txid < target => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(50));
                    }
                    _ => return,
                }
            }
        });
        rx
    }

    /// Status and lag of every projector; also refreshes the lag gauges.
    pub async fn status(&self) -> Result<Vec<ProjectorStatus>, ProjectionError> {
        let mut out = Vec::with_capacity(self.projectors.len());
        for p in &self.projectors {
            let cp = load_checkpoint(self.pool(), p.name()).await?;
            let types = Self::types_of(&**p);
            let (lag_events, lag_seconds) = lag(self.pool(), cp.position, Some(&types)).await?;
            METRICS.set("projector_lag_events", &[("projector", p.name())], lag_events as f64);
            METRICS.set("projector_lag_seconds", &[("projector", p.name())], lag_seconds);
            out.push(ProjectorStatus {
                name: p.name().to_owned(),
                status: cp.status,
                position: cp.position.position,
                txid: cp.position.txid,
                lag_events,
                lag_seconds,
                failed_position: cp.failed_position,
                last_error: cp.last_error,
                tables: p.tables().iter().map(|t| (*t).to_owned()).collect(),
            });
        }
        let horizon_age: Option<f64> = sqlx::query_scalar(
            "select extract(epoch from now() - min(xact_start))::float8 from pg_stat_activity
             where backend_xid is not null",
        )
        .fetch_one(self.pool())
        .await?;
        METRICS.set("log_horizon_age_seconds", &[], horizon_age.unwrap_or(0.0).max(0.0));
        Ok(out)
    }

    /// Puts a stalled projector back to work.
    pub async fn resume(&self, name: &str) -> Result<bool, ProjectionError> {
        Ok(consumer::resume(self.pool(), name).await?)
    }

    /// Waits (bounded) until every projector owning `tables` has applied the event at log
    /// `position`. Returns false on timeout. Unknown positions count as reached once the log has
    /// no such event (nothing to wait for).
    pub async fn wait_for_position(
        &self,
        tables: &[&str],
        position: i64,
        timeout: Duration,
    ) -> Result<bool, ProjectionError> {
        let txid: Option<i64> = sqlx::query_scalar("select txid::text::bigint from events where position = $1")
            .bind(position)
            .fetch_optional(self.pool())
            .await?;
        let Some(txid) = txid else { return Ok(true) };
        let target = LogPosition { txid, position };
        let names: Vec<String> = self
            .projectors
            .iter()
            .filter(|p| p.tables().iter().any(|t| tables.contains(t)))
            .map(|p| p.name().to_owned())
            .collect();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            let behind: i64 = sqlx::query_scalar(
                "select count(*) from unnest($1::text[]) as n(name)
                 left join consumer_checkpoints c on c.name = n.name
                 where c.name is null or (c.txid, c.position) < ($2::text::xid8, $3)",
            )
            .bind(&names)
            .bind(target.txid.to_string())
            .bind(target.position)
            .fetch_one(self.pool())
            .await?;
            if behind == 0 {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Rebuilds `name` from position 0 into fresh tables while the old ones keep serving, then
    /// swaps them in one transaction. `progress(done, total)` is called as it goes.
    pub async fn rebuild(
        &self,
        name: &str,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<u64, ProjectionError> {
        let projector = self.find(name).ok_or_else(|| ProjectionError::Other(format!("no projector {name}")))?;
        let types = Self::types_of(&*projector);
        let live = projector.tables();
        let shadow = Tables::shadow(live);
        let shadow_cp = format!("{name}#rebuild");

        // Fresh shadow tables shaped like the live ones, and a fresh shadow checkpoint. Their
        // secondary indexes are dropped now and built after the replay, one sorted pass each,
        // instead of being updated row by row (about half the replay's cost with four or five
        // indexes a table). Unique indexes and those behind constraints stay: `on conflict` and
        // the projectors' duplicate checks need them during the replay.
        let mut deferred: Vec<String> = Vec::new();
        {
            let mut tx = self.pool().begin().await?;
            for table in live {
                let s = shadow.get(table);
                sqlx::query(&format!("drop table if exists {s}")).execute(&mut *tx).await?;
                sqlx::query(&format!("create table {s} (like {table} including all)")).execute(&mut *tx).await?;
                let secondary: Vec<(String, String)> = sqlx::query_as(
                    "select i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) from pg_index i
                      where i.indrelid = $1::regclass and not i.indisunique
                        and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)",
                )
                .bind(s)
                .fetch_all(&mut *tx)
                .await?;
                for (index, definition) in secondary {
                    sqlx::query(&format!("drop index {index}")).execute(&mut *tx).await?;
                    deferred.push(definition);
                }
            }
            sqlx::query("delete from consumer_checkpoints where name = $1").bind(&shadow_cp).execute(&mut *tx).await?;
            sqlx::query("insert into consumer_checkpoints (name) values ($1)")
                .bind(&shadow_cp)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        let (total, _) = lag(self.pool(), LogPosition::START, Some(&types)).await?;
        let total = total as u64;
        let mut done = 0u64;
        progress(done, total);

        // Replay while the live projector keeps serving the old tables.
        let mut at = LogPosition::START;
        let mut pages = self.read_ahead(&*projector, at, None);
        while let Some(batch) = pages.recv().await {
            let batch = batch?;
            if batch.events.is_empty() && batch.checkpoint == at {
                break;
            }
            match self.apply_batch(&*projector, &shadow_cp, &shadow, at, &batch.events, batch.checkpoint).await? {
                Applied::Done(p) => at = p,
                Applied::Moved => {
                    return Err(ProjectionError::Other("another rebuild of this projector is running".into()))
                }
            }
            done += batch.events.len() as u64;
            progress(done, total.max(done));
        }

        // The secondary indexes, before the swap (the live tables keep serving meanwhile).
        for definition in &deferred {
            sqlx::query(definition).execute(self.pool()).await?;
        }

        // Swap: take the live checkpoint row (waits for an in-flight live batch, which holds it
        // from its first statement), then the live tables (waits for readers), apply what arrived
        // meanwhile, rename, and hand the shadow checkpoint to the live projector. A live batch
        // waiting on the row finds the checkpoint moved once this commits, and re-reads.
        let mut tx = self.pool().begin().await?;
        sqlx::query("select 1 from consumer_checkpoints where name = $1 for update")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        for table in live {
            sqlx::query(&format!("lock table {table} in access exclusive mode")).execute(&mut *tx).await?;
        }
        loop {
            let batch =
                self.store.read_filtered(at, self.config.batch_size, &types, projector.reads_metadata()).await?;
            if batch.events.is_empty() && batch.checkpoint == at {
                break;
            }
            if !batch.events.is_empty() {
                projector.apply(&mut tx, &shadow, &batch.events).await?;
            }
            done += batch.events.len() as u64;
            at = batch.checkpoint;
            if !batch.full {
                break;
            }
        }
        for table in live {
            let (_, bare) = split(table);
            let old = format!("{bare}__old");
            let (_, shadow_bare) = split(shadow.get(table));
            sqlx::query(&format!("alter table {table} rename to {old}")).execute(&mut *tx).await?;
            let (schema, _) = split(table);
            sqlx::query(&format!("alter table {schema}.{shadow_bare} rename to {bare}")).execute(&mut *tx).await?;
            sqlx::query(&format!("drop table {schema}.{old}")).execute(&mut *tx).await?;
        }
        sqlx::query(
            "insert into consumer_checkpoints (name, txid, position, status) values ($1, $2::text::xid8, $3, 'running')
             on conflict (name) do update set txid = excluded.txid, position = excluded.position, status = 'running',
                 failed_position = null, last_error = null, attempts = 0, updated_at = now()",
        )
        .bind(name)
        .bind(at.txid.to_string())
        .bind(at.position)
        .execute(&mut *tx)
        .await?;
        sqlx::query("delete from consumer_checkpoints where name = $1").bind(&shadow_cp).execute(&mut *tx).await?;
        tx.commit().await?;
        progress(done, total.max(done));
        self.store.wake().notify();
        Ok(done)
    }
}
