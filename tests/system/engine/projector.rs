//! The projector runtime: exactly-once application, stalls, rebuilds, leases, crashes, waiting
//! for one's own writes.

use commands::shutdown::shutdown_pair;
use commands::{BusConfig, CommandBus, PgEventStore};
use projections::{Projector, ProjectorRuntime, RuntimeConfig};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use system_tests::account::{self, ctx, Account, AccountCommand as C, AccountProjector};
use system_tests::TestDb;

fn runtime(store: &PgEventStore, projector: AccountProjector, batch: i64) -> ProjectorRuntime {
    let config = RuntimeConfig {
        batch_size: batch,
        replay_batch_size: batch,
        poll_interval: Duration::from_millis(100),
        backoff_base: Duration::from_millis(5),
        max_attempts: 3,
    };
    ProjectorRuntime::new(store.clone(), vec![Arc::new(projector) as Arc<dyn Projector>], config)
}

async fn bus(store: &PgEventStore) -> CommandBus<PgEventStore> {
    CommandBus::start(Arc::new(store.clone()), Arc::new(account::upcasters()), BusConfig::default())
}

/// Opens `accounts` accounts with `deposits` deposits of 1 each; returns the events written.
async fn write_accounts(bus: &CommandBus<PgEventStore>, prefix: &str, accounts: usize, deposits: usize) -> i64 {
    let mut tasks = Vec::new();
    for a in 0..accounts {
        let bus = bus.clone();
        let s = account::stream(&format!("{prefix}{a}"));
        tasks.push(tokio::spawn(async move {
            bus.execute::<Account>(&s, C::Open { owner: format!("owner{a}") }, ctx("open")).await.unwrap();
            for _ in 0..deposits {
                bus.execute::<Account>(&s, C::Deposit { amount: 1 }, ctx("deposit")).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (accounts * (deposits + 1)) as i64
}

async fn applied_counts(db: &TestDb) -> (i64, i64, i64) {
    sqlx::query_as("select count(*), count(distinct event_id), (select coalesce(sum(balance), 0)::bigint from test_accounts) from test_applied")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

/// Waits until `total` events are applied; on a timeout, says where every consumer stands, with
/// its status and last error (that report is how a projector stalled by a rebuild's swap, about
/// one full suite run in six, was found).
async fn wait_for_rows(db: &TestDb, total: i64, what: &str) {
    if eventually(|| async { applied_counts(db).await.0 == total }).await {
        return;
    }
    let checkpoints: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "select name, txid::text || '/' || position, status, last_error from consumer_checkpoints order by name",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let log: (Option<i64>, i64) =
        sqlx::query_as("select max(position), count(*) from events").fetch_one(&db.pool).await.unwrap();
    panic!(
        "timed out waiting for {what}: expected {total} rows, (rows, distinct, balance) = {:?}; \
         checkpoints {checkpoints:?}; log (last position, events) = {log:?}",
        applied_counts(db).await
    );
}

/// Whether `check` holds within 30 s.
async fn eventually<F: std::future::Future<Output = bool>>(mut check: impl FnMut() -> F) -> bool {
    for _ in 0..600 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn wait_until<F: std::future::Future<Output = bool>>(check: impl FnMut() -> F, what: &str) {
    assert!(eventually(check).await, "timed out waiting for {what}");
}

#[tokio::test]
async fn a_projector_applies_each_event_once_and_reports_its_lag() {
    let db = TestDb::new().await;
    account::create_tables(&db.pool).await;
    let store = db.store().await;
    let bus = bus(&store).await;
    let total = write_accounts(&bus, "p", 20, 9).await;
    let rt = runtime(&store, AccountProjector::default(), 64);
    let before = rt.status().await.unwrap();
    assert_eq!(before[0].lag_events, total, "nothing applied yet");
    let (_trigger, shutdown) = shutdown_pair();
    rt.spawn(shutdown);
    wait_until(|| async { applied_counts(&db).await.0 == total }, "the projector to catch up").await;
    let (rows, distinct, balance) = applied_counts(&db).await;
    assert_eq!((rows, distinct, balance), (total, total, 20 * 9));
    let after = rt.status().await.unwrap();
    assert_eq!((after[0].lag_events, after[0].status.as_str()), (0, "running"));
    db.drop_db().await;
}

/// A failing event is retried with backoff, then the projector stalls with the event and error
/// visible; nothing after it is applied (never skipped). Resumed once fixed, it goes on.
#[tokio::test]
async fn a_failing_event_stalls_the_projector_visibly_until_resumed() {
    let db = TestDb::new().await;
    account::create_tables(&db.pool).await;
    let store = db.store().await;
    let bus = bus(&store).await;
    write_accounts(&bus, "before", 3, 1).await;
    let poisoned =
        bus.execute::<Account>(account::stream("bad"), C::Open { owner: "poison".into() }, ctx("open")).await.unwrap();
    write_accounts(&bus, "after", 2, 1).await;
    let projector = AccountProjector::default();
    let poison = projector.poison.clone();
    poison.store(true, Ordering::SeqCst);
    let rt = runtime(&store, projector, 100);
    let (_trigger, shutdown) = shutdown_pair();
    rt.spawn(shutdown);
    wait_until(|| async { rt.status().await.unwrap()[0].status == "stalled" }, "the stall").await;
    let status = &rt.status().await.unwrap()[0];
    assert_eq!(status.failed_position, poisoned.position);
    assert!(status.last_error.as_deref().unwrap_or_default().contains("poisoned owner"), "{status:?}");
    assert_eq!(applied_counts(&db).await.0, 6, "the events before the failing one are applied, none after");

    poison.store(false, Ordering::SeqCst);
    assert!(rt.resume("test-accounts").await.unwrap());
    wait_until(|| async { applied_counts(&db).await.0 == 11 }, "the projector to go on").await;
    assert_eq!(rt.status().await.unwrap()[0].status, "running");
    db.drop_db().await;
}

/// A rebuild replays into fresh tables while the live ones keep serving and the live projector
/// keeps running, then swaps them in one transaction; afterwards the live projector goes on.
#[tokio::test]
async fn a_rebuild_replays_into_fresh_tables_and_swaps_them_in() {
    // Warnings are captured with the test's output (shown when it fails).
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let db = TestDb::new().await;
    account::create_tables(&db.pool).await;
    // A secondary index: the rebuild drops it on the shadow table and builds it after the replay.
    sqlx::query("create index test_accounts_owner on test_accounts (owner)").execute(&db.pool).await.unwrap();
    let store = db.store().await;
    let bus = bus(&store).await;
    let first = write_accounts(&bus, "r", 30, 9).await;
    let rt = runtime(&store, AccountProjector::default(), 50);
    let (_trigger, shutdown) = shutdown_pair();
    rt.spawn(shutdown);
    wait_until(|| async { applied_counts(&db).await.0 == first }, "the live projector").await;
    // Damage the live table so the rebuild's result is distinguishable from it.
    sqlx::query("update test_accounts set balance = -1000").execute(&db.pool).await.unwrap();

    let writer = {
        let bus = bus.clone();
        tokio::spawn(async move { write_accounts(&bus, "during", 10, 4).await })
    };
    let progress = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = progress.clone();
    let rebuilt =
        rt.rebuild("test-accounts", &move |done, total| seen.lock().unwrap().push((done, total))).await.unwrap();
    let during = writer.await.unwrap();
    assert!(rebuilt >= first as u64);
    assert!(progress.lock().unwrap().len() >= 2, "progress is reported");

    let more = write_accounts(&bus, "later", 5, 1).await;
    let total = first + during + more;
    wait_for_rows(&db, total, "the live projector after the swap").await;
    let (rows, distinct, balance) = applied_counts(&db).await;
    assert_eq!((rows, distinct), (total, total), "each event applied exactly once across the swap");
    assert_eq!(balance, 30 * 9 + 10 * 4 + 5, "the damaged table was replaced by the replay");
    let leftovers: i64 = sqlx::query_scalar("select count(*) from pg_tables where tablename like 'test_%\\_\\_%'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(leftovers, 0, "no shadow or old tables remain");
    let indexes: Vec<String> = sqlx::query_scalar(
        "select regexp_replace(indexdef, '^.* USING ', '') from pg_indexes where tablename = 'test_accounts' order by 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(indexes, ["btree (id)", "btree (owner)"], "the swapped-in table has the live table's indexes");
    db.drop_db().await;
}

/// Two processes run the same projector: one owns it (advisory lock), every event applied once.
#[tokio::test]
async fn only_one_process_owns_a_projector() {
    let db = TestDb::new().await;
    account::create_tables(&db.pool).await;
    let store = db.store().await;
    let other_pool = db.another_pool().await;
    let other_store = PgEventStore::new(other_pool.clone(), commands::LogWake::listen(&other_pool).await.unwrap());
    let bus = bus(&store).await;
    let (_t1, s1) = shutdown_pair();
    let (_t2, s2) = shutdown_pair();
    runtime(&store, AccountProjector::default(), 10).spawn(s1);
    runtime(&other_store, AccountProjector::default(), 10).spawn(s2);
    let total = write_accounts(&bus, "o", 20, 4).await;
    wait_until(|| async { applied_counts(&db).await.0 >= total }, "both runtimes").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rows, distinct, _) = applied_counts(&db).await;
    assert_eq!((rows, distinct), (total, total));
    let holders: i64 = sqlx::query_scalar("select count(*) from pg_locks where locktype = 'advisory' and granted")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(holders >= 1);
    db.drop_db().await;
}

/// A projector process killed (SIGKILL) in the middle of a batch transaction and restarted
/// applies every event exactly once.
#[tokio::test]
async fn a_projector_killed_mid_batch_resumes_without_loss_or_double() {
    let db = TestDb::new().await;
    account::create_tables(&db.pool).await;
    let store = db.store().await;
    let bus = bus(&store).await;
    let total = write_accounts(&bus, "k", 40, 24).await; // 1000 events, batches of 100 at ~2 ms/event
    let worker = env!("CARGO_BIN_EXE_projector-worker");
    let spawn = || std::process::Command::new(worker).env("DATABASE_URL", &db.url).spawn().expect("worker starts");

    let mut child = spawn();
    // Wait until at least one batch committed and another batch transaction is open.
    wait_until(
        || async {
            let applied = applied_counts(&db).await.0;
            let open: i64 = sqlx::query_scalar(
                "select count(*) from pg_stat_activity where application_name = 'projector-worker' and xact_start is not null and backend_xid is not null",
            )
            .fetch_one(&db.pool)
            .await
            .unwrap();
            applied > 0 && applied < total && open > 0
        },
        "a batch in flight",
    )
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let (at_kill, distinct, _) = applied_counts(&db).await;
    assert!(at_kill < total, "the kill came before the end: {at_kill} of {total}");
    assert_eq!(at_kill, distinct);
    // The open batch died whole: the rows applied are exactly the events up to the committed
    // checkpoint (batches are not always 100 events: another test's open transaction can hold the
    // cluster-wide horizon and make a page short).
    let below_checkpoint: i64 = sqlx::query_scalar(
        "select count(*) from events e, consumer_checkpoints c
         where c.name = 'test-accounts' and e.event_type in ('opened', 'deposited', 'withdrawn')
           and (e.txid, e.position) <= (c.txid, c.position)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(at_kill, below_checkpoint, "rows and checkpoint were committed together");

    let mut child = spawn();
    wait_until(|| async { applied_counts(&db).await.0 >= total }, "the restarted worker").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let (rows, distinct, balance) = applied_counts(&db).await;
    assert_eq!((rows, distinct, balance), (total, total, 40 * 24));
    db.drop_db().await;
}

/// `wait_for_position` returns once the projectors of a table have passed a command's position.
#[tokio::test]
async fn a_query_can_wait_for_its_own_write() {
    let db = TestDb::new().await;
    account::create_tables(&db.pool).await;
    let store = db.store().await;
    let bus = bus(&store).await;
    let rt = runtime(&store, AccountProjector::default(), 100);
    let (_trigger, shutdown) = shutdown_pair();
    rt.spawn(shutdown);
    for i in 0..20 {
        let s = account::stream(&format!("w{i}"));
        let r = bus.execute::<Account>(&s, C::Open { owner: "w".into() }, ctx("open")).await.unwrap();
        let reached =
            rt.wait_for_position(&["public.test_accounts"], r.position.unwrap(), Duration::from_secs(5)).await.unwrap();
        assert!(reached);
        let found: i64 = sqlx::query_scalar("select count(*) from test_accounts where id = $1")
            .bind(&s)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(found, 1, "the row is visible once the wait returns");
    }
    db.drop_db().await;
}
