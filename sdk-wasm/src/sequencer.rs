//! `Core`: the bare sequencer, for the package's `Sequencer` class.

use crate::prelude::*;
use seqsync_core::protocol::encode;
use seqsync_core::{
    DeliveryMode, Error, Event, Millis, Request, ResetReason, SeqRange, Sequencer, StartAt,
    SubscribeOptions,
};
use wasm_bindgen::prelude::*;

use crate::{
    READY_ERROR, READY_EVENTS, READY_REQUESTS, READY_TIMEOUT, SLOT_DEADLINE, SLOT_FLAGS, SLOT_KIND,
    SLOT_MORE, Scratch, core_config, handle_id, history_messages, message_seq, millis, new_scratch,
    optional_epoch, position, required_epoch, stream_stats, unknown_stream, write_event,
};

/// The sequencer with JavaScript payloads, driven by numbers.
#[wasm_bindgen]
pub struct Core {
    inner: Sequencer<JsValue>,
    /// One event of lookahead, so `pollEvent` can say whether more follow.
    next: Option<Event<JsValue>>,
    /// One request of lookahead, so inputs can say whether any is queued.
    next_request: Option<Request>,
    deadline: Option<Millis>,
    scratch: Scratch,
    error: &'static str,
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
        let config = core_config([
            window.map(f64::from),
            gap_timeout_ms,
            request_timeout_ms,
            max_backoff_ms,
            stall_after_attempts.map(f64::from),
            max_fetch.map(f64::from),
            max_streams.map(f64::from),
        ]);
        Core {
            inner: Sequencer::new(config),
            next: None,
            next_request: None,
            deadline: None,
            scratch: new_scratch(),
            error: "",
        }
    }

    // ---- getters -------------------------------------------------------------

    /// Address of the scratch area in WASM memory (slots 0 to 8 are used).
    #[wasm_bindgen(js_name = scratchPtr)]
    pub fn scratch_ptr(&self) -> u32 {
        self.scratch.as_ptr() as usize as u32
    }

    /// Why the last rejected input was rejected.
    #[wasm_bindgen(js_name = lastError)]
    pub fn last_error(&self) -> String {
        self.error.to_string()
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
        self.inner
            .stream_name(id)
            .map(|name| name.as_str().to_string())
    }

    /// Counters of a stream: delivered, duplicates, dropped, skipped, gaps,
    /// gapsHealed, resyncs, resets, buffered, lastSeq, head, lag, epoch (-1:
    /// unknown), phase (as in `EVENT_PHASE`).
    pub fn stats(&self, handle: f64) -> Option<Vec<f64>> {
        self.inner.stats(handle_id(handle)?).map(stream_stats)
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
            let id = handle_id(handle).ok_or_else(unknown_stream)?;
            let seq = message_seq(seq)?;
            let epoch = optional_epoch(epoch)?;
            if self.next.is_some() {
                return self.inner.handle_message(millis(now), id, seq, epoch, data);
            }
            // Nothing is waiting: a message delivered at once goes straight
            // to the lookahead instead of through the sequencer's queue.
            let direct = self
                .inner
                .handle_message_direct(millis(now), id, seq, epoch, data)?;
            self.next = direct.map(|payload| Event::Message {
                stream: id,
                seq,
                // A message taken in order matched the stream's epoch; one
                // that named none carries the stream's.
                epoch: epoch.or_else(|| self.inner.stats(id).and_then(|s| s.epoch)),
                payload,
            });
            Ok(())
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
            let id = handle_id(handle).ok_or_else(unknown_stream)?;
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
            let id = handle_id(handle).ok_or_else(unknown_stream)?;
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
            let id = handle_id(handle).ok_or_else(unknown_stream)?;
            let range = SeqRange::new(position(from)?, position(to)?)?;
            let epoch = optional_epoch(epoch)?;
            let messages = history_messages(seqs, data)?;
            self.inner
                .handle_history(millis(now), id, range, epoch, messages)
        })();
        self.finish(result)
    }

    /// A heartbeat entry: the server's latest seq; `epoch` -1 when unknown.
    pub fn head(&mut self, now: f64, handle: f64, head: f64, epoch: f64) -> u32 {
        let result = (|| {
            let id = handle_id(handle).ok_or_else(unknown_stream)?;
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
            let id = handle_id(handle).ok_or_else(unknown_stream)?;
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
        let fail = |e: Error| JsError::new(describe(&e));
        let start = match since {
            None => StartAt::Snapshot,
            Some(since) => StartAt::After {
                seq: position(since).map_err(fail)?,
                epoch: epoch.map(required_epoch).transpose().map_err(fail)?,
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
            .map_err(fail)?;
        Ok(id.to_raw() as f64)
    }

    /// Stops following a stream; unknown handles are ignored.
    pub fn unsubscribe(&mut self, now: f64, handle: f64) -> u32 {
        let result = match handle_id(handle) {
            Some(id) => self.inner.unsubscribe(millis(now), id),
            None => Err(unknown_stream()),
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
        request.map(|request| encode::request(&request, None))
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
        let (kind, payload) = write_event(s, event);
        s[SLOT_KIND] = f64::from(kind);
        payload
    }
}

impl Core {
    fn finish(&mut self, result: Result<(), Error>) -> u32 {
        match result {
            Ok(()) => self.ready(),
            Err(error) => {
                self.error = describe(&error);
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

/// What was wrong with an input, in fixed words: the values are the
/// caller's own, and formatting them would pull `core::fmt` into the module.
fn describe(error: &Error) -> &'static str {
    match error {
        Error::SeqOutOfRange { .. } => "seq out of range (messages use 1..=2^53-1)",
        Error::InvalidRange { .. } => "invalid seq range",
        Error::InvalidStreamName { .. } => {
            "invalid stream name (1 to 256 bytes, no control characters)"
        }
        Error::UnknownStream { .. } => "stream not subscribed",
        Error::AlreadySubscribed { .. } => "stream already subscribed",
        Error::TooManyStreams { .. } => "too many streams",
        Error::HistoryOutOfRange { .. } => "history holds a seq outside its range",
        Error::MalformedFrame { .. } => {
            "malformed frame (epoch not in 0..=2^53-1, or seqs and payloads of different counts)"
        }
        _ => "invalid input",
    }
}
