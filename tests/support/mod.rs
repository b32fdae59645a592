//! Shared fixtures of the system tests: a fresh database per test, a tiny `Account` aggregate
//! with its projector, process manager and dispatcher, and a private NATS server.

pub mod account;
pub mod app;
pub mod db;
pub mod nats;
pub mod payments;

pub use db::TestDb;
