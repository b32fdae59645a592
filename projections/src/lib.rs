//! The read side: the projector runtime (checkpoints, leases, retries, rebuilds, lag) and one
//! projector per group of read tables.

pub mod lms;
pub mod marketplace;
pub mod query;
pub mod runtime;

pub use runtime::{ProjectionError, Projector, ProjectorRuntime, ProjectorStatus, RuntimeConfig, Tables};
