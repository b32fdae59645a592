//! The PostgreSQL event log (reference backend).
//!
//! An append is one call of the server-side function `es_append` (migration
//! `20261121000005_append_function.sql`), in one autocommit transaction whatever its size: create
//! and lock the stream rows in stream-id order, check every expected version, chain versions and
//! hashes, insert the events, move the stream heads, record the idempotency keys.
//! One round trip, and stream locks are held only while the server works. Many requests share
//! that call (group commit); a request whose expected version fails is left out and reported,
//! the others are written. Canonical content digests are computed here, in Rust.

use super::*;
use crate::canonical::{content_digest, truncate_to_micros, HashedContent};
use futures::StreamExt;
use sqlx::postgres::{PgListener, PgPool, PgRow};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The channel other processes are told about appends on (see [`LogWake`]). The payload only
/// decides whom to wake and when to re-read; no reader relies on it for what it reads.
pub const NOTIFY_CHANNEL: &str = "es_events";

#[derive(Clone)]
pub struct PgEventStore {
    pool: PgPool,
    wake: LogWake,
}

const EVENT_COLUMNS: &str = "position, txid::text::bigint as txid, event_id, stream_id, stream_type, version, \
     event_type, schema_version, payload, metadata, recorded_at, prev_hash, hash";

fn event_from_row(row: &PgRow) -> Result<RecordedEvent, sqlx::Error> {
    Ok(RecordedEvent {
        position: row.try_get("position")?,
        txid: row.try_get("txid")?,
        event_id: row.try_get("event_id")?,
        stream_id: row.try_get("stream_id")?,
        stream_type: row.try_get("stream_type")?,
        version: row.try_get("version")?,
        event_type: row.try_get("event_type")?,
        schema_version: row.try_get("schema_version")?,
        payload: row.try_get("payload")?,
        // Null only from a read that left them out (`read_filtered` without metadata).
        metadata: row.try_get::<Option<Value>, _>("metadata")?.unwrap_or(Value::Null),
        recorded_at: row.try_get("recorded_at")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get::<Option<Vec<u8>>, _>("hash")?.unwrap_or_default(),
    })
}

impl PgEventStore {
    /// A store over `pool`. `wake` delivers append notifications to subscribers in this process.
    pub fn new(pool: PgPool, wake: LogWake) -> Self {
        Self { pool, wake }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn wake(&self) -> &LogWake {
        &self.wake
    }

    /// Runs the embedded migrations (event log and every read table).
    pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
        sqlx::migrate!("../migrations").run(pool).await
    }

    async fn append_in_one_transaction(
        &self,
        requests: &[AppendRequest],
    ) -> Result<Vec<Result<Appended, AppendError>>, sqlx::Error> {
        // Autocommit: the function's statement is the whole transaction (no BEGIN/COMMIT trips).
        let mut conn = self.pool.acquire().await?;
        Self::append_within(&mut conn, requests).await
    }

    /// Appends inside the caller's open transaction (which commits or rolls back). Positions and
    /// transaction ids in the result are final once that transaction commits.
    pub async fn append_within(
        conn: &mut sqlx::PgConnection,
        requests: &[AppendRequest],
    ) -> Result<Vec<Result<Appended, AppendError>>, sqlx::Error> {
        let recorded_at = truncate_to_micros(Utc::now());
        let mut results: Vec<Option<Result<Appended, AppendError>>> = (0..requests.len()).map(|_| None).collect();
        let mut call = CallColumns::default();
        // Request number (1-based, as sent) → index in `requests`.
        let mut sent: Vec<usize> = Vec::new();
        for (index, request) in requests.iter().enumerate() {
            let events = request.writes.iter().flat_map(|w| &w.events);
            if let Err(reason) = events.clone().try_for_each(|e| storable(&e.payload).and(storable(&e.metadata))) {
                results[index] = Some(Err(AppendError::Invalid(reason)));
                continue;
            }
            sent.push(index);
            call.push_request(sent.len() as i32, request, recorded_at);
        }
        if sent.is_empty() {
            return Ok(results.into_iter().map(|r| r.expect("every request answered")).collect());
        }
        let rows = sqlx::query(
            "select * from es_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                                     $14, $15, $16, $17, $18, $19, $20, $21)",
        )
        .bind(&call.w_request)
        .bind(&call.w_stream)
        .bind(&call.w_stream_type)
        .bind(&call.w_expected)
        .bind(&call.w_first)
        .bind(&call.w_count)
        .bind(&call.e_id)
        .bind(&call.e_stream)
        .bind(&call.e_stream_type)
        .bind(&call.e_type)
        .bind(&call.e_schema)
        .bind(&call.e_payload)
        .bind(&call.e_metadata)
        .bind(&call.e_digest)
        .bind(recorded_at)
        .bind(&call.k_request)
        .bind(&call.k_scope)
        .bind(&call.k_key)
        .bind(&call.k_command)
        .bind(&call.k_hash)
        .bind(&call.k_response)
        .fetch_all(&mut *conn)
        .await?;

        struct Written {
            version: i64,
            position: i64,
            txid: i64,
            prev_hash: Option<Vec<u8>>,
            hash: Vec<u8>,
        }
        let mut conflicts: HashMap<i32, (String, i64)> = HashMap::new();
        let mut written: HashMap<Uuid, Written> = HashMap::with_capacity(rows.len());
        for row in rows {
            if let Some(stream) = row.try_get::<Option<String>, _>("conflict_stream")? {
                conflicts.insert(row.try_get("request")?, (stream, row.try_get("actual")?));
                continue;
            }
            written.insert(
                row.try_get("event_id")?,
                Written {
                    version: row.try_get("version")?,
                    position: row.try_get("event_position")?,
                    txid: row.try_get("event_txid")?,
                    prev_hash: row.try_get("prev_hash")?,
                    hash: row.try_get("hash")?,
                },
            );
        }
        for (n, index) in sent.into_iter().enumerate() {
            let request = &requests[index];
            if let Some((stream_id, actual)) = conflicts.remove(&(n as i32 + 1)) {
                let expected = request
                    .writes
                    .iter()
                    .find(|w| w.stream_id == stream_id)
                    .map(|w| w.expected)
                    .unwrap_or(ExpectedVersion::Any);
                results[index] = Some(Err(AppendError::Conflict { stream_id, expected, actual }));
                continue;
            }
            let mut appended = Appended { events: Vec::new(), streams: Vec::new() };
            for write in &request.writes {
                for event in &write.events {
                    let w = written.remove(&event.event_id).ok_or_else(|| {
                        sqlx::Error::Protocol(format!("es_append did not report event {}", event.event_id))
                    })?;
                    appended.events.push(RecordedEvent {
                        position: w.position,
                        txid: w.txid,
                        event_id: event.event_id,
                        stream_id: write.stream_id.clone(),
                        stream_type: write.stream_type.clone(),
                        version: w.version,
                        event_type: event.event_type.clone(),
                        schema_version: event.schema_version,
                        payload: event.payload.clone(),
                        metadata: event.metadata.clone(),
                        recorded_at,
                        prev_hash: w.prev_hash,
                        hash: w.hash,
                    });
                }
                if let Some(last) = appended.events.iter().rev().find(|e| e.stream_id == write.stream_id) {
                    if !write.events.is_empty() {
                        appended.streams.push((write.stream_id.clone(), last.version));
                    }
                }
            }
            results[index] = Some(Ok(appended));
        }
        Ok(results.into_iter().map(|r| r.expect("every request answered")).collect())
    }
}

/// jsonb cannot hold the NUL character; refuse it before it fails a whole batch.
fn storable(value: &Value) -> Result<(), String> {
    match value {
        Value::String(s) if s.contains('\0') => Err("text may not contain the NUL character".into()),
        Value::Array(items) => items.iter().try_for_each(storable),
        Value::Object(map) => {
            map.iter().try_for_each(
                |(k, v)| if k.contains('\0') { Err("keys may not contain NUL".into()) } else { storable(v) },
            )
        }
        _ => Ok(()),
    }
}

/// The arguments of one `es_append` call, as parallel arrays (see the migration).
#[derive(Default)]
struct CallColumns {
    w_request: Vec<i32>,
    w_stream: Vec<String>,
    w_stream_type: Vec<String>,
    w_expected: Vec<i64>,
    w_first: Vec<i32>,
    w_count: Vec<i32>,
    e_id: Vec<Uuid>,
    e_stream: Vec<String>,
    e_stream_type: Vec<String>,
    e_type: Vec<String>,
    e_schema: Vec<i32>,
    e_payload: Vec<Value>,
    e_metadata: Vec<Value>,
    e_digest: Vec<Vec<u8>>,
    k_request: Vec<i32>,
    k_scope: Vec<String>,
    k_key: Vec<String>,
    k_command: Vec<String>,
    k_hash: Vec<String>,
    k_response: Vec<Value>,
}

impl CallColumns {
    fn push_request(&mut self, number: i32, request: &AppendRequest, recorded_at: DateTime<Utc>) {
        for write in &request.writes {
            self.w_request.push(number);
            self.w_stream.push(write.stream_id.clone());
            self.w_stream_type.push(write.stream_type.clone());
            self.w_expected.push(match write.expected {
                ExpectedVersion::Any => -1,
                ExpectedVersion::StreamExists => -2,
                ExpectedVersion::NoStream => 0,
                ExpectedVersion::Exact(v) => v,
            });
            self.w_first.push(self.e_id.len() as i32 + 1);
            self.w_count.push(write.events.len() as i32);
            for event in &write.events {
                let content = HashedContent {
                    stream_id: &write.stream_id,
                    version: 0, // not part of the digest: the chain adds it under the lock
                    event_type: &event.event_type,
                    schema_version: event.schema_version,
                    payload: &event.payload,
                    metadata: &event.metadata,
                    recorded_at,
                };
                self.e_id.push(event.event_id);
                self.e_stream.push(write.stream_id.clone());
                self.e_stream_type.push(write.stream_type.clone());
                self.e_type.push(event.event_type.clone());
                self.e_schema.push(event.schema_version);
                self.e_payload.push(event.payload.clone());
                self.e_metadata.push(event.metadata.clone());
                self.e_digest.push(content_digest(&content).to_vec());
            }
        }
        if let Some(key) = &request.idempotency {
            // The events are immutable, so their ids are enough to give the same answer again.
            let ids: Vec<Uuid> = request.writes.iter().flat_map(|w| &w.events).map(|e| e.event_id).collect();
            self.k_request.push(number);
            self.k_scope.push(key.scope.clone());
            self.k_key.push(key.key.clone());
            self.k_command.push(key.command_name.clone());
            self.k_hash.push(key.request_hash.clone());
            self.k_response.push(serde_json::json!({ "event_ids": ids }));
        }
    }
}

fn is_unique_violation(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => db.constraint().map(str::to_owned),
        _ => None,
    }
}

impl EventStore for PgEventStore {
    async fn append_batch(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<Result<Appended, AppendError>>, StoreError> {
        let results = match self.append_in_one_transaction(&requests).await {
            Ok(results) => results,
            Err(error) if requests.len() > 1 => {
                // One request broke the shared transaction (a key recorded concurrently, a deadlock
                // between batches): write each request on its own so only the culprit fails.
                tracing::debug!(%error, "batched append failed; appending one by one");
                let mut results = Vec::with_capacity(requests.len());
                for request in requests {
                    results.push(self.append_alone(request).await);
                }
                results
            }
            Err(error) => vec![Err(classify(error, &requests[0]))],
        };
        self.wake.announce(results.iter().flatten().flat_map(|a| &a.events));
        Ok(results)
    }

    async fn read_stream(&self, stream_id: &str, after_version: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "select {EVENT_COLUMNS} from events where stream_id = $1 and version > $2 order by version"
        ))
        .bind(stream_id)
        .bind(after_version)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(event_from_row).collect::<Result<_, _>>()?)
    }

    async fn load_streams(&self, requests: &[LoadRequest]) -> Result<Vec<LoadedStream>, StoreError> {
        let ids: Vec<&str> = requests.iter().map(|r| r.stream_id.as_str()).collect();
        let state_versions: Vec<i32> = requests.iter().map(|r| r.state_version).collect();
        let rows = sqlx::query(&format!(
            "select u.ord, sn.version as snap_version, sn.state_version as snap_state_version, sn.state as snap_state, e.*
             from unnest($1::text[], $2::int[]) with ordinality as u(id, sv, ord)
             left join snapshots sn on sn.stream_id = u.id and sn.state_version = u.sv
             left join lateral (
                 select {EVENT_COLUMNS} from events ev
                 where ev.stream_id = u.id and ev.version > coalesce(sn.version, 0) order by ev.version) e on true
             order by u.ord, e.version"
        ))
        .bind(&ids)
        .bind(&state_versions)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<LoadedStream> = vec![LoadedStream::default(); requests.len()];
        for row in &rows {
            let ord: i64 = row.try_get("ord")?;
            let slot = &mut out[(ord - 1) as usize];
            if slot.snapshot.is_none() {
                if let Some(version) = row.try_get::<Option<i64>, _>("snap_version")? {
                    slot.snapshot = Some(Snapshot {
                        version,
                        state_version: row.try_get("snap_state_version")?,
                        state: row.try_get("snap_state")?,
                    });
                }
            }
            if row.try_get::<Option<i64>, _>("position")?.is_some() {
                slot.events.push(event_from_row(row)?);
            }
        }
        Ok(out)
    }

    async fn save_snapshots(&self, snapshots: Vec<(String, String, Snapshot)>) -> Result<(), StoreError> {
        if snapshots.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::new();
        let mut types = Vec::new();
        let mut versions = Vec::new();
        let mut state_versions = Vec::new();
        let mut states = Vec::new();
        for (id, ty, snap) in snapshots {
            ids.push(id);
            types.push(ty);
            versions.push(snap.version);
            state_versions.push(snap.state_version);
            states.push(snap.state);
        }
        sqlx::query(
            "insert into snapshots (stream_id, stream_type, version, state_version, state)
             select * from unnest($1::text[], $2::text[], $3::bigint[], $4::int[], $5::jsonb[])
             on conflict (stream_id) do update
                 set version = excluded.version, state_version = excluded.state_version,
                     state = excluded.state, taken_at = now()
                 where snapshots.version < excluded.version or snapshots.state_version <> excluded.state_version",
        )
        .bind(&ids)
        .bind(&types)
        .bind(&versions)
        .bind(&state_versions)
        .bind(&states)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn stream_version(&self, stream_id: &str) -> Result<i64, StoreError> {
        let v: Option<i64> = sqlx::query_scalar("select version from streams where stream_id = $1")
            .bind(stream_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(v.unwrap_or(0))
    }

    async fn read_all(
        &self,
        after: LogPosition,
        limit: i64,
        event_types: Option<&[String]>,
    ) -> Result<ReadBatch, StoreError> {
        match event_types {
            None => self.read_all_unfiltered(after, limit).await,
            Some(types) => self.read_filtered(after, limit, types, true).await,
        }
    }

    fn subscribe(&self, after: LogPosition) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        let store = self.clone();
        let waiter = self.wake.waiter(None);
        let state = (store, after, std::collections::VecDeque::new(), waiter);
        futures::stream::unfold(state, |(store, mut at, mut buf, mut waiter)| async move {
            loop {
                if let Some(event) = buf.pop_front() {
                    return Some((Ok(event), (store, at, buf, waiter)));
                }
                let seen = waiter.seen();
                match store.read_all(at, 500, None).await {
                    Ok(batch) => {
                        at = batch.checkpoint;
                        if batch.events.is_empty() {
                            waiter.wait(seen, at.txid, Duration::from_millis(500)).await;
                        }
                        buf.extend(batch.events);
                    }
                    Err(e) => return Some((Err(e), (store, at, buf, waiter))),
                }
            }
        })
        .boxed()
    }

    async fn lookup_idempotency(&self, scope: &str, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query(
            "select command_name, request_hash, response from idempotency_keys where scope = $1 and key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let response: Value = row.try_get("response")?;
        let ids: Vec<Uuid> = serde_json::from_value(response["event_ids"].clone()).unwrap_or_default();
        let rows =
            sqlx::query(&format!("select {EVENT_COLUMNS} from events where event_id = any($1) order by position"))
                .bind(&ids)
                .fetch_all(&self.pool)
                .await?;
        Ok(Some(IdempotencyRecord {
            command_name: row.try_get("command_name")?,
            request_hash: row.try_get("request_hash")?,
            events: rows.iter().map(event_from_row).collect::<Result<_, _>>()?,
        }))
    }

    async fn verify_stream(&self, stream_id: &str) -> Result<VerifyReport, StoreError> {
        let events = self.read_stream(stream_id, 0).await?;
        let head: Option<(i64, Option<Vec<u8>>)> =
            sqlx::query_as("select version, last_hash from streams where stream_id = $1")
                .bind(stream_id)
                .fetch_optional(&self.pool)
                .await?;
        let mut report = VerifyReport { streams: 1, events: events.len() as u64, first_broken: None };
        report.first_broken = check_stream(&events, head);
        Ok(report)
    }

    async fn verify_all(&self) -> Result<VerifyReport, StoreError> {
        // Walk stream by stream in stream-id order, a page of streams at a time.
        let mut report = VerifyReport::default();
        let mut after = String::new();
        loop {
            let heads: Vec<(String, i64, Option<Vec<u8>>)> = sqlx::query_as(
                "select stream_id, version, last_hash from streams where stream_id > $1 order by stream_id limit 500",
            )
            .bind(&after)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = heads.last() else { break };
            after = last.0.clone();
            let ids: Vec<&str> = heads.iter().map(|h| h.0.as_str()).collect();
            let rows = sqlx::query(&format!(
                "select {EVENT_COLUMNS} from events where stream_id = any($1) order by stream_id, version"
            ))
            .bind(&ids)
            .fetch_all(&self.pool)
            .await?;
            let events: Vec<RecordedEvent> = rows.iter().map(event_from_row).collect::<Result<_, _>>()?;
            let mut by_stream: HashMap<&str, Vec<RecordedEvent>> = HashMap::new();
            for e in events {
                let key = ids.iter().find(|id| **id == e.stream_id).copied().expect("asked for");
                by_stream.entry(key).or_default().push(e);
            }
            for (id, version, hash) in &heads {
                let events = by_stream.remove(id.as_str()).unwrap_or_default();
                report.streams += 1;
                report.events += events.len() as u64;
                if let Some(broken) = check_stream(&events, Some((*version, hash.clone()))) {
                    report.first_broken = Some(broken);
                    return Ok(report);
                }
            }
        }
        Ok(report)
    }
}

/// A stream's chain, and that its head row names its last event.
fn check_stream(events: &[RecordedEvent], head: Option<(i64, Option<Vec<u8>>)>) -> Option<BrokenLink> {
    if let Err(broken) = verify_chain(events) {
        return Some(broken);
    }
    if let Some((version, hash)) = head {
        let last = events.last();
        if last.map(|e| e.version).unwrap_or(0) != version || last.map(|e| e.hash.clone()) != hash {
            return Some(BrokenLink {
                stream_id: events.first().map(|e| e.stream_id.clone()).unwrap_or_default(),
                version,
                position: last.map(|e| e.position).unwrap_or(0),
                reason: "the stream's head does not name its last event (events removed or added)".into(),
            });
        }
    }
    None
}

fn classify(error: sqlx::Error, request: &AppendRequest) -> AppendError {
    match is_unique_violation(&error).as_deref() {
        Some("idempotency_keys_pkey") => {
            AppendError::DuplicateKey { key: request.idempotency.as_ref().map(|k| k.key.clone()).unwrap_or_default() }
        }
        Some("events_stream_version_key") | Some("streams_pkey") => {
            let w = &request.writes[0];
            AppendError::Conflict { stream_id: w.stream_id.clone(), expected: w.expected, actual: -1 }
        }
        _ => AppendError::Store(StoreError::Database(error)),
    }
}

impl PgEventStore {
    async fn read_all_unfiltered(&self, after: LogPosition, limit: i64) -> Result<ReadBatch, StoreError> {
        // The horizon and the events come from one statement, hence one snapshot: every
        // transaction below the horizon is finished and its events are all visible here.
        let rows = sqlx::query(&format!(
            "with h as materialized (select pg_snapshot_xmin(pg_current_snapshot()) as xmin)
             select h.xmin::text::bigint as horizon, e.*
             from h left join lateral (
                 select {EVENT_COLUMNS} from events
                 where (txid, position) > ($1::text::xid8, $2) and txid < h.xmin
                 order by txid, position limit $3) e on true"
        ))
        .bind(after.txid.to_string())
        .bind(after.position)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let horizon: i64 = rows.first().map(|r| r.try_get("horizon")).transpose()?.unwrap_or(after.txid);
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            if row.try_get::<Option<i64>, _>("position")?.is_some() {
                events.push(event_from_row(row)?);
            }
        }
        let full = events.len() as i64 >= limit;
        let checkpoint = if full {
            events.last().map(RecordedEvent::log_position).unwrap_or(after)
        } else {
            after.max(LogPosition { txid: horizon, position: 0 })
        };
        Ok(ReadBatch { events, checkpoint, full })
    }

    /// A page of the events of `types` after `after`: a merge of per-type range scans of the
    /// `(event_type, txid, position)` index (each type gives at most `limit` entries in log order,
    /// the first `limit` of their union are the page), so the cost is bounded by (types × limit)
    /// whatever the backlog and whatever other contexts write. Without `with_metadata`, the events
    /// come with null metadata and empty hashes (half the bytes to send and parse), for readers
    /// that use neither.
    pub async fn read_filtered(
        &self,
        after: LogPosition,
        limit: i64,
        types: &[String],
        with_metadata: bool,
    ) -> Result<ReadBatch, StoreError> {
        // See the migrations: a function so that the planner setting that bounds the page cost
        // applies to this query only.
        let rows = sqlx::query("select * from es_read_filtered($1::text::xid8, $2, $3, $4::int, $5)")
            .bind(after.txid.to_string())
            .bind(after.position)
            .bind(types)
            .bind(limit)
            .bind(with_metadata)
            .fetch_all(&self.pool)
            .await?;
        let horizon: i64 = rows.first().map(|r| r.try_get("horizon")).transpose()?.unwrap_or(after.txid);
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            if row.try_get::<Option<i64>, _>("position")?.is_some() {
                events.push(event_from_row(row)?);
            }
        }
        let full = events.len() as i64 >= limit;
        let checkpoint = if full {
            events.last().map(RecordedEvent::log_position).unwrap_or(after)
        } else {
            after.max(LogPosition { txid: horizon, position: 0 })
        };
        Ok(ReadBatch { events, checkpoint, full })
    }

    async fn append_alone(&self, request: AppendRequest) -> Result<Appended, AppendError> {
        match self.append_in_one_transaction(std::slice::from_ref(&request)).await {
            Ok(mut results) => results.pop().expect("one result"),
            Err(error) => Err(classify(error, &request)),
        }
    }
}

/// Wake-ups of the log's readers. Appends of this process wake its readers at once (`announce`,
/// no database round trip); other processes learn of them from a `pg_notify` that a background
/// task sends AFTER the append committed, coalescing whatever accumulated meanwhile. The append
/// transaction itself never notifies: PostgreSQL serialises the commits of notifying
/// transactions (a global lock held through the WAL flush), which capped appends at one flush at a
/// time (about 1,000/s here) whatever the concurrency. A notification is
/// `"{origin}:{txid}:{type},{type}…"` (`*` for "anything"), so a reader waits only for the event
/// types it handles, and knows the newest transaction that wrote one: when its read stopped below
/// that transaction (the horizon was held back by an older open transaction), it re-reads after a
/// short back-off. A wake-up only says "read again"; readers always re-read from their checkpoint,
/// and poll as the fallback (a notification lost in a crash costs latency, never events).
#[derive(Clone)]
pub struct LogWake {
    tx: Arc<watch::Sender<WakeState>>,
    /// This process's tag in notifications, to skip its own when they come back.
    origin: u64,
    outbox: Option<tokio::sync::mpsc::UnboundedSender<(i64, Vec<String>)>>,
}

#[derive(Debug, Default)]
pub struct WakeState {
    /// Notifications about anything (in-process nudges, a listener that reconnected, batches
    /// whose type list did not fit the payload).
    any: Mark,
    by_type: HashMap<String, Mark>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Mark {
    count: u64,
    txid: i64,
}

impl WakeState {
    fn relevant(&self, types: Option<&[String]>) -> Seen {
        let mut seen = Seen { count: self.any.count, txid: self.any.txid };
        let mut add = |m: &Mark| {
            seen.count += m.count;
            seen.txid = seen.txid.max(m.txid);
        };
        match types {
            Some(types) => types.iter().filter_map(|t| self.by_type.get(t)).for_each(&mut add),
            None => self.by_type.values().for_each(&mut add),
        }
        seen
    }

    fn record<'a>(&mut self, txid: i64, types: impl IntoIterator<Item = &'a str>) {
        for t in types {
            if t == "*" || t.is_empty() {
                self.any.count += 1;
                self.any.txid = self.any.txid.max(txid);
                continue;
            }
            let mark = match self.by_type.get_mut(t) {
                Some(m) => m,
                None => self.by_type.entry(t.to_owned()).or_default(),
            };
            mark.count += 1;
            mark.txid = mark.txid.max(txid);
        }
    }
}

/// What a reader has seen of the wake-ups that concern it: how many, and the newest writing
/// transaction among them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub count: u64,
    pub txid: i64,
}

impl Default for LogWake {
    fn default() -> Self {
        let (tx, _) = watch::channel(WakeState::default());
        Self { tx: Arc::new(tx), origin: rand_origin(), outbox: None }
    }
}

fn rand_origin() -> u64 {
    let id = Uuid::new_v4().as_u128();
    (id as u64) | 1
}

/// The types part of a notification: distinct event types, or `*` when they would not fit the
/// 8,000-byte payload limit.
fn notify_types<'a>(types: impl IntoIterator<Item = &'a str>) -> String {
    let mut distinct: Vec<&str> = types.into_iter().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let joined = distinct.join(",");
    if joined.len() > 7000 {
        "*".to_owned()
    } else {
        joined
    }
}

impl LogWake {
    /// Starts listening on `pool`'s database, and the task that tells other processes about this
    /// one's appends. Reconnects on its own; while disconnected readers fall back to polling.
    pub async fn listen(pool: &PgPool) -> Result<Self, sqlx::Error> {
        let mut wake = Self::default();
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        let tx = wake.tx.clone();
        let origin = wake.origin;
        tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => {
                        let mut parts = n.payload().splitn(3, ':');
                        let (from, txid, types) = (parts.next(), parts.next(), parts.next());
                        if from.and_then(|f| f.parse::<u64>().ok()) != Some(origin) {
                            let txid = txid.and_then(|t| t.parse().ok()).unwrap_or(0);
                            tx.send_modify(|s| s.record(txid, types.unwrap_or("*").split(',')));
                        }
                    }
                    // Reconnected: notifications may have been missed.
                    Ok(None) => tx.send_modify(|s| s.record(0, ["*"])),
                    Err(error) => {
                        tracing::warn!(%error, "log listener lost; readers poll until it is back");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        tx.send_modify(|s| s.record(0, ["*"]));
                    }
                }
                if tx.is_closed() && Arc::strong_count(&tx) == 1 {
                    break;
                }
            }
        });
        let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<(i64, Vec<String>)>();
        let pool = pool.clone();
        tokio::spawn(async move {
            while let Some((mut txid, mut types)) = out_rx.recv().await {
                // Everything that accumulated while the previous notification was in flight.
                while let Ok((t, more)) = out_rx.try_recv() {
                    txid = txid.max(t);
                    types.extend(more);
                }
                let payload = format!("{origin}:{txid}:{}", notify_types(types.iter().map(String::as_str)));
                if let Err(error) =
                    sqlx::query("select pg_notify($1, $2)").bind(NOTIFY_CHANNEL).bind(payload).execute(&pool).await
                {
                    tracing::debug!(%error, "could not notify other processes; they poll");
                }
            }
        });
        wake.outbox = Some(out_tx);
        Ok(wake)
    }

    /// Committed events of this process: wakes its readers now, and other processes shortly.
    pub fn announce<'a>(&self, events: impl Iterator<Item = &'a RecordedEvent>) {
        let mut txid = 0;
        let mut types: Vec<String> = Vec::new();
        for e in events {
            txid = txid.max(e.txid);
            if !types.contains(&e.event_type) {
                types.push(e.event_type.clone());
            }
        }
        if types.is_empty() {
            return;
        }
        self.tx.send_modify(|s| s.record(txid, types.iter().map(String::as_str)));
        if let Some(outbox) = &self.outbox {
            let _ = outbox.send((txid, types));
        }
    }

    /// Wakes every reader of this process (after in-process changes and in tests).
    pub fn notify(&self) {
        self.tx.send_modify(|s| s.record(0, ["*"]));
    }

    /// The wake-ups seen so far that concern `types` (`None`: every type).
    pub fn seen(&self, types: Option<&[String]>) -> Seen {
        self.tx.borrow().relevant(types)
    }

    /// Waits until a wake-up about `types` newer than `seen` arrives, or `timeout` passes.
    pub async fn wait_after(&self, seen: Seen, types: Option<&[String]>, timeout: Duration) {
        let mut rx = self.tx.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|s| s.relevant(types).count != seen.count)).await;
    }

    /// A reader's way of waiting after a read that was not a full page. See [`Waiter`].
    pub fn waiter(&self, types: Option<Vec<String>>) -> Waiter {
        Waiter { wake: self.clone(), types, blocked: 0 }
    }
}

/// One reader's way of waiting for more of the log.
pub struct Waiter {
    wake: LogWake,
    types: Option<Vec<String>>,
    blocked: u32,
}

impl Waiter {
    /// Taken before a read.
    pub fn seen(&self) -> Seen {
        self.wake.seen(self.types.as_deref())
    }

    /// After a read that returned less than a full page and stopped at `checkpoint_txid`: when a
    /// transaction that wrote events of interest (seen before the read) is at or beyond that
    /// point, an older open transaction held the horizon back, so read again soon (1 ms, doubling
    /// up to `timeout`); otherwise wait for the next wake-up of interest, or `timeout`.
    pub async fn wait(&mut self, seen: Seen, checkpoint_txid: i64, timeout: Duration) {
        if seen.txid > 0 && checkpoint_txid <= seen.txid {
            let delay = Duration::from_millis(1 << self.blocked.min(10)).min(timeout);
            self.blocked += 1;
            tokio::time::sleep(delay).await;
        } else {
            self.blocked = 0;
            self.wake.wait_after(seen, self.types.as_deref(), timeout).await;
        }
    }
}
