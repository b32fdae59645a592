//! The NATS relay, against a private nats-server that the test stops and restarts mid-stream.

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy};
use commands::relay::{NatsRelay, RelayConfig};
use commands::shutdown::shutdown_pair;
use commands::store::{EventStore, LogPosition};
use commands::{BusConfig, CommandBus, PgEventStore};
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use system_tests::account::{self, ctx, Account, AccountCommand as C};
use system_tests::nats::NatsServer;
use system_tests::TestDb;
use uuid::Uuid;

/// The log's order, once `want` events are readable (the horizon is cluster-wide).
async fn log_order(store: &PgEventStore, want: usize) -> Vec<Uuid> {
    let mut at = LogPosition::START;
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let b = store.read_all(at, 1000, None).await.unwrap();
        at = b.checkpoint;
        ids.extend(b.events.iter().map(|e| e.event_id));
        if ids.len() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ids
}

async fn stream_contents(url: &str, want: usize) -> Vec<(Uuid, String)> {
    let client = async_nats::connect(url).await.unwrap();
    let js = jetstream::new(client);
    let stream = js.get_stream("EVENTS").await.unwrap();
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    for _ in 0..50 {
        let mut batch =
            consumer.fetch().max_messages(500).expires(Duration::from_millis(300)).messages().await.unwrap();
        while let Some(m) = batch.next().await {
            let m = m.unwrap();
            let e: commands::RecordedEvent = serde_json::from_slice(&m.payload).unwrap();
            let id = m
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                .map(|v| v.to_string())
                .unwrap_or_else(|| panic!("headers: {:?}", m.headers));
            assert_eq!(id, e.event_id.to_string(), "Nats-Msg-Id is the event id");
            out.push((e.event_id, m.subject.to_string()));
        }
        if out.len() >= want {
            break;
        }
    }
    out
}

#[tokio::test]
async fn the_relay_publishes_in_order_and_catches_up_after_nats_restarts() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let bus = CommandBus::start(Arc::new(store.clone()), Arc::new(account::upcasters()), BusConfig::default());
    let mut nats = NatsServer::start().await;
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|_| Duration::from_millis(50))
        .connect(nats.url())
        .await
        .unwrap();
    let config = RelayConfig { poll_interval: Duration::from_millis(50), batch_size: 50, ..Default::default() };
    let relay = NatsRelay::new(store.clone(), client, config);
    let (_trigger, shutdown) = shutdown_pair();
    tokio::spawn(relay.run(shutdown));

    let write = |prefix: &'static str, n: usize| {
        let bus = bus.clone();
        async move {
            for i in 0..n {
                let s = account::stream(&format!("{prefix}{i}"));
                bus.execute::<Account>(&s, C::Open { owner: "o".into() }, ctx("open")).await.unwrap();
                bus.execute::<Account>(&s, C::Deposit { amount: 3 }, ctx("deposit")).await.unwrap();
            }
        }
    };
    write("a", 50).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    nats.stop();
    // Commands never wait on NATS.
    let started = std::time::Instant::now();
    write("b", 100).await;
    assert!(started.elapsed() < Duration::from_secs(20));
    tokio::time::sleep(Duration::from_millis(300)).await;
    nats.resume().await;
    write("c", 50).await;

    let expected = log_order(&store, 400).await;
    assert_eq!(expected.len(), 400);
    let mut got = Vec::new();
    for _ in 0..100 {
        got = stream_contents(&nats.url(), expected.len()).await;
        if got.len() >= expected.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ids: Vec<Uuid> = got.iter().map(|g| g.0).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "no event doubled");
    assert_eq!(ids, expected, "every event, in log order");
    assert_eq!(got[0].1, "events.test.account.opened");
    assert_eq!(got[1].1, "events.test.account.deposited");
    db.drop_db().await;
}
