//! What every reader of the global log shares: a lease (one owner per consumer, by a PostgreSQL
//! advisory lock held on a dedicated connection) and a checkpoint row that advances in the same
//! transaction as the consumer's own writes.

use crate::store::LogPosition;
use sqlx::{PgConnection, PgPool};

/// Ownership of one consumer name. Dropping it (or the process dying) ends the connection and
/// with it the advisory lock, so another process can take over.
pub struct Lease {
    _conn: PgConnection,
    pub name: String,
}

fn lock_key(name: &str) -> String {
    format!("consumer:{name}")
}

/// Many consumers of one process holding their leases on ONE dedicated connection (session-level
/// advisory locks are per connection and stack), instead of a connection each: a process with
/// fifteen projectors holds one idle connection for them, not fifteen. If that connection breaks,
/// every lock on it ends; the checkpoints' conditional updates still fence a second owner, as
/// with a lost connection of its own, and the next `try_lease` opens a new connection.
pub struct LeaseHost {
    pool: PgPool,
    conn: tokio::sync::Mutex<Option<PgConnection>>,
}

/// A lease held on a [`LeaseHost`]; dropping it unlocks.
pub struct HostedLease {
    host: std::sync::Arc<LeaseHost>,
    pub name: String,
}

impl LeaseHost {
    pub fn new(pool: PgPool) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self { pool, conn: tokio::sync::Mutex::new(None) })
    }

    /// Tries to become the owner of `name`; `None` while another process owns it.
    pub async fn try_lease(self: &std::sync::Arc<Self>, name: &str) -> Result<Option<HostedLease>, sqlx::Error> {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            *guard = Some(self.pool.acquire().await?.detach());
        }
        let conn = guard.as_mut().expect("connected above");
        let got = sqlx::query_scalar::<_, bool>("select pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(lock_key(name))
            .fetch_one(&mut *conn)
            .await;
        match got {
            Ok(true) => Ok(Some(HostedLease { host: self.clone(), name: name.to_owned() })),
            Ok(false) => Ok(None),
            Err(error) => {
                *guard = None;
                Err(error)
            }
        }
    }
}

impl Drop for HostedLease {
    fn drop(&mut self) {
        let host = self.host.clone();
        let key = lock_key(&self.name);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let mut guard = host.conn.lock().await;
                if let Some(conn) = guard.as_mut() {
                    if sqlx::query("select pg_advisory_unlock(hashtextextended($1, 0))")
                        .bind(key)
                        .execute(conn)
                        .await
                        .is_err()
                    {
                        *guard = None;
                    }
                }
            });
        }
    }
}

/// Tries to become the owner of `name`; `None` while another process owns it.
pub async fn try_lease(pool: &PgPool, name: &str) -> Result<Option<Lease>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let got: bool = sqlx::query_scalar("select pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(lock_key(name))
        .fetch_one(&mut *conn)
        .await?;
    if got {
        // Detached from the pool: the session lock must end with the lease, not travel back into
        // the pool with a reused connection.
        Ok(Some(Lease { _conn: conn.detach(), name: name.to_owned() }))
    } else {
        Ok(None)
    }
}

/// A consumer's stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub position: LogPosition,
    pub status: String,
    pub failed_position: Option<i64>,
    pub last_error: Option<String>,
}

/// Reads (creating if missing) the checkpoint of `name`.
pub async fn load_checkpoint(pool: &PgPool, name: &str) -> Result<Checkpoint, sqlx::Error> {
    sqlx::query("insert into consumer_checkpoints (name) values ($1) on conflict (name) do nothing")
        .bind(name)
        .execute(pool)
        .await?;
    let (txid, position, status, failed_position, last_error): (i64, i64, String, Option<i64>, Option<String>) =
        sqlx::query_as(
            "select txid::text::bigint, position, status, failed_position, last_error
             from consumer_checkpoints where name = $1",
        )
        .bind(name)
        .fetch_one(pool)
        .await?;
    Ok(Checkpoint { position: LogPosition { txid, position }, status, failed_position, last_error })
}

/// Moves the checkpoint from `from` to `to` inside the caller's transaction. Returns false when
/// the stored checkpoint is no longer `from` (another owner, or a rebuild swapped tables): the
/// caller must roll back and reload.
pub async fn advance_checkpoint(
    conn: &mut PgConnection,
    name: &str,
    from: LogPosition,
    to: LogPosition,
) -> Result<bool, sqlx::Error> {
    // The transaction that moves a checkpoint commits without waiting for its WAL flush
    // (`synchronous_commit = off`, for that transaction only). Safe: only a PostgreSQL crash can
    // lose such a commit, and then the checkpoint and the rows written with it are lost together,
    // so the consumer applies those events again (the relay's re-publications are dropped by
    // JetStream's Nats-Msg-Id de-duplication). Nothing a client was told was accepted is lost:
    // appends keep synchronous commits. Without this, every projector and the relay paid a disk
    // flush per batch, doubling or tripling the flushes of a lightly loaded server.
    let done = sqlx::query(
        "with relaxed as (select set_config('synchronous_commit', 'off', true))
         update consumer_checkpoints set txid = $3::text::xid8, position = $4, attempts = 0, updated_at = now()
         where name = $1 and txid = $2::text::xid8 and position = $5 and status = 'running'
           and (select true from relaxed)",
    )
    .bind(name)
    .bind(from.txid.to_string())
    .bind(to.txid.to_string())
    .bind(to.position)
    .bind(from.position)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a consumer stalled on one event: it stops until an operator resumes or rebuilds it.
pub async fn mark_stalled(
    pool: &PgPool,
    name: &str,
    position: i64,
    error: &str,
    attempts: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update consumer_checkpoints set status = 'stalled', failed_position = $2, last_error = $3,
                attempts = $4, updated_at = now() where name = $1",
    )
    .bind(name)
    .bind(position)
    .bind(error)
    .bind(attempts)
    .execute(pool)
    .await?;
    Ok(())
}

/// Puts a stalled consumer back to work (after the cause was fixed).
pub async fn resume(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update consumer_checkpoints set status = 'running', failed_position = null, last_error = null,
                attempts = 0, updated_at = now() where name = $1 and status = 'stalled'",
    )
    .bind(name)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Lag of a consumer: committed events it has not handled yet (of `event_types` when given) and
/// the age in seconds of the oldest of them.
pub async fn lag(pool: &PgPool, from: LogPosition, event_types: Option<&[String]>) -> Result<(i64, f64), sqlx::Error> {
    let (count, age): (i64, Option<f64>) = sqlx::query_as(
        "select count(*), extract(epoch from now() - min(recorded_at))::float8 from events
         where (txid, position) > ($1::text::xid8, $2)
           and ($3::text[] is null or event_type = any($3))",
    )
    .bind(from.txid.to_string())
    .bind(from.position)
    .bind(event_types)
    .fetch_one(pool)
    .await?;
    Ok((count, age.unwrap_or(0.0).max(0.0)))
}
