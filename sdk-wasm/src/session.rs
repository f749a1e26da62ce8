//! `Session`: the whole client, for the package's `Client` class.

use alloc::borrow::Cow;

use crate::prelude::*;

use seqsync_core::protocol::{ErrorCode, Fields, InboundFrame, StreamKey, split_unknown_code};
use seqsync_core::{
    DeliveryMode, Error, Input, LimitSide, Millis, PublishError, PublishId, SessionConfig,
    SessionEvent, StartAt, StopReason, StreamName, SubscribeOptions, Transmit,
};
use wasm_bindgen::prelude::*;

#[cfg(feature = "foreign")]
mod foreign;

#[cfg(feature = "foreign")]
use crate::TRANSMIT_FOREIGN;
use crate::{
    COMMAND_ABORT, COMMAND_CLOSE, COMMAND_CONNECT, EVENT_CLOSED, EVENT_CONNECTED, EVENT_CONNECTING,
    EVENT_DISCONNECTED, EVENT_POSITION, EVENT_PUBLISH_ACKED, EVENT_PUBLISH_FAILED, EVENT_REFUSED,
    EVENT_SERVER_ERROR, EVENT_STOPPED, INPUT_CLOSED, INPUT_FRAME, INPUT_OPENED, INPUT_TIMEOUT,
    READY_DELIVER, READY_ERROR, READY_EVENTS, READY_TIMEOUT, READY_TRANSMIT, SLOT_A, SLOT_ARG,
    SLOT_B, SLOT_C, SLOT_CONN, SLOT_D, SLOT_DEADLINE, SLOT_FLAGS, SLOT_IN_CLOSE_CODE,
    SLOT_IN_EARLIEST, SLOT_IN_EPOCH, SLOT_IN_FRAME_LIMIT, SLOT_IN_FROM, SLOT_IN_HEAD, SLOT_IN_SEQ,
    SLOT_IN_STREAM, SLOT_IN_TO, SLOT_KIND, SLOT_MORE, SLOT_STREAM, SLOT_TRANSMIT, Scratch,
    TRANSMIT_CONNECT, TRANSMIT_DISCONNECT, TRANSMIT_SEND, core_config, count, handle_id,
    message_seq, millis, new_scratch, position, required_epoch, stream_stats, whole, write_event,
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
    /// The code, as the server wrote it, of the last event `pollEvent`
    /// returned with a code this version does not know
    /// (`ErrorCode::Unknown`): [`Session::code`] names that event with it.
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

    /// The code an event names with this index (`ErrorCode::index`) as the
    /// server wrote it: a code this version does not know is kept as it
    /// came, not reported as `unknown`. Index -1: the code of the last
    /// refused `subscribe` or `publish` (see [`Session::last_error`]).
    pub fn code(&self, index: i32) -> String {
        let Ok(index) = usize::try_from(index) else {
            return self.last_error();
        };
        match ErrorCode::ALL.get(index) {
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

    /// The one input: what arrived from the socket or the clock, `what`
    /// being [`INPUT_FRAME`] (a frame of `number` bytes, read by
    /// `JSON.parse`), [`INPUT_UNREADABLE`](crate::INPUT_UNREADABLE) (a frame of `number` bytes that
    /// is not text, too large, not JSON, or with a member of the wrong
    /// type: a number member that is not a whole number from 0 is one), [`INPUT_OPENED`] or [`INPUT_CLOSED`] (the socket of
    /// connection `number`; `reason` says why it closed, scratch slot 1 the
    /// close code the server sent, NaN or any number outside 1000..=4999
    /// for none) or [`INPUT_TIMEOUT`].
    ///
    /// A frame's members cross as they are, whatever its `type`; the core
    /// judges them ([`InboundFrame::from_fields`]) and routes the frame.
    /// Its numbers are in scratch slots 0 to 6 (NaN when absent): the handle of its stream (-1: `stream` names it
    /// instead), `seq`, `epoch`, `head`, `from`, `to`, `earliest`. `texts`
    /// are its `type`, `stream`, `reason`, `id`, `code`, `message` and
    /// `ref` (`undefined` when absent). A `history` frame's messages are `seqs` and `items`, a `head`
    /// frame's entries `names` and `heads` (seq and epoch of each, in
    /// turn), its `frame_limit` in scratch slot 12 (NaN when absent).
    #[allow(clippy::too_many_arguments)]
    pub fn input(
        &mut self,
        now: f64,
        what: u32,
        number: f64,
        texts: Option<Vec<JsValue>>,
        data: JsValue,
        state: JsValue,
        seqs: Option<Vec<f64>>,
        items: Option<Vec<JsValue>>,
        names: Option<Vec<JsValue>>,
        heads: Option<Vec<f64>>,
    ) -> u32 {
        let at = millis(now);
        // Every argument is consumed here, once, whatever the input: a drop
        // of each at every way out would cost bytes.
        let fields = fields(&self.scratch, texts, data, state, seqs, items, names, heads);
        let input = match what {
            INPUT_FRAME => return self.read_frame(at, number, Ok(fields)),
            INPUT_OPENED => Input::Opened {
                conn: conn_id(number),
            },
            INPUT_CLOSED => {
                let conn = conn_id(number);
                // Close codes are 1000 to 4999 (RFC 6455): anything else in
                // the slot (NaN included) was left there by an output.
                let c = self.scratch[SLOT_IN_CLOSE_CODE];
                let code = (1000.0..5000.0).contains(&c).then_some(c as u16);
                let reason = &fields.kind;
                let input = Input::Closed { conn, code, reason };
                let _ = self.inner.handle_input(at, input);
                return self.ready();
            }
            INPUT_TIMEOUT => Input::Timeout,
            _ => return self.read_frame(at, number, Err(malformed())),
        };
        let _ = self.inner.handle_input(at, input);
        self.ready()
    }

    /// The hottest path, for a `msg` frame of `bytes` whose payload stays
    /// in JavaScript: when `seq` is the next in order with nothing waiting,
    /// the frame is counted, the message taken as delivered and
    /// [`READY_DELIVER`] set: the caller hands its payload to the
    /// application. Without that flag nothing happened: the frame goes to
    /// `input`. `epoch` is NaN when the frame has none.
    #[wasm_bindgen(js_name = inOrder)]
    pub fn in_order(&mut self, now: f64, handle: f64, seq: f64, epoch: f64, bytes: f64) -> u32 {
        if self.next.is_some() {
            return 0;
        }
        let at = millis(now);
        let epoch = if epoch.is_nan() {
            Ok(None)
        } else {
            required_epoch(epoch).map(Some)
        };
        let taken = match (handle_id(handle), message_seq(seq), epoch) {
            (Some(id), Ok(seq), Ok(epoch)) => self
                .inner
                .handle_message_in_order(at, id, seq, epoch)
                .unwrap_or(false),
            _ => false,
        };
        if !taken {
            return 0;
        }
        self.inner
            .handle_received(at, whole(bytes).map_or(0, count));
        self.ready() | READY_DELIVER
    }

    // ---- application commands ------------------------------------------------

    /// Starts following `name`: from a snapshot (or the position given to
    /// `resumeFrom`), or after `since` (with its `epoch` when known).
    /// Returns the stream handle, or -1 with the reason in `code(-1)`.
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
    /// `EVENT_PUBLISH_FAILED` names, or -1 with the reason in `code(-1)`.
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

    /// An application command, `what` being [`COMMAND_CLOSE`] (cleanly:
    /// pending publishes are still retried until each ends; while stopped
    /// they fail at once), [`COMMAND_ABORT`] (at once: pending publishes
    /// fail, why 2, "may have been stored"), [`COMMAND_CONNECT`] (again, at
    /// once, after a disconnect or a give-up; refused once closing, which
    /// the shell checks first) or [`COMMAND_DISCONNECT`] (closes the
    /// connection, no attempt until connect). One entry for the four: an
    /// export each costs every page its glue.
    pub fn command(&mut self, now: f64, what: u32) -> u32 {
        let at = millis(now);
        match what {
            COMMAND_CLOSE => self.inner.close(at),
            COMMAND_ABORT => self.inner.abort(at),
            COMMAND_CONNECT => {
                let _ = self.inner.connect(at);
            }
            _ => self.inner.disconnect(at),
        }
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
            SessionEvent::Closed { .. } => (EVENT_CLOSED, none),
            SessionEvent::Stopped { reason } => match reason {
                StopReason::Disconnected => {
                    s[SLOT_A] = 0.0;
                    (EVENT_STOPPED, none)
                }
                StopReason::GaveUp { reason } => {
                    s[SLOT_A] = 1.0;
                    (EVENT_STOPPED, JsValue::from(reason))
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
                        (0.0, with_code(&mut self.unknown_code, code, message))
                    }
                    PublishError::TimedOut => (1.0, none),
                    PublishError::Closed => (2.0, none),
                    PublishError::Failed { reason, status } => {
                        s[SLOT_C] = status.map_or(-1.0, f64::from);
                        (3.0, JsValue::from(reason))
                    }
                    PublishError::TooLarge { len, limit } => {
                        s[SLOT_C] = len as f64;
                        s[SLOT_D] = limit.map_or(-1.0, |l| l as f64);
                        (4.0, none)
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
                (
                    EVENT_REFUSED,
                    with_code(&mut self.unknown_code, code, message),
                )
            }
            SessionEvent::ServerError { code, message } => {
                s[SLOT_A] = code.index() as f64;
                (
                    EVENT_SERVER_ERROR,
                    with_code(&mut self.unknown_code, code, message),
                )
            }
        };
        s[SLOT_KIND] = f64::from(kind);
        payload
    }
}

/// Inputs of a foreign server's adapter, which reads frames itself.
#[cfg(feature = "foreign")]
#[wasm_bindgen]
impl Session {
    /// A frame of `bytes` arrived; call it before the frame's own input.
    pub fn received(&mut self, now: f64, bytes: f64) {
        self.inner
            .handle_received(millis(now), whole(bytes).map_or(0, count));
    }

    /// A frame that could not be used (not text, too large, not JSON).
    #[wasm_bindgen(js_name = badFrame)]
    pub fn bad_frame(&mut self, now: f64) {
        self.inner.handle_bad_frame(millis(now));
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

    /// Ends the input of a foreign server's frame, which its adapter read:
    /// a frame the core refused is counted as bad.
    #[cfg(feature = "foreign")]
    fn frame(&mut self, now: Millis, result: Result<(), Error>) -> u32 {
        match result {
            Ok(()) => self.ready(),
            Err(_) => {
                self.inner.handle_bad_frame(now);
                self.ready() | READY_ERROR
            }
        }
    }

    /// A frame of `bytes` into the core's one path: judged, counted (as bad
    /// when it could not be read or was refused) and routed there.
    fn read_frame(
        &mut self,
        now: Millis,
        bytes: f64,
        fields: Result<Fields<'static, JsValue>, Error>,
    ) -> u32 {
        let frame = fields.and_then(InboundFrame::from_fields);
        let bytes = whole(bytes).map_or(0, count);
        match self.inner.handle_input(now, Input::Frame { bytes, frame }) {
            Ok(()) => self.ready(),
            Err(_) => self.ready() | READY_ERROR,
        }
    }

    /// The socket of connection `conn` opened (for a shell written in
    /// Rust: the `websys` prototype, the tests).
    pub fn opened(&mut self, now: f64, conn: f64) -> u32 {
        let none = JsValue::UNDEFINED;
        self.input(
            now,
            INPUT_OPENED,
            conn,
            None,
            none.clone(),
            none,
            None,
            None,
            None,
            None,
        )
    }

    /// The socket of connection `conn` closed (as [`Session::opened`]).
    pub fn closed(&mut self, now: f64, conn: f64, reason: &str) -> u32 {
        self.scratch[SLOT_IN_CLOSE_CODE] = f64::NAN;
        let none = JsValue::UNDEFINED;
        let texts = Some(vec![JsValue::from_str(reason)]);
        self.input(
            now,
            INPUT_CLOSED,
            conn,
            texts,
            none.clone(),
            none,
            None,
            None,
            None,
            None,
        )
    }

    /// The timer fired (as [`Session::opened`]).
    pub fn timeout(&mut self, now: f64) -> u32 {
        let none = JsValue::UNDEFINED;
        self.input(
            now,
            INPUT_TIMEOUT,
            0.0,
            None,
            none.clone(),
            none,
            None,
            None,
            None,
            None,
        )
    }

    /// The code of the last refused `subscribe` or `publish`:
    /// `invalid_stream`, `already_subscribed`, `too_many_streams`,
    /// `invalid_subscription`, `closed`, `too_many_pending`,
    /// `publish_too_large`, `unsupported` (a publish to a foreign server
    /// without a publish request). JavaScript reads it as `code(-1)`.
    pub fn last_error(&self) -> String {
        self.error.to_string()
    }

    /// A frame's members, as a shell written in Rust read them (as
    /// [`Session::opened`]).
    pub fn frame_fields(&mut self, now: f64, bytes: f64, fields: Fields<'static, JsValue>) -> u32 {
        self.read_frame(millis(now), bytes, Ok(fields))
    }

    /// Ends a verb that returns a handle: the flags go to scratch slot 8; a
    /// refusal is -1 with its code in `code(-1)` (for `publish_too_large`
    /// the frame's size, the limit and whose it is, 1 for the server's, in
    /// slots 3 to 5).
    fn verb(&mut self, result: Result<f64, Error>) -> f64 {
        let value = match result {
            Ok(value) => value,
            Err(error) => {
                self.error = verb_error_code(&error);
                if let Error::PublishTooLarge { len, max, side } = error {
                    let s = &mut self.scratch;
                    s[SLOT_A] = len as f64;
                    s[SLOT_B] = max as f64;
                    s[SLOT_C] = f64::from(u8::from(side == LimitSide::Server));
                }
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

/// A frame's members from the crossing of [`Session::input`]: its texts
/// (`type`, `stream`, `reason`, `id`, `code`, `message`, `ref`), numbers
/// from the scratch area, payloads and lists as given. Nothing is judged
/// here: the shell refused members of the wrong type, and
/// [`InboundFrame::from_fields`] says what the rest makes.
#[allow(clippy::too_many_arguments)]
fn fields(
    scratch: &Scratch,
    texts: Option<Vec<JsValue>>,
    data: JsValue,
    state: JsValue,
    seqs: Option<Vec<f64>>,
    items: Option<Vec<JsValue>>,
    names: Option<Vec<JsValue>>,
    heads: Option<Vec<f64>>,
) -> Fields<'static, JsValue> {
    let mut texts = texts.unwrap_or_default().into_iter();
    let [kind, stream, reason, id, code, message, reference] =
        [(); 7].map(|()| texts.next().and_then(|t| t.as_string()).map(Cow::Owned));
    let n = |slot: usize| member(scratch[slot]);
    let messages = seqs.zip(items).map(|(seqs, items)| {
        seqs.into_iter()
            .zip(items)
            .map(|(seq, data)| (member(seq), present(data)))
            .collect()
    });
    let heads = names.zip(heads).map(|(names, numbers)| {
        names
            .into_iter()
            .zip(numbers.chunks_exact(2))
            .map(|(name, n)| {
                let name = Cow::Owned(name.as_string().unwrap_or_default());
                (name, member(n[0]), member(n[1]))
            })
            .collect()
    });
    Fields {
        kind: kind.unwrap_or_default(),
        stream: match handle_id(scratch[SLOT_IN_STREAM]) {
            Some(id) => Some(StreamKey::Id(id)),
            None => stream.map(StreamKey::Name),
        },
        seq: n(SLOT_IN_SEQ),
        epoch: n(SLOT_IN_EPOCH),
        head: n(SLOT_IN_HEAD),
        from: n(SLOT_IN_FROM),
        to: n(SLOT_IN_TO),
        earliest: n(SLOT_IN_EARLIEST),
        frame_limit: n(SLOT_IN_FRAME_LIMIT),
        data: present(data),
        state: present(state),
        messages,
        heads,
        reason,
        id,
        code,
        message,
        reference,
    }
}

/// A number member as it crossed: NaN when absent, otherwise a whole
/// number (the shell refused negative and fractional ones, as a typed
/// parser does); one too large for `u64` reads as `u64::MAX`, which the
/// checks of every member refuse.
fn member(value: f64) -> Option<u64> {
    (!value.is_nan()).then_some(value as u64)
}

/// A payload member: `undefined` when the frame has none (`null` is one).
fn present(value: JsValue) -> Option<JsValue> {
    (!value.is_undefined()).then_some(value)
}

/// A frame the shell could not read: no reason, see the crate docs.
#[cold]
#[inline(never)]
fn malformed() -> Error {
    Error::MalformedFrame {
        reason: String::new(),
    }
}

/// An event's message; for a code this version does not know, the core put
/// the code as the server wrote it in front (`"<code>: <message>"`): it is
/// kept for [`Session::code`] and the message returned without it.
#[inline(never)]
fn with_code(unknown_code: &mut String, code: ErrorCode, message: String) -> JsValue {
    if code != ErrorCode::Unknown {
        return JsValue::from(message);
    }
    let (wire, rest) = split_unknown_code(&message);
    unknown_code.clear();
    unknown_code.push_str(wire);
    JsValue::from_str(rest)
}
