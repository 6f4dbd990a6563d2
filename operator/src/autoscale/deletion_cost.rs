//! Busy-aware scale-down: which worker pods the ReplicaSet controller should stop first.
//!
//! When a Deployment shrinks, its ReplicaSet controller stops unscheduled, pending and
//! not-ready pods first, and among the rest the pods with the lowest
//! `controller.kubernetes.io/pod-deletion-cost` annotation (an int32, default 0). Before the
//! operator lowers the replicas it marks each pod by what its worker is doing, so that pods
//! without a registered worker go first, idle workers next and busy workers last.
//!
//! The annotation is written only right before a scale-down, not on every poll: a worker's
//! busy state changes with every task, and rewriting pods that often would load the API
//! server for no benefit. A worker that receives a task between the annotation and the
//! deletion still finishes it, because the worker drains its task on SIGTERM within the
//! pod's termination grace period.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use super::signal::RemoteWorker;

/// Pod annotation the ReplicaSet controller ranks pods by when it scales down.
pub const DELETION_COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";

/// Activity of a worker pod, from the server's worker list and the pod's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PodActivity {
    /// Being deleted already; left alone.
    Terminating,
    /// Pending, or running without a worker registered under its name.
    Unregistered,
    /// Its worker is registered and has no task.
    Idle,
    /// Its worker is registered and has a task.
    Busy,
}

impl PodActivity {
    /// Deletion cost for this activity; lower costs are stopped first. `None` for a pod that
    /// is being deleted already.
    pub fn deletion_cost(self) -> Option<i32> {
        match self {
            Self::Terminating => None,
            Self::Unregistered => Some(-100),
            Self::Idle => Some(0),
            Self::Busy => Some(100),
        }
    }
}

/// A worker pod with its activity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassifiedPod {
    /// `metadata.name`.
    pub name: String,
    /// Activity of the pod.
    pub activity: PodActivity,
    /// Value of the deletion-cost annotation now, if any.
    pub current_cost: Option<String>,
}

/// One annotation change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletionCostPatch {
    /// `metadata.name` of the pod.
    pub pod_name: String,
    /// Activity of the pod.
    pub activity: PodActivity,
    /// New value of the deletion-cost annotation.
    pub cost: i32,
}

/// Counts of this pool's workers by activity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Pods with a registered worker.
    pub connected: u32,
    /// Registered workers holding a task.
    pub busy: u32,
    /// Registered workers without a task.
    pub idle: u32,
}

/// Classifies the pool's pods (all in `namespace`) by the server's workers.
///
/// A worker belongs to a pod when its `pod_name` capability is the pod's name and its
/// `pod_namespace`, when reported, is `namespace`. A pod with several registrations (a
/// reconnect before the server dropped the old one) counts as busy if any of them is.
pub fn classify_pods(
    namespace: &str,
    pods: &[Pod],
    workers: &[RemoteWorker],
) -> Vec<ClassifiedPod> {
    let mut busy_by_pod: BTreeMap<&str, bool> = BTreeMap::new();
    for worker in workers {
        let Some(pod) = &worker.pod else { continue };
        if pod.namespace.as_deref().is_some_and(|ns| ns != namespace) {
            continue;
        }
        let busy = busy_by_pod.entry(pod.name.as_str()).or_insert(false);
        *busy |= worker.busy;
    }

    pods.iter()
        .filter_map(|pod| {
            let name = pod.metadata.name.clone()?;
            let activity = if pod.metadata.deletion_timestamp.is_some() {
                PodActivity::Terminating
            } else if !is_running(pod) {
                PodActivity::Unregistered
            } else {
                match busy_by_pod.get(name.as_str()) {
                    Some(true) => PodActivity::Busy,
                    Some(false) => PodActivity::Idle,
                    None => PodActivity::Unregistered,
                }
            };
            let current_cost = pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(DELETION_COST_ANNOTATION))
                .cloned();

            Some(ClassifiedPod {
                name,
                activity,
                current_cost,
            })
        })
        .collect()
}

/// Counts the registered workers among classified pods.
pub fn count_workers(pods: &[ClassifiedPod]) -> WorkerCounts {
    let mut counts = WorkerCounts::default();
    for pod in pods {
        match pod.activity {
            PodActivity::Busy => {
                counts.connected += 1;
                counts.busy += 1;
            }
            PodActivity::Idle => {
                counts.connected += 1;
                counts.idle += 1;
            }
            PodActivity::Unregistered | PodActivity::Terminating => {}
        }
    }
    counts
}

/// Lists the annotation changes that rank the pods for a scale-down, skipping pods whose
/// annotation already has the value and pods being deleted.
pub fn plan_deletion_costs(pods: &[ClassifiedPod]) -> Vec<DeletionCostPatch> {
    pods.iter()
        .filter_map(|pod| {
            let cost = pod.activity.deletion_cost()?;
            let unchanged = pod
                .current_cost
                .as_deref()
                .and_then(|value| value.trim().parse::<i32>().ok())
                == Some(cost);
            (!unchanged).then(|| DeletionCostPatch {
                pod_name: pod.name.clone(),
                activity: pod.activity,
                cost,
            })
        })
        .collect()
}

/// Returns whether the pod is in phase `Running`.
fn is_running(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.phase.as_deref())
        == Some("Running")
}
