//! Pure domain model of every context: aggregates (`decide` / `evolve`), their commands, events and
//! rule errors. No I/O, no async, no database: what a decision needs from outside (the time, a
//! price, who the caller is) is put into the command by the handler in `commands/`.

pub mod bench;
pub mod identity;
pub mod kernel;
pub mod lms;
pub mod marketplace;
pub mod values;

pub use kernel::{Aggregate, DomainEvent, EventCodecError, TestHarness};
