//! Table tests of the autoscaling rule: run start and end, unreachable server, busy workers,
//! bounds and the scale-down delay.

use std::time::Duration;

use cascor_operator::autoscale::{
    Bounds, Decision, DecisionInput, Observation, PoolSignal, RunState, ScaleDirection, ScaleLimit,
    ScaleReason, decide,
};
use k8s_openapi::jiff::Timestamp;

const DELAY: Duration = Duration::from_secs(300);

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).expect("timestamp in range")
}

fn reachable(run: RunState, candidate_pool_size: Option<u32>, busy_workers: u32) -> Observation {
    Observation::Reachable(PoolSignal {
        run,
        candidate_pool_size,
        busy_workers,
    })
}

struct Case {
    name: &'static str,
    bounds: (i32, i32),
    current: i32,
    pending_since: Option<i64>,
    now: i64,
    observation: Observation,
    desired: i32,
    recommended: i32,
    reason: ScaleReason,
    limit: Option<ScaleLimit>,
    pending_after: Option<i64>,
}

fn run_case(case: &Case) -> Decision {
    let bounds = Bounds::new(case.bounds.0, case.bounds.1).expect("valid bounds");
    decide(&DecisionInput {
        bounds,
        current_replicas: case.current,
        scale_down_delay: DELAY,
        scale_down_pending_since: case.pending_since.map(at),
        now: at(case.now),
        observation: case.observation,
    })
}

#[test]
fn decision_table() {
    let cases = [
        Case {
            name: "run starts: grow to the candidate pool at once",
            bounds: (1, 20),
            current: 1,
            pending_since: None,
            now: 0,
            observation: reachable(RunState::Active, Some(8), 0),
            desired: 8,
            recommended: 8,
            reason: ScaleReason::RunActive {
                candidate_pool_size: 8,
            },
            limit: None,
            pending_after: None,
        },
        Case {
            name: "run starts with a pool above the maximum",
            bounds: (0, 5),
            current: 0,
            pending_since: None,
            now: 0,
            observation: reachable(RunState::Active, Some(40), 0),
            desired: 5,
            recommended: 5,
            reason: ScaleReason::RunActive {
                candidate_pool_size: 40,
            },
            limit: Some(ScaleLimit::Maximum),
            pending_after: None,
        },
        Case {
            name: "run ends: scale-down waits for the delay",
            bounds: (1, 20),
            current: 8,
            pending_since: None,
            now: 100,
            observation: reachable(RunState::Idle, None, 0),
            desired: 8,
            recommended: 1,
            reason: ScaleReason::NoRun,
            limit: None,
            pending_after: Some(100),
        },
        Case {
            name: "run ended inside the delay: still waiting",
            bounds: (1, 20),
            current: 8,
            pending_since: Some(100),
            now: 399,
            observation: reachable(RunState::Idle, None, 0),
            desired: 8,
            recommended: 1,
            reason: ScaleReason::NoRun,
            limit: None,
            pending_after: Some(100),
        },
        Case {
            name: "run ended and the delay passed: shrink to the minimum",
            bounds: (1, 20),
            current: 8,
            pending_since: Some(100),
            now: 400,
            observation: reachable(RunState::Idle, None, 0),
            desired: 1,
            recommended: 1,
            reason: ScaleReason::NoRun,
            limit: None,
            pending_after: None,
        },
        Case {
            name: "scale to zero when the minimum is 0",
            bounds: (0, 20),
            current: 3,
            pending_since: Some(0),
            now: 300,
            observation: reachable(RunState::Idle, None, 0),
            desired: 0,
            recommended: 0,
            reason: ScaleReason::NoRun,
            limit: None,
            pending_after: None,
        },
        Case {
            name: "new run inside the delay cancels the pending scale-down",
            bounds: (1, 20),
            current: 8,
            pending_since: Some(100),
            now: 200,
            observation: reachable(RunState::Active, Some(8), 3),
            desired: 8,
            recommended: 8,
            reason: ScaleReason::RunActive {
                candidate_pool_size: 8,
            },
            limit: None,
            pending_after: None,
        },
        Case {
            name: "server unreachable: keep the count and restart the delay",
            bounds: (1, 20),
            current: 8,
            pending_since: Some(0),
            now: 1000,
            observation: Observation::Unreachable,
            desired: 8,
            recommended: 8,
            reason: ScaleReason::ServerUnreachable,
            limit: None,
            pending_after: None,
        },
        Case {
            name: "server unreachable above the maximum: no scale-down",
            bounds: (1, 4),
            current: 8,
            pending_since: None,
            now: 0,
            observation: Observation::Unreachable,
            desired: 8,
            recommended: 8,
            reason: ScaleReason::ServerUnreachable,
            limit: None,
            pending_after: None,
        },
        Case {
            name: "server unreachable below the minimum: raise to the minimum",
            bounds: (2, 4),
            current: 0,
            pending_since: None,
            now: 0,
            observation: Observation::Unreachable,
            desired: 2,
            recommended: 2,
            reason: ScaleReason::ServerUnreachable,
            limit: Some(ScaleLimit::Minimum),
            pending_after: None,
        },
        Case {
            name: "busy workers floor a smaller pool during a run",
            bounds: (1, 20),
            current: 10,
            pending_since: Some(0),
            now: 1000,
            observation: reachable(RunState::Active, Some(4), 6),
            desired: 6,
            recommended: 6,
            reason: ScaleReason::RunActive {
                candidate_pool_size: 4,
            },
            limit: Some(ScaleLimit::BusyWorkers),
            pending_after: None,
        },
        Case {
            name: "busy floor is capped at the maximum",
            bounds: (1, 5),
            current: 5,
            pending_since: None,
            now: 0,
            observation: reachable(RunState::Active, Some(2), 9),
            desired: 5,
            recommended: 5,
            reason: ScaleReason::RunActive {
                candidate_pool_size: 2,
            },
            limit: Some(ScaleLimit::BusyWorkers),
            pending_after: None,
        },
        Case {
            name: "busy workers after the run do not hold the count",
            bounds: (1, 20),
            current: 8,
            pending_since: Some(0),
            now: 300,
            observation: reachable(RunState::Idle, None, 5),
            desired: 1,
            recommended: 1,
            reason: ScaleReason::NoRun,
            limit: None,
            pending_after: None,
        },
        Case {
            name: "paused run holds the count",
            bounds: (1, 20),
            current: 8,
            pending_since: Some(0),
            now: 1000,
            observation: reachable(RunState::Paused, Some(8), 0),
            desired: 8,
            recommended: 8,
            reason: ScaleReason::RunPaused,
            limit: None,
            pending_after: None,
        },
        Case {
            name: "run without a pool size holds the count",
            bounds: (1, 20),
            current: 3,
            pending_since: None,
            now: 0,
            observation: reachable(RunState::Active, None, 0),
            desired: 3,
            recommended: 3,
            reason: ScaleReason::PoolSizeUnknown,
            limit: None,
            pending_after: None,
        },
        Case {
            name: "count above a lowered maximum drops to it at once",
            bounds: (1, 6),
            current: 10,
            pending_since: None,
            now: 0,
            observation: reachable(RunState::Active, Some(8), 2),
            desired: 6,
            recommended: 6,
            reason: ScaleReason::RunActive {
                candidate_pool_size: 8,
            },
            limit: Some(ScaleLimit::Maximum),
            pending_after: None,
        },
        Case {
            name: "above the maximum with no run: to the maximum now, lower after the delay",
            bounds: (1, 6),
            current: 10,
            pending_since: None,
            now: 0,
            observation: reachable(RunState::Idle, None, 0),
            desired: 6,
            recommended: 1,
            reason: ScaleReason::NoRun,
            limit: None,
            pending_after: Some(0),
        },
        Case {
            name: "count below a raised minimum grows at once",
            bounds: (4, 10),
            current: 1,
            pending_since: None,
            now: 0,
            observation: reachable(RunState::Idle, None, 0),
            desired: 4,
            recommended: 4,
            reason: ScaleReason::NoRun,
            limit: None,
            pending_after: None,
        },
        Case {
            name: "smaller pool in a new run shrinks after the delay",
            bounds: (1, 20),
            current: 12,
            pending_since: Some(50),
            now: 350,
            observation: reachable(RunState::Active, Some(6), 2),
            desired: 6,
            recommended: 6,
            reason: ScaleReason::RunActive {
                candidate_pool_size: 6,
            },
            limit: None,
            pending_after: None,
        },
        Case {
            name: "pending-since in the future counts from now",
            bounds: (1, 20),
            current: 8,
            pending_since: Some(10_000),
            now: 100,
            observation: reachable(RunState::Idle, None, 0),
            desired: 8,
            recommended: 1,
            reason: ScaleReason::NoRun,
            limit: None,
            pending_after: Some(100),
        },
        Case {
            name: "steady run: no change",
            bounds: (1, 20),
            current: 8,
            pending_since: None,
            now: 0,
            observation: reachable(RunState::Active, Some(8), 8),
            desired: 8,
            recommended: 8,
            reason: ScaleReason::RunActive {
                candidate_pool_size: 8,
            },
            limit: None,
            pending_after: None,
        },
    ];

    for case in &cases {
        let decision = run_case(case);
        assert_eq!(
            decision.desired_replicas, case.desired,
            "{}: desired",
            case.name
        );
        assert_eq!(
            decision.recommended_replicas, case.recommended,
            "{}: recommended",
            case.name
        );
        assert_eq!(decision.reason, case.reason, "{}: reason", case.name);
        assert_eq!(decision.limit, case.limit, "{}: limit", case.name);
        assert_eq!(
            decision.scale_down_pending_since,
            case.pending_after.map(at),
            "{}: pending since",
            case.name
        );
        assert_eq!(
            decision.current_replicas,
            case.current.max(0),
            "{}: current",
            case.name
        );
    }
}

#[test]
fn direction_follows_the_change() {
    let bounds = Bounds::new(1, 10).expect("valid bounds");
    let input = |current, observation| DecisionInput {
        bounds,
        current_replicas: current,
        scale_down_delay: Duration::ZERO,
        scale_down_pending_since: None,
        now: at(0),
        observation,
    };

    let up = decide(&input(1, reachable(RunState::Active, Some(5), 0)));
    let down = decide(&input(5, reachable(RunState::Idle, None, 0)));
    let steady = decide(&input(5, reachable(RunState::Active, Some(5), 0)));

    assert_eq!(up.direction(), ScaleDirection::Up);
    assert_eq!(down.direction(), ScaleDirection::Down);
    assert_eq!(down.desired_replicas, 1, "a zero delay scales down at once");
    assert_eq!(steady.direction(), ScaleDirection::None);
}

/// Walks a run through time and checks that the count never flaps: one scale-up when the
/// run starts, no change while the server blinks out, one scale-down after the delay.
#[test]
fn run_lifecycle_has_no_flapping() {
    let bounds = Bounds::new(1, 10).expect("valid bounds");
    let mut current = 1;
    let mut pending_since = None;
    let mut changes = Vec::new();

    // (second, observation): the run is active for 0..600, the server is unreachable at
    // 300..330 and at 700, the run is over from 600.
    let timeline: Vec<(i64, Observation)> = (0..1200)
        .step_by(10)
        .map(|second| {
            let observation = if (300..330).contains(&second) || second == 700 {
                Observation::Unreachable
            } else if second < 600 {
                reachable(RunState::Active, Some(6), (second % 7) as u32)
            } else {
                reachable(RunState::Idle, None, 0)
            };
            (second, observation)
        })
        .collect();

    for (second, observation) in timeline {
        let decision = decide(&DecisionInput {
            bounds,
            current_replicas: current,
            scale_down_delay: DELAY,
            scale_down_pending_since: pending_since,
            now: at(second),
            observation,
        });
        if decision.desired_replicas != current {
            changes.push((second, current, decision.desired_replicas));
        }
        current = decision.desired_replicas;
        pending_since = decision.scale_down_pending_since;
    }

    // The blink at 700 restarts the delay, so the scale-down comes 300 s after 710.
    assert_eq!(changes, vec![(0, 1, 6), (1010, 6, 1)]);
}

#[test]
fn bounds_reject_bad_values() {
    assert!(Bounds::new(-1, 3).is_err());
    assert!(Bounds::new(4, 3).is_err());
    assert!(Bounds::new(0, 0).is_ok());

    let message = Bounds::new(4, 3).expect_err("min above max").to_string();
    assert!(
        message.contains("(4)") && message.contains("(3)"),
        "{message}"
    );
}
