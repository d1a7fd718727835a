//! `userstate import`: moves users of the original Node system (PostgreSQL tables, MongoDB log
//! collections) into the table, keeping logins (bcrypt hashes verify and upgrade on login),
//! money (opening ledger entries, wallet = ledger sum) and history. See docs/IMPORT.md.
//!
//! [`source`] holds the rows as read; [`plan`] turns them into items and the bad-row report (pure,
//! deterministic); [`run`] writes them idempotently and reconciles; [`pg`] (feature `pg`, only in
//! the CLI and tests, never in a Lambda) reads PostgreSQL; [`mongo`] reads mongoexport files.

pub mod mongo;
#[cfg(feature = "pg")]
pub mod pg;
pub mod plan;
pub mod run;
pub mod source;

pub use plan::{BadRow, Plan, plan};
pub use run::{Options, Report, execute};
pub use source::Source;
