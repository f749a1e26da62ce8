//! Server frames parsed without copying: every payload is a borrowed slice
//! of the frame's text (`&RawValue`), stream names and ids borrow where
//! they have no escapes. A client can keep payloads as slices of the frame
//! it received until the application asks for a type, so a message costs
//! no allocation on the way in (feature `json`).
//!
//! [`ServerFrame`](super::ServerFrame) is internally tagged, so serde
//! buffers its members and cannot lend out raw slices; here every member of
//! every frame type is read in one pass into one table of optional fields,
//! and the frame's `type` then says which are required.
//!
//! ```
//! use seqsync_core::protocol::{parse_server_frame_raw, RawServerFrame};
//!
//! let text = r#"{"type":"msg","stream":"room","seq":7,"epoch":3,"data":{"text":"hi"}}"#;
//! match parse_server_frame_raw(text, 1 << 20)? {
//!     RawServerFrame::Msg { stream, seq, data, .. } => {
//!         assert_eq!((&*stream, seq.get(), data.get()), ("room", 7, r#"{"text":"hi"}"#));
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), seqsync_core::Error>(())
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::Error;
use crate::types::{Epoch, MAX_SEQ, Seq, SeqRange};

/// One server frame, borrowing from its text.
#[derive(Debug, Clone)]
pub enum RawServerFrame<'a> {
    /// A live message.
    Msg {
        /// The stream.
        stream: Cow<'a, str>,
        /// Its seq (at least 1).
        seq: Seq,
        /// The log's epoch, when the frame has one.
        epoch: Option<Epoch>,
        /// The payload's JSON text.
        data: &'a RawValue,
    },
    /// The stream's state at `seq`.
    Snapshot {
        /// The stream.
        stream: Cow<'a, str>,
        /// Last seq folded into the state.
        seq: Seq,
        /// The log's epoch.
        epoch: Epoch,
        /// The state's JSON text.
        state: &'a RawValue,
        /// The `ref` of the request this answers.
        reference: Option<Cow<'a, str>>,
    },
    /// The answer to a resuming subscribe.
    Subscribed {
        /// The stream.
        stream: Cow<'a, str>,
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
        stream: Cow<'a, str>,
        /// The covered range.
        range: SeqRange,
        /// The log's epoch, when the frame has one.
        epoch: Option<Epoch>,
        /// The messages, each with its payload's JSON text.
        messages: Vec<(Seq, &'a RawValue)>,
        /// The `ref` of the request this answers.
        reference: Option<Cow<'a, str>>,
    },
    /// A heartbeat: each stream's head and epoch.
    Head {
        /// Per stream.
        heads: Vec<(Cow<'a, str>, Seq, Epoch)>,
    },
    /// The stream must start over from a snapshot.
    Reset {
        /// The stream.
        stream: Cow<'a, str>,
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
        stream: Cow<'a, str>,
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

/// Every member any server frame has, each optional; filled in one pass.
#[derive(Deserialize)]
struct Members<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "text")]
    stream: Option<Cow<'a, str>>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    epoch: Option<u64>,
    #[serde(borrow, default, deserialize_with = "present")]
    data: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    state: Option<&'a RawValue>,
    #[serde(default)]
    head: Option<u64>,
    #[serde(default)]
    from: Option<u64>,
    #[serde(default)]
    to: Option<u64>,
    #[serde(borrow, default)]
    messages: Option<Vec<Item<'a>>>,
    #[serde(borrow, default)]
    heads: Option<BTreeMap<Cow<'a, str>, HeadMember>>,
    #[serde(borrow, default, deserialize_with = "text")]
    reason: Option<Cow<'a, str>>,
    #[serde(default)]
    earliest: Option<u64>,
    #[serde(borrow, default, deserialize_with = "text")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    message: Option<Cow<'a, str>>,
    #[serde(rename = "ref", borrow, default, deserialize_with = "text")]
    reference: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Item<'a> {
    seq: u64,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Deserialize)]
struct HeadMember {
    seq: u64,
    epoch: u64,
}

/// Parses a server frame, refusing frames over `max_bytes`, without
/// copying payloads.
///
/// # Errors
/// [`Error::FrameTooLarge`], [`Error::UnknownFrameType`],
/// [`Error::SeqOutOfRange`], [`Error::EpochOutOfRange`],
/// [`Error::InvalidRange`] or [`Error::MalformedFrame`] (not JSON, a
/// member missing or of the wrong type, a member twice).
pub fn parse_server_frame_raw(text: &str, max_bytes: usize) -> Result<RawServerFrame<'_>, Error> {
    if text.len() > max_bytes {
        return Err(Error::FrameTooLarge {
            len: text.len(),
            max: max_bytes,
        });
    }
    let m: Members<'_> = serde_json::from_str(text).map_err(|e| Error::MalformedFrame {
        reason: e.to_string(),
    })?;
    let frame = match &*m.kind {
        "msg" => RawServerFrame::Msg {
            stream: need(m.stream, "stream")?,
            seq: message_seq(need(m.seq, "seq")?)?,
            epoch: m.epoch.map(epoch).transpose()?,
            data: need(m.data, "data")?,
        },
        "snapshot" => RawServerFrame::Snapshot {
            stream: need(m.stream, "stream")?,
            seq: Seq::new(need(m.seq, "seq")?)?,
            epoch: epoch(need(m.epoch, "epoch")?)?,
            state: need(m.state, "state")?,
            reference: m.reference,
        },
        "subscribed" => RawServerFrame::Subscribed {
            stream: need(m.stream, "stream")?,
            epoch: epoch(need(m.epoch, "epoch")?)?,
            head: Seq::new(need(m.head, "head")?)?,
            reference: m.reference,
        },
        "history" => {
            let items = need(m.messages, "messages")?;
            let mut messages = Vec::with_capacity(items.len());
            for item in items {
                messages.push((message_seq(item.seq)?, item.data));
            }
            RawServerFrame::History {
                stream: need(m.stream, "stream")?,
                range: SeqRange::from_u64(need(m.from, "from")?, need(m.to, "to")?)?,
                epoch: m.epoch.map(epoch).transpose()?,
                messages,
                reference: m.reference,
            }
        }
        "head" => {
            let mut heads = Vec::new();
            for (stream, head) in need(m.heads, "heads")? {
                heads.push((stream, Seq::new(head.seq)?, epoch(head.epoch)?));
            }
            RawServerFrame::Head { heads }
        }
        "reset" => RawServerFrame::Reset {
            stream: need(m.stream, "stream")?,
            reason: need(m.reason, "reason")?,
            earliest: m.earliest.map(Seq::new).transpose()?,
            reference: m.reference,
        },
        "ack" => RawServerFrame::Ack {
            id: need(m.id, "id")?,
            stream: need(m.stream, "stream")?,
            seq: message_seq(need(m.seq, "seq")?)?,
        },
        "error" => RawServerFrame::Error {
            code: need(m.code, "code")?,
            message: need(m.message, "message")?,
            reference: m.reference,
        },
        other => {
            return Err(Error::UnknownFrameType {
                kind: other.chars().take(64).collect(),
            });
        }
    };
    Ok(frame)
}

/// A text member, borrowed from the frame unless it has escapes (serde's
/// own borrowing does not reach through `Option`).
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct Text;
    impl<'de> serde::de::Visitor<'de> for Text {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_str(Text)
}

/// A payload member that is there, `null` included (a plain `Option` would
/// read `null` as absent).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

fn need<T>(member: Option<T>, name: &'static str) -> Result<T, Error> {
    member.ok_or_else(|| Error::MalformedFrame {
        reason: format!("missing member `{name}`"),
    })
}

fn message_seq(value: u64) -> Result<Seq, Error> {
    Seq::message(value)
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

    #[test]
    fn every_frame_type_parses_with_its_payloads_borrowed() {
        let history = r#"{"type":"history","stream":"r","from":3,"to":5,"epoch":9,"skipped":[{"from":4,"to":4}],"messages":[{"seq":3,"data":[1,2]},{"seq":5,"data":"e"}],"ref":"1.0"}"#;
        let RawServerFrame::History {
            range,
            messages,
            reference,
            ..
        } = parse_server_frame_raw(history, 1 << 20).expect("history")
        else {
            panic!("not a history frame")
        };
        assert_eq!(range, SeqRange::from_u64(3, 5).expect("range"));
        let texts: Vec<(u64, &str)> = messages.iter().map(|(s, d)| (s.get(), d.get())).collect();
        assert_eq!(texts, [(3, "[1,2]"), (5, r#""e""#)]);
        assert_eq!(reference.as_deref(), Some("1.0"));

        let head = r#"{"type":"head","heads":{"a":{"seq":4,"epoch":1},"b\n":{"seq":0,"epoch":2}}}"#;
        let RawServerFrame::Head { heads } = parse_server_frame_raw(head, 1 << 20).expect("head")
        else {
            panic!("not a head frame")
        };
        assert_eq!(heads.len(), 2);
        assert_eq!(heads[1].0, "b\n", "escaped names are decoded");

        for text in [
            r#"{"type":"snapshot","stream":"r","seq":0,"epoch":1,"state":null}"#,
            r#"{"type":"subscribed","stream":"r","epoch":1,"head":3}"#,
            r#"{"type":"reset","stream":"r","reason":"epoch_changed"}"#,
            r#"{"type":"ack","id":"x","stream":"r","seq":3}"#,
            r#"{"type":"error","code":"unauthorized","message":"no","ref":"x"}"#,
            r#"{"seq":1,"stream":"r","data":{},"type":"msg","future":true}"#,
        ] {
            assert!(parse_server_frame_raw(text, 1 << 20).is_ok(), "{text}");
        }
        // `null` is a payload like any other, not an absent member.
        let null = r#"{"type":"msg","stream":"r","seq":1,"data":null}"#;
        assert!(matches!(
            parse_server_frame_raw(null, 1 << 20),
            Ok(RawServerFrame::Msg { data, .. }) if data.get() == "null"
        ));
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        type Expect = fn(&Error) -> bool;
        let cases: [(&str, Expect); 8] = [
            ("nope", |e| matches!(e, Error::MalformedFrame { .. })),
            (r#"{"type":"msg","stream":"r","seq":0,"data":1}"#, |e| {
                matches!(e, Error::SeqOutOfRange { seq: 0 })
            }),
            (
                r#"{"type":"msg","stream":"r","seq":9007199254740992,"data":1}"#,
                |e| matches!(e, Error::SeqOutOfRange { .. }),
            ),
            (r#"{"type":"msg","stream":"r","seq":-1,"data":1}"#, |e| {
                matches!(e, Error::MalformedFrame { .. })
            }),
            (r#"{"type":"msg","stream":"r","seq":1}"#, |e| {
                matches!(e, Error::MalformedFrame { .. })
            }),
            (
                r#"{"type":"msg","type":"msg","stream":"r","seq":1,"data":1}"#,
                |e| matches!(e, Error::MalformedFrame { .. }),
            ),
            (r#"{"type":"teleport"}"#, |e| {
                matches!(e, Error::UnknownFrameType { .. })
            }),
            (
                r#"{"type":"history","stream":"r","from":5,"to":2,"messages":[]}"#,
                |e| matches!(e, Error::InvalidRange { .. }),
            ),
        ];
        for (text, expected) in cases {
            let error = parse_server_frame_raw(text, 1 << 20).expect_err(text);
            assert!(expected(&error), "{text}: {error:?}");
        }
        assert!(matches!(
            parse_server_frame_raw("{}", 1),
            Err(Error::FrameTooLarge { len: 2, max: 1 })
        ));
    }
}
