//! The autoscaling signal: what juniper-cascor's REST API reports about the training run and
//! the registered workers, parsed into plain values.
//!
//! The shapes follow juniper-cascor 0.12.0. Every REST response is an envelope
//! `{"status": "success", "data": {...}, "meta": {...}}`:
//!
//! * `GET /v1/training/status`: `data.state_machine.status` is the upper-case name of the
//!   training state (`STOPPED`, `STARTED`, `PAUSED`, `COMPLETED`, `FAILED`, `RESUME_READY`,
//!   `INVESTIGATING`, `REPLAYING`).
//! * `GET /v1/training/params`: `data.candidate_pool_size`, or 404 while no network exists.
//! * `GET /v1/workers`: `data.workers[]` with `worker_id`, `capabilities` (the object of the
//!   worker's `register` message), `active_task_id` (null while idle) and `in_flight_tasks`.

use serde::Deserialize;
use serde_json::Value;

/// Training state of the server, reduced to what sizes the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// A run is training (`STARTED`). The server dispatches candidate tasks every round.
    Active,
    /// A run is paused (`PAUSED`). It dispatches nothing now but resumes with the same pool.
    Paused,
    /// No run is in progress: stopped, completed, failed, or a snapshot is loaded.
    Idle,
}

impl RunState {
    /// Maps the server's `state_machine.status` name to a run state. Names this version does
    /// not know count as no run, so an unknown state never grows the pool.
    pub fn from_status_name(name: &str) -> Self {
        match name.to_ascii_uppercase().as_str() {
            "STARTED" => Self::Active,
            "PAUSED" => Self::Paused,
            _ => Self::Idle,
        }
    }

    /// Returns whether a run is in progress, started or paused.
    pub fn in_progress(self) -> bool {
        matches!(self, Self::Active | Self::Paused)
    }
}

/// Pod a registered worker runs in, from its `pod_name` and `pod_namespace` capabilities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerPod {
    /// `metadata.name` of the pod.
    pub name: String,
    /// `metadata.namespace` of the pod, when the worker reported it.
    pub namespace: Option<String>,
}

/// One worker registered with the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteWorker {
    /// Server-assigned worker id.
    pub worker_id: String,
    /// The worker's pod, when the worker reported one.
    pub pod: Option<WorkerPod>,
    /// Whether the worker has a task (`active_task_id` set or `in_flight_tasks` above 0).
    pub busy: bool,
}

/// Everything one poll of the server returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSnapshot {
    /// Training state.
    pub run: RunState,
    /// `candidate_pool_size` of the loaded network, when the server has one.
    pub candidate_pool_size: Option<u32>,
    /// Registered workers, of every pool and none.
    pub workers: Vec<RemoteWorker>,
}

/// The REST envelope's `data` member; the other members carry nothing the autoscaler uses.
#[derive(Deserialize)]
pub(crate) struct Envelope<T> {
    pub data: T,
}

#[derive(Deserialize)]
pub(crate) struct TrainingStatusData {
    pub state_machine: StateMachineSummary,
}

#[derive(Deserialize)]
pub(crate) struct StateMachineSummary {
    pub status: String,
}

#[derive(Deserialize)]
pub(crate) struct TrainingParamsData {
    #[serde(default)]
    pub candidate_pool_size: Option<u32>,
}

#[derive(Deserialize)]
pub(crate) struct WorkersData {
    pub workers: Vec<WorkerRecord>,
}

#[derive(Deserialize)]
pub(crate) struct WorkerRecord {
    pub worker_id: String,
    #[serde(default)]
    pub capabilities: Value,
    #[serde(default)]
    pub active_task_id: Option<String>,
    #[serde(default)]
    pub in_flight_tasks: Option<u32>,
}

impl From<WorkerRecord> for RemoteWorker {
    fn from(record: WorkerRecord) -> Self {
        let text_capability = |key: &str| {
            record
                .capabilities
                .get(key)
                .and_then(Value::as_str)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };

        let pod = text_capability("pod_name").map(|name| WorkerPod {
            name,
            namespace: text_capability("pod_namespace"),
        });
        let busy = record.active_task_id.is_some() || record.in_flight_tasks.unwrap_or(0) > 0;

        Self {
            worker_id: record.worker_id,
            pod,
            busy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_record_maps_pod_and_busy() {
        let record: WorkerRecord = serde_json::from_value(serde_json::json!({
            "worker_id": "worker-1",
            "capabilities": {"pod_name": "pool-abc", "pod_namespace": "ml", "gpu": false},
            "active_task_id": null,
            "in_flight_tasks": 1,
        }))
        .expect("record parses");

        let worker = RemoteWorker::from(record);

        assert_eq!(worker.worker_id, "worker-1");
        assert_eq!(
            worker.pod,
            Some(WorkerPod {
                name: "pool-abc".to_owned(),
                namespace: Some("ml".to_owned())
            })
        );
        assert!(worker.busy, "in_flight_tasks 1 counts as busy");
    }

    #[test]
    fn worker_record_without_pod_name() {
        let record: WorkerRecord = serde_json::from_value(serde_json::json!({
            "worker_id": "worker-2",
            "capabilities": {"pod_name": "", "os": "Linux"},
            "active_task_id": "task-9",
        }))
        .expect("record parses");

        let worker = RemoteWorker::from(record);

        assert_eq!(worker.pod, None);
        assert!(worker.busy, "an active task counts as busy");
    }

    #[test]
    fn run_state_names() {
        assert_eq!(RunState::from_status_name("STARTED"), RunState::Active);
        assert_eq!(RunState::from_status_name("Paused"), RunState::Paused);
        assert_eq!(RunState::from_status_name("COMPLETED"), RunState::Idle);
        assert_eq!(RunState::from_status_name("REPLAYING"), RunState::Idle);
        assert_eq!(RunState::from_status_name("SOMETHING_NEW"), RunState::Idle);
    }
}
