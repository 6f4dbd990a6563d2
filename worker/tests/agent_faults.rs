//! Bad input from the server: each broken task gets a failure result, the agent stays
//! connected and in step with the frame sequence, and later tasks still train.

#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use juniper_cascor_worker::agent::observer::TaskOutcome;
use serde_json::json;
use server::{Connection, RunningAgent, StandIn, settings, synthetic_task};

/// Sends a valid task and checks that it trains: the agent is still in step.
async fn assert_still_in_step(connection: &mut Connection, task_id: &str) {
    connection.send_task(&synthetic_task(task_id, 40, 10)).await;
    let (result, frames) = connection.recv_result().await;
    assert_eq!(result["task_id"], task_id);
    assert_eq!(result["success"], true, "{result}");
    assert_eq!(frames.len(), 4);
}

async fn registered_agent(server_id: &str) -> (StandIn, RunningAgent, Connection) {
    let standin = StandIn::plain().await;
    let agent = RunningAgent::start(settings(&standin.url()));
    let mut connection = standin.accept().await;
    connection.register(server_id).await;
    (standin, agent, connection)
}

fn assert_failure_shape(result: &serde_json::Value, task_id: &str) {
    assert_eq!(result["type"], "task_result");
    assert_eq!(result["task_id"], task_id);
    assert_eq!(result["candidate_id"], 3);
    assert_eq!(result["success"], false);
    assert_eq!(result["correlation"], 0.0);
    assert_eq!(result["epochs_completed"], 0);
    assert_eq!(result["best_corr_idx"], -1);
    assert_eq!(result["tensor_manifest"], json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frame_gets_failure_result() {
    let (_standin, agent, mut connection) = registered_agent("worker-f00000000001").await;
    let mut task = synthetic_task("bad-frame", 40, 10);
    task.frames[1].pop();

    connection.send_task(&task).await;
    let (result, frames) = connection.recv_result().await;

    assert_failure_shape(&result, "bad-frame");
    assert!(frames.is_empty());
    let message = result["error_message"].as_str().unwrap();
    assert!(message.contains("\"y\""), "{message}");
    assert!(message.contains("payload"), "{message}");
    assert_still_in_step(&mut connection, "after-bad-frame").await;
    let recorded = agent
        .observer
        .snapshot(|recorded| (recorded.rejections.clone(), recorded.finished.clone()));
    assert!(recorded.0.contains(&"bad_frame"), "{:?}", recorded.0);
    assert_eq!(recorded.1[0].1, TaskOutcome::Failure);
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_endian_frame_is_rejected() {
    let (_standin, agent, mut connection) = registered_agent("worker-f00000000002").await;
    let mut task = synthetic_task("big-endian", 40, 10);
    // residual_error with the dtype string ">f4": same shape and payload length.
    let original = &task.frames[2];
    let payload = &original[16 + "float32".len()..];
    let mut frame = original[..12].to_vec();
    frame.extend_from_slice(&3u32.to_le_bytes());
    frame.extend_from_slice(b">f4");
    frame.extend_from_slice(payload);
    task.frames[2] = frame;

    connection.send_task(&task).await;
    let (result, _) = connection.recv_result().await;

    assert_failure_shape(&result, "big-endian");
    let message = result["error_message"].as_str().unwrap();
    assert!(message.contains("residual_error"), "{message}");
    assert!(message.contains("big-endian"), "{message}");
    assert_still_in_step(&mut connection, "after-big-endian").await;
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_frames_get_failure_result() {
    let (_standin, agent, mut connection) = registered_agent("worker-f00000000003").await;
    let task = synthetic_task("short-task", 40, 10);

    // One frame of three, then a text message where the second frame was due.
    connection.send_json(task.assign.clone()).await;
    connection.send_binary(task.frames[0].clone()).await;
    connection
        .send_json(
            json!({"type": "heartbeat", "worker_id": "worker-f00000000003", "timestamp": 1.0}),
        )
        .await;
    let (result, _) = connection.recv_result().await;

    assert_failure_shape(&result, "short-task");
    let message = result["error_message"].as_str().unwrap();
    assert!(
        message.contains("expected 3 tensor frames, received 1"),
        "{message}"
    );
    assert_still_in_step(&mut connection, "after-short-task").await;
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_manifest_drains_declared_frames() {
    let (_standin, agent, mut connection) = registered_agent("worker-f00000000004").await;
    let mut task = synthetic_task("no-residual", 40, 10);
    task.assign["tensor_manifest"]
        .as_object_mut()
        .unwrap()
        .remove("residual_error");
    task.frames.pop();

    connection.send_task(&task).await;
    let (result, _) = connection.recv_result().await;

    assert_failure_shape(&result, "no-residual");
    assert_eq!(
        result["error_message"],
        "Tensor manifest invalid: manifest missing required tensor(s): ['residual_error']"
    );
    assert_eq!(result["activation_name"], "Tanh");
    assert_eq!(result["candidate_uuid"], "uuid-no-residual");
    assert_still_in_step(&mut connection, "after-no-residual").await;
    let rejections = agent
        .observer
        .snapshot(|recorded| recorded.rejections.clone());
    assert_eq!(rejections, ["invalid_manifest"]);
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_object_candidate_data_fails_task() {
    let (_standin, agent, mut connection) = registered_agent("worker-f00000000005").await;
    let mut task = synthetic_task("bad-data", 40, 10);
    task.assign["candidate_data"] = json!("not an object");

    connection.send_task(&task).await;
    let (result, _) = connection.recv_result().await;

    assert_eq!(result["task_id"], "bad-data");
    assert_eq!(result["success"], false);
    let message = result["error_message"].as_str().unwrap();
    assert!(message.contains("candidate_data"), "{message}");
    assert_still_in_step(&mut connection, "after-bad-data").await;
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_are_ignored() {
    let (_standin, agent, mut connection) = registered_agent("worker-f00000000006").await;

    connection.send_text("{not json").await;
    connection.send_text("[1, 2]").await;
    connection.send_json(json!({"type": "token_refresh"})).await;
    connection.send_binary(vec![1, 2, 3]).await;

    assert_still_in_step(&mut connection, "after-garbage").await;
    let rejections = agent
        .observer
        .snapshot(|recorded| recorded.rejections.clone());
    assert_eq!(
        rejections,
        [
            "invalid_json",
            "invalid_json",
            "unrecognized_message",
            "stray_frame"
        ]
    );
    assert_eq!(
        agent
            .observer
            .snapshot(|recorded| recorded.registered.len()),
        1
    );
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_timeout_sends_failure_result() {
    let standin = StandIn::plain().await;
    let mut agent_settings = settings(&standin.url());
    agent_settings.task_timeout = Duration::from_millis(1);
    let agent = RunningAgent::start(agent_settings);
    let mut connection = standin.accept().await;
    connection.register("worker-f00000000007").await;

    connection
        .send_task(&synthetic_task("slow-task", 5_000, 200))
        .await;
    let (result, frames) = connection.recv_result().await;

    assert_failure_shape(&result, "slow-task");
    assert!(frames.is_empty());
    assert_eq!(result["error_message"], "Task timed out after 0.001s");
    // The task is counted once the writer has sent its result.
    while agent
        .observer
        .snapshot(|recorded| recorded.finished.is_empty())
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let finished = agent
        .observer
        .snapshot(|recorded| recorded.finished.clone());
    assert_eq!(
        finished,
        vec![("slow-task".to_owned(), TaskOutcome::Timeout, 0)]
    );
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_drops_connection_and_reconnects() {
    let (standin, agent, mut connection) = registered_agent("worker-f00000000008").await;
    let task = synthetic_task("huge-task", 40, 10);

    connection.send_json(task.assign.clone()).await;
    let oversized = vec![0u8; cascor_protocol::MAX_INBOUND_MESSAGE_BYTES + 1];
    // The agent closes the connection while this is still being written.
    let _ = connection.try_send_binary(oversized).await;

    let mut connection = standin.accept().await;
    connection.register("worker-f00000000009").await;
    let finished = agent
        .observer
        .snapshot(|recorded| recorded.finished.clone());
    assert_eq!(
        finished,
        vec![("huge-task".to_owned(), TaskOutcome::Lost, 0)]
    );
    assert_still_in_step(&mut connection, "after-huge-task").await;
    agent.stop().await.unwrap();
}
