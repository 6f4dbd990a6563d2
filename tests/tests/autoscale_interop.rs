//! The autoscaler's REST client against the real juniper-cascor 0.12.0 server on loopback:
//! the field names and states it reads are the ones the server sends.

use std::time::Duration;

use cascor_operator::autoscale::settings::derive_rest_url;
use cascor_operator::autoscale::{CascorRestClient, RunState};
use cascor_system_tests::peer::CascorPeer;
use serde_json::json;

const API_KEY: &str = "autoscale-interop-key";
const TIMEOUT: Duration = Duration::from_secs(30);
/// Guard against a run that never stops; every wait ends as soon as the state is reached.
const WAIT_LIMIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn client_reads_the_real_server() {
    let peer = CascorPeer::start(API_KEY, &[("CASCOR_NUM_PROCESSES", "1")]);
    let base_url = derive_rest_url(&peer.worker_url()).expect("the worker URL maps to REST");
    let client =
        CascorRestClient::new(base_url.clone(), Some(API_KEY), None, TIMEOUT).expect("builds");

    let idle = client.snapshot().await.expect("snapshot before a run");
    assert_eq!(idle.run, RunState::Idle, "no run before the start");
    assert!(idle.workers.is_empty(), "no worker is registered");

    let without_key = CascorRestClient::new(base_url, None, None, TIMEOUT).expect("builds");
    let rejected = without_key.snapshot().await.expect_err("401 without a key");
    assert_eq!(rejected.label(), "ErrorStatus", "{rejected}");

    // Default epochs keep the run going for tens of seconds on a small machine, far longer
    // than the three reads below.
    peer.post(
        "/v1/training/start",
        &json!({
            "dataset": {"generator": "spiral", "params": {"n_points_per_spiral": 100, "seed": 42}},
            "start_fresh": true,
            "params": {"candidate_pool_size": 7, "max_hidden_units": 3},
        }),
    );
    // The start returns before the server's training thread leaves STOPPED.
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    let running = loop {
        let snapshot = client.snapshot().await.expect("snapshot during the run");
        if snapshot.run == RunState::Active {
            break snapshot;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run did not start within {WAIT_LIMIT:?}; last state {:?}",
            snapshot.run
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(running.candidate_pool_size, Some(7));

    peer.post("/v1/training/stop", &json!({}));
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    let stopped = loop {
        let snapshot = client.snapshot().await.expect("snapshot after the stop");
        if !snapshot.run.in_progress() {
            break snapshot;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run did not stop within {WAIT_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(stopped.run, RunState::Idle);
    assert_eq!(
        stopped.candidate_pool_size, None,
        "the pool size is read only while a run is in progress"
    );
}
