//! The operator CLI (one binary): serve, migrate, projections, replay, verify, create-admin.

use crate::app::AppState;
use crate::config::Config;
use clap::{Parser, Subcommand};
use commands::shutdown::shutdown_pair;
use commands::store::EventStore;
use commands::{PgEventStore, SystemClock};
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(name = "escrowd", version, about = "Event-sourced backend of the five products: server and operator tools")]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    /// Log as JSON lines.
    #[arg(long, env = "LOG_JSON", global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate, then serve HTTP and run the workers (projectors, relay, scheduler).
    Serve,
    /// Apply the database migrations.
    Migrate,
    /// Projection status and rebuilds.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Print a stream's history and the state after each event.
    Replay { stream: String },
    /// Walk every hash chain; exits non-zero when a chain is broken.
    Verify,
    /// Run the benchmarks on a fresh database of the configured server (see README, Performance).
    Bench {
        /// Tiny sizes: checks every workload runs, measures nothing worth reporting.
        #[arg(long)]
        smoke: bool,
        /// Events for the projection workload (D).
        #[arg(long, default_value_t = 1_000_000)]
        projection_events: usize,
    },
    /// Create an administrator account (the first admin comes from here).
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Every projector with its status and lag.
    List,
    /// Rebuild one projector into fresh tables and swap them in.
    Rebuild { name: String },
    /// Resume a stalled projector.
    Resume { name: String },
}

/// Creates the database when it does not exist yet (a fresh machine), then connects.
async fn connect_creating(config: &Config) -> Result<sqlx::PgPool, Box<dyn std::error::Error + Send + Sync>> {
    use sqlx::migrate::MigrateDatabase;
    if !sqlx::Postgres::database_exists(&config.database_url).await? {
        sqlx::Postgres::create_database(&config.database_url).await?;
        tracing::info!("created the database");
    }
    Ok(crate::app::connect(config).await?)
}

async fn app(config: Config) -> Result<AppState, Box<dyn std::error::Error + Send + Sync>> {
    let pool = connect_creating(&config).await?;
    PgEventStore::migrate(&pool).await?;
    let built = AppState::build(config, Arc::new(SystemClock), crate::contexts::all()).await?;
    Ok(built.state)
}

pub async fn run(cli: Cli) -> Result<i32, Box<dyn std::error::Error + Send + Sync>> {
    crate::telemetry::init(cli.log_json);
    match cli.command {
        Command::Serve => serve(cli.config).await,
        Command::Migrate => {
            let pool = connect_creating(&cli.config).await?;
            PgEventStore::migrate(&pool).await?;
            println!("migrations applied");
            Ok(0)
        }
        Command::Projections { command } => {
            let state = app(cli.config).await?;
            match command {
                ProjectionsCommand::List => {
                    println!(
                        "{:<32} {:<9} {:>22} {:>10} {:>9}  error",
                        "projection", "status", "checkpoint (xid/pos)", "lag", "lag(s)"
                    );
                    for s in state.runtime.status().await? {
                        println!(
                            "{:<32} {:<9} {:>22} {:>10} {:>9.1}  {}",
                            s.name,
                            s.status,
                            format!("{}/{}", s.txid, s.position),
                            s.lag_events,
                            s.lag_seconds,
                            s.last_error.unwrap_or_default()
                        );
                    }
                    Ok(0)
                }
                ProjectionsCommand::Rebuild { name } => {
                    let bar = indicatif::ProgressBar::new(0);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{msg} [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
                        )
                        .expect("template")
                        .progress_chars("=> "),
                    );
                    bar.set_message(format!("rebuilding {name}"));
                    let b = bar.clone();
                    let done = state
                        .runtime
                        .rebuild(&name, &move |done, total| {
                            b.set_length(total);
                            b.set_position(done);
                        })
                        .await?;
                    bar.finish_with_message(format!("{name} rebuilt and swapped in"));
                    println!("{done} events replayed");
                    Ok(0)
                }
                ProjectionsCommand::Resume { name } => {
                    let resumed = state.runtime.resume(&name).await?;
                    println!("{}", if resumed { "resumed" } else { "was not stalled" });
                    Ok(0)
                }
            }
        }
        Command::Replay { stream } => {
            let state = app(cli.config).await?;
            let events = state.store.read_stream(&stream, 0).await?;
            let Some(first) = events.first() else {
                eprintln!("no stream {stream}");
                return Ok(1);
            };
            let replay = state.replayers.get(&first.stream_type);
            let states = match replay {
                Some(r) => r(&events, &state.upcasters)?,
                None => Vec::new(),
            };
            for (i, e) in events.iter().enumerate() {
                println!(
                    "#{} {} {} by {} ({}) at {}",
                    e.version,
                    e.event_type,
                    e.event_id,
                    e.metadata["actor_id"].as_str().unwrap_or("-"),
                    e.metadata["actor_role"].as_str().unwrap_or("-"),
                    e.recorded_at
                );
                println!("   payload: {}", e.payload);
                if let Some(s) = states.get(i) {
                    println!("   state:   {s}");
                }
            }
            Ok(0)
        }
        Command::Verify => {
            let pool = crate::app::connect(&cli.config).await?;
            let store = PgEventStore::new(pool, commands::LogWake::default());
            let report = store.verify_all().await?;
            match report.first_broken {
                None => {
                    println!("ok: {} streams, {} events, every hash chain intact", report.streams, report.events);
                    Ok(0)
                }
                Some(b) => {
                    println!(
                        "BROKEN: stream {} at version {} (position {}): {}",
                        b.stream_id, b.version, b.position, b.reason
                    );
                    Ok(2)
                }
            }
        }
        Command::Bench { smoke, projection_events } => {
            let mut sizes = if smoke { crate::bench::Sizes::smoke() } else { crate::bench::Sizes::full() };
            if !smoke {
                sizes.projection_events = projection_events;
            }
            crate::bench::main(cli.config, sizes).await
        }
        Command::CreateAdmin { email, password, name } => {
            let state = app(cli.config).await?;
            let id = crate::contexts::identity::create_admin(&state, &email, &password, &name).await?;
            println!("admin {email} created: account {id}");
            Ok(0)
        }
    }
}

async fn serve(config: Config) -> Result<i32, Box<dyn std::error::Error + Send + Sync>> {
    let bind = config.bind_addr.clone();
    let run_workers = config.run_workers;
    let state = app(config).await?;
    let router = crate::http::router(state.clone());
    let (trigger, shutdown) = shutdown_pair();
    let workers = if run_workers { state.start_workers(shutdown) } else { Vec::new() };
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving");
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async {
            let ctrl_c = tokio::signal::ctrl_c();
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            tracing::info!("shutting down: finishing in-flight requests");
        })
        .await?;
    // In-flight commands have been answered; now stop the workers.
    trigger.trigger();
    for w in workers {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), w).await;
    }
    Ok(0)
}
