//! Servers that do not speak the seqsync protocol.
//!
//! An [`Adapter`] says what such a server can do (its [`Plan`]), what one
//! of its frames is ([`Inbound`]), how each request goes out ([`Outbound`])
//! and what an HTTP answer says ([`FetchAnswer`]). The client's session
//! keeps every rule of the contract on top. A [`Described`] server is the
//! adapter a [`Description`] (data, docs/protocol.md section 12) makes;
//! implement the trait for a server a description cannot capture.
//!
//! ```
//! use seqsync::adapter::{Description, Described};
//! let description: Description = serde_json::from_str(r#"{
//!   "message": {"stream": {"path": "room"}, "seq": "sequence_id", "payload": "message"},
//!   "subscribe": "{\"action\":\"join\",\"room\":\"{stream}\"}",
//!   "history": {"url": "http://127.0.0.1:9000/rooms/{stream}/messages?since={since}", "messages": "messages"}
//! }"#)?;
//! let adapter = Described::new(description)?;
//! # let _ = adapter;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Utf8Bytes;

pub use seqsync_core::adapter::{
    DEFAULT_LIMIT, Description, FetchAnswer, ForeignRequest, HeadSource, HistorySource,
    HttpRequest, MessageShape, Outbound, Plan, PublishSink, SnapshotSource, Start, StreamSource,
};
use seqsync_core::{Epoch, Seq};

use crate::error::ClientError;
use crate::payload::Payload;

/// One text frame, or one HTTP answer's body: its text, and payloads cut
/// from it without a copy.
#[derive(Clone)]
pub struct Frame {
    text: Utf8Bytes,
}

impl Frame {
    /// A frame of this text.
    pub fn new(text: impl Into<Utf8Bytes>) -> Frame {
        Frame { text: text.into() }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.text.as_str()
    }

    /// The whole frame as a payload (without surrounding whitespace), for
    /// a frame already known to be one JSON value.
    fn whole(&self) -> Payload {
        let text = self.as_str();
        let start = text.len() - text.trim_start().len();
        let end = text.trim_end().len();
        Payload::from_frame(self.text.clone(), Ok((start, end.max(start))))
    }

    /// `raw` (a value inside this frame's text) as a payload that shares
    /// the frame's bytes; a value from elsewhere is copied.
    pub fn payload(&self, raw: &RawValue) -> Payload {
        Payload::from_frame(self.text.clone(), Payload::range(&self.text, raw))
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Frame").field(&self.as_str()).finish()
    }
}

/// What a frame from the server is.
#[derive(Debug)]
pub enum Inbound<'a> {
    /// A message of a stream.
    Message {
        /// The stream's name.
        stream: Cow<'a, str>,
        /// Its seq.
        seq: Seq,
        /// Its epoch, for a server that has them.
        epoch: Option<Epoch>,
        /// Its payload.
        payload: Payload,
    },
    /// A stream's latest seq (`Seq::ZERO`: none yet).
    Heartbeat {
        /// The stream's name.
        stream: Cow<'a, str>,
        /// The latest seq.
        seq: Seq,
        /// Its epoch, for a server that has them.
        epoch: Option<Epoch>,
    },
    /// Something else the server sends (an answer to a join, a presence
    /// notice): ignored.
    Ignore,
    /// A frame that cannot be used: counted and dropped.
    Bad(String),
}

/// A server that does not speak the seqsync protocol, as the client sees
/// it. Every method must be cheap and must not panic on any input: frames
/// and answers come from the network.
pub trait Adapter: Send + Sync + 'static {
    /// What the server can do.
    fn plan(&self) -> Plan;
    /// What `frame` is.
    fn read<'a>(&self, frame: &'a Frame) -> Inbound<'a>;
    /// How `request` goes out.
    fn request(&self, request: &ForeignRequest) -> Outbound;
    /// What the answer (`status`, `body`) to the HTTP request made for
    /// `request` says.
    fn answer(&self, request: &ForeignRequest, status: u16, body: &Frame) -> FetchAnswer<Payload>;
}

/// The adapter of a [`Description`].
#[derive(Debug, Clone)]
pub struct Described {
    description: Description,
    /// The top-level members the frames' shapes read, picked in one pass.
    names: Vec<String>,
}

impl Described {
    /// The adapter of `description`.
    ///
    /// # Errors
    /// [`ClientError::InvalidDescription`] when it misses something it
    /// needs (see [`Description::check`]).
    pub fn new(description: Description) -> Result<Described, ClientError> {
        description
            .check()
            .map_err(|reason| ClientError::InvalidDescription { reason })?;
        let mut names: Vec<String> = Vec::new();
        let shapes = std::iter::once(&description.message).chain(description.heartbeat.as_ref());
        for shape in shapes {
            let stream = match &shape.stream {
                StreamSource::Path(path) => Some(path),
                StreamSource::Fixed(_) => None,
            };
            let paths = [
                shape.when.as_ref(),
                Some(&shape.seq),
                stream,
                shape.epoch.as_ref(),
                Some(&shape.payload),
            ];
            for path in paths.into_iter().flatten() {
                let first = path.split('.').next().unwrap_or_default();
                if !first.is_empty() && first != "$" && !names.iter().any(|n| n == first) {
                    names.push(first.to_string());
                }
            }
        }
        Ok(Described { description, names })
    }

    /// The description.
    pub fn description(&self) -> &Description {
        &self.description
    }

    /// Reads `frame` against one shape: `None` when the frame is not of it.
    fn shape<'a>(
        &self,
        shape: &MessageShape,
        frame: &'a Frame,
        root: &Root<'a, '_>,
        heartbeat: bool,
    ) -> Option<Inbound<'a>> {
        let seq_raw = root.at(&shape.seq);
        let selected = match (&shape.when, &shape.matches) {
            (Some(when), Some(matches)) => root.at(when).is_some_and(|v| equals(v, matches)),
            _ => seq_raw.is_some(),
        };
        if !selected {
            return None;
        }
        let bad = |what: &str| Some(Inbound::Bad(format!("{what} at {:?}", shape.seq)));
        let Some(seq) = seq_raw.and_then(number) else {
            return bad("no integer seq");
        };
        let seq = match if heartbeat {
            any_seq(seq)
        } else {
            message_seq(seq)
        } {
            Some(seq) => seq,
            None => return bad("seq out of range"),
        };
        let stream = match &shape.stream {
            StreamSource::Fixed(name) => Cow::Owned(name.clone()),
            StreamSource::Path(path) => match root.at(path).and_then(string) {
                Some(name) => name,
                None => return Some(Inbound::Bad(format!("no stream name at {path:?}"))),
            },
        };
        let epoch = match &shape.epoch {
            None => None,
            Some(path) => match root.at(path).and_then(number) {
                Some(e) if e <= seqsync_core::MAX_SEQ => Some(Epoch(e)),
                _ => return Some(Inbound::Bad(format!("no valid epoch at {path:?}"))),
            },
        };
        if heartbeat {
            return Some(Inbound::Heartbeat { stream, seq, epoch });
        }
        let payload = if is_root(&shape.payload) {
            root.whole(frame)
        } else {
            match root.at(&shape.payload) {
                Some(raw) => frame.payload(raw),
                None => null(),
            }
        };
        Some(Inbound::Message {
            stream,
            seq,
            epoch,
            payload,
        })
    }

    fn messages(&self, body: &Frame, root: &RawValue) -> FetchAnswer<Payload> {
        let Some(history) = &self.description.history else {
            return failed("the description has no history");
        };
        let Some(items) = at(root, &history.messages).and_then(array) else {
            return failed(&format!("no array at {:?}", history.messages));
        };
        let shape = &self.description.message;
        let mut messages = Vec::with_capacity(items.len());
        let mut epoch = None;
        for item in items {
            let Some(seq) = at(item, &shape.seq).and_then(number).and_then(message_seq) else {
                return failed(&format!("a message without a valid seq at {:?}", shape.seq));
            };
            // With epochs, the messages of one answer name one epoch (an
            // element without one names none).
            if let Some(path) = &shape.epoch {
                if let Some(raw) = at(item, path) {
                    let Some(e) = number(raw).filter(|e| *e <= seqsync_core::MAX_SEQ) else {
                        return failed(&format!("a message without a valid epoch at {path:?}"));
                    };
                    if epoch.is_some_and(|known| known != Epoch(e)) {
                        return failed("messages of different epochs in one answer");
                    }
                    epoch = Some(Epoch(e));
                }
            }
            let payload = match at(item, &shape.payload) {
                Some(raw) => body.payload(raw),
                None => null(),
            };
            messages.push((seq, payload));
        }
        FetchAnswer::Messages {
            messages,
            earliest: self.earliest(root),
            epoch,
        }
    }

    fn earliest(&self, root: &RawValue) -> Option<Seq> {
        let path = self.description.history.as_ref()?.earliest.as_ref()?;
        at(root, path).and_then(number).and_then(message_seq)
    }
}

impl Adapter for Described {
    fn plan(&self) -> Plan {
        self.description.plan()
    }

    fn read<'a>(&self, frame: &'a Frame) -> Inbound<'a> {
        let text = frame.as_str();
        let root = match pick(text, &self.names) {
            // An object: its members are all here after one pass.
            Some(members) => Root::Object {
                text,
                names: &self.names,
                members,
            },
            None => match serde_json::from_str::<&RawValue>(text) {
                Ok(raw) => Root::Value(raw),
                Err(_) => return Inbound::Bad("not JSON".into()),
            },
        };
        let root = &root;
        if let Some(inbound) = self.shape(&self.description.message, frame, root, false) {
            return inbound;
        }
        if let Some(shape) = &self.description.heartbeat {
            if let Some(inbound) = self.shape(shape, frame, root, true) {
                return inbound;
            }
        }
        Inbound::Ignore
    }

    fn request(&self, request: &ForeignRequest) -> Outbound {
        self.description.request(request)
    }

    fn answer(&self, request: &ForeignRequest, status: u16, body: &Frame) -> FetchAnswer<Payload> {
        let root = serde_json::from_str::<&RawValue>(body.as_str()).ok();
        if !(200..300).contains(&status) {
            if matches!(request, ForeignRequest::History { .. }) && self.description.is_gone(status)
            {
                return FetchAnswer::Gone {
                    earliest: root.and_then(|r| self.earliest(r)),
                };
            }
            return FetchAnswer::Failed {
                reason: format!("HTTP {status}"),
                status: Some(status),
            };
        }
        if let ForeignRequest::Publish { .. } = request {
            let seq = self
                .description
                .publish
                .as_ref()
                .and_then(|p| p.seq.as_ref())
                .zip(root)
                .and_then(|(path, root)| at(root, path))
                .and_then(number)
                .and_then(message_seq);
            return FetchAnswer::Published { seq };
        }
        let Some(root) = root else {
            return failed("the answer is not JSON");
        };
        match request {
            ForeignRequest::History { .. } => self.messages(body, root),
            ForeignRequest::Snapshot { .. } => {
                let Some(source) = &self.description.snapshot else {
                    return failed("the description has no snapshot");
                };
                let Some(seq) = at(root, &source.seq).and_then(number).and_then(any_seq) else {
                    return failed(&format!("no valid seq at {:?}", source.seq));
                };
                let state = match at(root, &source.state) {
                    Some(raw) => body.payload(raw),
                    None => null(),
                };
                FetchAnswer::Snapshot { seq, state }
            }
            ForeignRequest::Head { .. } => {
                let Some(source) = &self.description.head else {
                    return failed("the description has no head");
                };
                match at(root, &source.seq).and_then(number).and_then(any_seq) {
                    Some(seq) => FetchAnswer::Head { seq },
                    None => failed(&format!("no valid seq at {:?}", source.seq)),
                }
            }
            ForeignRequest::Subscribe { .. }
            | ForeignRequest::Unsubscribe { .. }
            | ForeignRequest::Publish { .. } => failed("no answer was expected"),
        }
    }
}

fn failed<P>(reason: &str) -> FetchAnswer<P> {
    FetchAnswer::Failed {
        reason: reason.to_string(),
        status: None,
    }
}

fn null() -> Payload {
    Payload::null()
}

/// A message's seq: `1..=2^53-1`.
fn message_seq(n: u64) -> Option<Seq> {
    Seq::message(n).ok()
}

/// A head's or a snapshot's seq: `0..=2^53-1`.
fn any_seq(n: u64) -> Option<Seq> {
    Seq::new(n).ok()
}

// ---- reading JSON by path ---------------------------------------------------------

fn is_root(path: &str) -> bool {
    path.is_empty() || path == "$"
}

/// A frame's value, as read so far: an object whose top-level members the
/// description uses were picked in one pass, or any other value.
enum Root<'a, 'n> {
    Object {
        text: &'a str,
        names: &'n [String],
        members: Vec<Option<&'a RawValue>>,
    },
    Value(&'a RawValue),
}

impl<'a> Root<'a, '_> {
    /// The value at `path`.
    fn at(&self, path: &str) -> Option<&'a RawValue> {
        match self {
            Root::Value(raw) => at(raw, path),
            Root::Object {
                text,
                names,
                members,
            } => {
                if is_root(path) {
                    return serde_json::from_str(text).ok();
                }
                let (first, rest) = path.split_once('.').unwrap_or((path, ""));
                match names.iter().position(|n| n == first) {
                    Some(i) => members[i].and_then(|raw| {
                        if rest.is_empty() {
                            Some(raw)
                        } else {
                            at(raw, rest)
                        }
                    }),
                    None => serde_json::from_str::<&RawValue>(text)
                        .ok()
                        .and_then(|raw| at(raw, path)),
                }
            }
        }
    }

    /// The whole value as a payload of `frame`.
    fn whole(&self, frame: &Frame) -> Payload {
        match self {
            Root::Object { .. } => frame.whole(),
            Root::Value(raw) => frame.payload(raw),
        }
    }
}

/// The members `names` of the object `text`, in one pass (the first of
/// repeated ones); `None` when `text` is not one JSON object.
fn pick<'a>(text: &'a str, names: &[String]) -> Option<Vec<Option<&'a RawValue>>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let members = de.deserialize_map(Pick(names)).ok()?;
    de.end().ok()?;
    Some(members)
}

struct Pick<'n>(&'n [String]);

impl<'de> Visitor<'de> for Pick<'_> {
    type Value = Vec<Option<&'de RawValue>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = vec![None; self.0.len()];
        while let Some(key) = map.next_key_seed(Key)? {
            match self.0.iter().position(|n| *n == key) {
                Some(i) if found[i].is_none() => {
                    found[i] = Some(map.next_value::<&'de RawValue>()?)
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

/// The value at `path` inside `root` (`$`: `root`; dot-separated member
/// names, or indices on arrays).
pub fn at<'a>(root: &'a RawValue, path: &str) -> Option<&'a RawValue> {
    if path.is_empty() || path == "$" {
        return Some(root);
    }
    let mut current = root;
    for segment in path.split('.') {
        current = step(current, segment)?;
    }
    Some(current)
}

fn step<'a>(value: &'a RawValue, segment: &str) -> Option<&'a RawValue> {
    let text = value.get();
    let mut de = serde_json::Deserializer::from_str(text);
    match text.trim_start().as_bytes().first() {
        Some(b'{') => de.deserialize_map(Member(segment)).ok().flatten(),
        Some(b'[') => {
            let index: usize = segment.parse().ok()?;
            de.deserialize_seq(Element(index)).ok().flatten()
        }
        _ => None,
    }
}

/// Finds one member of an object in one pass, without building a map.
struct Member<'n>(&'n str);

impl<'de> Visitor<'de> for Member<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key_seed(Key)? {
            if found.is_none() && key == self.0 {
                found = Some(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Finds one element of an array.
struct Element(usize);

impl<'de> Visitor<'de> for Element {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let mut index = 0;
        while index <= self.0 {
            match seq.next_element::<&'de RawValue>()? {
                Some(raw) if index == self.0 => found = Some(raw),
                Some(_) => {}
                None => return Ok(None),
            }
            index += 1;
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(found)
    }
}

/// A member name, borrowed when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

fn array(raw: &RawValue) -> Option<Vec<&RawValue>> {
    serde_json::from_str(raw.get()).ok()
}

fn number(raw: &RawValue) -> Option<u64> {
    serde_json::from_str(raw.get()).ok()
}

fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    Key.deserialize(&mut de).ok()
}

/// Whether `value` equals `matches`: a string equal to it, or a value
/// whose JSON text is it.
fn equals(value: &RawValue, matches: &str) -> bool {
    match string(value) {
        Some(text) => text == matches,
        None => value.get().trim() == matches.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> &RawValue {
        serde_json::from_str(text).expect("json")
    }

    #[test]
    fn paths_find_members_elements_and_the_value_itself() {
        let root = raw(r#"{"a":{"b":[10,{"c":"x\"y"}]},"a\u0062":2}"#);
        assert_eq!(at(root, "a.b.0").map(RawValue::get), Some("10"));
        assert_eq!(
            at(root, "a.b.1.c").and_then(string).as_deref(),
            Some("x\"y")
        );
        assert_eq!(
            at(root, "ab").map(RawValue::get),
            Some("2"),
            "escaped member names match"
        );
        assert!(at(root, "a.b.2").is_none());
        assert!(at(root, "a.b.x").is_none());
        assert!(at(root, "a.b.0.c").is_none());
        assert_eq!(at(root, "$").map(RawValue::get), Some(root.get()));
    }

    fn described(json: &str) -> Described {
        Described::new(serde_json::from_str(json).expect("description")).expect("usable")
    }

    #[test]
    fn frames_read_as_messages_heartbeats_ignored_or_bad() {
        let d = described(
            r#"{"message": {"when": "event", "matches": "message", "stream": {"path": "room"}, "seq": "sequence_id", "payload": "message"},
                "heartbeat": {"when": "event", "matches": "head", "stream": {"path": "room"}, "seq": "sequence_id"}}"#,
        );
        let frame =
            Frame::new(r#"{"event":"message","room":"r1","sequence_id":42,"message":{"t":"hi"}}"#);
        match d.read(&frame) {
            Inbound::Message {
                stream,
                seq,
                epoch,
                payload,
            } => {
                assert_eq!((stream.as_ref(), seq.get(), epoch), ("r1", 42, None));
                assert_eq!(payload.as_str(), r#"{"t":"hi"}"#);
            }
            other => panic!("{other:?}"),
        }
        let head = Frame::new(r#"{"event":"head","room":"r1","sequence_id":0}"#);
        assert!(matches!(d.read(&head), Inbound::Heartbeat { seq, .. } if seq == Seq::ZERO));
        for (text, bad) in [
            (r#"{"event":"joined","room":"r1"}"#, false),
            (r#"{"event":"message","room":"r1","sequence_id":0}"#, true),
            (
                r#"{"event":"message","room":"r1","sequence_id":9007199254740992}"#,
                true,
            ),
            (r#"{"event":"message","room":"r1","sequence_id":"7"}"#, true),
            (r#"{"event":"message","room":7,"sequence_id":7}"#, true),
            ("not json", true),
            (r#"{"event":"message","room":"r1","sequence_id":1"#, true),
        ] {
            let frame = Frame::new(text);
            let read = d.read(&frame);
            assert_eq!(matches!(read, Inbound::Bad(_)), bad, "{text}: {read:?}");
            if !bad {
                assert!(matches!(read, Inbound::Ignore));
            }
        }
    }

    #[test]
    fn nested_paths_repeated_members_and_the_whole_frame_read_as_one_pass_would_not_differ() {
        let d = described(
            r#"{"message": {"stream": {"path": "meta.room"}, "seq": "meta.ids.1", "payload": "$"}}"#,
        );
        let text =
            r#"  {"meta":{"room":"r\u0031","ids":[9,5]},"meta":{"room":"other","ids":[0,6]}} "#;
        let frame = Frame::new(text);
        match d.read(&frame) {
            Inbound::Message {
                stream,
                seq,
                payload,
                ..
            } => {
                assert_eq!(
                    (stream.as_ref(), seq.get()),
                    ("r1", 5),
                    "the first of repeated members"
                );
                assert_eq!(payload.as_str(), text.trim());
            }
            other => panic!("{other:?}"),
        }
        // The same shape inside an array is read through the general path.
        let d =
            described(r#"{"message": {"stream": {"fixed": "r"}, "seq": "0.s", "payload": "0.p"}}"#);
        let frame = Frame::new(r#"[{"s":3,"p":[true]}]"#);
        assert!(
            matches!(d.read(&frame), Inbound::Message { seq, payload, .. } if seq.get() == 3 && payload.as_str() == "[true]")
        );
    }

    #[test]
    fn an_answer_names_the_epoch_its_messages_name() {
        let d = described(
            r#"{"message": {"stream": {"path": "ch.id"}, "seq": "n", "epoch": "gen", "payload": "body"},
                "history": {"url": "http://h/{stream}?after={since}", "messages": "data.events"}}"#,
        );
        let request = ForeignRequest::History {
            stream: seqsync_core::StreamName::new("r").expect("name"),
            since: Seq::ZERO,
            to: None,
            limit: 10,
        };
        let epoch_of = |text: &str| match d.answer(&request, 200, &Frame::new(text)) {
            FetchAnswer::Messages { epoch, .. } => Ok(epoch.map(|e| e.0)),
            FetchAnswer::Failed { reason, .. } => Err(reason),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            epoch_of(r#"{"data":{"events":[{"n":1,"gen":3},{"n":2,"gen":3}]}}"#),
            Ok(Some(3))
        );
        assert_eq!(
            epoch_of(r#"{"data":{"events":[{"n":1},{"n":2}]}}"#),
            Ok(None)
        );
        assert!(epoch_of(r#"{"data":{"events":[{"n":1,"gen":3},{"n":2,"gen":4}]}}"#).is_err());
        assert!(epoch_of(r#"{"data":{"events":[{"n":1,"gen":-3}]}}"#).is_err());
    }

    #[test]
    fn answers_read_as_messages_gone_or_failed() {
        let d = described(
            r#"{"message": {"stream": {"path": "room"}, "seq": "sequence_id", "payload": "message"},
                "history": {"url": "http://h/{stream}?since={since}", "messages": "messages", "earliest": "earliest_sequence_id"}}"#,
        );
        let request = ForeignRequest::History {
            stream: seqsync_core::StreamName::new("r").expect("name"),
            since: Seq::ZERO,
            to: None,
            limit: 10,
        };
        let body = Frame::new(
            r#"{"messages":[{"sequence_id":2,"message":"b"},{"sequence_id":1,"message":"a"}],"earliest_sequence_id":1}"#,
        );
        match d.answer(&request, 200, &body) {
            FetchAnswer::Messages {
                messages, earliest, ..
            } => {
                let seqs: Vec<u64> = messages.iter().map(|(s, _)| s.get()).collect();
                assert_eq!(seqs, [2, 1]);
                assert_eq!(messages[0].1.as_str(), r#""b""#);
                assert_eq!(earliest.map(Seq::get), Some(1));
            }
            other => panic!("{other:?}"),
        }
        let gone = Frame::new(r#"{"error":"gone","earliest_sequence_id":77}"#);
        assert!(
            matches!(d.answer(&request, 410, &gone), FetchAnswer::Gone { earliest: Some(e) } if e.get() == 77)
        );
        assert!(matches!(
            d.answer(&request, 500, &gone),
            FetchAnswer::Failed {
                status: Some(500),
                ..
            }
        ));
        let spoiled = Frame::new(r#"{"messages":[{"sequence_id":2},{"sequence_id":-1}]}"#);
        assert!(matches!(
            d.answer(&request, 200, &spoiled),
            FetchAnswer::Failed { .. }
        ));
        assert!(matches!(
            d.answer(&request, 200, &Frame::new("<html>")),
            FetchAnswer::Failed { .. }
        ));
    }
}
