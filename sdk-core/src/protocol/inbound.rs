//! A server frame as typed input, in every build: what a shell read from
//! the wire ([`Fields`]: every member any server frame has, each optional)
//! and what the core makes of it ([`InboundFrame`]: which members the
//! frame's `type` requires, and whether their values are valid).
//!
//! A shell only reads members: the native client with the borrowing
//! parser ([`parse_server_frame_raw`](super::parse_server_frame_raw), which
//! builds its [`Fields`] with serde), the browser with `JSON.parse` (its
//! numbers and its stream's handle carried in the binding's scratch area).
//! Both end in [`InboundFrame::from_fields`], so a frame is judged the same
//! way everywhere, and [`Session::handle_input`](crate::Session::handle_input)
//! says what it means.
//!
//! ```
//! use std::borrow::Cow;
//! use seqsync_core::protocol::{Fields, InboundFrame, StreamKey};
//!
//! let fields = Fields {
//!     kind: Cow::Borrowed("msg"),
//!     stream: Some(StreamKey::Name(Cow::Borrowed("room"))),
//!     seq: Some(7),
//!     data: Some("hi"),
//!     ..Fields::default()
//! };
//! match InboundFrame::from_fields(fields)? {
//!     InboundFrame::Msg { stream, seq, epoch, data } => {
//!         assert_eq!(stream, StreamKey::Name(Cow::Borrowed("room")));
//!         assert_eq!((seq.get(), epoch, data), (7, None, "hi"));
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), seqsync_core::Error>(())
//! ```

use crate::prelude::*;
use alloc::borrow::Cow;

use crate::error::Error;
use crate::types::{Epoch, MAX_SEQ, Seq, SeqRange, StreamId};

/// How a frame names its stream: by the name it carries, or by the handle
/// of a stream the shell follows, looked up by the shell that already
/// keeps one beside each subscription (the browser's), so that the name
/// need not cross into the core again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamKey<'a> {
    /// The name, as the frame carries it.
    Name(Cow<'a, str>),
    /// The handle the session gave the stream when it was subscribed.
    Id(StreamId),
}

/// One server frame, its members checked and typed; names and texts
/// borrowed where the shell could, payloads of the shell's type `P`.
#[derive(Debug, Clone)]
pub enum InboundFrame<'a, P> {
    /// A live message.
    Msg {
        /// The stream.
        stream: StreamKey<'a>,
        /// Its seq (at least 1).
        seq: Seq,
        /// The log's epoch, when the frame has one.
        epoch: Option<Epoch>,
        /// The payload.
        data: P,
    },
    /// The stream's state at `seq`.
    Snapshot {
        /// The stream.
        stream: StreamKey<'a>,
        /// Last seq folded into the state.
        seq: Seq,
        /// The log's epoch.
        epoch: Epoch,
        /// The state.
        state: P,
        /// The `ref` of the request this answers.
        reference: Option<Cow<'a, str>>,
    },
    /// The answer to a resuming subscribe.
    Subscribed {
        /// The stream.
        stream: StreamKey<'a>,
        /// The log's epoch.
        epoch: Epoch,
        /// The head when the subscription was registered.
        head: Seq,
        /// The `ref` of the request this answers.
        reference: Option<Cow<'a, str>>,
    },
    /// A history answer covering `range`.
    History {
        /// The stream.
        stream: StreamKey<'a>,
        /// The covered range.
        range: SeqRange,
        /// The log's epoch, when the frame has one.
        epoch: Option<Epoch>,
        /// The messages, each with its payload.
        messages: Vec<(Seq, P)>,
        /// The `ref` of the request this answers.
        reference: Option<Cow<'a, str>>,
    },
    /// A heartbeat: each stream's head and epoch.
    Head {
        /// Per stream.
        heads: Vec<(Cow<'a, str>, Seq, Epoch)>,
        /// The server's frame size limit in bytes, when it announces it.
        frame_limit: Option<u64>,
    },
    /// The stream must start over from a snapshot.
    Reset {
        /// The stream.
        stream: StreamKey<'a>,
        /// The reason as sent.
        reason: Cow<'a, str>,
        /// The earliest seq still held, when sent.
        earliest: Option<Seq>,
        /// The `ref` of the request this answers.
        reference: Option<Cow<'a, str>>,
    },
    /// A publish was stored.
    Ack {
        /// The publish's id.
        id: Cow<'a, str>,
        /// The stream.
        stream: StreamKey<'a>,
        /// The seq it got.
        seq: Seq,
    },
    /// A refusal.
    Error {
        /// The code as sent.
        code: Cow<'a, str>,
        /// The explanation.
        message: Cow<'a, str>,
        /// What it is about, when the server said.
        reference: Option<Cow<'a, str>>,
    },
}

/// Every member any server frame has, as a shell read it, each optional:
/// numbers as unsigned integers (a shell refuses negative or fractional
/// ones itself, as the JSON parser it uses does), payloads of type `P`.
/// `messages` are the `history` frame's elements (`seq`, `data`), `heads`
/// the `head` frame's entries (name, `seq`, `epoch`).
#[derive(Debug, Clone)]
pub struct Fields<'a, P> {
    /// `type`.
    pub kind: Cow<'a, str>,
    /// `stream`, or the handle of the stream it names.
    pub stream: Option<StreamKey<'a>>,
    /// `seq`.
    pub seq: Option<u64>,
    /// `epoch`.
    pub epoch: Option<u64>,
    /// `head`.
    pub head: Option<u64>,
    /// `from`.
    pub from: Option<u64>,
    /// `to`.
    pub to: Option<u64>,
    /// `earliest`.
    pub earliest: Option<u64>,
    /// `data` (present when the member is there, `null` included).
    pub data: Option<P>,
    /// `state` (present when the member is there, `null` included).
    pub state: Option<P>,
    /// `messages`: each element's `seq` and `data`.
    pub messages: Option<Vec<(Option<u64>, Option<P>)>>,
    /// `heads`: each entry's name, `seq` and `epoch`.
    pub heads: Option<Vec<HeadMembers<'a>>>,
    /// `reason`.
    pub reason: Option<Cow<'a, str>>,
    /// `id`.
    pub id: Option<Cow<'a, str>>,
    /// `code`.
    pub code: Option<Cow<'a, str>>,
    /// `message`.
    pub message: Option<Cow<'a, str>>,
    /// `ref`.
    pub reference: Option<Cow<'a, str>>,
    /// `frame_limit`.
    pub frame_limit: Option<u64>,
}

/// One entry of a `head` frame's `heads`, as read: the stream's name, its
/// `seq` and its `epoch`.
pub type HeadMembers<'a> = (Cow<'a, str>, Option<u64>, Option<u64>);

impl<P> Default for Fields<'_, P> {
    fn default() -> Self {
        Fields {
            kind: Cow::Borrowed(""),
            stream: None,
            seq: None,
            epoch: None,
            head: None,
            from: None,
            to: None,
            earliest: None,
            data: None,
            state: None,
            messages: None,
            heads: None,
            reason: None,
            id: None,
            code: None,
            message: None,
            reference: None,
            frame_limit: None,
        }
    }
}

impl<'a, P> InboundFrame<'a, P> {
    /// The frame the members make: the members its `type` requires, their
    /// values checked (protocol sections 3 and 4). Members a frame does not
    /// use are ignored, as are types' future members.
    ///
    /// # Errors
    /// [`Error::UnknownFrameType`], [`Error::SeqOutOfRange`],
    /// [`Error::EpochOutOfRange`], [`Error::InvalidRange`] or
    /// [`Error::MalformedFrame`] (a member missing).
    pub fn from_fields(mut m: Fields<'a, P>) -> Result<InboundFrame<'a, P>, Error> {
        // Every member is checked before anything is moved out of `m`, so
        // that every way out drops `m` whole, one call, instead of a drop
        // of each member left at each exit (bytes in the browser build).
        // What is taken afterwards is known to be there.
        let frame = match &*m.kind {
            "msg" => {
                let seq = Seq::message(need(m.seq, "seq")?)?;
                let epoch = m.epoch.map(epoch).transpose()?;
                there(&m.data, "data")?;
                match (m.stream.take(), m.data.take()) {
                    (Some(stream), Some(data)) => InboundFrame::Msg {
                        stream,
                        seq,
                        epoch,
                        data,
                    },
                    _ => return Err(missing("stream")),
                }
            }
            "snapshot" => {
                let seq = Seq::new(need(m.seq, "seq")?)?;
                let epoch = epoch(need(m.epoch, "epoch")?)?;
                there(&m.state, "state")?;
                match (m.stream.take(), m.state.take()) {
                    (Some(stream), Some(state)) => InboundFrame::Snapshot {
                        stream,
                        seq,
                        epoch,
                        state,
                        reference: m.reference.take(),
                    },
                    _ => return Err(missing("stream")),
                }
            }
            "subscribed" => {
                let epoch = epoch(need(m.epoch, "epoch")?)?;
                let head = Seq::new(need(m.head, "head")?)?;
                InboundFrame::Subscribed {
                    stream: need(m.stream.take(), "stream")?,
                    epoch,
                    head,
                    reference: m.reference.take(),
                }
            }
            "history" => {
                let range = SeqRange::from_u64(need(m.from, "from")?, need(m.to, "to")?)?;
                let epoch = m.epoch.map(epoch).transpose()?;
                there(&m.stream, "stream")?;
                for (seq, data) in need(m.messages.as_deref(), "messages")? {
                    Seq::message(need(*seq, "seq")?)?;
                    there(data, "data")?;
                }
                let messages = m.messages.take().unwrap_or_default();
                let messages = messages
                    .into_iter()
                    .filter_map(|(seq, data)| Some((Seq::message(seq?).ok()?, data?)))
                    .collect();
                InboundFrame::History {
                    stream: need(m.stream.take(), "stream")?,
                    range,
                    epoch,
                    messages,
                    reference: m.reference.take(),
                }
            }
            "head" => {
                for (_, seq, e) in need(m.heads.as_deref(), "heads")? {
                    Seq::new(need(*seq, "seq")?)?;
                    epoch(need(*e, "epoch")?)?;
                }
                let heads = m.heads.take().unwrap_or_default();
                let heads = heads
                    .into_iter()
                    .filter_map(|(stream, seq, e)| {
                        Some((stream, Seq::new(seq?).ok()?, epoch(e?).ok()?))
                    })
                    .collect();
                InboundFrame::Head {
                    heads,
                    frame_limit: m.frame_limit,
                }
            }
            "reset" => {
                let earliest = m.earliest.map(Seq::new).transpose()?;
                there(&m.reason, "reason")?;
                match (m.stream.take(), m.reason.take()) {
                    (Some(stream), Some(reason)) => InboundFrame::Reset {
                        stream,
                        reason,
                        earliest,
                        reference: m.reference.take(),
                    },
                    _ => return Err(missing("stream")),
                }
            }
            "ack" => {
                let seq = Seq::message(need(m.seq, "seq")?)?;
                there(&m.id, "id")?;
                match (m.stream.take(), m.id.take()) {
                    (Some(stream), Some(id)) => InboundFrame::Ack { id, stream, seq },
                    _ => return Err(missing("stream")),
                }
            }
            "error" => {
                there(&m.code, "code")?;
                match (m.code.take(), m.message.take()) {
                    (Some(code), Some(message)) => InboundFrame::Error {
                        code,
                        message,
                        reference: m.reference.take(),
                    },
                    _ => return Err(missing("message")),
                }
            }
            other => return Err(unknown_type(other)),
        };
        Ok(frame)
    }

    /// The same frame with every payload turned into another type (for
    /// example a slice of the frame's text into an owned payload).
    pub fn map<Q>(self, mut f: impl FnMut(P) -> Q) -> InboundFrame<'a, Q> {
        match self {
            InboundFrame::Msg {
                stream,
                seq,
                epoch,
                data,
            } => InboundFrame::Msg {
                stream,
                seq,
                epoch,
                data: f(data),
            },
            InboundFrame::Snapshot {
                stream,
                seq,
                epoch,
                state,
                reference,
            } => InboundFrame::Snapshot {
                stream,
                seq,
                epoch,
                state: f(state),
                reference,
            },
            InboundFrame::History {
                stream,
                range,
                epoch,
                messages,
                reference,
            } => InboundFrame::History {
                stream,
                range,
                epoch,
                messages: messages.into_iter().map(|(s, d)| (s, f(d))).collect(),
                reference,
            },
            InboundFrame::Subscribed {
                stream,
                epoch,
                head,
                reference,
            } => InboundFrame::Subscribed {
                stream,
                epoch,
                head,
                reference,
            },
            InboundFrame::Head { heads, frame_limit } => InboundFrame::Head { heads, frame_limit },
            InboundFrame::Reset {
                stream,
                reason,
                earliest,
                reference,
            } => InboundFrame::Reset {
                stream,
                reason,
                earliest,
                reference,
            },
            InboundFrame::Ack { id, stream, seq } => InboundFrame::Ack { id, stream, seq },
            InboundFrame::Error {
                code,
                message,
                reference,
            } => InboundFrame::Error {
                code,
                message,
                reference,
            },
        }
    }
}

/// Whether a member is there, without taking it.
fn there<T>(member: &Option<T>, name: &'static str) -> Result<(), Error> {
    match member {
        Some(_) => Ok(()),
        None => Err(missing(name)),
    }
}

fn need<T>(member: Option<T>, name: &'static str) -> Result<T, Error> {
    match member {
        Some(value) => Ok(value),
        None => Err(missing(name)),
    }
}

/// Out of line: the error paths are many and cold.
#[cold]
#[inline(never)]
fn missing(name: &'static str) -> Error {
    // Put together without `format!`: the browser build has no use for
    // `core::fmt` otherwise.
    let mut reason = String::from("missing member `");
    reason.push_str(name);
    reason.push('`');
    Error::MalformedFrame { reason }
}

#[cold]
#[inline(never)]
fn unknown_type(kind: &str) -> Error {
    // At most 64 characters, cut at a character's boundary.
    let end = kind.char_indices().nth(64).map_or(kind.len(), |(i, _)| i);
    Error::UnknownFrameType {
        kind: kind.get(..end).unwrap_or_default().to_string(),
    }
}

fn epoch(value: u64) -> Result<Epoch, Error> {
    if value > MAX_SEQ {
        return Err(Error::EpochOutOfRange { epoch: value });
    }
    Ok(Epoch(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(kind: &str) -> Fields<'_, u8> {
        Fields {
            kind: Cow::Borrowed(kind),
            ..Fields::default()
        }
    }

    #[test]
    fn a_frame_missing_a_member_its_type_requires_is_malformed() {
        let msg = Fields {
            stream: Some(StreamKey::Name(Cow::Borrowed("r"))),
            seq: Some(1),
            ..fields("msg")
        };
        assert!(matches!(
            InboundFrame::from_fields(msg),
            Err(Error::MalformedFrame { reason }) if reason == "missing member `data`"
        ));
        let head = Fields {
            heads: Some(vec![(Cow::Borrowed("r"), Some(3), None)]),
            ..fields("head")
        };
        assert!(matches!(
            InboundFrame::from_fields(head),
            Err(Error::MalformedFrame { .. })
        ));
    }

    #[test]
    fn values_are_checked_by_the_rules_of_their_member() {
        let seq_zero = Fields {
            stream: Some(StreamKey::Name(Cow::Borrowed("r"))),
            seq: Some(0),
            data: Some(1),
            ..fields("msg")
        };
        assert!(matches!(
            InboundFrame::from_fields(seq_zero),
            Err(Error::SeqOutOfRange { seq: 0 })
        ));
        let epoch_too_large = Fields {
            stream: Some(StreamKey::Name(Cow::Borrowed("r"))),
            seq: Some(0),
            epoch: Some(MAX_SEQ + 1),
            state: Some(1),
            ..fields("snapshot")
        };
        assert!(matches!(
            InboundFrame::from_fields(epoch_too_large),
            Err(Error::EpochOutOfRange { .. })
        ));
        let backwards = Fields {
            stream: Some(StreamKey::Name(Cow::Borrowed("r"))),
            from: Some(5),
            to: Some(2),
            messages: Some(Vec::new()),
            ..fields("history")
        };
        assert!(matches!(
            InboundFrame::from_fields(backwards),
            Err(Error::InvalidRange { .. })
        ));
        assert!(matches!(
            InboundFrame::from_fields(fields("teleport")),
            Err(Error::UnknownFrameType { kind }) if kind == "teleport"
        ));
    }

    #[test]
    fn map_turns_every_payload_and_keeps_the_rest() {
        let history = Fields {
            stream: Some(StreamKey::Name(Cow::Borrowed("r"))),
            from: Some(3),
            to: Some(4),
            messages: Some(vec![(Some(3), Some(30)), (Some(4), Some(40))]),
            reference: Some(Cow::Borrowed("0.1")),
            ..fields("history")
        };
        let frame = InboundFrame::from_fields(history)
            .expect("valid")
            .map(u32::from);
        let InboundFrame::History {
            messages,
            reference,
            ..
        } = frame
        else {
            panic!("not a history frame")
        };
        let seqs: Vec<(u64, u32)> = messages.iter().map(|(s, d)| (s.get(), *d)).collect();
        assert_eq!(seqs, [(3, 30), (4, 40)]);
        assert_eq!(reference.as_deref(), Some("0.1"));
    }
}
