//! Server frames parsed without copying: every payload is a borrowed slice
//! of the frame's text (`&RawValue`), stream names and ids borrow where
//! they have no escapes. A client can keep payloads as slices of the frame
//! it received until the application asks for a type, so a message costs
//! no allocation on the way in (feature `json`).
//!
//! [`ServerFrame`](super::ServerFrame) is internally tagged, so serde
//! buffers its members and cannot lend out raw slices; here every member of
//! every frame type is read in one pass into one table of optional fields
//! ([`Fields`]), and the core's [`InboundFrame::from_fields`] then says
//! which the frame's `type` requires, as it does for the browser's
//! `JSON.parse`.
//!
//! ```
//! use seqsync_core::protocol::{parse_server_frame_raw, RawServerFrame, StreamKey};
//!
//! let text = r#"{"type":"msg","stream":"room","seq":7,"epoch":3,"data":{"text":"hi"}}"#;
//! match parse_server_frame_raw(text, 1 << 20)? {
//!     RawServerFrame::Msg { stream: StreamKey::Name(stream), seq, data, .. } => {
//!         assert_eq!((&*stream, seq.get(), data.get()), ("room", 7, r#"{"text":"hi"}"#));
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), seqsync_core::Error>(())
//! ```

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::inbound::{Fields, InboundFrame, StreamKey};
use crate::error::Error;

/// One server frame, borrowing from its text: payloads are slices of it.
pub type RawServerFrame<'a> = InboundFrame<'a, &'a RawValue>;

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
    #[serde(default)]
    frame_limit: Option<u64>,
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
    InboundFrame::from_fields(Fields {
        kind: m.kind,
        stream: m.stream.map(StreamKey::Name),
        seq: m.seq,
        epoch: m.epoch,
        head: m.head,
        from: m.from,
        to: m.to,
        earliest: m.earliest,
        data: m.data,
        state: m.state,
        messages: m.messages.map(|items| {
            items
                .into_iter()
                .map(|i| (Some(i.seq), Some(i.data)))
                .collect()
        }),
        heads: m.heads.map(|heads| {
            heads
                .into_iter()
                .map(|(name, h)| (name, Some(h.seq), Some(h.epoch)))
                .collect()
        }),
        reason: m.reason,
        id: m.id,
        code: m.code,
        message: m.message,
        reference: m.reference,
        frame_limit: m.frame_limit,
    })
}

/// A text member, borrowed from the frame unless it has escapes (serde's
/// own borrowing does not reach through `Option`).
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct Text;
    impl<'de> serde::de::Visitor<'de> for Text {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SeqRange;

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
        let RawServerFrame::Head { heads, .. } =
            parse_server_frame_raw(head, 1 << 20).expect("head")
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
