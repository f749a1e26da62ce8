//! # seqsync-wasm
//!
//! The browser binding of seqsync, published on npm as `seqsync`. This crate
//! exports one class, `Core`: the `seqsync-core` [`Sequencer`] with payloads
//! kept as JavaScript values and every other argument a plain number, so
//! that a message crosses the JS/WASM boundary without copying or encoding.
//! The JavaScript half of the package (`js/`) builds the public API on top
//! of it: `Client` (WebSocket, timers, reconnect) and `Sequencer` (plain
//! objects in, plain objects out, for apps with their own transport).
//!
//! Nothing here decides anything about sequencing: every method translates
//! its arguments, calls the core, and reports what the core queued.
//!
//! ## The calling convention
//!
//! Input methods (`message`, `snapshot`, `subscribed`, `history`, `head`,
//! `reset`, `timeout`, `connected`, `disconnected`, `subscribe`,
//! `unsubscribe`) return a bit set of what is ready ([`READY_REQUESTS`],
//! [`READY_EVENTS`], [`READY_TIMEOUT`], [`READY_ERROR`]). The caller then
//! drains `pollRequest()` (JSON text frames), reads the new timer deadline
//! from the scratch area, and drains `pollEvent()`: it returns the event's
//! payload (or `undefined`) and writes the event's kind and numbers into the
//! scratch area, a small `Float64Array` in WASM memory at `scratchPtr()`:
//!
//! | slot | meaning |
//! | --- | --- |
//! | 0 | event kind (`EVENT_*`, 0: none) |
//! | 1 | 1 when another event is queued |
//! | 2 | stream handle |
//! | 3..=6 | the event's numbers (see `EVENT_*`) |
//! | 7 | the timer deadline in ms, -1 for none |
//! | 8 | the flags of the last `deliver` |
//!
//! `deliver` is `message` followed by the first `pollEvent`, for the hot
//! path: one crossing instead of two when the message is delivered at once.
//!
//! Seqs, epochs and times are JavaScript numbers: every valid seq is at most
//! 2^53 - 1, so it is exact. A stream handle is `StreamId::to_raw` as a
//! number.
#![deny(unsafe_code)]

use std::fmt::Write as _;

use seqsync_core::{
    Config, DeliveryMode, Epoch, Error, Event, MAX_SEQ, Millis, Request, ResetReason, Seq,
    SeqRange, Sequencer, StalledRequest, StartAt, StreamId, StreamPhase, SubscribeOptions,
};
use wasm_bindgen::prelude::*;

/// Flag: `pollRequest()` has frames to send.
pub const READY_REQUESTS: u32 = 1;
/// Flag: `pollEvent()` has events.
pub const READY_EVENTS: u32 = 2;
/// Flag: the timer deadline (scratch slot 7) changed.
pub const READY_TIMEOUT: u32 = 4;
/// Flag: the input was rejected; `lastError()` says why. The core is unchanged.
pub const READY_ERROR: u32 = 8;

/// `Message`: slot 3 seq; the payload is returned.
pub const EVENT_MESSAGE: u32 = 1;
/// `Snapshot`: slot 3 seq, slot 4 epoch; the state is returned.
pub const EVENT_SNAPSHOT: u32 = 2;
/// `Reset`: slot 3 reason (0 history_unavailable, 1 epoch_changed,
/// 2 server_behind), slot 4 earliest seq or -1.
pub const EVENT_RESET: u32 = 3;
/// `Skipped`: slots 3, 4 the inclusive range.
pub const EVENT_SKIPPED: u32 = 4;
/// `GapDetected`: slots 3, 4 the inclusive range.
pub const EVENT_GAP_DETECTED: u32 = 5;
/// `GapHealed`: slot 3 the last contiguous seq.
pub const EVENT_GAP_HEALED: u32 = 6;
/// `Stalled`: slot 3 request (0 history, 1 snapshot, 2 subscribe), slots 4,
/// 5 the history range (else -1), slot 6 attempts.
pub const EVENT_STALLED: u32 = 7;
/// `PhaseChanged`: slot 3 phase (0 disconnected, 1 subscribing,
/// 2 snapshotting, 3 live).
pub const EVENT_PHASE: u32 = 8;

const SLOT_KIND: usize = 0;
const SLOT_MORE: usize = 1;
const SLOT_STREAM: usize = 2;
const SLOT_A: usize = 3;
const SLOT_B: usize = 4;
const SLOT_C: usize = 5;
const SLOT_D: usize = 6;
const SLOT_DEADLINE: usize = 7;
const SLOT_FLAGS: usize = 8;
const SLOTS: usize = 9;

/// The sequencer with JavaScript payloads, driven by numbers.
#[wasm_bindgen]
pub struct Core {
    inner: Sequencer<JsValue>,
    /// One event of lookahead, so `pollEvent` can say whether more follow.
    next: Option<Event<JsValue>>,
    /// One request of lookahead, so inputs can say whether any is queued.
    next_request: Option<Request>,
    deadline: Option<Millis>,
    scratch: Box<[f64; SLOTS]>,
    error: String,
}

#[wasm_bindgen]
impl Core {
    /// A sequencer with the core's defaults, except for each option given.
    #[wasm_bindgen(constructor)]
    pub fn new(
        window: Option<u32>,
        gap_timeout_ms: Option<f64>,
        request_timeout_ms: Option<f64>,
        max_backoff_ms: Option<f64>,
        stall_after_attempts: Option<u32>,
        max_fetch: Option<u32>,
        max_streams: Option<u32>,
    ) -> Core {
        let defaults = Config::default();
        let ms = |value: Option<f64>, default: u64| value.and_then(whole).unwrap_or(default);
        let config = Config {
            window: window.unwrap_or(defaults.window),
            gap_timeout_ms: ms(gap_timeout_ms, defaults.gap_timeout_ms),
            request_timeout_ms: ms(request_timeout_ms, defaults.request_timeout_ms),
            max_backoff_ms: ms(max_backoff_ms, defaults.max_backoff_ms),
            stall_after_attempts: stall_after_attempts.unwrap_or(defaults.stall_after_attempts),
            max_fetch: max_fetch.unwrap_or(defaults.max_fetch).max(1),
            max_streams: max_streams.map_or(defaults.max_streams, |n| n as usize),
        };
        let mut scratch = Box::new([0.0; SLOTS]);
        scratch[SLOT_DEADLINE] = -1.0;
        Core {
            inner: Sequencer::new(config),
            next: None,
            next_request: None,
            deadline: None,
            scratch,
            error: String::new(),
        }
    }

    // ---- getters -------------------------------------------------------------

    /// Address of the scratch area (9 f64 slots) in WASM memory.
    #[wasm_bindgen(js_name = scratchPtr)]
    pub fn scratch_ptr(&self) -> u32 {
        self.scratch.as_ptr() as usize as u32
    }

    /// Why the last rejected input was rejected.
    #[wasm_bindgen(js_name = lastError)]
    pub fn last_error(&self) -> String {
        self.error.clone()
    }

    /// The handle of a subscribed stream, -1 when not subscribed.
    #[wasm_bindgen(js_name = streamHandle)]
    pub fn stream_handle(&self, name: &str) -> f64 {
        self.inner
            .stream_id(name)
            .map_or(-1.0, |id| id.to_raw() as f64)
    }

    /// The name of a subscribed stream.
    #[wasm_bindgen(js_name = streamName)]
    pub fn stream_name(&self, handle: f64) -> Option<String> {
        let id = handle_id(handle)?;
        self.inner.stream_name(id).map(ToString::to_string)
    }

    /// Counters of a stream: delivered, duplicates, dropped, skipped, gaps,
    /// gapsHealed, resyncs, resets, buffered, lastSeq, head, lag, epoch (-1:
    /// unknown), phase (as in `EVENT_PHASE`).
    pub fn stats(&self, handle: f64) -> Option<Vec<f64>> {
        let stats = self.inner.stats(handle_id(handle)?)?;
        Some(vec![
            stats.delivered as f64,
            stats.duplicates as f64,
            stats.dropped as f64,
            stats.skipped as f64,
            stats.gaps as f64,
            stats.gaps_healed as f64,
            stats.resyncs as f64,
            stats.resets as f64,
            stats.buffered as f64,
            stats.last_seq.get() as f64,
            stats.head.get() as f64,
            stats.lag as f64,
            stats.epoch.map_or(-1.0, |e| e.0 as f64),
            phase_code(stats.phase),
        ])
    }

    /// What is ready to drain, without any input (e.g. after `subscribe`).
    pub fn pending(&mut self) -> u32 {
        self.ready()
    }

    // ---- inputs from the network and the clock -------------------------------

    /// The transport is up.
    pub fn connected(&mut self, now: f64) -> u32 {
        self.inner.handle_connected(millis(now));
        self.ready()
    }

    /// The transport is down.
    pub fn disconnected(&mut self, now: f64) -> u32 {
        self.inner.handle_disconnected(millis(now));
        self.ready()
    }

    /// A live message; `epoch` -1 when the frame has none.
    pub fn message(&mut self, now: f64, handle: f64, seq: f64, epoch: f64, data: JsValue) -> u32 {
        let result = (|| {
            let id = handle_id(handle).ok_or_else(|| unknown(handle))?;
            let seq = message_seq(seq)?;
            let epoch = optional_epoch(epoch)?;
            self.inner.handle_message(millis(now), id, seq, epoch, data)
        })();
        self.finish(result)
    }

    /// `message`, then `pollEvent` when an event is ready: returns that
    /// event's payload; the flags go to scratch slot 8 (slot 0 is 0 when no
    /// event was polled).
    pub fn deliver(
        &mut self,
        now: f64,
        handle: f64,
        seq: f64,
        epoch: f64,
        data: JsValue,
    ) -> JsValue {
        let flags = self.message(now, handle, seq, epoch, data);
        self.scratch[SLOT_FLAGS] = f64::from(flags);
        if flags & READY_EVENTS == 0 {
            self.scratch[SLOT_KIND] = 0.0;
            return JsValue::UNDEFINED;
        }
        self.poll_event()
    }

    /// A snapshot of the stream at `seq`.
    pub fn snapshot(&mut self, now: f64, handle: f64, seq: f64, epoch: f64, state: JsValue) -> u32 {
        let result = (|| {
            let id = handle_id(handle).ok_or_else(|| unknown(handle))?;
            let seq = position(seq)?;
            let epoch = required_epoch(epoch)?;
            self.inner
                .handle_snapshot(millis(now), id, seq, epoch, state)
        })();
        self.finish(result)
    }

    /// The answer to a resuming subscribe.
    pub fn subscribed(&mut self, now: f64, handle: f64, epoch: f64, head: f64) -> u32 {
        let result = (|| {
            let id = handle_id(handle).ok_or_else(|| unknown(handle))?;
            let head = position(head)?;
            let epoch = required_epoch(epoch)?;
            self.inner.handle_subscribed(millis(now), id, epoch, head)
        })();
        self.finish(result)
    }

    /// A history answer covering `from..=to`: `seqs[i]` is the seq of
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
    ) -> u32 {
        let result = (|| {
            let id = handle_id(handle).ok_or_else(|| unknown(handle))?;
            let range = SeqRange::new(position(from)?, position(to)?)?;
            let epoch = optional_epoch(epoch)?;
            if seqs.len() != data.len() {
                return Err(Error::MalformedFrame {
                    reason: format!("{} seqs for {} payloads", seqs.len(), data.len()),
                });
            }
            let mut messages = Vec::with_capacity(seqs.len());
            for (seq, payload) in seqs.into_iter().zip(data) {
                messages.push((message_seq(seq)?, payload));
            }
            self.inner
                .handle_history(millis(now), id, range, epoch, messages)
        })();
        self.finish(result)
    }

    /// A heartbeat entry: the server's latest seq; `epoch` -1 when unknown.
    pub fn head(&mut self, now: f64, handle: f64, head: f64, epoch: f64) -> u32 {
        let result = (|| {
            let id = handle_id(handle).ok_or_else(|| unknown(handle))?;
            let head = position(head)?;
            let epoch = optional_epoch(epoch)?;
            self.inner.handle_head(millis(now), id, head, epoch)
        })();
        self.finish(result)
    }

    /// The server reset the stream (`reason` as on the wire); `earliest` -1
    /// when the frame has none.
    pub fn reset(&mut self, now: f64, handle: f64, reason: &str, earliest: f64) -> u32 {
        let result = (|| {
            let id = handle_id(handle).ok_or_else(|| unknown(handle))?;
            let earliest = if earliest < 0.0 {
                None
            } else {
                Some(position(earliest)?)
            };
            let reason = ResetReason::from_wire(reason);
            self.inner.handle_reset(millis(now), id, reason, earliest)
        })();
        self.finish(result)
    }

    /// The timer fired.
    pub fn timeout(&mut self, now: f64) -> u32 {
        self.inner.handle_timeout(millis(now));
        self.ready()
    }

    // ---- application commands ------------------------------------------------

    /// Starts following `name`: from a snapshot, or after `since` (with its
    /// `epoch` when known). Returns the stream handle.
    ///
    /// # Errors
    /// An invalid name, a stream already subscribed, too many streams, or a
    /// `since`/`epoch` that is not a valid position.
    pub fn subscribe(
        &mut self,
        now: f64,
        name: &str,
        since: Option<f64>,
        epoch: Option<f64>,
        latest: bool,
    ) -> Result<f64, JsError> {
        let start = match since {
            None => StartAt::Snapshot,
            Some(since) => StartAt::After {
                seq: position(since).map_err(|e| JsError::new(&describe(&e)))?,
                epoch: epoch
                    .map(required_epoch)
                    .transpose()
                    .map_err(|e| JsError::new(&describe(&e)))?,
            },
        };
        let mode = if latest {
            DeliveryMode::Latest
        } else {
            DeliveryMode::Ordered
        };
        let id = self
            .inner
            .subscribe(millis(now), name, SubscribeOptions { start, mode })
            .map_err(|e| JsError::new(&describe(&e)))?;
        Ok(id.to_raw() as f64)
    }

    /// Stops following a stream; unknown handles are ignored.
    pub fn unsubscribe(&mut self, now: f64, handle: f64) -> u32 {
        let result = match handle_id(handle) {
            Some(id) => self.inner.unsubscribe(millis(now), id),
            None => Err(unknown(handle)),
        };
        // Events of the stream still in the lookahead are dropped with it.
        if let (Some(next), Some(id)) = (&self.next, handle_id(handle)) {
            if next.stream() == id {
                self.next = self.inner.poll_event();
            }
        }
        self.finish(result)
    }

    // ---- outputs -------------------------------------------------------------

    /// The next frame to send, as JSON text.
    #[wasm_bindgen(js_name = pollRequest)]
    pub fn poll_request(&mut self) -> Option<String> {
        let request = match self.next_request.take() {
            Some(request) => Some(request),
            None => self.inner.poll_request(),
        };
        request.map(|request| encode(&request))
    }

    /// The next event: its payload (message data, snapshot state) or
    /// `undefined`; its kind and numbers go to the scratch area.
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
        s[SLOT_STREAM] = event.stream().to_raw() as f64;
        let (kind, payload) = match event {
            Event::Message { seq, payload, .. } => {
                s[SLOT_A] = seq.get() as f64;
                (EVENT_MESSAGE, payload)
            }
            Event::Snapshot {
                seq, epoch, state, ..
            } => {
                s[SLOT_A] = seq.get() as f64;
                s[SLOT_B] = epoch.0 as f64;
                (EVENT_SNAPSHOT, state)
            }
            Event::Reset {
                reason, earliest, ..
            } => {
                s[SLOT_A] = match reason {
                    ResetReason::HistoryUnavailable => 0.0,
                    ResetReason::EpochChanged => 1.0,
                    ResetReason::ServerBehind => 2.0,
                };
                s[SLOT_B] = earliest.map_or(-1.0, |e| e.get() as f64);
                (EVENT_RESET, JsValue::UNDEFINED)
            }
            Event::Skipped { range, .. } => {
                s[SLOT_A] = range.start().get() as f64;
                s[SLOT_B] = range.end().get() as f64;
                (EVENT_SKIPPED, JsValue::UNDEFINED)
            }
            Event::GapDetected { range, .. } => {
                s[SLOT_A] = range.start().get() as f64;
                s[SLOT_B] = range.end().get() as f64;
                (EVENT_GAP_DETECTED, JsValue::UNDEFINED)
            }
            Event::GapHealed { through, .. } => {
                s[SLOT_A] = through.get() as f64;
                (EVENT_GAP_HEALED, JsValue::UNDEFINED)
            }
            Event::Stalled {
                request, attempts, ..
            } => {
                let (code, from, to) = match request {
                    StalledRequest::History(range) => {
                        (0.0, range.start().get() as f64, range.end().get() as f64)
                    }
                    StalledRequest::Snapshot => (1.0, -1.0, -1.0),
                    StalledRequest::Subscribe => (2.0, -1.0, -1.0),
                };
                s[SLOT_A] = code;
                s[SLOT_B] = from;
                s[SLOT_C] = to;
                s[SLOT_D] = f64::from(attempts);
                (EVENT_STALLED, JsValue::UNDEFINED)
            }
            Event::PhaseChanged { phase, .. } => {
                s[SLOT_A] = phase_code(phase);
                (EVENT_PHASE, JsValue::UNDEFINED)
            }
        };
        s[SLOT_KIND] = f64::from(kind);
        payload
    }
}

impl Core {
    fn finish(&mut self, result: Result<(), Error>) -> u32 {
        match result {
            Ok(()) => self.ready(),
            Err(error) => {
                self.error.clear();
                self.error.push_str(&describe(&error));
                self.ready() | READY_ERROR
            }
        }
    }

    /// What the last input left to drain. One request and one event are moved
    /// into the lookahead so that the answer is exact.
    fn ready(&mut self) -> u32 {
        let mut flags = 0;
        if self.next.is_none() {
            self.next = self.inner.poll_event();
        }
        if self.next.is_some() {
            flags |= READY_EVENTS;
        }
        if self.next_request.is_none() {
            self.next_request = self.inner.poll_request();
        }
        if self.next_request.is_some() {
            flags |= READY_REQUESTS;
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

/// The message of an error. Written here rather than taken from `Display`:
/// that one quotes names with `{:?}`, whose Unicode tables and float
/// formatting would double the size of the WASM module.
fn describe(error: &Error) -> String {
    match error {
        Error::SeqOutOfRange { seq } => {
            format!("seq {seq} is out of range (messages use 1..=2^53-1)")
        }
        Error::InvalidRange { from, to } => format!("invalid seq range {from}..={to}"),
        Error::InvalidStreamName { .. } => {
            "invalid stream name (1 to 256 bytes, no control characters)".to_string()
        }
        Error::UnknownStream { stream } => format!("stream {stream} is not subscribed"),
        Error::AlreadySubscribed { stream } => format!("stream {stream} is already subscribed"),
        Error::TooManyStreams { limit } => format!("too many streams (limit {limit})"),
        Error::HistoryOutOfRange { from, to, seq, .. } => {
            format!("history claims {from}..={to} but holds seq {seq}")
        }
        Error::MalformedFrame { reason } => format!("malformed frame: {reason}"),
        _ => "invalid input".to_string(),
    }
}

fn millis(now: f64) -> Millis {
    // `as` saturates: NaN and negatives read as 0, huge values as u64::MAX.
    Millis(now as u64)
}

fn whole(value: f64) -> Option<u64> {
    (value >= 0.0 && value.is_finite()).then_some(value as u64)
}

fn exact(value: f64) -> Option<u64> {
    (value >= 0.0 && value <= MAX_SEQ as f64 && value.fract() == 0.0).then_some(value as u64)
}

fn position(value: f64) -> Result<Seq, Error> {
    let raw = exact(value).ok_or(Error::SeqOutOfRange {
        seq: whole(value).unwrap_or(0),
    })?;
    Seq::new(raw)
}

fn message_seq(value: f64) -> Result<Seq, Error> {
    let raw = exact(value).ok_or(Error::SeqOutOfRange {
        seq: whole(value).unwrap_or(0),
    })?;
    Seq::message(raw)
}

fn required_epoch(value: f64) -> Result<Epoch, Error> {
    exact(value).map(Epoch).ok_or(Error::MalformedFrame {
        reason: "epoch is not an integer in 0..=2^53-1".to_string(),
    })
}

fn optional_epoch(value: f64) -> Result<Option<Epoch>, Error> {
    if value == -1.0 {
        Ok(None)
    } else {
        required_epoch(value).map(Some)
    }
}

fn handle_id(handle: f64) -> Option<StreamId> {
    (handle >= 0.0 && handle.fract() == 0.0 && handle < 18_446_744_073_709_551_616.0)
        .then(|| StreamId::from_raw(handle as u64))
}

fn unknown(handle: f64) -> Error {
    Error::UnknownStream {
        stream: format!("#{}", whole(handle).unwrap_or(0)),
    }
}

fn phase_code(phase: StreamPhase) -> f64 {
    match phase {
        StreamPhase::Disconnected => 0.0,
        StreamPhase::Subscribing => 1.0,
        StreamPhase::Snapshotting => 2.0,
        StreamPhase::Live => 3.0,
    }
}

/// A request as a protocol v1 frame. Stream names hold no control
/// characters (checked by `StreamName`), so only `"` and `\` need escaping.
fn encode(request: &Request) -> String {
    let mut out = String::with_capacity(64);
    let stream = |out: &mut String, name: &str| {
        out.push_str(",\"stream\":\"");
        for c in name.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    };
    match request {
        Request::Subscribe {
            stream: name,
            since,
            epoch,
        } => {
            out.push_str("{\"type\":\"subscribe\"");
            stream(&mut out, name.as_str());
            if let Some(since) = since {
                let _ = write!(out, ",\"since\":{since}");
            }
            if let Some(epoch) = epoch {
                let _ = write!(out, ",\"epoch\":{epoch}");
            }
        }
        Request::Unsubscribe { stream: name } => {
            out.push_str("{\"type\":\"unsubscribe\"");
            stream(&mut out, name.as_str());
        }
        Request::FetchHistory {
            stream: name,
            range,
        } => {
            out.push_str("{\"type\":\"history\"");
            stream(&mut out, name.as_str());
            let _ = write!(
                out,
                ",\"from\":{},\"to\":{}",
                range.start().get(),
                range.end().get()
            );
        }
        Request::FetchSnapshot { stream: name } => {
            out.push_str("{\"type\":\"snapshot\"");
            stream(&mut out, name.as_str());
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_encode_as_protocol_frames() {
        let name = seqsync_core::StreamName::new("a\"b\\c").unwrap();
        let range = SeqRange::from_u64(5, 9).unwrap();
        assert_eq!(
            encode(&Request::FetchHistory {
                stream: name.clone(),
                range
            }),
            r#"{"type":"history","stream":"a\"b\\c","from":5,"to":9}"#
        );
        assert_eq!(
            encode(&Request::Subscribe {
                stream: name.clone(),
                since: Some(Seq::new(4).unwrap()),
                epoch: Some(Epoch(7)),
            }),
            r#"{"type":"subscribe","stream":"a\"b\\c","since":4,"epoch":7}"#
        );
        assert_eq!(
            encode(&Request::Subscribe {
                stream: name.clone(),
                since: None,
                epoch: None,
            }),
            r#"{"type":"subscribe","stream":"a\"b\\c"}"#
        );
        assert_eq!(
            encode(&Request::FetchSnapshot {
                stream: name.clone()
            }),
            r#"{"type":"snapshot","stream":"a\"b\\c"}"#
        );
        assert_eq!(
            encode(&Request::Unsubscribe { stream: name }),
            r#"{"type":"unsubscribe","stream":"a\"b\\c"}"#
        );
    }

    #[test]
    fn numbers_from_javascript_are_checked() {
        assert!(message_seq(0.0).is_err());
        assert!(message_seq(1.5).is_err());
        assert!(message_seq(f64::NAN).is_err());
        assert!(message_seq(MAX_SEQ as f64 + 2.0).is_err());
        assert_eq!(message_seq(MAX_SEQ as f64).unwrap().get(), MAX_SEQ);
        assert_eq!(position(0.0).unwrap(), Seq::ZERO);
        assert_eq!(optional_epoch(-1.0).unwrap(), None);
        assert!(optional_epoch(-2.0).is_err());
        assert!(handle_id(-1.0).is_none());
        assert!(handle_id(0.5).is_none());
        assert_eq!(millis(f64::NAN), Millis(0));
        assert_eq!(millis(-5.0), Millis(0));
    }
}
