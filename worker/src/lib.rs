//! juniper-cascor worker: agent, configuration and task execution.

pub mod agent;
pub mod config;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod run_task;
pub mod task;
pub mod tls;
