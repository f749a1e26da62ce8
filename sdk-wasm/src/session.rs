//! `Session`: the whole client, for the package's `Client` class.

use crate::prelude::*;
use seqsync_core::protocol::ErrorCode;
use seqsync_core::{
    CloseReason, DeliveryMode, Error, Millis, PublishError, PublishId, ResetReason, SeqRange,
    SessionConfig, SessionEvent, StartAt, StreamName, SubscribeOptions, Transmit,
};
use wasm_bindgen::prelude::*;

#[cfg(feature = "foreign")]
mod foreign;

#[cfg(feature = "foreign")]
use crate::TRANSMIT_FOREIGN;
use crate::{
    EVENT_CLOSED, EVENT_CONNECTED, EVENT_CONNECTING, EVENT_DISCONNECTED, EVENT_MESSAGE,
    EVENT_POSITION, EVENT_PUBLISH_ACKED, EVENT_PUBLISH_FAILED, EVENT_REFUSED, EVENT_SERVER_ERROR,
    READY_DELIVER, READY_ERROR, READY_EVENTS, READY_TIMEOUT, READY_TRANSMIT, SLOT_A, SLOT_ARG,
    SLOT_B, SLOT_C, SLOT_CONN, SLOT_DEADLINE, SLOT_FLAGS, SLOT_KIND, SLOT_MORE, SLOT_STREAM,
    SLOT_TRANSMIT, Scratch, TRANSMIT_CONNECT, TRANSMIT_DISCONNECT, TRANSMIT_SEND, core_config,
    count, handle_id, history_messages, message_seq, millis, new_scratch, optional_epoch, position,
    required_epoch, stream_stats, unknown_stream, whole, write_event,
};

/// The number of options the constructor reads (see [`Session::new`]).
const OPTIONS: usize = 19;

/// The client's connection policy and every stream, driven by numbers: the
/// core's `Session` with JavaScript payloads.
#[wasm_bindgen]
pub struct Session {
    inner: seqsync_core::Session<JsValue>,
    /// One event of lookahead, so `pollEvent` can say whether more follow.
    next: Option<SessionEvent<JsValue>>,
    /// One transmit of lookahead, so inputs can say whether any is queued.
    next_transmit: Option<Transmit>,
    deadline: Option<Millis>,
    scratch: Scratch,
    error: &'static str,
    /// The code of the last `error` frame when this version does not know
    /// it (`ErrorCode::Unknown`): the events that frame causes come out of
    /// that one input, and [`Session::code`] names them with it.
    unknown_code: String,
    /// The data and id of the last foreign publish request `pollTransmit`
    /// returned, until `foreignData` and `foreignId` take them.
    #[cfg(feature = "foreign")]
    foreign_data: String,
    #[cfg(feature = "foreign")]
    foreign_id: String,
}

#[wasm_bindgen]
impl Session {
    /// A session that starts connecting at once (drain `pending()`).
    ///
    /// `seed`: 32 bytes from a CSPRNG (`crypto.getRandomValues`): publish
    /// ids are drawn from it. `endpoints`: the server URLs, tried in turn.
    /// `options`: up to 19 numbers, NaN (or a negative number) for the
    /// default, in this order: reconnectInitialMs, reconnectMaxMs,
    /// stableAfterMs, connectTimeoutMs, initialConnectTimeoutMs,
    /// heartbeatTimeoutMs, silenceTimeoutMs, publishTimeoutMs,
    /// maxPendingPublishes, maxPublishBytes, maxFrameBytes,
    /// persistIntervalMs, then the sequencer's window, gapTimeoutMs,
    /// requestTimeoutMs, maxBackoffMs, stallAfterAttempts, maxFetch,
    /// maxStreams.
    ///
    /// # Errors
    /// A seed that is not 32 bytes, or no endpoint.
    #[wasm_bindgen(constructor)]
    pub fn new(
        now: f64,
        seed: &[u8],
        endpoints: Vec<String>,
        token: Option<String>,
        options: &[f64],
    ) -> Result<Session, JsError> {
        let seed = seed_of(seed)?;
        let config = session_config(endpoints, token, options);
        seqsync_core::Session::new(config, seed, millis(now))
            .map(Session::around)
            .map_err(|_| no_endpoint())
    }

    // ---- getters -------------------------------------------------------------

    /// Address of the scratch area (15 f64 slots) in WASM memory.
    #[wasm_bindgen(js_name = scratchPtr)]
    pub fn scratch_ptr(&self) -> u32 {
        self.scratch.as_ptr() as usize as u32
    }

    /// The code of the last refused `subscribe` or `publish`:
    /// `invalid_stream`, `already_subscribed`, `too_many_streams`,
    /// `invalid_subscription`, `closed`, `too_many_pending`,
    /// `publish_too_large`, `unsupported` (a publish to a foreign server
    /// without a publish request).
    #[wasm_bindgen(js_name = lastError)]
    pub fn last_error(&self) -> String {
        self.error.to_string()
    }

    /// The code an event names with this index (`ErrorCode::index`) as the
    /// server wrote it: a code this version does not know is kept as it
    /// came, not reported as `unknown`.
    pub fn code(&self, index: u32) -> String {
        match ErrorCode::ALL.get(index as usize) {
            Some(code) => code.as_str().to_string(),
            None if !self.unknown_code.is_empty() => self.unknown_code.clone(),
            None => ErrorCode::Unknown.as_str().to_string(),
        }
    }

    /// Largest frame to accept from the server, in bytes of UTF-8.
    #[wasm_bindgen(js_name = maxFrameBytes)]
    pub fn max_frame_bytes(&self) -> f64 {
        self.inner.config().max_frame_bytes as f64
    }

    /// Counters of a stream, as `Core::stats`.
    #[wasm_bindgen(js_name = streamStats)]
    pub fn stream_stats(&self, handle: f64) -> Option<Vec<f64>> {
        self.inner
            .sequencer()
            .stats(handle_id(handle)?)
            .map(stream_stats)
    }

    /// Client-wide counters: connects, disconnects, connectFailures, frames,
    /// bytes, badFrames, framesSent, bytesSent, historyFrames, historyBytes,
    /// historyMessages, historyDuplicates, published, publishRetries,
    /// publishFailures, pendingPublishes, resubscribes, staleAnswers,
    /// refusedRequests.
    pub fn stats(&self) -> Vec<f64> {
        let s = self.inner.stats();
        [
            s.connects,
            s.disconnects,
            s.connect_failures,
            s.frames,
            s.bytes,
            s.bad_frames,
            s.frames_sent,
            s.bytes_sent,
            s.history_frames,
            s.history_bytes,
            s.history_messages,
            s.history_duplicates,
            s.published,
            s.publish_retries,
            s.publish_failures,
            s.pending_publishes,
            s.resubscribes,
            s.stale_answers,
            s.refused_requests,
        ]
        .map(|n| n as f64)
        .to_vec()
    }

    /// What is ready to drain, without any input (after the constructor).
    pub fn pending(&mut self) -> u32 {
        self.ready()
    }

    // ---- inputs from the socket and the clock --------------------------------

    /// The socket of connection `conn` opened.
    pub fn opened(&mut self, now: f64, conn: f64) -> u32 {
        self.inner.handle_opened(millis(now), conn_id(conn));
        self.ready()
    }

    /// The socket of connection `conn` closed or failed.
    pub fn closed(&mut self, now: f64, conn: f64, reason: &str) -> u32 {
        self.inner.handle_closed(millis(now), conn_id(conn), reason);
        self.ready()
    }

    /// A frame of `bytes` arrived; call it before the frame's own input
    /// (`deliver` includes it).
    pub fn received(&mut self, now: f64, bytes: f64) {
        self.inner
            .handle_received(millis(now), whole(bytes).map_or(0, count));
    }

    /// A frame that could not be used (not text, too large, not JSON).
    #[wasm_bindgen(js_name = badFrame)]
    pub fn bad_frame(&mut self, now: f64) {
        self.inner.handle_bad_frame(millis(now));
    }

    /// The hottest path, for a `msg` frame whose payload stays in
    /// JavaScript: counts the frame (`bytes`), and when `seq` is the next in
    /// order with nothing waiting, takes it as delivered and sets
    /// [`READY_DELIVER`]: the caller hands its payload to the application.
    /// Without that flag nothing happened to the stream: pass the message
    /// to `deliver` (with `bytes` -1, as it was counted here).
    #[wasm_bindgen(js_name = inOrder)]
    pub fn in_order(&mut self, now: f64, handle: f64, seq: f64, epoch: f64, bytes: f64) -> u32 {
        self.received(now, bytes);
        if self.next.is_some() {
            return 0;
        }
        let taken = match (handle_id(handle), message_seq(seq), optional_epoch(epoch)) {
            (Some(id), Ok(seq), Ok(epoch)) => self
                .inner
                .handle_message_in_order(millis(now), id, seq, epoch)
                .unwrap_or(false),
            _ => false,
        };
        if taken {
            self.ready() | READY_DELIVER
        } else {
            0
        }
    }

    /// The hot path: a `msg` frame of `bytes` for stream `handle` (`epoch`
    /// -1 when it has none), then the first event. Returns that event's
    /// payload; its kind and numbers are in the scratch area (slot 0 is 0
    /// when there is none), the flags in slot 8.
    pub fn deliver(
        &mut self,
        now: f64,
        handle: f64,
        seq: f64,
        epoch: f64,
        data: JsValue,
        bytes: f64,
    ) -> JsValue {
        let at = millis(now);
        if bytes >= 0.0 {
            self.received(now, bytes);
        }
        let lookahead = self.next.is_some();
        let result = (|| {
            let id = handle_id(handle).ok_or_else(unknown_stream)?;
            let seq = message_seq(seq)?;
            let epoch = optional_epoch(epoch)?;
            if lookahead {
                // An event is already waiting: this message goes behind it.
                self.inner.handle_message(at, id, seq, epoch, data)?;
                Ok(None)
            } else {
                self.inner.handle_message_direct(at, id, seq, epoch, data)
            }
        })();
        let flags = match result {
            Ok(Some(payload)) => {
                let flags = self.ready() | READY_EVENTS;
                let s = &mut self.scratch;
                s[SLOT_FLAGS] = f64::from(flags);
                s[SLOT_MORE] = if self.next.is_some() { 1.0 } else { 0.0 };
                s[SLOT_KIND] = f64::from(EVENT_MESSAGE);
                s[SLOT_STREAM] = handle;
                s[SLOT_A] = seq;
                return payload;
            }
            Ok(None) => self.ready(),
            Err(_) => self.bad(at),
        };
        self.scratch[SLOT_FLAGS] = f64::from(flags);
        if flags & READY_EVENTS == 0 {
            self.scratch[SLOT_KIND] = 0.0;
            return JsValue::UNDEFINED;
        }
        self.poll_event()
    }

    /// A `snapshot` answer; `reference` is its `ref`.
    pub fn snapshot(
        &mut self,
        now: f64,
        handle: f64,
        seq: f64,
        epoch: f64,
        state: JsValue,
        reference: Option<String>,
    ) -> u32 {
        let at = millis(now);
        let result = (|| {
            let id = handle_id(handle).ok_or_else(unknown_stream)?;
            let seq = position(seq)?;
            let epoch = required_epoch(epoch)?;
            self.inner
                .handle_snapshot(at, id, seq, epoch, state, reference.as_deref())
        })();
        self.frame(at, result)
    }

    /// A `subscribed` answer; `reference` is its `ref`.
    pub fn subscribed(
        &mut self,
        now: f64,
        handle: f64,
        epoch: f64,
        head: f64,
        reference: Option<String>,
    ) -> u32 {
        let at = millis(now);
        let result = (|| {
            let id = handle_id(handle).ok_or_else(unknown_stream)?;
            let head = position(head)?;
            let epoch = required_epoch(epoch)?;
            self.inner
                .handle_subscribed(at, id, epoch, head, reference.as_deref())
        })();
        self.frame(at, result)
    }

    /// A `history` answer covering `from..=to`: `seqs[i]` is the seq of
    /// `data[i]`; `epoch` -1 when the frame has none.
    #[allow(clippy::too_many_arguments)]
    pub fn history(
        &mut self,
        now: f64,
        handle: f64,
        from: f64,
        to: f64,
        epoch: f64,
        seqs: Vec<f64>,
        data: Vec<JsValue>,
        reference: Option<String>,
    ) -> u32 {
        let at = millis(now);
        let result = (|| {
            let id = handle_id(handle).ok_or_else(unknown_stream)?;
            let range = SeqRange::new(position(from)?, position(to)?)?;
            let epoch = optional_epoch(epoch)?;
            let messages = history_messages(seqs, data)?;
            self.inner
                .handle_history(at, id, range, epoch, messages, reference.as_deref())
        })();
        self.frame(at, result)
    }

    /// One stream's entry of a `head` heartbeat; `epoch` -1 when unknown.
    pub fn head(&mut self, now: f64, handle: f64, head: f64, epoch: f64) -> u32 {
        let at = millis(now);
        let result = (|| {
            let id = handle_id(handle).ok_or_else(unknown_stream)?;
            let head = position(head)?;
            let epoch = optional_epoch(epoch)?;
            self.inner.handle_head(at, id, head, epoch)
        })();
        self.frame(at, result)
    }

    /// A `reset` frame (`reason` as on the wire, `earliest` -1 when absent).
    pub fn reset(
        &mut self,
        now: f64,
        handle: f64,
        reason: &str,
        earliest: f64,
        reference: Option<String>,
    ) -> u32 {
        let at = millis(now);
        let result = (|| {
            let id = handle_id(handle).ok_or_else(unknown_stream)?;
            let earliest = if earliest == -1.0 {
                None
            } else {
                Some(position(earliest)?)
            };
            let reason = ResetReason::from_wire(reason);
            self.inner
                .handle_reset(at, id, reason, earliest, reference.as_deref())
        })();
        self.frame(at, result)
    }

    /// An `ack` frame.
    pub fn ack(&mut self, now: f64, id: &str, stream: &str, seq: f64) -> u32 {
        let at = millis(now);
        let result = message_seq(seq).map(|seq| self.inner.handle_ack(at, id, stream, seq));
        self.frame(at, result)
    }

    /// An `error` frame; `reference` is its `ref`.
    pub fn error(&mut self, now: f64, code: &str, message: &str, reference: Option<String>) -> u32 {
        let wire = code;
        let code = ErrorCode::from_wire(wire);
        if code == ErrorCode::Unknown {
            self.unknown_code = wire.to_string();
        }
        self.inner
            .handle_error(millis(now), code, message, reference.as_deref());
        self.ready()
    }

    /// The timer fired.
    pub fn timeout(&mut self, now: f64) -> u32 {
        self.inner.handle_timeout(millis(now));
        self.ready()
    }

    // ---- application commands ------------------------------------------------

    /// Starts following `name`: from a snapshot (or the position given to
    /// `resumeFrom`), or after `since` (with its `epoch` when known).
    /// Returns the stream handle, or -1 with the reason in `lastError()`.
    pub fn subscribe(
        &mut self,
        now: f64,
        name: &str,
        since: Option<f64>,
        epoch: Option<f64>,
        latest: bool,
    ) -> f64 {
        let result = (|| {
            let start = match since {
                None => StartAt::Snapshot,
                Some(since) => StartAt::After {
                    seq: position(since)?,
                    epoch: epoch.map(required_epoch).transpose()?,
                },
            };
            let mode = if latest {
                DeliveryMode::Latest
            } else {
                DeliveryMode::Ordered
            };
            let options = SubscribeOptions { start, mode };
            self.inner.subscribe(millis(now), name, options)
        })();
        self.verb(result.map(|id| id.to_raw() as f64))
    }

    /// Stops following a stream; its position is reported. Unknown handles
    /// are ignored.
    pub fn unsubscribe(&mut self, now: f64, handle: f64) -> u32 {
        if let Some(id) = handle_id(handle) {
            if self.inner.unsubscribe(millis(now), id).is_ok() {
                // The stream's events still in the lookahead go with it.
                let about = match &self.next {
                    Some(SessionEvent::Stream(event)) => Some(event.stream()),
                    Some(SessionEvent::Refused { stream, .. }) => Some(*stream),
                    _ => None,
                };
                if about == Some(id) {
                    self.next = self.inner.poll_event();
                }
            }
        }
        self.ready()
    }

    /// Publishes `data`, the payload's JSON text, to `stream`. Returns the
    /// publish handle that its `EVENT_PUBLISH_ACKED` or
    /// `EVENT_PUBLISH_FAILED` names, or -1 with the reason in `lastError()`.
    pub fn publish(&mut self, now: f64, stream: &str, data: &str) -> f64 {
        let result = self.inner.publish(millis(now), stream, data);
        self.verb(result.map(|id| id.to_raw() as f64))
    }

    /// A resume position kept from an earlier run (see
    /// `Session::resume_from`); invalid values are ignored.
    #[wasm_bindgen(js_name = resumeFrom)]
    pub fn resume_from(&mut self, name: &str, seq: f64, epoch: f64) {
        if let (Ok(name), Ok(seq), Ok(epoch)) =
            (StreamName::new(name), position(seq), required_epoch(epoch))
        {
            self.inner.resume_from([(name, seq, epoch)]);
        }
    }

    /// Reports every stream's changed position now.
    pub fn checkpoint(&mut self, now: f64) -> u32 {
        self.inner.checkpoint(millis(now));
        self.ready()
    }

    /// Closes cleanly: pending publishes are still retried until each ends.
    pub fn close(&mut self, now: f64) -> u32 {
        self.inner.close(millis(now));
        self.ready()
    }

    /// Closes at once: pending publishes fail.
    pub fn abort(&mut self, now: f64) -> u32 {
        self.inner.abort(millis(now));
        self.ready()
    }

    // ---- outputs -------------------------------------------------------------

    /// The next thing to do with the socket or, for a session over a
    /// foreign server, a request for its adapter: returns the URL
    /// (connect), the text (send), the reason (disconnect) or the stream
    /// (foreign); the kind and numbers go to scratch slots 9 to 14.
    #[wasm_bindgen(js_name = pollTransmit)]
    pub fn poll_transmit(&mut self) -> Option<String> {
        let transmit = match self.next_transmit.take() {
            Some(transmit) => transmit,
            None => self.inner.poll_transmit()?,
        };
        let (kind, text) = match transmit {
            Transmit::Send { text } => (TRANSMIT_SEND, text),
            #[cfg(feature = "foreign")]
            Transmit::Foreign { id, request } => {
                (TRANSMIT_FOREIGN, self.foreign_request(id, request))
            }
            // Only a session over a foreign server asks these, and a build
            // without the feature makes none.
            #[cfg(not(feature = "foreign"))]
            Transmit::Foreign { .. } => return self.poll_transmit(),
            Transmit::Connect {
                conn,
                endpoint,
                url,
            } => {
                let s = &mut self.scratch;
                s[SLOT_CONN] = conn.0 as f64;
                s[SLOT_ARG] = endpoint as f64;
                (TRANSMIT_CONNECT, url)
            }
            Transmit::Disconnect { conn, code, reason } => {
                let s = &mut self.scratch;
                s[SLOT_CONN] = conn.0 as f64;
                s[SLOT_ARG] = f64::from(code);
                (TRANSMIT_DISCONNECT, reason.to_string())
            }
        };
        self.scratch[SLOT_TRANSMIT] = f64::from(kind);
        Some(text)
    }

    /// The next event: its payload (message data, snapshot state, a
    /// reason, a message or a stream name, see `EVENT_*`) or `undefined`;
    /// its kind and numbers go to the scratch area.
    #[wasm_bindgen(js_name = pollEvent)]
    pub fn poll_event(&mut self) -> JsValue {
        let event = match self.next.take() {
            Some(event) => Some(event),
            None => self.inner.poll_event(),
        };
        self.next = self.inner.poll_event();
        let s = &mut self.scratch;
        s[SLOT_MORE] = if self.next.is_some() { 1.0 } else { 0.0 };
        let Some(event) = event else {
            s[SLOT_KIND] = 0.0;
            return JsValue::UNDEFINED;
        };
        let none = JsValue::UNDEFINED;
        let (kind, payload) = match event {
            SessionEvent::Stream(event) => write_event(s, event),
            SessionEvent::Connecting { endpoint, attempt } => {
                s[SLOT_A] = endpoint as f64;
                s[SLOT_B] = f64::from(attempt);
                (EVENT_CONNECTING, none)
            }
            SessionEvent::Connected { endpoint } => {
                s[SLOT_A] = endpoint as f64;
                (EVENT_CONNECTED, none)
            }
            SessionEvent::Disconnected {
                reason,
                retry_in_ms,
            } => {
                s[SLOT_A] = retry_in_ms as f64;
                (EVENT_DISCONNECTED, JsValue::from(reason))
            }
            SessionEvent::Closed { reason } => match reason {
                CloseReason::Closed => {
                    s[SLOT_A] = 0.0;
                    (EVENT_CLOSED, none)
                }
                CloseReason::ConnectFailed { reason } => {
                    s[SLOT_A] = 1.0;
                    (EVENT_CLOSED, JsValue::from(reason))
                }
            },
            SessionEvent::PublishAcked { publish, seq } => {
                s[SLOT_A] = publish_number(publish);
                s[SLOT_B] = seq.get() as f64;
                (EVENT_PUBLISH_ACKED, none)
            }
            SessionEvent::PublishFailed { publish, error } => {
                s[SLOT_A] = publish_number(publish);
                let (why, payload) = match error {
                    PublishError::Refused { code, message } => {
                        s[SLOT_C] = code.index() as f64;
                        (0.0, JsValue::from(message))
                    }
                    PublishError::TimedOut => (1.0, none),
                    PublishError::Closed => (2.0, none),
                    PublishError::Failed { reason, status } => {
                        s[SLOT_C] = status.map_or(-1.0, f64::from);
                        (3.0, JsValue::from(reason))
                    }
                };
                s[SLOT_B] = why;
                (EVENT_PUBLISH_FAILED, payload)
            }
            SessionEvent::Position { stream, seq, epoch } => {
                s[SLOT_A] = seq.get() as f64;
                s[SLOT_B] = epoch.0 as f64;
                (EVENT_POSITION, JsValue::from_str(stream.as_str()))
            }
            SessionEvent::Refused {
                stream,
                code,
                message,
            } => {
                s[SLOT_STREAM] = stream.to_raw() as f64;
                s[SLOT_A] = code.index() as f64;
                (EVENT_REFUSED, JsValue::from(message))
            }
            SessionEvent::ServerError { code, message } => {
                s[SLOT_A] = code.index() as f64;
                (EVENT_SERVER_ERROR, JsValue::from(message))
            }
        };
        s[SLOT_KIND] = f64::from(kind);
        payload
    }
}

impl Session {
    fn around(inner: seqsync_core::Session<JsValue>) -> Session {
        Session {
            inner,
            next: None,
            next_transmit: None,
            deadline: None,
            scratch: new_scratch(),
            error: "",
            unknown_code: String::new(),
            #[cfg(feature = "foreign")]
            foreign_data: String::new(),
            #[cfg(feature = "foreign")]
            foreign_id: String::new(),
        }
    }

    /// The scratch area, for a shell written in Rust (the `websys`
    /// prototype).
    #[cfg(feature = "websys")]
    pub(crate) fn scratch(&self) -> &[f64; crate::SLOTS] {
        &self.scratch
    }

    /// Ends a frame's input: a frame the core refused is counted as bad.
    fn frame(&mut self, now: Millis, result: Result<(), Error>) -> u32 {
        match result {
            Ok(()) => self.ready(),
            Err(_) => self.bad(now),
        }
    }

    fn bad(&mut self, now: Millis) -> u32 {
        self.inner.handle_bad_frame(now);
        self.ready() | READY_ERROR
    }

    /// Ends a verb that returns a handle: the flags go to scratch slot 8; a
    /// refusal is -1 with its code in `lastError()`.
    fn verb(&mut self, result: Result<f64, Error>) -> f64 {
        let value = match result {
            Ok(value) => value,
            Err(error) => {
                self.error = verb_error_code(&error);
                -1.0
            }
        };
        let flags = self.ready();
        self.scratch[SLOT_FLAGS] = f64::from(flags);
        value
    }

    /// What the last input left to drain. One transmit and one event are
    /// moved into the lookahead so that the answer is exact.
    fn ready(&mut self) -> u32 {
        let mut flags = 0;
        if self.next.is_none() {
            self.next = self.inner.poll_event();
        }
        if self.next.is_some() {
            flags |= READY_EVENTS;
        }
        if self.next_transmit.is_none() {
            self.next_transmit = self.inner.poll_transmit();
        }
        if self.next_transmit.is_some() {
            flags |= READY_TRANSMIT;
        }
        let deadline = self.inner.poll_timeout();
        if deadline != self.deadline {
            self.deadline = deadline;
            self.scratch[SLOT_DEADLINE] = deadline.map_or(-1.0, |d| d.0 as f64);
            flags |= READY_TIMEOUT;
        }
        flags
    }
}

fn seed_of(seed: &[u8]) -> Result<[u8; 32], JsError> {
    seed.try_into()
        .map_err(|_| JsError::new("the seed must be 32 bytes"))
}

fn no_endpoint() -> JsError {
    JsError::new("no endpoint to connect to")
}

/// The session's configuration from the constructor's numbers (see
/// [`Session::new`]).
fn session_config(endpoints: Vec<String>, token: Option<String>, options: &[f64]) -> SessionConfig {
    let mut values = [None; OPTIONS];
    for (value, given) in values.iter_mut().zip(options) {
        *value = Some(*given);
    }
    let n = |i: usize| values[i].and_then(whole);
    let d = SessionConfig::default();
    SessionConfig {
        endpoints,
        token,
        core: core_config([
            values[12], values[13], values[14], values[15], values[16], values[17], values[18],
        ]),
        reconnect_initial_ms: n(0).unwrap_or(d.reconnect_initial_ms),
        reconnect_max_ms: n(1).unwrap_or(d.reconnect_max_ms),
        stable_after_ms: n(2).unwrap_or(d.stable_after_ms),
        connect_timeout_ms: n(3).unwrap_or(d.connect_timeout_ms),
        initial_connect_timeout_ms: n(4).unwrap_or(d.initial_connect_timeout_ms),
        heartbeat_timeout_ms: n(5).unwrap_or(d.heartbeat_timeout_ms),
        silence_timeout_ms: n(6).unwrap_or(d.silence_timeout_ms),
        publish_timeout_ms: n(7).unwrap_or(d.publish_timeout_ms),
        max_pending_publishes: n(8).map_or(d.max_pending_publishes, count),
        max_publish_bytes: n(9).map_or(d.max_publish_bytes, count),
        max_frame_bytes: n(10).map_or(d.max_frame_bytes, count),
        persist_interval_ms: n(11).unwrap_or(d.persist_interval_ms),
    }
}

/// The code of a refused `subscribe` or `publish`.
fn verb_error_code(error: &Error) -> &'static str {
    match error {
        Error::InvalidStreamName { .. } => "invalid_stream",
        Error::AlreadySubscribed { .. } => "already_subscribed",
        Error::TooManyStreams { .. } => "too_many_streams",
        Error::Closed => "closed",
        Error::TooManyPendingPublishes { .. } => "too_many_pending",
        Error::PublishTooLarge { .. } => "publish_too_large",
        Error::Unsupported { .. } => "unsupported",
        _ => "invalid_subscription",
    }
}

fn conn_id(conn: f64) -> seqsync_core::ConnId {
    seqsync_core::ConnId(whole(conn).unwrap_or(u64::MAX))
}

fn publish_number(publish: PublishId) -> f64 {
    publish.to_raw() as f64
}
