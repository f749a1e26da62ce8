//! The [`Session`]: the whole client above the [`Sequencer`], as a sans-IO
//! state machine. It decides everything a client decides about its
//! connection: which endpoint next and when (backoff with full jitter from
//! a seeded CSPRNG), when an attempt or a peer is dead, what is sent on a
//! new connection and in which order, publish ids, which publishes are
//! pending and when they are retried or given up, how answers are matched
//! to requests (`ref`), when a silent stream subscribes again, and which
//! resume positions to report. A shell (the tokio client, the browser
//! package) owns the socket and one timer and only carries out what the
//! session asks.

#[cfg(feature = "foreign")]
mod foreign;
#[cfg(not(feature = "foreign"))]
#[path = "session/without_foreign.rs"]
mod foreign;
mod input;

pub use input::Input;

use std::collections::{HashMap, VecDeque};

use crate::config::SessionConfig;
use crate::error::Error;
use crate::event::{
    CloseReason, ConnId, PublishError, Request, ResetReason, SessionEvent, Transmit,
};
use crate::protocol::{ErrorCode, RequestRef, encode, parse_stream_ref};
use crate::publish::{Pending, PublishId, Publishes};
use crate::rng::Rng;
use crate::sequencer::{Sequencer, SubscribeOptions};
use crate::types::{DeliveryMode, Epoch, Millis, Seq, SeqRange, StartAt, StreamId, StreamName};

/// Client-wide counters, from [`Session::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Connections opened (the first one included).
    pub connects: u64,
    /// Open connections that ended (lost, dead peer, closed by the server).
    pub disconnects: u64,
    /// Connection attempts that never opened.
    pub connect_failures: u64,
    /// Frames received.
    pub frames: u64,
    /// Bytes of frames received.
    pub bytes: u64,
    /// Frames that could not be used (unparseable, rejected values).
    pub bad_frames: u64,
    /// Frames sent (over a foreign server: requests made, frames and HTTP
    /// requests alike).
    pub frames_sent: u64,
    /// Bytes of protocol frames sent (not counted over a foreign server,
    /// whose adapter writes the requests).
    pub bytes_sent: u64,
    /// `history` answers received.
    pub history_frames: u64,
    /// Bytes of `history` answers.
    pub history_bytes: u64,
    /// Messages inside `history` answers.
    pub history_messages: u64,
    /// Of those, messages the client already had (wasted recovery traffic).
    pub history_duplicates: u64,
    /// Publishes acknowledged.
    pub published: u64,
    /// Publishes sent again after a `rate_limited` or `internal` refusal.
    pub publish_retries: u64,
    /// Publishes that failed (refused, timed out, closed).
    pub publish_failures: u64,
    /// Publishes waiting for their ack now.
    pub pending_publishes: u64,
    /// Subscribes sent again because a live stream went silent.
    pub resubscribes: u64,
    /// Answers dropped because their `ref` names an earlier subscription.
    pub stale_answers: u64,
    /// Requests the server refused (`error` naming a request of a stream).
    pub refused_requests: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    /// Waiting out the backoff before the next attempt.
    Waiting {
        until: Millis,
    },
    /// An attempt is under way.
    Connecting {
        conn: ConnId,
        endpoint: usize,
        deadline: Millis,
    },
    /// Connected. `check_at` is when the dead-peer check looks at
    /// `last_rx` next (moved only when it fires, not per frame).
    Open {
        conn: ConnId,
        endpoint: usize,
        opened: Millis,
        last_rx: Millis,
        check_at: Millis,
    },
    Closed,
}

/// The connection policy's state: which attempt, which endpoint next, how
/// many failures in a row.
#[derive(Debug)]
struct Link {
    state: LinkState,
    next_conn: u64,
    /// The endpoint the next attempt uses.
    cursor: usize,
    /// Failures in a row: attempts that did not open and connections that
    /// ended before `stable_after_ms`.
    failures: u32,
    ever_connected: bool,
    started: Millis,
}

/// The session's own deadlines besides the sequencer's: one slot each, so
/// that the earliest is found in O(1).
#[derive(Debug, Default, Clone, Copy)]
struct Timers {
    silence: Option<Millis>,
    persist: Option<Millis>,
    publishes: Option<Millis>,
}

/// The client as a sans-IO state machine over one connection at a time:
/// the [`Sequencer`] for every stream plus the connection policy.
///
/// Methods come in the quinn-proto order: getters; `handle_*` for what
/// arrives from the transport and the clock; verbs for the application
/// (`subscribe`, `unsubscribe`, `publish`, `checkpoint`, `close`, `abort`);
/// then `poll_*`, drained until `None` after **every** other call, in this
/// order: [`poll_transmit`](Self::poll_transmit) (connect, send,
/// disconnect), [`poll_timeout`](Self::poll_timeout) (when to call
/// [`handle_timeout`](Self::handle_timeout)), [`poll_event`](Self::poll_event).
/// Time (`now`, from any monotonic origin) and randomness (a 32-byte seed
/// from a CSPRNG) are inputs; the session reads no clock and does no IO.
///
/// ```
/// use seqsync_core::{Millis, Session, SessionConfig, SessionEvent, Transmit};
///
/// let mut session = Session::<String>::new(SessionConfig::new("ws://h/ws"), [7; 32], Millis(0))?;
/// let room = session.subscribe(Millis(0), "room", Default::default())?;
/// // Nothing is connected yet: the session asks for a socket.
/// let Some(Transmit::Connect { conn, url, .. }) = session.poll_transmit() else { panic!() };
/// assert_eq!(url, "ws://h/ws");
/// session.handle_opened(Millis(5), conn);
/// // On the new connection every stream subscribes, with its `ref`.
/// assert_eq!(
///     session.poll_transmit(),
///     Some(Transmit::Send { text: r#"{"type":"subscribe","stream":"room","ref":"0.0"}"#.into() })
/// );
/// let id = session.publish(Millis(6), "room", r#"{"text":"hi"}"#)?;
/// assert!(matches!(session.poll_transmit(), Some(Transmit::Send { .. })));
/// session.handle_ack(Millis(9), session.publish_wire_id(id).unwrap().to_string().as_str(), "room", seqsync_core::Seq::new(1)?);
/// let acked = std::iter::from_fn(|| session.poll_event())
///     .any(|e| matches!(e, SessionEvent::PublishAcked { publish, .. } if publish == id));
/// assert!(acked);
/// # let _ = room;
/// # Ok::<(), seqsync_core::Error>(())
/// ```
pub struct Session<P> {
    config: SessionConfig,
    seq: Sequencer<P>,
    rng: Rng,
    link: Link,
    publishes: Publishes,
    /// Resume positions: those the application gave, then the last ones
    /// reported, by stream name.
    positions: HashMap<StreamName, (Seq, Epoch)>,
    /// Whether the shell keeps positions ([`Session::resume_from`] was
    /// called): only then does a subscribe resume from them. Without, a
    /// stream subscribed again starts from a snapshot, as the first time.
    keeps_positions: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SessionEvent<P>>,
    stats: SessionStats,
    timers: Timers,
    closing: bool,
    /// A server that does not speak the protocol: its plan and requests.
    #[cfg(feature = "foreign")]
    foreign: Option<Box<foreign::Foreign<P>>>,
}

impl<P> Session<P> {
    /// A session that starts connecting at once: the first
    /// [`poll_transmit`](Self::poll_transmit) asks for a socket to the
    /// first endpoint. `seed` must come from a CSPRNG: publish ids are
    /// drawn from it.
    ///
    /// # Errors
    /// [`Error::NoEndpoints`] when `config.endpoints` is empty.
    pub fn new(config: SessionConfig, seed: [u8; 32], now: Millis) -> Result<Session<P>, Error> {
        if config.endpoints.is_empty() {
            return Err(Error::NoEndpoints);
        }
        let mut session = Session {
            seq: Sequencer::new(config.core.clone()),
            config,
            rng: Rng::from_seed(seed),
            link: Link {
                state: LinkState::Waiting { until: now },
                next_conn: 0,
                cursor: 0,
                failures: 0,
                ever_connected: false,
                started: now,
            },
            publishes: Publishes::default(),
            positions: HashMap::new(),
            keeps_positions: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: SessionStats::default(),
            timers: Timers::default(),
            closing: false,
            #[cfg(feature = "foreign")]
            foreign: None,
        };
        session.start_attempt(now);
        Ok(session)
    }

    // ---- (A) getters -----------------------------------------------------------

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The sequencer: stream handles, names, phases and per-stream stats.
    pub fn sequencer(&self) -> &Sequencer<P> {
        &self.seq
    }

    /// The handle of a subscribed stream.
    pub fn stream_id(&self, name: &str) -> Option<StreamId> {
        self.seq.stream_id(name)
    }

    /// Client-wide counters.
    pub fn stats(&self) -> SessionStats {
        SessionStats {
            pending_publishes: self.publishes.len() as u64,
            ..self.stats.clone()
        }
    }

    /// The endpoint of the open connection, if one is open.
    pub fn connected_endpoint(&self) -> Option<usize> {
        match self.link.state {
            LinkState::Open { endpoint, .. } => Some(endpoint),
            _ => None,
        }
    }

    /// The open connection, if one is open.
    pub fn connection(&self) -> Option<ConnId> {
        match self.link.state {
            LinkState::Open { conn, .. } => Some(conn),
            _ => None,
        }
    }

    /// Whether the session ended ([`SessionEvent::Closed`] was queued).
    pub fn is_closed(&self) -> bool {
        self.link.state == LinkState::Closed
    }

    /// The id a pending publish carries on the wire (a random UUID).
    pub fn publish_wire_id(&self, publish: PublishId) -> Option<&str> {
        self.publishes.get(publish).map(|p| &*p.wire_id)
    }

    /// Publishes waiting for their ack.
    pub fn pending_publishes(&self) -> usize {
        self.publishes.len()
    }

    // ---- (B) inputs from the transport and the clock ---------------------------

    /// The socket of attempt `conn` is open. Every stream subscribes (again),
    /// then every pending publish is sent again with its id: a message
    /// stored after its stream is registered reaches this client live.
    pub fn handle_opened(&mut self, now: Millis, conn: ConnId) {
        let LinkState::Connecting {
            conn: current,
            endpoint,
            ..
        } = self.link.state
        else {
            return;
        };
        if current != conn {
            return;
        }
        self.link.state = LinkState::Open {
            conn,
            endpoint,
            opened: now,
            last_rx: now,
            check_at: now.plus(self.config.heartbeat_timeout_ms),
        };
        self.link.ever_connected = true;
        self.stats.connects += 1;
        self.events.push_back(SessionEvent::Connected { endpoint });
        if self.config.silence_timeout_ms > 0 {
            self.timers.silence = Some(now.plus(self.config.silence_timeout_ms));
        }
        self.seq.handle_connected(now);
        self.flush_requests(now);
        if self.is_foreign() {
            // Publishes go over HTTP, independent of the socket.
            self.foreign_opened(now);
            self.after(now);
            return;
        }
        self.publishes.clear_retries();
        let frames: Vec<String> = self
            .publishes
            .sendable()
            .map(|(_, p)| p.frame.to_string())
            .collect();
        for text in frames {
            self.send(text);
        }
        self.after(now);
    }

    /// The socket of `conn` closed or failed (or the attempt failed). The
    /// next attempt is scheduled with backoff; news of an attempt the
    /// session already left is ignored.
    pub fn handle_closed(&mut self, now: Millis, conn: ConnId, reason: &str) {
        match self.link.state {
            LinkState::Connecting { conn: current, .. } if current == conn => {
                self.stats.connect_failures += 1;
                self.failed(now, reason.to_string());
            }
            LinkState::Open { conn: current, .. } if current == conn => {
                self.lost(now, reason.to_string());
            }
            _ => {}
        }
        self.after(now);
    }

    /// A frame of `bytes` bytes arrived on the open connection: counted, and
    /// the peer is alive. [`handle_input`](Self::handle_input) does this for
    /// every frame it is given; call it only for a frame that takes another
    /// path (the browser's in-order fast path).
    #[inline]
    pub fn handle_received(&mut self, now: Millis, bytes: usize) {
        self.stats.frames += 1;
        self.stats.bytes += bytes as u64;
        if let LinkState::Open { last_rx, .. } = &mut self.link.state {
            *last_rx = now;
        }
    }

    /// A frame that could not be used (unparseable, too large, a rejected
    /// value): counted, and otherwise ignored.
    pub fn handle_bad_frame(&mut self, _now: Millis) {
        self.stats.bad_frames += 1;
    }

    /// A live message.
    ///
    /// # Errors
    /// As [`Sequencer::handle_message`]; the session is unchanged.
    pub fn handle_message(
        &mut self,
        now: Millis,
        stream: StreamId,
        seq: Seq,
        epoch: Option<Epoch>,
        payload: P,
    ) -> Result<(), Error> {
        let result = self.seq.handle_message(now, stream, seq, epoch, payload);
        self.arm_persist(now);
        self.after(now);
        result
    }

    /// The hot path: as [`Sequencer::handle_message_direct`], an in-order
    /// message with nothing queued comes straight back as `Ok(Some(payload))`
    /// to be delivered now as `seq`.
    ///
    /// # Errors
    /// As [`Sequencer::handle_message`].
    #[inline]
    pub fn handle_message_direct(
        &mut self,
        now: Millis,
        stream: StreamId,
        seq: Seq,
        epoch: Option<Epoch>,
        payload: P,
    ) -> Result<Option<P>, Error> {
        let result = self
            .seq
            .handle_message_direct(now, stream, seq, epoch, payload);
        if self.timers.persist.is_none() {
            self.arm_persist(now);
        }
        if !matches!(result, Ok(Some(_))) {
            self.after(now);
        }
        result
    }

    /// As [`Sequencer::handle_message_in_order`]: `Ok(true)` when `seq` is
    /// delivered now with the payload the caller kept; `Ok(false)` when
    /// nothing happened and the message goes to
    /// [`handle_message`](Self::handle_message).
    ///
    /// # Errors
    /// As [`Sequencer::handle_message`].
    #[inline]
    pub fn handle_message_in_order(
        &mut self,
        now: Millis,
        stream: StreamId,
        seq: Seq,
        epoch: Option<Epoch>,
    ) -> Result<bool, Error> {
        let taken = self.seq.handle_message_in_order(now, stream, seq, epoch)?;
        if taken && self.timers.persist.is_none() {
            self.arm_persist(now);
        }
        Ok(taken)
    }

    /// A `snapshot` answer. `reference` is its `ref`: an answer to an
    /// earlier subscription of the stream is dropped.
    ///
    /// # Errors
    /// As [`Sequencer::handle_snapshot`].
    pub fn handle_snapshot(
        &mut self,
        now: Millis,
        stream: StreamId,
        seq: Seq,
        epoch: Epoch,
        state: P,
        reference: Option<&str>,
    ) -> Result<(), Error> {
        if !self.answers(stream, reference) {
            return Ok(());
        }
        let result = self.seq.handle_snapshot(now, stream, seq, epoch, state);
        self.arm_persist(now);
        self.after(now);
        result
    }

    /// A `subscribed` answer.
    ///
    /// # Errors
    /// As [`Sequencer::handle_subscribed`].
    pub fn handle_subscribed(
        &mut self,
        now: Millis,
        stream: StreamId,
        epoch: Epoch,
        head: Seq,
        reference: Option<&str>,
    ) -> Result<(), Error> {
        if !self.answers(stream, reference) {
            return Ok(());
        }
        let result = self.seq.handle_subscribed(now, stream, epoch, head);
        self.after(now);
        result
    }

    /// A `history` answer covering `range`, counted in the history counters
    /// (its bytes only when it comes through
    /// [`handle_input`](Self::handle_input), which knows them).
    ///
    /// # Errors
    /// As [`Sequencer::handle_history`].
    pub fn handle_history(
        &mut self,
        now: Millis,
        stream: StreamId,
        range: SeqRange,
        epoch: Option<Epoch>,
        messages: Vec<(Seq, P)>,
        reference: Option<&str>,
    ) -> Result<(), Error> {
        self.count_history(messages.len());
        if !self.answers(stream, reference) {
            return Ok(());
        }
        let before = self.seq.stats(stream).map_or(0, |s| s.duplicates);
        let result = self.seq.handle_history(now, stream, range, epoch, messages);
        let after = self.seq.stats(stream).map_or(0, |s| s.duplicates);
        self.stats.history_duplicates += after.saturating_sub(before);
        self.arm_persist(now);
        self.after(now);
        result
    }

    /// One stream's entry of a `head` heartbeat.
    ///
    /// # Errors
    /// As [`Sequencer::handle_head`].
    pub fn handle_head(
        &mut self,
        now: Millis,
        stream: StreamId,
        head: Seq,
        epoch: Option<Epoch>,
    ) -> Result<(), Error> {
        let result = self.seq.handle_head(now, stream, head, epoch);
        self.after(now);
        result
    }

    /// A `reset` frame.
    ///
    /// # Errors
    /// As [`Sequencer::handle_reset`].
    pub fn handle_reset(
        &mut self,
        now: Millis,
        stream: StreamId,
        reason: ResetReason,
        earliest: Option<Seq>,
        reference: Option<&str>,
    ) -> Result<(), Error> {
        if !self.answers(stream, reference) {
            return Ok(());
        }
        let result = self.seq.handle_reset(now, stream, reason, earliest);
        self.after(now);
        result
    }

    /// An `ack`: the publish with wire id `id` is stored as `seq`. An ack
    /// that matches no pending publish of `stream` is ignored (the answer to
    /// a retry of a publish already acknowledged).
    pub fn handle_ack(&mut self, now: Millis, id: &str, stream: &str, seq: Seq) {
        let Some(publish) = self.publishes.find(id) else {
            return;
        };
        if self
            .publishes
            .get(publish)
            .is_some_and(|p| p.stream.as_str() != stream)
        {
            return;
        }
        self.publishes.remove(publish);
        self.stats.published += 1;
        self.events
            .push_back(SessionEvent::PublishAcked { publish, seq });
        self.finish_close_if_drained();
        self.after(now);
    }

    /// An `error` frame. Its `ref` says what it is about: a request of a
    /// stream's current subscription (reported as
    /// [`SessionEvent::Refused`]; the request is retried on its timeout), a
    /// pending publish (`rate_limited` and `internal` are sent again with
    /// the same id after a backoff; other codes fail it), or a stream by
    /// name (a server that does not echo `ref`). Anything else is reported
    /// as [`SessionEvent::ServerError`].
    pub fn handle_error(
        &mut self,
        now: Millis,
        code: ErrorCode,
        message: &str,
        reference: Option<&str>,
    ) {
        if self.is_closed() {
            return;
        }
        let Some(reference) = reference else {
            self.events.push_back(SessionEvent::ServerError {
                code,
                message: message.to_string(),
            });
            return;
        };
        if let Some(id) = parse_stream_ref(reference) {
            if self.seq.stream_name(id).is_some() {
                self.refused(id, code, message);
            } else {
                self.stats.stale_answers += 1;
            }
        } else if let Some(publish) = self.publishes.find(reference) {
            self.publish_refused(now, publish, code, message);
        } else if let Some(id) = self.seq.stream_id(reference) {
            self.refused(id, code, message);
        } else {
            self.events.push_back(SessionEvent::ServerError {
                code,
                message: message.to_string(),
            });
        }
        self.after(now);
    }

    /// Time passed: starts or abandons connection attempts, replaces a dead
    /// connection, retries or fails publishes, runs the sequencer's timers
    /// and the silence check, reports positions.
    pub fn handle_timeout(&mut self, now: Millis) {
        if self.is_closed() {
            return;
        }
        self.tick_link(now);
        if self.seq.poll_timeout().is_some_and(|at| at <= now) {
            self.seq.handle_timeout(now);
        }
        if self.timers.silence.is_some_and(|at| at <= now) {
            let resubscribed = self.seq.resubscribe_silent(now);
            self.stats.resubscribes += resubscribed as u64;
            self.timers.silence = Some(now.plus(self.config.silence_timeout_ms));
        }
        for (publish, _) in self.publishes.take_expired(now) {
            self.publish_failed(publish, PublishError::TimedOut);
        }
        let due = self.publishes.take_due_retries(now);
        if self.is_foreign() {
            for publish in due {
                self.foreign_publish(publish);
            }
            self.foreign_poll(now);
        } else if self.is_open() {
            for publish in due {
                if let Some(text) = self.publishes.get(publish).map(|p| p.frame.to_string()) {
                    self.send(text);
                }
            }
        }
        if self.timers.persist.is_some_and(|at| at <= now) {
            self.timers.persist = None;
            self.report_positions();
        }
        self.finish_close_if_drained();
        self.after(now);
    }

    // ---- (C) application commands ----------------------------------------------

    /// Starts following `name`. Without an explicit resume point, an
    /// `Ordered` stream asks for a snapshot; once the shell keeps positions
    /// (it called [`resume_from`](Self::resume_from)), it resumes instead
    /// from the position given there or last reported, if any.
    ///
    /// # Errors
    /// [`Error::Closed`], or as [`Sequencer::subscribe`].
    pub fn subscribe(
        &mut self,
        now: Millis,
        name: &str,
        options: SubscribeOptions,
    ) -> Result<StreamId, Error> {
        if self.closing || self.is_closed() {
            return Err(Error::Closed);
        }
        let mut options = options;
        if options.start == StartAt::Snapshot && options.mode == DeliveryMode::Ordered {
            if let Some(&(seq, epoch)) = self.positions.get(name).filter(|_| self.keeps_positions) {
                options.start = StartAt::After {
                    seq,
                    epoch: Some(epoch),
                };
            } else if self
                .plan()
                .is_some_and(|p| p.start == crate::adapter::Start::Beginning)
            {
                // A foreign stream read from its first message: a resume
                // from before seq 1, with no snapshot to wait for.
                options.start = StartAt::After {
                    seq: Seq::ZERO,
                    epoch: None,
                };
            }
        }
        self.expect_traffic(now);
        let id = self.seq.subscribe(now, name, options)?;
        self.after(now);
        Ok(id)
    }

    /// Stops following a stream; its position is reported first, and its
    /// events not yet polled are dropped.
    ///
    /// # Errors
    /// [`Error::UnknownStream`] for a stale handle.
    pub fn unsubscribe(&mut self, now: Millis, stream: StreamId) -> Result<(), Error> {
        self.report_position(stream);
        if let Some(name) = self.seq.stream_name(stream).cloned() {
            self.foreign_forget(&name);
        }
        self.seq.unsubscribe(now, stream)?;
        self.events.retain(|e| match e {
            SessionEvent::Refused { stream: s, .. } => *s != stream,
            _ => true,
        });
        self.after(now);
        Ok(())
    }

    /// Publishes `data`, the payload as JSON text (it goes into the frame
    /// as it is), to `stream`. The publish gets a random id, is sent now
    /// if connected, is sent again with the same id after every reconnect
    /// and after `rate_limited`/`internal` refusals, and ends with exactly
    /// one [`SessionEvent::PublishAcked`] or [`SessionEvent::PublishFailed`].
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::InvalidStreamName`],
    /// [`Error::TooManyPendingPublishes`], [`Error::PublishTooLarge`];
    /// nothing is sent then.
    pub fn publish(&mut self, now: Millis, stream: &str, data: &str) -> Result<PublishId, Error> {
        if self.closing || self.is_closed() {
            return Err(Error::Closed);
        }
        let name = StreamName::new(stream)?;
        if self.publishes.len() >= self.config.max_pending_publishes {
            return Err(Error::TooManyPendingPublishes {
                limit: self.config.max_pending_publishes,
            });
        }
        let foreign = self.plan().map(|p| p.publish);
        if foreign == Some(false) {
            return Err(Error::Unsupported {
                what: "publishing: the server's description has no publish request",
            });
        }
        let wire_id = self.rng.uuid();
        // To a foreign server the payload goes as it is, into its request.
        let frame = match foreign {
            Some(_) => data.to_string(),
            None => encode::publish(stream, &wire_id, data),
        };
        if frame.len() > self.config.max_publish_bytes {
            return Err(Error::PublishTooLarge {
                len: frame.len(),
                max: self.config.max_publish_bytes,
            });
        }
        self.expect_traffic(now);
        if self.is_open() && foreign.is_none() {
            self.send(frame.clone());
        }
        let publish = self.publishes.insert(Pending {
            wire_id: wire_id.into_boxed_str(),
            stream: name,
            frame: frame.into_boxed_str(),
            deadline: now.plus(self.config.publish_timeout_ms),
            retries: 0,
            retry_at: None,
        });
        if foreign.is_some() {
            self.foreign_publish(publish);
        }
        self.after(now);
        Ok(publish)
    }

    /// Resume positions the application kept from an earlier run: a later
    /// [`subscribe`](Self::subscribe) of one of these streams resumes after
    /// its seq instead of asking for a snapshot. Calling it (with any
    /// positions, none included) says the shell keeps the positions the
    /// session reports: from then on a stream subscribed again resumes
    /// from its last reported position too.
    pub fn resume_from(&mut self, positions: impl IntoIterator<Item = (StreamName, Seq, Epoch)>) {
        self.keeps_positions = true;
        for (stream, seq, epoch) in positions {
            self.positions.insert(stream, (seq, epoch));
        }
    }

    /// Reports every stream's position that changed since it was last
    /// reported, now (for example before a page unloads).
    pub fn checkpoint(&mut self, _now: Millis) {
        self.report_positions();
    }

    /// Closes cleanly: every stream is unsubscribed (its position reported)
    /// and takes no new work; publishes still pending keep being retried,
    /// across reconnects, until each is acknowledged or times out; then the
    /// connection is closed and [`SessionEvent::Closed`] comes.
    pub fn close(&mut self, now: Millis) {
        if self.closing || self.is_closed() {
            return;
        }
        self.closing = true;
        let streams: Vec<StreamId> = self.seq.streams().map(|(id, _)| id).collect();
        for id in streams {
            let _ = self.unsubscribe(now, id);
        }
        self.finish_close_if_drained();
        self.after(now);
    }

    /// Closes at once: pending publishes fail with [`PublishError::Closed`].
    pub fn abort(&mut self, _now: Millis) {
        if self.is_closed() {
            return;
        }
        self.closing = true;
        for (publish, _) in self.publishes.drain() {
            self.publish_failed(publish, PublishError::Closed);
        }
        self.finish(CloseReason::Closed);
    }

    // ---- (D) outputs -----------------------------------------------------------

    /// The next thing to do with the transport.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if
    /// at all. O(1).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        let link = match self.link.state {
            LinkState::Waiting { until } => Some(until),
            LinkState::Connecting { deadline, .. } => Some(deadline),
            LinkState::Open { check_at, .. } => Some(check_at),
            LinkState::Closed => return None,
        };
        [
            link,
            self.seq.poll_timeout(),
            self.timers.silence,
            self.timers.persist,
            self.timers.publishes,
            self.foreign_poll_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next event for the application: the session's own first, then
    /// the streams'.
    #[must_use]
    #[inline]
    pub fn poll_event(&mut self) -> Option<SessionEvent<P>> {
        match self.events.pop_front() {
            Some(event) => Some(event),
            None => self.seq.poll_event().map(SessionEvent::Stream),
        }
    }

    // ---- connection policy -------------------------------------------------------

    fn is_open(&self) -> bool {
        matches!(self.link.state, LinkState::Open { .. })
    }

    /// Whether the session waits for frames: a subscription, or a publish
    /// waiting for its ack. A connection with neither may be quiet.
    fn expects_traffic(&self) -> bool {
        match self.plan() {
            // Publishes go over HTTP; without heartbeats a quiet stream is
            // just quiet.
            Some(plan) => plan.heartbeats && !self.seq.is_empty(),
            None => !self.seq.is_empty() || !self.publishes.is_empty(),
        }
    }

    /// Starts the dead-peer clock when work arrives on a connection that
    /// had none: its quiet past does not count.
    fn expect_traffic(&mut self, now: Millis) {
        let idle = !self.expects_traffic();
        if let (LinkState::Open { last_rx, .. }, true) = (&mut self.link.state, idle) {
            *last_rx = now;
        }
    }

    fn start_attempt(&mut self, now: Millis) {
        let endpoint = self.link.cursor;
        self.link.cursor = (endpoint + 1) % self.config.endpoints.len();
        let conn = ConnId(self.link.next_conn);
        self.link.next_conn += 1;
        // An attempt never outlives the first connection's deadline.
        let deadline = now.plus(self.config.connect_timeout_ms);
        self.link.state = LinkState::Connecting {
            conn,
            endpoint,
            deadline: self.give_up_at().map_or(deadline, |at| at.min(deadline)),
        };
        let url = encode::connect_url(
            &self.config.endpoints[endpoint],
            self.config.token.as_deref(),
        );
        self.transmits.push_back(Transmit::Connect {
            conn,
            endpoint,
            url,
        });
        self.events.push_back(SessionEvent::Connecting {
            endpoint,
            attempt: self.link.failures,
        });
    }

    fn tick_link(&mut self, now: Millis) {
        match self.link.state {
            LinkState::Waiting { until } if until <= now => self.start_attempt(now),
            LinkState::Connecting { conn, deadline, .. } if deadline <= now => {
                self.transmits.push_back(Transmit::Disconnect {
                    conn,
                    code: 1000,
                    reason: "connect timed out",
                });
                self.stats.connect_failures += 1;
                self.failed(now, "connect timed out".to_string());
            }
            LinkState::Open {
                conn,
                last_rx,
                check_at,
                ..
            } if check_at <= now => {
                let due = last_rx.plus(self.config.heartbeat_timeout_ms);
                if due > now {
                    self.set_check_at(due);
                } else if self.expects_traffic() {
                    self.transmits.push_back(Transmit::Disconnect {
                        conn,
                        code: 4000,
                        reason: "no frame within the heartbeat timeout",
                    });
                    self.lost(now, "no frame within the heartbeat timeout".to_string());
                } else {
                    // Nothing expected, so silence proves nothing: start over.
                    self.expect_traffic(now);
                    self.set_check_at(now.plus(self.config.heartbeat_timeout_ms));
                }
            }
            _ => {}
        }
    }

    /// When the first connection must have opened
    /// (`initial_connect_timeout_ms`), while none has.
    fn give_up_at(&self) -> Option<Millis> {
        (!self.link.ever_connected && self.config.initial_connect_timeout_ms > 0).then(|| {
            self.link
                .started
                .plus(self.config.initial_connect_timeout_ms)
        })
    }

    fn set_check_at(&mut self, at: Millis) {
        if let LinkState::Open { check_at, .. } = &mut self.link.state {
            *check_at = at;
        }
    }

    /// The open connection ended.
    fn lost(&mut self, now: Millis, reason: String) {
        let LinkState::Open { opened, .. } = self.link.state else {
            return;
        };
        self.stats.disconnects += 1;
        if now.0.saturating_sub(opened.0) >= self.config.stable_after_ms {
            self.link.failures = 0;
        }
        self.timers.silence = None;
        // Frames queued for the dead socket are void; the sequencer asks
        // again on the next connection.
        self.transmits
            .retain(|t| !matches!(t, Transmit::Send { .. }));
        self.foreign_lost();
        self.seq.handle_disconnected(now);
        while self.seq.poll_request().is_some() {}
        self.failed(now, reason);
    }

    /// An attempt failed or a connection ended: wait, then try the next
    /// endpoint, unless the session is done.
    fn failed(&mut self, now: Millis, reason: String) {
        if self.closing && self.publishes.is_empty() {
            self.finish(CloseReason::Closed);
            return;
        }
        let bound = self.config.reconnect_bound(self.link.failures);
        let wait = self.rng.up_to(bound);
        // No attempt that starts at or after the first connection's
        // deadline can meet it: give up now rather than wait for it.
        if self.give_up_at().is_some_and(|at| now.plus(wait) >= at) {
            for (publish, _) in self.publishes.drain() {
                self.publish_failed(publish, PublishError::Closed);
            }
            self.finish(CloseReason::ConnectFailed { reason });
            return;
        }
        self.link.failures = self.link.failures.saturating_add(1);
        self.link.state = LinkState::Waiting {
            until: now.plus(wait),
        };
        self.events.push_back(SessionEvent::Disconnected {
            reason,
            retry_in_ms: wait,
        });
        if wait == 0 {
            // Drawn from the jitter: the next attempt is due now.
            self.start_attempt(now);
        }
    }

    fn finish_close_if_drained(&mut self) {
        if self.closing && self.publishes.is_empty() && !self.is_closed() {
            self.finish(CloseReason::Closed);
        }
    }

    fn finish(&mut self, reason: CloseReason) {
        match self.link.state {
            LinkState::Open { conn, .. } | LinkState::Connecting { conn, .. } => {
                self.transmits.push_back(Transmit::Disconnect {
                    conn,
                    code: 1000,
                    reason: "client closed",
                });
            }
            LinkState::Waiting { .. } | LinkState::Closed => {}
        }
        self.link.state = LinkState::Closed;
        self.timers = Timers::default();
        self.events.push_back(SessionEvent::Closed { reason });
    }

    // ---- requests and answers --------------------------------------------------

    /// Whether an answer with `reference` belongs to the stream's current
    /// subscription. Answers without one are matched by stream alone.
    fn answers(&mut self, stream: StreamId, reference: Option<&str>) -> bool {
        match reference {
            None => true,
            Some(text) if parse_stream_ref(text) == Some(stream) => true,
            Some(_) => {
                self.stats.stale_answers += 1;
                false
            }
        }
    }

    fn refused(&mut self, stream: StreamId, code: ErrorCode, message: &str) {
        self.stats.refused_requests += 1;
        self.events.push_back(SessionEvent::Refused {
            stream,
            code,
            message: message.to_string(),
        });
    }

    /// Moves the sequencer's requests to the transmit queue, each with the
    /// `ref` of its stream's subscription. While no connection is open they
    /// are void: the sequencer asks again on connect.
    fn flush_requests(&mut self, now: Millis) {
        while let Some(request) = self.seq.poll_request() {
            if !self.is_open() {
                continue;
            }
            if self.is_foreign() {
                self.foreign_request(now, request);
                continue;
            }
            let stream = match &request {
                Request::Subscribe { stream, .. }
                | Request::FetchHistory { stream, .. }
                | Request::FetchSnapshot { stream } => self.seq.stream_id(stream.as_str()),
                Request::Unsubscribe { .. } => None,
            };
            let reference = stream.map(RequestRef::for_stream);
            let text = encode::request(&request, reference.as_ref());
            self.send(text);
        }
    }

    fn send(&mut self, text: String) {
        self.stats.frames_sent += 1;
        self.stats.bytes_sent += text.len() as u64;
        self.transmits.push_back(Transmit::Send { text });
    }

    /// What every input ends with: the sequencer's requests go out and the
    /// publish deadline is brought up to date.
    fn after(&mut self, now: Millis) {
        self.flush_requests(now);
        self.timers.publishes = self.publishes.next_deadline();
    }

    // ---- publishes -------------------------------------------------------------

    fn publish_refused(&mut self, now: Millis, publish: PublishId, code: ErrorCode, message: &str) {
        if code.is_retryable() {
            let retries = self.publishes.get(publish).map_or(0, |p| p.retries);
            let wait = self.rng.up_to(self.config.reconnect_bound(retries));
            self.publishes.retry_at(publish, now.plus(wait));
            self.stats.publish_retries += 1;
            return;
        }
        self.publishes.remove(publish);
        self.publish_failed(
            publish,
            PublishError::Refused {
                code,
                message: message.to_string(),
            },
        );
        self.finish_close_if_drained();
    }

    fn publish_failed(&mut self, publish: PublishId, error: PublishError) {
        self.stats.publish_failures += 1;
        self.events
            .push_back(SessionEvent::PublishFailed { publish, error });
    }

    // ---- resume positions --------------------------------------------------------

    fn arm_persist(&mut self, now: Millis) {
        if self.config.persist_interval_ms > 0 && self.timers.persist.is_none() {
            self.timers.persist = Some(now.plus(self.config.persist_interval_ms));
        }
    }

    fn report_positions(&mut self) {
        let streams: Vec<StreamId> = self.seq.streams().map(|(id, _)| id).collect();
        for id in streams {
            self.report_position(id);
        }
    }

    /// Reports the stream's position if it has one (an `Ordered` stream with
    /// a known epoch) that differs from the last reported.
    fn report_position(&mut self, id: StreamId) {
        if self.seq.delivery_mode(id) != Some(DeliveryMode::Ordered) {
            return;
        }
        let (Some(name), Some(stats)) = (self.seq.stream_name(id), self.seq.stats(id)) else {
            return;
        };
        let Some(epoch) = stats.epoch else {
            // The stream reset and waits for a snapshot: the position kept
            // for it is void, and a later subscribe must not resume from it.
            let name = name.clone();
            self.positions.remove(&name);
            return;
        };
        let position = (stats.last_seq, epoch);
        if self.positions.get(name) == Some(&position) {
            return;
        }
        let name = name.clone();
        self.positions.insert(name.clone(), position);
        self.events.push_back(SessionEvent::Position {
            stream: name,
            seq: position.0,
            epoch,
        });
    }
}

impl<P> std::fmt::Debug for Session<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("link", &self.link.state)
            .field("streams", &self.seq.len())
            .field("pending_publishes", &self.publishes.len())
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}
