//! One WebSocket connection: a reader that handles requests in order and a
//! writer that drains the outbound queue (control first), sends heartbeats
//! and applies fault injection.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use seqsync_core::protocol::{
    ClientFrame, HeadEntry, HistoryMessage, MAX_REF_LEN, RequestRef, ServerFrame, WireRange,
    parse_client_frame,
};
use seqsync_core::{Epoch, Error as CoreError, MAX_SEQ, Seq, SeqRange, StreamName};
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::auth::Claims;
use crate::faults::{FaultInjector, FaultSpec};
use crate::hub::{ActorMsg, HubError, PublishReq, StreamHub, call, error_frame, text};
use crate::metrics::Metrics;
use crate::outbound::{Outbound, Queues};
use crate::server::AppState;

pub use seqsync_core::protocol::MAX_PUBLISH_ID_LEN;

/// Most live frames held in the fault-injection delay line per connection.
const MAX_DELAYED: usize = 4096;

type Subs = Arc<Mutex<HashMap<StreamName, Arc<StreamHub>>>>;

enum Flow {
    Continue,
    Close(u16, &'static str),
}

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

/// Serves one upgraded socket until it closes, is cut, or the server stops.
pub(crate) async fn run(
    socket: WebSocket,
    state: Arc<AppState>,
    claims: Claims,
    faults: Option<FaultSpec>,
) {
    let id = state.next_conn.fetch_add(1, Ordering::Relaxed);
    Metrics::inc(&state.metrics.connections);
    Metrics::inc(&state.metrics.connections_total);
    let limits = &state.config.limits;
    let out = Arc::new(Outbound::new(
        id,
        limits.live_queue,
        limits.control_queue,
        state.metrics.clone(),
    ));
    state
        .queues
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, out.clone());
    let subs: Subs = Arc::new(Mutex::new(HashMap::new()));
    let (sink, stream) = socket.split();
    let writer = Writer {
        sink,
        out: out.clone(),
        subs: subs.clone(),
        injector: faults.filter(FaultSpec::is_active).map(FaultInjector::new),
        metrics: state.metrics.clone(),
        sent: 0,
        delivered: 0,
        delayed: BTreeMap::new(),
        delay_seq: 0,
        live_since_tick: false,
    };
    let mut writer_task = tokio::spawn(writer.run(
        state.config.heartbeat_ms,
        state.shutdown.clone(),
        Duration::from_millis(state.config.shutdown_grace_ms),
    ));
    tracing::debug!(conn = id, "connected");
    let mut conn = Conn {
        state: state.clone(),
        out: out.clone(),
        subs: subs.clone(),
        claims,
        bucket: TokenBucket::new(limits.publish_rate),
        error_window: Instant::now(),
        errors_in_window: 0,
    };
    let writer_done = conn.read_loop(stream, &mut writer_task).await;
    if !writer_done {
        let grace = Duration::from_millis(state.config.shutdown_grace_ms);
        if tokio::time::timeout(grace, &mut writer_task).await.is_err() {
            writer_task.abort();
        }
    }
    let hubs: Vec<Arc<StreamHub>> = subs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain()
        .map(|(_, h)| h)
        .collect();
    for hub in hubs {
        hub.unregister(id);
    }
    out.shut();
    state
        .queues
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    tracing::debug!(conn = id, "disconnected");
    state.connection_closed();
}

struct Conn {
    state: Arc<AppState>,
    out: Arc<Outbound>,
    subs: Subs,
    claims: Claims,
    bucket: TokenBucket,
    error_window: Instant,
    errors_in_window: u32,
}

impl Conn {
    /// Reads until the socket ends; returns whether the writer has finished.
    async fn read_loop(
        &mut self,
        mut stream: SplitStream<WebSocket>,
        writer: &mut tokio::task::JoinHandle<()>,
    ) -> bool {
        let mut shutdown = self.state.shutdown.clone();
        loop {
            tokio::select! {
                _ = &mut *writer => return true,
                _ = shutdown.changed() => return false,
                () = self.out.wait_control_space() => {}
            }
            let next = tokio::select! {
                _ = &mut *writer => return true,
                _ = shutdown.changed() => return false,
                next = stream.next() => next,
            };
            let flow = match next {
                None => return false,
                Some(Err(e)) => {
                    tracing::debug!(conn = self.out.id, error = %e, "read failed");
                    if is_capacity(&e) {
                        Metrics::inc(&self.state.metrics.errors[2]);
                        self.out.close_with(1009, "frame too large");
                    }
                    return false;
                }
                Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await,
                Some(Ok(Message::Binary(_))) => self.error(
                    "malformed_frame",
                    "binary frames are not part of the protocol; send JSON text",
                    None,
                ),
                Some(Ok(Message::Close(_))) => return false,
                Some(Ok(_)) => Flow::Continue,
            };
            if let Flow::Close(code, reason) = flow {
                self.out.close_with(code, reason);
                return false;
            }
        }
    }

    fn send(&self, frame: Utf8Bytes) {
        self.out.push_control(frame);
    }

    fn error(&mut self, code: &'static str, message: &str, reference: Option<&str>) -> Flow {
        self.state.metrics.error(code);
        self.send(error_frame(code, message, reference));
        let now = Instant::now();
        if now.duration_since(self.error_window) >= Duration::from_secs(1) {
            self.error_window = now;
            self.errors_in_window = 0;
        }
        self.errors_in_window += 1;
        let limit = self
            .state
            .config
            .limits
            .max_errors_per_sec
            .max(self.state.config.limits.publish_rate);
        if self.errors_in_window > limit {
            tracing::info!(conn = self.out.id, "closing a flooding connection");
            return Flow::Close(1008, "too many bad frames");
        }
        Flow::Continue
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        let max = self.state.config.limits.max_frame_bytes;
        let frame = match parse_client_frame::<serde_json::Value>(text, max) {
            Ok(frame) => frame,
            Err(e) => {
                let (code, message) = classify(text, &e);
                let reference = (text.len() <= max).then(|| reference_of(text)).flatten();
                return self.error(code, &message, reference.as_deref());
            }
        };
        match frame {
            ClientFrame::Subscribe {
                stream,
                since,
                epoch,
                reference,
            } => {
                let req = Req::new(stream, reference);
                self.subscribe(&req, since, epoch).await
            }
            ClientFrame::Unsubscribe { stream } => self.unsubscribe(&stream),
            ClientFrame::History {
                stream,
                range,
                reference,
            } => self.history(&Req::new(stream, reference), range.0).await,
            ClientFrame::Snapshot { stream, reference } => {
                let req = Req::new(stream, reference);
                if !self.claims.can_read(req.stream.as_str()) {
                    return self.unauthorized(&req);
                }
                match self.state.hub.get(&req.stream).await {
                    Ok(hub) => self.snapshot(&req, &hub).await,
                    Err(e) => self.hub_error(&req, e),
                }
            }
            ClientFrame::Publish { stream, id, data } => self.publish(stream, id, data).await,
        }
    }

    fn unauthorized(&mut self, req: &Req) -> Flow {
        self.error(
            "unauthorized",
            "the token does not allow this stream",
            Some(req.about()),
        )
    }

    fn hub_error(&mut self, req: &Req, e: HubError) -> Flow {
        match e {
            HubError::Log(e) => self.internal(req, &e),
            HubError::Full(limit) => self.error(
                "invalid_stream",
                &format!(
                    "the server holds its limit of {limit} streams; no new stream can be opened"
                ),
                Some(req.about()),
            ),
        }
    }

    fn internal(&mut self, req: &Req, e: &crate::log::LogError) -> Flow {
        tracing::error!(stream = %req.stream, error = %e, "log error");
        self.error("internal", "the log failed to answer", Some(req.about()))
    }

    fn reset(&mut self, req: &Req, reason: &str, earliest: Option<Seq>) {
        Metrics::inc(&self.state.metrics.resets);
        self.send(text(&ServerFrame::<()>::Reset {
            stream: req.stream.clone(),
            reason: reason.to_string(),
            earliest,
            reference: req.reference.clone(),
        }));
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
                "too_many_subscriptions",
                &format!("at most {max} subscriptions per connection"),
                Some(req.about()),
            );
        }
        let hub = match self.state.hub.get(stream).await {
            Ok(hub) => hub,
            Err(e) => return self.hub_error(req, e),
        };
        // Register first: no live message can fall between the answer below
        // and the live flow.
        hub.register(&self.out);
        self.subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(stream.clone(), hub.clone());
        let Some(since) = since else {
            return self.snapshot(req, &hub).await;
        };
        let name = stream.clone();
        let info = match call(self.state.hub.log(), move |log| log.open(&name)).await {
            Ok(info) => info,
            Err(e) => return self.internal(req, &e),
        };
        if epoch.is_some_and(|e| e != info.epoch) {
            self.reset(req, "epoch_changed", None);
        } else if since.get() + 1 < info.earliest.get() && since < info.head {
            self.reset(req, "history_unavailable", Some(info.earliest));
        } else {
            self.send(text(&ServerFrame::<()>::Subscribed {
                stream: stream.clone(),
                epoch: info.epoch,
                head: info.head,
                reference: req.reference.clone(),
            }));
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
                hub.unregister(self.out.id);
                Flow::Continue
            }
            None => self.error(
                "not_subscribed",
                "the stream is not subscribed on this connection",
                Some(stream.as_str()),
            ),
        }
    }

    async fn snapshot(&mut self, req: &Req, hub: &Arc<StreamHub>) -> Flow {
        let name = hub.name.clone();
        let k = self.state.config.snapshot_messages;
        let read = match call(self.state.hub.log(), move |log| log.last(&name, k)).await {
            Ok(read) => read,
            Err(e) => return self.internal(req, &e),
        };
        #[derive(serde::Serialize)]
        struct State<'a> {
            messages: Vec<HistoryMessage<&'a RawValue>>,
        }
        let state = State {
            messages: read
                .messages
                .iter()
                .map(|m| HistoryMessage {
                    seq: m.seq,
                    data: &*m.data,
                })
                .collect(),
        };
        let Ok(state) = serde_json::value::to_raw_value(&state) else {
            return self.error("internal", "snapshot encoding failed", Some(req.about()));
        };
        Metrics::inc(&self.state.metrics.snapshot_requests);
        self.send(text(&ServerFrame::Snapshot {
            stream: hub.name.clone(),
            seq: read.info.head,
            epoch: read.info.epoch,
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
        if let Err(e) = self.state.hub.get(stream).await {
            return self.hub_error(req, e);
        }
        Metrics::inc(&self.state.metrics.history_requests);
        let page = self.state.config.limits.history_page.max(1);
        let name = stream.clone();
        let (from, to) = (range.start(), range.end());
        let read = match call(self.state.hub.log(), move |log| {
            log.read(&name, from, to, page)
        })
        .await
        {
            Ok(read) => read,
            Err(e) => return self.internal(req, &e),
        };
        let info = read.info;
        if from < info.earliest {
            self.reset(req, "history_unavailable", Some(info.earliest));
            return Flow::Continue;
        }
        if from > info.head {
            return self.error(
                "range_beyond_head",
                &format!("from {} is beyond the head {}", from, info.head),
                Some(req.about()),
            );
        }
        let mut covered_to = to
            .get()
            .min(info.head.get())
            .min(from.get().saturating_add(page - 1));
        let budget = self.state.config.limits.history_max_bytes;
        let mut bytes = 0usize;
        let mut skipped = Vec::new();
        let mut expect = from.get();
        let mut messages = Vec::with_capacity(read.messages.len());
        for m in &read.messages {
            let s = m.seq.get();
            if s > covered_to {
                break;
            }
            bytes += m.data.get().len() + 32;
            if bytes > budget && !messages.is_empty() {
                // A shorter page: it covers only what it holds.
                covered_to = expect - 1;
                break;
            }
            if s > expect {
                push_range(&mut skipped, expect, s - 1);
            }
            expect = s + 1;
            messages.push(HistoryMessage {
                seq: m.seq,
                data: &*m.data,
            });
        }
        if expect <= covered_to {
            push_range(&mut skipped, expect, covered_to);
        }
        let Ok(covered) = SeqRange::from_u64(from.get(), covered_to) else {
            return self.error("internal", "history range", Some(req.about()));
        };
        self.send(text(&ServerFrame::History {
            stream: stream.clone(),
            range: WireRange(covered),
            epoch: Some(info.epoch),
            messages,
            skipped,
            reference: req.reference.clone(),
        }));
        Flow::Continue
    }

    async fn publish(&mut self, stream: StreamName, id: String, data: serde_json::Value) -> Flow {
        if !self.claims.can_write(stream.as_str()) {
            return self.error(
                "unauthorized",
                "the token does not allow publishing to this stream",
                Some(&id),
            );
        }
        if id.is_empty() || id.len() > MAX_PUBLISH_ID_LEN {
            return self.error(
                "malformed_frame",
                &format!("publish id must be 1 to {MAX_PUBLISH_ID_LEN} bytes"),
                Some(&id.chars().take(64).collect::<String>()),
            );
        }
        if !self.bucket.take() {
            return self.error(
                "rate_limited",
                &format!(
                    "at most {} publishes per second",
                    self.state.config.limits.publish_rate
                ),
                Some(&id),
            );
        }
        let Ok(data) = serde_json::value::to_raw_value(&data) else {
            return self.error("malformed_frame", "payload cannot be encoded", Some(&id));
        };
        let hub = match self.state.hub.get(&stream).await {
            Ok(hub) => hub,
            Err(HubError::Log(e)) => {
                tracing::error!(stream = %stream, error = %e, "log error");
                return self.error("internal", "the log failed to answer", Some(&id));
            }
            Err(HubError::Full(limit)) => {
                return self.error(
                    "invalid_stream",
                    &format!(
                        "the server holds its limit of {limit} streams; no new stream can be opened"
                    ),
                    Some(&id),
                );
            }
        };
        let req = PublishReq {
            id,
            data,
            reply: self.out.clone(),
        };
        if let Err(refused) = hub.tx.send(ActorMsg::Publish(req)).await {
            let ActorMsg::Publish(req) = refused.0 else {
                return Flow::Continue;
            };
            return self.error("internal", "the stream is shutting down", Some(&req.id));
        }
        Flow::Continue
    }
}

fn push_range(ranges: &mut Vec<WireRange>, from: u64, to: u64) {
    if let Ok(r) = SeqRange::from_u64(from, to) {
        ranges.push(WireRange(r));
    }
}

fn is_capacity(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        let text = err.to_string();
        if text.contains("Space limit exceeded")
            || text.contains("too long")
            || text.contains("Capacity")
        {
            return true;
        }
        source = err.source();
    }
    false
}

/// The error code and message for a frame the core parser refused.
pub(crate) fn classify(text: &str, error: &CoreError) -> (&'static str, String) {
    let code = match error {
        CoreError::FrameTooLarge { .. } => "frame_too_large",
        CoreError::UnknownFrameType { .. } => "unknown_type",
        CoreError::InvalidStreamName { .. } => "invalid_stream",
        CoreError::SeqOutOfRange { .. } => "seq_out_of_range",
        CoreError::InvalidRange { from, to } => {
            if *from > MAX_SEQ || *to > MAX_SEQ {
                "seq_out_of_range"
            } else {
                "invalid_range"
            }
        }
        _ if bad_seq_field(text) => "seq_out_of_range",
        _ => "malformed_frame",
    };
    let message = match code {
        "seq_out_of_range" => format!("{error}; seqs are integers in 0..=9007199254740991"),
        _ => error.to_string(),
    };
    (code, message)
}

/// What a refused frame is about, so the client can tell which request
/// failed: its `ref` (section 3.8), else its `id`, else its `stream`, when
/// it has one that is valid text of that kind.
fn reference_of(text: &str) -> Option<String> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) else {
        return None;
    };
    [
        ("ref", MAX_REF_LEN),
        ("id", MAX_PUBLISH_ID_LEN),
        ("stream", 256),
    ]
    .iter()
    .find_map(|&(field, max)| {
        map.get(field)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= max)
            .map(str::to_string)
    })
}

/// A request that gets an answer: the stream it names and the `ref` every
/// answer carries back.
struct Req {
    stream: StreamName,
    reference: Option<RequestRef>,
}

impl Req {
    fn new(stream: StreamName, reference: Option<RequestRef>) -> Req {
        Req { stream, reference }
    }

    /// The `ref` of an `error` about this request: its own `ref`, else the
    /// stream (section 5.8).
    fn about(&self) -> &str {
        self.reference
            .as_ref()
            .map_or(self.stream.as_str(), RequestRef::as_str)
    }
}

/// Whether a seq-valued field holds a number that is not an integer in
/// `0..=2^53-1` (negative, fractional, or too large).
fn bad_seq_field(text: &str) -> bool {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) else {
        return false;
    };
    ["since", "from", "to", "seq"].iter().any(|field| {
        map.get(*field)
            .is_some_and(|v| v.is_number() && v.as_u64().is_none_or(|n| n > MAX_SEQ))
    })
}

struct Writer {
    sink: SplitSink<WebSocket, Message>,
    out: Arc<Outbound>,
    subs: Subs,
    injector: Option<FaultInjector<Utf8Bytes>>,
    metrics: Arc<Metrics>,
    sent: u64,
    /// Live frames written since the last update of the shared counter.
    delivered: u64,
    delayed: BTreeMap<(Instant, u64), Utf8Bytes>,
    delay_seq: u64,
    live_since_tick: bool,
}

enum End {
    /// Keep going.
    No,
    /// Stop, dropping the socket without a close frame.
    Cut,
    /// Stop (the socket failed or a close frame was sent).
    Done,
}

impl Writer {
    async fn run(
        mut self,
        heartbeat_ms: u64,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
        grace: Duration,
    ) {
        let heartbeat = Duration::from_millis(heartbeat_ms.max(1));
        let mut tick = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let cut_ms = self.injector.as_ref().map_or(0, |i| i.spec().cut_every_ms);
        let cut_at = (cut_ms > 0).then(|| Instant::now() + Duration::from_millis(cut_ms));
        let mut queues = Queues::default();
        let end = loop {
            let next_delay = self.delayed.first_key_value().map(|((t, _), _)| *t);
            let mut heads = false;
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    break self.finish(&mut queues, 1001, "server shutting down", grace).await;
                }
                () = sleep_until(cut_at) => {
                    break End::Cut;
                }
                () = self.out.wake.notified() => {}
                _ = tick.tick() => heads = true,
                () = sleep_until(next_delay) => {}
            }
            let close = self.out.take(&mut queues);
            let mut end = End::No;
            if heads {
                end = self.heads().await;
            }
            if matches!(end, End::No) {
                end = self.drain(&mut queues).await;
            }
            if matches!(end, End::No) {
                if let Some((code, reason)) = close {
                    break self.finish(&mut queues, code, reason, grace).await;
                }
                if self.sink.flush().await.is_err() {
                    break End::Done;
                }
            }
            Metrics::add(
                &self.metrics.deliveries,
                std::mem::take(&mut self.delivered),
            );
            if !matches!(end, End::No) {
                break end;
            }
        };
        Metrics::add(&self.metrics.deliveries, self.delivered);
        if matches!(end, End::Cut) {
            Metrics::inc(&self.metrics.cuts);
            tracing::debug!(conn = self.out.id, "connection cut by fault injection");
        }
        self.out.shut();
    }

    /// Sends what is queued, then a close frame.
    async fn finish(
        &mut self,
        queues: &mut Queues,
        code: u16,
        reason: &'static str,
        grace: Duration,
    ) -> End {
        let _ = tokio::time::timeout(grace, async {
            self.out.take(queues);
            for f in queues.control.drain(..) {
                if self.sink.feed(Message::Text(f)).await.is_err() {
                    return;
                }
            }
            let _ = self
                .sink
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: Utf8Bytes::from_static(reason),
                })))
                .await;
        })
        .await;
        End::Done
    }

    async fn feed(&mut self, frame: Utf8Bytes, live: bool) -> End {
        if self.sink.feed(Message::Text(frame)).await.is_err() {
            return End::Done;
        }
        if live {
            self.delivered += 1;
        }
        self.sent += 1;
        let cut_every = self
            .injector
            .as_ref()
            .map_or(0, |i| i.spec().cut_every_frames);
        if cut_every > 0 && self.sent >= cut_every {
            let _ = self.sink.flush().await;
            return End::Cut;
        }
        End::No
    }

    async fn heads(&mut self) -> End {
        if let Some(injector) = self.injector.as_mut() {
            // Frames held for reordering are released once the stream has
            // been idle for a whole heartbeat interval.
            if !self.live_since_tick && injector.has_held() {
                let mut out = Vec::new();
                injector.flush(&mut out);
                for f in out {
                    let end = self.feed(f, true).await;
                    if !matches!(end, End::No) {
                        return end;
                    }
                }
            }
        }
        self.live_since_tick = false;
        let heads: BTreeMap<StreamName, HeadEntry> = self
            .subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(name, hub)| {
                (
                    name.clone(),
                    HeadEntry {
                        seq: hub.head(),
                        epoch: hub.epoch(),
                    },
                )
            })
            .collect();
        // Sent also without subscriptions: a client that only publishes
        // learns from it that the connection is alive (section 5.5).
        self.feed(text(&ServerFrame::<()>::Head { heads }), false)
            .await
    }

    async fn drain(&mut self, queues: &mut Queues) -> End {
        while let Some(f) = queues.control.pop_front() {
            let end = self.feed(f, false).await;
            if !matches!(end, End::No) {
                return end;
            }
        }
        if !queues.live.is_empty() {
            self.live_since_tick = true;
        }
        let now = Instant::now();
        let mut ready = Vec::with_capacity(queues.live.len());
        match self.injector.as_mut() {
            None => ready.extend(queues.live.drain(..)),
            Some(injector) => {
                let before = injector.dropped();
                let mut out = Vec::new();
                for f in queues.live.drain(..) {
                    injector.push(f, &mut out);
                }
                Metrics::add(&self.metrics.fault_dropped, injector.dropped() - before);
                for f in out {
                    let delay = injector.delay_ms();
                    // The delay line is bounded like the live queue: past
                    // it, frames go out at once.
                    if delay == 0 || self.delayed.len() >= MAX_DELAYED {
                        ready.push(f);
                    } else {
                        self.delay_seq += 1;
                        self.delayed
                            .insert((now + Duration::from_millis(delay), self.delay_seq), f);
                    }
                }
            }
        }
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            ready.push(entry.remove());
        }
        for f in ready {
            let end = self.feed(f, true).await;
            if !matches!(end, End::No) {
                return end;
            }
        }
        End::No
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
