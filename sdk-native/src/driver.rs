//! The background task: the IO shell around the core's `Session`. It owns
//! the socket, one timer, frame parsing and the channels to the handles,
//! and carries out what the session asks (open, send, close). Every
//! decision about the connection is the session's.

mod connection;
mod foreign;
mod input;
mod positions;
mod publishes;

use connection::{Dialer, Open, attempt, close, next_frame};
use foreign::{CONCURRENT_FETCHES, Fetched, Foreign};
use positions::wait_saved;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use seqsync_core::adapter::{FetchAnswer, FetchId, ForeignRequest, HttpRequest, Outbound};
use seqsync_core::protocol::{encode, parse_server_frame_raw};
use seqsync_core::{
    ConnId, Input, Millis, PublishError, PublishId, Seq, Session, SessionEvent, StopReason,
    StreamId, StreamName, StreamStats, SubscribeOptions, Transmit,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Sleep, sleep_until, timeout};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{debug, info, warn};

use crate::adapter::{Adapter, Frame, Inbound};
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::event::{ClientStats, ConnectionState, SubscriptionEvent};
use crate::mailbox::{Inbox, Outbox, mailbox};
use crate::payload::Payload;
use crate::positions::{Position, PositionStore, Positions};
use crate::tls::TokenSource;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Reply<T> = oneshot::Sender<Result<T, ClientError>>;
type Connecting = Pin<Box<dyn Future<Output = Result<Socket, String>> + Send>>;

/// What the handles ask of the task.
pub(crate) enum Command {
    Subscribe {
        stream: String,
        options: SubscribeOptions,
        reply: Reply<(StreamId, Inbox)>,
    },
    Unsubscribe {
        id: StreamId,
    },
    Publish {
        stream: String,
        /// The payload's JSON text.
        data: String,
        reply: Reply<Seq>,
    },
    StreamStats {
        stream: String,
        reply: oneshot::Sender<Option<StreamStats>>,
    },
    ClientStats {
        reply: oneshot::Sender<ClientStats>,
    },
    /// Connect again (after `disconnect` or a give-up); the reply comes
    /// with the next connection, or when the session stops or closes first.
    Connect {
        reply: Reply<()>,
    },
    Disconnect,
    Close {
        reply: oneshot::Sender<()>,
    },
    /// Close at once, failing what is pending.
    Abort {
        reply: oneshot::Sender<()>,
    },
}

/// A subscription's side of the channel: the events of the current turn,
/// handed over together.
struct Outlet {
    outbox: Outbox,
    batch: Vec<SubscriptionEvent>,
}

/// Most events handed to a subscription at once.
const EVENT_BATCH: usize = 256;

/// What woke the task.
enum Wake {
    Frame(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Connected(ConnId, Result<Box<Socket>, String>),
    Command(Option<Command>),
    Timer,
    Saved(Result<std::io::Result<()>, tokio::task::JoinError>),
    Fetched(Option<Fetched>),
}

pub(crate) struct Driver {
    session: Session<Payload>,
    origin: Instant,
    max_frame_bytes: usize,
    subscription_buffer: usize,
    /// How attempts connect: TLS and where the token comes from.
    dialer: Arc<Dialer>,
    endpoints: Vec<String>,
    commands: mpsc::UnboundedReceiver<Command>,
    subscriptions: HashMap<u64, Outlet>,
    /// Subscriptions with events waiting in their outlet's batch.
    filled: Vec<u64>,
    publishes: HashMap<u64, (String, Reply<Seq>)>,
    state: watch::Sender<ConnectionState>,
    /// Who waits for the next connection (`Client::connect`, `reconnect`).
    waiting_connect: Vec<Reply<()>>,
    closing: Vec<oneshot::Sender<()>>,
    open: Option<Open>,
    connecting: Option<(ConnId, Connecting)>,
    /// The endpoint of the last attempt, for `ConnectFailed`.
    last_endpoint: usize,
    outbox: Vec<String>,
    store: Option<Arc<dyn PositionStore>>,
    positions: Positions,
    positions_dirty: bool,
    saving: Option<JoinHandle<std::io::Result<()>>>,
    foreign: Option<Foreign>,
    fetched: mpsc::UnboundedReceiver<Fetched>,
}

impl Driver {
    /// A driver whose session starts connecting at once.
    pub(crate) fn new(
        config: ClientConfig,
        commands: mpsc::UnboundedReceiver<Command>,
        state: watch::Sender<ConnectionState>,
    ) -> Result<Driver, ClientError> {
        let origin = Instant::now();
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| ClientError::NoRandomness {
            reason: e.to_string(),
        })?;
        let tls = config.tls.client_config()?;
        let (answers, fetched) = mpsc::unbounded_channel();
        let foreign = match &config.adapter {
            Some(source) => Some(Foreign {
                adapter: source.0.clone(),
                http: reqwest::Client::builder()
                    .use_preconfigured_tls(rustls::ClientConfig::clone(&tls))
                    .build()
                    .map_err(|e| ClientError::Tls {
                        reason: format!("HTTP client: {e}"),
                    })?,
                fetch_timeout: config.fetch_timeout,
                max_answer_bytes: config.max_answer_bytes,
                permits: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_FETCHES)),
                answers,
            }),
            None => None,
        };
        let mut session = match &foreign {
            Some(f) => Session::foreign(
                config.session.clone(),
                f.adapter.plan(),
                Payload::null,
                seed,
                Millis(0),
            )?,
            None => Session::new(config.session.clone(), seed, Millis(0))?,
        };
        let store = config.position_store.clone();
        let mut positions = Positions::new();
        if let Some(store) = &store {
            match store.load() {
                Ok(loaded) => positions = loaded,
                Err(error) => warn!(%error, "resume positions could not be loaded"),
            }
            let resume = positions.iter().filter_map(|(stream, p)| {
                StreamName::new(stream)
                    .ok()
                    .map(|name| (name, p.seq, p.epoch))
            });
            session.resume_from(resume);
        }
        Ok(Driver {
            session,
            origin,
            max_frame_bytes: config.max_frame_bytes,
            dialer: Arc::new(Dialer {
                tls,
                tokens: config.token_provider.clone(),
                max_frame_bytes: config.max_frame_bytes,
            }),
            subscription_buffer: config.subscription_buffer.max(1),
            endpoints: config.endpoints.clone(),
            commands,
            subscriptions: HashMap::new(),
            filled: Vec::new(),
            publishes: HashMap::new(),
            state,
            waiting_connect: Vec::new(),
            closing: Vec::new(),
            open: None,
            connecting: None,
            last_endpoint: 0,
            outbox: Vec::new(),
            store,
            positions,
            positions_dirty: false,
            saving: None,
            foreign,
            fetched,
        })
    }

    fn now(&self) -> Millis {
        Millis(u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn instant(&self, at: Millis) -> tokio::time::Instant {
        (self.origin + Duration::from_millis(at.0)).into()
    }

    /// Runs until the session closes (`close()`, `close_now()`, or every
    /// handle dropped).
    pub(crate) async fn run(mut self) {
        let timer = sleep_until(far_future());
        tokio::pin!(timer);
        loop {
            self.carry_out().await;
            if self.session.is_closed() && self.saving.is_none() && !self.positions_dirty {
                break;
            }
            let deadline = self
                .session
                .poll_timeout()
                .map_or_else(far_future, |at| self.instant(at));
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            let wake = self.wait(timer.as_mut()).await;
            self.on_wake(wake);
        }
        self.finish();
    }

    /// Waits for the next thing to happen. Frames come first: a peer that
    /// sent something is not dead, whatever the timer says.
    async fn wait(&mut self, timer: Pin<&mut Sleep>) -> Wake {
        let stream = self.open.as_mut().map(|o| &mut o.stream);
        let connecting = self.connecting.as_mut();
        let saving = self.saving.as_mut();
        tokio::select! {
            biased;
            frame = next_frame(stream) => Wake::Frame(frame),
            (conn, result) = attempt(connecting) => Wake::Connected(conn, result.map(Box::new)),
            command = self.commands.recv() => Wake::Command(command),
            () = timer => Wake::Timer,
            saved = wait_saved(saving) => Wake::Saved(saved),
            fetched = self.fetched.recv() => Wake::Fetched(fetched),
        }
    }

    fn on_wake(&mut self, wake: Wake) {
        match wake {
            Wake::Frame(frame) => {
                let mut frame = frame;
                // Take the frames already here (up to a batch) before the
                // timer and the commands get a turn. A frame is taken off
                // the socket only to be handled.
                for taken in 1..=FRAME_BATCH {
                    if !self.on_frame(frame) || taken == FRAME_BATCH {
                        break;
                    }
                    match self.open.as_mut().map(|o| o.stream.next().now_or_never()) {
                        Some(Some(next)) => frame = next,
                        _ => break,
                    }
                }
                // Keep commands flowing under a flood of frames.
                for _ in 0..16 {
                    match self.commands.try_recv() {
                        Ok(command) => self.on_command(command),
                        Err(_) => break,
                    }
                }
            }
            Wake::Connected(conn, result) => {
                self.connecting = None;
                let now = self.now();
                match result {
                    Ok(socket) => {
                        let (sink, stream) = (*socket).split();
                        self.open = Some(Open { conn, sink, stream });
                        let _ = self.session.handle_input(now, Input::Opened { conn });
                    }
                    Err(reason) => self.closed(now, conn, None, &reason),
                }
            }
            Wake::Command(Some(command)) => self.on_command(command),
            Wake::Command(None) => {
                // Every handle is gone: nobody waits for anything.
                let now = self.now();
                self.session.abort(now);
            }
            Wake::Timer => {
                let now = self.now();
                let _ = self.session.handle_input(now, Input::Timeout);
            }
            Wake::Fetched(Some((id, request, result))) => {
                let now = self.now();
                let Some(foreign) = &self.foreign else {
                    return;
                };
                let (bytes, answer) = match result {
                    Ok((status, body)) => (
                        body.as_str().len(),
                        foreign.adapter.answer(&request, status, &body),
                    ),
                    Err(reason) => (
                        0,
                        FetchAnswer::Failed {
                            reason,
                            status: None,
                        },
                    ),
                };
                if let FetchAnswer::Failed { reason, .. } = &answer {
                    debug!(?request, %reason, "request to the server failed");
                }
                self.session.handle_fetched(now, id, bytes, answer);
            }
            Wake::Fetched(None) => {}
            Wake::Saved(result) => {
                self.saving = None;
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => warn!(%error, "resume positions could not be saved"),
                    Err(error) => warn!(%error, "saving resume positions failed"),
                }
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
                let result = self.session.subscribe(now, &stream, options).map(|id| {
                    let (outbox, inbox) = mailbox(self.subscription_buffer);
                    self.subscriptions.insert(
                        id.to_raw(),
                        Outlet {
                            outbox,
                            batch: Vec::new(),
                        },
                    );
                    (id, inbox)
                });
                let _ = reply.send(result.map_err(ClientError::from));
            }
            Command::Unsubscribe { id } => {
                self.subscriptions.remove(&id.to_raw());
                let _ = self.session.unsubscribe(now, id);
            }
            Command::Publish {
                stream,
                data,
                reply,
            } => {
                let result = self.session.publish(now, &stream, &data);
                match result {
                    Ok(publish) => {
                        let wire_id = self
                            .session
                            .publish_wire_id(publish)
                            .unwrap_or_default()
                            .to_string();
                        self.publishes.insert(publish.to_raw(), (wire_id, reply));
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error.into()));
                    }
                }
            }
            Command::StreamStats { stream, reply } => {
                let seq = self.session.sequencer();
                let _ = reply.send(seq.stream_id(&stream).and_then(|id| seq.stats(id)));
            }
            Command::ClientStats { reply } => {
                let _ = reply.send(self.session.stats());
            }
            Command::Connect { reply } => match self.session.connect(now) {
                Ok(()) if self.session.connection().is_some() => {
                    let _ = reply.send(Ok(()));
                }
                Ok(()) => self.waiting_connect.push(reply),
                Err(error) => {
                    let _ = reply.send(Err(error.into()));
                }
            },
            Command::Disconnect => self.session.disconnect(now),
            Command::Close { reply } => {
                self.closing.push(reply);
                self.session.close(now);
            }
            Command::Abort { reply } => {
                self.closing.push(reply);
                self.session.abort(now);
            }
        }
    }

    /// Does what the session asks, then hands its events to the handles.
    async fn carry_out(&mut self) {
        loop {
            self.take_transmits().await;
            // A failed write ends the connection, which may queue more.
            if self.flush().await {
                break;
            }
        }
        self.dispatch().await;
        self.hand_over_all().await;
        self.save_positions();
    }

    async fn take_transmits(&mut self) {
        while let Some(transmit) = self.session.poll_transmit() {
            match transmit {
                Transmit::Connect {
                    conn,
                    endpoint,
                    url,
                } => {
                    self.last_endpoint = endpoint;
                    self.open = None;
                    let endpoint = self.endpoint(endpoint);
                    let dial = self.dialer.clone().dial(endpoint, url);
                    self.connecting = Some((conn, Box::pin(dial)));
                }
                Transmit::Send { text } => self.outbox.push(text),
                Transmit::Foreign { id, request } => self.foreign_request(id, request),
                Transmit::Disconnect { conn, code, reason } => {
                    if self.connecting.as_ref().is_some_and(|(c, _)| *c == conn) {
                        self.connecting = None;
                    }
                    if self.open.as_ref().is_some_and(|o| o.conn == conn) {
                        self.outbox.clear();
                        if let Some(mut open) = self.open.take() {
                            close(&mut open.sink, code, reason).await;
                        }
                    }
                }
            }
        }
    }

    /// Hands the session's events to whoever waits for them. Waits when a
    /// subscription's buffer is full: the socket is not read meanwhile, so
    /// memory stays bounded.
    async fn dispatch(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Stream(event) => {
                    let key = event.stream().to_raw();
                    self.deliver(key, event.into()).await;
                }
                SessionEvent::Refused {
                    stream,
                    code,
                    message,
                } => {
                    warn!(%code, %message, "request refused");
                    self.deliver(
                        stream.to_raw(),
                        SubscriptionEvent::Refused { code, message },
                    )
                    .await;
                }
                SessionEvent::Connecting { endpoint, attempt } => {
                    self.state.send_replace(ConnectionState::Connecting {
                        endpoint: self.endpoint(endpoint),
                        attempt,
                    });
                }
                SessionEvent::Connected { endpoint } => {
                    let endpoint = self.endpoint(endpoint);
                    info!(%endpoint, "connected");
                    for reply in self.waiting_connect.drain(..) {
                        let _ = reply.send(Ok(()));
                    }
                    self.state
                        .send_replace(ConnectionState::Connected { endpoint });
                }
                SessionEvent::Disconnected {
                    reason,
                    retry_in_ms,
                } => {
                    warn!(%reason, retry_in_ms, "disconnected");
                    self.state
                        .send_replace(ConnectionState::Disconnected { reason });
                }
                SessionEvent::Stopped { reason } => {
                    let endpoint = self.endpoint(self.last_endpoint);
                    let (reason, state) = match reason {
                        StopReason::Disconnected => (
                            "disconnect() was called".to_string(),
                            ConnectionState::Stopped,
                        ),
                        StopReason::GaveUp { reason } => {
                            warn!(%endpoint, %reason, "gave up connecting");
                            let state = ConnectionState::Failed {
                                endpoint: endpoint.clone(),
                                reason: reason.clone(),
                            };
                            (reason, state)
                        }
                    };
                    for reply in self.waiting_connect.drain(..) {
                        let _ = reply.send(Err(ClientError::ConnectFailed {
                            endpoint: endpoint.clone(),
                            reason: reason.clone(),
                        }));
                    }
                    self.open = None;
                    self.connecting = None;
                    self.state.send_replace(state);
                }
                SessionEvent::Closed { .. } => {
                    self.open = None;
                    self.connecting = None;
                }
                SessionEvent::PublishAcked { publish, seq } => {
                    if let Some((_, reply)) = self.publishes.remove(&publish.to_raw()) {
                        let _ = reply.send(Ok(seq));
                    }
                }
                SessionEvent::PublishFailed { publish, error } => {
                    self.publish_failed(publish, error);
                }
                SessionEvent::Position { stream, seq, epoch } => {
                    if self.store.is_some() {
                        self.positions
                            .insert(stream.to_string(), Position { seq, epoch });
                        self.positions_dirty = true;
                    }
                }
                SessionEvent::ServerError { code, message } => {
                    debug!(%code, %message, "server error");
                }
            }
        }
    }

    /// Adds an event to its subscription's batch; a full batch goes out.
    async fn deliver(&mut self, key: u64, event: SubscriptionEvent) {
        let Some(outlet) = self.subscriptions.get_mut(&key) else {
            return;
        };
        if outlet.batch.is_empty() {
            self.filled.push(key);
            outlet.batch.reserve(EVENT_BATCH.min(64));
        }
        outlet.batch.push(event);
        if outlet.batch.len() >= EVENT_BATCH {
            self.hand_over(key).await;
        }
    }

    /// Hands every waiting batch to its subscription: one wake-up of the
    /// application per batch, not per event. Waits when a subscription's
    /// channel is full: the socket is not read meanwhile, so memory stays
    /// bounded.
    async fn hand_over_all(&mut self) {
        while let Some(key) = self.filled.pop() {
            self.hand_over(key).await;
        }
    }

    async fn hand_over(&mut self, key: u64) {
        let Some(outlet) = self.subscriptions.get_mut(&key) else {
            return;
        };
        if outlet.batch.is_empty() {
            return;
        }
        if !outlet.outbox.send(&mut outlet.batch).await {
            // The subscription was dropped; its unsubscribe is on its way.
            self.subscriptions.remove(&key);
        }
    }

    fn endpoint(&self, index: usize) -> String {
        self.endpoints.get(index).cloned().unwrap_or_default()
    }

    fn finish(&mut self) {
        for (_, (_, reply)) in self.publishes.drain() {
            let _ = reply.send(Err(ClientError::Closed));
        }
        self.subscriptions.clear();
        for reply in self.waiting_connect.drain(..) {
            let _ = reply.send(Err(ClientError::Closed));
        }
        self.state.send_replace(ConnectionState::Closed);
        for reply in self.closing.drain(..) {
            let _ = reply.send(());
        }
    }
}

/// Frames handled in a row before the timer and commands get a turn.
const FRAME_BATCH: usize = 256;

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365)
}
