//! `cascor-operator`: the Kubernetes controller for `CascorWorkerPool` resources.
//!
//! A reconcile is a pipeline of small steps, most of them pure:
//!
//! 1. [`validate`] turns the pool into a defaulted [`validate::PoolModel`] (no client).
//! 2. [`tls`] keeps or renews the self-signed certificates (no client).
//! 3. [`children`] builds every owned object as a plain value (no client).
//! 4. [`apply`] writes them with server-side apply in a fixed order, skipping unchanged
//!    objects, and deletes children that were not built.
//! 5. [`status`] computes the status from what the API server returned (no client).
//!
//! [`reconcile`] strings the steps together and [`controller`] runs them for every pool.

pub mod apply;
pub mod autoscale;
pub mod children;
pub mod controller;
pub mod crd;
pub mod duration;
pub mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod permissions;
pub mod reconcile;
pub mod status;
pub mod tls;
pub mod validate;

pub use controller::{RunError, RunOptions, run, run_with_state};
pub use crd::{CascorWorkerPool, CascorWorkerPoolSpec, CascorWorkerPoolStatus, crd_yaml};
pub use error::Error;
