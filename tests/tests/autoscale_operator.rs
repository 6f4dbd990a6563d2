//! The operator's autoscaler end to end: the controller runs against the stand-in API server
//! and polls the juniper-cascor REST stand-in. A run start grows the Deployment, an
//! unreachable server changes nothing, and the end of the run shrinks it after the delay with
//! the busy pods ranked last.

mod operator_support;

use std::collections::BTreeMap;

use cascor_operator::autoscale::{DELETION_COST_ANNOTATION, PodActivity, SCALING_ACTIVE_CONDITION};
use cascor_operator::children::selector_labels;
use cascor_system_tests::cascor_standin::{CascorStandin, StandinWorker};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use operator_support::{Harness, NAMESPACE, eventually};
use serde_json::json;

const POOL_NAME: &str = "spirals";
const API_KEY: &str = "autoscale-operator-test-key";
const TOKEN_SECRET: &str = "cascor-worker-token";

fn pool_yaml(worker_url: &str) -> String {
    format!(
        r#"
apiVersion: cascor.juniper.dev/v1alpha1
kind: CascorWorkerPool
metadata:
  name: {POOL_NAME}
  namespace: {NAMESPACE}
spec:
  replicas: 3
  server:
    url: {worker_url}
    tokenSecretRef:
      name: {TOKEN_SECRET}
  autoscaling:
    enabled: true
    minReplicas: 1
    maxReplicas: 10
    pollInterval: 100ms
    scaleDownDelay: 1s
"#
    )
}

async fn create_token_secret(harness: &Harness) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(TOKEN_SECRET.to_owned()),
            namespace: Some(NAMESPACE.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "token".to_owned(),
            ByteString(API_KEY.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    };
    harness
        .api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("creating the token Secret succeeds");
}

async fn replicas_become(harness: &Harness, expected: i32) -> Deployment {
    eventually(&format!("Deployment replicas {expected}"), || async {
        harness
            .api::<Deployment>()
            .get_opt(POOL_NAME)
            .await
            .expect("get succeeds")
            .filter(|deployment| deployment.spec.replicas == Some(expected))
    })
    .await
}

async fn deployment_replicas(harness: &Harness) -> Option<i32> {
    harness
        .api::<Deployment>()
        .get(POOL_NAME)
        .await
        .expect("the Deployment exists")
        .spec
        .replicas
}

/// Creates a worker pod of the pool in `phase`, as the ReplicaSet controller and kubelet
/// would, because the stand-in API server runs no controllers.
async fn create_pod(harness: &Harness, name: &str, phase: &str) {
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(NAMESPACE.to_owned()),
            labels: Some(selector_labels(POOL_NAME)),
            ..ObjectMeta::default()
        },
        ..Pod::default()
    };
    harness
        .api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("creating a pod succeeds");
    harness
        .api::<Pod>()
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"phase": phase}})),
        )
        .await
        .expect("writing the pod phase succeeds");
}

async fn deletion_costs(harness: &Harness) -> BTreeMap<String, Option<String>> {
    harness
        .api::<Pod>()
        .list(&ListParams::default())
        .await
        .expect("listing pods succeeds")
        .items
        .into_iter()
        .map(|pod| {
            let cost = pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(DELETION_COST_ANNOTATION))
                .cloned();
            (pod.metadata.name.unwrap_or_default(), cost)
        })
        .collect()
}

async fn event_reasons(harness: &Harness) -> Vec<String> {
    harness
        .api::<Event>()
        .list(&ListParams::default())
        .await
        .expect("listing events succeeds")
        .items
        .into_iter()
        .filter_map(|event| event.reason)
        .collect()
}

/// Value of a counter series of the operator's metrics, 0 when absent.
fn counter_value(harness: &Harness, series_prefix: &str) -> u64 {
    harness
        .state
        .metrics
        .render()
        .lines()
        .filter(|line| line.starts_with(series_prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn cost_of(activity: PodActivity) -> Option<String> {
    activity.deletion_cost().map(|cost| cost.to_string())
}

#[tokio::test]
async fn autoscaler_follows_the_training_run() {
    let mut standin = CascorStandin::start(API_KEY)
        .await
        .expect("the cascor stand-in starts");
    let harness = Harness::start().await;
    create_token_secret(&harness).await;
    harness.create_pool(&pool_yaml(&standin.worker_url())).await;

    // No run: the minimum, although spec.replicas is 3.
    replicas_become(&harness, 1).await;

    // A run with a candidate pool of 6 starts: the pool grows to 6 at once.
    standin.set_training("STARTED", Some(6));
    replicas_become(&harness, 6).await;
    let pool = eventually("status.autoscaling.runActive", || async {
        let pool = harness.pools().get(POOL_NAME).await.expect("get succeeds");
        let run_active = pool
            .status
            .as_ref()
            .and_then(|status| status.autoscaling.as_ref())
            .and_then(|autoscaling| autoscaling.run_active);
        (run_active == Some(true)).then_some(pool)
    })
    .await;
    let autoscaling = pool
        .status
        .as_ref()
        .and_then(|status| status.autoscaling.clone())
        .expect("status.autoscaling is set");
    assert_eq!(autoscaling.desired_replicas, Some(6));
    assert_eq!(autoscaling.candidate_pool_size, Some(6));
    assert!(autoscaling.last_scale_reason.is_some());

    // Six pods exist: two busy, two idle, one running but unregistered, one pending.
    for (name, phase) in [
        ("spirals-busy-1", "Running"),
        ("spirals-busy-2", "Running"),
        ("spirals-idle-1", "Running"),
        ("spirals-idle-2", "Running"),
        ("spirals-connecting", "Running"),
        ("spirals-pending", "Pending"),
    ] {
        create_pod(&harness, name, phase).await;
    }
    standin.set_workers(vec![
        StandinWorker::busy("worker-1", NAMESPACE, "spirals-busy-1", "task-1"),
        StandinWorker::busy("worker-2", NAMESPACE, "spirals-busy-2", "task-2"),
        StandinWorker::idle("worker-3", NAMESPACE, "spirals-idle-1"),
        StandinWorker::idle("worker-4", NAMESPACE, "spirals-idle-2"),
        // Same pod name in another namespace: not one of this pool's pods.
        StandinWorker::busy("worker-5", "elsewhere", "spirals-connecting", "task-5"),
    ]);
    eventually("busy and idle worker counts", || async {
        let pool = harness.pools().get(POOL_NAME).await.expect("get succeeds");
        let autoscaling = pool.status.and_then(|status| status.autoscaling)?;
        (autoscaling.busy_workers == Some(2)
            && autoscaling.idle_workers == Some(2)
            && autoscaling.connected_workers == Some(4))
        .then_some(())
    })
    .await;

    // The server becomes unreachable and the run ends meanwhile: nothing changes, however
    // long that lasts, and the ScalingActive condition states why.
    standin.stop().await;
    standin.set_training("COMPLETED", Some(6));
    let errors_before = counter_value(&harness, "cascor_operator_autoscale_poll_errors_total");
    eventually("ScalingActive False", || async {
        let pool = harness.pools().get(POOL_NAME).await.expect("get succeeds");
        let conditions = pool.status?.conditions?;
        conditions
            .iter()
            .find(|condition| {
                condition.type_ == SCALING_ACTIVE_CONDITION && condition.status == "False"
            })
            .cloned()
    })
    .await;
    // More failed polls than fit into the 1 s scale-down delay at a 100 ms poll interval.
    eventually("20 failed polls", || async {
        let errors = counter_value(&harness, "cascor_operator_autoscale_poll_errors_total");
        (errors >= errors_before + 20).then_some(())
    })
    .await;
    assert_eq!(
        deployment_replicas(&harness).await,
        Some(6),
        "an unreachable server changes nothing"
    );
    assert!(
        deletion_costs(&harness).await.values().all(Option::is_none),
        "no pod is annotated while the server is unreachable"
    );
    assert!(
        event_reasons(&harness)
            .await
            .contains(&"ServerUnreachable".to_owned()),
        "a Warning Event says the server is unreachable"
    );

    // The server responds again with no run: after the delay the pool shrinks to the
    // minimum, and before that every pod was ranked with busy pods last.
    standin
        .restart()
        .await
        .expect("the cascor stand-in restarts");
    replicas_become(&harness, 1).await;

    let costs = deletion_costs(&harness).await;
    assert_eq!(costs["spirals-busy-1"], cost_of(PodActivity::Busy));
    assert_eq!(costs["spirals-busy-2"], cost_of(PodActivity::Busy));
    assert_eq!(costs["spirals-idle-1"], cost_of(PodActivity::Idle));
    assert_eq!(costs["spirals-idle-2"], cost_of(PodActivity::Idle));
    assert_eq!(
        costs["spirals-connecting"],
        cost_of(PodActivity::Unregistered)
    );
    assert_eq!(costs["spirals-pending"], cost_of(PodActivity::Unregistered));

    // The status is written after the Deployment within the same reconcile.
    let status = eventually("status.autoscaling.desiredReplicas 1", || async {
        let pool = harness.pools().get(POOL_NAME).await.expect("get succeeds");
        let status = pool.status?;
        let desired = status.autoscaling.as_ref()?.desired_replicas;
        (desired == Some(1)).then_some(status)
    })
    .await;
    let autoscaling = status.autoscaling.expect("status.autoscaling is set");
    assert_eq!(autoscaling.run_active, Some(false));
    assert_eq!(autoscaling.scale_down_pending_since, None);
    let scaling_active = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|condition| condition.type_ == SCALING_ACTIVE_CONDITION)
        .expect("the ScalingActive condition is set");
    assert_eq!(scaling_active.status, "True");
    assert_eq!(scaling_active.reason, "NoRun");

    let reasons = event_reasons(&harness).await;
    assert!(reasons.contains(&"ScaledUp".to_owned()), "{reasons:?}");
    assert!(reasons.contains(&"ScaledDown".to_owned()), "{reasons:?}");
    assert!(
        counter_value(
            &harness,
            "cascor_operator_autoscale_scalings_total{direction=\"down\""
        ) >= 1
    );

    harness.stop().await;
    standin.stop().await;
}

#[tokio::test]
async fn disabled_autoscaling_leaves_replicas_to_the_spec() {
    let standin = CascorStandin::start(API_KEY)
        .await
        .expect("the cascor stand-in starts");
    standin.set_training("STARTED", Some(8));
    let harness = Harness::start().await;
    create_token_secret(&harness).await;
    let yaml = pool_yaml(&standin.worker_url()).replace("enabled: true", "enabled: false");
    harness.create_pool(&yaml).await;

    replicas_become(&harness, 3).await;
    let pool = harness.pools().get(POOL_NAME).await.expect("get succeeds");

    assert!(
        pool.status.and_then(|status| status.autoscaling).is_none(),
        "no autoscaling status while disabled"
    );
    assert!(
        standin.requests().is_empty(),
        "the server is not polled while autoscaling is disabled: {:?}",
        standin.requests()
    );

    harness.stop().await;
}
