//! The scaling rule: a pure function from what the server reports to a worker count.
//!
//! # Rule
//!
//! juniper-cascor 0.12.0 trains part of each round's candidates itself and hands at most one
//! task to each idle registered worker per round. A run with a candidate pool of `P` therefore
//! never keeps more than `P` remote workers busy at once, and `P` is the useful size of the
//! pool while that run lasts. With no run, no worker gets work, so the pool shrinks to its
//! minimum.
//!
//! | Server reports | Recommended worker count |
//! | --- | --- |
//! | run started, pool size `P` | `P` |
//! | run started, pool size unknown | current count (hold) |
//! | run paused | current count (hold) |
//! | no run | `minReplicas` |
//! | unreachable or an error | current count, raised to `minReplicas` (no scale-down) |
//!
//! # Invariants
//!
//! 1. The result lies in `[minReplicas, maxReplicas]`, except that a server that cannot be
//!    read never lowers the count, so a count above `maxReplicas` stays until the server
//!    responds again.
//! 2. While a run is in progress the result is at least the number of this pool's busy
//!    workers (capped at `maxReplicas`), so a scale-down never asks for more pods to stop
//!    than there are idle or unregistered ones.
//! 3. Scaling up is immediate. Scaling down below the current count happens only once the
//!    recommendation has stayed below it for the whole `scaleDownDelay`; any poll that
//!    recommends the current count or more, or fails, restarts that delay. Lowering a count
//!    above `maxReplicas` to `maxReplicas` is immediate.
//! 4. The function reads no clock and does no I/O: the caller passes `now` and the state it
//!    persisted from the previous decision (`scale_down_pending_since`).

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use thiserror::Error;

use super::signal::RunState;

/// Invalid autoscaling bounds.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BoundsError {
    /// `minReplicas` is negative.
    #[error("autoscaling.minReplicas is {0}; it must be 0 or more")]
    NegativeMinimum(i32),
    /// `minReplicas` is above `maxReplicas`.
    #[error("autoscaling.minReplicas ({min}) must not exceed autoscaling.maxReplicas ({max})")]
    MinimumAboveMaximum {
        /// `minReplicas`.
        min: i32,
        /// `maxReplicas`.
        max: i32,
    },
}

/// Inclusive bounds of the worker count, with `0 <= min <= max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    min: i32,
    max: i32,
}

impl Bounds {
    /// Checks `0 <= min <= max`.
    pub fn new(min: i32, max: i32) -> Result<Self, BoundsError> {
        if min < 0 {
            return Err(BoundsError::NegativeMinimum(min));
        }
        if min > max {
            return Err(BoundsError::MinimumAboveMaximum { min, max });
        }
        Ok(Self { min, max })
    }

    /// Lower bound.
    pub fn min(self) -> i32 {
        self.min
    }

    /// Upper bound.
    pub fn max(self) -> i32 {
        self.max
    }
}

/// This pool's share of one successful poll of the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSignal {
    /// Training state of the server.
    pub run: RunState,
    /// `candidate_pool_size` of the loaded network, when known.
    pub candidate_pool_size: Option<u32>,
    /// Registered workers of this pool that hold a task.
    pub busy_workers: u32,
}

/// Result of polling the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    /// The server responded to every request.
    Reachable(PoolSignal),
    /// A request failed, timed out or returned something unusable.
    Unreachable,
}

/// Everything the rule reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecisionInput {
    /// Bounds of the worker count.
    pub bounds: Bounds,
    /// Worker count in force now (the previous decision).
    pub current_replicas: i32,
    /// How long a lower recommendation must last before the count is lowered.
    pub scale_down_delay: Duration,
    /// When the recommendation first fell below `current_replicas`, from the previous
    /// decision.
    pub scale_down_pending_since: Option<Timestamp>,
    /// Time of this decision.
    pub now: Timestamp,
    /// Observation of the server.
    pub observation: Observation,
}

/// Basis of a recommendation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleReason {
    /// A run is training with a known candidate pool size.
    RunActive {
        /// The run's candidate pool size.
        candidate_pool_size: u32,
    },
    /// A run is training but the server did not report its candidate pool size.
    PoolSizeUnknown,
    /// A run is paused.
    RunPaused,
    /// No run is in progress.
    NoRun,
    /// The server could not be read.
    ServerUnreachable,
}

impl ScaleReason {
    /// Fixed label for metrics and the `reason` of Events and conditions.
    pub fn label(self) -> &'static str {
        match self {
            Self::RunActive { .. } => "RunActive",
            Self::PoolSizeUnknown => "PoolSizeUnknown",
            Self::RunPaused => "RunPaused",
            Self::NoRun => "NoRun",
            Self::ServerUnreachable => "ServerUnreachable",
        }
    }

    /// Describes the reason in one sentence for Events and `status.autoscaling.lastScaleReason`.
    pub fn describe(self) -> String {
        match self {
            Self::RunActive {
                candidate_pool_size,
            } => format!("a training run is active with a candidate pool of {candidate_pool_size}"),
            Self::PoolSizeUnknown => {
                "a training run is active but the server reported no candidate pool size".to_owned()
            }
            Self::RunPaused => "the training run is paused".to_owned(),
            Self::NoRun => "no training run is in progress".to_owned(),
            Self::ServerUnreachable => "the juniper-cascor server could not be read".to_owned(),
        }
    }
}

/// Bound that changed the recommendation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleLimit {
    /// Raised to `minReplicas`.
    Minimum,
    /// Lowered to `maxReplicas`.
    Maximum,
    /// Raised to the number of busy workers.
    BusyWorkers,
}

/// Direction of a change of the worker count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleDirection {
    /// More workers.
    Up,
    /// Fewer workers.
    Down,
    /// No change.
    None,
}

impl ScaleDirection {
    /// Fixed label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::None => "none",
        }
    }
}

/// Output of the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Worker count in force before this decision.
    pub current_replicas: i32,
    /// Worker count to apply now.
    pub desired_replicas: i32,
    /// Worker count the server's state calls for, within the bounds. `desired_replicas`
    /// differs from it only while a scale-down waits out the delay or the server cannot be
    /// read.
    pub recommended_replicas: i32,
    /// Basis of the recommendation.
    pub reason: ScaleReason,
    /// Bound that changed the recommendation, if any.
    pub limit: Option<ScaleLimit>,
    /// When the recommendation first fell below the count; persist it for the next call.
    pub scale_down_pending_since: Option<Timestamp>,
}

impl Decision {
    /// Direction of the change from `current_replicas` to `desired_replicas`.
    pub fn direction(&self) -> ScaleDirection {
        match self.desired_replicas.cmp(&self.current_replicas) {
            std::cmp::Ordering::Greater => ScaleDirection::Up,
            std::cmp::Ordering::Less => ScaleDirection::Down,
            std::cmp::Ordering::Equal => ScaleDirection::None,
        }
    }

    /// Returns whether a scale-down is recommended but waits for the delay to pass.
    pub fn scale_down_delayed(&self) -> bool {
        self.recommended_replicas < self.desired_replicas && self.scale_down_pending_since.is_some()
    }
}

/// Decides the worker count. See the module documentation for the rule and its invariants.
pub fn decide(input: &DecisionInput) -> Decision {
    let bounds = input.bounds;
    let current = input.current_replicas.max(0);

    let signal = match input.observation {
        Observation::Reachable(signal) => signal,
        Observation::Unreachable => {
            let desired = current.max(bounds.min);
            return Decision {
                current_replicas: current,
                desired_replicas: desired,
                recommended_replicas: desired,
                reason: ScaleReason::ServerUnreachable,
                limit: (desired > current).then_some(ScaleLimit::Minimum),
                scale_down_pending_since: None,
            };
        }
    };

    let (reason, requested) = match (signal.run, signal.candidate_pool_size) {
        (RunState::Active, Some(pool_size)) => (
            ScaleReason::RunActive {
                candidate_pool_size: pool_size,
            },
            i64::from(pool_size),
        ),
        (RunState::Active, None) => (ScaleReason::PoolSizeUnknown, i64::from(current)),
        (RunState::Paused, _) => (ScaleReason::RunPaused, i64::from(current)),
        (RunState::Idle, _) => (ScaleReason::NoRun, i64::from(bounds.min)),
    };
    let (mut recommended, mut limit) = clamp(requested, bounds);

    if signal.run.in_progress() {
        let busy_floor = i64::from(signal.busy_workers).min(i64::from(bounds.max)) as i32;
        if recommended < busy_floor {
            recommended = busy_floor;
            limit = Some(ScaleLimit::BusyWorkers);
        }
    }

    let decision = |desired_replicas, scale_down_pending_since| Decision {
        current_replicas: current,
        desired_replicas,
        recommended_replicas: recommended,
        reason,
        limit,
        scale_down_pending_since,
    };

    if recommended >= current {
        return decision(recommended, None);
    }

    // The count goes down: at once to maxReplicas when above it, and below that only
    // after the recommendation has stayed lower for the whole delay.
    let within_maximum = current.min(bounds.max);
    if recommended >= within_maximum {
        return decision(recommended, None);
    }

    let pending_since = input
        .scale_down_pending_since
        .filter(|since| *since <= input.now)
        .unwrap_or(input.now);
    let waited = input.now.duration_since(pending_since);
    let delay_passed = waited.as_secs_f64() >= input.scale_down_delay.as_secs_f64();
    if delay_passed {
        decision(recommended, None)
    } else {
        decision(within_maximum, Some(pending_since))
    }
}

/// Clamps `requested` into the bounds and names the bound that applied.
fn clamp(requested: i64, bounds: Bounds) -> (i32, Option<ScaleLimit>) {
    if requested < i64::from(bounds.min) {
        (bounds.min, Some(ScaleLimit::Minimum))
    } else if requested > i64::from(bounds.max) {
        (bounds.max, Some(ScaleLimit::Maximum))
    } else {
        // In range of i32 because it lies between two i32 values.
        (requested as i32, None)
    }
}
