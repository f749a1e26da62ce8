//! The background task: owns the socket, the timers and the core
//! `Sequencer`, and translates between them. It makes no sequencing
//! decision of its own.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use seqsync_core::protocol::{ClientFrame, ServerFrame, parse_server_frame};
use seqsync_core::{Millis, Seq, Sequencer, StreamId, StreamStats, SubscribeOptions};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::backoff::Backoff;
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::event::{ClientStats, ConnectionState, SubscriptionEvent};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

/// What the handles ask of the task.
pub(crate) enum Command {
    Subscribe {
        stream: String,
        options: SubscribeOptions,
        reply: Reply<(StreamId, mpsc::Receiver<SubscriptionEvent>)>,
    },
    Unsubscribe {
        id: StreamId,
    },
    Publish {
        stream: String,
        data: Value,
        reply: Reply<Seq>,
    },
    StreamStats {
        stream: String,
        reply: oneshot::Sender<Option<StreamStats>>,
    },
    ClientStats {
        reply: oneshot::Sender<ClientStats>,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

struct PendingPublish {
    order: u64,
    frame: String,
    deadline: Instant,
    reply: Reply<Seq>,
}

/// Why a connection ended.
enum SessionEnd {
    Lost(String),
    Closed,
}

pub(crate) struct Driver {
    config: ClientConfig,
    core: Sequencer<Value>,
    origin: Instant,
    commands: mpsc::UnboundedReceiver<Command>,
    subscriptions: HashMap<u64, mpsc::Sender<SubscriptionEvent>>,
    pending: HashMap<String, PendingPublish>,
    publish_counter: u64,
    client_id: String,
    outbox: Vec<String>,
    state: watch::Sender<ConnectionState>,
    stats: ClientStats,
    backoff: Backoff,
    endpoint_index: usize,
    closing: Option<oneshot::Sender<()>>,
}

impl Driver {
    pub(crate) fn new(
        config: ClientConfig,
        commands: mpsc::UnboundedReceiver<Command>,
        state: watch::Sender<ConnectionState>,
    ) -> Driver {
        let backoff = Backoff::new(config.reconnect_initial_ms, config.reconnect_max_ms);
        let client_id = format!("{:016x}", crate::backoff::random_seed());
        Driver {
            core: Sequencer::new(config.core.clone()),
            config,
            origin: Instant::now(),
            commands,
            subscriptions: HashMap::new(),
            pending: HashMap::new(),
            publish_counter: 0,
            client_id,
            outbox: Vec::new(),
            state,
            stats: ClientStats::default(),
            backoff,
            endpoint_index: 0,
            closing: None,
        }
    }

    /// The random id this client's publish ids start with.
    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    fn now(&self) -> Millis {
        Millis(u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn instant(&self, at: Millis) -> Instant {
        self.origin + Duration::from_millis(at.0)
    }

    fn url(&self, endpoint: &str) -> String {
        match &self.config.token {
            None => endpoint.to_string(),
            Some(token) => {
                let sep = if endpoint.contains('?') { '&' } else { '?' };
                format!("{endpoint}{sep}token={token}")
            }
        }
    }

    /// Runs until the client is closed. `first` learns whether the first
    /// connection succeeded within `initial_connect_timeout_ms`.
    pub(crate) async fn run(mut self, mut first: Option<oneshot::Sender<Result<(), ClientError>>>) {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            let endpoint = self.config.endpoints[self.endpoint_index].clone();
            self.endpoint_index = (self.endpoint_index + 1) % self.config.endpoints.len();
            self.state.send_replace(ConnectionState::Connecting {
                endpoint: endpoint.clone(),
                attempt,
            });
            // The socket refuses frames above the limit before buffering them.
            let limits = WebSocketConfig::default()
                .max_message_size(Some(self.config.max_frame_bytes))
                .max_frame_size(Some(self.config.max_frame_bytes));
            let connect = tokio_tungstenite::connect_async_with_config(
                self.url(&endpoint),
                Some(limits),
                true,
            );
            let failure = match timeout(
                Duration::from_millis(self.config.connect_timeout_ms),
                connect,
            )
            .await
            {
                Ok(Ok((socket, _))) => {
                    attempt = 0;
                    self.backoff.reset();
                    if let Some(first) = first.take() {
                        let _ = first.send(Ok(()));
                    }
                    info!(%endpoint, "connected");
                    self.stats.connects += 1;
                    self.state.send_replace(ConnectionState::Connected {
                        endpoint: endpoint.clone(),
                    });
                    let span = info_span!("session", %endpoint);
                    match self.session(socket).instrument(span).await {
                        SessionEnd::Closed => break,
                        SessionEnd::Lost(reason) => {
                            self.stats.disconnects += 1;
                            warn!(%endpoint, %reason, "connection lost");
                            reason
                        }
                    }
                }
                Ok(Err(error)) => error.to_string(),
                Err(_) => "connect timed out".to_string(),
            };
            if let Some(reply) = first.take() {
                if started.elapsed()
                    >= Duration::from_millis(self.config.initial_connect_timeout_ms)
                {
                    let _ = reply.send(Err(ClientError::ConnectFailed {
                        endpoint,
                        reason: failure,
                    }));
                    self.finish();
                    return;
                }
                first = Some(reply);
            }
            self.state
                .send_replace(ConnectionState::Disconnected { reason: failure });
            attempt = attempt.saturating_add(1);
            let delay = self.backoff.next_delay();
            if self.idle(Instant::now() + delay).await {
                break;
            }
        }
        self.finish();
    }

    /// Serves commands while disconnected until `until`; true when closing.
    async fn idle(&mut self, until: Instant) -> bool {
        loop {
            if self.closing.is_some() {
                return true;
            }
            let publish_deadline = self.publish_deadline().unwrap_or_else(far_future);
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return true,
                },
                () = sleep_until(until.into()) => return false,
                () = sleep_until(publish_deadline.into()) => self.expire_publishes(),
            }
            self.outbox.clear();
            self.dispatch_events().await;
        }
    }

    async fn session(&mut self, socket: Socket) -> SessionEnd {
        let (mut sink, mut stream) = socket.split();
        self.core.handle_connected(self.now());
        let mut resend: Vec<&PendingPublish> = self.pending.values().collect();
        resend.sort_by_key(|p| p.order);
        self.outbox = resend.into_iter().map(|p| p.frame.clone()).collect();
        let heartbeat = Duration::from_millis(self.config.heartbeat_timeout_ms);
        let mut last_received = Instant::now();
        // Timers live across iterations and are re-armed only when their
        // deadline moves: creating timers per frame would cost more than
        // handling the frame.
        let never = far_future();
        let core_timer = sleep_until(never.into());
        let heartbeat_timer = sleep_until((last_received + heartbeat).into());
        let publish_timer = sleep_until(never.into());
        tokio::pin!(core_timer, heartbeat_timer, publish_timer);
        let end = 'session: loop {
            if let Err(reason) = self.flush(&mut sink, heartbeat).await {
                break SessionEnd::Lost(reason);
            }
            self.dispatch_events().await;
            if self.closing.is_some() && self.pending.is_empty() {
                let _ = sink.send(Message::Close(None)).await;
                break SessionEnd::Closed;
            }
            let core_deadline: tokio::time::Instant = self
                .core
                .poll_timeout()
                .map_or(never, |at| self.instant(at))
                .into();
            if core_timer.deadline() != core_deadline {
                core_timer.as_mut().reset(core_deadline);
            }
            let publish_deadline: tokio::time::Instant =
                self.publish_deadline().unwrap_or(never).into();
            if publish_timer.deadline() != publish_deadline {
                publish_timer.as_mut().reset(publish_deadline);
            }
            tokio::select! {
                biased;
                frame = stream.next() => {
                    let mut frame = frame;
                    // Take the frames that are already here (up to a batch)
                    // before going back to the timers and commands.
                    let mut taken = 0;
                    loop {
                        match frame {
                            Some(Ok(Message::Text(text))) => self.on_text(text.as_str()),
                            Some(Ok(Message::Close(_))) | None => {
                                break 'session SessionEnd::Lost("closed by server".to_string());
                            }
                            Some(Ok(_)) => {}
                            Some(Err(error)) => break 'session SessionEnd::Lost(error.to_string()),
                        }
                        taken += 1;
                        if taken == FRAME_BATCH {
                            break;
                        }
                        match stream.next().now_or_never() {
                            Some(next) => frame = next,
                            None => break,
                        }
                    }
                    last_received = Instant::now();
                    // Keep commands flowing under a flood of frames.
                    for _ in 0..16 {
                        match self.commands.try_recv() {
                            Ok(command) => self.on_command(command),
                            Err(_) => break,
                        }
                    }
                }
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => {
                        let _ = sink.send(Message::Close(None)).await;
                        break SessionEnd::Closed;
                    }
                },
                () = &mut core_timer => self.core.handle_timeout(self.now()),
                () = &mut heartbeat_timer => {
                    // Re-armed lazily: only when it fires is the time of the
                    // last frame looked at.
                    let due = last_received + heartbeat;
                    if due <= Instant::now() {
                        break SessionEnd::Lost("no frame within the heartbeat timeout".to_string());
                    }
                    heartbeat_timer.as_mut().reset(due.into());
                }
                () = &mut publish_timer => self.expire_publishes(),
            }
        };
        self.core.handle_disconnected(self.now());
        self.outbox.clear();
        // Drain what the disconnect produced; the requests are void.
        while self.core.poll_request().is_some() {}
        self.dispatch_events().await;
        end
    }

    /// Sends queued frames and the core's requests.
    async fn flush<S>(&mut self, sink: &mut S, limit: Duration) -> Result<(), String>
    where
        S: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
    {
        let mut frames = std::mem::take(&mut self.outbox);
        while let Some(request) = self.core.poll_request() {
            match ClientFrame::<Value>::from(request).to_json() {
                Ok(text) => frames.push(text),
                Err(error) => warn!(%error, "request could not be encoded"),
            }
        }
        if frames.is_empty() {
            return Ok(());
        }
        let send = async {
            for text in frames {
                sink.feed(Message::text(text)).await?;
            }
            sink.flush().await
        };
        match timeout(limit, send).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("send blocked longer than the heartbeat timeout".to_string()),
        }
    }

    /// Hands the core's events to their subscriptions. Waits when a
    /// subscription's buffer is full: the socket is not read meanwhile, so
    /// memory stays bounded.
    async fn dispatch_events(&mut self) {
        while let Some(event) = self.core.poll_event() {
            let key = event.stream().to_raw();
            let Some(sender) = self.subscriptions.get(&key) else {
                continue;
            };
            // The common case, room in the buffer, takes no await point.
            let undelivered = match sender.try_send(event.into()) {
                Ok(()) => continue,
                Err(mpsc::error::TrySendError::Full(event)) => sender.send(event).await.is_err(),
                Err(mpsc::error::TrySendError::Closed(_)) => true,
            };
            if undelivered {
                // The subscription was dropped; its unsubscribe is on its way.
                self.subscriptions.remove(&key);
            }
        }
    }

    fn on_text(&mut self, text: &str) {
        self.stats.frames += 1;
        self.stats.bytes += text.len() as u64;
        let frame = match parse_server_frame::<Value>(text, self.config.max_frame_bytes) {
            Ok(frame) => frame,
            Err(error) => {
                self.stats.bad_frames += 1;
                warn!(%error, "frame dropped");
                return;
            }
        };
        let history = match &frame {
            ServerFrame::History {
                stream, messages, ..
            } => {
                self.stats.history_frames += 1;
                self.stats.history_bytes += text.len() as u64;
                self.stats.history_messages += messages.len() as u64;
                self.core
                    .stream_id(stream.as_str())
                    .and_then(|id| self.core.stats(id).map(|s| (id, s.duplicates)))
            }
            _ => None,
        };
        match self.core.handle_frame(self.now(), frame) {
            Ok(None) => {}
            Ok(Some(ServerFrame::Ack { id, seq, .. })) => {
                if let Some(pending) = self.pending.remove(&id) {
                    self.stats.published += 1;
                    let _ = pending.reply.send(Ok(seq));
                }
            }
            Ok(Some(ServerFrame::Error {
                code,
                message,
                reference,
            })) => match reference.and_then(|r| self.pending.remove(&r)) {
                Some(pending) => {
                    let _ = pending
                        .reply
                        .send(Err(ClientError::PublishRejected { code, message }));
                }
                None => warn!(%code, %message, "server error"),
            },
            Ok(Some(other)) => debug!(?other, "frame for no subscription"),
            Err(error) => {
                self.stats.bad_frames += 1;
                warn!(%error, "frame rejected by the sequencer");
            }
        }
        if let Some((id, before)) = history {
            if let Some(after) = self.core.stats(id) {
                self.stats.history_duplicates += after.duplicates.saturating_sub(before);
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        let now = self.now();
        match command {
            Command::Subscribe {
                stream,
                options,
                reply,
            } => {
                if self.closing.is_some() {
                    let _ = reply.send(Err(ClientError::Closed));
                    return;
                }
                let result = self.core.subscribe(now, &stream, options).map(|id| {
                    let (tx, rx) = mpsc::channel(self.config.subscription_buffer.max(1));
                    self.subscriptions.insert(id.to_raw(), tx);
                    (id, rx)
                });
                let _ = reply.send(result.map_err(ClientError::from));
            }
            Command::Unsubscribe { id } => {
                self.subscriptions.remove(&id.to_raw());
                let _ = self.core.unsubscribe(now, id);
            }
            Command::Publish {
                stream,
                data,
                reply,
            } => self.publish(stream, data, reply),
            Command::StreamStats { stream, reply } => {
                let stats = self
                    .core
                    .stream_id(&stream)
                    .and_then(|id| self.core.stats(id));
                let _ = reply.send(stats);
            }
            Command::ClientStats { reply } => {
                let _ = reply.send(self.stats.clone());
            }
            Command::Close { reply } => self.closing = Some(reply),
        }
    }

    fn publish(&mut self, stream: String, data: Value, reply: Reply<Seq>) {
        if self.closing.is_some() {
            let _ = reply.send(Err(ClientError::Closed));
            return;
        }
        if self.pending.len() >= self.config.max_pending_publishes {
            let _ = reply.send(Err(ClientError::TooManyPendingPublishes {
                limit: self.config.max_pending_publishes,
            }));
            return;
        }
        let stream = match seqsync_core::StreamName::new(&stream) {
            Ok(stream) => stream,
            Err(error) => {
                let _ = reply.send(Err(error.into()));
                return;
            }
        };
        self.publish_counter += 1;
        let id = format!("{}-{}", self.client_id, self.publish_counter);
        let frame = ClientFrame::Publish {
            stream,
            id: id.clone(),
            data,
        };
        let text = match frame.to_json() {
            Ok(text) => text,
            Err(error) => {
                let _ = reply.send(Err(error.into()));
                return;
            }
        };
        self.outbox.push(text.clone());
        self.pending.insert(
            id,
            PendingPublish {
                order: self.publish_counter,
                frame: text,
                deadline: Instant::now() + Duration::from_millis(self.config.publish_timeout_ms),
                reply,
            },
        );
    }

    fn publish_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    fn expire_publishes(&mut self) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(pending) = self.pending.remove(&id) {
                let _ = pending.reply.send(Err(ClientError::PublishTimeout { id }));
            }
        }
    }

    fn finish(&mut self) {
        for (_, pending) in self.pending.drain() {
            let _ = pending.reply.send(Err(ClientError::Closed));
        }
        self.subscriptions.clear();
        self.state.send_replace(ConnectionState::Closed);
        if let Some(reply) = self.closing.take() {
            let _ = reply.send(());
        }
    }
}

/// Frames handled in a row before timers and commands get a turn.
const FRAME_BATCH: usize = 256;

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
