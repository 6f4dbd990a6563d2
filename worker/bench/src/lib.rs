//! Benchmark harness for cascor-trainer.
//!
//! `scripts/bench.py` writes a plan (JSON) and the input matrices (raw little-endian float32)
//! into a scratch folder. The `cascor-bench` binary reads that plan, runs every case through
//! [`cascor_trainer::Trainer::run_with`] and prints one JSON record per case; the Python
//! reference side (`python/bench_reference.py`) reads the same plan, so both train on the
//! same inputs with the same settings and thread count.

pub mod plan;
pub mod runner;

pub use plan::{Case, MatrixFile, Plan, PlanError};
pub use runner::{CaseRecord, run_case};
