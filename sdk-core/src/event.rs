//! What the core tells the application ([`Event`]) and the server ([`Request`]).

use crate::types::{Epoch, Seq, SeqRange, StreamId, StreamName};

/// Something the application must see, drained with
/// [`Sequencer::poll_event`](crate::Sequencer::poll_event).
///
/// Events of one stream come in the order they happened. For an `Ordered`
/// stream, `Message` seqs are strictly increasing and contiguous except
/// across a `Skipped` (seqs the server will never send this client) or a
/// `Reset` followed by `Snapshot`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<P> {
    /// The next message of the stream.
    Message {
        /// The stream.
        stream: StreamId,
        /// Its seq.
        seq: Seq,
        /// Its payload.
        payload: P,
    },
    /// The stream's state at `seq`: replaces whatever the application held.
    /// Messages after it continue from `seq + 1`.
    Snapshot {
        /// The stream.
        stream: StreamId,
        /// Last seq folded into `state`.
        seq: Seq,
        /// The log incarnation this snapshot belongs to.
        epoch: Epoch,
        /// The state.
        state: P,
    },
    /// The server no longer has what is missing (or its log changed epoch):
    /// the application must drop its state; a `Snapshot` follows.
    Reset {
        /// The stream.
        stream: StreamId,
        /// Why.
        reason: ResetReason,
        /// The earliest seq the server still holds, when it said so.
        earliest: Option<Seq>,
    },
    /// Seqs the server will never send this client (filtered or deleted);
    /// the stream moved past them.
    Skipped {
        /// The stream.
        stream: StreamId,
        /// The seqs.
        range: SeqRange,
    },
    /// A range is missing: messages beyond it are held back until it arrives.
    GapDetected {
        /// The stream.
        stream: StreamId,
        /// The missing seqs as first seen.
        range: SeqRange,
    },
    /// Every hole of the stream is closed again; delivered through `through`.
    GapHealed {
        /// The stream.
        stream: StreamId,
        /// Last contiguous seq.
        through: Seq,
    },
    /// A request went unanswered `attempts` times; retries continue at the
    /// longest backoff. Told once per request when it reaches
    /// `Config::stall_after_attempts`.
    Stalled {
        /// The stream.
        stream: StreamId,
        /// What is not being answered.
        request: StalledRequest,
        /// Attempts so far.
        attempts: u32,
    },
    /// The stream moved to another phase.
    PhaseChanged {
        /// The stream.
        stream: StreamId,
        /// The new phase.
        phase: StreamPhase,
    },
}

impl<P> Event<P> {
    /// The stream the event is about.
    pub fn stream(&self) -> StreamId {
        match self {
            Event::Message { stream, .. }
            | Event::Snapshot { stream, .. }
            | Event::Reset { stream, .. }
            | Event::Skipped { stream, .. }
            | Event::GapDetected { stream, .. }
            | Event::GapHealed { stream, .. }
            | Event::Stalled { stream, .. }
            | Event::PhaseChanged { stream, .. } => *stream,
        }
    }
}

/// Why a stream was reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    /// The server's retention dropped part of the missing range.
    HistoryUnavailable,
    /// The server's log for the stream is a new incarnation.
    EpochChanged,
    /// The server's head is behind what was already delivered, in the same
    /// epoch: its log lost messages, so later seqs cannot be trusted.
    ServerBehind,
}

impl ResetReason {
    /// The wire name of the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            ResetReason::HistoryUnavailable => "history_unavailable",
            ResetReason::EpochChanged => "epoch_changed",
            ResetReason::ServerBehind => "server_behind",
        }
    }

    /// Parses a wire name; unknown names read as `HistoryUnavailable`, the
    /// conservative meaning (state must be replaced).
    pub fn from_wire(name: &str) -> ResetReason {
        match name {
            "epoch_changed" => ResetReason::EpochChanged,
            "server_behind" => ResetReason::ServerBehind,
            _ => ResetReason::HistoryUnavailable,
        }
    }
}

/// Which request [`Event::Stalled`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StalledRequest {
    /// A history fetch of this range.
    History(SeqRange),
    /// A snapshot (or a subscribe that waits for one).
    Snapshot,
    /// A resuming subscribe that waits for its `subscribed` answer.
    Subscribe,
}

/// The phase of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamPhase {
    /// No connection: nothing is requested until `handle_connected`.
    Disconnected,
    /// A resuming subscribe is out; waiting for the server's `subscribed`.
    Subscribing,
    /// Waiting for a snapshot; live messages are held until it arrives.
    Snapshotting,
    /// Delivering.
    Live,
}

/// Something to send to the server, drained with
/// [`Sequencer::poll_request`](crate::Sequencer::poll_request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Subscribe to `stream`. Without `since` the server answers with a
    /// snapshot; with it, with `subscribed` (its head and epoch).
    Subscribe {
        /// The stream.
        stream: StreamName,
        /// Last seq the client has.
        since: Option<Seq>,
        /// Epoch of `since`, when known.
        epoch: Option<Epoch>,
    },
    /// Stop receiving `stream`.
    Unsubscribe {
        /// The stream.
        stream: StreamName,
    },
    /// Send the messages of `range` (inclusive).
    FetchHistory {
        /// The stream.
        stream: StreamName,
        /// Exactly the missing seqs.
        range: SeqRange,
    },
    /// Send a fresh snapshot.
    FetchSnapshot {
        /// The stream.
        stream: StreamName,
    },
}

/// One connection attempt of a [`Session`](crate::Session). Inputs about a
/// connection name it, so that news of an attempt the session already gave
/// up on is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// What the shell must do with the transport, drained with
/// [`Session::poll_transmit`](crate::Session::poll_transmit), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Open a WebSocket to `url` (the endpoint with the token), then report
    /// `handle_opened(conn)` or `handle_closed(conn)`.
    Connect {
        /// The attempt.
        conn: ConnId,
        /// Index of the endpoint in `SessionConfig::endpoints`.
        endpoint: usize,
        /// The URL to open.
        url: String,
    },
    /// A request to a server that does not speak the protocol (a session
    /// made with [`Session::foreign`](crate::Session::foreign)): the
    /// adapter turns it into a frame on the open connection, an HTTP
    /// request or nothing. With an `id`, the answer is expected through
    /// [`Session::handle_fetched`](crate::Session::handle_fetched), exactly
    /// once (a failure or a timeout too, as [`FetchAnswer::Failed`](crate::adapter::FetchAnswer::Failed)).
    Foreign {
        /// What the answer must name.
        id: Option<crate::adapter::FetchId>,
        /// The request.
        request: crate::adapter::ForeignRequest,
    },
    /// Send this text frame on the open connection.
    Send {
        /// The frame.
        text: String,
    },
    /// Close the connection (or abandon the attempt) `conn`, with this
    /// close code and reason, and feed nothing more from it.
    Disconnect {
        /// The connection.
        conn: ConnId,
        /// WebSocket close code.
        code: u16,
        /// Why.
        reason: &'static str,
    },
}

/// Why a publish failed, in [`SessionEvent::PublishFailed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishError {
    /// The server refused it with a code that a retry cannot fix.
    Refused {
        /// The code.
        code: crate::protocol::ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// No ack within `publish_timeout_ms`. The message may still have been
    /// stored: the server did not say.
    TimedOut,
    /// The session closed first (`abort`, or the first connection never
    /// came). The message may have been stored if it was sent.
    Closed,
    /// A foreign server's publish request failed, or its answer said no
    /// (`429` and `503` are retried instead). The message may have been
    /// stored if the request reached the server.
    Failed {
        /// Why, in words.
        reason: String,
        /// The HTTP status, when there was one.
        status: Option<u16>,
    },
}

/// Why a session ended, in [`SessionEvent::Closed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The application closed it.
    Closed,
    /// No connection could be opened within `initial_connect_timeout_ms`.
    ConnectFailed {
        /// Why the last attempt failed.
        reason: String,
    },
}

/// Something the application must see, drained with
/// [`Session::poll_event`](crate::Session::poll_event).
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent<P> {
    /// An event of one stream, from the sequencer.
    Stream(Event<P>),
    /// A connection attempt started.
    Connecting {
        /// Index of the endpoint.
        endpoint: usize,
        /// Failures in a row before this attempt.
        attempt: u32,
    },
    /// A connection is open; every stream subscribes (again).
    Connected {
        /// Index of the endpoint.
        endpoint: usize,
    },
    /// The connection (or attempt) ended; the next attempt starts after
    /// `retry_in_ms`.
    Disconnected {
        /// Why.
        reason: String,
        /// The wait before the next attempt.
        retry_in_ms: u64,
    },
    /// The session ended: nothing more will happen.
    Closed {
        /// Why.
        reason: CloseReason,
    },
    /// A publish is stored as `seq`.
    PublishAcked {
        /// The publish.
        publish: crate::PublishId,
        /// Its seq.
        seq: Seq,
    },
    /// A publish failed.
    PublishFailed {
        /// The publish.
        publish: crate::PublishId,
        /// Why.
        error: PublishError,
    },
    /// A stream's resume position changed: persist it to resume there later
    /// (hand it back with `Session::resume_from`).
    Position {
        /// The stream.
        stream: StreamName,
        /// Everything up to this seq was handed to the application.
        seq: Seq,
        /// The log incarnation the seq belongs to.
        epoch: Epoch,
    },
    /// The server refused a request for this stream (for example
    /// `unauthorized`). The request is retried with backoff like an
    /// unanswered one.
    Refused {
        /// The stream.
        stream: StreamId,
        /// The code.
        code: crate::protocol::ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// An `error` frame about nothing the session waits for (diagnostics).
    ServerError {
        /// The code.
        code: crate::protocol::ErrorCode,
        /// The server's explanation.
        message: String,
    },
}
