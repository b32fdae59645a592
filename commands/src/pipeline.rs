//! The command pipeline: load, fold, decide, append with the expected version.
//!
//! Commands are routed by stream id to one of N shard workers, so within a process every stream
//! has exactly one writer: commands to one stream queue instead of racing, and a hot stream costs
//! no conflicts here. Each worker takes what is queued (up to a batch), loads the streams it does
//! not hold in its state cache in one query, decides the commands in order (a later command sees
//! the state after the earlier ones), and appends the whole batch in one transaction where each
//! command stays all-or-nothing. A version conflict (another process wrote the stream) drops the
//! cached state and re-runs load + decide, a bounded number of times.

use crate::context::CommandContext;
use crate::metrics::METRICS;
use crate::store::{
    AppendError, AppendRequest, Appended, EventStore, ExpectedVersion, IdempotencyKey, LoadRequest, LoadedStream,
    NewEvent, RecordedEvent, Snapshot, StoreError, StreamWrite,
};
use crate::upcast::Upcasters;
use domain::kernel::{decode_event, encode_event, Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct BusConfig {
    /// Writer tasks; each owns the streams that hash to it.
    pub shards: usize,
    /// Commands one worker decides and appends in one transaction at most.
    pub max_batch: usize,
    /// Load + decide + append attempts before a conflicting command is answered 409.
    pub max_attempts: u32,
    /// Folded states each worker keeps between commands.
    pub cache_capacity: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self { shards: 2, max_batch: 128, max_attempts: 5, cache_capacity: 20_000 }
    }
}

/// What an accepted command wrote: the client's answer and consistency token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommandResult {
    pub stream: String,
    pub version: i64,
    /// Global log position of the last event written (none when the command changed nothing).
    pub position: Option<i64>,
    pub events: Vec<RecordedEvent>,
    /// True when this is the recorded answer to an earlier request with the same idempotency key.
    pub replayed: bool,
}

impl CommandResult {
    fn from_events(stream: &str, events: Vec<RecordedEvent>, replayed: bool) -> Self {
        let version = events.iter().filter(|e| e.stream_id == stream).map(|e| e.version).max().unwrap_or(0);
        let position = events.iter().map(|e| e.position).max();
        Self { stream: stream.to_owned(), version, position, events, replayed }
    }
}

/// Why a command was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E> {
    /// The aggregate refused the command: a rule of the domain.
    #[error(transparent)]
    Rejected(E),
    /// The stream kept changing under the command (or a stream it checks moved).
    #[error("stream {stream_id} changed concurrently; gave up after {attempts} attempts")]
    Conflict { stream_id: String, attempts: u32 },
    /// `If-Match` named another version than the stream's.
    #[error("stream is at version {actual}, expected {expected}")]
    VersionMismatch { expected: i64, actual: i64 },
    /// The idempotency key was used before for a different command.
    #[error("idempotency key was used for a different request")]
    IdempotencyMismatch,
    /// The stream id names a stream of another type.
    #[error("stream {stream_id} is a {actual}, not a {expected}")]
    WrongStreamType { stream_id: String, expected: &'static str, actual: String },
    /// Stored events do not decode into the aggregate's events (a missing upcaster).
    #[error("stream {stream_id} does not decode: {message}")]
    Corrupt { stream_id: String, message: String },
    /// The events cannot be stored as they are.
    #[error("invalid: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the command pipeline is shut down")]
    Unavailable,
}

impl<E> ExecuteError<E> {
    /// Turns the rule error type into another (for handlers that wrap several aggregates).
    pub fn map_rejection<F>(self, f: impl FnOnce(E) -> F) -> ExecuteError<F> {
        match self {
            ExecuteError::Rejected(e) => ExecuteError::Rejected(f(e)),
            ExecuteError::Conflict { stream_id, attempts } => ExecuteError::Conflict { stream_id, attempts },
            ExecuteError::IdempotencyMismatch => ExecuteError::IdempotencyMismatch,
            ExecuteError::VersionMismatch { expected, actual } => ExecuteError::VersionMismatch { expected, actual },
            ExecuteError::WrongStreamType { stream_id, expected, actual } => {
                ExecuteError::WrongStreamType { stream_id, expected, actual }
            }
            ExecuteError::Corrupt { stream_id, message } => ExecuteError::Corrupt { stream_id, message },
            ExecuteError::Invalid(m) => ExecuteError::Invalid(m),
            ExecuteError::Store(e) => ExecuteError::Store(e),
            ExecuteError::Unavailable => ExecuteError::Unavailable,
        }
    }
}

/// Writes that ride along with a command's own events, computed from the state before the
/// decision and the decided events: unique-key reservations (`NoStream`), or checks that a stream
/// the decision read is still at that version (a write with no events).
pub type ExtraWrites<A> = Box<dyn Fn(&A, &[<A as Aggregate>::Event]) -> Vec<StreamWrite> + Send + Sync>;

type AnyState = Box<dyn Any + Send + Sync>;

enum Decision {
    Rejected,
    NoChange,
    /// `If-Match` did not hold.
    Mismatch {
        expected: i64,
    },
    Write {
        request: AppendRequest,
        next: AnyState,
        count: i64,
    },
}

#[derive(Clone)]
enum Failure {
    Conflict { stream_id: String },
    WrongType { actual: String },
    Corrupt(String),
    Invalid(String),
    Store(String),
    Mismatch,
    VersionMismatch { expected: i64, actual: i64 },
}

/// A queued command with its aggregate type erased, so one worker serves every aggregate.
trait Job: Send + Sync {
    fn stream_id(&self) -> &str;
    fn stream_type(&self) -> &'static str;
    fn state_type(&self) -> TypeId;
    fn state_version(&self) -> i32;
    fn snapshot_every(&self) -> i64;
    fn idempotency(&self) -> Option<&IdempotencyKey>;
    /// Folds a loaded stream. `Ok(None)`: the snapshot no longer fits; load from the start.
    fn fold(&self, loaded: LoadedStream, upcasters: &Upcasters) -> Result<Option<(i64, AnyState)>, Failure>;
    fn snapshot(&self, state: &AnyState) -> Value;
    fn decide(&mut self, state: &AnyState, version: i64) -> Result<Decision, Failure>;
    fn attempts(&mut self) -> &mut u32;
    /// Set when the job must look its idempotency key up again before deciding (a request with
    /// the same key was written meanwhile).
    fn recheck_key(&mut self) -> &mut bool;
    /// Whether a refusal was already checked against the idempotency record.
    fn refusal_checked(&mut self) -> &mut bool;
    fn succeed(self: Box<Self>, result: CommandResult);
    fn reject(self: Box<Self>);
    fn fail(self: Box<Self>, failure: Failure, attempts: u32);
}

struct TypedJob<A: Aggregate> {
    stream_id: String,
    command: A::Command,
    ctx: CommandContext,
    extra: Option<ExtraWrites<A>>,
    rejection: Option<A::Error>,
    attempts: u32,
    recheck_key: bool,
    refusal_checked: bool,
    started: Instant,
    reply: oneshot::Sender<Result<CommandResult, ExecuteError<A::Error>>>,
}

/// Folds stored events (upcast first) onto `state`.
pub fn fold_events<A: Aggregate>(
    mut state: A,
    events: &mut [RecordedEvent],
    upcasters: &Upcasters,
) -> Result<A, String> {
    for event in events.iter_mut() {
        upcasters.upcast(event);
        let decoded: A::Event = decode_event(&event.event_type, &event.payload).map_err(|e| e.to_string())?;
        state.evolve(&decoded);
    }
    Ok(state)
}

impl<A: Aggregate> Job for TypedJob<A> {
    fn stream_id(&self) -> &str {
        &self.stream_id
    }
    fn stream_type(&self) -> &'static str {
        A::STREAM_TYPE
    }
    fn state_type(&self) -> TypeId {
        TypeId::of::<A>()
    }
    fn state_version(&self) -> i32 {
        A::STATE_VERSION
    }
    fn snapshot_every(&self) -> i64 {
        A::SNAPSHOT_EVERY
    }
    fn idempotency(&self) -> Option<&IdempotencyKey> {
        self.ctx.idempotency.as_ref()
    }
    fn fold(&self, mut loaded: LoadedStream, upcasters: &Upcasters) -> Result<Option<(i64, AnyState)>, Failure> {
        if let Some(first) = loaded.events.first() {
            if first.stream_type != A::STREAM_TYPE {
                return Err(Failure::WrongType { actual: first.stream_type.clone() });
            }
        }
        let (base, base_version) = match loaded.snapshot {
            Some(snap) => match serde_json::from_value::<A>(snap.state) {
                Ok(state) => (state, snap.version),
                // The state's shape changed without a version bump: ignore the snapshot.
                Err(_) => return Ok(None),
            },
            None => (A::default(), 0),
        };
        let version = loaded.events.last().map(|e| e.version).unwrap_or(base_version);
        let state = fold_events(base, &mut loaded.events, upcasters).map_err(Failure::Corrupt)?;
        Ok(Some((version, Box::new(state))))
    }

    fn snapshot(&self, state: &AnyState) -> Value {
        serde_json::to_value(state.downcast_ref::<A>().expect("state type checked")).expect("state serialises")
    }

    fn decide(&mut self, state: &AnyState, version: i64) -> Result<Decision, Failure> {
        let state: &A = state.downcast_ref().expect("state type checked");
        if let Some(expected) = self.ctx.expected_version {
            if expected != version {
                return Ok(Decision::Mismatch { expected });
            }
        }
        let events = match state.decide(&self.command) {
            Ok(events) => events,
            Err(error) => {
                self.rejection = Some(error);
                return Ok(Decision::Rejected);
            }
        };
        if events.is_empty() {
            return Ok(Decision::NoChange);
        }
        let mut next = state.clone();
        let metadata = self.ctx.metadata();
        let mut new_events = Vec::with_capacity(events.len());
        for event in &events {
            next.evolve(event);
            let (event_type, payload) = encode_event(event).map_err(|e| Failure::Invalid(e.to_string()))?;
            new_events.push(NewEvent {
                event_id: Uuid::now_v7(),
                schema_version: A::Event::schema_version(&event_type),
                event_type,
                payload,
                metadata: metadata.clone(),
            });
        }
        let mut writes = vec![StreamWrite {
            stream_id: self.stream_id.clone(),
            stream_type: A::STREAM_TYPE.to_owned(),
            expected: ExpectedVersion::Exact(version),
            events: new_events,
        }];
        if let Some(extra) = &self.extra {
            writes.extend(extra(state, &events));
        }
        Ok(Decision::Write {
            request: AppendRequest { writes, idempotency: self.ctx.idempotency.clone() },
            next: Box::new(next),
            count: events.len() as i64,
        })
    }

    fn attempts(&mut self) -> &mut u32 {
        &mut self.attempts
    }

    fn recheck_key(&mut self) -> &mut bool {
        &mut self.recheck_key
    }

    fn refusal_checked(&mut self) -> &mut bool {
        &mut self.refusal_checked
    }

    fn succeed(self: Box<Self>, result: CommandResult) {
        observe(&self.ctx.command_name, "accepted", self.started);
        let _ = self.reply.send(Ok(result));
    }

    fn reject(self: Box<Self>) {
        observe(&self.ctx.command_name, "rejected", self.started);
        let error = self.rejection.expect("rejected jobs hold their error");
        let _ = self.reply.send(Err(ExecuteError::Rejected(error)));
    }

    fn fail(self: Box<Self>, failure: Failure, attempts: u32) {
        let error = match failure {
            Failure::Conflict { stream_id } => ExecuteError::Conflict { stream_id, attempts },
            Failure::WrongType { actual } => {
                ExecuteError::WrongStreamType { stream_id: self.stream_id.clone(), expected: A::STREAM_TYPE, actual }
            }
            Failure::Corrupt(message) => ExecuteError::Corrupt { stream_id: self.stream_id.clone(), message },
            Failure::Invalid(m) => ExecuteError::Invalid(m),
            Failure::Store(e) => ExecuteError::Store(StoreError::Backend(e)),
            Failure::Mismatch => ExecuteError::IdempotencyMismatch,
            Failure::VersionMismatch { expected, actual } => ExecuteError::VersionMismatch { expected, actual },
        };
        let outcome = if matches!(error, ExecuteError::Conflict { .. }) { "conflict" } else { "failed" };
        observe(&self.ctx.command_name, outcome, self.started);
        let _ = self.reply.send(Err(error));
    }
}

fn observe(command: &str, outcome: &str, started: Instant) {
    METRICS.inc("commands_total", &[("command", command), ("outcome", outcome)], 1.0);
    METRICS.observe("command_duration_seconds", &[("command", command)], started.elapsed().as_secs_f64());
}

struct CacheEntry {
    state_type: TypeId,
    version: i64,
    state: AnyState,
}

/// Sends commands to the shard workers.
pub struct CommandBus<S: EventStore> {
    store: Arc<S>,
    upcasters: Arc<Upcasters>,
    shards: Vec<mpsc::Sender<Box<dyn Job>>>,
    config: BusConfig,
}

impl<S: EventStore> Clone for CommandBus<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            upcasters: self.upcasters.clone(),
            shards: self.shards.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S: EventStore> CommandBus<S> {
    /// Starts the shard workers. They stop once every clone of the bus is dropped and their
    /// queues are drained, so in-flight commands finish on shutdown.
    pub fn start(store: Arc<S>, upcasters: Arc<Upcasters>, config: BusConfig) -> Self {
        METRICS.describe(
            "commands_total",
            "counter",
            "Commands by name and outcome (accepted, rejected, conflict, failed).",
        );
        METRICS.describe("command_duration_seconds", "histogram", "Time from queueing a command to its answer.");
        METRICS.describe(
            "command_conflicts_total",
            "counter",
            "Version conflicts met while appending (each re-runs load + decide).",
        );
        let mut shards = Vec::with_capacity(config.shards);
        for _ in 0..config.shards.max(1) {
            let (tx, rx) = mpsc::channel::<Box<dyn Job>>(4096);
            let worker = Worker {
                store: store.clone(),
                upcasters: upcasters.clone(),
                cache: HashMap::new(),
                config: config.clone(),
            };
            tokio::spawn(worker.run(rx));
            shards.push(tx);
        }
        Self { store, upcasters, shards, config }
    }

    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    pub fn upcasters(&self) -> &Arc<Upcasters> {
        &self.upcasters
    }

    pub fn config(&self) -> &BusConfig {
        &self.config
    }

    /// Runs `command` against the aggregate in `stream_id`.
    pub async fn execute<A: Aggregate>(
        &self,
        stream_id: impl Into<String>,
        command: A::Command,
        ctx: CommandContext,
    ) -> Result<CommandResult, ExecuteError<A::Error>> {
        self.execute_with::<A>(stream_id, command, ctx, None).await
    }

    /// Like `execute`, with writes to other streams appended in the same transaction.
    pub async fn execute_with<A: Aggregate>(
        &self,
        stream_id: impl Into<String>,
        command: A::Command,
        ctx: CommandContext,
        extra: Option<ExtraWrites<A>>,
    ) -> Result<CommandResult, ExecuteError<A::Error>> {
        let stream_id = stream_id.into();
        if let Some(key) = &ctx.idempotency {
            if let Some(found) = replay_recorded(&*self.store, key, &stream_id).await? {
                return found;
            }
        }
        let (reply, answer) = oneshot::channel();
        let job = TypedJob::<A> {
            stream_id,
            command,
            ctx,
            extra,
            rejection: None,
            attempts: 0,
            recheck_key: false,
            refusal_checked: false,
            started: Instant::now(),
            reply,
        };
        let shard = shard_of(&job.stream_id, self.shards.len());
        self.shards[shard].send(Box::new(job)).await.map_err(|_| ExecuteError::Unavailable)?;
        answer.await.map_err(|_| ExecuteError::Unavailable)?
    }

    /// The current state of an aggregate, read from the store (not from a worker's cache).
    pub async fn load<A: Aggregate>(&self, stream_id: &str) -> Result<(A, i64), ExecuteError<A::Error>> {
        let loaded = self
            .store
            .load_streams(&[LoadRequest { stream_id: stream_id.to_owned(), state_version: A::STATE_VERSION }])
            .await?
            .pop()
            .unwrap_or_default();
        let mut loaded = loaded;
        if let Some(first) = loaded.events.first() {
            if first.stream_type != A::STREAM_TYPE {
                return Err(ExecuteError::WrongStreamType {
                    stream_id: stream_id.to_owned(),
                    expected: A::STREAM_TYPE,
                    actual: first.stream_type.clone(),
                });
            }
        }
        let (base, base_version) = match loaded
            .snapshot
            .take()
            .and_then(|s| serde_json::from_value::<A>(s.state).ok().map(|a| (a, s.version)))
        {
            Some(found) => found,
            None => {
                loaded.events = self.store.read_stream(stream_id, 0).await?;
                (A::default(), 0)
            }
        };
        let version = loaded.events.last().map(|e| e.version).unwrap_or(base_version);
        let state = fold_events(base, &mut loaded.events, &self.upcasters)
            .map_err(|message| ExecuteError::Corrupt { stream_id: stream_id.to_owned(), message })?;
        Ok((state, version))
    }
}

/// The recorded answer for an idempotency key: `Some(Ok)` when the same request was accepted
/// before, `Some(Err(mismatch))` when the key was used for another request, `None` when unused.
pub async fn replay_recorded<S: EventStore, E>(
    store: &S,
    key: &IdempotencyKey,
    stream_id: &str,
) -> Result<Option<Result<CommandResult, ExecuteError<E>>>, StoreError> {
    let Some(record) = store.lookup_idempotency(&key.scope, &key.key).await? else { return Ok(None) };
    if record.request_hash != key.request_hash || record.command_name != key.command_name {
        return Ok(Some(Err(ExecuteError::IdempotencyMismatch)));
    }
    METRICS.inc("idempotent_replays_total", &[("command", &key.command_name)], 1.0);
    Ok(Some(Ok(CommandResult::from_events(stream_id, record.events, true))))
}

fn shard_of(stream_id: &str, shards: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    stream_id.hash(&mut h);
    (h.finish() % shards as u64) as usize
}

struct Worker<S: EventStore> {
    store: Arc<S>,
    upcasters: Arc<Upcasters>,
    cache: HashMap<String, CacheEntry>,
    config: BusConfig,
}

impl<S: EventStore> Worker<S> {
    async fn run(mut self, mut rx: mpsc::Receiver<Box<dyn Job>>) {
        let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(self.config.max_batch);
        while rx.recv_many(&mut batch, self.config.max_batch).await > 0 {
            let jobs = std::mem::take(&mut batch);
            self.process(jobs).await;
        }
    }

    async fn process(&mut self, mut jobs: Vec<Box<dyn Job>>) {
        while !jobs.is_empty() {
            jobs = self.round(jobs).await;
        }
    }

    /// Loads what is missing, decides every job, appends; returns the jobs to run again.
    async fn round(&mut self, jobs: Vec<Box<dyn Job>>) -> Vec<Box<dyn Job>> {
        let jobs = self.recheck_keys(jobs).await;
        let (mut jobs, fresh) = self.load_missing(jobs).await;
        if self.cache.len() > self.config.cache_capacity {
            // Crude but bounded: start over rather than track recency on the hot path.
            let keep: std::collections::HashSet<&str> = jobs.iter().map(|j| j.stream_id()).collect();
            self.cache.retain(|k, _| keep.contains(k.as_str()));
        }

        // Decide in arrival order against a working copy of each stream's state.
        let mut writing: Vec<(Box<dyn Job>, String)> = Vec::new();
        let mut requests: Vec<AppendRequest> = Vec::new();
        let mut pending_states: HashMap<String, (i64, AnyState)> = HashMap::new();
        let mut retry: Vec<Box<dyn Job>> = Vec::new();
        let mut evicted: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut keys: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
        for mut job in jobs.drain(..) {
            let stream = job.stream_id().to_owned();
            if evicted.contains(&stream) {
                retry.push(job);
                continue;
            }
            if let Some(key) = job.idempotency() {
                if !keys.insert((key.scope.clone(), key.key.clone())) {
                    // The same key is already in this batch: answer from its record next round.
                    *job.recheck_key() = true;
                    retry.push(job);
                    continue;
                }
            }
            let (version, decision) = {
                let (version, state_ref): (i64, &AnyState) = match pending_states.get(&stream) {
                    Some((v, s)) => (*v, s),
                    None => {
                        let entry = self.cache.get(&stream).expect("loaded above");
                        (entry.version, &entry.state)
                    }
                };
                (version, job.decide(state_ref, version))
            };
            match decision {
                // An answer that writes nothing gets no version check from the store: when it
                // was decided on a cached state (another process may have written since), decide
                // again on a fresh load before giving it.
                Ok(Decision::Rejected | Decision::NoChange | Decision::Mismatch { .. }) if !fresh.contains(&stream) => {
                    evicted.insert(stream.clone());
                    self.cache.remove(&stream);
                    retry.push(job);
                }
                // A keyed command refused now may be the duplicate of one accepted a moment ago
                // (both passed the key lookup): its answer is the first one's, not a refusal.
                Ok(Decision::Rejected) if job.idempotency().is_some() && !*job.refusal_checked() => {
                    *job.refusal_checked() = true;
                    *job.recheck_key() = true;
                    retry.push(job);
                }
                Ok(Decision::Rejected) => job.reject(),
                Ok(Decision::Mismatch { expected }) => {
                    job.fail(Failure::VersionMismatch { expected, actual: version }, 1)
                }
                Ok(Decision::NoChange) => job.succeed(CommandResult {
                    stream: stream.clone(),
                    version,
                    position: None,
                    events: vec![],
                    replayed: false,
                }),
                Ok(Decision::Write { request, next, count }) => {
                    pending_states.insert(stream.clone(), (version + count, next));
                    requests.push(request);
                    writing.push((job, stream));
                }
                Err(failure) => {
                    let attempts = *job.attempts() + 1;
                    job.fail(failure, attempts)
                }
            }
        }
        if requests.is_empty() {
            return retry;
        }

        let results = match self.store.append_batch(requests).await {
            Ok(results) => results,
            Err(error) => {
                tracing::error!(%error, "append failed");
                let message = error.to_string();
                for (job, stream) in writing {
                    self.cache.remove(&stream);
                    job.fail(Failure::Store(message.clone()), 1);
                }
                return retry;
            }
        };

        let mut broken: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut snapshots_due: HashMap<String, (&'static str, i64)> = HashMap::new();
        let mut replies: Vec<(Box<dyn Job>, Result<Appended, AppendError>)> = Vec::new();
        for ((job, stream), result) in writing.into_iter().zip(results) {
            if result.is_err() {
                broken.insert(stream.clone());
            } else if let Ok(appended) = &result {
                let before =
                    appended.events.iter().filter(|e| e.stream_id == stream).map(|e| e.version).min().unwrap_or(1) - 1;
                let after =
                    appended.events.iter().filter(|e| e.stream_id == stream).map(|e| e.version).max().unwrap_or(0);
                let every = job.snapshot_every().max(1);
                if before / every != after / every {
                    snapshots_due.insert(stream.clone(), (job.stream_type(), job.state_version() as i64));
                }
            }
            replies.push((job, result));
        }
        // Streams written cleanly move to their new state; the others are reloaded next time.
        for (stream, (version, state)) in pending_states {
            if broken.contains(&stream) {
                self.cache.remove(&stream);
            } else if let Some(entry) = self.cache.get_mut(&stream) {
                entry.version = version;
                entry.state = state;
            }
        }
        let mut snapshot_rows = Vec::new();
        for (job, result) in replies {
            let stream = job.stream_id().to_owned();
            match result {
                Ok(appended) => {
                    if let (Some((stream_type, state_version)), Some(entry)) =
                        (snapshots_due.remove(&stream), self.cache.get(&stream))
                    {
                        snapshot_rows.push((
                            stream.clone(),
                            stream_type.to_owned(),
                            Snapshot {
                                version: entry.version,
                                state_version: state_version as i32,
                                state: job.snapshot(&entry.state),
                            },
                        ));
                    }
                    let result = CommandResult::from_events(&stream, appended.events, false);
                    job.succeed(result)
                }
                Err(AppendError::Conflict { stream_id, .. }) => {
                    METRICS.inc("command_conflicts_total", &[], 1.0);
                    let mut job = job;
                    *job.attempts() += 1;
                    let attempts = *job.attempts();
                    if stream_id == stream && attempts < self.config.max_attempts {
                        *job.recheck_key() = job.idempotency().is_some();
                        retry.push(job);
                    } else {
                        job.fail(Failure::Conflict { stream_id }, attempts);
                    }
                }
                Err(AppendError::DuplicateKey { .. }) => {
                    // A request with the same key won the race: answer with what it recorded.
                    let key = job.idempotency().cloned().expect("duplicate keys come from keyed jobs");
                    match replay_recorded::<S, ()>(&self.store, &key, &stream).await {
                        Ok(Some(Ok(result))) => job.succeed(result),
                        Ok(_) => job.fail(Failure::Mismatch, 1),
                        Err(e) => job.fail(Failure::Store(e.to_string()), 1),
                    }
                }
                Err(AppendError::Invalid(m)) => job.fail(Failure::Invalid(m), 1),
                Err(AppendError::Store(e)) => job.fail(Failure::Store(e.to_string()), 1),
            }
        }
        if !snapshot_rows.is_empty() {
            if let Err(error) = self.store.save_snapshots(snapshot_rows).await {
                tracing::warn!(%error, "snapshot not saved (it is only a cache)");
            }
        }
        retry
    }

    /// Answers jobs whose idempotency key was recorded meanwhile; returns the others.
    async fn recheck_keys(&mut self, jobs: Vec<Box<dyn Job>>) -> Vec<Box<dyn Job>> {
        let mut out = Vec::with_capacity(jobs.len());
        for mut job in jobs {
            if !std::mem::take(job.recheck_key()) {
                out.push(job);
                continue;
            }
            let key = job.idempotency().cloned().expect("only keyed jobs are rechecked");
            let stream = job.stream_id().to_owned();
            match replay_recorded::<S, ()>(&self.store, &key, &stream).await {
                Ok(Some(Ok(result))) => job.succeed(result),
                Ok(Some(Err(_))) => job.fail(Failure::Mismatch, 1),
                Ok(None) => out.push(job),
                Err(e) => job.fail(Failure::Store(e.to_string()), 1),
            }
        }
        out
    }

    /// Makes sure every job's stream is in the cache with the job's state type; also returns the
    /// streams loaded from the store just now.
    async fn load_missing(
        &mut self,
        jobs: Vec<Box<dyn Job>>,
    ) -> (Vec<Box<dyn Job>>, std::collections::HashSet<String>) {
        let mut to_load: Vec<LoadRequest> = Vec::new();
        let mut loader_index: HashMap<String, usize> = HashMap::new();
        for (i, job) in jobs.iter().enumerate() {
            let fits = self.cache.get(job.stream_id()).map(|e| e.state_type == job.state_type()).unwrap_or(false);
            if !fits && !loader_index.contains_key(job.stream_id()) {
                loader_index.insert(job.stream_id().to_owned(), i);
                to_load.push(LoadRequest { stream_id: job.stream_id().to_owned(), state_version: job.state_version() });
            }
        }
        let mut failed: HashMap<String, Failure> = HashMap::new();
        if !to_load.is_empty() {
            match self.store.load_streams(&to_load).await {
                Ok(loaded) => {
                    for (request, stream) in to_load.iter().zip(loaded) {
                        let job = &jobs[loader_index[&request.stream_id]];
                        let folded = match job.fold(stream, &self.upcasters) {
                            Ok(Some(folded)) => Ok(folded),
                            Ok(None) => match self.store.read_stream(&request.stream_id, 0).await {
                                Ok(events) => job
                                    .fold(LoadedStream { snapshot: None, events }, &self.upcasters)
                                    .map(|f| f.expect("no snapshot to reject")),
                                Err(e) => Err(Failure::Store(e.to_string())),
                            },
                            Err(f) => Err(f),
                        };
                        match folded {
                            Ok((version, state)) => {
                                self.cache.insert(
                                    request.stream_id.clone(),
                                    CacheEntry { state_type: job.state_type(), version, state },
                                );
                            }
                            Err(failure) => {
                                self.cache.remove(&request.stream_id);
                                failed.insert(request.stream_id.clone(), failure);
                            }
                        }
                    }
                }
                Err(error) => {
                    for request in &to_load {
                        failed.insert(request.stream_id.clone(), Failure::Store(error.to_string()));
                    }
                }
            }
        }
        let mut ready = Vec::with_capacity(jobs.len());
        for job in jobs {
            let fits = self.cache.get(job.stream_id()).map(|e| e.state_type == job.state_type());
            match (fits, failed.get(job.stream_id())) {
                (Some(true), _) => ready.push(job),
                (_, Some(failure)) => job.fail(failure.clone(), 1),
                _ => {
                    // Another job type folded this stream first: the stream is not this type.
                    let actual =
                        self.cache.get(job.stream_id()).map(|_| "another aggregate".to_owned()).unwrap_or_default();
                    job.fail(Failure::WrongType { actual }, 1)
                }
            }
        }
        let fresh = to_load.into_iter().map(|r| r.stream_id).filter(|id| !failed.contains_key(id)).collect();
        (ready, fresh)
    }
}

/// Retries a whole preparation + command when a stream it only checked moved (a conflict the
/// worker cannot resolve by reloading its own stream), up to `attempts` times.
pub async fn retry_on_conflict<T, E, F, Fut>(attempts: u32, mut run: F) -> Result<T, ExecuteError<E>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ExecuteError<E>>>,
{
    let mut tried = 0;
    loop {
        tried += 1;
        match run().await {
            Err(ExecuteError::Conflict { .. }) if tried < attempts => continue,
            Err(ExecuteError::Conflict { stream_id, .. }) => {
                return Err(ExecuteError::Conflict { stream_id, attempts: tried })
            }
            other => return other,
        }
    }
}
