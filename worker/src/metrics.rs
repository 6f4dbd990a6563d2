//! Prometheus metrics of the worker, fed by the agent's events.
//!
//! Every series is named `juniper_cascor_worker_*` and listed in `docs/metrics.md`. The
//! names, types and labels are a public interface: dashboards and the operator's
//! autoscaler read them, so they are never renamed.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::agent::observer::{AgentObserver, ConnectionState, Direction, TaskOutcome, TaskReport};

/// Prefix of every series.
pub const NAMESPACE: &str = "juniper_cascor_worker";

/// Upper bounds, in seconds, of the task and training duration buckets: a 400-epoch task
/// on a small data set takes well under a second, the server reassigns a task after 120 s
/// and the default task timeout is one hour.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
    3600.0,
];

/// Rejection reasons that exist from the start, so their series read 0 before the first
/// rejection instead of being absent.
const KNOWN_REJECTION_REASONS: &[&str] = &["bad_frame", "invalid_manifest", "invalid_json"];

/// Failure to register or render the metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("failed to register metric: {0}")]
    Register(#[source] prometheus::Error),
    #[error("failed to encode metrics: {0}")]
    Encode(#[source] prometheus::Error),
}

/// Static labels of the build-info series.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    pub version: String,
    pub libtorch_version: String,
    pub device: String,
}

impl BuildInfo {
    /// Returns the build info of this binary with the given training device.
    pub fn current(device: impl Into<String>) -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            libtorch_version: libtorch_version().to_owned(),
            device: device.into(),
        }
    }
}

/// Returns the version of the libtorch this binary was linked against, as recorded by the
/// build script, or `"unknown"`.
pub fn libtorch_version() -> &'static str {
    option_env!("JUNIPER_LIBTORCH_VERSION").unwrap_or("unknown")
}

/// The worker's metrics registry. Implements [`AgentObserver`], so the agent's events
/// update it directly.
pub struct WorkerMetrics {
    registry: Registry,
    tasks: IntCounterVec,
    tasks_in_flight: IntGauge,
    task_duration: HistogramVec,
    training_duration: Histogram,
    epochs: IntCounter,
    connection_state: IntGaugeVec,
    registrations: IntCounter,
    reconnects: IntCounter,
    heartbeats: IntCounter,
    messages: IntCounterVec,
    message_bytes: IntCounterVec,
    rejected_messages: IntCounterVec,
    resident_memory: IntGauge,
}

impl WorkerMetrics {
    /// Creates the registry with every series, all at zero, and the build-info series.
    pub fn new(build: &BuildInfo) -> Result<Self, MetricsError> {
        let registry = Registry::new();

        let tasks = IntCounterVec::new(
            opts("tasks_total", "Tasks finished, by outcome."),
            &["outcome"],
        )
        .map_err(MetricsError::Register)?;
        let tasks_in_flight = IntGauge::with_opts(opts(
            "tasks_in_flight",
            "Tasks received and not yet finished (0 or 1, more only while a reassigned task queues).",
        ))
        .map_err(MetricsError::Register)?;
        let task_duration = HistogramVec::new(
            HistogramOpts::new(
                "task_duration_seconds",
                "Time from receiving a task_assign to sending the last result frame, by outcome.",
            )
            .namespace(NAMESPACE)
            .buckets(DURATION_BUCKETS.to_vec()),
            &["outcome"],
        )
        .map_err(MetricsError::Register)?;
        let training_duration = Histogram::with_opts(
            HistogramOpts::new(
                "training_duration_seconds",
                "Training time of one candidate task.",
            )
            .namespace(NAMESPACE)
            .buckets(DURATION_BUCKETS.to_vec()),
        )
        .map_err(MetricsError::Register)?;
        let epochs = IntCounter::with_opts(opts(
            "epochs_trained_total",
            "Training epochs completed over all tasks.",
        ))
        .map_err(MetricsError::Register)?;
        let connection_state = IntGaugeVec::new(
            opts(
                "connection_state",
                "1 for the agent's current connection state, 0 for the others.",
            ),
            &["state"],
        )
        .map_err(MetricsError::Register)?;
        let registrations = IntCounter::with_opts(opts(
            "registrations_total",
            "Registrations acknowledged by the server.",
        ))
        .map_err(MetricsError::Register)?;
        let reconnects = IntCounter::with_opts(opts(
            "reconnects_total",
            "Reconnect attempts scheduled after a failed or lost connection.",
        ))
        .map_err(MetricsError::Register)?;
        let heartbeats =
            IntCounter::with_opts(opts("heartbeats_sent_total", "Heartbeat messages sent."))
                .map_err(MetricsError::Register)?;
        let messages = IntCounterVec::new(
            opts(
                "messages_total",
                "WebSocket messages (text and binary), by direction.",
            ),
            &["direction"],
        )
        .map_err(MetricsError::Register)?;
        let message_bytes = IntCounterVec::new(
            opts(
                "message_bytes_total",
                "Payload bytes of WebSocket messages, by direction.",
            ),
            &["direction"],
        )
        .map_err(MetricsError::Register)?;
        let rejected_messages = IntCounterVec::new(
            opts(
                "rejected_messages_total",
                "Inbound messages or frames rejected, by reason.",
            ),
            &["reason"],
        )
        .map_err(MetricsError::Register)?;
        let resident_memory = IntGauge::with_opts(opts(
            "resident_memory_bytes",
            "Resident set size of the worker process, read at scrape time.",
        ))
        .map_err(MetricsError::Register)?;
        let build_info = IntGaugeVec::new(
            opts(
                "build_info",
                "Always 1; the labels name the worker version, the libtorch version and the training device.",
            ),
            &["version", "libtorch_version", "device"],
        )
        .map_err(MetricsError::Register)?;

        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(tasks.clone()),
            Box::new(tasks_in_flight.clone()),
            Box::new(task_duration.clone()),
            Box::new(training_duration.clone()),
            Box::new(epochs.clone()),
            Box::new(connection_state.clone()),
            Box::new(registrations.clone()),
            Box::new(reconnects.clone()),
            Box::new(heartbeats.clone()),
            Box::new(messages.clone()),
            Box::new(message_bytes.clone()),
            Box::new(rejected_messages.clone()),
            Box::new(resident_memory.clone()),
            Box::new(build_info.clone()),
        ];
        for collector in collectors {
            registry
                .register(collector)
                .map_err(MetricsError::Register)?;
        }

        for outcome in ALL_OUTCOMES {
            tasks.with_label_values(&[outcome_label(outcome)]);
            task_duration.with_label_values(&[outcome_label(outcome)]);
        }
        for direction in [Direction::Inbound, Direction::Outbound] {
            messages.with_label_values(&[direction_label(direction)]);
            message_bytes.with_label_values(&[direction_label(direction)]);
        }
        for reason in KNOWN_REJECTION_REASONS {
            rejected_messages.with_label_values(&[reason]);
        }
        build_info
            .with_label_values(&[&build.version, &build.libtorch_version, &build.device])
            .set(1);

        let metrics = Self {
            registry,
            tasks,
            tasks_in_flight,
            task_duration,
            training_duration,
            epochs,
            connection_state,
            registrations,
            reconnects,
            heartbeats,
            messages,
            message_bytes,
            rejected_messages,
            resident_memory,
        };
        metrics.set_connection_state(ConnectionState::Connecting);

        Ok(metrics)
    }

    /// Returns the registry, for callers that add their own collectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Renders every series in the Prometheus text format, after refreshing the resident
    /// memory gauge.
    pub fn render(&self) -> Result<String, MetricsError> {
        if let Some(bytes) = resident_memory_bytes() {
            self.resident_memory
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }

        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .map_err(MetricsError::Encode)?;

        Ok(String::from_utf8_lossy(&buffer).into_owned())
    }

    fn set_connection_state(&self, current: ConnectionState) {
        for state in ALL_STATES {
            let value = i64::from(state == current);
            self.connection_state
                .with_label_values(&[state_label(state)])
                .set(value);
        }
    }
}

impl AgentObserver for WorkerMetrics {
    fn connection_state(&self, state: ConnectionState) {
        self.set_connection_state(state);
    }

    fn registered(&self, _worker_id: &str) {
        self.registrations.inc();
    }

    fn reconnect_scheduled(&self, _delay: Duration) {
        self.reconnects.inc();
    }

    fn heartbeat_sent(&self) {
        self.heartbeats.inc();
    }

    fn message(&self, direction: Direction, bytes: usize) {
        let label = direction_label(direction);
        self.messages.with_label_values(&[label]).inc();
        self.message_bytes
            .with_label_values(&[label])
            .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }

    fn message_rejected(&self, reason: &'static str) {
        self.rejected_messages.with_label_values(&[reason]).inc();
    }

    fn task_started(&self, _task_id: &str) {
        self.tasks_in_flight.inc();
    }

    fn task_finished(&self, report: &TaskReport) {
        let outcome = outcome_label(report.outcome);

        self.tasks_in_flight.dec();
        self.tasks.with_label_values(&[outcome]).inc();
        self.task_duration
            .with_label_values(&[outcome])
            .observe(report.total_duration.as_secs_f64());
        if let Some(training) = report.training_duration {
            self.training_duration.observe(training.as_secs_f64());
        }
        self.epochs.inc_by(report.epochs_completed);
    }
}

const ALL_OUTCOMES: [TaskOutcome; 4] = [
    TaskOutcome::Success,
    TaskOutcome::Failure,
    TaskOutcome::Timeout,
    TaskOutcome::Lost,
];

const ALL_STATES: [ConnectionState; 6] = [
    ConnectionState::Connecting,
    ConnectionState::Ready,
    ConnectionState::Busy,
    ConnectionState::Disconnected,
    ConnectionState::Draining,
    ConnectionState::Stopped,
];

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(NAMESPACE)
}

/// Returns the `outcome` label value of a task outcome.
pub fn outcome_label(outcome: TaskOutcome) -> &'static str {
    match outcome {
        TaskOutcome::Success => "success",
        TaskOutcome::Failure => "failure",
        TaskOutcome::Timeout => "timeout",
        TaskOutcome::Lost => "lost",
    }
}

/// Returns the `state` label value of a connection state.
pub fn state_label(state: ConnectionState) -> &'static str {
    match state {
        ConnectionState::Connecting => "connecting",
        ConnectionState::Ready => "ready",
        ConnectionState::Busy => "busy",
        ConnectionState::Disconnected => "disconnected",
        ConnectionState::Draining => "draining",
        ConnectionState::Stopped => "stopped",
    }
}

/// Returns the `direction` label value of a message direction.
pub fn direction_label(direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

/// Reads the current resident set size from `/proc/self/status` (Linux only).
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// Extracts `VmRSS` (reported in KiB) from the text of `/proc/<pid>/status`, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;

    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> WorkerMetrics {
        WorkerMetrics::new(&BuildInfo {
            version: "1.2.3".into(),
            libtorch_version: "2.13.0".into(),
            device: "cpu".into(),
        })
        .expect("metrics register")
    }

    #[test]
    fn vm_rss_parsed_in_bytes() {
        let status = "Name:\tworker\nVmPeak:\t  9000 kB\nVmRSS:\t  2048 kB\nThreads:\t4\n";

        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
        assert_eq!(parse_vm_rss("Name:\tworker\n"), None);
    }

    #[test]
    fn connection_state_is_one_hot() {
        let metrics = metrics();
        metrics.connection_state(ConnectionState::Busy);
        let text = metrics.render().expect("renders");

        assert!(
            text.contains("juniper_cascor_worker_connection_state{state=\"busy\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("juniper_cascor_worker_connection_state{state=\"ready\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("juniper_cascor_worker_connection_state{state=\"connecting\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn build_info_carries_labels() {
        let text = metrics().render().expect("renders");

        assert!(
            text.contains(
                "juniper_cascor_worker_build_info{device=\"cpu\",libtorch_version=\"2.13.0\",version=\"1.2.3\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn task_report_updates_series() {
        let metrics = metrics();
        metrics.task_started("t-1");
        metrics.task_finished(&TaskReport {
            task_id: "t-1".into(),
            outcome: TaskOutcome::Success,
            total_duration: Duration::from_millis(300),
            training_duration: Some(Duration::from_millis(200)),
            epochs_completed: 42,
        });
        let text = metrics.render().expect("renders");

        assert!(
            text.contains("juniper_cascor_worker_tasks_total{outcome=\"success\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("juniper_cascor_worker_tasks_total{outcome=\"failure\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("juniper_cascor_worker_tasks_in_flight 0"),
            "{text}"
        );
        assert!(
            text.contains("juniper_cascor_worker_epochs_trained_total 42"),
            "{text}"
        );
        assert!(
            text.contains("juniper_cascor_worker_task_duration_seconds_bucket{outcome=\"success\",le=\"0.5\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("juniper_cascor_worker_task_duration_seconds_bucket{outcome=\"success\",le=\"0.25\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("juniper_cascor_worker_training_duration_seconds_count 1"),
            "{text}"
        );
    }

    #[test]
    fn messages_count_bytes_by_direction() {
        let metrics = metrics();
        metrics.message(Direction::Inbound, 100);
        metrics.message(Direction::Inbound, 50);
        metrics.message(Direction::Outbound, 7);
        metrics.message_rejected("bad_frame");
        let text = metrics.render().expect("renders");

        assert!(
            text.contains("juniper_cascor_worker_messages_total{direction=\"inbound\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("juniper_cascor_worker_message_bytes_total{direction=\"inbound\"} 150"),
            "{text}"
        );
        assert!(
            text.contains("juniper_cascor_worker_message_bytes_total{direction=\"outbound\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("juniper_cascor_worker_rejected_messages_total{reason=\"bad_frame\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn resident_memory_reported() {
        let text = metrics().render().expect("renders");
        let line = text
            .lines()
            .find(|line| line.starts_with("juniper_cascor_worker_resident_memory_bytes "))
            .expect("resident memory series present");
        let bytes: u64 = line
            .rsplit(' ')
            .next()
            .and_then(|value| value.parse().ok())
            .expect("integer value");

        assert!(bytes > 0, "{line}");
    }
}
