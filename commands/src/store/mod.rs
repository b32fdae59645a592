//! The event store: the contract every log backend honours, checked by one conformance suite.

pub mod postgres;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;
use uuid::Uuid;

/// A place in the global log: the writing transaction's id, then the position. Readers and
/// checkpoints compare the pair, in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct LogPosition {
    pub txid: i64,
    pub position: i64,
}

impl LogPosition {
    pub const START: LogPosition = LogPosition { txid: 0, position: 0 };
}

/// What the writer believes about a stream's version before appending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the version is.
    Any,
    /// The stream must not exist yet (reservations of unique keys use this).
    NoStream,
    /// The stream must exist, at any version.
    StreamExists,
    /// The stream must be exactly at this version (0 = does not exist).
    Exact(i64),
}

impl ExpectedVersion {
    pub fn admits(self, current: i64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current == 0,
            ExpectedVersion::StreamExists => current > 0,
            ExpectedVersion::Exact(v) => current == v,
        }
    }
}

/// An event to append; the store assigns its version, position, time and hash.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub payload: Value,
    pub metadata: Value,
}

/// The events to append to one stream, or (with no events) a check that the stream is still at
/// the version a decision read.
#[derive(Debug, Clone)]
pub struct StreamWrite {
    pub stream_id: String,
    pub stream_type: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

/// The idempotency key recorded in the same transaction as the append it guards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Keys are unique per caller (the actor), so two clients cannot collide.
    pub scope: String,
    pub key: String,
    pub command_name: String,
    /// Hash of the command's name and body: the same key with another command is refused.
    pub request_hash: String,
}

/// One all-or-nothing append: any number of streams, each with its own expected version.
#[derive(Debug, Clone, Default)]
pub struct AppendRequest {
    pub writes: Vec<StreamWrite>,
    pub idempotency: Option<IdempotencyKey>,
}

/// An event as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordedEvent {
    pub position: i64,
    pub txid: i64,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_type: String,
    pub version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
    #[serde(with = "hex_opt")]
    pub prev_hash: Option<Vec<u8>>,
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
}

impl RecordedEvent {
    pub fn log_position(&self) -> LogPosition {
        LogPosition { txid: self.txid, position: self.position }
    }
}

/// What an accepted append wrote.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Appended {
    pub events: Vec<RecordedEvent>,
    /// Each written stream with its new version, in request order.
    pub streams: Vec<(String, i64)>,
}

impl Appended {
    /// The log position of the last event: the caller's consistency token.
    pub fn last_position(&self) -> Option<LogPosition> {
        self.events.iter().map(RecordedEvent::log_position).max()
    }
}

/// Why an append was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// A stream was not at the expected version; nothing was written.
    #[error("stream {stream_id} is at version {actual}, expected {expected:?}")]
    Conflict { stream_id: String, expected: ExpectedVersion, actual: i64 },
    /// The idempotency key was already recorded (by a concurrent request); nothing was written.
    #[error("idempotency key {key} is already recorded")]
    DuplicateKey { key: String },
    /// The request itself is malformed (e.g. a payload PostgreSQL cannot store).
    #[error("invalid append: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An infrastructure failure of the store (not a refusal).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("backend: {0}")]
    Backend(String),
}

/// One page of the global log for a consumer.
#[derive(Debug, Clone)]
pub struct ReadBatch {
    pub events: Vec<RecordedEvent>,
    /// Where the consumer stands once it has handled `events`: past them and past every
    /// transaction known to be finished, so filtered and idle readers still move forward.
    pub checkpoint: LogPosition,
    /// Whether more events may be ready right away (the page was full).
    pub full: bool,
}

/// The recorded idempotency entry: the command it guarded and the events it wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    pub command_name: String,
    pub request_hash: String,
    pub events: Vec<RecordedEvent>,
}

/// The result of walking hash chains.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VerifyReport {
    pub streams: u64,
    pub events: u64,
    pub first_broken: Option<BrokenLink>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BrokenLink {
    pub stream_id: String,
    pub version: i64,
    pub position: i64,
    pub reason: String,
}

/// A folded state saved at a version, to avoid folding a long stream from its start.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub version: i64,
    pub state_version: i32,
    pub state: Value,
}

/// A stream to load for a decision: its snapshot (if one of `state_version` exists) and the
/// events after it.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    pub stream_id: String,
    pub state_version: i32,
}

#[derive(Debug, Clone, Default)]
pub struct LoadedStream {
    pub snapshot: Option<Snapshot>,
    pub events: Vec<RecordedEvent>,
}

/// The log backend contract. The PostgreSQL backend is the reference; any other (EventStoreDB /
/// KurrentDB) must pass `crate::conformance` unchanged.
pub trait EventStore: Send + Sync + 'static {
    /// Appends each request all-or-nothing. Requests are independent: one refused request does not
    /// fail the others (they may share one database transaction).
    fn append_batch(
        &self,
        requests: Vec<AppendRequest>,
    ) -> impl Future<Output = Result<Vec<Result<Appended, AppendError>>, StoreError>> + Send;

    fn append(&self, request: AppendRequest) -> impl Future<Output = Result<Appended, AppendError>> + Send {
        async move {
            let mut results = self.append_batch(vec![request]).await?;
            results.pop().expect("one result per request")
        }
    }

    /// Events of one stream with a version above `after_version`, in version order.
    fn read_stream(
        &self,
        stream_id: &str,
        after_version: i64,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Loads several streams at once (snapshot + later events), in request order. Backends
    /// without snapshots return the whole stream.
    fn load_streams(
        &self,
        requests: &[LoadRequest],
    ) -> impl Future<Output = Result<Vec<LoadedStream>, StoreError>> + Send {
        async move {
            let mut out = Vec::with_capacity(requests.len());
            for request in requests {
                out.push(LoadedStream { snapshot: None, events: self.read_stream(&request.stream_id, 0).await? });
            }
            Ok(out)
        }
    }

    /// Saves snapshots (stream id, stream type, snapshot); a newer saved snapshot is kept.
    fn save_snapshots(
        &self,
        snapshots: Vec<(String, String, Snapshot)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = snapshots;
        async { Ok(()) }
    }

    /// The current version of a stream (0 when it does not exist).
    fn stream_version(&self, stream_id: &str) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Up to `limit` committed events after `after`, in log order, optionally only of some types.
    /// Never skips an event whose transaction commits later.
    fn read_all(
        &self,
        after: LogPosition,
        limit: i64,
        event_types: Option<&[String]>,
    ) -> impl Future<Output = Result<ReadBatch, StoreError>> + Send;

    /// Every committed event after `after`, in log order, as it is written; never ends by itself.
    fn subscribe(&self, after: LogPosition) -> BoxStream<'static, Result<RecordedEvent, StoreError>>;

    fn lookup_idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;

    /// Walks the hash chain of one stream.
    fn verify_stream(&self, stream_id: &str) -> impl Future<Output = Result<VerifyReport, StoreError>> + Send;

    /// Walks every stream's hash chain and names the first broken link.
    fn verify_all(&self) -> impl Future<Output = Result<VerifyReport, StoreError>> + Send;
}

/// Checks one stream's events (in version order) against their hashes.
pub fn verify_chain(events: &[RecordedEvent]) -> Result<(), BrokenLink> {
    let mut prev: Option<&[u8]> = None;
    for (i, e) in events.iter().enumerate() {
        let broken = |reason: String| BrokenLink {
            stream_id: e.stream_id.clone(),
            version: e.version,
            position: e.position,
            reason,
        };
        if e.version != i as i64 + 1 {
            return Err(broken(format!("version {} follows version {}", e.version, i)));
        }
        if e.prev_hash.as_deref() != prev {
            return Err(broken("previous-hash link does not match the previous event".into()));
        }
        let expected = crate::canonical::event_hash(
            prev,
            &crate::canonical::HashedContent {
                stream_id: &e.stream_id,
                version: e.version,
                event_type: &e.event_type,
                schema_version: e.schema_version,
                payload: &e.payload,
                metadata: &e.metadata,
                recorded_at: e.recorded_at,
            },
        );
        if expected != e.hash {
            return Err(broken("content does not match its hash".into()));
        }
        prev = Some(&e.hash);
    }
    Ok(())
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod hex_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&hex::encode(v)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?.map(|h| hex::decode(h).map_err(serde::de::Error::custom)).transpose()
    }
}
