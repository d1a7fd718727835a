//! Value types that can only be built valid: handlers receive them already checked.

pub mod money;

pub use money::{Money, Points};
