//! The PostgreSQL event log (reference backend).
//!
//! An append is one transaction of three statements whatever its size: lock (and create) the
//! stream rows in stream-id order, check every expected version in Rust, then insert the events,
//! move the stream versions, record the idempotency keys and `pg_notify` in one statement. Many
//! requests can share that transaction (group commit); a request whose expected version fails is
//! left out and reported, the others are written.

use super::*;
use crate::canonical::{event_hash, truncate_to_micros, HashedContent};
use futures::StreamExt;
use sqlx::postgres::{PgListener, PgPool, PgRow};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The channel appends notify on. The notification carries nothing a reader relies on.
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
        metadata: row.try_get("metadata")?,
        recorded_at: row.try_get("recorded_at")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Where a stream stands inside an append transaction.
#[derive(Clone)]
struct Head {
    version: i64,
    hash: Option<Vec<u8>>,
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
        let mut tx = self.pool.begin().await?;
        let results = Self::append_within(&mut tx, requests).await?;
        tx.commit().await?;
        Ok(results)
    }

    /// Appends inside the caller's open transaction (which commits or rolls back). Positions and
    /// transaction ids in the result are final once that transaction commits.
    pub async fn append_within(
        tx: &mut sqlx::PgConnection,
        requests: &[AppendRequest],
    ) -> Result<Vec<Result<Appended, AppendError>>, sqlx::Error> {
        // 1. Lock every stream the batch touches, creating rows for streams about to be written.
        let mut written: Vec<&str> = Vec::new();
        let mut written_types: Vec<&str> = Vec::new();
        let mut all: Vec<&str> = Vec::new();
        for request in requests {
            for write in &request.writes {
                all.push(&write.stream_id);
                if !write.events.is_empty() {
                    written.push(&write.stream_id);
                    written_types.push(&write.stream_type);
                }
            }
        }
        all.sort_unstable();
        all.dedup();
        let rows = sqlx::query(
            "with created as (
                 insert into streams (stream_id, stream_type)
                 select id, ty from unnest($1::text[], $2::text[]) as u(id, ty) order by id
                 on conflict (stream_id) do nothing
                 returning stream_id, version, last_hash),
             locked as (
                 select stream_id, version, last_hash from streams
                 where stream_id = any($3) order by stream_id for update)
             select * from created union all select * from locked",
        )
        .bind(&written)
        .bind(&written_types)
        .bind(&all)
        .fetch_all(&mut *tx)
        .await?;
        let mut heads: HashMap<String, Head> = HashMap::with_capacity(all.len());
        for row in rows {
            heads.insert(
                row.try_get("stream_id")?,
                Head { version: row.try_get("version")?, hash: row.try_get("last_hash")? },
            );
        }
        // A stream created by a transaction that committed while ours waited on its key is in
        // neither set (our snapshot predates it): lock it now that it is visible.
        let missing: Vec<&str> = all.iter().copied().filter(|id| !heads.contains_key(*id)).collect();
        if !missing.is_empty() {
            let rows = sqlx::query(
                "select stream_id, version, last_hash from streams where stream_id = any($1) order by stream_id for update",
            )
            .bind(&missing)
            .fetch_all(&mut *tx)
            .await?;
            for row in rows {
                heads.insert(
                    row.try_get("stream_id")?,
                    Head { version: row.try_get("version")?, hash: row.try_get("last_hash")? },
                );
            }
        }

        // 2. Check expected versions request by request, chaining versions and hashes.
        let recorded_at = truncate_to_micros(Utc::now());
        let mut results: Vec<Result<Appended, AppendError>> = Vec::with_capacity(requests.len());
        let mut cols = EventColumns::default();
        let mut keys = KeyColumns::default();
        // Which result slots are accepted, with the range of their rows in `cols`.
        let mut accepted: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        'request: for (index, request) in requests.iter().enumerate() {
            let mut tentative: HashMap<&str, Head> = HashMap::new();
            for write in &request.writes {
                let head = tentative
                    .get(write.stream_id.as_str())
                    .or_else(|| heads.get(&write.stream_id))
                    .cloned()
                    .unwrap_or(Head { version: 0, hash: None });
                if !write.expected.admits(head.version) {
                    results.push(Err(AppendError::Conflict {
                        stream_id: write.stream_id.clone(),
                        expected: write.expected,
                        actual: head.version,
                    }));
                    continue 'request;
                }
                tentative.insert(&write.stream_id, head);
            }
            let start = cols.len();
            let mut appended = Appended { events: Vec::new(), streams: Vec::new() };
            for write in &request.writes {
                let head = tentative.get_mut(write.stream_id.as_str()).expect("checked above");
                for event in &write.events {
                    if let Err(reason) = storable(&event.payload).and(storable(&event.metadata)) {
                        results.push(Err(AppendError::Invalid(reason)));
                        cols.truncate(start);
                        continue 'request;
                    }
                    let version = head.version + 1;
                    let hash = event_hash(
                        head.hash.as_deref(),
                        &HashedContent {
                            stream_id: &write.stream_id,
                            version,
                            event_type: &event.event_type,
                            schema_version: event.schema_version,
                            payload: &event.payload,
                            metadata: &event.metadata,
                            recorded_at,
                        },
                    );
                    cols.push(write, event, version, recorded_at, head.hash.clone(), hash.clone());
                    appended.events.push(RecordedEvent {
                        position: 0,
                        txid: 0,
                        event_id: event.event_id,
                        stream_id: write.stream_id.clone(),
                        stream_type: write.stream_type.clone(),
                        version,
                        event_type: event.event_type.clone(),
                        schema_version: event.schema_version,
                        payload: event.payload.clone(),
                        metadata: event.metadata.clone(),
                        recorded_at,
                        prev_hash: head.hash.clone(),
                        hash: hash.clone(),
                    });
                    *head = Head { version, hash: Some(hash) };
                }
                if !write.events.is_empty() {
                    appended.streams.push((write.stream_id.clone(), head.version));
                }
            }
            for (id, head) in tentative {
                heads.insert(id.to_owned(), head);
            }
            if let Some(key) = &request.idempotency {
                keys.push(key, &appended);
            }
            accepted.push((index, start..cols.len()));
            results.push(Ok(appended));
        }

        if cols.is_empty() {
            // Nothing to write (all refused, or only version checks).
            return Ok(results);
        }

        // 3. One statement writes everything accepted.
        let mut stream_ids = Vec::new();
        let mut stream_versions = Vec::new();
        let mut stream_hashes = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, id) in cols.stream_id.iter().enumerate().rev() {
            if seen.insert(id.clone()) {
                stream_ids.push(id.clone());
                stream_versions.push(cols.version[i]);
                stream_hashes.push(cols.hash[i].clone());
            }
        }
        let rows = sqlx::query(
            "with ev as (
                 insert into events (event_id, stream_id, stream_type, version, event_type, schema_version,
                                     payload, metadata, recorded_at, prev_hash, hash)
                 select * from unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::int[],
                                      $7::jsonb[], $8::jsonb[], $9::timestamptz[], $10::bytea[], $11::bytea[])
                 returning position, event_id, txid),
             st as (
                 update streams s set version = u.version, last_hash = u.hash, updated_at = now()
                 from unnest($12::text[], $13::bigint[], $14::bytea[]) as u(stream_id, version, hash)
                 where s.stream_id = u.stream_id),
             ik as (
                 insert into idempotency_keys (scope, key, command_name, request_hash, response)
                 select * from unnest($15::text[], $16::text[], $17::text[], $18::text[], $19::jsonb[]))
             select ev.position, ev.event_id, ev.txid::text::bigint as txid,
                    (select pg_notify($20, '')) is null as notified
             from ev",
        )
        .bind(&cols.event_id)
        .bind(&cols.stream_id)
        .bind(&cols.stream_type)
        .bind(&cols.version)
        .bind(&cols.event_type)
        .bind(&cols.schema_version)
        .bind(&cols.payload)
        .bind(&cols.metadata)
        .bind(&cols.recorded_at)
        .bind(&cols.prev_hash)
        .bind(&cols.hash)
        .bind(&stream_ids)
        .bind(&stream_versions)
        .bind(&stream_hashes)
        .bind(&keys.scope)
        .bind(&keys.key)
        .bind(&keys.command_name)
        .bind(&keys.request_hash)
        .bind(&keys.response)
        .bind(NOTIFY_CHANNEL)
        .fetch_all(&mut *tx)
        .await?;

        let mut positions: HashMap<Uuid, (i64, i64)> = HashMap::with_capacity(rows.len());
        for row in rows {
            positions.insert(row.try_get("event_id")?, (row.try_get("position")?, row.try_get("txid")?));
        }
        for (index, _) in accepted {
            if let Ok(appended) = &mut results[index] {
                for event in &mut appended.events {
                    let (position, txid) = positions[&event.event_id];
                    event.position = position;
                    event.txid = txid;
                }
            }
        }
        Ok(results)
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

#[derive(Default)]
struct EventColumns {
    event_id: Vec<Uuid>,
    stream_id: Vec<String>,
    stream_type: Vec<String>,
    version: Vec<i64>,
    event_type: Vec<String>,
    schema_version: Vec<i32>,
    payload: Vec<Value>,
    metadata: Vec<Value>,
    recorded_at: Vec<DateTime<Utc>>,
    prev_hash: Vec<Option<Vec<u8>>>,
    hash: Vec<Vec<u8>>,
}

impl EventColumns {
    fn len(&self) -> usize {
        self.event_id.len()
    }
    fn is_empty(&self) -> bool {
        self.event_id.is_empty()
    }
    fn truncate(&mut self, n: usize) {
        self.event_id.truncate(n);
        self.stream_id.truncate(n);
        self.stream_type.truncate(n);
        self.version.truncate(n);
        self.event_type.truncate(n);
        self.schema_version.truncate(n);
        self.payload.truncate(n);
        self.metadata.truncate(n);
        self.recorded_at.truncate(n);
        self.prev_hash.truncate(n);
        self.hash.truncate(n);
    }
    fn push(
        &mut self,
        write: &StreamWrite,
        event: &NewEvent,
        version: i64,
        at: DateTime<Utc>,
        prev: Option<Vec<u8>>,
        hash: Vec<u8>,
    ) {
        self.event_id.push(event.event_id);
        self.stream_id.push(write.stream_id.clone());
        self.stream_type.push(write.stream_type.clone());
        self.version.push(version);
        self.event_type.push(event.event_type.clone());
        self.schema_version.push(event.schema_version);
        self.payload.push(event.payload.clone());
        self.metadata.push(event.metadata.clone());
        self.recorded_at.push(at);
        self.prev_hash.push(prev);
        self.hash.push(hash);
    }
}

#[derive(Default)]
struct KeyColumns {
    scope: Vec<String>,
    key: Vec<String>,
    command_name: Vec<String>,
    request_hash: Vec<String>,
    response: Vec<Value>,
}

impl KeyColumns {
    fn push(&mut self, key: &IdempotencyKey, appended: &Appended) {
        self.scope.push(key.scope.clone());
        self.key.push(key.key.clone());
        self.command_name.push(key.command_name.clone());
        self.request_hash.push(key.request_hash.clone());
        // The events are immutable, so their ids are enough to give the same answer again.
        let ids: Vec<Uuid> = appended.events.iter().map(|e| e.event_id).collect();
        self.response.push(serde_json::json!({ "event_ids": ids }));
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
        match self.append_in_one_transaction(&requests).await {
            Ok(results) => Ok(results),
            Err(error) if requests.len() > 1 => {
                // One request broke the shared transaction (a key recorded concurrently, a deadlock
                // between batches): write each request on its own so only the culprit fails.
                tracing::debug!(%error, "batched append failed; appending one by one");
                let mut results = Vec::with_capacity(requests.len());
                for request in requests {
                    results.push(self.append_alone(request).await);
                }
                Ok(results)
            }
            Err(error) => Ok(vec![Err(classify(error, &requests[0]))]),
        }
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
            Some(types) => self.read_all_filtered(after, limit, types).await,
        }
    }

    fn subscribe(&self, after: LogPosition) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        let store = self.clone();
        futures::stream::unfold(
            (store, after, std::collections::VecDeque::new()),
            |(store, mut at, mut buf)| async move {
                loop {
                    if let Some(event) = buf.pop_front() {
                        return Some((Ok(event), (store, at, buf)));
                    }
                    let seen = store.wake.current();
                    match store.read_all(at, 500, None).await {
                        Ok(batch) => {
                            at = batch.checkpoint;
                            if batch.events.is_empty() {
                                store.wake.wait_after(seen, Duration::from_millis(500)).await;
                            }
                            buf.extend(batch.events);
                        }
                        Err(e) => return Some((Err(e), (store, at, buf))),
                    }
                }
            },
        )
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

    /// A merge of per-type range scans of the `(event_type, txid, position)` index: each handled
    /// type gives at most `limit` entries in log order, and the first `limit` of their union are
    /// the page. The cost is bounded by (types × limit), whatever the backlog and whatever other
    /// contexts write.
    async fn read_all_filtered(
        &self,
        after: LogPosition,
        limit: i64,
        types: &[String],
    ) -> Result<ReadBatch, StoreError> {
        let rows = sqlx::query(&format!(
            "with h as materialized (select pg_snapshot_xmin(pg_current_snapshot()) as xmin),
             s as materialized (
                 select m.position, m.txid from h, unnest($3::text[]) as t(ty)
                 cross join lateral (
                     select position, txid from events
                     where event_type = t.ty and (txid, position) > ($1::text::xid8, $2) and txid < h.xmin
                     order by txid, position limit $4) m
                 order by m.txid, m.position limit $4)
             select h.xmin::text::bigint as horizon, e.*
             from h left join lateral (
                 -- Primary-key lookups: the planner cannot size `s`.
                 select {EVENT_COLUMNS} from events
                 where position = any(array(select position from s))
                 order by txid, position) e on true"
        ))
        .bind(after.txid.to_string())
        .bind(after.position)
        .bind(types)
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

    async fn append_alone(&self, request: AppendRequest) -> Result<Appended, AppendError> {
        match self.append_in_one_transaction(std::slice::from_ref(&request)).await {
            Ok(mut results) => results.pop().expect("one result"),
            Err(error) => Err(classify(error, &request)),
        }
    }
}

/// In-process fan-out of the log's `pg_notify` wake-ups: one LISTEN connection per process, many
/// waiting readers. A wake-up only says "read again"; readers always re-read from their checkpoint.
#[derive(Clone)]
pub struct LogWake {
    tx: Arc<watch::Sender<u64>>,
}

impl Default for LogWake {
    fn default() -> Self {
        let (tx, _) = watch::channel(0);
        Self { tx: Arc::new(tx) }
    }
}

impl LogWake {
    /// Starts listening on `pool`'s database. Reconnects on its own; while disconnected readers
    /// fall back to polling.
    pub async fn listen(pool: &PgPool) -> Result<Self, sqlx::Error> {
        let wake = Self::default();
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        let tx = wake.tx.clone();
        tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "log listener lost; readers poll until it is back");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
                tx.send_modify(|n| *n += 1);
                if tx.is_closed() && Arc::strong_count(&tx) == 1 {
                    break;
                }
            }
        });
        Ok(wake)
    }

    /// Wakes the readers of this process (used after in-process appends and in tests).
    pub fn notify(&self) {
        self.tx.send_modify(|n| *n += 1);
    }

    pub fn current(&self) -> u64 {
        *self.tx.borrow()
    }

    /// Waits until a wake-up newer than `seen` arrives, or `timeout` passes (the polling fallback).
    pub async fn wait_after(&self, seen: u64, timeout: Duration) {
        let mut rx = self.tx.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|n| *n != seen)).await;
    }
}
