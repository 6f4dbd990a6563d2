//! Readiness, liveness and `/v1/health` of the built binary as its connection to a
//! stand-in server opens, registers and drops.

#[path = "support/cli_standin.rs"]
mod standin;

use serde_json::Value;
use standin::{Session, StandIn, Worker, metric_value};

async fn get(worker: &Worker, path: &str) -> (u16, Option<String>, String) {
    let response = reqwest::get(worker.health_url(path))
        .await
        .expect("health server answers");
    let status = response.status().as_u16();
    let readiness = response
        .headers()
        .get("x-juniper-readiness")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.expect("response body");
    (status, readiness, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_follow_connection_lifecycle() {
    let standin = StandIn::bind().await;
    let url = standin.url();
    let mut worker = Worker::start(
        &["--server-url", &url, "--idle-heartbeat-interval", "0.2"],
        &[],
    );
    worker.wait_health_server().await;

    // Before connecting: the TCP connection is accepted but the handshake is not completed yet.
    let tcp = standin.accept_tcp().await;
    let (status, readiness, body) = get(&worker, "/v1/health/ready").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(readiness.as_deref(), Some("not_ready"));
    assert_eq!(
        body,
        r#"{"status": "not_ready", "service": "juniper-cascor-worker", "error": "websocket connection not bound"}"#
    );
    let (status, _, body) = get(&worker, "/v1/health").await;
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["worker_id"], Value::Null, "{body}");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    let (status, _, body) = get(&worker, "/v1/health/live").await;
    assert_eq!(status, 200, "a connecting worker is alive: {body}");

    // Socket open, registration not yet acknowledged.
    let mut session = Session::upgrade(tcp).await;
    let register = session.greet().await;
    let (_, body) = worker
        .wait_http("/v1/health/ready", |status, body| {
            status == 503 && body.contains("worker registration handshake not complete")
        })
        .await;
    assert!(body.starts_with(r#"{"status": "not_ready""#), "{body}");

    // Registered.
    session.acknowledge(&register).await;
    worker
        .wait_http("/v1/health/ready", |status, _| status == 200)
        .await;
    let (status, readiness, body) = get(&worker, "/v1/health/ready").await;
    assert_eq!(status, 200);
    assert_eq!(readiness.as_deref(), Some("ready"));
    assert_eq!(
        body,
        r#"{"status": "ready", "service": "juniper-cascor-worker"}"#
    );
    let (_, _, body) = get(&worker, "/v1/health").await;
    let health: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(
        health["worker_id"], register["worker_id"],
        "the worker's own client id, not the server-assigned one: {body}"
    );
    let (status, _, body) = get(&worker, "/v1/health/live").await;
    assert_eq!(status, 200, "{body}");
    let live: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(live["status"], "alive");
    assert_eq!(live["tick"], "juniper-cascor-worker");
    assert!(live["duration_ms"].is_u64(), "{body}");

    session.wait_heartbeats(2).await;
    let (_, page) = worker
        .wait_http("/metrics", |_, page| {
            metric_value(page, "juniper_cascor_worker_heartbeats_sent_total").unwrap_or(0.0) >= 2.0
        })
        .await;
    assert_eq!(
        metric_value(
            &page,
            "juniper_cascor_worker_connection_state{state=\"ready\"}"
        ),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        metric_value(&page, "juniper_cascor_worker_registrations_total"),
        Some(1.0)
    );

    // Disconnected: the server goes away and refuses reconnects.
    drop(standin);
    session.close().await;
    let (_, body) = worker
        .wait_http("/v1/health/ready", |status, _| status == 503)
        .await;
    assert!(body.contains("websocket connection not bound"), "{body}");
    let (_, page) = worker
        .wait_http("/metrics", |_, page| {
            metric_value(page, "juniper_cascor_worker_reconnects_total").unwrap_or(0.0) >= 1.0
        })
        .await;
    assert_eq!(
        metric_value(
            &page,
            "juniper_cascor_worker_connection_state{state=\"ready\"}"
        ),
        Some(0.0),
        "{page}"
    );
    let (_, _, body) = get(&worker, "/v1/health").await;
    let health: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(health["worker_id"], Value::Null, "{body}");

    worker.signal(libc::SIGTERM);
    let status = worker.wait_exit().await;
    assert_eq!(status.code(), Some(0), "{}", worker.stderr().join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provenance_reported_on_health() {
    let standin = StandIn::bind().await;
    let url = standin.url();
    let mut worker = Worker::start(
        &["--server-url", &url],
        &[
            ("JUNIPER_CASCOR_WORKER_GIT_SHA", "0123abc"),
            ("JUNIPER_CASCOR_WORKER_BUILD_DATE", "2026-01-02T03:04:05Z"),
        ],
    );
    worker.wait_health_server().await;

    let (status, _, body) = get(&worker, "/v1/health").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        format!(
            r#"{{"status": "ok", "worker_id": null, "version": "{}", "git_sha": "0123abc", "build_date": "2026-01-02T03:04:05Z"}}"#,
            env!("CARGO_PKG_VERSION")
        )
    );

    worker.signal(libc::SIGTERM);
    assert_eq!(worker.wait_exit().await.code(), Some(0));
}
