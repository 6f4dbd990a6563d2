//! The health server in-process: status codes, headers and the stalled-progress check.

use std::sync::Arc;
use std::time::Duration;

use juniper_cascor_worker::agent::observer::{AgentObserver, ConnectionState};
use juniper_cascor_worker::config::Provenance;
use juniper_cascor_worker::health::{self, HealthState, ProbeSettings};
use juniper_cascor_worker::metrics::{BuildInfo, WorkerMetrics};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const WAIT_LIMIT: Duration = Duration::from_secs(60);

struct Server {
    base: String,
    health: Arc<HealthState>,
    shutdown: CancellationToken,
}

async fn start(stale_after: Duration) -> Server {
    let health = Arc::new(HealthState::new(ProbeSettings {
        client_id: Some("client-7".into()),
        stale_after,
        version: "9.9.9".into(),
        provenance: Provenance::default(),
    }));
    let metrics =
        Arc::new(WorkerMetrics::new(&BuildInfo::current("cpu")).expect("metrics register"));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let base = format!("http://{}", listener.local_addr().expect("local address"));
    let shutdown = CancellationToken::new();
    tokio::spawn(health::serve(
        listener,
        health::router(health.clone(), metrics),
        shutdown.clone(),
    ));

    Server {
        base,
        health,
        shutdown,
    }
}

async fn request(method: reqwest::Method, url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(method, url)
        .send()
        .await
        .expect("health server answers")
}

/// Polls `url` until its status equals `expected` and returns the body.
async fn wait_status(url: &str, expected: u16) -> String {
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        let response = request(reqwest::Method::GET, url).await;
        let status = response.status().as_u16();
        let body = response.text().await.expect("body");
        if status == expected {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} stayed at {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn unknown_path_and_method() {
    let server = start(Duration::from_secs(20)).await;

    let response = request(reqwest::Method::GET, &format!("{}/v1/health/", server.base)).await;
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(
        response.headers()["content-type"].to_str().expect("ASCII"),
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.text().await.expect("body"), "not found");

    for (method, path) in [
        (reqwest::Method::POST, "/v1/health"),
        (reqwest::Method::HEAD, "/v1/health/ready"),
        (reqwest::Method::DELETE, "/nowhere"),
    ] {
        let response = request(method.clone(), &format!("{}{path}", server.base)).await;
        assert_eq!(response.status().as_u16(), 405, "{method} {path}");
        if method != reqwest::Method::HEAD {
            assert_eq!(response.text().await.expect("body"), "method not allowed");
        }
    }

    let response = request(
        reqwest::Method::GET,
        &format!("{}/v1/health?verbose=1", server.base),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200, "query strings are ignored");
    assert_eq!(
        response.headers()["connection"].to_str().expect("ASCII"),
        "close"
    );
    assert_eq!(
        response.headers()["content-type"].to_str().expect("ASCII"),
        "application/json"
    );

    server.shutdown.cancel();
}

#[tokio::test]
async fn metrics_endpoint_serves_text_format() {
    let server = start(Duration::from_secs(20)).await;

    let response = request(reqwest::Method::GET, &format!("{}/metrics", server.base)).await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ASCII")
            .starts_with("text/plain; version=0.0.4"),
    );
    let page = response.text().await.expect("body");
    assert!(
        page.contains("# TYPE juniper_cascor_worker_tasks_total counter"),
        "{page}"
    );
    assert!(page.contains("juniper_cascor_worker_build_info{"), "{page}");

    server.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_fails_when_progress_stalls() {
    let server = start(Duration::from_secs(2)).await;
    let live = format!("{}/v1/health/live", server.base);

    server.health.registered("worker-0123456789ab");
    server.health.connection_state(ConnectionState::Ready);

    // Heartbeats keep arriving: alive.
    let beating = CancellationToken::new();
    let beat = {
        let health = server.health.clone();
        let beating = beating.clone();
        tokio::spawn(async move {
            while !beating.is_cancelled() {
                health.heartbeat_sent();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let body = wait_status(&live, 200).await;
    assert!(
        body.starts_with(r#"{"status": "alive", "tick": "juniper-cascor-worker", "duration_ms": "#),
        "{body}"
    );

    // Heartbeats stop: unresponsive once the last one is older than the window.
    beating.cancel();
    beat.await.expect("heartbeat task");
    let body = wait_status(&live, 503).await;
    assert!(
        body.starts_with(
            r#"{"status": "unresponsive", "tick": "juniper-cascor-worker", "error": "heartbeat counter stale (> 2.0s)", "duration_ms": "#
        ),
        "{body}"
    );

    // A finished task is progress too.
    server
        .health
        .task_finished(&juniper_cascor_worker::agent::observer::TaskReport {
            task_id: "t".into(),
            outcome: juniper_cascor_worker::agent::observer::TaskOutcome::Success,
            total_duration: Duration::from_millis(1),
            training_duration: None,
            epochs_completed: 1,
        });
    wait_status(&live, 200).await;

    // Readiness is not affected by stalled progress.
    let response = request(
        reqwest::Method::GET,
        &format!("{}/v1/health/ready", server.base),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);

    server.shutdown.cancel();
}
