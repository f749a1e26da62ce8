//! Protocol v1: JSON text frames (`docs/protocol.md` is the normative text).
//!
//! Every frame is a JSON object with a `type` field. Seqs are integers in
//! `0..=2^53-1` (messages from 1), stream names 1 to 256 bytes without control
//! characters.
//!
//! What every build has: the [`ErrorCode`]s of an `error` frame, the
//! [`RequestRef`] that matches answers to requests, and [`encode`], which
//! writes the frames a client sends without serde (the browser build leaves
//! serde out). With the `json` feature (on by default) come the serde types
//! of every frame, [`ClientFrame`] and [`ServerFrame`], and their parsers.
//!
//! ```
//! # #[cfg(feature = "json")] {
//! use seqsync_core::protocol::{parse_server_frame, ServerFrame};
//!
//! let frame = parse_server_frame::<serde_json::Value>(
//!     r#"{"type":"msg","stream":"room","seq":7,"data":{"text":"hi"}}"#,
//!     64 * 1024,
//! )?;
//! assert!(matches!(frame, ServerFrame::Msg { seq, .. } if seq.get() == 7));
//! # }
//! # Ok::<(), seqsync_core::Error>(())
//! ```

pub mod encode;
#[cfg(feature = "json")]
mod frames;
mod inbound;
#[cfg(feature = "json")]
mod raw;

pub use inbound::{Fields, HeadMembers, InboundFrame, StreamKey};
#[cfg(feature = "json")]
pub use raw::{RawServerFrame, parse_server_frame_raw};

#[cfg(feature = "json")]
pub use frames::{
    ClientFrame, HeadEntry, HistoryMessage, ServerFrame, WireRange, parse_client_frame,
    parse_server_frame,
};

use crate::error::Error;
use crate::prelude::*;
use crate::types::StreamId;

/// The protocol version these types speak.
pub const PROTOCOL_VERSION: u32 = 1;

/// Default largest frame, in bytes.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1 << 20;

/// Longest request reference, in bytes (section 3.8).
pub const MAX_REF_LEN: usize = 64;

/// Longest publish id, in bytes (section 3.6).
pub const MAX_PUBLISH_ID_LEN: usize = 128;

/// The `code` of an `error` frame (section 6).
///
/// ```
/// use seqsync_core::protocol::ErrorCode;
/// assert_eq!(ErrorCode::from_wire("rate_limited"), ErrorCode::RateLimited);
/// assert!(ErrorCode::RateLimited.is_retryable());
/// assert_eq!(ErrorCode::from_wire("from_the_future"), ErrorCode::Unknown);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Not valid JSON, a missing or mistyped member, a bad publish id or ref.
    MalformedFrame,
    /// A `type` that is not a client frame of this version.
    UnknownType,
    /// The frame exceeds the server's frame size limit.
    FrameTooLarge,
    /// A seq above 2^53 − 1.
    SeqOutOfRange,
    /// A `history` range with `from` 0, `from > to`, or a bound too large.
    InvalidRange,
    /// A stream name that breaks section 3.3, or no room for a new stream.
    InvalidStream,
    /// The token does not allow this stream, or it expired.
    Unauthorized,
    /// The connection holds the most subscriptions it may.
    TooManySubscriptions,
    /// Publishing too fast: retry later with the same id.
    RateLimited,
    /// An `unsubscribe` for a stream not subscribed.
    NotSubscribed,
    /// A `history` request starting above the head.
    RangeBeyondHead,
    /// The server failed to serve a valid request: retry with the same id.
    Internal,
    /// A `subscribe` or `publish` would open a stream while the client's
    /// address, or the server, holds its limit of live streams.
    TooManyStreams,
    /// A code this version does not know: a refusal of the frame it names.
    Unknown,
}

impl ErrorCode {
    /// Every code of section 6, in its order (not `Unknown`).
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::MalformedFrame,
        ErrorCode::UnknownType,
        ErrorCode::FrameTooLarge,
        ErrorCode::SeqOutOfRange,
        ErrorCode::InvalidRange,
        ErrorCode::InvalidStream,
        ErrorCode::Unauthorized,
        ErrorCode::TooManySubscriptions,
        ErrorCode::RateLimited,
        ErrorCode::NotSubscribed,
        ErrorCode::RangeBeyondHead,
        ErrorCode::Internal,
        ErrorCode::TooManyStreams,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedFrame => "malformed_frame",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::SeqOutOfRange => "seq_out_of_range",
            ErrorCode::InvalidRange => "invalid_range",
            ErrorCode::InvalidStream => "invalid_stream",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NotSubscribed => "not_subscribed",
            ErrorCode::RangeBeyondHead => "range_beyond_head",
            ErrorCode::Internal => "internal",
            ErrorCode::TooManyStreams => "too_many_streams",
            ErrorCode::Unknown => "unknown",
        }
    }

    /// Parses a wire name; names this version does not know are `Unknown`.
    pub fn from_wire(name: &str) -> ErrorCode {
        match name {
            "malformed_frame" => ErrorCode::MalformedFrame,
            "unknown_type" => ErrorCode::UnknownType,
            "frame_too_large" => ErrorCode::FrameTooLarge,
            "seq_out_of_range" => ErrorCode::SeqOutOfRange,
            "invalid_range" => ErrorCode::InvalidRange,
            "invalid_stream" => ErrorCode::InvalidStream,
            "unauthorized" => ErrorCode::Unauthorized,
            "too_many_subscriptions" => ErrorCode::TooManySubscriptions,
            "rate_limited" => ErrorCode::RateLimited,
            "not_subscribed" => ErrorCode::NotSubscribed,
            "range_beyond_head" => ErrorCode::RangeBeyondHead,
            "internal" => ErrorCode::Internal,
            "too_many_streams" => ErrorCode::TooManyStreams,
            _ => ErrorCode::Unknown,
        }
    }

    /// Whether a publish refused with this code is sent again with the same
    /// id after a backoff (section 8.9): the server either did not store it
    /// (`rate_limited`) or may have (`internal`), and the id makes a retry
    /// safe either way.
    pub const fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::RateLimited | ErrorCode::Internal)
    }

    /// The index of the code in [`ErrorCode::ALL`] (`ALL.len()` for
    /// `Unknown`), for tables of counters.
    pub const fn index(self) -> usize {
        match self {
            ErrorCode::MalformedFrame => 0,
            ErrorCode::UnknownType => 1,
            ErrorCode::FrameTooLarge => 2,
            ErrorCode::SeqOutOfRange => 3,
            ErrorCode::InvalidRange => 4,
            ErrorCode::InvalidStream => 5,
            ErrorCode::Unauthorized => 6,
            ErrorCode::TooManySubscriptions => 7,
            ErrorCode::RateLimited => 8,
            ErrorCode::NotSubscribed => 9,
            ErrorCode::RangeBeyondHead => 10,
            ErrorCode::Internal => 11,
            ErrorCode::TooManyStreams => 12,
            ErrorCode::Unknown => 13,
        }
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The message reported for an `error` frame whose code this version does
/// not know ([`ErrorCode::Unknown`]): the code as the server wrote it, then
/// its message, as `"<code>: <message>"`, so that nothing the server said
/// is lost.
pub(crate) fn join_unknown_code(code: &str, message: &str) -> String {
    let mut text = String::with_capacity(code.len() + 2 + message.len());
    text.push_str(code);
    text.push_str(": ");
    text.push_str(message);
    text
}

/// The code and the message of an [`ErrorCode::Unknown`] report, for a
/// shell that shows the code on its own (the browser package passes it on
/// as the server wrote it). A message without the prefix gives `"unknown"`.
///
/// ```
/// use seqsync_core::protocol::split_unknown_code;
/// assert_eq!(split_unknown_code("quota_exceeded: slow down"), ("quota_exceeded", "slow down"));
/// assert_eq!(split_unknown_code("no prefix"), ("unknown", "no prefix"));
/// ```
pub fn split_unknown_code(message: &str) -> (&str, &str) {
    // `get` rather than `split_once`: a slice that panics would bring
    // `core::fmt` and its Unicode tables into the browser build (10 KB).
    let at = message.as_bytes().windows(2).position(|w| w == b": ");
    match at.and_then(|i| Some((message.get(..i)?, message.get(i + 2..)?))) {
        Some(parts) => parts,
        None => (ErrorCode::Unknown.as_str(), message),
    }
}

impl Error {
    /// The code a server answers this parse or validation error with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            Error::UnknownFrameType { .. } => ErrorCode::UnknownType,
            Error::InvalidStreamName { .. } => ErrorCode::InvalidStream,
            Error::SeqOutOfRange { .. } => ErrorCode::SeqOutOfRange,
            Error::InvalidRange { .. } => ErrorCode::InvalidRange,
            _ => ErrorCode::MalformedFrame,
        }
    }
}

/// A request reference (section 3.8): a client-chosen string of 1 to
/// [`MAX_REF_LEN`] bytes that the server copies into every answer to the
/// request.
///
/// The clients of this crate derive it from the stream handle, so that it
/// names one subscription of a stream: [`RequestRef::for_stream`], and back
/// with [`RequestRef::stream`].
///
/// ```
/// use seqsync_core::protocol::RequestRef;
/// assert!(RequestRef::new("q1").is_ok());
/// assert!(RequestRef::new("").is_err());
/// assert!(RequestRef::new(&"x".repeat(65)).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestRef(Box<str>);

impl RequestRef {
    /// A checked reference.
    ///
    /// # Errors
    /// [`Error::MalformedFrame`] when empty or longer than [`MAX_REF_LEN`].
    pub fn new(text: &str) -> Result<RequestRef, Error> {
        if text.is_empty() || text.len() > MAX_REF_LEN {
            return Err(Error::MalformedFrame {
                reason: "ref must be a string of 1 to 64 bytes".to_string(),
            });
        }
        Ok(RequestRef(text.into()))
    }

    /// The reference naming one subscription of a stream: its slot and
    /// incarnation, as `"<slot>.<incarnation>"`.
    pub fn for_stream(id: StreamId) -> RequestRef {
        let mut text = String::with_capacity(12);
        encode::decimal(&mut text, u64::from(id.index()));
        text.push('.');
        encode::decimal(&mut text, u64::from(id.generation()));
        RequestRef(text.into_boxed_str())
    }

    /// The stream handle a reference made by [`RequestRef::for_stream`]
    /// names; `None` for any other text.
    pub fn stream(&self) -> Option<StreamId> {
        parse_stream_ref(&self.0)
    }

    /// The reference as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The stream handle in a `"<slot>.<incarnation>"` reference.
pub(crate) fn parse_stream_ref(text: &str) -> Option<StreamId> {
    // One pass over the bytes: `split_once` and `str::parse` bring their
    // general machinery into the browser build (1.6 KB for this function).
    let mut numbers = [0u64; 2];
    let mut digits = [0usize; 2];
    let mut part = 0;
    for &b in text.as_bytes() {
        if b == b'.' && part == 0 {
            part = 1;
        } else if b.is_ascii_digit() && digits[part] < 10 {
            numbers[part] = numbers[part] * 10 + u64::from(b - b'0');
            digits[part] += 1;
        } else {
            return None;
        }
    }
    if digits[0] == 0 || digits[1] == 0 {
        return None;
    }
    let index = u32::try_from(numbers[0]).ok()?;
    let generation = u32::try_from(numbers[1]).ok()?;
    Some(StreamId::new(index, generation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_ref_is_two_numbers_and_nothing_else() {
        let id = StreamId::new(7, 4_000_000_000);
        assert_eq!(
            parse_stream_ref(RequestRef::for_stream(id).as_str()),
            Some(id)
        );
        assert_eq!(parse_stream_ref("0.0"), Some(StreamId::new(0, 0)));
        for text in [
            "",
            ".",
            "1.",
            ".1",
            "1",
            "1.2.3",
            "a.1",
            "1.-2",
            "+1.2",
            "1 .2",
            "4294967296.0",
            "12345678901.1",
            "1.2x",
        ] {
            assert_eq!(parse_stream_ref(text), None, "{text:?}");
        }
    }

    #[test]
    fn every_code_round_trips_through_its_wire_name() {
        for (i, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(ErrorCode::from_wire(code.as_str()), code);
            assert_eq!(code.index(), i);
        }
        assert_eq!(ErrorCode::Unknown.index(), ErrorCode::ALL.len());
    }

    #[test]
    fn a_stream_reference_names_its_handle_and_nothing_else() {
        let id = StreamId::new(7, 3);
        let r = RequestRef::for_stream(id);
        assert_eq!(r.as_str(), "7.3");
        assert_eq!(r.stream(), Some(id));
        for other in [
            "7",
            "7.",
            ".3",
            "a.3",
            "7.3.1",
            "-7.3",
            "99999999999.1",
            "room:42",
        ] {
            assert_eq!(parse_stream_ref(other), None, "{other}");
        }
    }
}
