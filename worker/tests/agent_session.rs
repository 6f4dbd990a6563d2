//! The agent against the stand-in server: handshake, headers, heartbeats, tasks in order,
//! keep-alive while training, reconnects and graceful shutdown.

#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use juniper_cascor_worker::agent::observer::{ConnectionState, TaskOutcome};
use juniper_cascor_worker::agent::settings::Secret;
use serde_json::json;
use server::{RunningAgent, StandIn, frame_shape, golden_task, settings, synthetic_task};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_sends_expected_headers_and_register() {
    let standin = StandIn::plain().await;
    let agent = RunningAgent::start(settings(&standin.url()));

    let mut connection = standin.accept().await;
    let register = connection.register("worker-aaaaaaaaaaaa").await;

    assert_eq!(connection.headers.get("x-api-key").unwrap(), "test-token");
    assert!(
        connection.headers.get("origin").is_none(),
        "{:?}",
        connection.headers
    );
    let worker_id = register["worker_id"].as_str().unwrap();
    assert!(
        cascor_protocol::validate_worker_id(worker_id).is_ok(),
        "{worker_id}"
    );
    let capabilities = &register["capabilities"];
    for key in [
        "cpu_cores",
        "gpu",
        "gpu_name",
        "python_version",
        "torch_version",
        "numpy_version",
        "os",
    ] {
        assert!(
            capabilities.get(key).is_some(),
            "missing capability {key}: {capabilities}"
        );
    }
    assert!(capabilities["cpu_cores"].is_u64(), "{capabilities}");
    assert_eq!(capabilities["gpu"], false);
    assert_eq!(capabilities["gpu_name"], serde_json::Value::Null);
    assert_eq!(capabilities["hostname"], "test-host");
    assert_eq!(capabilities["pod_name"], "worker-0");
    assert_eq!(capabilities["pod_namespace"], "training");
    assert_eq!(capabilities["implementation"], "rust");

    let heartbeat = connection.recv_json().await;
    assert_eq!(heartbeat["type"], "heartbeat", "{heartbeat}");
    assert_eq!(heartbeat["worker_id"], worker_id);

    agent.shutdown.cancel();
    assert_eq!(connection.expect_close().await, Some(1000));
    agent.join().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_or_absent_token_sends_no_api_key() {
    for token in [None, Some(Secret::new(""))] {
        let standin = StandIn::plain().await;
        let mut agent_settings = settings(&standin.url());
        agent_settings.auth_token = token;
        let agent = RunningAgent::start(agent_settings);

        let mut connection = standin.accept().await;
        connection.register("worker-bbbbbbbbbbbb").await;

        assert!(
            connection.headers.get("x-api-key").is_none(),
            "{:?}",
            connection.headers
        );
        assert!(
            connection.headers.get("origin").is_none(),
            "{:?}",
            connection.headers
        );
        agent.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_has_reference_fields() {
    let standin = StandIn::plain().await;
    let agent = RunningAgent::start(settings(&standin.url()));
    let mut connection = standin.accept().await;
    connection.register("worker-cccccccccccc").await;

    let (task, _) = golden_task("03_Sigmoid_o1_e30.json", "hb-task");
    connection.send_task(&task).await;
    let (result, _) = connection.recv_result().await;
    assert_eq!(result["success"], true, "{result}");
    // The counters are updated once the result is out, so a heartbeat sent in between
    // may still show the task in flight.
    let heartbeat = loop {
        let heartbeat = connection.recv_json().await;
        if heartbeat["tasks_completed"] == 1 && heartbeat["in_flight_tasks"] == 0 {
            break heartbeat;
        }
    };

    assert_eq!(heartbeat["type"], "heartbeat");
    let keys: Vec<&str> = heartbeat
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "type",
            "worker_id",
            "timestamp",
            "in_flight_tasks",
            "last_task_completed_at",
            "rss_mb",
            "tasks_completed",
            "tasks_failed",
            "last_task_duration_seconds",
            "recent_task_durations_seconds",
            "gpu_utilization_pct"
        ]
    );
    assert!(
        heartbeat["timestamp"].as_f64().unwrap() > 1.7e9,
        "{heartbeat}"
    );
    assert_eq!(heartbeat["in_flight_tasks"], 0);
    assert!(
        heartbeat["last_task_completed_at"].as_f64().is_some(),
        "{heartbeat}"
    );
    assert!(heartbeat["rss_mb"].as_f64().unwrap() > 0.0, "{heartbeat}");
    assert_eq!(heartbeat["tasks_completed"], 1);
    assert_eq!(heartbeat["tasks_failed"], 0);
    assert!(
        heartbeat["last_task_duration_seconds"].as_f64().is_some(),
        "{heartbeat}"
    );
    assert_eq!(
        heartbeat["recent_task_durations_seconds"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(heartbeat["gpu_utilization_pct"], serde_json::Value::Null);

    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_task_result_matches_reference() {
    let standin = StandIn::plain().await;
    let agent = RunningAgent::start(settings(&standin.url()));
    let mut connection = standin.accept().await;
    connection.register("worker-dddddddddddd").await;
    let (task, expected) = golden_task("03_Sigmoid_o1_e30.json", "golden-1");

    connection.send_task(&task).await;
    let (result, frames) = connection.recv_result().await;

    assert_eq!(result["task_id"], "golden-1");
    assert_eq!(result["candidate_id"], expected["candidate_id"]);
    assert_eq!(result["candidate_uuid"], expected["candidate_uuid"]);
    assert_eq!(result["success"], true);
    assert_eq!(result["epochs_completed"], expected["epochs_completed"]);
    let correlation = result["correlation"].as_f64().unwrap();
    let reference = expected["correlation"].as_f64().unwrap();
    assert!(
        (correlation - reference).abs() < 1e-4,
        "{correlation} vs {reference}"
    );
    let names: Vec<&str> = result["tensor_manifest"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, ["weights", "bias", "norm_output", "norm_error"]);
    assert_eq!(frame_shape(&frames[0]), vec![3]);
    assert_eq!(frame_shape(&frames[1]), vec![1]);
    assert_eq!(frame_shape(&frames[2]), vec![100]);
    assert_eq!(frame_shape(&frames[3]), vec![100]);

    connection
        .send_json(json!({"type": "result_ack", "task_id": "golden-1", "status": "accepted"}))
        .await;
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_task_is_queued_and_served_in_order() {
    let standin = StandIn::plain().await;
    let agent = RunningAgent::start(settings(&standin.url()));
    let mut connection = standin.accept().await;
    connection.register("worker-eeeeeeeeeeee").await;

    let first = synthetic_task("task-first", 20_000, 400);
    let second = synthetic_task("task-second", 50, 20);
    connection.send_task(&first).await;
    connection.send_task(&second).await;
    // A ping sent while the first task trains gets its pong from the reader task.
    connection
        .send_raw(Message::Ping(b"keep-alive".to_vec().into()))
        .await;

    let mut saw_pong = false;
    let mut results = Vec::new();
    while results.len() < 2 {
        match connection.next_raw().await.expect("connection open") {
            Message::Pong(payload) => {
                assert_eq!(payload.as_ref(), b"keep-alive");
                saw_pong = true;
            }
            Message::Text(text) => {
                let message: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                if message["type"] == "task_result" {
                    let count = message["tensor_manifest"].as_object().unwrap().len();
                    for _ in 0..count {
                        let frame = connection.next_raw().await.expect("frame");
                        assert!(
                            matches!(frame, Message::Binary(_)),
                            "{frame:?} inside a result group"
                        );
                    }
                    results.push(message);
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    assert!(saw_pong, "no pong before both results");
    assert_eq!(results[0]["task_id"], "task-first");
    assert_eq!(results[1]["task_id"], "task-second");
    assert_eq!(results[0]["success"], true, "{}", results[0]);
    assert_eq!(results[1]["success"], true, "{}", results[1]);
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_mid_task_reconnects_and_reregisters() {
    let standin = StandIn::plain().await;
    let agent = RunningAgent::start(settings(&standin.url()));
    let mut connection = standin.accept().await;
    let first = connection.register("worker-111111111111").await;
    let task = synthetic_task("dropped-task", 100, 20);

    // The task arrives without its last frame, then the server goes away.
    connection.send_json(task.assign.clone()).await;
    connection.send_binary(task.frames[0].clone()).await;
    connection.close().await;

    let mut connection = standin.accept().await;
    let second = connection.register("worker-222222222222").await;

    assert_eq!(
        first["worker_id"], second["worker_id"],
        "the client id is fixed per process"
    );
    let heartbeat = connection.recv_json().await;
    assert_eq!(heartbeat["tasks_failed"], 1, "{heartbeat}");
    let finished = agent
        .observer
        .snapshot(|recorded| recorded.finished.clone());
    assert_eq!(
        finished,
        vec![("dropped-task".to_owned(), TaskOutcome::Lost, 0)]
    );
    let registered = agent
        .observer
        .snapshot(|recorded| recorded.registered.clone());
    assert_eq!(registered, ["worker-111111111111", "worker-222222222222"]);
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_upgrade_is_retried() {
    let standin = StandIn::plain().await;
    let agent = RunningAgent::start(settings(&standin.url()));

    let headers = standin.reject_next(StatusCode::FORBIDDEN).await;
    assert!(headers.get("origin").is_none());
    let mut connection = standin.accept().await;
    connection.register("worker-333333333333").await;
    // The first heartbeat follows the processing of registration_ack.
    assert_eq!(connection.recv_json().await["type"], "heartbeat");

    let recorded = agent
        .observer
        .snapshot(|recorded| (recorded.reconnects, recorded.registered.len()));
    assert_eq!(recorded, (1, 1));
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_error_is_retried() {
    let standin = StandIn::plain().await;
    let agent = RunningAgent::start(settings(&standin.url()));

    let mut connection = standin.accept().await;
    connection
        .send_json(json!({"type": "connection_established", "data": {"channel": "workers"}}))
        .await;
    assert_eq!(connection.recv_json().await["type"], "register");
    connection
        .send_json(
            json!({"type": "error", "error": "Worker registry at capacity", "timestamp": 1.0}),
        )
        .await;
    let mut connection = standin.accept().await;
    connection.register("worker-444444444444").await;
    // The first heartbeat follows the processing of registration_ack.
    assert_eq!(connection.recv_json().await["type"], "heartbeat");

    assert_eq!(
        agent
            .observer
            .snapshot(|recorded| recorded.registered.len()),
        1
    );
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_server_is_abandoned() {
    let standin = StandIn::plain().await;
    // With 0.5 s heartbeats the agent gives a silent server the 5 s minimum.
    let agent = RunningAgent::start(settings(&standin.url()));

    // Accepts the upgrade and then sends nothing.
    let _silent = standin.accept().await;
    let mut connection = standin.accept().await;
    connection.register("worker-555555555555").await;

    assert_eq!(agent.observer.snapshot(|recorded| recorded.reconnects), 1);
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_task_delivers_then_closes() {
    let standin = StandIn::plain().await;
    let agent = RunningAgent::start(settings(&standin.url()));
    let mut connection = standin.accept().await;
    connection.register("worker-666666666666").await;
    let task = synthetic_task("last-task", 200, 50);

    // The task is in flight from its task_assign on; the token is cancelled before its
    // frames arrive.
    connection.send_json(task.assign.clone()).await;
    while agent
        .observer
        .snapshot(|recorded| recorded.started.is_empty())
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    agent.shutdown.cancel();
    for frame in &task.frames {
        connection.send_binary(frame.clone()).await;
    }

    let (result, frames) = connection.recv_result().await;
    assert_eq!(result["task_id"], "last-task");
    assert_eq!(result["success"], true, "{result}");
    assert_eq!(frames.len(), 4);
    // Work sent after the shutdown request is not taken.
    connection
        .send_task(&synthetic_task("late-task", 10, 5))
        .await;
    assert_eq!(connection.expect_close().await, Some(1000));
    agent.join().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_idle_closes_normally() {
    let standin = StandIn::plain().await;
    let agent = RunningAgent::start(settings(&standin.url()));
    let mut connection = standin.accept().await;
    connection.register("worker-777777777777").await;
    assert_eq!(connection.recv_json().await["type"], "heartbeat");

    let observer = agent.observer.clone();
    agent.shutdown.cancel();

    assert_eq!(connection.expect_close().await, Some(1000));
    agent.join().await.unwrap();
    let states = observer.snapshot(|recorded| recorded.states.clone());
    assert_eq!(states.first(), Some(&ConnectionState::Connecting));
    assert!(states.contains(&ConnectionState::Ready), "{states:?}");
    assert!(states.contains(&ConnectionState::Draining), "{states:?}");
    assert_eq!(states.last(), Some(&ConnectionState::Stopped));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_backoff_returns() {
    // Nothing listens on this port: every attempt fails and the agent sits in backoff.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut agent_settings = settings(&format!("ws://127.0.0.1:{port}/ws/v1/workers"));
    agent_settings.reconnect_backoff_base = Duration::from_secs(3600);
    agent_settings.reconnect_backoff_max = Duration::from_secs(3600);
    let agent = RunningAgent::start(agent_settings);

    while agent.observer.snapshot(|recorded| recorded.reconnects) == 0 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    agent.stop().await.unwrap();
}
