//! The autoscaler's REST client against the juniper-cascor stand-in over real HTTP.

use std::time::Duration;

use cascor_operator::autoscale::{CascorRestClient, ClientError, RunState, WorkerPod};
use cascor_system_tests::cascor_standin::{CascorStandin, StandinWorker};

const API_KEY: &str = "autoscale-client-test-key";
const TIMEOUT: Duration = Duration::from_secs(10);

fn client_for(standin: &CascorStandin, api_key: Option<&str>) -> CascorRestClient {
    let base_url = standin.base_url().parse().expect("stand-in URL parses");
    CascorRestClient::new(base_url, api_key, None, TIMEOUT).expect("client builds")
}

#[tokio::test]
async fn snapshot_without_run() {
    let standin = CascorStandin::start(API_KEY)
        .await
        .expect("stand-in starts");
    let client = client_for(&standin, Some(API_KEY));

    let snapshot = client.snapshot().await.expect("snapshot");

    assert_eq!(snapshot.run, RunState::Idle);
    assert_eq!(snapshot.candidate_pool_size, None);
    assert!(snapshot.workers.is_empty());
    assert!(
        !standin
            .requests()
            .contains(&"/v1/training/params".to_owned()),
        "no params request without a run: {:?}",
        standin.requests()
    );
}

#[tokio::test]
async fn snapshot_of_active_run() {
    let standin = CascorStandin::start(API_KEY)
        .await
        .expect("stand-in starts");
    standin.set_training("STARTED", Some(8));
    standin.set_workers(vec![
        StandinWorker::busy("worker-1", "ml", "pool-a", "task-1"),
        StandinWorker::idle("worker-2", "ml", "pool-b"),
        StandinWorker {
            worker_id: "worker-3".to_owned(),
            pod_name: None,
            pod_namespace: None,
            active_task_id: None,
        },
    ]);
    let client = client_for(&standin, Some(API_KEY));

    let snapshot = client.snapshot().await.expect("snapshot");

    assert_eq!(snapshot.run, RunState::Active);
    assert_eq!(snapshot.candidate_pool_size, Some(8));
    assert_eq!(snapshot.workers.len(), 3);
    assert!(snapshot.workers[0].busy);
    assert_eq!(
        snapshot.workers[0].pod,
        Some(WorkerPod {
            name: "pool-a".to_owned(),
            namespace: Some("ml".to_owned())
        })
    );
    assert!(!snapshot.workers[1].busy);
    assert_eq!(snapshot.workers[2].pod, None);
}

#[tokio::test]
async fn paused_run_without_network_has_no_pool_size() {
    let standin = CascorStandin::start(API_KEY)
        .await
        .expect("stand-in starts");
    standin.set_training("PAUSED", None);
    let client = client_for(&standin, Some(API_KEY));

    let snapshot = client
        .snapshot()
        .await
        .expect("a 404 on params is not an error");

    assert_eq!(snapshot.run, RunState::Paused);
    assert_eq!(snapshot.candidate_pool_size, None);
}

#[tokio::test]
async fn missing_key_is_an_error_status() {
    let standin = CascorStandin::start(API_KEY)
        .await
        .expect("stand-in starts");
    let client = client_for(&standin, None);

    let error = client.snapshot().await.expect_err("401 without a key");

    match &error {
        ClientError::Status { status, .. } => assert_eq!(status.as_u16(), 401),
        other => panic!("expected an error status, got {other:?}"),
    }
    assert!(
        !format!("{error} {error:?}").contains(API_KEY),
        "the key must not appear in errors"
    );
}

#[tokio::test]
async fn key_is_not_printed() {
    let standin = CascorStandin::start(API_KEY)
        .await
        .expect("stand-in starts");
    let client = client_for(&standin, Some(API_KEY));

    let printed = format!("{client:?}");

    assert!(!printed.contains(API_KEY), "{printed}");
}

#[tokio::test]
async fn server_error_and_refused_connection() {
    let mut standin = CascorStandin::start(API_KEY)
        .await
        .expect("stand-in starts");
    let client = client_for(&standin, Some(API_KEY));

    standin.force_status(Some(503));
    let forced = client.snapshot().await.expect_err("503");
    assert_eq!(forced.label(), "ErrorStatus");

    standin.force_status(None);
    standin.stop().await;
    let refused = client.snapshot().await.expect_err("listener closed");
    assert_eq!(refused.label(), "RequestFailed");

    standin.restart().await.expect("stand-in restarts");
    let snapshot = client
        .snapshot()
        .await
        .expect("answers again after restart");
    assert_eq!(snapshot.run, RunState::Idle);
}

#[tokio::test]
async fn base_path_is_kept() {
    let standin = CascorStandin::start(API_KEY)
        .await
        .expect("stand-in starts");
    let base_url = format!("{}/v1/nothing-here", standin.base_url())
        .parse()
        .expect("URL parses");
    let client =
        CascorRestClient::new(base_url, Some(API_KEY), None, TIMEOUT).expect("client builds");

    let error = client.snapshot().await.expect_err("unknown path");

    assert_eq!(error.label(), "ErrorStatus", "{error}");
    assert!(
        error
            .to_string()
            .contains("/v1/nothing-here/v1/training/status"),
        "the base path is kept: {error}"
    );
}
