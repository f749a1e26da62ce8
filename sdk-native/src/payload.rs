//! Payloads as they arrived: a slice of the frame's own bytes, decoded only
//! when the application asks, into the type it asks for.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// A message payload (or snapshot state): its JSON text, shared with the
/// frame it came in. Cloning it is a reference count; nothing is decoded
/// until [`parse`](Payload::parse) or [`to_value`](Payload::to_value).
///
/// ```
/// use seqsync::Payload;
/// #[derive(serde::Deserialize)]
/// struct Chat { text: String }
///
/// let payload = Payload::from_json(r#"{"text":"hi","from":"ada"}"#)?;
/// assert_eq!(payload.parse::<Chat>()?.text, "hi");
/// assert_eq!(payload.to_value()?["from"], "ada");
/// assert_eq!(payload, serde_json::json!({"from": "ada", "text": "hi"}));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone)]
pub struct Payload {
    frame: Utf8Bytes,
    start: usize,
    end: usize,
}

impl Payload {
    /// Where `raw` lies in `frame`, when it is a slice of it.
    pub(crate) fn range(frame: &Utf8Bytes, raw: &RawValue) -> Result<(usize, usize), Box<str>> {
        let text = raw.get();
        let base = frame.as_str().as_ptr() as usize;
        let start = (text.as_ptr() as usize).wrapping_sub(base);
        let end = start.wrapping_add(text.len());
        if frame.as_str().get(start..end) == Some(text) {
            Ok((start, end))
        } else {
            Err(text.into())
        }
    }

    /// The payload at `range` of `frame` (from [`Payload::range`]): no copy
    /// when it is a slice of the frame.
    pub(crate) fn from_frame(frame: Utf8Bytes, range: Result<(usize, usize), Box<str>>) -> Payload {
        match range {
            Ok((start, end)) => Payload { frame, start, end },
            // Not part of the frame: keep its own copy.
            Err(text) => Payload::owned(&text),
        }
    }

    /// `null`: the state of a stream that starts without a snapshot, the
    /// payload of a message without one.
    pub(crate) fn null() -> Payload {
        Payload::owned("null")
    }

    fn owned(text: &str) -> Payload {
        Payload {
            frame: Utf8Bytes::from(text),
            start: 0,
            end: text.len(),
        }
    }

    /// A payload from JSON text, checked.
    ///
    /// # Errors
    /// When `text` is not one JSON value. (Its nesting is not limited here;
    /// [`to_value`](Self::to_value) and [`parse`](Self::parse) refuse more
    /// than 128 levels.)
    pub fn from_json(text: &str) -> Result<Payload, serde_json::Error> {
        let raw: &RawValue = serde_json::from_str(text)?;
        Ok(Payload::owned(raw.get()))
    }

    /// The JSON text, exactly as the server sent it.
    pub fn as_str(&self) -> &str {
        self.frame
            .as_str()
            .get(self.start..self.end)
            .unwrap_or("null")
    }

    /// Decodes the payload into the application's type.
    ///
    /// # Errors
    /// When the JSON does not fit `T` (the payload stays usable).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.as_str())
    }

    /// The payload as a `serde_json::Value`.
    ///
    /// # Errors
    /// Only past serde_json's nesting limit (128 levels).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        self.parse()
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({})", self.as_str())
    }
}

/// Two payloads are equal when they are the same text, or decode to equal
/// `serde_json::Value`s: member order and whitespace aside, `1.0` equals
/// `1.00`, but an integer never equals a float (`1` and `1.0`, `100` and
/// `1e2` differ). Payloads too deeply nested to decode are equal only as
/// the same text.
impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.as_str() == other.as_str()
            || matches!((self.to_value(), other.to_value()), (Ok(a), Ok(b)) if a == b)
    }
}

impl PartialEq<Value> for Payload {
    fn eq(&self, other: &Value) -> bool {
        self.to_value().is_ok_and(|v| &v == other)
    }
}

impl serde::Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match serde_json::from_str::<&RawValue>(self.as_str()) {
            Ok(raw) => raw.serialize(serializer),
            Err(e) => Err(serde::ser::Error::custom(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_is_of_json_values_and_undecodable_payloads_equal_only_as_text() {
        let p = |t: &str| Payload::from_json(t).expect("json");
        assert_eq!(p(r#"{"a":1,"b":[1.0]}"#), p(r#"{ "b": [1.00], "a": 1 }"#));
        assert_ne!(p("1"), p("1.0"));
        let deep = |leaf: &str| format!("{}{leaf}{}", "[".repeat(200), "]".repeat(200));
        assert!(p(&deep("1")).to_value().is_err());
        assert_ne!(p(&deep("1")), p(&deep("2")));
        assert_eq!(p(&deep("1")), p(&deep("1")));
    }

    #[test]
    fn a_payload_is_a_slice_of_its_frame() {
        let frame = Utf8Bytes::from(r#"{"type":"msg","data":{"a":[1,2]},"seq":1}"#);
        let raw: &RawValue = {
            #[derive(serde::Deserialize)]
            struct F<'a> {
                #[serde(borrow)]
                data: &'a RawValue,
            }
            let f: F<'_> = serde_json::from_str(frame.as_str()).unwrap_or_else(|e| panic!("{e}"));
            f.data
        };
        let payload = Payload::from_frame(frame.clone(), Payload::range(&frame, raw));
        assert_eq!(payload.as_str(), r#"{"a":[1,2]}"#);
        assert_eq!(
            payload.parse::<serde_json::Value>().ok(),
            Some(serde_json::json!({"a": [1, 2]}))
        );
        // A raw value from elsewhere is copied, not mis-sliced.
        let elsewhere: Box<RawValue> =
            serde_json::from_str("[3]").unwrap_or_else(|e| panic!("{e}"));
        let copied = Payload::from_frame(frame.clone(), Payload::range(&frame, &elsewhere));
        assert_eq!(copied.as_str(), "[3]");
        assert!(
            payload.parse::<Vec<u8>>().is_err(),
            "a type that does not fit is an error"
        );
    }
}
