//! Durable commands due at a time. Process managers schedule them from events (in the same
//! transaction as their checkpoint, so exactly once); the owner of the `scheduler` lease
//! dispatches them when the injected clock says they are due. A dispatch carries the idempotency
//! key `scheduled:{id}`, so a crash between the command and the status update cannot run it twice.

use crate::clock::SharedClock;
use crate::consumer::try_lease;
use crate::shutdown::Shutdown;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Row};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScheduledCommand {
    pub id: Uuid,
    pub context: String,
    pub command: String,
    pub payload: Value,
    pub due_at: DateTime<Utc>,
    /// The event that asked for it (process managers derive `id` from it, so it is asked once).
    pub source_event: Option<Uuid>,
}

impl ScheduledCommand {
    /// The id a process manager gives the command it schedules for `event_id`: stable, so
    /// handling the same event twice schedules it once.
    pub fn id_for(event_id: Uuid, purpose: &str) -> Uuid {
        Uuid::new_v5(&event_id, purpose.as_bytes())
    }
}

/// What became of a dispatched command.
#[derive(Debug, Clone, PartialEq)]
pub enum DispatchOutcome {
    /// Accepted; the value is recorded as the result.
    Done(Value),
    /// Refused by a rule (e.g. the milestone was already released by hand): final, not retried.
    Refused(String),
}

/// Runs a scheduled command (the gateway's command registry implements it). `Err` is a transient
/// failure: the command is tried again later.
pub trait Dispatcher: Send + Sync + 'static {
    fn dispatch<'a>(&'a self, command: &'a ScheduledCommand) -> BoxFuture<'a, Result<DispatchOutcome, String>>;
}

/// Records a command to run at `due_at`, in the caller's transaction. Returns false when it was
/// already scheduled.
pub async fn schedule(conn: &mut PgConnection, command: &ScheduledCommand) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into scheduled_commands (id, context, command, payload, due_at, source_event)
         values ($1, $2, $3, $4, $5, $6) on conflict (id) do nothing",
    )
    .bind(command.id)
    .bind(&command.context)
    .bind(&command.command)
    .bind(&command.payload)
    .bind(command.due_at)
    .bind(command.source_event)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Cancels a pending command (e.g. its reason went away). Returns false when it was not pending.
pub async fn cancel(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("update scheduled_commands set status = 'cancelled' where id = $1 and status = 'pending'")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub struct Scheduler {
    pool: PgPool,
    dispatcher: Arc<dyn Dispatcher>,
    clock: SharedClock,
    /// Transient failures tolerated before a command is marked failed.
    pub max_attempts: i32,
    pub poll_interval: Duration,
    /// How long a claimed command may stay `running` before another pass claims it again.
    pub lease: Duration,
}

impl Scheduler {
    pub fn new(pool: PgPool, dispatcher: Arc<dyn Dispatcher>, clock: SharedClock) -> Self {
        Self {
            pool,
            dispatcher,
            clock,
            max_attempts: 5,
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(300),
        }
    }

    /// Dispatches every command due by the clock's now. Returns how many were dispatched.
    pub async fn run_due(&self) -> Result<usize, sqlx::Error> {
        let now = self.clock.now();
        let mut total = 0;
        loop {
            // Claimed in a short statement of its own: no transaction stays open while commands
            // run (an open transaction would hold every log reader's horizon back).
            // A claimed command is `running` until its outcome is recorded; one left `running` by a
            // process that died is claimed again after the lease (its idempotency key makes the
            // second dispatch answer with the first one's result).
            let rows = sqlx::query(
                "update scheduled_commands set attempts = attempts + 1, dispatched_at = now(), status = 'running'
                 where id in (select id from scheduled_commands
                              where due_at <= $1
                                and (status = 'pending' or (status = 'running' and dispatched_at < now() - $2::interval))
                              order by due_at limit 100 for update skip locked)
                 returning id, context, command, payload, due_at, source_event, attempts",
            )
            .bind(now)
            .bind(format!("{} seconds", self.lease.as_secs()))
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                return Ok(total);
            }
            for row in rows {
                let command = ScheduledCommand {
                    id: row.try_get("id")?,
                    context: row.try_get("context")?,
                    command: row.try_get("command")?,
                    payload: row.try_get("payload")?,
                    due_at: row.try_get("due_at")?,
                    source_event: row.try_get("source_event")?,
                };
                let attempts: i32 = row.try_get("attempts")?;
                total += 1;
                let outcome = self.dispatcher.dispatch(&command).await;
                let (status, error, result, retry_at) = match outcome {
                    Ok(DispatchOutcome::Done(result)) => ("done", None, Some(result), None),
                    Ok(DispatchOutcome::Refused(reason)) => ("refused", Some(reason), None, None),
                    Err(error) if attempts >= self.max_attempts => ("failed", Some(error), None, None),
                    Err(error) => {
                        let backoff = chrono::Duration::seconds(2i64.pow(attempts.clamp(0, 10) as u32));
                        ("pending", Some(error), None, Some(now + backoff))
                    }
                };
                if status != "done" {
                    tracing::warn!(id = %command.id, command = %command.command, status, error = ?error, "scheduled command not done");
                }
                sqlx::query(
                    "update scheduled_commands set status = $2, last_error = $3, result = $4,
                            due_at = coalesce($5, due_at) where id = $1",
                )
                .bind(command.id)
                .bind(status)
                .bind(error)
                .bind(result)
                .bind(retry_at)
                .execute(&self.pool)
                .await?;
            }
        }
    }

    /// Runs until shutdown: the lease owner dispatches due commands every poll interval.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut lease = None;
        loop {
            if lease.is_none() {
                lease = try_lease(&self.pool, "scheduler").await.ok().flatten();
            }
            if lease.is_some() {
                if let Err(error) = self.run_due().await {
                    tracing::warn!(%error, "scheduler pass failed");
                }
            }
            if shutdown.sleep(self.poll_interval).await {
                return;
            }
        }
    }
}
