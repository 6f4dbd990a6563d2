//! juniper-cascor worker: agent, configuration and task execution.

pub mod agent;
pub mod task;
pub mod tls;
