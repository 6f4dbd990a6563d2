//! Task statistics reported in heartbeats, kept for the life of the process.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cascor_protocol::Heartbeat;

/// Number of recent task durations a heartbeat carries.
pub const RECENT_DURATIONS: usize = 16;

/// Counters behind the heartbeat fields.
#[derive(Debug, Clone, Default)]
pub struct TaskStats {
    /// Tasks whose result reported success.
    pub tasks_completed: u64,
    /// Every other finished task: failure results, timeouts and tasks lost with the
    /// connection.
    pub tasks_failed: u64,
    /// Unix time in seconds when the last task ended.
    pub last_task_completed_at: Option<f64>,
    /// Durations of the last tasks in seconds, oldest first.
    pub recent_durations: VecDeque<f64>,
}

impl TaskStats {
    /// Records a finished task of `duration`, measured from its `task_assign`.
    pub fn record(&mut self, succeeded: bool, duration: Duration) {
        if succeeded {
            self.tasks_completed += 1;
        } else {
            self.tasks_failed += 1;
        }
        self.last_task_completed_at = Some(unix_seconds(SystemTime::now()));
        if self.recent_durations.len() == RECENT_DURATIONS {
            self.recent_durations.pop_front();
        }
        self.recent_durations.push_back(duration.as_secs_f64());
    }

    /// Builds a heartbeat from these counters.
    pub fn heartbeat(&self, worker_id: &str, in_flight_tasks: u32, rss_mb: f64) -> Heartbeat {
        Heartbeat {
            message_type: "heartbeat",
            worker_id: worker_id.to_owned(),
            timestamp: unix_seconds(SystemTime::now()),
            in_flight_tasks,
            last_task_completed_at: self.last_task_completed_at,
            rss_mb,
            tasks_completed: self.tasks_completed,
            tasks_failed: self.tasks_failed,
            last_task_duration_seconds: self.recent_durations.back().copied(),
            recent_task_durations_seconds: self.recent_durations.iter().copied().collect(),
            // NOTE: GPU utilisation is not sampled (no NVML binding); the field stays null.
            gpu_utilization_pct: None,
        }
    }
}

pub fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// Returns the peak resident set size of this process in MiB (`VmHWM` of
/// `/proc/self/status`), or 0.0 where that is unavailable.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| parse_vm_hwm_kib(&status))
        .map_or(0.0, |kib| kib as f64 / 1024.0)
}

fn parse_vm_hwm_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_keep_last_sixteen() {
        let mut stats = TaskStats::default();
        for seconds in 1..=20 {
            stats.record(seconds % 2 == 0, Duration::from_secs(seconds));
        }

        let heartbeat = stats.heartbeat("w", 0, 1.0);

        assert_eq!(heartbeat.tasks_completed, 10);
        assert_eq!(heartbeat.tasks_failed, 10);
        assert_eq!(
            heartbeat.recent_task_durations_seconds.len(),
            RECENT_DURATIONS
        );
        assert_eq!(heartbeat.recent_task_durations_seconds[0], 5.0);
        assert_eq!(heartbeat.last_task_duration_seconds, Some(20.0));
        assert!(heartbeat.last_task_completed_at.is_some());
    }

    #[test]
    fn fresh_stats_have_nulls() {
        let heartbeat = TaskStats::default().heartbeat("w", 1, 2.0);

        assert_eq!(heartbeat.last_task_completed_at, None);
        assert_eq!(heartbeat.last_task_duration_seconds, None);
        assert!(heartbeat.recent_task_durations_seconds.is_empty());
        assert_eq!(heartbeat.in_flight_tasks, 1);
    }

    #[test]
    fn vm_hwm_is_parsed() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t  2048 kB\nVmRSS:\t 1024 kB\n";

        assert_eq!(parse_vm_hwm_kib(status), Some(2048));
        assert_eq!(parse_vm_hwm_kib("Name: x\n"), None);
    }

    #[test]
    fn own_peak_rss_is_positive() {
        assert!(peak_rss_mb() > 0.0);
    }
}
