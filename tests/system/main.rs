//! The one integration test binary: every system test, against a real PostgreSQL and real NATS.

mod bench;
mod engine;
mod escrow;
mod lms;
