//! Hooks through which the agent reports what it does, for the health server, the
//! metrics registry and tests. Every method has an empty default.

use std::time::Duration;

/// Connection lifecycle of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// Dialling the server or waiting for `registration_ack`.
    Connecting,
    /// Registered and idle.
    Ready,
    /// Registered and training a task.
    Busy,
    /// Not connected; a reconnect is scheduled.
    Disconnected,
    /// A shutdown signal arrived: no new work, the task in flight is finished.
    Draining,
    /// The agent has stopped.
    Stopped,
}

/// Outcome of a task, as counted by metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskOutcome {
    /// Training ran and the result has `success: true`.
    Success,
    /// A failure result was sent (bad input, training error, invalid manifest or frame).
    Failure,
    /// Training exceeded the task timeout; a failure result was sent.
    Timeout,
    /// The connection dropped before the result could be sent.
    Lost,
}

/// Direction of a WebSocket message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Inbound,
    Outbound,
}

/// Summary of one finished task.
#[derive(Debug, Clone)]
pub struct TaskReport {
    pub task_id: String,
    pub outcome: TaskOutcome,
    /// From the `task_assign` message to the last result frame sent.
    pub total_duration: Duration,
    /// Training alone, when training ran.
    pub training_duration: Option<Duration>,
    pub epochs_completed: u64,
}

/// Receives the agent's events. Implementations must be cheap and must not block: the
/// agent calls them from its event loop.
pub trait AgentObserver: Send + Sync + 'static {
    fn connection_state(&self, _state: ConnectionState) {}
    /// Registration accepted; `worker_id` is the server-assigned id.
    fn registered(&self, _worker_id: &str) {}
    /// Reports that a reconnect attempt follows after `delay`.
    fn reconnect_scheduled(&self, _delay: Duration) {}
    fn heartbeat_sent(&self) {}
    /// Reports one WebSocket message (text or binary) of `bytes` bytes on the socket.
    fn message(&self, _direction: Direction, _bytes: usize) {}
    /// Reports a rejected inbound message or frame. `reason` is a short, fixed label such
    /// as `"bad_frame"`, `"invalid_manifest"` or `"invalid_json"`.
    fn message_rejected(&self, _reason: &'static str) {}
    fn task_started(&self, _task_id: &str) {}
    fn task_finished(&self, _report: &TaskReport) {}
}

/// Observer that ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl AgentObserver for NoopObserver {}
