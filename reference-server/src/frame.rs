//! Frames on the wire, server side: client requests read from text in one
//! pass, server frames written as shared text.
//!
//! A request is parsed once, member by member, as raw JSON slices of the
//! frame's text: each member is checked by the rule of its kind, numbers are
//! judged from their spelling (so a `since` of a thousand digits is
//! `seq_out_of_range`, not a float that failed to parse), and a refused
//! frame's `ref`, `id` or `stream` is taken from the same slices. A
//! publish's `data` stays the client's JSON text: it is validated by the
//! parse and never rebuilt.

use axum::extract::ws::Utf8Bytes;
use seqsync_core::protocol::{
    ClientFrame, ErrorCode, MAX_PUBLISH_ID_LEN, MAX_REF_LEN, RequestRef, ServerFrame, WireRange,
};
use seqsync_core::{Epoch, MAX_SEQ, Seq, SeqRange, StreamName};
use std::borrow::Cow;

use serde::de::{Error as _, IgnoredAny, MapAccess};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::log::Payload;

/// Deepest nesting of arrays and objects accepted in a payload: what
/// `serde_json` (and so the Rust clients) parse by default.
const MAX_DEPTH: usize = 128;

/// A request as the server handles it: the core's frame type, with the
/// payload kept as JSON text.
pub(crate) type Request = ClientFrame<Payload>;

/// Why a frame was refused: the `error` frame that answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    /// The code (section 6).
    pub(crate) code: ErrorCode,
    /// What was wrong, for people.
    pub(crate) message: String,
    /// What the error is about (section 5.8): the frame's `ref`, else a
    /// publish's `id`, else its `stream`, when readable.
    pub(crate) reference: Option<String>,
}

impl Refused {
    fn new(code: ErrorCode, message: impl Into<String>) -> Refused {
        Refused {
            code,
            message: message.into(),
            reference: None,
        }
    }
}

impl From<seqsync_core::Error> for Refused {
    fn from(e: seqsync_core::Error) -> Refused {
        Refused::new(e.code(), e.to_string())
    }
}

/// The members a client frame may have, by name.
const NAMES: [&str; 9] = [
    "type", "stream", "since", "epoch", "from", "to", "id", "ref", "data",
];

/// The members of a client frame this protocol knows, each as its raw JSON
/// text (`null` included); unknown members are skipped, and any member
/// given twice is a malformed frame.
struct Members<'a>([Option<&'a RawValue>; NAMES.len()]);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Members<'de>, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Members([None; NAMES.len()]);
                // Unknown members are skipped, but not twice (section 6).
                let mut unknown = std::collections::HashSet::new();
                while let Some(name) = map.next_key::<Cow<'de, str>>()? {
                    let Some(i) = NAMES.iter().position(|n| *n == name) else {
                        map.next_value::<IgnoredAny>()?;
                        if !unknown.insert(name) {
                            return Err(A::Error::custom("a member given twice"));
                        }
                        continue;
                    };
                    if members.0[i].is_some() {
                        return Err(A::Error::custom(format!("member {name:?} given twice")));
                    }
                    members.0[i] = Some(map.next_value()?);
                }
                Ok(members)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// Parses one client frame of at most `max_bytes`.
///
/// # Errors
/// [`Refused`] with the code section 6 gives the first fault found.
pub(crate) fn parse_request(text: &str, max_bytes: usize) -> Result<Request, Refused> {
    if text.len() > max_bytes {
        return Err(Refused::new(
            ErrorCode::FrameTooLarge,
            format!(
                "frame of {} bytes exceeds the limit of {max_bytes} bytes",
                text.len()
            ),
        ));
    }
    let members: Members<'_> = serde_json::from_str(text).map_err(|e| {
        Refused::new(
            ErrorCode::MalformedFrame,
            format!("not a JSON object of distinct members: {e}"),
        )
    })?;
    members.request().map_err(|mut refused| {
        refused.reference = members.about();
        refused
    })
}

/// A JSON value that should be a number, judged from its text.
enum Number {
    /// Digits only, within `0..=2^53-1`.
    Seq(u64),
    /// Digits only, above `2^53-1` (however many).
    TooLarge,
    /// `null`: an absent optional member (section 2.2).
    Null,
    /// A negative number, a fraction, an exponent, or not a number.
    Malformed,
}

fn number(raw: &RawValue) -> Number {
    let text = raw.get().trim();
    if text == "null" {
        return Number::Null;
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Number::Malformed;
    }
    // 2^53-1 has 16 digits, and JSON allows no leading zeros.
    match text.parse::<u64>() {
        Ok(n) if text.len() <= 16 && n <= MAX_SEQ => Number::Seq(n),
        _ => Number::TooLarge,
    }
}

/// How deeply arrays and objects nest in valid JSON `text`.
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn malformed(message: impl Into<String>) -> Refused {
    Refused::new(ErrorCode::MalformedFrame, message)
}

fn string(raw: Option<&RawValue>) -> Option<String> {
    raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok())
}

impl<'a> Members<'a> {
    fn get(&self, name: &str) -> Option<&'a RawValue> {
        NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|i| self.0[i])
    }

    fn request(&self) -> Result<Request, Refused> {
        let kind = string(self.get("type"))
            .ok_or_else(|| malformed("missing or non-string \"type\" member"))?;
        match kind.as_str() {
            "subscribe" => {
                let stream = self.stream()?;
                let since = self.seq("since")?;
                Ok(ClientFrame::Subscribe {
                    stream,
                    // Section 4.1: the epoch is ignored without `since`.
                    epoch: if since.is_some() { self.epoch()? } else { None },
                    since,
                    reference: self.reference()?,
                })
            }
            "unsubscribe" => Ok(ClientFrame::Unsubscribe {
                stream: self.stream()?,
            }),
            "history" => {
                let stream = self.stream()?;
                let from = self.seq("from")?;
                let to = self.seq("to")?;
                let (Some(from), Some(to)) = (from, to) else {
                    return Err(malformed("history needs \"from\" and \"to\""));
                };
                let range = SeqRange::new(from, to).map_err(Refused::from)?;
                Ok(ClientFrame::History {
                    stream,
                    range: WireRange(range),
                    reference: self.reference()?,
                })
            }
            "snapshot" => Ok(ClientFrame::Snapshot {
                stream: self.stream()?,
                reference: self.reference()?,
            }),
            "publish" => {
                let stream = self.stream()?;
                let id = string(self.get("id"))
                    .filter(|id| !id.is_empty() && id.len() <= MAX_PUBLISH_ID_LEN)
                    .ok_or_else(|| {
                        malformed(format!(
                            "publish needs an \"id\" string of 1 to {MAX_PUBLISH_ID_LEN} bytes"
                        ))
                    })?;
                let data = self
                    .get("data")
                    .ok_or_else(|| malformed("publish needs \"data\""))?;
                if nesting(data.get()) > MAX_DEPTH {
                    return Err(malformed(format!(
                        "\"data\" is nested deeper than {MAX_DEPTH} levels"
                    )));
                }
                Ok(ClientFrame::Publish {
                    stream,
                    id,
                    data: data.to_owned(),
                })
            }
            other => Err(Refused::new(
                ErrorCode::UnknownType,
                format!(
                    "unknown frame type {:?}",
                    other.chars().take(64).collect::<String>()
                ),
            )),
        }
    }

    fn stream(&self) -> Result<StreamName, Refused> {
        let name = string(self.get("stream"))
            .ok_or_else(|| malformed("missing or non-string \"stream\""))?;
        StreamName::new(&name).map_err(Refused::from)
    }

    /// An optional seq member: `None` when absent or `null`.
    fn seq(&self, member: &str) -> Result<Option<Seq>, Refused> {
        let Some(raw) = self.get(member) else {
            return Ok(None);
        };
        match number(raw) {
            Number::Seq(n) => Ok(Seq::new(n).ok()),
            Number::Null => Ok(None),
            Number::TooLarge => Err(Refused::new(
                ErrorCode::SeqOutOfRange,
                format!("\"{member}\" is above 9007199254740991 (2^53 - 1)"),
            )),
            Number::Malformed => Err(malformed(format!(
                "\"{member}\" must be an integer in 0..=9007199254740991, written without sign, fraction or exponent"
            ))),
        }
    }

    fn epoch(&self) -> Result<Option<Epoch>, Refused> {
        let Some(raw) = self.get("epoch") else {
            return Ok(None);
        };
        match number(raw) {
            Number::Seq(n) => Ok(Some(Epoch(n))),
            Number::Null => Ok(None),
            Number::TooLarge | Number::Malformed => Err(malformed(
                "\"epoch\" must be an integer in 0..=9007199254740991",
            )),
        }
    }

    fn reference(&self) -> Result<Option<RequestRef>, Refused> {
        let Some(raw) = self.get("ref") else {
            return Ok(None);
        };
        if raw.get() == "null" {
            return Ok(None);
        }
        let text = string(Some(raw)).ok_or_else(|| {
            malformed(format!(
                "\"ref\" must be a string of 1 to {MAX_REF_LEN} bytes"
            ))
        })?;
        RequestRef::new(&text).map(Some).map_err(Refused::from)
    }

    /// What a refusal of this frame is about (section 5.8): the `ref` of a
    /// `subscribe`, `history` or `snapshot` (on any other frame `ref` is an
    /// unknown member), else a publish's `id`, else the `stream`, when that
    /// member is a string of the length its kind allows.
    fn about(&self) -> Option<String> {
        let first = match string(self.get("type")).as_deref() {
            Some("subscribe" | "history" | "snapshot") => Some(("ref", MAX_REF_LEN)),
            Some("publish") => Some(("id", MAX_PUBLISH_ID_LEN)),
            _ => None,
        };
        first
            .into_iter()
            .chain([("stream", seqsync_core::types::MAX_STREAM_NAME_LEN)])
            .find_map(|(name, max)| {
                string(self.get(name)).filter(|s| !s.is_empty() && s.len() <= max)
            })
    }
}

/// A frame as shared text.
pub(crate) fn text<D: serde::Serialize>(frame: &ServerFrame<D>) -> Utf8Bytes {
    match serde_json::to_string(frame) {
        Ok(s) => Utf8Bytes::from(s),
        Err(_) => error_frame(ErrorCode::Internal, "a frame could not be encoded", None),
    }
}

/// An `error` frame.
pub(crate) fn error_frame(code: ErrorCode, message: &str, reference: Option<&str>) -> Utf8Bytes {
    let frame = ServerFrame::<()>::Error {
        code: code.as_str().to_string(),
        message: message.to_string(),
        reference: reference.map(str::to_string),
    };
    serde_json::to_string(&frame)
        .map(Utf8Bytes::from)
        .unwrap_or_else(|_| {
            Utf8Bytes::from_static(
                r#"{"type":"error","code":"internal","message":"encoding failed"}"#,
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> Refused {
        match parse_request(text, 1 << 16) {
            Ok(_) => panic!("accepted: {}", text.chars().take(80).collect::<String>()),
            Err(r) => r,
        }
    }

    #[test]
    fn numbers_are_judged_by_their_spelling() {
        for (since, code) in [
            ("-1", ErrorCode::MalformedFrame),
            ("1.5", ErrorCode::MalformedFrame),
            ("1e2", ErrorCode::MalformedFrame),
            ("\"7\"", ErrorCode::MalformedFrame),
            ("9007199254740992", ErrorCode::SeqOutOfRange),
            ("18446744073709551616", ErrorCode::SeqOutOfRange),
        ] {
            let frame = format!(r#"{{"type":"subscribe","stream":"s","since":{since}}}"#);
            assert_eq!(refused(&frame).code, code, "since {since}");
        }
        let huge = format!(
            r#"{{"type":"subscribe","stream":"s","since":{}}}"#,
            "9".repeat(5000)
        );
        assert_eq!(refused(&huge).code, ErrorCode::SeqOutOfRange);
        let ok = parse_request(
            r#"{"type":"subscribe","stream":"s","since":9007199254740991,"epoch":null}"#,
            1 << 16,
        );
        assert!(
            matches!(ok, Ok(ClientFrame::Subscribe { since: Some(s), epoch: None, .. }) if s == Seq::MAX)
        );
    }

    #[test]
    fn history_bounds_above_the_largest_seq_are_out_of_range_and_order_is_a_range_fault() {
        let frame = |from: &str, to: &str| {
            format!(r#"{{"type":"history","stream":"s","from":{from},"to":{to}}}"#)
        };
        assert_eq!(
            refused(&frame("1", "9007199254740992")).code,
            ErrorCode::SeqOutOfRange
        );
        assert_eq!(refused(&frame("0", "3")).code, ErrorCode::InvalidRange);
        assert_eq!(refused(&frame("5", "2")).code, ErrorCode::InvalidRange);
        assert_eq!(refused(&frame("-1", "3")).code, ErrorCode::MalformedFrame);
    }

    #[test]
    fn an_epoch_without_since_is_ignored_and_with_since_it_is_checked() {
        for epoch in ["-1", "\"x\"", "9007199254740992", "5"] {
            let frame = format!(r#"{{"type":"subscribe","stream":"s","epoch":{epoch}}}"#);
            assert!(
                matches!(
                    parse_request(&frame, 1 << 16),
                    Ok(ClientFrame::Subscribe {
                        epoch: None,
                        since: None,
                        ..
                    })
                ),
                "{frame}"
            );
        }
        let frame = r#"{"type":"subscribe","stream":"s","since":3,"epoch":-1}"#;
        assert_eq!(refused(frame).code, ErrorCode::MalformedFrame);
    }

    #[test]
    fn a_refusal_names_the_ref_then_the_id_then_the_stream() {
        let r = refused(r#"{"type":"history","stream":"s","from":0,"to":1,"ref":"q"}"#);
        assert_eq!(r.reference.as_deref(), Some("q"));
        let r = refused(r#"{"type":"publish","stream":"","id":"p1","data":1}"#);
        assert_eq!(
            (r.code, r.reference.as_deref()),
            (ErrorCode::InvalidStream, Some("p1"))
        );
        let r = refused(r#"{"type":"history","stream":"room","from":0,"to":1}"#);
        assert_eq!(r.reference.as_deref(), Some("room"));
        // `ref` belongs to subscribe, history and snapshot only: on a publish
        // it is an unknown member, and the error names the publish's id.
        let r = refused(r#"{"type":"publish","stream":"","id":"p2","data":1,"ref":"R"}"#);
        assert_eq!(r.reference.as_deref(), Some("p2"));
        let r = refused(r#"{"type":"publish","stream":"a","id":"p3","ref":"R"}"#);
        assert_eq!(
            (r.code, r.reference.as_deref()),
            (ErrorCode::MalformedFrame, Some("p3"))
        );
        let r = refused(r#"{"type":"frobnicate","stream":"s","ref":"u1"}"#);
        assert_eq!(r.reference.as_deref(), Some("s"));
        assert_eq!(refused("{not json").reference, None);
    }

    #[test]
    fn publish_keeps_its_payload_text_and_null_is_a_payload() {
        let frame = parse_request(
            r#"{"type":"publish","stream":"s","id":"a","data":null}"#,
            1 << 16,
        );
        assert!(matches!(frame, Ok(ClientFrame::Publish { ref data, .. }) if data.get() == "null"));
        assert_eq!(
            refused(r#"{"type":"publish","stream":"s","id":"a"}"#).code,
            ErrorCode::MalformedFrame
        );
        assert_eq!(
            refused(r#"{"type":"publish","stream":"s","id":"a","id":"b","data":1}"#).code,
            ErrorCode::MalformedFrame,
            "a repeated member"
        );
        assert_eq!(
            refused(r#"{"type":"snapshot","stream":"s","x":1,"x":2}"#).code,
            ErrorCode::MalformedFrame
        );
        assert!(parse_request(r#"{"type":"snapshot","stream":"s","x":1,"y":2}"#, 1 << 16).is_ok());
    }

    #[test]
    fn deep_nesting_and_oversize_are_refused() {
        let deep = format!(
            r#"{{"type":"publish","stream":"s","id":"a","data":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(refused(&deep).code, ErrorCode::MalformedFrame);
        let fine = format!(
            r#"{{"type":"publish","stream":"s","id":"a","data":{}"[[\"]"{}}}"#,
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(
            parse_request(&fine, 1 << 16).is_ok(),
            "brackets in strings do not count"
        );
        assert_eq!(
            parse_request(&"x".repeat(100), 10).err().map(|r| r.code),
            Some(ErrorCode::FrameTooLarge)
        );
    }
}
