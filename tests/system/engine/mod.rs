//! The engine (issue: event log, pipeline, projector runtime, relay, scheduler).

mod conformance;
mod log;
mod pipeline;
mod projector;
mod relay;
mod scheduler;
