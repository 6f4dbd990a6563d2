//! The operator's controller against the stand-in API server: children appear, follow the
//! spec and the scale subresource, come back when deleted, disappear with the pool, and an
//! idle pool causes no writes.

mod operator_support;

use std::time::Duration;

use cascor_operator::permissions;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use operator_support::{Harness, NAMESPACE, eventually};
use serde_json::json;

const POOL: &str = r#"
apiVersion: cascor.juniper.dev/v1alpha1
kind: CascorWorkerPool
metadata:
  name: spirals
  namespace: ml
spec:
  replicas: 2
  server:
    url: ws://juniper-cascor.ml.svc:8200/ws/v1/workers
    tokenSecretRef:
      name: cascor-worker-token
"#;

async fn deployment(harness: &Harness) -> Option<Deployment> {
    harness
        .api::<Deployment>()
        .get_opt("spirals")
        .await
        .expect("get succeeds")
}

async fn replicas_become(harness: &Harness, expected: i32) -> Deployment {
    eventually(&format!("Deployment replicas {expected}"), || async {
        deployment(harness)
            .await
            .filter(|d| d.spec.replicas == Some(expected))
    })
    .await
}

/// Marks every replica of the Deployment ready, as the Deployment controller and kubelet
/// would report it.
async fn report_ready(harness: &Harness, ready: i32) {
    let current = deployment(harness).await.expect("the Deployment exists");
    let status = json!({"status": {
        "observedGeneration": current.metadata.generation,
        "replicas": ready,
        "updatedReplicas": ready,
        "readyReplicas": ready,
        "availableReplicas": ready,
    }});
    harness
        .api::<Deployment>()
        .patch_status("spirals", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("writing the Deployment status succeeds");
}

async fn event_reasons(harness: &Harness) -> Vec<String> {
    let events: Api<Event> = harness.api();
    events
        .list(&ListParams::default())
        .await
        .expect("listing events succeeds")
        .items
        .into_iter()
        .filter_map(|event| event.reason)
        .collect()
}

#[tokio::test]
async fn pool_creates_owned_children() {
    let harness = Harness::start().await;
    let pool = harness.create_pool(POOL).await;
    let uid = pool.uid().expect("the stand-in assigns a uid");

    let created = replicas_become(&harness, 2).await;

    let service_account = harness
        .api::<ServiceAccount>()
        .get("spirals")
        .await
        .expect("ServiceAccount exists");
    let service = harness
        .api::<Service>()
        .get("spirals-metrics")
        .await
        .expect("Service exists");
    let budget = harness
        .api::<PodDisruptionBudget>()
        .get("spirals")
        .await
        .expect("PodDisruptionBudget exists");
    for (kind, owners) in [
        ("ServiceAccount", service_account.owner_references()),
        ("Service", service.owner_references()),
        ("Deployment", created.owner_references()),
        ("PodDisruptionBudget", budget.owner_references()),
    ] {
        assert_eq!(owners.len(), 1, "{kind} has one owner");
        assert_eq!(owners[0].uid, uid, "{kind} is owned by the pool");
        assert_eq!(
            owners[0].controller,
            Some(true),
            "{kind} owner is the controller"
        );
    }
    assert_eq!(service.spec.unwrap().cluster_ip.as_deref(), Some("None"));
    let reasons = eventually("Created events", || async {
        let reasons = event_reasons(&harness).await;
        reasons
            .iter()
            .any(|reason| reason == "Created")
            .then_some(reasons)
    })
    .await;
    assert!(
        reasons.iter().all(|reason| reason == "Created"),
        "{reasons:?}"
    );

    harness.stop().await;
}

#[tokio::test]
async fn spec_change_and_scale_reach_the_deployment() {
    let harness = Harness::start().await;
    harness.create_pool(POOL).await;
    replicas_become(&harness, 2).await;

    let image_patch = json!({"spec": {"worker": {"image": "registry.example/worker:2.0.0"}}});
    harness
        .pools()
        .patch(
            "spirals",
            &PatchParams::default(),
            &Patch::Merge(&image_patch),
        )
        .await
        .expect("patching the pool succeeds");
    eventually("the Deployment to use the new image", || async {
        let deployment = deployment(&harness).await?;
        let image = deployment.spec.template.spec?.containers[0].image.clone()?;
        (image == "registry.example/worker:2.0.0").then_some(())
    })
    .await;

    let scale = json!({"spec": {"replicas": 5}});
    harness
        .pools()
        .patch_scale("spirals", &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .expect("patching /scale succeeds");
    replicas_become(&harness, 5).await;
    let scale = harness
        .pools()
        .get_scale("spirals")
        .await
        .expect("reading /scale succeeds");
    assert_eq!(scale.spec.and_then(|spec| spec.replicas), Some(5));

    report_ready(&harness, 5).await;
    let pool = eventually("the pool to report 5 ready workers", || async {
        let pool = harness.pools().get("spirals").await.ok()?;
        let status = pool.status.clone()?;
        (status.ready_replicas == Some(5) && status.state.as_deref() == Some("Ready"))
            .then_some(pool)
    })
    .await;
    let status = pool.status.unwrap();
    assert_eq!(
        status.selector.as_deref(),
        Some("app.kubernetes.io/instance=spirals,app.kubernetes.io/name=juniper-cascor-worker")
    );
    assert_eq!(status.observed_generation, pool.metadata.generation);
    let ready = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
    let scale = harness.pools().get_scale("spirals").await.unwrap();
    assert_eq!(scale.status.unwrap().replicas, 5);
    assert!(event_reasons(&harness).await.contains(&"Scaled".to_owned()));

    harness.stop().await;
}

#[tokio::test]
async fn deleted_child_comes_back() {
    let harness = Harness::start().await;
    harness.create_pool(POOL).await;
    replicas_become(&harness, 2).await;
    let services = harness.api::<Service>();
    let original = services
        .get("spirals-metrics")
        .await
        .expect("Service exists");

    services
        .delete("spirals-metrics", &DeleteParams::default())
        .await
        .expect("deleting the Service succeeds");

    let restored = eventually("the Service to be recreated", || async {
        services.get_opt("spirals-metrics").await.ok().flatten()
    })
    .await;
    assert_ne!(
        restored.uid(),
        original.uid(),
        "a new object replaced the deleted one"
    );

    harness.stop().await;
}

#[tokio::test]
async fn pool_deletion_removes_children() {
    let harness = Harness::start().await;
    harness.create_pool(POOL).await;
    replicas_become(&harness, 2).await;

    harness
        .pools()
        .delete("spirals", &DeleteParams::default())
        .await
        .expect("deleting the pool succeeds");

    eventually("the children to be garbage-collected", || async {
        let deployment = deployment(&harness).await;
        let service = harness
            .api::<Service>()
            .get_opt("spirals-metrics")
            .await
            .ok()?;
        let account = harness
            .api::<ServiceAccount>()
            .get_opt("spirals")
            .await
            .ok()?;
        (deployment.is_none() && service.is_none() && account.is_none()).then_some(())
    })
    .await;

    harness.stop().await;
}

#[tokio::test]
async fn idle_pool_makes_no_writes() {
    let harness = Harness::start().await;
    harness.create_pool(POOL).await;
    replicas_become(&harness, 2).await;
    report_ready(&harness, 2).await;
    eventually("the pool to become Ready", || async {
        let status = harness.pools().get("spirals").await.ok()?.status?;
        (status.state.as_deref() == Some("Ready")).then_some(())
    })
    .await;

    // Let the reconciles triggered by the operator's own writes run out.
    let settle = Duration::from_secs(2);
    tokio::time::sleep(settle).await;
    let before = harness.server.operator_writes().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = harness.server.operator_writes();

    assert_eq!(
        after.len(),
        before,
        "writes while idle: {:#?}",
        &after[before.min(after.len())..]
    );
    let reconciles = harness.state.metrics.render();
    assert!(
        reconciles.contains("cascor_operator_reconciliations_total{result=\"success\"}"),
        "{reconciles}"
    );

    harness.stop().await;
}

#[tokio::test]
async fn operator_calls_stay_within_permissions() {
    let harness = Harness::start().await;
    harness.create_pool(POOL).await;
    replicas_become(&harness, 2).await;
    report_ready(&harness, 2).await;
    eventually("the pool to become Ready", || async {
        let status = harness.pools().get("spirals").await.ok()?.status?;
        (status.state.as_deref() == Some("Ready")).then_some(())
    })
    .await;

    let requests = harness.server.operator_requests();

    assert!(!requests.is_empty());
    for request in &requests {
        assert!(
            permissions::is_permitted(&request.group, &request.resource, &request.verb),
            "the operator called {} on {:?}/{} in {:?}, which operator/src/permissions.rs does not list",
            request.verb,
            request.group,
            request.resource,
            request.namespace,
        );
    }
    assert!(
        requests
            .iter()
            .all(|request| request.namespace.is_empty() || request.namespace == NAMESPACE)
    );

    harness.stop().await;
}
