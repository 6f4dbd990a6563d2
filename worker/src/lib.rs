//! juniper-cascor worker: agent, configuration and task execution.

pub mod agent;
