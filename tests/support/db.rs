//! A fresh, migrated database per test, copied from a template migrated once per test process.

use commands::{LogWake, PgEventStore};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::str::FromStr;
use tokio::sync::{Mutex, OnceCell};

static TEMPLATE: OnceCell<String> = OnceCell::const_new();
static CREATE: Mutex<()> = Mutex::const_new(());

/// The server to create test databases on: `DATABASE_URL` (any database on it) or the local one.
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `admin_url` with another database name.
pub fn url_for(database: &str) -> String {
    let opts = PgConnectOptions::from_str(&admin_url()).expect("DATABASE_URL parses").database(database);
    opts.to_url_lossy().to_string()
}

async fn admin() -> sqlx::PgConnection {
    sqlx::PgConnection::connect(&admin_url()).await.expect("the test PostgreSQL is reachable (DATABASE_URL)")
}

async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("estest_tmpl_{}", uuid::Uuid::now_v7().simple());
            let mut conn = admin().await;
            sqlx::query(&format!("create database {name}")).execute(&mut conn).await.expect("create template");
            let pool = PgPool::connect(&url_for(&name)).await.expect("connect template");
            PgEventStore::migrate(&pool).await.expect("migrations apply");
            pool.close().await;
            name
        })
        .await
}

pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

impl TestDb {
    /// A new database with every migration applied.
    pub async fn new() -> Self {
        let template = template().await;
        let name = format!("estest_{}", uuid::Uuid::now_v7().simple());
        {
            let _one_at_a_time = CREATE.lock().await;
            let mut conn = admin().await;
            sqlx::query(&format!("create database {name} template {template}"))
                .execute(&mut conn)
                .await
                .expect("create test db");
        }
        let url = url_for(&name);
        let pool = PgPoolOptions::new().max_connections(10).connect(&url).await.expect("connect test db");
        Self { name, url, pool }
    }

    /// A store with its own LISTEN connection (as a process would have).
    pub async fn store(&self) -> PgEventStore {
        let wake = LogWake::listen(&self.pool).await.expect("listen");
        PgEventStore::new(self.pool.clone(), wake)
    }

    /// Another pool on the same database (a second "process").
    pub async fn another_pool(&self) -> PgPool {
        PgPoolOptions::new().max_connections(10).connect(&self.url).await.expect("connect")
    }

    /// Drops the database (tests call it at their end; `.ci/run` sweeps what a failed test left).
    pub async fn drop_db(self) {
        // Not `pool.close()`: it waits for checked-out connections, and the LISTEN connection is
        // never returned. FORCE ends whatever is still connected.
        drop(self.pool);
        let mut conn = admin().await;
        let _ = sqlx::query(&format!("drop database if exists {} with (force)", self.name)).execute(&mut conn).await;
    }
}
