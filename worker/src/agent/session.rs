//! One registered connection: handshake, then four concerns joined by channels.
//!
//! * The session loop (this module's [`run_session`]) owns the read half. It always
//!   drains the socket, also while a task trains, collects each `task_assign` with its
//!   frames and queues the tasks in arrival order.
//! * The writer task owns the write half. It sends each `task_result` and its frames as
//!   one uninterrupted group, so no heartbeat can land between them.
//! * The heartbeat task sends heartbeats, every `idle_heartbeat_interval` while idle and
//!   every `heartbeat_interval` while a task is in flight.
//! * The executor task trains one task at a time on a blocking thread.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cascor_protocol::{
    AckStatus, ServerMessage, TaskAssign, decode_server_message, encode_register,
};
use cascor_trainer::Trainer;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::connect::Socket;
use super::observer::{AgentObserver, ConnectionState, Direction, TaskOutcome, TaskReport};
use super::settings::AgentSettings;
use super::stats::{TaskStats, peak_rss_mb};
use crate::task::{self, CompletedTask, PendingTask};

/// Shortest wait for a server reply before the connection counts as stalled.
pub const MIN_REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Wait for the writer to send the close frame, and for the server's close reply.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything a session needs that outlives it.
pub struct SessionContext {
    pub settings: Arc<AgentSettings>,
    pub trainer: Arc<Trainer>,
    pub observer: Arc<dyn AgentObserver>,
    pub shutdown: CancellationToken,
    /// The worker's own id, sent in `register` and heartbeats; fixed for the process.
    pub client_id: String,
    pub capabilities: Map<String, Value>,
    pub stats: Arc<Mutex<TaskStats>>,
}

/// End of a session.
#[derive(Debug)]
pub enum SessionEnd {
    /// Shutdown was requested; the task in flight was delivered and the socket closed.
    Shutdown,
    /// The connection ended or failed.
    Lost {
        /// Whether `registration_ack` arrived on this connection.
        registered: bool,
        reason: String,
    },
}

/// Returns how long the server may stay silent. It replies to every heartbeat, so
/// silence for three heartbeat intervals means the connection is stalled.
pub fn reply_timeout(settings: &AgentSettings) -> Duration {
    (settings.heartbeat_interval * 3).max(MIN_REPLY_TIMEOUT)
}

type Sink = SplitSink<Socket, Message>;
type Stream = SplitStream<Socket>;

/// Runs one connection from `connection_established` to its end.
pub async fn run_session(context: &SessionContext, socket: Socket) -> SessionEnd {
    let span = tracing::info_span!(
        "session",
        worker_id = %context.client_id,
        server_worker_id = tracing::field::Empty,
    );
    async move {
        let (mut sink, mut stream) = socket.split();
        let server_id = tokio::select! {
            handshake = handshake(context, &mut sink, &mut stream) => match handshake {
                Ok(server_id) => server_id,
                Err(reason) => return SessionEnd::Lost { registered: false, reason },
            },
            _ = context.shutdown.cancelled() => {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(normal_close())).await;
                return SessionEnd::Shutdown;
            }
        };

        tracing::Span::current().record("server_worker_id", server_id.as_str());
        tracing::info!(server_worker_id = %server_id, "Registered as worker {}", context.client_id);
        context.observer.registered(&server_id);

        Registered::start(context, sink).serve(stream).await
    }
    .instrument(span)
    .await
}

/// Reads `connection_established`, sends `register` and waits for `registration_ack`.
/// Returns the server-assigned worker id.
async fn handshake(
    context: &SessionContext,
    sink: &mut Sink,
    stream: &mut Stream,
) -> Result<String, String> {
    let timeout = reply_timeout(&context.settings);

    let first = next_text(context, stream, timeout).await?;
    match decode_server_message(&first) {
        Ok(ServerMessage::ConnectionEstablished { .. }) => {}
        Ok(other) => tracing::warn!(
            message_type = other.type_name(),
            "Unexpected first message: {first:.200}"
        ),
        Err(error) => return Err(format!("invalid first message from the server: {error}")),
    }

    let register = encode_register(&context.client_id, &context.capabilities);
    let bytes = register.len();
    sink.send(Message::text(register))
        .await
        .map_err(|error| format!("failed to send register: {error}"))?;
    context.observer.message(Direction::Outbound, bytes);

    let reply = next_text(context, stream, timeout).await?;
    match decode_server_message(&reply) {
        Ok(ServerMessage::RegistrationAck { worker_id, .. }) => Ok(worker_id),
        Ok(ServerMessage::Error { error, details }) => Err(format!(
            "Registration failed: {error}{}",
            details
                .map(|details| format!(" ({details})"))
                .unwrap_or_default()
        )),
        Ok(other) => Err(format!(
            "Registration failed: expected registration_ack, got {}",
            other.type_name()
        )),
        Err(error) => Err(format!("Registration failed: {error}")),
    }
}

/// Waits for the next text message of the handshake.
async fn next_text(
    context: &SessionContext,
    stream: &mut Stream,
    timeout: Duration,
) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let message = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| format!("no reply from the server within {}s", timeout.as_secs_f64()))?;
        match message {
            Some(Ok(Message::Text(text))) => {
                context.observer.message(Direction::Inbound, text.len());
                return Ok(text.as_str().to_owned());
            }
            Some(Ok(Message::Binary(bytes))) => {
                context.observer.message(Direction::Inbound, bytes.len());
                return Err("binary frame received during the handshake".to_owned());
            }
            Some(Ok(Message::Close(frame))) => return Err(describe_close(frame.as_ref())),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(format!("WebSocket error: {error}")),
            None => return Err("connection closed".to_owned()),
        }
    }
}

fn describe_close(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(frame) => format!(
            "server closed the connection (code {}: {})",
            u16::from(frame.code),
            frame.reason
        ),
        None => "server closed the connection".to_owned(),
    }
}

fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "worker shutting down".into(),
    }))
}

/// Item for the writer task.
enum Outgoing {
    Heartbeat(String),
    Result {
        task_id: String,
        text: String,
        frames: Vec<Vec<u8>>,
        sent: oneshot::Sender<Result<(), String>>,
    },
    Close,
}

/// Work state shared with the heartbeat task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Activity {
    in_flight: usize,
    draining: bool,
}

/// A finished task as the executor reports it back to the session loop.
struct TaskDone {
    completed: CompletedTask,
    received_at: Instant,
    delivered: Result<(), String>,
}

/// A `task_assign` whose frames are still arriving.
struct Collecting {
    assign: TaskAssign,
    frames: Vec<Bytes>,
    received_at: Instant,
    /// Drain the frames and drop the task: it arrived during shutdown.
    discard: bool,
}

/// The registered part of a session.
struct Registered<'a> {
    context: &'a SessionContext,
    outgoing: mpsc::Sender<Outgoing>,
    writer: JoinHandle<Result<(), String>>,
    heartbeat: JoinHandle<()>,
    executor: JoinHandle<()>,
    jobs: mpsc::UnboundedSender<PendingTask>,
    done: mpsc::UnboundedReceiver<TaskDone>,
    activity: watch::Sender<Activity>,
    collecting: Option<Collecting>,
    queue: VecDeque<PendingTask>,
    /// Task id and `task_assign` arrival of the task the executor is working on.
    running: Option<(String, Instant)>,
    draining: bool,
    state: ConnectionState,
}

impl<'a> Registered<'a> {
    fn start(context: &'a SessionContext, sink: Sink) -> Self {
        let (outgoing, outgoing_rx) = mpsc::channel(64);
        let (jobs, jobs_rx) = mpsc::unbounded_channel();
        let (done_tx, done) = mpsc::unbounded_channel();
        let (activity, activity_rx) = watch::channel(Activity::default());

        let writer =
            tokio::spawn(write_loop(sink, outgoing_rx, context.observer.clone()).in_current_span());
        let heartbeat = tokio::spawn(
            heartbeat_loop(
                context.settings.clone(),
                context.client_id.clone(),
                context.stats.clone(),
                activity_rx,
                outgoing.clone(),
            )
            .in_current_span(),
        );
        let executor = tokio::spawn(
            execute_loop(
                context.trainer.clone(),
                context.settings.task_timeout,
                jobs_rx,
                outgoing.clone(),
                done_tx,
            )
            .in_current_span(),
        );

        context.observer.connection_state(ConnectionState::Ready);
        Self {
            context,
            outgoing,
            writer,
            heartbeat,
            executor,
            jobs,
            done,
            activity,
            collecting: None,
            queue: VecDeque::new(),
            running: None,
            draining: false,
            state: ConnectionState::Ready,
        }
    }

    fn in_flight(&self) -> usize {
        usize::from(self.collecting.as_ref().is_some_and(|c| !c.discard))
            + self.queue.len()
            + usize::from(self.running.is_some())
    }

    /// Publishes the activity to the heartbeat task and the state to the observer.
    fn update_state(&mut self) {
        let activity = Activity {
            in_flight: self.in_flight(),
            draining: self.draining,
        };
        self.activity.send_if_modified(|current| {
            let changed = *current != activity;
            *current = activity;
            changed
        });

        let state = if self.draining {
            ConnectionState::Draining
        } else if activity.in_flight > 0 {
            ConnectionState::Busy
        } else {
            ConnectionState::Ready
        };
        if state != self.state {
            self.state = state;
            self.context.observer.connection_state(state);
        }
    }

    async fn serve(mut self, mut stream: Stream) -> SessionEnd {
        let timeout = reply_timeout(&self.context.settings);
        let shutdown = self.context.shutdown.clone();
        let mut last_inbound = tokio::time::Instant::now();

        let end = loop {
            self.update_state();
            if self.draining && self.in_flight() == 0 {
                break self.close(&mut stream).await;
            }

            // Biased: a message that already arrived is handled before a shutdown
            // request, so a task_assign sent just before the request is still served.
            tokio::select! {
                biased;
                Some(done) = self.done.recv() => {
                    if let Err(reason) = self.finish_task(done) {
                        break SessionEnd::Lost { registered: true, reason };
                    }
                }
                written = &mut self.writer => {
                    let reason = match written {
                        Ok(Ok(())) => "writer stopped".to_owned(),
                        Ok(Err(reason)) => reason,
                        Err(error) => format!("writer task failed: {error}"),
                    };
                    break SessionEnd::Lost { registered: true, reason };
                }
                message = tokio::time::timeout_at(last_inbound + timeout, stream.next()) => {
                    let message = match message {
                        Err(_elapsed) => break SessionEnd::Lost {
                            registered: true,
                            reason: format!("no message from the server for {}s", timeout.as_secs_f64()),
                        },
                        Ok(None) => break SessionEnd::Lost { registered: true, reason: "connection closed".to_owned() },
                        Ok(Some(Err(error))) => break SessionEnd::Lost {
                            registered: true,
                            reason: format!("WebSocket error: {error}"),
                        },
                        Ok(Some(Ok(message))) => message,
                    };
                    last_inbound = tokio::time::Instant::now();
                    if let Err(reason) = self.handle_message(message) {
                        break SessionEnd::Lost { registered: true, reason };
                    }
                }
                _ = shutdown.cancelled(), if !self.draining => self.begin_draining(),
            }
        };

        self.stop(&end);
        end
    }

    fn begin_draining(&mut self) {
        self.draining = true;
        for task in self.queue.drain(..) {
            tracing::warn!(
                task_id = %task.assign.task_id,
                "not starting queued task {}: shutting down; the server requeues it when the connection closes",
                task.assign.task_id
            );
            report_lost(self.context, &task.assign.task_id, task.received_at);
        }
        tracing::info!(
            in_flight = self.in_flight(),
            "shutdown requested: finishing the task in flight, then closing the connection"
        );
    }

    fn handle_message(&mut self, message: Message) -> Result<(), String> {
        match message {
            Message::Text(text) => {
                self.context
                    .observer
                    .message(Direction::Inbound, text.len());
                if let Some(collecting) = self.collecting.take() {
                    let expected = collecting.assign.frame_count;
                    tracing::warn!(
                        task_id = %collecting.assign.task_id,
                        expected,
                        received = collecting.frames.len(),
                        "text message where a tensor frame was due; the task gets a failure result"
                    );
                    self.enqueue(collecting);
                }
                self.handle_text(text.as_str());
                Ok(())
            }
            Message::Binary(bytes) => {
                self.context
                    .observer
                    .message(Direction::Inbound, bytes.len());
                self.handle_frame(bytes);
                Ok(())
            }
            Message::Close(frame) => Err(describe_close(frame.as_ref())),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(()),
        }
    }

    fn handle_text(&mut self, text: &str) {
        let message = match decode_server_message(text) {
            Ok(message) => message,
            Err(error) => {
                self.context.observer.message_rejected("invalid_json");
                tracing::error!(error = %error, "Invalid JSON message: {text:.200}");
                return;
            }
        };

        match message {
            ServerMessage::TaskAssign(assign) => self.accept_task(*assign),
            ServerMessage::Heartbeat => tracing::trace!("heartbeat reply"),
            ServerMessage::ResultAck { task_id, status } => {
                let task_id = task_id.unwrap_or_default();
                match status {
                    AckStatus::Accepted => {
                        tracing::debug!(task_id = %task_id, "Result ack: task {task_id} — accepted")
                    }
                    AckStatus::Rejected => {
                        tracing::warn!(task_id = %task_id, "Result ack: task {task_id} — rejected")
                    }
                    AckStatus::Other(status) => {
                        tracing::warn!(task_id = %task_id, "Result ack: task {task_id} — {status}")
                    }
                }
            }
            ServerMessage::Error { error, details } => {
                tracing::error!(
                    details = details.as_deref().unwrap_or(""),
                    "Server error: {error}"
                );
            }
            other => {
                self.context
                    .observer
                    .message_rejected("unrecognized_message");
                tracing::warn!(
                    message_type = other.type_name(),
                    worker_id = %self.context.client_id,
                    "juniper_cascor_worker_unrecognized_ws_frame"
                );
            }
        }
    }

    fn accept_task(&mut self, assign: TaskAssign) {
        let received_at = Instant::now();
        let discard = self.draining;
        if discard {
            self.context.observer.message_rejected("shutting_down");
            tracing::warn!(
                task_id = %assign.task_id,
                "not accepting task {}: shutting down; the server requeues it when the connection closes",
                assign.task_id
            );
        } else {
            self.context.observer.task_started(&assign.task_id);
            tracing::info!(task_id = %assign.task_id, "Received task {} ({} tensors)", assign.task_id, assign.frame_count);
        }

        let collecting = Collecting {
            assign,
            frames: Vec::new(),
            received_at,
            discard,
        };
        if collecting.assign.frame_count == 0 {
            self.enqueue(collecting);
        } else {
            self.collecting = Some(collecting);
        }
    }

    fn handle_frame(&mut self, bytes: Bytes) {
        let Some(collecting) = self.collecting.as_mut() else {
            self.context.observer.message_rejected("stray_frame");
            tracing::warn!(
                bytes = bytes.len(),
                "Unexpected binary frame outside task context"
            );
            return;
        };

        collecting.frames.push(bytes);
        if collecting.frames.len() == collecting.assign.frame_count
            && let Some(collecting) = self.collecting.take()
        {
            self.enqueue(collecting);
        }
    }

    /// Queues a task whose frames are complete (or cut short) and starts it when the
    /// executor is free.
    fn enqueue(&mut self, collecting: Collecting) {
        if collecting.discard {
            return;
        }
        self.queue.push_back(PendingTask {
            assign: collecting.assign,
            frames: collecting.frames,
            received_at: collecting.received_at,
        });
        self.dispatch();
    }

    fn dispatch(&mut self) {
        if self.running.is_some() {
            return;
        }
        let Some(task) = self.queue.pop_front() else {
            return;
        };
        self.running = Some((task.assign.task_id.clone(), task.received_at));
        if !self.queue.is_empty() {
            tracing::info!(
                queued = self.queue.len(),
                "tasks waiting behind task {}",
                task.assign.task_id
            );
        }
        // The executor lives as long as this session, so the send cannot fail while the
        // session loop runs.
        let _ = self.jobs.send(task);
    }

    /// Records a delivered task. Returns an error when its result could not be sent.
    fn finish_task(&mut self, done: TaskDone) -> Result<(), String> {
        self.running = None;
        let completed = &done.completed;
        let total_duration = done.received_at.elapsed();

        if let Err(reason) = done.delivered {
            report_lost(self.context, &completed.task_id, done.received_at);
            return Err(format!(
                "failed to send the result of task {}: {reason}",
                completed.task_id
            ));
        }

        if let Some(rejection) = &completed.rejection {
            self.context.observer.message_rejected(rejection.reason);
        }
        lock(&self.context.stats).record(completed.succeeded(), total_duration);
        self.context.observer.task_finished(&TaskReport {
            task_id: completed.task_id.clone(),
            outcome: completed.outcome,
            total_duration,
            training_duration: completed.training_duration,
            epochs_completed: completed.epochs_completed,
        });
        tracing::info!(
            task_id = %completed.task_id,
            outcome = ?completed.outcome,
            epochs = completed.epochs_completed,
            duration_s = total_duration.as_secs_f64(),
            "Sent result for task {} (corr={:.4}, success={})",
            completed.task_id,
            completed.correlation,
            if completed.succeeded() { "True" } else { "False" },
        );

        if !self.draining {
            self.dispatch();
        }
        Ok(())
    }

    /// Sends the close frame after the last result and waits for the server's reply.
    async fn close(&mut self, stream: &mut Stream) -> SessionEnd {
        let _ = self.outgoing.send(Outgoing::Close).await;
        match tokio::time::timeout(CLOSE_TIMEOUT, &mut self.writer).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(reason))) => {
                tracing::warn!(reason = %reason, "failed to send the close frame")
            }
            Ok(Err(error)) => tracing::warn!(error = %error, "writer task failed while closing"),
            Err(_) => tracing::warn!("timed out sending the close frame"),
        }

        let wait_for_reply = async {
            while let Some(Ok(message)) = stream.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        };
        if tokio::time::timeout(CLOSE_TIMEOUT, wait_for_reply)
            .await
            .is_err()
        {
            tracing::warn!("no close reply from the server");
        }
        tracing::info!("Connection closed");
        SessionEnd::Shutdown
    }

    /// Stops the session's tasks and accounts for tasks that will never get a result.
    fn stop(&mut self, end: &SessionEnd) {
        self.heartbeat.abort();
        self.writer.abort();
        self.executor.abort();

        if let SessionEnd::Lost { reason, .. } = end {
            let lost = self
                .collecting
                .take()
                .filter(|collecting| !collecting.discard)
                .map(|collecting| (collecting.assign.task_id, collecting.received_at))
                .into_iter()
                .chain(self.running.take())
                .chain(
                    self.queue
                        .drain(..)
                        .map(|task| (task.assign.task_id, task.received_at)),
                );
            for (task_id, received_at) in lost {
                tracing::warn!(
                    task_id = %task_id,
                    reason = %reason,
                    "task {task_id} abandoned: the connection dropped before its result was sent; \
                     the server requeues it, and a training still running is discarded when it ends"
                );
                report_lost(self.context, &task_id, received_at);
            }
        }
    }
}

fn report_lost(context: &SessionContext, task_id: &str, received_at: Instant) {
    let total_duration = received_at.elapsed();
    lock(&context.stats).record(false, total_duration);
    context.observer.task_finished(&TaskReport {
        task_id: task_id.to_owned(),
        outcome: TaskOutcome::Lost,
        total_duration,
        training_duration: None,
        epochs_completed: 0,
    });
}

fn lock(stats: &Mutex<TaskStats>) -> std::sync::MutexGuard<'_, TaskStats> {
    // The counters stay consistent even if a holder panicked, so a poisoned lock is usable.
    stats
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends what the other tasks queue, one item at a time; a result and its frames go out
/// back to back and are flushed together.
async fn write_loop(
    mut sink: Sink,
    mut outgoing: mpsc::Receiver<Outgoing>,
    observer: Arc<dyn AgentObserver>,
) -> Result<(), String> {
    while let Some(item) = outgoing.recv().await {
        match item {
            Outgoing::Heartbeat(text) => {
                let bytes = text.len();
                sink.send(Message::text(text))
                    .await
                    .map_err(|error| format!("failed to send a heartbeat: {error}"))?;
                observer.message(Direction::Outbound, bytes);
                observer.heartbeat_sent();
            }
            Outgoing::Result {
                task_id,
                text,
                frames,
                sent,
            } => {
                let sizes: Vec<usize> = std::iter::once(text.len())
                    .chain(frames.iter().map(Vec::len))
                    .collect();
                let outcome = send_group(&mut sink, text, frames).await;
                if outcome.is_ok() {
                    for bytes in sizes {
                        observer.message(Direction::Outbound, bytes);
                    }
                }
                let failure = outcome.as_ref().err().cloned();
                let _ = sent.send(outcome);
                if let Some(reason) = failure {
                    return Err(format!(
                        "failed to send the result of task {task_id}: {reason}"
                    ));
                }
            }
            Outgoing::Close => {
                sink.send(normal_close())
                    .await
                    .map_err(|error| format!("failed to send the close frame: {error}"))?;
                return Ok(());
            }
        }
    }
    Ok(())
}

async fn send_group(sink: &mut Sink, text: String, frames: Vec<Vec<u8>>) -> Result<(), String> {
    sink.feed(Message::text(text))
        .await
        .map_err(|error| error.to_string())?;
    for frame in frames {
        sink.feed(Message::binary(frame))
            .await
            .map_err(|error| error.to_string())?;
    }
    sink.flush().await.map_err(|error| error.to_string())
}

/// Sends heartbeats until the session ends, or until it drains with nothing in flight.
async fn heartbeat_loop(
    settings: Arc<AgentSettings>,
    client_id: String,
    stats: Arc<Mutex<TaskStats>>,
    mut activity: watch::Receiver<Activity>,
    outgoing: mpsc::Sender<Outgoing>,
) {
    let mut last_sent = tokio::time::Instant::now();
    loop {
        let current = *activity.borrow_and_update();
        if current.draining && current.in_flight == 0 {
            return;
        }
        let interval = if current.in_flight > 0 {
            settings.heartbeat_interval
        } else {
            settings.idle_heartbeat_interval
        };

        tokio::select! {
            _ = tokio::time::sleep_until(last_sent + interval) => {
                let in_flight = activity.borrow().in_flight;
                let in_flight = u32::try_from(in_flight).unwrap_or(u32::MAX);
                let heartbeat = lock(&stats).heartbeat(&client_id, in_flight, peak_rss_mb());
                if outgoing.send(Outgoing::Heartbeat(heartbeat.to_json())).await.is_err() {
                    return;
                }
                last_sent = tokio::time::Instant::now();
            }
            changed = activity.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Trains the tasks it is handed, one at a time, and queues each result for the writer.
async fn execute_loop(
    trainer: Arc<Trainer>,
    task_timeout: Duration,
    mut jobs: mpsc::UnboundedReceiver<PendingTask>,
    outgoing: mpsc::Sender<Outgoing>,
    done: mpsc::UnboundedSender<TaskDone>,
) {
    while let Some(task) = jobs.recv().await {
        let received_at = task.received_at;
        let mut completed = task::execute(trainer.clone(), task, task_timeout).await;

        let (sent, delivered) = oneshot::channel();
        let item = Outgoing::Result {
            task_id: completed.task_id.clone(),
            text: std::mem::take(&mut completed.encoded.text),
            frames: std::mem::take(&mut completed.encoded.frames),
            sent,
        };
        let delivered = match outgoing.send(item).await {
            Ok(()) => delivered
                .await
                .unwrap_or_else(|_| Err("the writer stopped".to_owned())),
            Err(_) => Err("the writer stopped".to_owned()),
        };

        if done
            .send(TaskDone {
                completed,
                received_at,
                delivered,
            })
            .is_err()
        {
            return;
        }
    }
}
