//! The conformance suite every `EventStore` backend must pass, unchanged: append and expected
//! versions, multi-stream all-or-nothing, independent batch requests, reading a stream, reading
//! the global log from a position, subscribing, idempotency keys and the hash chain.
//!
//! Stream ids carry a fresh prefix per run, so the suite can run against a shared server.

use crate::store::*;
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

fn event(kind: &str, n: i64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: kind.to_owned(),
        schema_version: 1,
        payload: json!({ "n": n, "text": "héllo \"world\"", "nested": { "b": [1, 2.5, null], "a": true } }),
        metadata: json!({ "command_name": "conformance", "actor_id": "tester" }),
    }
}

fn write(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> StreamWrite {
    StreamWrite { stream_id: stream.to_owned(), stream_type: "conformance.thing".into(), expected, events }
}

fn one(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest { writes: vec![write(stream, expected, events)], idempotency: None }
}

fn prefix() -> String {
    format!("conf-{}", Uuid::now_v7().simple())
}

/// Runs every check; panics on the first failure with what broke.
pub async fn run_all<S: EventStore>(store: &S) {
    expected_versions(store).await;
    multi_stream_all_or_nothing(store).await;
    batch_requests_are_independent(store).await;
    read_stream_in_order(store).await;
    read_all_from_a_position(store).await;
    subscribe_delivers_in_order(store).await;
    idempotency_keys(store).await;
    hash_chain(store).await;
}

pub async fn expected_versions<S: EventStore>(store: &S) {
    let s = format!("{}-a", prefix());
    let first = store.append(one(&s, ExpectedVersion::NoStream, vec![event("created", 1)])).await.expect("new stream");
    assert_eq!(first.streams, vec![(s.clone(), 1)]);
    assert!(
        matches!(
            store.append(one(&s, ExpectedVersion::NoStream, vec![event("created", 2)])).await,
            Err(AppendError::Conflict { actual: 1, .. })
        ),
        "NoStream on an existing stream must conflict"
    );
    store
        .append(one(&s, ExpectedVersion::Exact(1), vec![event("changed", 2), event("changed", 3)]))
        .await
        .expect("exact");
    assert!(
        matches!(
            store.append(one(&s, ExpectedVersion::Exact(1), vec![event("changed", 4)])).await,
            Err(AppendError::Conflict { actual: 3, .. })
        ),
        "a stale expected version must conflict"
    );
    store.append(one(&s, ExpectedVersion::Any, vec![event("changed", 4)])).await.expect("any");
    store.append(one(&s, ExpectedVersion::StreamExists, vec![event("changed", 5)])).await.expect("exists");
    let missing = format!("{}-missing", prefix());
    assert!(matches!(
        store.append(one(&missing, ExpectedVersion::StreamExists, vec![event("changed", 1)])).await,
        Err(AppendError::Conflict { actual: 0, .. })
    ));
    assert_eq!(store.stream_version(&s).await.unwrap(), 5);
    assert_eq!(store.stream_version(&missing).await.unwrap(), 0);
}

pub async fn multi_stream_all_or_nothing<S: EventStore>(store: &S) {
    let p = prefix();
    let (a, b) = (format!("{p}-a"), format!("{p}-b"));
    store.append(one(&b, ExpectedVersion::NoStream, vec![event("created", 1)])).await.unwrap();
    // b is at 1, not 0: the whole request fails and a is not created.
    let refused = store
        .append(AppendRequest {
            writes: vec![
                write(&a, ExpectedVersion::NoStream, vec![event("created", 1)]),
                write(&b, ExpectedVersion::NoStream, vec![event("created", 2)]),
            ],
            idempotency: None,
        })
        .await;
    assert!(matches!(refused, Err(AppendError::Conflict { .. })));
    assert_eq!(store.stream_version(&a).await.unwrap(), 0, "nothing of a refused request is written");
    assert_eq!(store.stream_version(&b).await.unwrap(), 1);
    // A check-only write (no events) guards a decision that read another stream.
    let ok = store
        .append(AppendRequest {
            writes: vec![
                write(&a, ExpectedVersion::NoStream, vec![event("created", 1)]),
                write(&b, ExpectedVersion::Exact(1), vec![]),
            ],
            idempotency: None,
        })
        .await
        .expect("both expectations hold");
    assert_eq!(ok.streams, vec![(a.clone(), 1)]);
}

pub async fn batch_requests_are_independent<S: EventStore>(store: &S) {
    let p = prefix();
    let taken = format!("{p}-taken");
    store.append(one(&taken, ExpectedVersion::NoStream, vec![event("created", 1)])).await.unwrap();
    let results = store
        .append_batch(vec![
            one(&format!("{p}-1"), ExpectedVersion::NoStream, vec![event("created", 1)]),
            one(&taken, ExpectedVersion::NoStream, vec![event("created", 1)]),
            one(&format!("{p}-2"), ExpectedVersion::NoStream, vec![event("created", 1)]),
            // Two requests on one stream in one batch chain their versions.
            one(&format!("{p}-1"), ExpectedVersion::Exact(1), vec![event("changed", 2)]),
        ])
        .await
        .unwrap();
    assert!(results[0].is_ok() && results[2].is_ok() && results[3].is_ok(), "{results:?}");
    assert!(matches!(results[1], Err(AppendError::Conflict { .. })));
    assert_eq!(store.stream_version(&format!("{p}-1")).await.unwrap(), 2);
}

pub async fn read_stream_in_order<S: EventStore>(store: &S) {
    let s = format!("{}-r", prefix());
    let sent: Vec<NewEvent> = (1..=5).map(|n| event("changed", n)).collect();
    store.append(one(&s, ExpectedVersion::NoStream, sent[..2].to_vec())).await.unwrap();
    store.append(one(&s, ExpectedVersion::Exact(2), sent[2..].to_vec())).await.unwrap();
    let read = store.read_stream(&s, 0).await.unwrap();
    assert_eq!(read.iter().map(|e| e.version).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    for (got, sent) in read.iter().zip(&sent) {
        assert_eq!(got.event_id, sent.event_id);
        assert_eq!(got.payload, sent.payload, "payload round-trips");
        assert_eq!(got.metadata, sent.metadata, "metadata round-trips");
        assert_eq!(got.stream_type, "conformance.thing");
    }
    let tail = store.read_stream(&s, 3).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.version).collect::<Vec<_>>(), vec![4, 5]);
}

/// Reads the global log after `from` until every id in `want` was seen; returns them in log order.
async fn read_until<S: EventStore>(store: &S, from: LogPosition, want: &[Uuid]) -> Vec<RecordedEvent> {
    let mut at = from;
    let mut out = Vec::new();
    // Readers stop at the oldest open transaction of the whole server: on a busy shared server
    // events become readable a little after their append returns.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        let batch = store.read_all(at, 100, None).await.unwrap();
        let empty = batch.events.is_empty();
        out.extend(batch.events.into_iter().filter(|e| want.contains(&e.event_id)));
        at = batch.checkpoint;
        if out.len() >= want.len() {
            break;
        }
        if empty {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    out
}

pub async fn read_all_from_a_position<S: EventStore>(store: &S) {
    let p = prefix();
    let first =
        store.append(one(&format!("{p}-x"), ExpectedVersion::NoStream, vec![event("created", 1)])).await.unwrap();
    let start = first.events[0].log_position();
    let from = LogPosition { txid: start.txid, position: start.position - 1 };
    let mut ids = vec![first.events[0].event_id];
    for n in 0..3 {
        let a =
            store.append(one(&format!("{p}-{n}"), ExpectedVersion::NoStream, vec![event("created", n)])).await.unwrap();
        ids.push(a.events[0].event_id);
    }
    let seen = read_until(store, from, &ids).await;
    assert_eq!(seen.iter().map(|e| e.event_id).collect::<Vec<_>>(), ids, "log order is append order here");
    let positions: Vec<LogPosition> = seen.iter().map(RecordedEvent::log_position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "positions increase");
    // After the first: the first is not delivered again.
    let after_first = read_until(store, start, &ids[1..]).await;
    assert_eq!(after_first.len(), 3);
    // Filtering by event type.
    let only = store.read_all(from, 100, Some(&["no-such-type".to_owned()])).await.unwrap();
    assert!(only.events.is_empty());
    assert!(only.checkpoint >= from);
}

pub async fn subscribe_delivers_in_order<S: EventStore>(store: &S) {
    let p = prefix();
    let first =
        store.append(one(&format!("{p}-s"), ExpectedVersion::NoStream, vec![event("created", 0)])).await.unwrap();
    let start = first.events[0].log_position();
    let mut sub = store.subscribe(start);
    let mut ids = Vec::new();
    for n in 1..=5 {
        let a =
            store.append(one(&format!("{p}-s"), ExpectedVersion::Exact(n), vec![event("changed", n)])).await.unwrap();
        ids.push(a.events[0].event_id);
    }
    let mut got = Vec::new();
    while got.len() < ids.len() {
        let next = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.expect("subscription delivers");
        let e = next.expect("stream continues").expect("no error");
        if ids.contains(&e.event_id) {
            got.push(e.event_id);
        }
    }
    assert_eq!(got, ids);
}

pub async fn idempotency_keys<S: EventStore>(store: &S) {
    let p = prefix();
    let key = IdempotencyKey {
        scope: format!("{p}-actor"),
        key: "k-1".into(),
        command_name: "do-it".into(),
        request_hash: "h1".into(),
    };
    assert!(store.lookup_idempotency(&key.scope, &key.key).await.unwrap().is_none());
    let mut request = one(&format!("{p}-i"), ExpectedVersion::NoStream, vec![event("created", 1)]);
    request.idempotency = Some(key.clone());
    let first = store.append(request.clone()).await.unwrap();
    let record = store.lookup_idempotency(&key.scope, &key.key).await.unwrap().expect("recorded with the append");
    assert_eq!(record.command_name, "do-it");
    assert_eq!(record.request_hash, "h1");
    assert_eq!(record.events.iter().map(|e| e.event_id).collect::<Vec<_>>(), vec![first.events[0].event_id]);
    // The same key again is refused by the store and writes nothing.
    let mut again = one(&format!("{p}-j"), ExpectedVersion::NoStream, vec![event("created", 1)]);
    again.idempotency = Some(key.clone());
    assert!(matches!(store.append(again).await, Err(AppendError::DuplicateKey { .. })));
    assert_eq!(store.stream_version(&format!("{p}-j")).await.unwrap(), 0);
    // A refused append records no key.
    let other = IdempotencyKey { key: "k-2".into(), ..key.clone() };
    let mut refused = one(&format!("{p}-i"), ExpectedVersion::NoStream, vec![event("created", 1)]);
    refused.idempotency = Some(other.clone());
    assert!(store.append(refused).await.is_err());
    assert!(store.lookup_idempotency(&other.scope, &other.key).await.unwrap().is_none());
}

pub async fn hash_chain<S: EventStore>(store: &S) {
    let s = format!("{}-h", prefix());
    store.append(one(&s, ExpectedVersion::NoStream, vec![event("created", 1), event("changed", 2)])).await.unwrap();
    store.append(one(&s, ExpectedVersion::Exact(2), vec![event("changed", 3)])).await.unwrap();
    let events = store.read_stream(&s, 0).await.unwrap();
    assert_eq!(events[0].prev_hash, None);
    assert_eq!(events[1].prev_hash.as_ref(), Some(&events[0].hash));
    assert_eq!(events[2].prev_hash.as_ref(), Some(&events[1].hash));
    assert_eq!(verify_chain(&events), Ok(()));
    let report = store.verify_stream(&s).await.unwrap();
    assert_eq!(report.events, 3);
    assert_eq!(report.first_broken, None);
    // Any change to what a hash covers breaks the chain at that event.
    let mut tampered = events.clone();
    tampered[1].payload["n"] = json!(99);
    assert_eq!(verify_chain(&tampered).unwrap_err().version, 2);
}
