//! The NATS relay: publishes every committed event, in log order, to JetStream subject
//! `events.{context}.{stream_type}.{event_type}` with `Nats-Msg-Id` = event id, so JetStream
//! drops the copies a retry sends again. It keeps its own checkpoint and only moves it past events
//! JetStream acknowledged; while NATS is down it waits and retries, and commands never wait on it.

use crate::consumer::{advance_checkpoint, lag, load_checkpoint, try_lease};
use crate::metrics::METRICS;
use crate::shutdown::Shutdown;
use crate::store::{EventStore, LogPosition, RecordedEvent};
use crate::PgEventStore;
use async_nats::jetstream::{self, context::Publish};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The JetStream stream that captures `events.>`.
    pub stream_name: String,
    pub subject_prefix: String,
    /// Consumer name of the relay's checkpoint and lease.
    pub consumer_name: String,
    pub batch_size: i64,
    pub poll_interval: Duration,
    /// JetStream's de-duplication window; retries after an outage shorter than this are dropped.
    pub duplicate_window: Duration,
    /// How often the checkpoint is written while events flow. Between writes it lives in memory:
    /// after a crash, up to this much is published again and JetStream drops the duplicates
    /// (same `Nats-Msg-Id`, well inside `duplicate_window`). Writing it per batch cost a commit per
    /// append on a busy server.
    pub checkpoint_every: Duration,
    /// After a wake-up, how long to let more appends gather before reading (fewer, fuller reads).
    pub gather: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            stream_name: "EVENTS".into(),
            subject_prefix: "events".into(),
            consumer_name: "nats-relay".into(),
            batch_size: 500,
            poll_interval: Duration::from_millis(500),
            duplicate_window: Duration::from_secs(600),
            checkpoint_every: Duration::from_millis(250),
            gather: Duration::from_millis(2),
        }
    }
}

/// A subject token may not hold `.`, `*`, `>` or white space.
fn token(s: &str) -> String {
    s.chars().map(|c| if c == '.' || c == '*' || c == '>' || c.is_whitespace() { '_' } else { c }).collect()
}

/// `events.{context}.{stream_type}.{event_type}`; the stream type is stored as `{context}.{type}`.
pub fn subject_for(prefix: &str, event: &RecordedEvent) -> String {
    let (context, stream_type) = event.stream_type.split_once('.').unwrap_or(("default", &event.stream_type));
    format!("{prefix}.{}.{}.{}", token(context), token(stream_type), token(&event.event_type))
}

pub struct NatsRelay {
    store: PgEventStore,
    js: jetstream::Context,
    config: RelayConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("nats: {0}")]
    Nats(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl NatsRelay {
    pub fn new(store: PgEventStore, client: async_nats::Client, config: RelayConfig) -> Self {
        let mut js = jetstream::new(client);
        js.set_timeout(Duration::from_secs(5));
        METRICS.describe(
            "relay_published_total",
            "counter",
            "Events the NATS relay published and JetStream acknowledged.",
        );
        METRICS.describe("relay_lag_events", "gauge", "Committed events not yet acknowledged by JetStream.");
        METRICS.describe("relay_lag_seconds", "gauge", "Age of the oldest event not yet acknowledged by JetStream.");
        Self { store, js, config }
    }

    /// Sets the relay's lag gauges (called when metrics are scraped: counting the backlog on every
    /// batch would cost the most exactly when the relay is behind).
    pub async fn report_lag(pool: &sqlx::PgPool, consumer_name: &str) -> Result<(), sqlx::Error> {
        let cp = load_checkpoint(pool, consumer_name).await?;
        let (events, seconds) = lag(pool, cp.position, None).await?;
        METRICS.set("relay_lag_events", &[], events as f64);
        METRICS.set("relay_lag_seconds", &[], seconds);
        Ok(())
    }

    /// Creates the JetStream stream if it does not exist.
    pub async fn ensure_stream(&self) -> Result<(), RelayError> {
        self.js
            .get_or_create_stream(jetstream::stream::Config {
                name: self.config.stream_name.clone(),
                subjects: vec![format!("{}.>", self.config.subject_prefix)],
                duplicate_window: self.config.duplicate_window,
                ..Default::default()
            })
            .await
            .map_err(|e| RelayError::Nats(e.to_string()))?;
        Ok(())
    }

    /// Publishes one batch after `from`; returns the checkpoint to keep (only past acknowledged
    /// events) and the error that stopped it, if any.
    pub async fn publish_batch(&self, from: LogPosition) -> Result<(LogPosition, Option<RelayError>), RelayError> {
        Ok(self.publish_batch_inner(from).await?.0)
    }

    /// As `publish_batch`, also saying whether more may be ready at once (a full page).
    async fn publish_batch_inner(
        &self,
        from: LogPosition,
    ) -> Result<((LogPosition, Option<RelayError>), bool), RelayError> {
        let batch = self.store.read_all(from, self.config.batch_size, None).await?;
        if batch.events.is_empty() {
            return Ok(((batch.checkpoint, None), false));
        }
        let full = batch.full;
        let mut acks = Vec::with_capacity(batch.events.len());
        for event in &batch.events {
            let payload = serde_json::to_vec(event).expect("event serialises");
            let publish = Publish::build().payload(payload.into()).message_id(event.event_id.to_string());
            match self.js.send_publish(subject_for(&self.config.subject_prefix, event), publish).await {
                Ok(ack) => acks.push(ack),
                Err(e) => {
                    acks.clear();
                    return Ok(((from, Some(RelayError::Nats(e.to_string()))), false));
                }
            }
        }
        // Acknowledgements arrive in publish order; keep the acknowledged prefix.
        let mut reached = from;
        for (event, ack) in batch.events.iter().zip(acks) {
            match ack.await {
                Ok(_) => {
                    reached = event.log_position();
                    METRICS.inc("relay_published_total", &[], 1.0);
                }
                Err(e) => return Ok(((reached, Some(RelayError::Nats(e.to_string()))), false)),
            }
        }
        Ok(((batch.checkpoint.max(reached), None), full))
    }

    /// Runs until shutdown: waits for the lease, then relays forever.
    pub async fn run(self, mut shutdown: Shutdown) {
        let pool = self.store.pool().clone();
        let name = self.config.consumer_name.clone();
        let mut waiter = self.store.wake().waiter(None);
        'lease: loop {
            let _lease = match try_lease(&pool, &name).await {
                Ok(Some(lease)) => lease,
                Ok(None) | Err(_) => {
                    if shutdown.sleep(self.config.poll_interval * 4).await {
                        return;
                    }
                    continue;
                }
            };
            let mut backoff = Duration::from_millis(100);
            while let Err(error) = self.ensure_stream().await {
                tracing::warn!(%error, "JetStream stream not ready; retrying");
                if shutdown.sleep(backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            let mut at = match load_checkpoint(&pool, &name).await {
                Ok(cp) => cp.position,
                Err(_) => continue 'lease,
            };
            // What the database holds, and when it was written.
            let mut stored = at;
            let mut persisted = std::time::Instant::now();
            backoff = Duration::from_millis(100);
            loop {
                let stopping = shutdown.is_set();
                if stored != at && (stopping || persisted.elapsed() >= self.config.checkpoint_every) {
                    let saved = async {
                        let mut conn = pool.acquire().await?;
                        advance_checkpoint(&mut conn, &name, stored, at).await
                    }
                    .await;
                    match saved {
                        Ok(true) => {
                            stored = at;
                            persisted = std::time::Instant::now();
                        }
                        // Someone else moved our checkpoint (lease lost): start over.
                        Ok(false) | Err(_) => continue 'lease,
                    }
                }
                if stopping {
                    return;
                }
                let seen = waiter.seen();
                let ((next, error), full) = match self.publish_batch_inner(at).await {
                    Ok(r) => r,
                    Err(e) => ((at, Some(e)), false),
                };
                at = next;
                match error {
                    Some(error) => {
                        tracing::warn!(%error, "relay: NATS refused or unreachable; retrying");
                        shutdown.sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                    None => {
                        backoff = Duration::from_millis(100);
                        // Only a full page means more is ready now; otherwise wait for a wake-up
                        // (the horizon alone moves with every transaction on the server). The
                        // checkpoint is written within `checkpoint_every`, also when idle.
                        if !full {
                            let wait =
                                if stored != at { self.config.checkpoint_every } else { self.config.poll_interval };
                            tokio::select! {
                                _ = waiter.wait(seen, at.txid, wait) => {}
                                _ = shutdown.wait() => {}
                            }
                            shutdown.sleep(self.config.gather).await;
                        }
                    }
                }
            }
        }
    }
}
