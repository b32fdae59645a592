//! A tiny aggregate for the engine's tests: an account that opens, takes deposits and pays out
//! withdrawals, never below zero. Its `deposited` event is at schema version 2 (v1 said `cents`),
//! to exercise upcasting.

use commands::scheduler::{DispatchOutcome, Dispatcher, ScheduledCommand};
use commands::store::RecordedEvent;
use commands::upcast::Upcasters;
use commands::{CommandBus, CommandContext, ExecuteError, PgEventStore};
use domain::kernel::{Aggregate, DomainEvent};
use futures::future::BoxFuture;
use projections::{ProjectionError, Projector, Tables};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Account {
    pub open: bool,
    pub owner: String,
    pub balance: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: i64 },
    Withdrawn { amount: i64 },
}

impl DomainEvent for AccountEvent {
    fn schema_version(event_type: &str) -> i32 {
        if event_type == "deposited" {
            2
        } else {
            1
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum AccountCommand {
    Open { owner: String },
    Deposit { amount: i64 },
    Withdraw { amount: i64 },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the account is not open")]
    NotOpen,
    #[error("amounts must be positive")]
    NotPositive,
    #[error("balance {balance} does not cover {amount}")]
    Insufficient { balance: i64, amount: i64 },
}

impl Aggregate for Account {
    const STREAM_TYPE: &'static str = "test.account";
    const SNAPSHOT_EVERY: i64 = 10;
    type Event = AccountEvent;
    type Command = AccountCommand;
    type Error = AccountError;

    fn decide(&self, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match command {
            AccountCommand::Open { owner } => {
                if self.open {
                    return Err(AccountError::AlreadyOpen);
                }
                Ok(vec![AccountEvent::Opened { owner: owner.clone() }])
            }
            AccountCommand::Deposit { amount } => {
                if !self.open {
                    return Err(AccountError::NotOpen);
                }
                if *amount <= 0 {
                    return Err(AccountError::NotPositive);
                }
                Ok(vec![AccountEvent::Deposited { amount: *amount }])
            }
            AccountCommand::Withdraw { amount } => {
                if !self.open {
                    return Err(AccountError::NotOpen);
                }
                if *amount <= 0 {
                    return Err(AccountError::NotPositive);
                }
                if *amount > self.balance {
                    return Err(AccountError::Insufficient { balance: self.balance, amount: *amount });
                }
                Ok(vec![AccountEvent::Withdrawn { amount: *amount }])
            }
        }
    }

    fn evolve(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { owner } => {
                self.open = true;
                self.owner = owner.clone();
            }
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
    }
}

/// The upcaster of `deposited` v1 (`{"cents": n}`) to v2 (`{"amount": n}`).
pub fn upcasters() -> Upcasters {
    let mut u = Upcasters::new();
    u.register("deposited", 1, |mut payload| {
        if let Some(map) = payload.as_object_mut() {
            if let Some(cents) = map.remove("cents") {
                map.insert("amount".into(), cents);
            }
        }
        payload
    });
    u
}

pub fn stream(id: &str) -> String {
    format!("account-{id}")
}

/// Read tables of the test projector. `applied` has no unique key on purpose: an event applied
/// twice shows as two rows.
pub const TABLES_SQL: &str = "
    create table if not exists public.test_accounts (id text primary key, owner text, balance bigint not null default 0, events int not null default 0);
    create table if not exists public.test_applied (event_id uuid not null, position bigint not null);";

pub async fn create_tables(pool: &sqlx::PgPool) {
    sqlx::raw_sql(TABLES_SQL).execute(pool).await.expect("test tables");
}

/// Projects accounts into `test_accounts` and records each applied event in `test_applied`.
#[derive(Default)]
pub struct AccountProjector {
    /// Sleep per event (to make "killed mid-batch" likely in the crash test).
    pub slow: bool,
    /// While set, an account opened by "poison" fails to project.
    pub poison: Arc<AtomicBool>,
}

impl Projector for AccountProjector {
    fn name(&self) -> &'static str {
        "test-accounts"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["opened", "deposited", "withdrawn"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["public.test_accounts", "public.test_applied"]
    }
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        tables: &'a Tables,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            let accounts = tables.get("public.test_accounts");
            let applied = tables.get("public.test_applied");
            for e in events {
                if self.slow {
                    sqlx::query("select pg_sleep(0.002)").execute(&mut *conn).await?;
                }
                let upcasters = upcasters();
                let mut e = e.clone();
                upcasters.upcast(&mut e);
                match e.event_type.as_str() {
                    "opened" => {
                        let owner = e.payload["owner"].as_str().unwrap_or_default();
                        if owner == "poison" && self.poison.load(Ordering::SeqCst) {
                            return Err(ProjectionError::Event {
                                position: e.position,
                                event_type: e.event_type.clone(),
                                message: "poisoned owner".into(),
                            });
                        }
                        sqlx::query(&format!("insert into {accounts} (id, owner, events) values ($1, $2, 1)"))
                            .bind(&e.stream_id)
                            .bind(owner)
                            .execute(&mut *conn)
                            .await?;
                    }
                    kind => {
                        let amount = e.payload["amount"].as_i64().unwrap_or(0);
                        let delta = if kind == "withdrawn" { -amount } else { amount };
                        sqlx::query(&format!(
                            "update {accounts} set balance = balance + $2, events = events + 1 where id = $1"
                        ))
                        .bind(&e.stream_id)
                        .bind(delta)
                        .execute(&mut *conn)
                        .await?;
                    }
                }
                sqlx::query(&format!("insert into {applied} (event_id, position) values ($1, $2)"))
                    .bind(e.event_id)
                    .bind(e.position)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        })
    }
}

/// A process manager: 48 hours after an account opens, a welcome bonus of 100 is deposited.
pub struct WelcomeBonus;

impl Projector for WelcomeBonus {
    fn name(&self) -> &'static str {
        "test-welcome-bonus"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["opened"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        _tables: &'a Tables,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            for e in events {
                let opened_at: chrono::DateTime<chrono::Utc> = serde_json::from_value(e.metadata["at"].clone())
                    .map_err(|err| ProjectionError::Other(err.to_string()))?;
                commands::scheduler::schedule(
                    conn,
                    &ScheduledCommand {
                        id: ScheduledCommand::id_for(e.event_id, "welcome-bonus"),
                        context: "test".into(),
                        command: "deposit".into(),
                        payload: json!({ "stream": e.stream_id, "amount": 100 }),
                        due_at: opened_at + chrono::Duration::hours(48),
                        source_event: Some(e.event_id),
                    },
                )
                .await?;
            }
            Ok(())
        })
    }
}

/// Runs scheduled `deposit` commands through the pipeline, keyed by the schedule id.
pub struct AccountDispatcher {
    pub bus: CommandBus<PgEventStore>,
    pub clock: commands::SharedClock,
}

impl Dispatcher for AccountDispatcher {
    fn dispatch<'a>(&'a self, command: &'a ScheduledCommand) -> BoxFuture<'a, Result<DispatchOutcome, String>> {
        Box::pin(async move {
            let stream = command.payload["stream"].as_str().ok_or("no stream")?.to_owned();
            let amount = command.payload["amount"].as_i64().ok_or("no amount")?;
            let mut ctx = CommandContext::new(&command.command, self.clock.now()).with_actor("scheduler", "system");
            ctx.idempotency = Some(commands::store::IdempotencyKey {
                scope: "scheduler".into(),
                key: format!("scheduled:{}", command.id),
                command_name: command.command.clone(),
                request_hash: command.id.to_string(),
            });
            match self.bus.execute::<Account>(stream, AccountCommand::Deposit { amount }, ctx).await {
                Ok(result) => {
                    Ok(DispatchOutcome::Done(json!({ "version": result.version, "position": result.position })))
                }
                Err(ExecuteError::Rejected(rule)) => Ok(DispatchOutcome::Refused(rule.to_string())),
                Err(other) => Err(other.to_string()),
            }
        })
    }
}

pub fn ctx(name: &str) -> CommandContext {
    CommandContext::new(name, chrono::Utc::now()).with_actor("tester", "admin")
}
