//! Log output of the built binary: the key lines operators rely on, the JSON format, and
//! no secret (token or key) in any line, even at DEBUG.

#[path = "support/cli_standin.rs"]
mod standin;

use serde_json::Value;
use standin::{StandIn, Worker, golden_task};

const TOKEN: &str = "tok-3f9a1c77e2b54d08";
const AUTHKEY: &str = "key-8b21d6f0c4aa4e19";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_show_key_lines_and_no_secret() {
    let standin = StandIn::bind().await;
    let url = standin.url();
    let mut worker = Worker::start(
        &[
            "--server-url",
            &url,
            "--auth-token",
            TOKEN,
            "--authkey",
            AUTHKEY,
            "--log-level",
            "DEBUG",
        ],
        &[],
    );
    let mut session = standin.accept().await;
    assert_eq!(
        session.api_key.as_deref(),
        Some(TOKEN),
        "the token is sent as X-API-Key"
    );
    session.register().await;

    let task = golden_task("07_ELU_o1_e10.json", "logging-task-1");
    session.send_json(task.task_assign.clone()).await;
    for frame in &task.frames {
        session.send_binary(frame.clone()).await;
    }
    let result = session.recv_json().await;
    assert_eq!(result["task_id"], "logging-task-1", "{result}");
    for _ in 0..result["tensor_manifest"]
        .as_object()
        .expect("manifest")
        .len()
    {
        session.recv_binary().await;
    }
    worker
        .wait_for_line("Sent result for task logging-task-1")
        .await;
    session
        .send_json(serde_json::json!({"type": "result_ack", "task_id": "logging-task-1", "status": "accepted"}))
        .await;
    let ack = worker
        .wait_for_line("Result ack: task logging-task-1")
        .await;
    assert!(
        ack.contains("DEBUG"),
        "the result ack is logged at DEBUG: {ack}"
    );

    worker.signal(libc::SIGTERM);
    assert_eq!(
        worker.wait_exit().await.code(),
        Some(0),
        "{}",
        worker.stderr().join("\n")
    );
    let lines = worker.stderr();
    let text = lines.join("\n");

    for expected in [
        format!("Starting WebSocket worker — connecting to {url}"),
        format!(
            "worker health server listening on 127.0.0.1:{}",
            worker.health_port
        ),
        format!("Connected to {url}"),
        "Registered as worker".to_owned(),
        "Received task logging-task-1".to_owned(),
        "Shutdown requested (Ctrl+C again to force)".to_owned(),
        "worker health server stopped".to_owned(),
        "Worker shut down.".to_owned(),
    ] {
        assert!(
            text.contains(&expected),
            "no line with {expected:?}:\n{text}"
        );
    }
    let started = lines
        .iter()
        .find(|line| line.contains("Starting WebSocket worker"))
        .expect("start line");
    assert!(
        started.contains(" INFO "),
        "text lines carry the level: {started}"
    );
    assert!(
        started.contains("juniper_cascor_worker"),
        "text lines carry the target: {started}"
    );

    assert!(
        !text.contains(TOKEN),
        "the token appears in the log:\n{text}"
    );
    assert!(
        !text.contains(AUTHKEY),
        "the legacy key appears in the log:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_format_writes_one_object_per_line() {
    let standin = StandIn::bind().await;
    let url = standin.url();
    let mut worker = Worker::start(
        &["--server-url", &url, "--log-format", "json"],
        &[("JUNIPER_CASCOR_WORKER_AUTH_TOKEN", TOKEN)],
    );
    let mut session = standin.accept().await;
    assert_eq!(session.api_key.as_deref(), Some(TOKEN));
    session.register().await;
    worker.wait_for_line("Registered as worker").await;

    worker.signal(libc::SIGTERM);
    assert_eq!(
        worker.wait_exit().await.code(),
        Some(0),
        "{}",
        worker.stderr().join("\n")
    );
    let lines = worker.stderr();
    assert!(!lines.is_empty());

    for line in &lines {
        let event: Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
        assert!(event["timestamp"].is_string(), "{line}");
        assert!(event["level"].is_string(), "{line}");
        assert!(event["target"].is_string(), "{line}");
        assert!(
            !line.contains(TOKEN),
            "the token appears in the log: {line}"
        );
    }
    let start = lines
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON"))
        .find(|event| {
            event["message"]
                .as_str()
                .is_some_and(|message| message.starts_with("Starting WebSocket worker"))
        })
        .expect("start event");
    assert_eq!(start["level"], "INFO");
    assert_eq!(start["server_url"], url.as_str());
}
