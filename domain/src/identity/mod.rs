//! Accounts, credentials and sessions, shared by every app (the `identity` context).

pub mod account;
pub mod session;
