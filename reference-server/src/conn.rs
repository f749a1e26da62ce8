//! One WebSocket connection: a reader that handles the client's requests
//! in order, beside a [`Writer`] that sends what they produce.
//!
//! The reader stops reading while the connection's control queue is full
//! (the client does not read its answers), closes with 1008 a client that
//! floods it with refused frames or whose token expires, with 1009 one that
//! sends a frame above the hard limit, and with 1007 one that sends text
//! that is not UTF-8.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use seqsync_core::protocol::{ClientFrame, ErrorCode, HistoryMessage, RequestRef, ServerFrame};
use seqsync_core::{Epoch, ResetReason, Seq, SeqRange, StreamName};
use serde_json::value::RawValue;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::admission::Ticket;
use crate::auth::Claims;
use crate::decide::{self, History, PageLimits, Resume};
use crate::faults::FaultSpec;
use crate::frame::{Refused, error_frame, parse_request, text};
use crate::log::{LogError, Page, Payload, StreamInfo, call, now_ms};
use crate::metrics::Metrics;
use crate::outbound::Outbound;
use crate::state::AppState;
use crate::stream_hub::{HubError, PublishReq, StreamHub, Subscriptions};
use crate::writer::{Writer, WriterConfig};

/// How long a connection the server closes may take to answer the close
/// frame; meanwhile what it sends is read and dropped, so that closing the
/// socket with unread data does not reset the connection before the client
/// has read the close frame.
const LINGER: Duration = Duration::from_secs(2);

/// What the connection does after a frame.
enum Flow {
    Continue,
    Close(u16, &'static str),
}

/// Publishes allowed per second, with a burst of one second's worth.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: u32) -> TokenBucket {
        TokenBucket {
            rate: f64::from(rate.max(1)),
            tokens: f64::from(rate.max(1)),
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Error frames sent in the current one-second window.
struct ErrorBudget {
    window: Instant,
    count: u32,
    limit: u32,
}

impl ErrorBudget {
    /// Counts one error; false once the window holds more than the limit.
    fn spend(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.count = 0;
        }
        self.count += 1;
        self.count <= self.limit
    }
}

/// Serves one upgraded socket until it closes, is cut, or the server stops.
/// `ticket` keeps the connection counted until it ends.
pub(crate) async fn run(
    socket: WebSocket,
    state: Arc<AppState>,
    claims: Claims,
    faults: Option<FaultSpec>,
    ticket: Option<Arc<Ticket>>,
) {
    let id = state.next_conn_id();
    let limits = &state.config.limits;
    let out = Arc::new(Outbound::new(
        id,
        limits.live_queue,
        limits.control_queue,
        state.metrics.clone(),
    ));
    state.connection_opened(&out);
    let subs: Subscriptions = Arc::new(Mutex::new(HashMap::new()));
    let (sink, stream) = socket.split();
    let writer = Writer::new(
        sink,
        out.clone(),
        subs.clone(),
        state.metrics.clone(),
        faults,
    );
    let grace = Duration::from_millis(state.config.shutdown_grace_ms);
    let mut writer_task = tokio::spawn(writer.run(
        WriterConfig {
            heartbeat: Duration::from_millis(state.config.heartbeat_ms),
            grace,
            frame_limit: limits.max_frame_bytes,
        },
        state.shutdown.clone(),
    ));
    tracing::debug!(conn = id, "connected");
    let mut conn = Conn {
        expires_ms: claims.exp.map(|s| s.saturating_mul(1000)),
        state: state.clone(),
        out: out.clone(),
        subs: subs.clone(),
        claims,
        address: ticket.as_ref().map(|t| t.address()),
        bucket: TokenBucket::new(limits.publish_rate),
        errors: ErrorBudget {
            window: Instant::now(),
            count: 0,
            limit: limits.max_errors_per_sec,
        },
    };
    if !conn.read_loop(stream, &mut writer_task).await
        && tokio::time::timeout(grace, &mut writer_task).await.is_err()
    {
        writer_task.abort();
    }
    let hubs: Vec<Arc<StreamHub>> = subs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain()
        .map(|(_, h)| h)
        .collect();
    for hub in hubs {
        state.hubs.unregister(&hub, id);
    }
    out.shut();
    tracing::debug!(conn = id, "disconnected");
    state.connection_closed(id);
    drop(ticket);
}

/// The reading half of one connection.
struct Conn {
    state: Arc<AppState>,
    out: Arc<Outbound>,
    subs: Subscriptions,
    claims: Claims,
    /// The address the connection counts against: the streams it makes
    /// live are on its budget.
    address: Option<IpAddr>,
    /// When the token expires, in Unix milliseconds.
    expires_ms: Option<u64>,
    bucket: TokenBucket,
    errors: ErrorBudget,
}

/// A request that gets an answer: the stream it names and the `ref` every
/// answer carries back.
struct Req {
    stream: StreamName,
    reference: Option<RequestRef>,
}

impl Req {
    /// The `ref` of an `error` about this request: its own `ref`, else the
    /// stream (section 5.8).
    fn about(&self) -> &str {
        self.reference
            .as_ref()
            .map_or(self.stream.as_str(), RequestRef::as_str)
    }
}

/// What a read error means for the connection: the close code to send, if
/// any.
fn close_for(error: &axum::Error) -> Option<(u16, &'static str)> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = source {
        match err.downcast_ref::<tungstenite::Error>() {
            Some(tungstenite::Error::Capacity(_)) => return Some((1009, "frame too large")),
            Some(tungstenite::Error::Utf8(_)) => {
                return Some((1007, "text frame is not valid UTF-8"));
            }
            Some(_) => return None,
            None => source = err.source(),
        }
    }
    None
}

impl Conn {
    /// Reads until the socket ends; returns whether the writer has finished.
    async fn read_loop(
        &mut self,
        mut stream: SplitStream<WebSocket>,
        writer: &mut JoinHandle<()>,
    ) -> bool {
        let mut shutdown = self.state.shutdown.clone();
        // An expiry too far away for the clock is no expiry at all.
        let expiry = self.expires_ms.and_then(|exp| {
            Instant::now().checked_add(Duration::from_millis(exp.saturating_sub(now_ms())))
        });
        loop {
            tokio::select! {
                _ = &mut *writer => return true,
                _ = shutdown.changed() => return false,
                () = sleep_until(expiry) => return self.expired(stream).await,
                () = self.out.wait_control_space() => {}
            }
            let next = tokio::select! {
                _ = &mut *writer => return true,
                _ = shutdown.changed() => return false,
                () = sleep_until(expiry) => return self.expired(stream).await,
                next = stream.next() => next,
            };
            let flow = match next {
                None | Some(Ok(Message::Close(_))) => {
                    self.out.finish();
                    return false;
                }
                Some(Err(e)) => {
                    tracing::debug!(conn = self.out.id, error = %e, "read failed");
                    match close_for(&e) {
                        Some((code, reason)) => {
                            if code == 1009 {
                                self.state.metrics.error(ErrorCode::FrameTooLarge);
                            }
                            self.out.close_with(code, reason);
                            linger(stream).await;
                        }
                        None => self.out.finish(),
                    }
                    return false;
                }
                Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await,
                Some(Ok(Message::Binary(_))) => self.refuse(Refused {
                    code: ErrorCode::MalformedFrame,
                    message: "binary frames are not part of the protocol; send JSON text".into(),
                    reference: None,
                }),
                Some(Ok(_)) => Flow::Continue,
            };
            if let Flow::Close(code, reason) = flow {
                self.out.close_with(code, reason);
                linger(stream).await;
                return false;
            }
        }
    }

    /// Ends a connection whose token expired.
    async fn expired(&self, stream: SplitStream<WebSocket>) -> bool {
        tracing::debug!(conn = self.out.id, "token expired");
        Metrics::inc(&self.state.metrics.tokens_expired);
        self.out.close_with(1008, "token expired");
        linger(stream).await;
        false
    }

    fn send(&self, frame: Utf8Bytes) {
        self.out.push_control(frame);
    }

    /// Answers a refused frame; a connection past its error budget is
    /// closed as a flood.
    fn refuse(&mut self, refused: Refused) -> Flow {
        self.state.metrics.error(refused.code);
        self.send(error_frame(
            refused.code,
            &refused.message,
            refused.reference.as_deref(),
        ));
        if self.errors.spend() {
            return Flow::Continue;
        }
        tracing::info!(conn = self.out.id, "closing a flooding connection");
        Flow::Close(1008, "too many refused frames")
    }

    fn error(&mut self, code: ErrorCode, message: impl Into<String>, about: &str) -> Flow {
        self.refuse(Refused {
            code,
            message: message.into(),
            reference: Some(about.to_string()),
        })
    }

    fn hub_error(&mut self, e: &HubError, about: &str) -> Flow {
        let (code, message) = e.answer();
        self.error(code, message, about)
    }

    fn internal(&mut self, req: &Req, e: &LogError) -> Flow {
        tracing::error!(stream = %req.stream, error = %e, "log error");
        self.error(ErrorCode::Internal, "the log failed to answer", req.about())
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        if self.expires_ms.is_some_and(|exp| now_ms() >= exp) {
            Metrics::inc(&self.state.metrics.tokens_expired);
            return Flow::Close(1008, "token expired");
        }
        let frame = match parse_request(text, self.state.config.limits.max_frame_bytes) {
            Ok(frame) => frame,
            Err(refused) => return self.refuse(refused),
        };
        match frame {
            ClientFrame::Subscribe {
                stream,
                since,
                epoch,
                reference,
            } => {
                self.subscribe(&Req { stream, reference }, since, epoch)
                    .await
            }
            ClientFrame::Unsubscribe { stream } => self.unsubscribe(&stream),
            ClientFrame::History {
                stream,
                range,
                reference,
            } => self.history(&Req { stream, reference }, range.0).await,
            ClientFrame::Snapshot { stream, reference } => {
                let req = Req { stream, reference };
                if !self.claims.can_read(req.stream.as_str()) {
                    return self.unauthorized(&req);
                }
                self.snapshot(&req, self.state.hubs.find(&req.stream)).await
            }
            ClientFrame::Publish { stream, id, data } => self.publish(stream, id, data).await,
        }
    }

    fn unauthorized(&mut self, req: &Req) -> Flow {
        self.error(
            ErrorCode::Unauthorized,
            "the token does not allow this stream",
            req.about(),
        )
    }

    fn reset(&mut self, req: &Req, reason: ResetReason, earliest: Option<Seq>) {
        Metrics::inc(&self.state.metrics.resets);
        self.send(text(&ServerFrame::<()>::Reset {
            stream: req.stream.clone(),
            reason: reason.as_str().to_string(),
            earliest,
            reference: req.reference.clone(),
        }));
    }

    /// The stream's state now: the log's, or for a stream with nothing in
    /// its log yet, empty in the epoch its first message will be stored
    /// in. Reading a shared log reserves that epoch, so that every instance
    /// names the same one.
    async fn read_info(&self, name: &StreamName) -> Result<StreamInfo, LogError> {
        let name = name.clone();
        call(self.state.hubs.log(), move |log| log.reserve(&name)).await
    }

    async fn subscribe(&mut self, req: &Req, since: Option<Seq>, epoch: Option<Epoch>) -> Flow {
        let stream = &req.stream;
        if !self.claims.can_read(stream.as_str()) {
            return self.unauthorized(req);
        }
        let (known, count) = {
            let subs = self.subs.lock().unwrap_or_else(|p| p.into_inner());
            (subs.contains_key(stream), subs.len())
        };
        let max = self.state.config.limits.max_subscriptions;
        if !known && count >= max {
            return self.error(
                ErrorCode::TooManySubscriptions,
                format!("at most {max} subscriptions per connection"),
                req.about(),
            );
        }
        let hub = match self.state.hubs.open(stream, self.address).await {
            Ok(hub) => hub,
            Err(e) => return self.hub_error(&e, req.about()),
        };
        // Register first: no live message can fall between the answer below
        // and the live flow.
        hub.register(&self.out);
        self.subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(stream.clone(), hub.clone());
        let Some(since) = since else {
            return self.snapshot(req, Some(hub)).await;
        };
        let info = match self.read_info(stream).await {
            Ok(info) => info,
            Err(e) => return self.internal(req, &e),
        };
        self.state.hubs.follow(&hub, &self.out, info.head);
        match decide::resume(since, epoch, &info) {
            Resume::Reset { reason, earliest } => self.reset(req, reason, earliest),
            Resume::Subscribed => self.send(text(&ServerFrame::<()>::Subscribed {
                stream: stream.clone(),
                epoch: info.epoch,
                head: info.head,
                reference: req.reference.clone(),
            })),
        }
        Flow::Continue
    }

    fn unsubscribe(&mut self, stream: &StreamName) -> Flow {
        let removed = self
            .subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(stream);
        match removed {
            Some(hub) => {
                self.state.hubs.unregister(&hub, self.out.id);
                Flow::Continue
            }
            None => self.error(
                ErrorCode::NotSubscribed,
                "the stream is not subscribed on this connection",
                stream.as_str(),
            ),
        }
    }

    /// Answers with the stream's snapshot. `hub` is the stream's live hub,
    /// when it has one (a subscriber just registered with it). A stream
    /// that has no log is empty, in the epoch the log reserves for it,
    /// whether it is live or not: the one its first message gets.
    async fn snapshot(&mut self, req: &Req, hub: Option<Arc<StreamHub>>) -> Flow {
        let name = req.stream.clone();
        let k = self.state.config.snapshot_messages;
        let read = match call(self.state.hubs.log(), move |log| log.last(&name, k)).await {
            Ok(read) => read,
            Err(e) => return self.internal(req, &e),
        };
        let (info, messages) = match read {
            Some(read) => (read.info, read.messages),
            None => match self.read_info(&req.stream).await {
                Ok(info) => (info, Vec::new()),
                Err(e) => return self.internal(req, &e),
            },
        };
        if let Some(hub) = &hub {
            self.state.hubs.follow(hub, &self.out, info.head);
        }
        #[derive(serde::Serialize)]
        struct State<'a> {
            messages: Vec<HistoryMessage<&'a RawValue>>,
        }
        let kept = decide::snapshot_messages(&messages, self.state.config.snapshot_max_bytes);
        let state = State {
            messages: kept
                .iter()
                .map(|m| HistoryMessage {
                    seq: m.seq,
                    data: &*m.data,
                })
                .collect(),
        };
        let Ok(state) = serde_json::value::to_raw_value(&state) else {
            return self.error(ErrorCode::Internal, "snapshot encoding failed", req.about());
        };
        Metrics::inc(&self.state.metrics.snapshot_requests);
        self.send(text(&ServerFrame::Snapshot {
            stream: req.stream.clone(),
            seq: info.head,
            epoch: info.epoch,
            state,
            reference: req.reference.clone(),
        }));
        Flow::Continue
    }

    async fn history(&mut self, req: &Req, range: SeqRange) -> Flow {
        let stream = &req.stream;
        if !self.claims.can_read(stream.as_str()) {
            return self.unauthorized(req);
        }
        Metrics::inc(&self.state.metrics.history_requests);
        let limits = PageLimits {
            seqs: self.state.config.limits.history_page.max(1),
            bytes: self.state.config.limits.history_max_bytes,
        };
        let name = stream.clone();
        let page = Page {
            range,
            max: limits.seqs,
        };
        let read = match call(self.state.hubs.log(), move |log| log.read(&name, page)).await {
            Ok(read) => read,
            Err(e) => return self.internal(req, &e),
        };
        // A stream without a log is empty: every `from` is beyond its head.
        let (info, stored) = match read {
            Some(read) => (read.info, read.messages),
            None => (StreamInfo::empty(Epoch(0)), Vec::new()),
        };
        match decide::history(range, &info, &stored, limits) {
            History::BeyondHead { head } => self.error(
                ErrorCode::RangeBeyondHead,
                format!("from {} is beyond the head {head}", range.start()),
                req.about(),
            ),
            History::Gone { earliest } => {
                self.reset(req, ResetReason::HistoryUnavailable, Some(earliest));
                Flow::Continue
            }
            History::Page {
                covered,
                messages,
                skipped,
            } => {
                self.send(text(&ServerFrame::History {
                    stream: stream.clone(),
                    range: covered.into(),
                    epoch: Some(info.epoch),
                    messages,
                    skipped,
                    reference: req.reference.clone(),
                }));
                Flow::Continue
            }
        }
    }

    async fn publish(&mut self, stream: StreamName, id: String, data: Payload) -> Flow {
        if !self.claims.can_write(stream.as_str()) {
            return self.error(
                ErrorCode::Unauthorized,
                "the token does not allow publishing to this stream",
                &id,
            );
        }
        if !self.bucket.take() {
            let rate = self.state.config.limits.publish_rate;
            return self.error(
                ErrorCode::RateLimited,
                format!("at most {rate} publishes per second"),
                &id,
            );
        }
        let hub = match self.state.hubs.open(&stream, self.address).await {
            Ok(hub) => hub,
            Err(e) => return self.hub_error(&e, &id),
        };
        let req = PublishReq {
            id,
            data,
            reply: self.out.clone(),
        };
        let id = req.id.clone();
        match self.state.hubs.publish(&hub, req).await {
            Ok(()) => Flow::Continue,
            Err(e) => self.hub_error(&e, &id),
        }
    }
}

/// Reads and drops what the peer still sends until it answers the close
/// frame, goes, or [`LINGER`] passes.
async fn linger(mut stream: SplitStream<WebSocket>) {
    let _ = tokio::time::timeout(LINGER, async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                return;
            }
        }
    })
    .await;
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
