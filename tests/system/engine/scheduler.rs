//! Durable scheduled commands with an injected clock, scheduled by a process manager.

use commands::scheduler::{DispatchOutcome, Dispatcher, ScheduledCommand, Scheduler};
use commands::{BusConfig, Clock, CommandBus, ManualClock, SharedClock};
use projections::{Projector, ProjectorRuntime, RuntimeConfig};
use std::sync::Arc;
use system_tests::account::{self, Account, AccountCommand as C, AccountDispatcher, WelcomeBonus};
use system_tests::TestDb;

#[tokio::test]
async fn a_process_manager_schedules_a_command_that_runs_once_when_due() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let bus = CommandBus::start(Arc::new(store.clone()), Arc::new(account::upcasters()), BusConfig::default());
    let start = chrono::Utc::now();
    let clock = ManualClock::new(start);
    let shared: SharedClock = clock.clone();
    let pm = ProjectorRuntime::new(
        store.clone(),
        vec![Arc::new(WelcomeBonus) as Arc<dyn Projector>],
        RuntimeConfig::default(),
    );
    let dispatcher = Arc::new(AccountDispatcher { bus: bus.clone(), clock: shared.clone() });
    let scheduler = Scheduler::new(db.pool.clone(), dispatcher, shared.clone());

    let s = account::stream("bonus");
    let ctx = commands::CommandContext::new("open", clock.now()).with_actor("ann", "client");
    bus.execute::<Account>(&s, C::Open { owner: "ann".into() }, ctx).await.unwrap();
    // Another test's open transaction can hold the log's horizon back for a moment.
    let mut caught = 0;
    for _ in 0..200 {
        caught += pm.catch_up("test-welcome-bonus").await.unwrap();
        if caught >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(caught, 1);

    clock.advance(chrono::Duration::hours(47));
    assert_eq!(scheduler.run_due().await.unwrap(), 0, "not due before 48 hours");
    assert_eq!(bus.load::<Account>(&s).await.unwrap().0.balance, 0);

    clock.advance(chrono::Duration::hours(1));
    assert_eq!(scheduler.run_due().await.unwrap(), 1);
    assert_eq!(bus.load::<Account>(&s).await.unwrap().0.balance, 100);
    assert_eq!(scheduler.run_due().await.unwrap(), 0, "dispatched once");

    // Handling the same event again (a replayed process manager) schedules nothing new.
    sqlx::query("update consumer_checkpoints set txid = '0', position = 0 where name = 'test-welcome-bonus'")
        .execute(&db.pool)
        .await
        .unwrap();
    pm.catch_up("test-welcome-bonus").await.unwrap();
    let (rows, status): (i64, String) =
        sqlx::query_as("select count(*), max(status) from scheduled_commands").fetch_one(&db.pool).await.unwrap();
    assert_eq!((rows, status.as_str()), (1, "done"));
    clock.advance(chrono::Duration::days(30));
    assert_eq!(scheduler.run_due().await.unwrap(), 0);
    assert_eq!(bus.load::<Account>(&s).await.unwrap().0.balance, 100);
    db.drop_db().await;
}

struct Flaky(std::sync::atomic::AtomicU32);

impl Dispatcher for Flaky {
    fn dispatch<'a>(
        &'a self,
        command: &'a ScheduledCommand,
    ) -> futures::future::BoxFuture<'a, Result<DispatchOutcome, String>> {
        Box::pin(async move {
            match command.command.as_str() {
                "refuse" => Ok(DispatchOutcome::Refused("already done".into())),
                // "work" fails the first time it is tried, whatever the order of dispatch.
                _ if self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 => {
                    Err("provider unreachable".into())
                }
                _ => Ok(DispatchOutcome::Done(serde_json::json!({ "ok": true }))),
            }
        })
    }
}

/// A transient failure is retried later (with backoff); a refusal is final and recorded.
#[tokio::test]
async fn scheduled_commands_retry_transient_failures_and_record_refusals() {
    let db = TestDb::new().await;
    let clock = ManualClock::new(chrono::Utc::now());
    let scheduler = Scheduler::new(db.pool.clone(), Arc::new(Flaky(0.into())), clock.clone());
    let mut conn = db.pool.acquire().await.unwrap();
    for name in ["work", "refuse"] {
        let cmd = ScheduledCommand {
            id: uuid::Uuid::now_v7(),
            context: "test".into(),
            command: name.into(),
            payload: serde_json::json!({}),
            due_at: clock.now(),
            source_event: None,
        };
        assert!(commands::scheduler::schedule(&mut conn, &cmd).await.unwrap());
        assert!(!commands::scheduler::schedule(&mut conn, &cmd).await.unwrap(), "scheduling twice is a no-op");
    }
    drop(conn);
    assert_eq!(scheduler.run_due().await.unwrap(), 2);
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("select command, status, last_error from scheduled_commands order by command")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(rows[0], ("refuse".into(), "refused".into(), Some("already done".into())));
    assert_eq!(rows[1], ("work".into(), "pending".into(), Some("provider unreachable".into())));
    assert_eq!(scheduler.run_due().await.unwrap(), 0, "backing off");
    clock.advance(chrono::Duration::seconds(10));
    assert_eq!(scheduler.run_due().await.unwrap(), 1);
    let status: String = sqlx::query_scalar("select status from scheduled_commands where command = 'work'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(status, "done");
    db.drop_db().await;
}

/// Two scheduler passes at once (two processes, or a pass overlapping a slow one): a due command
/// is dispatched once, and its status stays `done`.
#[tokio::test]
async fn concurrent_scheduler_passes_dispatch_a_command_once() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let bus = CommandBus::start(Arc::new(store.clone()), Arc::new(account::upcasters()), BusConfig::default());
    let clock = ManualClock::new(chrono::Utc::now());
    let shared: SharedClock = clock.clone();
    let s = account::stream("twice");
    bus.execute::<Account>(&s, C::Open { owner: "ann".into() }, commands::CommandContext::new("open", clock.now()))
        .await
        .unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    for _ in 0..1 {
        commands::scheduler::schedule(
            &mut conn,
            &ScheduledCommand {
                id: uuid::Uuid::now_v7(),
                context: "test".into(),
                command: "deposit".into(),
                payload: serde_json::json!({ "stream": s, "amount": 7 }),
                due_at: clock.now(),
                source_event: None,
            },
        )
        .await
        .unwrap();
    }
    drop(conn);
    let make = || {
        Scheduler::new(
            db.pool.clone(),
            Arc::new(AccountDispatcher { bus: bus.clone(), clock: shared.clone() }),
            shared.clone(),
        )
    };
    let (a, b) = (make(), make());
    let (x, y) = tokio::join!(a.run_due(), b.run_due());
    assert_eq!(x.unwrap() + y.unwrap(), 1, "claimed once");
    assert_eq!((a.run_due().await.unwrap(), b.run_due().await.unwrap()), (0, 0));
    assert_eq!(bus.load::<Account>(&s).await.unwrap().0.balance, 7);
    let status: String = sqlx::query_scalar("select status from scheduled_commands").fetch_one(&db.pool).await.unwrap();
    assert_eq!(status, "done");
    db.drop_db().await;
}
