//! `TestApp::spawn()`: the whole server on port 0 over a fresh database, with real NATS, a hand-
//! moved clock, and every worker running; plus a small HTTP client for the tests.

use crate::db::TestDb;
use commands::shutdown::{shutdown_pair, ShutdownTrigger};
use commands::{ManualClock, PgEventStore, SharedClock};
use gateway::{AppState, Config};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

pub struct TestApp {
    pub base: String,
    pub db: TestDb,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    _shutdown: ShutdownTrigger,
}

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl TestApp {
    /// The configuration of a test server on `db`, with NATS subjects of its own.
    pub fn config(db: &TestDb) -> Config {
        let suffix = db.name.trim_start_matches("estest_").to_owned();
        Config {
            database_url: db.url.clone(),
            nats_url: nats_url(),
            nats_stream: format!("T{suffix}"),
            nats_subject_prefix: format!("t{suffix}"),
            bind_addr: "127.0.0.1:0".into(),
            db_pool_size: 10,
            max_body_bytes: 64 * 1024,
            consistency_wait_ms: 5000,
            session_hours: 24 * 30,
            pipeline_shards: 4,
            payment_webhook_secret: "whsec_test".to_owned().into(),
            identity_webhook_secret: "whsec_identity_test".to_owned().into(),
            payment_provider_url: "http://127.0.0.1:9".into(),
            payment_provider_key: "sk_test".to_owned().into(),
            run_workers: true,
        }
    }

    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Like `spawn`, with the configuration changed first (e.g. the payment provider's URL).
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb::new().await;
        let clock = ManualClock::new(chrono::Utc::now());
        let shared: SharedClock = clock.clone();
        let mut config = Self::config(&db);
        tweak(&mut config);
        PgEventStore::migrate(&db.pool).await.expect("migrated");
        let built = AppState::build(config, shared, gateway::contexts::all()).await.expect("app builds");
        let (trigger, shutdown) = shutdown_pair();
        built.state.start_workers(shutdown);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = built.router;
        tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            db,
            state: built.state,
            clock,
            http: reqwest::Client::new(),
            _shutdown: trigger,
        }
    }

    async fn reply(r: reqwest::Response) -> Reply {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body, headers }
    }

    /// POSTs a command; `token` signs it in.
    pub async fn command(&self, context: &str, name: &str, token: Option<&str>, body: Value) -> Reply {
        self.command_with(context, name, token, body, &[]).await
    }

    pub async fn command_with(
        &self,
        context: &str,
        name: &str,
        token: Option<&str>,
        body: Value,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.http.post(format!("{}/v1/{context}/commands/{name}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::reply(req.send().await.unwrap()).await
    }

    pub async fn raw_command(&self, context: &str, name: &str, token: Option<&str>, body: &'static str) -> Reply {
        let mut req = self
            .http
            .post(format!("{}/v1/{context}/commands/{name}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::reply(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::reply(req.send().await.unwrap()).await
    }

    /// Registers an account and logs in; returns (account id, token).
    pub async fn sign_up(&self, email: &str) -> (String, String) {
        let r = self
            .command(
                "identity",
                "register-account",
                None,
                json!({ "email": email, "password": "correct horse battery", "name": email }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let id = r.body["result"]["accountId"].as_str().unwrap().to_owned();
        (id, self.log_in(email).await)
    }

    /// A new session of an account made by `sign_up` (e.g. after the manual clock passed the
    /// idle timeout of the old one).
    pub async fn log_in(&self, email: &str) -> String {
        let r = self
            .command("identity", "log-in", None, json!({ "email": email, "password": "correct horse battery" }))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["result"]["token"].as_str().unwrap().to_owned()
    }

    /// A signed-up account that joined the marketplace with `role`.
    pub async fn member(&self, email: &str, role: &str) -> (String, String) {
        let (id, token) = self.sign_up(email).await;
        let r = self.command("marketplace", "join-marketplace", Some(&token), json!({ "role": role })).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        (id, token)
    }

    /// An admin created as the operator CLI does, signed in.
    pub async fn admin(&self, email: &str) -> (String, String) {
        let id = gateway::contexts::identity::create_admin(&self.state, email, "correct horse battery", "Admin")
            .await
            .unwrap();
        let r = self
            .command("identity", "log-in", None, json!({ "email": email, "password": "correct horse battery" }))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        (id.to_string(), r.body["result"]["token"].as_str().unwrap().to_owned())
    }

    pub async fn cleanup(self) {
        drop(self._shutdown);
        // The test's JetStream stream goes with its database.
        if let Some(client) = &self.state.nats {
            let _ = async_nats::jetstream::new(client.clone()).delete_stream(&self.state.config.nats_stream).await;
        }
        self.db.drop_db().await;
    }
}
