//! What the [`Session`](crate::Session) asks of its shell ([`Transmit`]) and
//! tells the application ([`SessionEvent`]). The sequencer's own events and
//! requests are in `event.rs`, which knows nothing of these.

use crate::adapter::{FetchId, ForeignRequest};
use crate::event::Event;
use crate::prelude::*;
use crate::protocol::ErrorCode;
use crate::publish::PublishId;
use crate::types::{Epoch, Seq, StreamId, StreamName};

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
        id: Option<FetchId>,
        /// The request.
        request: ForeignRequest,
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
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// No ack within `publish_timeout_ms`. The message may still have been
    /// stored: the server did not say.
    TimedOut,
    /// The session closed before the answer came (`abort`, or `close`
    /// while stopped or giving up): the message may have been stored if it
    /// was sent.
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
    /// The server refused the publish as too large: it answered
    /// `frame_too_large`, or closed the connection with 1009 after it was
    /// sent (protocol section 8.9). It was not stored and is never sent
    /// again.
    TooLarge {
        /// Size of its frame, in bytes.
        len: usize,
        /// The frame size limit the server announced, when it did.
        limit: Option<usize>,
    },
}

/// Why a session ended, in [`SessionEvent::Closed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The application closed it (`close` or `abort`).
    Closed,
}

/// Why a session stopped connecting, in [`SessionEvent::Stopped`]. Either
/// way it stays usable: `connect` starts again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The application called `disconnect`.
    Disconnected,
    /// No connection opened within `initial_connect_timeout_ms` of the
    /// start or of the last `connect`.
    GaveUp {
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
    /// The session stopped connecting and waits for `connect`: its
    /// streams stay registered, its publishes pending (each until its
    /// timeout).
    Stopped {
        /// Why.
        reason: StopReason,
    },
    /// The session ended: nothing more will happen.
    Closed {
        /// Why.
        reason: CloseReason,
    },
    /// A publish is stored as `seq`.
    PublishAcked {
        /// The publish.
        publish: PublishId,
        /// Its seq.
        seq: Seq,
    },
    /// A publish failed.
    PublishFailed {
        /// The publish.
        publish: PublishId,
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
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// An `error` frame about nothing the session waits for (diagnostics).
    ServerError {
        /// The code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
}
