//! A projector process for the crash test: runs the (slow) account projector against
//! `DATABASE_URL` until it is killed.

use std::sync::Arc;
use system_tests::account::AccountProjector;

#[tokio::main]
async fn main() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(
            url.parse::<sqlx::postgres::PgConnectOptions>().expect("url").application_name("projector-worker"),
        )
        .await
        .expect("connect");
    let wake = commands::LogWake::listen(&pool).await.expect("listen");
    let store = commands::PgEventStore::new(pool, wake);
    let config = projections::RuntimeConfig { batch_size: 100, ..Default::default() };
    let runtime = projections::ProjectorRuntime::new(
        store,
        vec![Arc::new(AccountProjector { slow: true, ..Default::default() })],
        config,
    );
    let (_trigger, shutdown) = commands::shutdown::shutdown_pair();
    for task in runtime.spawn(shutdown) {
        let _ = task.await;
    }
}
