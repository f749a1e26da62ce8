//! Value types that carry meaning: sequence numbers, ranges, epochs, time.

use alloc::sync::Arc;
use core::fmt;

use crate::error::Error;

/// The largest sequence number the protocol allows: 2^53 - 1, so that
/// JavaScript numbers hold every seq exactly.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// A position in one stream's log.
///
/// Messages carry seqs from 1 upward; 0 is the position before the first
/// message (an empty stream's head, or "I have nothing" in a resume point).
/// Every `Seq` is at most [`MAX_SEQ`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(u64);

impl Seq {
    /// Position 0: before the first message.
    pub const ZERO: Seq = Seq(0);
    /// The largest valid seq.
    pub const MAX: Seq = Seq(MAX_SEQ);

    /// A position, checked against [`MAX_SEQ`]. 0 is allowed.
    ///
    /// ```
    /// use seqsync_core::Seq;
    /// assert!(Seq::new(42).is_ok());
    /// assert!(Seq::new(1 << 60).is_err());
    /// ```
    pub fn new(value: u64) -> Result<Seq, Error> {
        if value > MAX_SEQ {
            Err(Error::SeqOutOfRange { seq: value })
        } else {
            Ok(Seq(value))
        }
    }

    /// The seq of a message: checked to be in `1..=MAX_SEQ`.
    pub fn message(value: u64) -> Result<Seq, Error> {
        if value == 0 || value > MAX_SEQ {
            Err(Error::SeqOutOfRange { seq: value })
        } else {
            Ok(Seq(value))
        }
    }

    /// The raw number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The next position, saturating at [`MAX_SEQ`].
    pub const fn next(self) -> Seq {
        if self.0 >= MAX_SEQ {
            Seq(MAX_SEQ)
        } else {
            Seq(self.0 + 1)
        }
    }

    /// Constructs without the range check; callers guarantee `value <= MAX_SEQ`.
    pub(crate) const fn from_trusted(value: u64) -> Seq {
        Seq(value)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<u64> for Seq {
    type Error = Error;
    fn try_from(value: u64) -> Result<Seq, Error> {
        Seq::new(value)
    }
}

impl From<Seq> for u64 {
    fn from(seq: Seq) -> u64 {
        seq.0
    }
}

/// An inclusive range of message seqs, `start <= end`, both at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeqRange {
    start: Seq,
    end: Seq,
}

impl SeqRange {
    /// The range `start..=end`; fails when it is inverted or holds seq 0.
    ///
    /// ```
    /// use seqsync_core::{Seq, SeqRange};
    /// let r = SeqRange::new(Seq::new(3)?, Seq::new(5)?)?;
    /// assert_eq!(r.len(), 3);
    /// assert!(SeqRange::new(Seq::new(5)?, Seq::new(3)?).is_err());
    /// # Ok::<(), seqsync_core::Error>(())
    /// ```
    pub fn new(start: Seq, end: Seq) -> Result<SeqRange, Error> {
        if start.0 == 0 || start > end {
            Err(Error::InvalidRange {
                from: start.0,
                to: end.0,
            })
        } else {
            Ok(SeqRange { start, end })
        }
    }

    /// Checked construction from raw numbers.
    pub fn from_u64(from: u64, to: u64) -> Result<SeqRange, Error> {
        let start = Seq::message(from).map_err(|_| Error::InvalidRange { from, to })?;
        let end = Seq::message(to).map_err(|_| Error::InvalidRange { from, to })?;
        SeqRange::new(start, end)
    }

    pub(crate) const fn from_trusted(start: u64, end: u64) -> SeqRange {
        SeqRange {
            start: Seq(start),
            end: Seq(end),
        }
    }

    /// First seq in the range.
    pub const fn start(self) -> Seq {
        self.start
    }

    /// Last seq in the range (inclusive).
    pub const fn end(self) -> Seq {
        self.end
    }

    /// How many seqs the range holds (at least 1).
    #[allow(clippy::len_without_is_empty)]
    pub const fn len(self) -> u64 {
        self.end.0 - self.start.0 + 1
    }

    /// Whether `seq` lies inside the range.
    pub fn contains(self, seq: Seq) -> bool {
        self.start <= seq && seq <= self.end
    }
}

impl fmt::Display for SeqRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.start, self.end)
    }
}

/// One incarnation of a stream's log. When a server loses or wipes a log it
/// starts a new epoch, and clients reset instead of trusting old seqs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Milliseconds from any monotonic origin chosen by the shell. The core
/// never reads a clock: every input carries the current `Millis`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

impl Millis {
    /// `self + ms`, saturating.
    pub const fn plus(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }
}

/// Longest stream name accepted, in bytes.
pub const MAX_STREAM_NAME_LEN: usize = 256;

/// A stream's name as the server knows it. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamName(Arc<str>);

impl StreamName {
    /// A checked name: 1 to [`MAX_STREAM_NAME_LEN`] bytes, no control characters.
    ///
    /// ```
    /// use seqsync_core::StreamName;
    /// assert!(StreamName::new("room:42").is_ok());
    /// assert!(StreamName::new("").is_err());
    /// ```
    pub fn new(name: &str) -> Result<StreamName, Error> {
        if name.is_empty() || name.len() > MAX_STREAM_NAME_LEN || name.chars().any(char::is_control)
        {
            return Err(invalid_name(name));
        }
        Ok(StreamName(Arc::from(name)))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The error for a name [`StreamName::new`] refuses, out of line: the
/// check is inlined into every caller, the message need not be.
#[cold]
#[inline(never)]
fn invalid_name(name: &str) -> Error {
    Error::InvalidStreamName {
        name: name.chars().take(64).collect(),
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::borrow::Borrow<str> for StreamName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for StreamName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A handle to one subscribed stream inside a [`Sequencer`](crate::Sequencer).
///
/// Cheap to copy and to pass across the WASM boundary as a number
/// ([`StreamId::to_raw`]). A handle outlives its stream harmlessly: after
/// `unsubscribe` the handle is stale and every call with it fails with
/// [`Error::UnknownStream`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamId(u64);

impl StreamId {
    /// Slot `index`, incarnation `generation` (one word, so that copying a
    /// handle is a single move).
    pub(crate) const fn new(index: u32, generation: u32) -> StreamId {
        StreamId(((generation as u64) << 32) | index as u64)
    }

    pub(crate) const fn index(self) -> u32 {
        self.0 as u32
    }

    pub(crate) const fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The handle as one number (for a JavaScript boundary, a map key...).
    pub const fn to_raw(self) -> u64 {
        self.0
    }

    /// Unpacks a number made by [`StreamId::to_raw`].
    pub const fn from_raw(raw: u64) -> StreamId {
        StreamId(raw)
    }
}

/// How a stream delivers messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DeliveryMode {
    /// Every seq exactly once, in order, no holes; missing ranges are fetched.
    #[default]
    Ordered,
    /// State-like streams (cursors, sensor values): deliver only what is newer
    /// than the last delivered message, never fetch what was missed.
    Latest,
}

/// Where a new subscription starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartAt {
    /// Ask the server for a snapshot and continue live from its seq.
    #[default]
    Snapshot,
    /// Resume after `seq` (0: from seq 1; a `Reset` if retention dropped it). When
    /// `epoch` is given and the server's epoch differs, the stream resets.
    After {
        /// Last seq the application already has.
        seq: Seq,
        /// Epoch that seq belongs to, if known.
        epoch: Option<Epoch>,
    },
}
