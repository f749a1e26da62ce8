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

mod connection;
mod events;
#[cfg(feature = "foreign")]
mod foreign;
#[cfg(not(feature = "foreign"))]
#[path = "session/without_foreign.rs"]
mod foreign;
mod input;
mod positions;
mod publishes;

pub use events::{CloseReason, ConnId, PublishError, SessionEvent, StopReason, Transmit};
pub use input::Input;

use crate::prelude::*;
use alloc::collections::VecDeque;

use self::connection::{Link, LinkState};
use crate::config::SessionConfig;
use crate::error::Error;
use crate::event::Request;
use crate::map::VecMap;
use crate::protocol::{RequestRef, encode};
use crate::publish::{PublishId, Publishes};
use crate::rng::Rng;
use crate::sequencer::{Sequencer, SubscribeOptions};
use crate::types::{DeliveryMode, Epoch, Millis, Seq, StartAt, StreamId, StreamName};

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
/// (`subscribe`, `unsubscribe`, `publish`, `checkpoint`, `connect`,
/// `disconnect`, `close`, `abort`);
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
    positions: VecMap<StreamName, (Seq, Epoch)>,
    /// Whether the shell keeps positions ([`Session::resume_from`] was
    /// called): only then does a subscribe resume from them. Without, a
    /// stream subscribed again starts from a snapshot, as the first time.
    keeps_positions: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SessionEvent<P>>,
    stats: SessionStats,
    timers: Timers,
    closing: bool,
    /// The frame size limit the server announced last (protocol section
    /// 3.7), in bytes.
    server_frame_limit: Option<usize>,
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
            positions: VecMap::new(),
            keeps_positions: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: SessionStats::default(),
            timers: Timers::default(),
            closing: false,
            server_frame_limit: None,
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

    /// The frame size limit the server announced last (`frame_limit` of
    /// its `head` frames), in bytes; `None` until a server announces one.
    /// A publish over it, or over `max_publish_bytes`, is refused before
    /// it is sent.
    pub fn server_frame_limit(&self) -> Option<usize> {
        self.server_frame_limit
    }

    // ---- (B) inputs from the transport and the clock ---------------------------

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
                if let Some(text) = self.publishes.get(publish).map(|p| String::from(&*p.frame)) {
                    self.send(text);
                }
            }
        }
        self.persist_if_due(now);
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

    /// Starts connecting again after [`disconnect`](Self::disconnect) or a
    /// give-up ([`SessionEvent::Stopped`]), at once and with the backoff
    /// reset; while waiting out a backoff, starts the next attempt now.
    /// Does nothing while an attempt is under way or a connection is open.
    /// After a stop, the first connection has `initial_connect_timeout_ms`
    /// again before the session gives up. Streams still registered
    /// subscribe on the new connection, resuming from their positions, then
    /// pending publishes are sent again.
    ///
    /// # Errors
    /// [`Error::Closed`] once [`close`](Self::close) or
    /// [`abort`](Self::abort) was called.
    pub fn connect(&mut self, now: Millis) -> Result<(), Error> {
        if self.closing || self.is_closed() {
            return Err(Error::Closed);
        }
        match self.link.state {
            LinkState::Stopped => {
                self.link.ever_connected = false;
                self.link.started = now;
            }
            LinkState::Waiting { .. } => {}
            LinkState::Connecting { .. } | LinkState::Open { .. } | LinkState::Closed => {
                return Ok(());
            }
        }
        self.link.failures = 0;
        self.start_attempt(now);
        self.after(now);
        Ok(())
    }

    /// Closes the connection (or abandons the attempt) and stops
    /// reconnecting until [`connect`](Self::connect):
    /// [`SessionEvent::Stopped`] with [`StopReason::Disconnected`] comes.
    /// Streams stay registered; pending publishes stay pending, each on its
    /// own `publish_timeout_ms` clock. Ignored once closing or closed.
    pub fn disconnect(&mut self, now: Millis) {
        if self.closing || self.is_closed() {
            return;
        }
        match self.link.state {
            LinkState::Open { conn, .. } | LinkState::Connecting { conn, .. } => {
                self.transmits.push_back(Transmit::Disconnect {
                    conn,
                    code: 1000,
                    reason: "client disconnected",
                });
                self.end_open(now);
            }
            LinkState::Waiting { .. } | LinkState::Stopped | LinkState::Closed => {}
        }
        self.stop(StopReason::Disconnected);
        self.after(now);
    }

    /// Closes cleanly: every stream is unsubscribed (its position reported)
    /// and takes no new work; publishes still pending keep being retried,
    /// across reconnects, until each is acknowledged or times out; then the
    /// connection is closed and [`SessionEvent::Closed`] comes. A session
    /// that is stopped ([`disconnect`](Self::disconnect), or it gave up)
    /// does not connect again for them: it closes at once, as
    /// [`abort`](Self::abort).
    pub fn close(&mut self, now: Millis) {
        if self.closing || self.is_closed() {
            return;
        }
        self.closing = true;
        let streams: Vec<StreamId> = self.seq.streams().map(|(id, _)| id).collect();
        for id in streams {
            let _ = self.unsubscribe(now, id);
        }
        if self.link.state == LinkState::Stopped {
            self.fail_pending();
        }
        self.finish_close_if_drained();
        self.after(now);
    }

    /// Closes at once: pending publishes fail with [`PublishError::Closed`]
    /// (each may have been stored: it may have been sent).
    pub fn abort(&mut self, _now: Millis) {
        if self.is_closed() {
            return;
        }
        self.closing = true;
        self.fail_pending();
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
            LinkState::Stopped => None,
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

    // ---- requests and answers --------------------------------------------------

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
}

impl<P> core::fmt::Debug for Session<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("link", &self.link.state)
            .field("streams", &self.seq.len())
            .field("pending_publishes", &self.publishes.len())
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}
