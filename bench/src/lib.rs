//! Benchmarks of the UserState functions and local server; `userstate-bench` drives them and
//! `scripts/bench.sh` writes the results to `docs/BENCHMARKS.md`.

pub mod calls;
pub mod cold;
pub mod load;
pub mod mixed;
pub mod stats;
