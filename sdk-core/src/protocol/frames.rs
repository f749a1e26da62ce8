//! The serde types of every frame, and their parsers (feature `json`).
//!
//! The payload type `D` is generic: `serde_json::Value`, or any type of the
//! application's that deserializes from any JSON value. (Frames are
//! internally tagged, so serde buffers their fields: types that must borrow
//! the raw text, such as `serde_json::value::RawValue`, do not work.)

use alloc::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;
use crate::event::Request;
use crate::protocol::RequestRef;
use crate::types::{Epoch, MAX_SEQ, Seq, SeqRange, StreamName};

/// A frame the client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame<D> {
    /// Start receiving a stream. Without `since`: the server answers with a
    /// `snapshot`; with it: `subscribed`, and live messages after its head.
    Subscribe {
        /// The stream.
        stream: StreamName,
        /// Last seq the client has (0: none yet; the client fetches from 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<Seq>,
        /// Epoch of `since`; a server whose epoch differs answers `reset`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<Epoch>,
        /// Copied into the answer (section 3.8).
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<RequestRef>,
    },
    /// Stop receiving a stream.
    Unsubscribe {
        /// The stream.
        stream: StreamName,
    },
    /// Ask for the messages of an inclusive range.
    History {
        /// The stream.
        stream: StreamName,
        /// The range (`from`, `to` on the wire).
        #[serde(flatten)]
        range: WireRange,
        /// Copied into the answer (section 3.8).
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<RequestRef>,
    },
    /// Ask for a fresh snapshot.
    Snapshot {
        /// The stream.
        stream: StreamName,
        /// Copied into the answer (section 3.8).
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<RequestRef>,
    },
    /// Append a message. `id` makes retries idempotent: the same id gets the
    /// same seq, never a second message.
    Publish {
        /// The stream.
        stream: StreamName,
        /// Client-chosen idempotency key (1 to 128 bytes).
        id: String,
        /// The payload.
        data: D,
    },
}

/// A frame the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<D> {
    /// A live message.
    Msg {
        /// The stream.
        stream: StreamName,
        /// Its seq (at least 1).
        seq: Seq,
        /// The log's epoch; clients reset when it differs from theirs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<Epoch>,
        /// The payload.
        data: D,
    },
    /// The stream's state at `seq`.
    Snapshot {
        /// The stream.
        stream: StreamName,
        /// Last seq folded into `state` (0 for an empty stream).
        seq: Seq,
        /// The log's epoch.
        epoch: Epoch,
        /// The state.
        state: D,
        /// The `ref` of the request this answers.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<RequestRef>,
    },
    /// The answer to a resuming subscribe.
    Subscribed {
        /// The stream.
        stream: StreamName,
        /// The log's epoch.
        epoch: Epoch,
        /// The latest seq at the moment the subscription started; everything
        /// after it comes live.
        head: Seq,
        /// The `ref` of the request this answers.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<RequestRef>,
    },
    /// The answer to a history request, covering `from..=to` (possibly less
    /// than asked: a page). Seqs of the range not in `messages` are listed in
    /// `skipped` and will never be sent.
    History {
        /// The stream.
        stream: StreamName,
        /// The covered range.
        #[serde(flatten)]
        range: WireRange,
        /// The log's epoch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<Epoch>,
        /// The messages, ascending.
        messages: Vec<HistoryMessage<D>>,
        /// Seqs of the range that will never be sent.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skipped: Vec<WireRange>,
        /// The `ref` of the request this answers.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<RequestRef>,
    },
    /// Heartbeat: the latest seq of every subscribed stream.
    Head {
        /// Per stream.
        heads: BTreeMap<StreamName, HeadEntry>,
        /// The server's frame size limit in bytes, when it announces it
        /// (protocol section 3.7).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        frame_limit: Option<u64>,
    },
    /// The missing range is gone (retention) or the stream must start over.
    Reset {
        /// The stream.
        stream: StreamName,
        /// `history_unavailable`, `epoch_changed` or `server_behind`.
        reason: String,
        /// The earliest seq still held, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        earliest: Option<Seq>,
        /// The `ref` of the request this answers.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<RequestRef>,
    },
    /// A publish was stored.
    Ack {
        /// The publish's idempotency id.
        id: String,
        /// The stream.
        stream: StreamName,
        /// The seq assigned.
        seq: Seq,
    },
    /// Something the client sent was rejected.
    Error {
        /// Machine-readable code (see `docs/protocol.md`).
        code: String,
        /// Human-readable explanation.
        message: String,
        /// The offending frame's `ref`, else a refused publish's `id`, else
        /// its stream, when known.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
}

/// One message inside a `history` frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryMessage<D> {
    /// Its seq.
    pub seq: Seq,
    /// The payload.
    pub data: D,
}

/// One stream's head inside a `head` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadEntry {
    /// The latest seq.
    pub seq: Seq,
    /// The log's epoch.
    pub epoch: Epoch,
}

/// An inclusive range on the wire: `{"from": a, "to": b}`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRange", into = "RawRange")]
pub struct WireRange(pub SeqRange);

#[derive(Serialize, Deserialize)]
struct RawRange {
    from: u64,
    to: u64,
}

impl TryFrom<RawRange> for WireRange {
    type Error = Error;
    fn try_from(raw: RawRange) -> Result<WireRange, Error> {
        SeqRange::from_u64(raw.from, raw.to).map(WireRange)
    }
}

impl From<WireRange> for RawRange {
    fn from(range: WireRange) -> RawRange {
        RawRange {
            from: range.0.start().get(),
            to: range.0.end().get(),
        }
    }
}

impl From<SeqRange> for WireRange {
    fn from(range: SeqRange) -> WireRange {
        WireRange(range)
    }
}

impl Serialize for Seq {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.get())
    }
}

impl<'de> Deserialize<'de> for Seq {
    fn deserialize<De: Deserializer<'de>>(deserializer: De) -> Result<Seq, De::Error> {
        let value = u64::deserialize(deserializer)?;
        Seq::new(value).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Epoch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Epoch {
    fn deserialize<De: Deserializer<'de>>(deserializer: De) -> Result<Epoch, De::Error> {
        let value = u64::deserialize(deserializer)?;
        if value > MAX_SEQ {
            return Err(serde::de::Error::custom(format!(
                "epoch {value} is out of range (at most 9007199254740991)"
            )));
        }
        Ok(Epoch(value))
    }
}

impl Serialize for StreamName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StreamName {
    fn deserialize<De: Deserializer<'de>>(deserializer: De) -> Result<StreamName, De::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = StreamName;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a stream name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StreamName, E> {
                StreamName::new(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl Serialize for RequestRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RequestRef {
    fn deserialize<De: Deserializer<'de>>(deserializer: De) -> Result<RequestRef, De::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RequestRef;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a request reference")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RequestRef, E> {
                RequestRef::new(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl<D> From<Request> for ClientFrame<D> {
    fn from(request: Request) -> ClientFrame<D> {
        match request {
            Request::Subscribe {
                stream,
                since,
                epoch,
            } => ClientFrame::Subscribe {
                stream,
                since,
                epoch,
                reference: None,
            },
            Request::Unsubscribe { stream } => ClientFrame::Unsubscribe { stream },
            Request::FetchHistory { stream, range } => ClientFrame::History {
                stream,
                range: WireRange(range),
                reference: None,
            },
            Request::FetchSnapshot { stream } => ClientFrame::Snapshot {
                stream,
                reference: None,
            },
        }
    }
}

impl<D: Serialize> ClientFrame<D> {
    /// The frame as JSON text.
    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string(self).map_err(|e| Error::MalformedFrame {
            reason: e.to_string(),
        })
    }
}

impl<D: Serialize> ServerFrame<D> {
    /// The frame as JSON text.
    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string(self).map_err(|e| Error::MalformedFrame {
            reason: e.to_string(),
        })
    }
}

/// Parses a frame from the server, refusing frames over `max_bytes`.
///
/// # Errors
/// [`Error::FrameTooLarge`], [`Error::UnknownFrameType`],
/// [`Error::SeqOutOfRange`], [`Error::InvalidRange`],
/// [`Error::InvalidStreamName`] or [`Error::MalformedFrame`], saying what
/// was wrong.
pub fn parse_server_frame<D>(text: &str, max_bytes: usize) -> Result<ServerFrame<D>, Error>
where
    D: for<'de> Deserialize<'de>,
{
    parse(text, max_bytes, SERVER_TYPES)
}

/// Parses a frame from a client, refusing frames over `max_bytes`.
///
/// # Errors
/// As [`parse_server_frame`].
pub fn parse_client_frame<D>(text: &str, max_bytes: usize) -> Result<ClientFrame<D>, Error>
where
    D: for<'de> Deserialize<'de>,
{
    parse(text, max_bytes, CLIENT_TYPES)
}

const SERVER_TYPES: &[&str] = &[
    "msg",
    "snapshot",
    "subscribed",
    "history",
    "head",
    "reset",
    "ack",
    "error",
];
const CLIENT_TYPES: &[&str] = &["subscribe", "unsubscribe", "history", "snapshot", "publish"];

fn parse<T>(text: &str, max_bytes: usize, known: &[&str]) -> Result<T, Error>
where
    T: for<'de> Deserialize<'de>,
{
    if text.len() > max_bytes {
        return Err(Error::FrameTooLarge {
            len: text.len(),
            max: max_bytes,
        });
    }
    serde_json::from_str(text).map_err(|e| diagnose(text, known, &e))
}

/// Turns a failed parse into the most precise error. Runs only on the error
/// path, so the cost of a second look does not touch good frames.
fn diagnose(text: &str, known: &[&str], error: &serde_json::Error) -> Error {
    let malformed = || Error::MalformedFrame {
        reason: error.to_string(),
    };
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) else {
        return malformed();
    };
    match map.get("type") {
        Some(serde_json::Value::String(kind)) if !known.contains(&kind.as_str()) => {
            return Error::UnknownFrameType {
                kind: kind.chars().take(64).collect(),
            };
        }
        Some(serde_json::Value::String(_)) => {}
        _ => {
            return Error::MalformedFrame {
                reason: "missing or non-string \"type\" field".to_string(),
            };
        }
    }
    if let Some(serde_json::Value::String(name)) = map.get("stream") {
        if let Err(e) = StreamName::new(name) {
            return e;
        }
    }
    for field in ["seq", "since", "head", "earliest", "from", "to"] {
        if let Some(value) = map.get(field).and_then(serde_json::Value::as_u64) {
            if value > MAX_SEQ {
                return Error::SeqOutOfRange { seq: value };
            }
        }
    }
    if let (Some(from), Some(to)) = (
        map.get("from").and_then(serde_json::Value::as_u64),
        map.get("to").and_then(serde_json::Value::as_u64),
    ) {
        if let Err(e) = SeqRange::from_u64(from, to) {
            return e;
        }
    }
    malformed()
}

impl<P> crate::Sequencer<P> {
    /// Feeds one parsed server frame. Frames the sequencer has no use for
    /// (`ack`, `error`) and frames for streams not subscribed (late frames
    /// after an unsubscribe) are handed back for the shell to deal with.
    ///
    /// # Errors
    /// As the `handle_*` method the frame maps to.
    pub fn handle_frame(
        &mut self,
        now: crate::Millis,
        frame: ServerFrame<P>,
    ) -> Result<Option<ServerFrame<P>>, Error> {
        match frame {
            ServerFrame::Msg {
                ref stream,
                seq,
                epoch,
                ..
            } => {
                let Some(id) = self.stream_id(stream.as_str()) else {
                    return Ok(Some(frame));
                };
                let ServerFrame::Msg { data, .. } = frame else {
                    return Ok(None);
                };
                self.handle_message(now, id, seq, epoch, data)?;
            }
            ServerFrame::Snapshot {
                ref stream,
                seq,
                epoch,
                ..
            } => {
                let Some(id) = self.stream_id(stream.as_str()) else {
                    return Ok(Some(frame));
                };
                let ServerFrame::Snapshot { state, .. } = frame else {
                    return Ok(None);
                };
                self.handle_snapshot(now, id, seq, epoch, state)?;
            }
            ServerFrame::Subscribed {
                ref stream,
                epoch,
                head,
                ..
            } => {
                let Some(id) = self.stream_id(stream.as_str()) else {
                    return Ok(Some(frame));
                };
                self.handle_subscribed(now, id, epoch, head)?;
            }
            ServerFrame::History {
                ref stream,
                range,
                epoch,
                ..
            } => {
                let Some(id) = self.stream_id(stream.as_str()) else {
                    return Ok(Some(frame));
                };
                let ServerFrame::History { messages, .. } = frame else {
                    return Ok(None);
                };
                let messages = messages.into_iter().map(|m| (m.seq, m.data)).collect();
                self.handle_history(now, id, range.0, epoch, messages)?;
            }
            ServerFrame::Head { ref heads, .. } => {
                for (stream, head) in heads {
                    if let Some(id) = self.stream_id(stream.as_str()) {
                        self.handle_head(now, id, head.seq, Some(head.epoch))?;
                    }
                }
            }
            ServerFrame::Reset {
                ref stream,
                ref reason,
                earliest,
                ..
            } => {
                let Some(id) = self.stream_id(stream.as_str()) else {
                    return Ok(Some(frame));
                };
                let reason = crate::ResetReason::from_wire(reason);
                self.handle_reset(now, id, reason, earliest)?;
            }
            ServerFrame::Ack { .. } | ServerFrame::Error { .. } => return Ok(Some(frame)),
        }
        Ok(None)
    }
}
