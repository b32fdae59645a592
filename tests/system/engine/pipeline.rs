//! The command pipeline: decide/append, idempotency, conflicts, upcasting, snapshots.

use commands::store::{AppendRequest, EventStore, ExpectedVersion, IdempotencyKey, NewEvent, StreamWrite};
use commands::{BusConfig, CommandBus, ExecuteError, PgEventStore};
use serde_json::json;
use std::sync::Arc;
use system_tests::account::{self, ctx, Account, AccountCommand as C, AccountError};
use system_tests::TestDb;
use uuid::Uuid;

async fn bus(store: &PgEventStore, config: BusConfig) -> CommandBus<PgEventStore> {
    CommandBus::start(Arc::new(store.clone()), Arc::new(account::upcasters()), config)
}

#[tokio::test]
async fn commands_are_decided_and_refusals_write_nothing() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let bus = bus(&store, BusConfig::default()).await;
    let s = account::stream("a");
    let opened = bus.execute::<Account>(&s, C::Open { owner: "ann".into() }, ctx("open")).await.unwrap();
    assert_eq!((opened.version, opened.events.len()), (1, 1));
    assert!(opened.position.is_some());
    bus.execute::<Account>(&s, C::Deposit { amount: 50 }, ctx("deposit")).await.unwrap();
    let refused = bus.execute::<Account>(&s, C::Withdraw { amount: 80 }, ctx("withdraw")).await;
    assert!(matches!(refused, Err(ExecuteError::Rejected(AccountError::Insufficient { balance: 50, amount: 80 }))));
    assert_eq!(store.stream_version(&s).await.unwrap(), 2, "a refused command writes nothing");
    let meta = &store.read_stream(&s, 0).await.unwrap()[1].metadata;
    assert_eq!(meta["command_name"], "deposit");
    assert_eq!(meta["actor_id"], "tester");
    assert_eq!(meta["actor_role"], "admin");
    assert!(meta["command_id"].is_string() && meta["correlation_id"].is_string() && meta["at"].is_string());
    let (state, version) = bus.load::<Account>(&s).await.unwrap();
    assert_eq!((state.balance, version), (50, 2));
    db.drop_db().await;
}

fn keyed(name: &str, key: &str, body: &str) -> commands::CommandContext {
    let mut c = ctx(name);
    c.idempotency = Some(IdempotencyKey {
        scope: "tester".into(),
        key: key.into(),
        command_name: name.into(),
        request_hash: body.into(),
    });
    c
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_result_and_refuses_another_command() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let bus = bus(&store, BusConfig::default()).await;
    let s = account::stream("i");
    bus.execute::<Account>(&s, C::Open { owner: "ann".into() }, ctx("open")).await.unwrap();
    let first = bus.execute::<Account>(&s, C::Deposit { amount: 10 }, keyed("deposit", "k1", "h-10")).await.unwrap();
    let again = bus.execute::<Account>(&s, C::Deposit { amount: 10 }, keyed("deposit", "k1", "h-10")).await.unwrap();
    assert!(again.replayed && !first.replayed);
    assert_eq!((again.version, again.position, &again.events), (first.version, first.position, &first.events));
    assert_eq!(store.stream_version(&s).await.unwrap(), 2, "the replay wrote nothing");
    let other = bus.execute::<Account>(&s, C::Deposit { amount: 99 }, keyed("deposit", "k1", "h-99")).await;
    assert!(matches!(other, Err(ExecuteError::IdempotencyMismatch)));

    // Twenty concurrent requests with one key: one write, twenty identical answers.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let bus = bus.clone();
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            bus.execute::<Account>(&s, C::Deposit { amount: 5 }, keyed("deposit", "k2", "h-5")).await
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().unwrap().version);
    }
    assert!(versions.iter().all(|v| *v == 3), "{versions:?}");
    assert_eq!(store.stream_version(&s).await.unwrap(), 3);
    assert_eq!(bus.load::<Account>(&s).await.unwrap().0.balance, 15);
    db.drop_db().await;
}

/// One process serialises commands to a stream: many concurrent commands, no conflict, no loss.
#[tokio::test]
async fn concurrent_commands_to_one_stream_queue_in_one_writer() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let bus = bus(&store, BusConfig::default()).await;
    let s = account::stream("hot");
    bus.execute::<Account>(&s, C::Open { owner: "ann".into() }, ctx("open")).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..32 {
        let bus = bus.clone();
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                bus.execute::<Account>(&s, C::Deposit { amount: t * 10 + i + 1 }, ctx("deposit")).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let expected: i64 = (0..32).flat_map(|t| (0..10).map(move |i| t * 10 + i + 1)).sum();
    assert_eq!(
        bus.load::<Account>(&s).await.unwrap(),
        (Account { open: true, owner: "ann".into(), balance: expected }, 321)
    );
    assert_eq!(store.verify_stream(&s).await.unwrap().first_broken, None);
    db.drop_db().await;
}

/// Two processes writing one stream: the one holding a stale state meets a conflict, reloads,
/// decides again and succeeds; with no retries allowed it answers a conflict and writes nothing.
#[tokio::test]
async fn a_version_conflict_reruns_load_and_decide_a_bounded_number_of_times() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let a = bus(&store, BusConfig::default()).await;
    let b = bus(&store, BusConfig::default()).await;
    let b_no_retry = bus(&store, BusConfig { max_attempts: 1, ..Default::default() }).await;
    let s = account::stream("two");
    a.execute::<Account>(&s, C::Open { owner: "ann".into() }, ctx("open")).await.unwrap();
    b.execute::<Account>(&s, C::Deposit { amount: 10 }, ctx("deposit")).await.unwrap(); // b caches v2
    b_no_retry.execute::<Account>(&s, C::Deposit { amount: 1 }, ctx("deposit")).await.unwrap(); // caches v3
    a.execute::<Account>(&s, C::Withdraw { amount: 11 }, ctx("withdraw")).await.unwrap(); // a: v4, balance 0

    // b believes the balance is 10 (v2): its withdrawal must be re-decided on the real state.
    let stale = b.execute::<Account>(&s, C::Withdraw { amount: 10 }, ctx("withdraw")).await;
    assert!(
        matches!(stale, Err(ExecuteError::Rejected(AccountError::Insufficient { balance: 0, amount: 10 }))),
        "{stale:?}"
    );
    let ok = b.execute::<Account>(&s, C::Deposit { amount: 7 }, ctx("deposit")).await.unwrap();
    assert_eq!(ok.version, 5);

    let gave_up = b_no_retry.execute::<Account>(&s, C::Deposit { amount: 1 }, ctx("deposit")).await;
    assert!(matches!(gave_up, Err(ExecuteError::Conflict { attempts: 1, .. })), "{gave_up:?}");
    assert_eq!(store.stream_version(&s).await.unwrap(), 5, "the conflicting command wrote nothing");
    db.drop_db().await;
}

/// A stored event of an old shape (deposited v1 with `cents`) is upcast on read, never rewritten.
#[tokio::test]
async fn old_event_shapes_are_upcast_on_read() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let bus = bus(&store, BusConfig::default()).await;
    let s = account::stream("old");
    let old = |ty: &str, payload| NewEvent {
        event_id: Uuid::now_v7(),
        event_type: ty.into(),
        schema_version: 1,
        payload,
        metadata: json!({}),
    };
    store
        .append(AppendRequest {
            writes: vec![StreamWrite {
                stream_id: s.clone(),
                stream_type: "test.account".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![old("opened", json!({ "owner": "old" })), old("deposited", json!({ "cents": 500 }))],
            }],
            idempotency: None,
        })
        .await
        .unwrap();
    assert_eq!(bus.load::<Account>(&s).await.unwrap().0.balance, 500);
    let next = bus.execute::<Account>(&s, C::Deposit { amount: 1 }, ctx("deposit")).await.unwrap();
    assert_eq!(next.events[0].schema_version, 2, "new events are written in the current shape");
    let stored = store.read_stream(&s, 0).await.unwrap();
    assert_eq!(stored[1].payload, json!({ "cents": 500 }), "the stored event is untouched");
    db.drop_db().await;
}

/// Snapshots are taken every N events, used on load, and ignored (then rebuilt) when the state's
/// shape no longer matches.
#[tokio::test]
async fn snapshots_are_taken_and_rebuilt_when_the_state_shape_changes() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let bus1 = bus(&store, BusConfig::default()).await;
    let s = account::stream("snap");
    bus1.execute::<Account>(&s, C::Open { owner: "ann".into() }, ctx("open")).await.unwrap();
    for _ in 0..24 {
        bus1.execute::<Account>(&s, C::Deposit { amount: 2 }, ctx("deposit")).await.unwrap();
    }
    let mut snap = (0i64, serde_json::Value::Null);
    for _ in 0..100 {
        snap = sqlx::query_as("select version, state from snapshots where stream_id = $1")
            .bind(&s)
            .fetch_one(&db.pool)
            .await
            .unwrap_or(snap);
        if snap.0 == 20 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (version, state) = snap;
    assert_eq!(version, 20, "taken when the stream crossed 20 events");
    assert_eq!(state["balance"], 38);

    // A snapshot whose shape no longer fits is ignored: the state is folded from the events.
    sqlx::query("update snapshots set state = '{\"shape\": \"old\"}' where stream_id = $1")
        .bind(&s)
        .execute(&db.pool)
        .await
        .unwrap();
    let fresh = bus(&store, BusConfig::default()).await;
    assert_eq!(
        fresh.load::<Account>(&s).await.unwrap(),
        (Account { open: true, owner: "ann".into(), balance: 48 }, 25)
    );
    for _ in 0..5 {
        fresh.execute::<Account>(&s, C::Deposit { amount: 1 }, ctx("deposit")).await.unwrap();
    }
    // Snapshots are saved just after the answer (they are only a cache): give it a moment.
    let mut snap = (0i64, serde_json::Value::Null);
    for _ in 0..100 {
        snap = sqlx::query_as("select version, state from snapshots where stream_id = $1")
            .bind(&s)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        if snap.0 == 30 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!((snap.0, snap.1["balance"].as_i64()), (30, Some(53)), "rebuilt at the next multiple");
    // A snapshot of another state version is not even read.
    sqlx::query("update snapshots set state_version = 999, state = '{}' where stream_id = $1")
        .bind(&s)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(bus(&store, BusConfig::default()).await.load::<Account>(&s).await.unwrap().0.balance, 53);
    db.drop_db().await;
}

#[tokio::test]
async fn a_command_on_a_stream_of_another_type_is_refused() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let bus = bus(&store, BusConfig::default()).await;
    store
        .append(AppendRequest {
            writes: vec![StreamWrite {
                stream_id: "note-x".into(),
                stream_type: "test.note".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: "noted".into(),
                    schema_version: 1,
                    payload: json!({}),
                    metadata: json!({}),
                }],
            }],
            idempotency: None,
        })
        .await
        .unwrap();
    let r = bus.execute::<Account>("note-x", C::Open { owner: "x".into() }, ctx("open")).await;
    assert!(matches!(r, Err(ExecuteError::WrongStreamType { .. })), "{r:?}");
    db.drop_db().await;
}
