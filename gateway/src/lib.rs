//! The gateway: axum HTTP (commands, queries, live updates, audit, admin, auth), OpenAPI,
//! metrics, the server binary and the operator CLI. Each product context plugs in as a
//! `ContextModule`.

pub mod app;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod contexts;
pub mod error;
pub mod http;
pub mod openapi;
pub mod providers;
pub mod registry;
pub mod telemetry;

pub use app::AppState;
pub use config::Config;
