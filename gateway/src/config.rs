//! Typed configuration from the environment; every value can also be given as a flag.

use clap::Args;
use secrecy::SecretString;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// PostgreSQL holding the event log and the read tables.
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/escrow")]
    pub database_url: String,
    /// NATS with JetStream, for the relay and live queries. Commands never wait on it.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// JetStream stream that keeps the relayed events.
    #[arg(long, env = "NATS_STREAM", default_value = "EVENTS")]
    pub nats_stream: String,
    /// Subject prefix of relayed events: `{prefix}.{context}.{stream_type}.{event_type}`.
    #[arg(long, env = "NATS_SUBJECT_PREFIX", default_value = "events")]
    pub nats_subject_prefix: String,
    /// Where the HTTP server listens.
    #[arg(long, env = "BIND_ADDR", default_value = "0.0.0.0:8080")]
    pub bind_addr: String,
    /// Connections in the PostgreSQL pool.
    #[arg(long, env = "DB_POOL_SIZE", default_value_t = 32)]
    pub db_pool_size: u32,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,
    /// How long `?after=` waits for the projections, in milliseconds.
    #[arg(long, env = "CONSISTENCY_WAIT_MS", default_value_t = 5000)]
    pub consistency_wait_ms: u64,
    /// Session lifetime, in hours.
    #[arg(long, env = "SESSION_HOURS", default_value_t = 24 * 14)]
    pub session_hours: i64,
    /// Command pipeline writer tasks. Few is faster: each writer groups the commands that queued
    /// while its last append ran into one `es_append` call, and per-call cost dominates (2 was
    /// ~2x the throughput of 8 at 32 concurrent clients on 2 cores).
    #[arg(long, env = "PIPELINE_SHARDS", default_value_t = 2)]
    pub pipeline_shards: usize,
    /// Secret of the payment provider's webhook signatures (`Stripe-Signature`).
    #[arg(long, env = "PAYMENT_WEBHOOK_SECRET", default_value = "whsec_dev_only_change_me", hide_env_values = true)]
    pub payment_webhook_secret: SecretString,
    /// Secret of the identity-check provider's webhook signatures (same `t=…,v1=…` scheme).
    #[arg(
        long,
        env = "IDENTITY_WEBHOOK_SECRET",
        default_value = "whsec_identity_dev_only_change_me",
        hide_env_values = true
    )]
    pub identity_webhook_secret: SecretString,
    /// Base URL of the payment provider's API (checkout sessions); tests point it at a fake.
    #[arg(long, env = "PAYMENT_PROVIDER_URL", default_value = "https://api.stripe.com")]
    pub payment_provider_url: String,
    /// API key of the payment provider (sent as a bearer token).
    #[arg(long, env = "PAYMENT_PROVIDER_KEY", default_value = "sk_test_dev_only_change_me", hide_env_values = true)]
    pub payment_provider_key: SecretString,
    /// Run projectors, the relay and the scheduler in this process (turn off for API-only nodes).
    #[arg(long, env = "RUN_WORKERS", default_value_t = true, action = clap::ArgAction::Set)]
    pub run_workers: bool,
}

impl Config {
    pub fn consistency_wait(&self) -> Duration {
        Duration::from_millis(self.consistency_wait_ms)
    }
}
