//! `userstate import`: moves users of the original Node system (PostgreSQL tables, MongoDB log
//! collections) into the table, keeping logins (bcrypt hashes verify and upgrade on login),
//! money (opening ledger entries, wallet = ledger sum) and history. See docs/IMPORT.md.
//!
//! [`source`] holds the rows as read; [`plan`] turns them into items and the bad-row report (pure,
//! deterministic); [`run`] writes them idempotently and reconciles; [`pg`] reads PostgreSQL;
//! [`mongo`] reads mongoexport files. A crate of its own so the Lambda library (`shared`) carries
//! neither the importer nor a PostgreSQL client: only the `userstate` CLI and the tests use it.

pub mod mongo;
pub mod pg;
pub mod plan;
pub mod run;
pub mod source;

pub use plan::{BadRow, Plan, plan};
pub use run::{Options, Report, execute};
pub use source::Source;
