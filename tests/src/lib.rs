//! Test support: a harness that runs the real local server, and the storage conformance suite.

pub mod conformance;
pub mod dynamo;
pub mod journey;
pub mod reconcile;
pub mod server;
