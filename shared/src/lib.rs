//! UserState domain logic, ports and adapters, and one axum router per route group.
//! Function binaries under `functions/` and the `userstate` CLI only wire these together.

pub mod address;
pub mod app;
pub mod audit;
pub mod auth;
pub mod backoff;
pub mod blobs;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod devices;
pub mod devtools;
pub mod domain;
pub mod http;
pub mod lambda;
pub mod marketing;
pub mod metrics;
pub mod notify;
pub mod payments;
pub mod permissions;
pub mod points;
pub mod profile;
pub mod ratelimit;
pub mod realtime;
pub mod reconcile;
pub mod referral;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod wallet;
pub mod ws;

pub use app::App;
