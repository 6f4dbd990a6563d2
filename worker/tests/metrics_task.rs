//! Counters and histograms of the built binary move after it trains a task for a
//! stand-in server.

#[path = "support/cli_standin.rs"]
mod standin;

use standin::{StandIn, Worker, golden_task, metric_value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_moves_counters_and_histograms() {
    let standin = StandIn::bind().await;
    let url = standin.url();
    let mut worker = Worker::start(&["--server-url", &url], &[]);
    let mut session = standin.accept().await;
    session.register().await;

    let task = golden_task("01_Tanh_o1_e20.json", "metrics-task-1");
    session.send_json(task.task_assign.clone()).await;
    let mut sent_bytes = task.task_assign.to_string().len();
    for frame in &task.frames {
        sent_bytes += frame.len();
        session.send_binary(frame.clone()).await;
    }

    let result = session.recv_json().await;
    assert_eq!(result["type"], "task_result", "{result}");
    assert_eq!(result["task_id"], "metrics-task-1");
    assert_eq!(result["success"], true, "{result}");
    let manifest = result["tensor_manifest"]
        .as_object()
        .expect("result manifest")
        .clone();
    let mut received_bytes = 0;
    for _ in 0..manifest.len() {
        received_bytes += session.recv_binary().await.len();
    }
    let epochs = result["epochs_completed"].as_u64().expect("integer epochs");
    assert_eq!(Some(epochs), task.result["epochs_completed"].as_u64());

    let (_, page) = worker
        .wait_http("/metrics", |_, page| {
            metric_value(
                page,
                "juniper_cascor_worker_tasks_total{outcome=\"success\"}",
            ) == Some(1.0)
        })
        .await;
    let value = |series: &str| {
        metric_value(&page, series).unwrap_or_else(|| panic!("{series} missing:\n{page}"))
    };

    assert_eq!(
        value("juniper_cascor_worker_tasks_total{outcome=\"failure\"}"),
        0.0
    );
    assert_eq!(value("juniper_cascor_worker_tasks_in_flight"), 0.0);
    assert_eq!(
        value("juniper_cascor_worker_epochs_trained_total"),
        epochs as f64
    );
    assert_eq!(
        value("juniper_cascor_worker_task_duration_seconds_count{outcome=\"success\"}"),
        1.0
    );
    assert!(value("juniper_cascor_worker_task_duration_seconds_sum{outcome=\"success\"}") > 0.0);
    assert_eq!(
        value("juniper_cascor_worker_training_duration_seconds_count"),
        1.0
    );
    // connection_established, registration_ack, task_assign and its frames at least.
    assert!(
        value("juniper_cascor_worker_messages_total{direction=\"inbound\"}")
            >= 3.0 + task.frames.len() as f64
    );
    assert!(
        value("juniper_cascor_worker_message_bytes_total{direction=\"inbound\"}")
            >= sent_bytes as f64
    );
    // register, task_result and its frames at least.
    assert!(
        value("juniper_cascor_worker_messages_total{direction=\"outbound\"}")
            >= 2.0 + manifest.len() as f64
    );
    assert!(
        value("juniper_cascor_worker_message_bytes_total{direction=\"outbound\"}")
            >= received_bytes as f64
    );
    assert!(value("juniper_cascor_worker_resident_memory_bytes") > 0.0);

    worker.signal(libc::SIGTERM);
    assert_eq!(
        worker.wait_exit().await.code(),
        Some(0),
        "{}",
        worker.stderr().join("\n")
    );
}
