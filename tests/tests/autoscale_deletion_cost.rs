//! Tests of the scale-down ranking: which pods get which deletion cost.

use std::collections::BTreeMap;

use cascor_operator::autoscale::{
    DELETION_COST_ANNOTATION, PodActivity, RemoteWorker, WorkerCounts, WorkerPod, classify_pods,
    count_workers, plan_deletion_costs,
};
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

const NAMESPACE: &str = "ml";

fn pod(name: &str, phase: &str, cost: Option<&str>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(NAMESPACE.to_owned()),
            annotations: cost.map(|cost| {
                BTreeMap::from([(DELETION_COST_ANNOTATION.to_owned(), cost.to_owned())])
            }),
            ..ObjectMeta::default()
        },
        status: Some(PodStatus {
            phase: Some(phase.to_owned()),
            ..PodStatus::default()
        }),
        ..Pod::default()
    }
}

fn worker(id: &str, pod_name: &str, namespace: Option<&str>, busy: bool) -> RemoteWorker {
    RemoteWorker {
        worker_id: id.to_owned(),
        pod: Some(WorkerPod {
            name: pod_name.to_owned(),
            namespace: namespace.map(str::to_owned),
        }),
        busy,
    }
}

fn activities(pods: &[Pod], workers: &[RemoteWorker]) -> BTreeMap<String, PodActivity> {
    classify_pods(NAMESPACE, pods, workers)
        .into_iter()
        .map(|pod| (pod.name, pod.activity))
        .collect()
}

#[test]
fn pods_classified_by_worker_state() {
    let mut terminating = pod("pool-e", "Running", None);
    terminating.metadata.deletion_timestamp = Some(Time(
        Timestamp::from_second(1_800_000_000).expect("in range"),
    ));
    let pods = vec![
        pod("pool-a", "Running", None),
        pod("pool-b", "Running", None),
        pod("pool-c", "Pending", None),
        pod("pool-d", "Running", None),
        terminating,
    ];
    let workers = vec![
        worker("w-a", "pool-a", Some(NAMESPACE), true),
        worker("w-b", "pool-b", Some(NAMESPACE), false),
        worker("w-e", "pool-e", Some(NAMESPACE), true),
        // Same pod name in another namespace: not this pool's.
        worker("w-x", "pool-d", Some("other"), true),
    ];

    let activity = activities(&pods, &workers);

    assert_eq!(activity["pool-a"], PodActivity::Busy);
    assert_eq!(activity["pool-b"], PodActivity::Idle);
    assert_eq!(activity["pool-c"], PodActivity::Unregistered, "pending pod");
    assert_eq!(
        activity["pool-d"],
        PodActivity::Unregistered,
        "a worker of another namespace does not count"
    );
    assert_eq!(activity["pool-e"], PodActivity::Terminating);
}

#[test]
fn worker_without_namespace_matches_by_name() {
    let pods = vec![pod("pool-a", "Running", None)];
    let workers = vec![worker("w-a", "pool-a", None, false)];

    assert_eq!(activities(&pods, &workers)["pool-a"], PodActivity::Idle);
}

#[test]
fn reconnected_worker_counts_busy_if_any_registration_is() {
    let pods = vec![pod("pool-a", "Running", None)];
    let workers = vec![
        worker("w-old", "pool-a", Some(NAMESPACE), true),
        worker("w-new", "pool-a", Some(NAMESPACE), false),
    ];

    assert_eq!(activities(&pods, &workers)["pool-a"], PodActivity::Busy);
}

#[test]
fn costs_order_unregistered_idle_busy() {
    let unregistered = PodActivity::Unregistered
        .deletion_cost()
        .expect("has a cost");
    let idle = PodActivity::Idle.deletion_cost().expect("has a cost");
    let busy = PodActivity::Busy.deletion_cost().expect("has a cost");

    assert!(unregistered < idle, "unregistered pods go before idle ones");
    assert!(idle < busy, "idle pods go before busy ones");
    assert_eq!(PodActivity::Terminating.deletion_cost(), None);
}

#[test]
fn plan_skips_unchanged_and_terminating_pods() {
    let busy_cost = PodActivity::Busy.deletion_cost().expect("has a cost");
    let idle_cost = PodActivity::Idle.deletion_cost().expect("has a cost");
    let unregistered_cost = PodActivity::Unregistered
        .deletion_cost()
        .expect("has a cost");
    let mut terminating = pod("pool-t", "Running", None);
    terminating.metadata.deletion_timestamp = Some(Time(
        Timestamp::from_second(1_800_000_000).expect("in range"),
    ));
    let pods = vec![
        // Already annotated with its cost: no patch.
        pod("pool-a", "Running", Some(&busy_cost.to_string())),
        // Idle now but marked busy from an earlier scale-down: patch.
        pod("pool-b", "Running", Some(&busy_cost.to_string())),
        // Pending, no annotation: patch.
        pod("pool-c", "Pending", None),
        // Annotation that does not parse: patch.
        pod("pool-d", "Running", Some("many")),
        terminating,
    ];
    let workers = vec![
        worker("w-a", "pool-a", Some(NAMESPACE), true),
        worker("w-b", "pool-b", Some(NAMESPACE), false),
        worker("w-d", "pool-d", Some(NAMESPACE), false),
    ];

    let classified = classify_pods(NAMESPACE, &pods, &workers);
    let plan: BTreeMap<String, i32> = plan_deletion_costs(&classified)
        .into_iter()
        .map(|patch| (patch.pod_name, patch.cost))
        .collect();

    assert_eq!(
        plan,
        BTreeMap::from([
            ("pool-b".to_owned(), idle_cost),
            ("pool-c".to_owned(), unregistered_cost),
            ("pool-d".to_owned(), idle_cost),
        ])
    );
}

#[test]
fn counts_only_registered_workers() {
    let pods = vec![
        pod("pool-a", "Running", None),
        pod("pool-b", "Running", None),
        pod("pool-c", "Running", None),
        pod("pool-d", "Pending", None),
    ];
    let workers = vec![
        worker("w-a", "pool-a", Some(NAMESPACE), true),
        worker("w-b", "pool-b", Some(NAMESPACE), false),
        worker("w-c", "pool-c", Some(NAMESPACE), false),
        // A worker whose pod is not in the list (another pool) is not counted.
        worker("w-z", "other-pool-z", Some(NAMESPACE), true),
    ];

    let counts = count_workers(&classify_pods(NAMESPACE, &pods, &workers));

    assert_eq!(
        counts,
        WorkerCounts {
            connected: 3,
            busy: 1,
            idle: 2
        }
    );
}
