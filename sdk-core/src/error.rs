//! The one error type of `seqsync-core`.

use crate::prelude::*;

/// Everything that can be wrong with an input to the core.
///
/// An `Err` from any `handle_*` method means the input was rejected and the
/// sequencer's state is unchanged: nothing was delivered, nothing was lost.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A seq outside `1..=2^53-1` for a message (or above `2^53-1` for a position).
    #[error("seq {seq} is out of range (messages use 1..=9007199254740991)")]
    SeqOutOfRange {
        /// The offending value.
        seq: u64,
    },
    /// An epoch above 2^53-1 (protocol section 3.4).
    #[error("epoch {epoch} is out of range (at most 9007199254740991)")]
    EpochOutOfRange {
        /// The offending value.
        epoch: u64,
    },
    /// An inclusive range that is inverted or starts at 0.
    #[error("invalid seq range {from}..={to}")]
    InvalidRange {
        /// Its first seq.
        from: u64,
        /// Its last seq.
        to: u64,
    },
    /// A stream name that is empty, too long or has control characters.
    #[error("invalid stream name {name:?}")]
    InvalidStreamName {
        /// The name (cut to 64 characters).
        name: String,
    },
    /// Something the server's adapter cannot do (a publish through a
    /// foreign server without a publish request).
    #[error("not supported: {what}")]
    Unsupported {
        /// What.
        what: &'static str,
    },
    /// A stream handle or name that is not subscribed (or no longer).
    #[error("stream {stream} is not subscribed")]
    UnknownStream {
        /// The stream's name, or its raw handle.
        stream: String,
    },
    /// `subscribe` for a stream that already has a subscription.
    #[error("stream {stream} is already subscribed")]
    AlreadySubscribed {
        /// The stream's name.
        stream: String,
    },
    /// More streams than `Config::max_streams`.
    #[error("too many streams (limit {limit})")]
    TooManyStreams {
        /// The configured limit.
        limit: usize,
    },
    /// A frame larger than the configured limit; it was not parsed.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Size of the frame.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A frame that is not valid JSON or lacks a required field.
    #[error("malformed frame: {reason}")]
    MalformedFrame {
        /// What the parser said.
        reason: String,
    },
    /// A frame whose `type` this protocol version does not know.
    #[error("unknown frame type {kind:?}")]
    UnknownFrameType {
        /// The `type` field as received (cut to 64 characters).
        kind: String,
    },
    /// A session with no endpoint to connect to.
    #[error("no endpoint to connect to")]
    NoEndpoints,
    /// The session is closed (or closing): it takes no new work.
    #[error("the session is closed")]
    Closed,
    /// More publishes waiting for an ack than `max_pending_publishes`.
    #[error("too many publishes waiting for an ack (limit {limit})")]
    TooManyPendingPublishes {
        /// The configured limit.
        limit: usize,
    },
    /// A publish whose frame is over the effective limit: the smaller of
    /// `max_publish_bytes` and the frame size limit the server announced.
    /// Nothing was sent.
    #[error("publish of {len} bytes is over the {side} limit of {max} bytes")]
    PublishTooLarge {
        /// Size of the frame.
        len: usize,
        /// The limit.
        max: usize,
        /// Which side set the limit.
        side: LimitSide,
    },
    /// A history response whose messages fall outside the range it claims.
    #[error("history for {stream} claims {from}..={to} but holds seq {seq}")]
    HistoryOutOfRange {
        /// The stream.
        stream: String,
        /// Claimed first seq.
        from: u64,
        /// Claimed last seq.
        to: u64,
        /// The seq outside it.
        seq: u64,
    },
}

/// Which side set a size limit: the client's own configuration
/// (`max_publish_bytes`), or the server, which announced its frame size
/// limit (protocol section 3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitSide {
    /// The client's configuration.
    Client,
    /// The server's announcement.
    Server,
}

impl core::fmt::Display for LimitSide {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            LimitSide::Client => "client's",
            LimitSide::Server => "server's",
        })
    }
}
