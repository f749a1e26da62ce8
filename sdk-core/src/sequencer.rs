//! The [`Sequencer`]: routes inputs to per-stream state machines and queues
//! their outputs.

use crate::prelude::*;
use alloc::collections::VecDeque;

use crate::config::Config;
use crate::error::Error;
use crate::event::{Event, Request, ResetReason, StreamPhase};
use crate::map::VecMap;
use crate::stats::StreamStats;
use crate::stream::{Ctx, Recovery, StreamState};
use crate::timers::{DeadlineQueue, Due};
use crate::types::{
    DeliveryMode, Epoch, MAX_SEQ, Millis, Seq, SeqRange, StartAt, StreamId, StreamName,
};

/// How a stream is subscribed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Snapshot first (default) or resume after a known seq.
    pub start: StartAt,
    /// `Ordered` (default) or `Latest`.
    pub mode: DeliveryMode,
}

/// Sans-IO sequencer for many streams at once, generic over the payload `P`.
///
/// The shell (the code that owns the transport) feeds what arrives (methods `handle_*`), issues application
/// commands (`subscribe`, `unsubscribe`), and after **every** such call drains
/// the outputs in this order until each returns `None`:
/// [`poll_request`](Self::poll_request) (frames to send),
/// [`poll_timeout`](Self::poll_timeout) (when to call
/// [`handle_timeout`](Self::handle_timeout) next), then
/// [`poll_event`](Self::poll_event) (what the application sees).
/// Every input takes the current time; the sequencer never reads a clock.
///
/// ```
/// use seqsync_core::{Config, Event, Millis, Request, Seq, Sequencer, SubscribeOptions};
///
/// let mut seq = Sequencer::<&str>::new(Config::default());
/// let room = seq.subscribe(Millis(0), "room", SubscribeOptions::default())?;
/// seq.handle_connected(Millis(0));
/// assert!(matches!(seq.poll_request(), Some(Request::Subscribe { since: None, .. })));
///
/// seq.handle_snapshot(Millis(1), room, Seq::new(10)?, seqsync_core::Epoch(7), "state@10")?;
/// seq.handle_message(Millis(2), room, Seq::new(12)?, None, "twelve")?; // ahead of a gap: held
/// seq.handle_message(Millis(3), room, Seq::new(11)?, None, "eleven")?; // gap closes
///
/// let delivered: Vec<u64> = std::iter::from_fn(|| seq.poll_event())
///     .filter_map(|e| match e {
///         Event::Message { seq, .. } => Some(seq.get()),
///         _ => None,
///     })
///     .collect();
/// assert_eq!(delivered, [11, 12]);
/// # Ok::<(), seqsync_core::Error>(())
/// ```
pub struct Sequencer<P> {
    config: Config,
    window: u64,
    connected: bool,
    entries: Vec<Option<StreamState<P>>>,
    /// Free slots with the generation their next stream gets.
    free: Vec<(u32, u32)>,
    /// A recovery box kept for the next stream that needs one, so that a
    /// gap that opens and heals costs no allocation.
    spare: Option<Box<Recovery<P>>>,
    by_name: VecMap<StreamName, StreamId>,
    /// When each stream with pending recovery next needs a pass. The top
    /// entry is always current (see `settle_timers`).
    timers: DeadlineQueue,
    events: VecDeque<Event<P>>,
    requests: VecDeque<Request>,
}

impl<P> Sequencer<P> {
    /// A sequencer with no streams, not connected.
    pub fn new(config: Config) -> Sequencer<P> {
        let window = u64::from(config.effective_window());
        Sequencer {
            config,
            window,
            connected: false,
            entries: Vec::new(),
            free: Vec::new(),
            spare: None,
            by_name: VecMap::new(),
            timers: DeadlineQueue::default(),
            events: VecDeque::new(),
            requests: VecDeque::new(),
        }
    }

    // ---- (A) getters -----------------------------------------------------------

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether `handle_connected` was the last connection input.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// How many streams are subscribed.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether no stream is subscribed.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The handle of a subscribed stream.
    pub fn stream_id(&self, name: &str) -> Option<StreamId> {
        self.by_name.get(name).copied()
    }

    /// The name of a subscribed stream.
    pub fn stream_name(&self, id: StreamId) -> Option<&StreamName> {
        self.get(id).map(StreamState::name)
    }

    /// Counters and position of a stream.
    pub fn stats(&self, id: StreamId) -> Option<StreamStats> {
        self.get(id).map(StreamState::stats)
    }

    /// The phase of a stream.
    pub fn phase(&self, id: StreamId) -> Option<StreamPhase> {
        self.get(id).map(StreamState::phase)
    }

    /// How a stream delivers.
    pub fn delivery_mode(&self, id: StreamId) -> Option<DeliveryMode> {
        self.get(id).map(StreamState::mode)
    }

    /// Every subscribed stream.
    pub fn streams(&self) -> impl Iterator<Item = (StreamId, &StreamName)> + '_ {
        self.entries.iter().enumerate().filter_map(|(index, e)| {
            e.as_ref()
                .map(|s| (StreamId::new(index as u32, s.generation()), s.name()))
        })
    }

    fn get(&self, id: StreamId) -> Option<&StreamState<P>> {
        self.entries
            .get(id.index() as usize)?
            .as_ref()
            .filter(|s| s.generation() == id.generation())
    }

    // ---- (B) inputs from the network and the clock -----------------------------

    /// The transport is up: every stream (re)subscribes, resuming after its
    /// last contiguous seq where it has one.
    pub fn handle_connected(&mut self, now: Millis) {
        self.connected = true;
        for index in 0..self.entries.len() {
            self.with_index(index, |state, ctx| state.on_connected(now, ctx));
        }
    }

    /// The transport is down: requests in flight are forgotten, held messages
    /// and known holes are kept for the next connection.
    pub fn handle_disconnected(&mut self, _now: Millis) {
        self.connected = false;
        for index in 0..self.entries.len() {
            self.with_index(index, |state, ctx| state.on_disconnected(ctx));
        }
    }

    /// A live message. The hot path: O(1), no allocation when in order.
    ///
    /// # Errors
    /// [`Error::SeqOutOfRange`] for seq 0, [`Error::UnknownStream`] for a
    /// stale handle; the sequencer is unchanged.
    #[inline]
    pub fn handle_message(
        &mut self,
        now: Millis,
        stream: StreamId,
        seq: Seq,
        epoch: Option<Epoch>,
        payload: P,
    ) -> Result<(), Error> {
        if seq.get() == 0 {
            return Err(Error::SeqOutOfRange { seq: 0 });
        }
        check_epoch(epoch)?;
        self.with_stream(stream, |state, ctx| {
            state.on_message(now, seq, epoch, payload, ctx)
        })
    }

    /// As [`handle_message`](Self::handle_message), but an in-order message
    /// with no event waiting is handed straight back instead of going
    /// through the event queue: `Ok(Some(payload))` means "deliver this now,
    /// as `seq`". `Ok(None)` means whatever happened is in the events, to be
    /// drained as usual. Saves the queue round trip on the hot path.
    ///
    /// ```
    /// use seqsync_core::{Config, Epoch, Millis, Seq, Sequencer, SubscribeOptions};
    /// let mut core = Sequencer::<&str>::new(Config::default());
    /// let id = core.subscribe(Millis(0), "s", SubscribeOptions::default())?;
    /// core.handle_connected(Millis(0));
    /// core.handle_snapshot(Millis(0), id, Seq::ZERO, Epoch(1), "empty")?;
    /// while core.poll_event().is_some() {}
    /// assert_eq!(core.handle_message_direct(Millis(1), id, Seq::new(1)?, None, "a")?, Some("a"));
    /// assert_eq!(core.handle_message_direct(Millis(1), id, Seq::new(3)?, None, "c")?, None);
    /// # Ok::<(), seqsync_core::Error>(())
    /// ```
    #[inline]
    pub fn handle_message_direct(
        &mut self,
        now: Millis,
        stream: StreamId,
        seq: Seq,
        epoch: Option<Epoch>,
        payload: P,
    ) -> Result<Option<P>, Error> {
        if seq.get() == 0 {
            return Err(Error::SeqOutOfRange { seq: 0 });
        }
        check_epoch(epoch)?;
        if self.events.is_empty() {
            // The fast path needs neither the context nor the timer list.
            if let Some(state) = slot_mut(&mut self.entries, stream) {
                if state.take_in_order(seq, epoch) {
                    return Ok(Some(payload));
                }
            }
        }
        self.with_stream(stream, |state, ctx| {
            state.on_message(now, seq, epoch, payload, ctx);
            None
        })
    }

    /// The hot path for a caller that keeps the payload itself (the browser
    /// binding, whose payloads are JavaScript values): when `seq` is the
    /// next in order and no event is waiting, it is taken as delivered and
    /// `Ok(true)` says "hand your payload to the application now, as `seq`".
    /// `Ok(false)` means nothing happened: pass the message, payload and
    /// all, to [`handle_message`](Self::handle_message).
    ///
    /// ```
    /// use seqsync_core::{Config, Epoch, Millis, Seq, Sequencer, SubscribeOptions};
    /// let mut core = Sequencer::<&str>::new(Config::default());
    /// let id = core.subscribe(Millis(0), "s", SubscribeOptions::default())?;
    /// core.handle_connected(Millis(0));
    /// core.handle_snapshot(Millis(0), id, Seq::ZERO, Epoch(1), "empty")?;
    /// while core.poll_event().is_some() {}
    /// assert!(core.handle_message_in_order(Millis(1), id, Seq::new(1)?, None)?);
    /// assert!(!core.handle_message_in_order(Millis(1), id, Seq::new(3)?, None)?);
    /// assert_eq!(core.stats(id).map(|s| s.delivered), Some(1));
    /// # Ok::<(), seqsync_core::Error>(())
    /// ```
    #[inline]
    pub fn handle_message_in_order(
        &mut self,
        _now: Millis,
        stream: StreamId,
        seq: Seq,
        epoch: Option<Epoch>,
    ) -> Result<bool, Error> {
        if seq.get() == 0 {
            return Err(Error::SeqOutOfRange { seq: 0 });
        }
        check_epoch(epoch)?;
        Ok(self.events.is_empty()
            && slot_mut(&mut self.entries, stream).is_some_and(|s| s.take_in_order(seq, epoch)))
    }

    /// A snapshot of the stream at `seq`. Ignored unless one is awaited
    /// (after subscribing without a resume point, or after a reset).
    pub fn handle_snapshot(
        &mut self,
        now: Millis,
        stream: StreamId,
        seq: Seq,
        epoch: Epoch,
        state: P,
    ) -> Result<(), Error> {
        check_epoch(Some(epoch))?;
        self.with_stream(stream, |s, ctx| {
            s.hear();
            s.on_snapshot(now, seq, epoch, state, ctx);
        })
    }

    /// The answer to a resuming subscribe: the server's epoch and head.
    pub fn handle_subscribed(
        &mut self,
        now: Millis,
        stream: StreamId,
        epoch: Epoch,
        head: Seq,
    ) -> Result<(), Error> {
        check_epoch(Some(epoch))?;
        self.with_stream(stream, |s, ctx| {
            s.hear();
            s.on_subscribed(now, epoch, head, ctx);
        })
    }

    /// The request the stream waits on (a subscribe or a snapshot) is
    /// being answered piece by piece: its deadline starts again from `now`,
    /// so that a long answer is not taken for a lost one.
    ///
    /// # Errors
    /// [`Error::UnknownStream`] for a stale handle.
    pub fn handle_progress(&mut self, now: Millis, stream: StreamId) -> Result<(), Error> {
        self.with_stream(stream, |s, ctx| s.on_progress(now, ctx))
    }

    /// A history answer that covers `range`: every seq of the range that is
    /// not in `messages` will never be sent (filtered or deleted), and the
    /// stream moves past it. Only the part of `range` that was requested
    /// counts; answers to nothing in flight are ignored.
    ///
    /// # Errors
    /// [`Error::HistoryOutOfRange`] when a message lies outside `range`; the
    /// whole answer is then ignored.
    pub fn handle_history(
        &mut self,
        now: Millis,
        stream: StreamId,
        range: SeqRange,
        epoch: Option<Epoch>,
        messages: Vec<(Seq, P)>,
    ) -> Result<(), Error> {
        check_epoch(epoch)?;
        if let Some((seq, _)) = messages.iter().find(|(seq, _)| !range.contains(*seq)) {
            return Err(Error::HistoryOutOfRange {
                stream: self.stream_name(stream).map_or_else(
                    || raw_id("StreamId(", stream, ")"),
                    |n| n.as_str().to_string(),
                ),
                from: range.start().get(),
                to: range.end().get(),
                seq: seq.get(),
            });
        }
        self.with_stream(stream, |s, ctx| {
            s.hear();
            s.on_history(now, range, epoch, messages, ctx);
        })
    }

    /// A heartbeat: the server's latest seq for the stream. A head beyond
    /// everything seen reveals a lost tail, requested after `gap_timeout_ms`.
    pub fn handle_head(
        &mut self,
        now: Millis,
        stream: StreamId,
        head: Seq,
        epoch: Option<Epoch>,
    ) -> Result<(), Error> {
        check_epoch(epoch)?;
        self.with_stream(stream, |s, ctx| {
            s.hear();
            s.on_head(now, head, epoch, ctx);
        })
    }

    /// The server cannot serve what is missing (retention) or says the stream
    /// must start over: a `Reset` event, then a snapshot is requested.
    pub fn handle_reset(
        &mut self,
        now: Millis,
        stream: StreamId,
        reason: ResetReason,
        earliest: Option<Seq>,
    ) -> Result<(), Error> {
        self.with_stream(stream, |s, ctx| {
            s.hear();
            s.on_reset(now, reason, earliest, ctx);
        })
    }

    /// Time passed: sends due history requests and retries. Visits only
    /// the streams whose deadline passed.
    pub fn handle_timeout(&mut self, now: Millis) {
        while let Some(due) = self.timers.peek() {
            if due.at > now {
                break;
            }
            self.timers.pop();
            if self.is_current(due) {
                self.with_index(due.index as usize, |state, ctx| state.service(now, ctx));
            }
        }
        self.settle_timers();
    }

    // ---- (C) application commands ----------------------------------------------

    /// Starts following `name`. While connected the subscribe request goes
    /// out at once; otherwise on the next `handle_connected`.
    ///
    /// # Errors
    /// [`Error::InvalidStreamName`], [`Error::AlreadySubscribed`],
    /// [`Error::TooManyStreams`].
    pub fn subscribe(
        &mut self,
        now: Millis,
        name: &str,
        options: SubscribeOptions,
    ) -> Result<StreamId, Error> {
        let name = StreamName::new(name)?;
        if let StartAt::After { epoch, .. } = options.start {
            check_epoch(epoch)?;
        }
        if self.by_name.contains_key(&name) {
            return Err(Error::AlreadySubscribed {
                stream: name.as_str().to_string(),
            });
        }
        if self.by_name.len() >= self.config.max_streams {
            return Err(Error::TooManyStreams {
                limit: self.config.max_streams,
            });
        }
        let (index, generation) = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.entries.push(None);
                ((self.entries.len() - 1) as u32, 0)
            }
        };
        let id = StreamId::new(index, generation);
        self.entries[index as usize] = Some(StreamState::new(
            name.clone(),
            generation,
            options.start,
            options.mode,
        ));
        self.by_name.insert(name, id);
        if self.connected {
            self.with_index(index as usize, |state, ctx| state.on_connected(now, ctx));
        }
        Ok(id)
    }

    /// Stops following a stream and frees everything it held, including its
    /// events not yet polled.
    pub fn unsubscribe(&mut self, _now: Millis, stream: StreamId) -> Result<(), Error> {
        self.with_stream(stream, |state, ctx| state.on_unsubscribe(ctx))?;
        let index = stream.index();
        if let Some(state) = self.entries[index as usize].take() {
            self.by_name.remove(state.name());
        }
        self.free.push((index, stream.generation().wrapping_add(1)));
        self.events.retain(|e| e.stream() != stream);
        self.settle_timers();
        Ok(())
    }

    /// Marks the epoch the stream was last given (by `handle_snapshot` or
    /// `handle_subscribed`) as assumed rather than told by the server: the
    /// first frame that names an epoch sets it instead of resetting the
    /// stream. For a server whose answers carry no epoch while its messages
    /// do (a foreign server).
    #[cfg(feature = "foreign")]
    pub(crate) fn assume_epoch(&mut self, stream: StreamId) {
        if let Some(state) = slot_mut(&mut self.entries, stream) {
            state.assume_epoch();
        }
    }

    /// The silence check: every live stream that heard nothing (no message,
    /// no `head` naming it, no answer) since the previous call is subscribed
    /// again, and a new period starts. Call it periodically, with a period
    /// well above the server's heartbeat interval, while connected: it is
    /// what keeps a stream whose subscription the server does not hold (a
    /// lost or refused subscribe whose answer was mistaken for another's)
    /// from staying silent for ever. Returns how many streams resubscribed.
    pub fn resubscribe_silent(&mut self, now: Millis) -> usize {
        if !self.connected {
            return 0;
        }
        let mut count = 0;
        for index in 0..self.entries.len() {
            let silent = self
                .entries
                .get_mut(index)
                .and_then(Option::as_mut)
                .is_some_and(StreamState::take_silence);
            if silent {
                count += 1;
                self.with_index(index, |state, ctx| state.on_silent(now, ctx));
            }
        }
        count
    }

    // ---- (D) outputs -----------------------------------------------------------

    /// The next frame to send to the server.
    pub fn poll_request(&mut self) -> Option<Request> {
        self.requests.pop_front()
    }

    /// When `handle_timeout` must be called next, if at all. O(1).
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.timers.peek().map(|due| due.at)
    }

    /// The next event for the application.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event<P>> {
        self.events.pop_front()
    }

    // ---- plumbing --------------------------------------------------------------

    #[inline]
    fn with_stream<R: Default>(
        &mut self,
        id: StreamId,
        f: impl FnOnce(&mut StreamState<P>, &mut Ctx<'_, P>) -> R,
    ) -> Result<R, Error> {
        let index = id.index() as usize;
        match self.entries.get(index) {
            Some(Some(state)) if state.generation() == id.generation() => {}
            _ => return Err(unknown(id)),
        }
        Ok(self.with_index(index, f))
    }

    /// Runs `f` on the stream in slot `index` (if any) with its context, and
    /// schedules the stream's new deadline when `f` moved it.
    fn with_index<R: Default>(
        &mut self,
        index: usize,
        f: impl FnOnce(&mut StreamState<P>, &mut Ctx<'_, P>) -> R,
    ) -> R {
        let Some(state) = self.entries.get_mut(index).and_then(Option::as_mut) else {
            return R::default();
        };
        let generation = state.generation();
        let before = state.deadline();
        let mut ctx = Ctx {
            config: &self.config,
            window: self.window,
            connected: self.connected,
            id: StreamId::new(index as u32, generation),
            events: &mut self.events,
            requests: &mut self.requests,
            spare: &mut self.spare,
        };
        let result = f(state, &mut ctx);
        let after = state.deadline();
        if after != before {
            if let Some(at) = after {
                self.timers.push(Due {
                    at,
                    index: index as u32,
                    generation,
                });
            }
            // The entry for `before` is stale now; it may be the top.
            self.settle_timers();
        }
        result
    }

    /// Whether a timer entry is the current deadline of a live stream.
    fn is_current(&self, due: Due) -> bool {
        self.entries
            .get(due.index as usize)
            .and_then(Option::as_ref)
            .is_some_and(|s| s.generation() == due.generation && s.deadline() == Some(due.at))
    }

    /// Drops stale entries from the top of the timer queue, so that its top
    /// is the earliest real deadline, and rebuilds the queue when stale
    /// entries below the top have piled up.
    fn settle_timers(&mut self) {
        while let Some(due) = self.timers.peek() {
            if self.is_current(due) {
                break;
            }
            self.timers.pop();
        }
        if self.timers.len() > 2 * self.by_name.len() + 64 {
            let live = self.entries.iter().enumerate().filter_map(|(index, s)| {
                let s = s.as_ref()?;
                Some(Due {
                    at: s.deadline()?,
                    index: index as u32,
                    generation: s.generation(),
                })
            });
            self.timers.rebuild(live);
        }
    }
}

impl<P> core::fmt::Debug for Sequencer<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sequencer")
            .field("streams", &self.by_name.len())
            .field("connected", &self.connected)
            .field("queued_events", &self.events.len())
            .field("queued_requests", &self.requests.len())
            .finish()
    }
}

/// The live stream a handle names, if the handle is not stale. A free
/// function so that callers can borrow the sequencer's other fields beside it.
#[inline]
fn slot_mut<P>(
    entries: &mut [Option<StreamState<P>>],
    id: StreamId,
) -> Option<&mut StreamState<P>> {
    entries
        .get_mut(id.index() as usize)?
        .as_mut()
        .filter(|s| s.generation() == id.generation())
}

/// Epochs are at most 2^53 - 1 (protocol section 3.4).
#[inline]
fn check_epoch(epoch: Option<Epoch>) -> Result<(), Error> {
    match epoch {
        Some(e) if e.0 > MAX_SEQ => Err(Error::EpochOutOfRange { epoch: e.0 }),
        _ => Ok(()),
    }
}

fn unknown(id: StreamId) -> Error {
    Error::UnknownStream {
        stream: raw_id("#", id, ""),
    }
}

/// A handle in an error message, `before` and `after` around its number:
/// written without `core::fmt`, which the browser module leaves out.
fn raw_id(before: &str, id: StreamId, after: &str) -> String {
    let mut text = String::from(before);
    crate::protocol::encode::decimal(&mut text, id.to_raw());
    text.push_str(after);
    text
}

/// What one idle stream costs a sequencer with payload `P`, in bytes:
/// `(state, total)`. `state` is its slot (the per-stream state machine with
/// its counters); `total` adds its entry in the name index and its name's
/// allocation. "Idle" means subscribed, live and with nothing pending:
/// recovery state (ring, holes, fetches) is allocated only on demand.
#[doc(hidden)]
pub fn idle_stream_bytes<P>(name: &str) -> (usize, usize) {
    let state = core::mem::size_of::<Option<StreamState<P>>>();
    // The name index is a sorted `Vec` of (name, handle): one entry, its
    // spare capacity left out.
    let entry = core::mem::size_of::<(StreamName, StreamId)>();
    let name_heap = 2 * core::mem::size_of::<usize>() + name.len();
    (state, state + entry + name_heap)
}
