//! The log itself: late commits, concurrent appends, immutability, the hash chain.

use commands::store::*;
use commands::PgEventStore;
use futures::StreamExt;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
use system_tests::TestDb;
use uuid::Uuid;

fn new_event(n: i64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "noted".into(),
        schema_version: 1,
        payload: json!({ "n": n }),
        metadata: json!({}),
    }
}

fn request(stream: &str, expected: ExpectedVersion, n: i64) -> AppendRequest {
    AppendRequest {
        writes: vec![StreamWrite {
            stream_id: stream.into(),
            stream_type: "test.note".into(),
            expected,
            events: vec![new_event(n)],
        }],
        idempotency: None,
    }
}

/// Reads the whole log from `from` until nothing more is ready.
async fn drain(store: &PgEventStore, from: LogPosition) -> (Vec<RecordedEvent>, LogPosition) {
    let mut at = from;
    let mut out = Vec::new();
    loop {
        let batch = store.read_all(at, 2, None).await.unwrap();
        let done = batch.events.is_empty();
        at = batch.checkpoint;
        out.extend(batch.events);
        if done {
            return (out, at);
        }
    }
}

/// A transaction that took its position early and commits late is delivered, in order, exactly
/// once: readers stop at the oldest open transaction instead of skipping past it.
#[tokio::test]
async fn a_reader_never_skips_an_append_that_commits_late() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let before = store.append(request("note-0", ExpectedVersion::NoStream, 0)).await.unwrap();
    let (mut seen, mut at) = drain(&store, LogPosition::START).await;
    while seen.is_empty() {
        // Another test's open transaction holds the cluster-wide horizon for a moment.
        tokio::time::sleep(Duration::from_millis(20)).await;
        (seen, at) = drain(&store, at).await;
    }
    assert_eq!(seen.len(), 1);
    let mut live = store.subscribe(at);

    // Hold one append's transaction open...
    let mut held = db.pool.begin().await.unwrap();
    let held_result =
        PgEventStore::append_within(&mut held, &[request("note-held", ExpectedVersion::NoStream, 1)]).await.unwrap();
    let held_id = held_result[0].as_ref().unwrap().events[0].event_id;
    // ...while later appends commit.
    let mut later = Vec::new();
    for n in 2..=4 {
        let a = store.append(request(&format!("note-{n}"), ExpectedVersion::NoStream, n)).await.unwrap();
        later.push(a.events[0].event_id);
    }
    let (while_held, at_held) = drain(&store, at).await;
    assert!(while_held.is_empty(), "nothing past the open transaction is delivered: {while_held:?}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), live.next()).await.is_err(),
        "the subscription waits for the open transaction"
    );

    held.commit().await.unwrap();
    // Other transactions of the cluster (other tests) may hold the horizon a moment longer:
    // read until the four events are in, then check nothing else or twice came with them.
    let mut after = Vec::new();
    let mut at = at_held;
    for _ in 0..200 {
        let (more, next) = drain(&store, at).await;
        at = next;
        after.extend(more);
        if after.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let ids: Vec<Uuid> = after.iter().map(|e| e.event_id).collect();
    let mut expected = vec![held_id];
    expected.extend(&later);
    assert_eq!(ids, expected, "the late commit comes first (its transaction began first), then the rest, once each");
    let mut streamed = Vec::new();
    while streamed.len() < 4 {
        let e = tokio::time::timeout(Duration::from_secs(5), live.next()).await.expect("delivered").unwrap().unwrap();
        streamed.push(e.event_id);
    }
    assert_eq!(streamed, expected);
    assert!(tokio::time::timeout(Duration::from_millis(300), live.next()).await.is_err(), "nothing doubled");
    assert!(before.events[0].position < after[0].position);
    db.drop_db().await;
}

/// 32 tasks append to one stream with expected versions: exactly one winner per version, every
/// accepted event stored once, nothing lost.
#[tokio::test]
async fn thirty_two_writers_on_one_stream_get_one_winner_per_version() {
    let db = TestDb::new().await;
    let store = db.store().await;
    store.append(request("note-hot", ExpectedVersion::NoStream, 0)).await.unwrap();
    let per_task = 8;
    let mut tasks = Vec::new();
    for t in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            let mut conflicts = 0;
            while won.len() < per_task {
                let v = store.stream_version("note-hot").await.unwrap();
                let req = request("note-hot", ExpectedVersion::Exact(v), t * 1000 + won.len() as i64);
                match store.append(req).await {
                    Ok(a) => won.push((a.events[0].version, a.events[0].event_id)),
                    Err(AppendError::Conflict { .. }) => conflicts += 1,
                    Err(e) => panic!("unexpected: {e}"),
                }
            }
            (won, conflicts)
        }));
    }
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        let (won, c) = t.await.unwrap();
        winners.extend(won);
        conflicts += c;
    }
    let stored = store.read_stream("note-hot", 0).await.unwrap();
    assert_eq!(stored.len(), 1 + 32 * per_task, "every accepted append is stored");
    let versions: Vec<i64> = stored.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=stored.len() as i64).collect::<Vec<_>>(), "versions are contiguous");
    let claimed: HashSet<i64> = winners.iter().map(|w| w.0).collect();
    assert_eq!(claimed.len(), winners.len(), "no version was won twice");
    let stored_ids: HashSet<Uuid> = stored.iter().map(|e| e.event_id).collect();
    assert!(winners.iter().all(|w| stored_ids.contains(&w.1)), "every winner's event is the stored one");
    assert!(conflicts > 0, "the race was real");
    assert_eq!(store.verify_stream("note-hot").await.unwrap().first_broken, None);
    db.drop_db().await;
}

/// The database refuses to change history, whatever the client does.
#[tokio::test]
async fn updates_and_deletes_of_events_are_refused() {
    let db = TestDb::new().await;
    let store = db.store().await;
    store.append(request("note-1", ExpectedVersion::NoStream, 1)).await.unwrap();
    for sql in ["update events set payload = '{\"n\": 2}'", "delete from events", "truncate events"] {
        let err = sqlx::query(sql).execute(&db.pool).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(store.read_stream("note-1", 0).await.unwrap()[0].payload, json!({ "n": 1 }));
    db.drop_db().await;
}

/// An event altered behind the database's back (triggers disabled by a superuser) is found by
/// `verify`, which names the stream and version of the first broken link.
#[tokio::test]
async fn verify_names_the_first_tampered_event() {
    let db = TestDb::new().await;
    let store = db.store().await;
    for s in ["note-a", "note-b"] {
        store.append(request(s, ExpectedVersion::NoStream, 1)).await.unwrap();
        store.append(request(s, ExpectedVersion::Exact(1), 2)).await.unwrap();
        store.append(request(s, ExpectedVersion::Exact(2), 3)).await.unwrap();
    }
    let clean = store.verify_all().await.unwrap();
    assert_eq!((clean.streams, clean.events, clean.first_broken), (2, 6, None));

    let mut conn = db.pool.acquire().await.unwrap();
    sqlx::query("set session_replication_role = replica").execute(&mut *conn).await.unwrap();
    sqlx::query("update events set payload = '{\"n\": 200}' where stream_id = 'note-b' and version = 2")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("set session_replication_role = origin").execute(&mut *conn).await.unwrap();
    drop(conn);

    let report = store.verify_all().await.unwrap();
    let broken = report.first_broken.expect("tampering is found");
    assert_eq!((broken.stream_id.as_str(), broken.version), ("note-b", 2));
    assert!(broken.reason.contains("hash"), "{}", broken.reason);
    db.drop_db().await;
}

/// Removing the last event of a stream (with triggers disabled) is found too: the stream's head
/// no longer names its last event.
#[tokio::test]
async fn verify_finds_a_removed_event() {
    let db = TestDb::new().await;
    let store = db.store().await;
    store.append(request("note-a", ExpectedVersion::NoStream, 1)).await.unwrap();
    store.append(request("note-a", ExpectedVersion::Exact(1), 2)).await.unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    sqlx::query("set session_replication_role = replica").execute(&mut *conn).await.unwrap();
    sqlx::query("delete from events where stream_id = 'note-a' and version = 2").execute(&mut *conn).await.unwrap();
    drop(conn);
    let broken = store.verify_all().await.unwrap().first_broken.expect("found");
    assert_eq!(broken.stream_id, "note-a");
    db.drop_db().await;
}

/// A reader of a rare event type behind ten thousand other events gets it at once (per-type index
/// scans), exactly once, and its checkpoint passes everything.
#[tokio::test]
async fn a_filtered_reader_finds_a_rare_event_behind_a_long_log_once() {
    let db = TestDb::new().await;
    let store = db.store().await;
    for chunk in 0..10 {
        let requests: Vec<AppendRequest> =
            (0..1000).map(|i| request(&format!("note-{chunk}-{i}"), ExpectedVersion::NoStream, i)).collect();
        for r in store.append_batch(requests).await.unwrap() {
            r.unwrap();
        }
    }
    let rare = AppendRequest {
        writes: vec![StreamWrite {
            stream_id: "rare-1".into(),
            stream_type: "test.rare".into(),
            expected: ExpectedVersion::NoStream,
            events: vec![NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "rare".into(),
                schema_version: 1,
                payload: json!({}),
                metadata: json!({}),
            }],
        }],
        idempotency: None,
    };
    let rare_id = store.append(rare).await.unwrap().events[0].event_id;
    let mut at = LogPosition::START;
    let mut seen = Vec::new();
    for _ in 0..200 {
        let batch = store.read_all(at, 100, Some(&["rare".to_owned()])).await.unwrap();
        assert!(batch.checkpoint >= at, "the checkpoint never goes back");
        at = batch.checkpoint;
        seen.extend(batch.events.iter().map(|e| e.event_id));
        if !batch.full && seen.len() == 1 {
            break;
        }
        if !batch.full {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(seen, vec![rare_id]);
    let again = store.read_all(at, 100, Some(&["rare".to_owned(), "noted".to_owned()])).await.unwrap();
    assert!(again.events.is_empty(), "the checkpoint is past every event: {}", again.events.len());
    // Many matches of several types come in log order, a page at a time, none twice.
    let mut at = LogPosition::START;
    let mut all = Vec::new();
    for _ in 0..500 {
        let b = store.read_all(at, 700, Some(&["noted".to_owned(), "rare".to_owned()])).await.unwrap();
        assert!(b.events.windows(2).all(|w| w[0].log_position() < w[1].log_position()));
        at = b.checkpoint;
        all.extend(b.events.iter().map(|e| e.event_id));
        if all.len() >= 10_001 {
            break;
        }
        if !b.full {
            // Another test's open transaction holds the horizon for a moment.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(all.len(), 10_001);
    assert_eq!(all.iter().collect::<std::collections::HashSet<_>>().len(), 10_001);
    db.drop_db().await;
}
