//! The write side: the event store (PostgreSQL; KurrentDB behind the `kurrentdb` feature), the
//! command pipeline, idempotency, the scheduler and process managers, and the NATS relay.

pub mod canonical;
pub mod clock;
pub mod conformance;
pub mod consumer;
pub mod context;
pub mod metrics;
pub mod pipeline;
pub mod relay;
pub mod scheduler;
pub mod shutdown;
pub mod store;
pub mod upcast;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use context::CommandContext;
pub use pipeline::{BusConfig, CommandBus, CommandResult, ExecuteError};
pub use store::postgres::{LogWake, PgEventStore};
pub use store::{EventStore, ExpectedVersion, LogPosition, RecordedEvent};
