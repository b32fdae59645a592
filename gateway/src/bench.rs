//! `make bench`: the write path, read path, contention and rebuild figures, each beside a baseline
//! measured in the same run on the same database (the machines are shared and noisy, so ratios
//! are what compare). Prints a table and writes `target/bench-results.json`.
//!
//! Baseline: plain autocommit single-row INSERTs of event-sized rows into a table with a bigserial
//! key and `unique (stream_id, version)`, at the same concurrency.

use crate::app::AppState;
use crate::auth::Caller;
use crate::config::Config;
use crate::error::ApiError;
use crate::registry::{command, replay_states, Auth, CommandReply, ContextModule};
use commands::shutdown::shutdown_pair;
use commands::store::{AppendRequest, EventStore, ExpectedVersion, NewEvent, StreamWrite};
use commands::{CommandContext, ExecuteError, PgEventStore, SystemClock};
use domain::bench::{BenchCommand, BenchDetails, BenchMilestone, BenchStep, Counter};
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Workload sizes.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub new_streams: usize,
    pub lifecycles: usize,
    pub contention: Duration,
    pub projection_events: usize,
    pub freshness: Duration,
    pub freshness_rate: u32,
}

impl Sizes {
    /// The sizes.
    pub fn full() -> Self {
        Self {
            new_streams: 20_000,
            lifecycles: 4_000,
            contention: Duration::from_secs(10),
            projection_events: 1_000_000,
            freshness: Duration::from_secs(10),
            freshness_rate: 1_000,
        }
    }
    /// A smoke run (tests): every workload, tiny.
    pub fn smoke() -> Self {
        Self {
            new_streams: 200,
            lifecycles: 40,
            contention: Duration::from_millis(500),
            projection_events: 2_000,
            freshness: Duration::from_millis(500),
            freshness_rate: 200,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub workload: String,
    pub ops: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub baseline_per_second: Option<f64>,
    pub ratio: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub notes: String,
}

fn percentile(sorted: &[Duration], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    Some(sorted[i].as_secs_f64() * 1000.0)
}

fn row(
    workload: &str,
    ops: u64,
    elapsed: Duration,
    mut lat: Vec<Duration>,
    baseline: Option<f64>,
    notes: String,
) -> Row {
    lat.sort_unstable();
    let per_second = ops as f64 / elapsed.as_secs_f64();
    Row {
        workload: workload.to_owned(),
        ops,
        seconds: elapsed.as_secs_f64(),
        per_second,
        baseline_per_second: baseline,
        ratio: baseline.map(|b| per_second / b),
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
        p999_ms: percentile(&lat, 0.999),
        notes,
    }
}

/// Peak resident memory of this process (the server and the load generators share it).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<f64>().unwrap_or(0.0))
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn details(i: usize) -> BenchDetails {
    BenchDetails {
        project_id: Uuid::now_v7(),
        client_id: Uuid::now_v7(),
        freelancer_id: Uuid::now_v7(),
        title: format!("Milestone {i}: responsive landing page with checkout"),
        description: "Design and build the landing page, the pricing table and the checkout flow; deliver sources and a deployment guide.".into(),
        amount: 125_000 + i as i64,
        currency: "usd".into(),
        due_date: chrono::Utc::now() + chrono::Duration::days(30),
    }
}

/// The `bench` context: the five-step milestone over HTTP.
pub fn module() -> ContextModule {
    ContextModule {
        name: "bench",
        commands: vec![command::<BenchCommand, _, _>(
            "bench",
            "step",
            "anyone signed in (benchmarks only)",
            Auth::SignedIn,
            |state: AppState, caller: Caller, body: BenchCommand, ctx: CommandContext| async move {
                let account = caller.require()?;
                let ctx =
                    CommandContext { actor_id: Some(account.to_string()), actor_role: Some("bench".into()), ..ctx };
                let stream = format!("bench-{}", body.milestone_id);
                let result = state.bus.execute::<BenchMilestone>(stream, body, ctx).await.map_err(|e| match e {
                    ExecuteError::Rejected(r) => ApiError::Conflict(r.to_string()),
                    other => ApiError::Internal(other.to_string()),
                })?;
                Ok(CommandReply::ok(result))
            },
        )],
        tables: vec![],
        projectors: vec![],
        replayers: vec![
            ("bench.milestone", replay_states::<BenchMilestone>),
            ("bench.counter", replay_states::<Counter>),
        ],
        upcasters: |_| {},
        role_of: None,
        routes: None,
        route_docs: &[],
    }
}

async fn baseline(pool: &PgPool, rows: usize, concurrency: usize) -> Result<f64, sqlx::Error> {
    sqlx::query("drop table if exists bench_baseline").execute(pool).await?;
    sqlx::query(
        "create table bench_baseline (id bigserial primary key, stream_id text not null, version bigint not null,
         payload jsonb not null, unique (stream_id, version))",
    )
    .execute(pool)
    .await?;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let pool = pool.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= rows {
                    return Ok::<(), sqlx::Error>(());
                }
                let payload = serde_json::to_value(details(i)).expect("json");
                sqlx::query("insert into bench_baseline (stream_id, version, payload) values ($1, 1, $2)")
                    .bind(format!("baseline-{}", Uuid::now_v7()))
                    .bind(payload)
                    .execute(&pool)
                    .await?;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task")?;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// Runs `n` jobs on `concurrency` tasks; each job's latency is recorded.
async fn drive<F, Fut>(n: usize, concurrency: usize, job: F) -> (Duration, Vec<Duration>, u64)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let job = job.clone();
        let next = next.clone();
        let failures = failures.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    return lat;
                }
                let t = Instant::now();
                if !job(i).await {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                lat.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    (started.elapsed(), all, failures.load(Ordering::Relaxed))
}

fn ctx(name: &str) -> CommandContext {
    CommandContext::new(name, chrono::Utc::now()).with_actor("bench", "bench")
}

pub struct Bench {
    pub state: AppState,
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

/// Runs every workload on `config`'s database (which must be empty and migrated).
pub async fn run_suite(
    config: Config,
    sizes: Sizes,
    mut log: impl FnMut(&Row),
) -> Result<Vec<Row>, Box<dyn std::error::Error + Send + Sync>> {
    let mut modules = crate::contexts::all();
    modules.push(module());
    let built = AppState::build(config, Arc::new(SystemClock), modules).await?;
    let state = built.state.clone();
    let (trigger, shutdown) = shutdown_pair();
    let workers = if std::env::var("BENCH_NO_WORKERS").is_ok() { Vec::new() } else { state.start_workers(shutdown) };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let router = built.router;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await;
    });
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let mut out = Vec::new();

    // An account to sign the HTTP commands.
    let ctx0 = ctx("register-account");
    crate::contexts::identity::register(&state, "bench@example.com", "bench password 1", "Bench", ctx0).await?;
    let login: serde_json::Value = http
        .post(format!("{base}/v1/identity/commands/log-in"))
        .json(&json!({ "email": "bench@example.com", "password": "bench password 1" }))
        .send()
        .await?
        .json()
        .await?;
    let token = login["result"]["token"].as_str().ok_or("log-in failed")?.to_owned();
    let b = Bench { state: state.clone(), base: base.clone(), token, http };
    let pool = state.pool.clone();

    // `BENCH_ONLY=A,C` runs only those workloads (the baselines always run).
    let only = std::env::var("BENCH_ONLY").ok();
    let wanted = |w: &str| only.as_deref().is_none_or(|o| o.split(',').any(|x| x.trim().eq_ignore_ascii_case(w)));

    // Baselines at concurrency 1 and 32.
    let base1 = baseline(&pool, sizes.new_streams.min(5_000), 1).await?;
    let base32 = baseline(&pool, sizes.new_streams, 32).await?;
    let r = row(
        "baseline: raw INSERT, c=1",
        sizes.new_streams.min(5_000) as u64,
        Duration::from_secs_f64(sizes.new_streams.min(5_000) as f64 / base1),
        vec![],
        None,
        String::new(),
    );
    log(&r);
    out.push(r);
    let r = row(
        "baseline: raw INSERT, c=32",
        sizes.new_streams as u64,
        Duration::from_secs_f64(sizes.new_streams as f64 / base32),
        vec![],
        None,
        String::new(),
    );
    log(&r);
    out.push(r);

    // A. New streams, in-process, c=1 and c=32.
    if wanted("A") {
        for (concurrency, n, baseline) in
            [(1usize, sizes.new_streams.min(5_000), base1), (32, sizes.new_streams, base32)]
        {
            let bus = state.bus.clone();
            let (elapsed, lat, failed) = drive(n, concurrency, move |i| {
                let bus = bus.clone();
                async move {
                    let id = Uuid::now_v7();
                    let c = BenchCommand { milestone_id: id, step: BenchStep::Create, details: Some(details(i)) };
                    bus.execute::<BenchMilestone>(format!("bench-{id}"), c, ctx("create")).await.is_ok()
                }
            })
            .await;
            let r = row(
                &format!("A new streams, in-process, c={concurrency}"),
                n as u64,
                elapsed,
                lat,
                Some(baseline),
                format!("failed {failed}"),
            );
            log(&r);
            out.push(r);
        }
    }
    // A over HTTP, 32 keep-alive clients.
    if wanted("A") {
        let (elapsed, lat, failed) =
            http_drive(&b, sizes.new_streams, 32, |i| (Uuid::now_v7(), vec![BenchStep::Create], i)).await;
        let r = row(
            "A new streams, HTTP, c=32",
            sizes.new_streams as u64,
            elapsed,
            lat,
            Some(base32),
            format!("failed {failed}"),
        );
        log(&r);
        out.push(r);
    }

    // B. Lifecycles: create → fund → submit → approve → release, c=32.
    if wanted("B") {
        let bus = state.bus.clone();
        let n = sizes.lifecycles;
        let (elapsed, lat, failed) = drive(n, 32, move |i| {
            let bus = bus.clone();
            async move {
                let id = Uuid::now_v7();
                let stream = format!("bench-{id}");
                for step in
                    [BenchStep::Create, BenchStep::Fund, BenchStep::Submit, BenchStep::Approve, BenchStep::Release]
                {
                    let details = (step == BenchStep::Create).then(|| details(i));
                    let c = BenchCommand { milestone_id: id, step, details };
                    if bus.execute::<BenchMilestone>(stream.clone(), c, ctx("step")).await.is_err() {
                        return false;
                    }
                }
                true
            }
        })
        .await;
        let r = row(
            "B lifecycle (5 commands), in-process, c=32",
            (n * 5) as u64,
            elapsed,
            per_command(lat, 5),
            Some(base32),
            format!("failed {failed}"),
        );
        log(&r);
        out.push(r);
        let (elapsed, lat, failed) = http_drive(&b, n, 32, |i| {
            (
                Uuid::now_v7(),
                vec![BenchStep::Create, BenchStep::Fund, BenchStep::Submit, BenchStep::Approve, BenchStep::Release],
                i,
            )
        })
        .await;
        let r = row(
            "B lifecycle (5 commands), HTTP, c=32",
            (n * 5) as u64,
            elapsed,
            per_command(lat, 5),
            Some(base32),
            format!("failed {failed}"),
        );
        log(&r);
        out.push(r);
    }

    // C. Contention: 32 writers, 10 streams.
    if wanted("C") {
        let plain = contention(&state, sizes.contention, false).await?;
        let queued = contention(&state, sizes.contention, true).await?;
        let (plain_notes, queued_notes) = (plain.notes(), queued.notes());
        let r =
            row("C contention, plain optimistic retry", plain.ok, sizes.contention, plain.latencies, None, plain_notes);
        log(&r);
        out.push(r);
        let mut r = row(
            "C contention, one writer per stream",
            queued.ok,
            sizes.contention,
            queued.latencies,
            Some(plain.ok as f64 / sizes.contention.as_secs_f64()),
            queued_notes,
        );
        r.baseline_per_second = Some(plain.ok as f64 / sizes.contention.as_secs_f64());
        log(&r);
        out.push(r);
    }

    // E. Freshness under a steady load, with the projectors running.
    if wanted("E") {
        let r = freshness(&b, sizes).await?;
        log(&r);
        out.push(r);
    }

    // D. Projection catch-up and rebuild, with the live workers stopped.
    trigger.trigger();
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
    }
    if wanted("D") {
        for r in projection(&state, sizes.projection_events).await? {
            log(&r);
            out.push(r);
        }
    }
    // The run's JetStream stream goes with its database (they piled up on the NATS server).
    if let Some(client) = &state.nats {
        let _ = async_nats::jetstream::new(client.clone()).delete_stream(&state.config.nats_stream).await;
    }
    Ok(out)
}

fn per_command(lat: Vec<Duration>, commands: u32) -> Vec<Duration> {
    lat.into_iter().map(|d| d / commands).collect()
}

/// HTTP load: each job sends its steps for one new milestone, in order.
async fn http_drive(
    b: &Bench,
    n: usize,
    concurrency: usize,
    plan: impl Fn(usize) -> (Uuid, Vec<BenchStep>, usize) + Send + Sync + 'static,
) -> (Duration, Vec<Duration>, u64) {
    let http = b.http.clone();
    let url = format!("{}/v1/bench/commands/step", b.base);
    let token = b.token.clone();
    drive(n, concurrency, move |i| {
        let (id, steps, k) = plan(i);
        let http = http.clone();
        let url = url.clone();
        let token = token.clone();
        async move {
            for step in steps {
                let d = (step == BenchStep::Create).then(|| details(k));
                let body = json!({ "milestoneId": id, "step": step, "details": d });
                match http.post(&url).bearer_auth(&token).json(&body).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                    }
                    _ => return false,
                }
            }
            true
        }
    })
    .await
}

struct Contention {
    ok: u64,
    conflicts: u64,
    failed: u64,
    latencies: Vec<Duration>,
    verified: bool,
}

impl Contention {
    fn notes(&self) -> String {
        format!(
            "conflicts {} ({:.2} per success), failed after retries {}, log check {}",
            self.conflicts,
            self.conflicts as f64 / self.ok.max(1) as f64,
            self.failed,
            if self.verified { "ok (versions = successes, nothing lost or doubled)" } else { "MISMATCH" }
        )
    }
}

/// 32 writers on the same 10 counters for `duration`: either straight to the store with plain
/// optimistic retry (load, decide, append; retry on conflict, 5 attempts), or through the
/// pipeline (one writer per stream in this process).
async fn contention(
    state: &AppState,
    duration: Duration,
    queued: bool,
) -> Result<Contention, Box<dyn std::error::Error + Send + Sync>> {
    let tag = Uuid::now_v7().simple().to_string();
    let streams: Vec<String> = (0..10).map(|i| format!("counter-{tag}-{i}")).collect();
    let deadline = Instant::now() + duration;
    let conflicts_before = conflict_count();
    let mut tasks = Vec::new();
    for w in 0..32usize {
        let state = state.clone();
        let streams = streams.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut conflicts, mut failed, mut lat) = (0u64, 0u64, 0u64, Vec::new());
            let mut i = w;
            while Instant::now() < deadline {
                let stream = &streams[i % streams.len()];
                i += 7;
                let t = Instant::now();
                if queued {
                    match state.bus.execute::<Counter>(stream.clone(), (), ctx("increment")).await {
                        Ok(_) => ok += 1,
                        Err(_) => failed += 1,
                    }
                } else {
                    let mut attempt = 0;
                    loop {
                        attempt += 1;
                        let (counter, version) = match state.bus.load::<Counter>(stream).await {
                            Ok(v) => v,
                            Err(_) => {
                                failed += 1;
                                break;
                            }
                        };
                        let events = domain::Aggregate::decide(&counter, &()).expect("increment");
                        let (ty, payload) = domain::kernel::encode_event(&events[0]).expect("encode");
                        let req = AppendRequest {
                            writes: vec![StreamWrite {
                                stream_id: stream.clone(),
                                stream_type: "bench.counter".into(),
                                expected: ExpectedVersion::Exact(version),
                                events: vec![NewEvent {
                                    event_id: Uuid::now_v7(),
                                    event_type: ty,
                                    schema_version: 1,
                                    payload,
                                    metadata: ctx("increment").metadata(),
                                }],
                            }],
                            idempotency: None,
                        };
                        match state.store.append(req).await {
                            Ok(_) => {
                                ok += 1;
                                break;
                            }
                            Err(commands::store::AppendError::Conflict { .. }) if attempt < 5 => conflicts += 1,
                            Err(_) => {
                                conflicts += 1;
                                failed += 1;
                                break;
                            }
                        }
                    }
                }
                lat.push(t.elapsed());
            }
            (ok, conflicts, failed, lat)
        }));
    }
    let mut c = Contention { ok: 0, conflicts: 0, failed: 0, latencies: Vec::new(), verified: false };
    for t in tasks {
        let (ok, conflicts, failed, lat) = t.await?;
        c.ok += ok;
        c.conflicts += conflicts;
        c.failed += failed;
        c.latencies.extend(lat);
    }
    if queued {
        c.conflicts = conflict_count() - conflicts_before;
    }
    // Nothing lost or doubled: the streams hold exactly one event per success, values 1..n.
    let mut total = 0;
    let mut contiguous = true;
    for s in &streams {
        let events = state.store.read_stream(s, 0).await?;
        total += events.len() as u64;
        contiguous &= events.iter().enumerate().all(|(i, e)| e.payload["value"].as_i64() == Some(i as i64 + 1));
    }
    c.verified = total == c.ok && contiguous;
    Ok(c)
}

fn conflict_count() -> u64 {
    commands::metrics::METRICS
        .render()
        .lines()
        .find(|l| l.starts_with("command_conflicts_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

/// E: a steady rate of create commands over HTTP; for each, the time from its response until the
/// read table's projector has committed past its position (row and checkpoint commit together).
async fn freshness(b: &Bench, sizes: Sizes) -> Result<Row, Box<dyn std::error::Error + Send + Sync>> {
    let pool = b.state.pool.clone();
    // A projector that owns a table of these events: the audit log projects every marketplace
    // event; create-project events land in marketplace.projects through marketplace-projects.
    crate::contexts::identity::register(&b.state, "fresh@example.com", "bench password 1", "Fresh", ctx("register"))
        .await?;
    let login: serde_json::Value = b
        .http
        .post(format!("{}/v1/identity/commands/log-in", b.base))
        .json(&json!({ "email": "fresh@example.com", "password": "bench password 1" }))
        .send()
        .await?
        .json()
        .await?;
    let token = login["result"]["token"].as_str().ok_or("log-in")?.to_owned();
    b.http
        .post(format!("{}/v1/marketplace/commands/join-marketplace", b.base))
        .bearer_auth(&token)
        .json(&json!({ "role": "client" }))
        .send()
        .await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(i64, Instant)>();
    // The watcher: resolves every answered command once the projector's checkpoint passed it.
    let watcher = tokio::spawn(async move {
        let mut pending: Vec<(i64, Instant)> = Vec::new();
        let mut lags = Vec::new();
        let mut closed = false;
        loop {
            while let Ok(p) = rx.try_recv() {
                pending.push(p);
            }
            if closed && pending.is_empty() {
                return lags;
            }
            if !pending.is_empty() {
                let positions: Vec<i64> = pending.iter().map(|p| p.0).collect();
                let done: Vec<i64> = sqlx::query_scalar(
                    "select e.position from events e, consumer_checkpoints c
                     where c.name = 'marketplace-projects' and e.position = any($1)
                       and (e.txid, e.position) <= (c.txid, c.position)",
                )
                .bind(&positions)
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
                let now = Instant::now();
                pending.retain(|(p, at)| {
                    if done.contains(p) {
                        lags.push(now - *at);
                        false
                    } else {
                        true
                    }
                });
            }
            match tokio::time::timeout(Duration::from_millis(1), rx.recv()).await {
                Ok(Some(p)) => pending.push(p),
                Ok(None) => closed = true,
                Err(_) => {}
            }
        }
    });
    let total = (sizes.freshness.as_secs_f64() * sizes.freshness_rate as f64) as usize;
    let interval = Duration::from_secs_f64(1.0 / sizes.freshness_rate as f64);
    let started = Instant::now();
    let mut sends = Vec::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..total {
        ticker.tick().await;
        let http = b.http.clone();
        let url = format!("{}/v1/marketplace/commands/create-project", b.base);
        let token = token.clone();
        let tx = tx.clone();
        sends.push(tokio::spawn(async move {
            let body = json!({
                "projectId": Uuid::now_v7(), "currency": "usd", "platformFeePercent": 10,
                "intakeForm": { "title": format!("Project {i}"), "description": "Landing page and checkout", "category": "web",
                                "requiredSkills": ["rust", "sql"], "budget": 100000, "timeline": "2 weeks", "deliverables": ["site"] }
            });
            let t = Instant::now();
            let r = http.post(url).bearer_auth(token).json(&body).send().await.ok()?;
            let v: serde_json::Value = r.json().await.ok()?;
            let position = v["position"].as_i64()?;
            let _ = tx.send((position, Instant::now()));
            Some(t.elapsed())
        }));
    }
    drop(tx);
    let mut cmd_lat = Vec::new();
    for s in sends {
        if let Ok(Some(d)) = s.await {
            cmd_lat.push(d);
        }
    }
    let elapsed = started.elapsed();
    let mut lags = watcher.await?;
    lags.sort_unstable();
    cmd_lat.sort_unstable();
    let notes = format!(
        "freshness p50 {:.1} ms, p99 {:.1} ms (response → row committed); command p50 {:.1} ms, p99 {:.1} ms",
        percentile(&lags, 0.5).unwrap_or(f64::NAN),
        percentile(&lags, 0.99).unwrap_or(f64::NAN),
        percentile(&cmd_lat, 0.5).unwrap_or(f64::NAN),
        percentile(&cmd_lat, 0.99).unwrap_or(f64::NAN)
    );
    Ok(row(
        &format!("E freshness at {}/s over HTTP", sizes.freshness_rate),
        lags.len() as u64,
        elapsed,
        lags,
        None,
        notes,
    ))
}

/// D: appends `n` marketplace events straight to the log (projects with one milestone each),
/// then times the projectors' catch-up, a rebuild with swap, and the same projection written as
/// one set-based SQL statement (the baseline).
async fn projection(state: &AppState, n: usize) -> Result<Vec<Row>, Box<dyn std::error::Error + Send + Sync>> {
    let store: &PgEventStore = &state.store;
    let projects = n / 2;
    let mut written = 0usize;
    let now = chrono::Utc::now();
    let generating = Instant::now();
    while written < projects {
        let chunk = (projects - written).min(500);
        let mut requests = Vec::with_capacity(chunk);
        for i in 0..chunk {
            let p = Uuid::now_v7();
            let m = Uuid::now_v7();
            let meta = ctx("create-project").metadata();
            let created = json!({ "projectId": p, "clientId": Uuid::now_v7(), "intakeForm": { "title": format!("P{}", written + i), "description": "Landing page and checkout",
                "category": "web", "requiredSkills": ["rust", "sql"], "budget": 100000, "timeline": "2 weeks", "deliverables": ["site"], "additionalRequirements": null },
                "totalAmount": 100000, "currency": "usd", "platformFeePercent": 10, "status": "draft", "at": now });
            let added = json!({ "projectId": p, "milestoneId": m, "title": "Design", "description": "Mockups", "order": 1, "amount": 60000, "currency": "usd",
                "dueDate": now, "funded": false, "at": now });
            let ev = |t: &str, payload: serde_json::Value| NewEvent {
                event_id: Uuid::now_v7(),
                event_type: t.into(),
                schema_version: 1,
                payload,
                metadata: meta.clone(),
            };
            requests.push(AppendRequest {
                writes: vec![StreamWrite {
                    stream_id: format!("mkt-project-{p}"),
                    stream_type: "marketplace.project".into(),
                    expected: ExpectedVersion::NoStream,
                    events: vec![ev("project-created", created), ev("milestone-added", added)],
                }],
                idempotency: None,
            });
        }
        for r in store.append_batch(requests).await? {
            r?;
        }
        written += chunk;
    }
    let events = (projects * 2) as u64;
    eprintln!(
        "D: {events} events written in {:.1} s ({:.0} events/s)",
        generating.elapsed().as_secs_f64(),
        events as f64 / generating.elapsed().as_secs_f64()
    );
    let mut rows = Vec::new();
    for name in ["marketplace-projects", "marketplace-audit-log"] {
        let t = Instant::now();
        let applied = state.runtime.catch_up(name).await?;
        let elapsed = t.elapsed();
        rows.push(row(
            &format!("D catch-up {name}"),
            applied,
            elapsed,
            vec![],
            None,
            format!("{events} events in the log"),
        ));
    }
    // Baseline: the same rows from one set-based statement per table, into scratch copies.
    let pool = &state.pool;
    sqlx::query("drop table if exists bench_projects, bench_milestones").execute(pool).await?;
    sqlx::query("create table bench_projects (like marketplace.projects including all)").execute(pool).await?;
    sqlx::query("create table bench_milestones (like marketplace.milestones including all)").execute(pool).await?;
    let t = Instant::now();
    sqlx::query(
        "insert into bench_projects (id, client_id, intake_form, status, total_amount, platform_fee, currency, created_at, updated_at)
         select (payload->>'projectId')::uuid, (payload->>'clientId')::uuid, payload->'intakeForm', payload->>'status',
                (payload->>'totalAmount')::bigint, (payload->>'platformFeePercent')::int, payload->>'currency',
                (payload->>'at')::timestamptz, (payload->>'at')::timestamptz
         from events where event_type = 'project-created'",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "insert into bench_milestones (id, project_id, title, description, sort_order, amount, currency, status, funded, due_date, created_at, updated_at)
         select (payload->>'milestoneId')::uuid, (payload->>'projectId')::uuid, payload->>'title', payload->>'description',
                (payload->>'order')::int, (payload->>'amount')::bigint, payload->>'currency', 'pending', (payload->>'funded')::boolean,
                (payload->>'dueDate')::timestamptz, (payload->>'at')::timestamptz, (payload->>'at')::timestamptz
         from events where event_type = 'milestone-added'",
    )
    .execute(pool)
    .await?;
    let sql = t.elapsed();
    let baseline = events as f64 / sql.as_secs_f64();
    for r in rows.iter_mut() {
        r.baseline_per_second = Some(baseline);
        r.ratio = Some(r.per_second / baseline);
    }
    rows.push(row("D baseline: set-based SQL projection", events, sql, vec![], None, String::new()));
    let t = Instant::now();
    let replayed = state.runtime.rebuild("marketplace-projects", &|_, _| {}).await?;
    let elapsed = t.elapsed();
    rows.push(row(
        "D rebuild marketplace-projects (with swap)",
        replayed,
        elapsed,
        vec![],
        Some(baseline),
        format!("wall time {:.1} s", elapsed.as_secs_f64()),
    ));
    Ok(rows)
}

/// Formats the table.
pub fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:<48} {:>9} {:>8} {:>10} {:>10} {:>6} {:>8} {:>8} {:>8}  notes\n",
        "workload", "ops", "secs", "ops/s", "base/s", "ratio", "p50 ms", "p99 ms", "p99.9"
    );
    let f = |v: Option<f64>, p: usize| v.map(|v| format!("{v:.p$}")).unwrap_or_else(|| "-".into());
    for r in rows {
        s.push_str(&format!(
            "{:<48} {:>9} {:>8.2} {:>10.0} {:>10} {:>6} {:>8} {:>8} {:>8}  {}\n",
            r.workload,
            r.ops,
            r.seconds,
            r.per_second,
            f(r.baseline_per_second, 0),
            f(r.ratio, 2),
            f(r.p50_ms, 2),
            f(r.p99_ms, 2),
            f(r.p999_ms, 2),
            r.notes
        ));
    }
    s
}

/// `escrowd bench`: a fresh database on the configured server, every workload, then dropped.
pub async fn main(config: Config, sizes: Sizes) -> Result<i32, Box<dyn std::error::Error + Send + Sync>> {
    use sqlx::migrate::MigrateDatabase;
    let name = format!("escrow_bench_{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    let mut opts: sqlx::postgres::PgConnectOptions = config.database_url.parse()?;
    opts = opts.database(&name);
    let url = sqlx::ConnectOptions::to_url_lossy(&opts).to_string();
    sqlx::Postgres::create_database(&url).await?;
    let pool = sqlx::PgPool::connect(&url).await?;
    PgEventStore::migrate(&pool).await?;
    pool.close().await;
    let config = Config {
        database_url: url.clone(),
        nats_stream: format!("BENCH{}", &name[13..]),
        nats_subject_prefix: format!("bench{}", &name[13..]),
        ..config
    };
    eprintln!(
        "benchmark database {name}; machine: {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let rows =
        run_suite(config, sizes, |r| eprintln!("{}", table(std::slice::from_ref(r)).lines().nth(1).unwrap_or("")))
            .await?;
    let text = table(&rows);
    println!("\n{text}");
    println!("peak RSS of the process (server + load generators): {:.0} MiB", peak_rss_mb());
    std::fs::create_dir_all("target")?;
    let json = json!({ "rows": rows, "peak_rss_mib": peak_rss_mb(), "at": chrono::Utc::now(), "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) });
    std::fs::write("target/bench-results.json", serde_json::to_string_pretty(&json)?)?;
    println!("written to target/bench-results.json");
    // `BENCH_KEEP_DB=1` keeps the database for profiling (EXPLAIN ANALYZE on the same data).
    if std::env::var("BENCH_KEEP_DB").is_ok() {
        println!("kept database {name}");
    } else {
        let _ = sqlx::Postgres::force_drop_database(&url).await;
    }
    Ok(0)
}
