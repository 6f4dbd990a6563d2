//! SIGTERM and SIGINT on the built binary: the first signal lets the task in flight finish
//! and be delivered before an orderly exit with status 0; a second signal exits at once
//! with status 1.

#[path = "support/cli_standin.rs"]
mod standin;

use standin::{Received, StandIn, Worker, frame_shape, golden_task};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_task_delivers_result() {
    let standin = StandIn::bind().await;
    let url = standin.url();
    let mut worker = Worker::start(&["--server-url", &url], &[]);
    let mut session = standin.accept().await;
    session.register().await;

    // The task is in flight from its task_assign on; its frames follow the signal.
    let task_id = "shutdown-task-1";
    let task = golden_task("03_Sigmoid_o1_e30.json", task_id);
    session.send_json(task.task_assign.clone()).await;
    worker
        .wait_for_line(&format!("Received task {task_id}"))
        .await;
    worker.signal(libc::SIGTERM);
    worker
        .wait_for_line("Shutdown requested (Ctrl+C again to force)")
        .await;
    for frame in &task.frames {
        session.send_binary(frame.clone()).await;
    }

    let result = session.recv_json().await;
    assert_eq!(result["type"], "task_result", "{result}");
    assert_eq!(result["task_id"], "shutdown-task-1");
    assert_eq!(result["success"], true, "{result}");
    let manifest = result["tensor_manifest"]
        .as_object()
        .expect("result manifest")
        .clone();
    for (name, entry) in &manifest {
        let frame = session.recv_binary().await;
        let declared: Vec<usize> = entry["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|dim| dim.as_u64().expect("dimension") as usize)
            .collect();
        assert_eq!(frame_shape(&frame), declared, "frame {name}");
    }

    assert!(
        matches!(session.recv().await, Received::Closed),
        "worker closes after the result"
    );
    let status = worker.wait_exit().await;
    let stderr = worker.stderr().join("\n");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("Worker shut down."), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_signal_exits_at_once() {
    let standin = StandIn::bind().await;
    let url = standin.url();
    let mut worker = Worker::start(&["--server-url", &url], &[]);
    let mut session = standin.accept().await;
    session.register().await;

    // Keep a task in flight (its frames never come) so the first signal cannot finish.
    let task_id = "shutdown-task-2";
    let task = golden_task("03_Sigmoid_o1_e30.json", task_id);
    session.send_json(task.task_assign.clone()).await;
    worker
        .wait_for_line(&format!("Received task {task_id}"))
        .await;
    worker.signal(libc::SIGTERM);
    worker
        .wait_for_line("Shutdown requested (Ctrl+C again to force)")
        .await;
    worker.signal(libc::SIGINT);

    let status = worker.wait_exit().await;
    let stderr = worker.stderr().join("\n");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("Worker shut down."), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_while_idle_closes_and_exits_zero() {
    let standin = StandIn::bind().await;
    let url = standin.url();
    let mut worker = Worker::start(&["--server-url", &url], &[]);
    let mut session = standin.accept().await;
    session.register().await;
    worker.wait_for_line("Registered as worker").await;

    worker.signal(libc::SIGINT);

    assert!(matches!(session.recv().await, Received::Closed));
    let status = worker.wait_exit().await;
    let stderr = worker.stderr().join("\n");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("Shutdown requested (Ctrl+C again to force)"),
        "{stderr}"
    );
    assert!(stderr.contains("Worker shut down."), "{stderr}");
}
