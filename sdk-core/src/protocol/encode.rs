//! The frames a client sends, written as JSON text without serde (the
//! browser build has none), and the URL a client connects to.
//!
//! ```
//! use seqsync_core::protocol::{encode, RequestRef};
//! use seqsync_core::{Request, StreamName};
//!
//! let request = Request::FetchSnapshot { stream: StreamName::new("room:42")? };
//! let r = RequestRef::new("1.0")?;
//! assert_eq!(
//!     encode::request(&request, Some(&r)),
//!     r#"{"type":"snapshot","stream":"room:42","ref":"1.0"}"#
//! );
//! # Ok::<(), seqsync_core::Error>(())
//! ```

use crate::event::Request;
use crate::prelude::*;
use crate::protocol::RequestRef;

/// A request of the sequencer as a frame, with `reference` as its `ref`.
pub fn request(request: &Request, reference: Option<&RequestRef>) -> String {
    let mut out = String::with_capacity(80);
    match request {
        Request::Subscribe {
            stream,
            since,
            epoch,
        } => {
            open(&mut out, "subscribe", stream.as_str());
            if let Some(since) = since {
                out.push_str(",\"since\":");
                decimal(&mut out, since.get());
            }
            if let Some(epoch) = epoch {
                out.push_str(",\"epoch\":");
                decimal(&mut out, epoch.0);
            }
        }
        Request::Unsubscribe { stream } => open(&mut out, "unsubscribe", stream.as_str()),
        Request::FetchHistory { stream, range } => {
            open(&mut out, "history", stream.as_str());
            out.push_str(",\"from\":");
            decimal(&mut out, range.start().get());
            out.push_str(",\"to\":");
            decimal(&mut out, range.end().get());
        }
        Request::FetchSnapshot { stream } => open(&mut out, "snapshot", stream.as_str()),
    }
    let with_ref = !matches!(request, Request::Unsubscribe { .. });
    if let (Some(reference), true) = (reference, with_ref) {
        out.push_str(",\"ref\":");
        string(&mut out, reference.as_str());
    }
    out.push('}');
    out
}

/// A `publish` frame. `data` is the payload's JSON text, put in as it is.
pub fn publish(stream: &str, id: &str, data: &str) -> String {
    let mut out = String::with_capacity(48 + stream.len() + id.len() + data.len());
    open(&mut out, "publish", stream);
    out.push_str(",\"id\":");
    string(&mut out, id);
    out.push_str(",\"data\":");
    out.push_str(data);
    out.push('}');
    out
}

/// The URL to open for `endpoint`: with the token, percent-encoded, as the
/// `token` query parameter (section 2.1).
///
/// ```
/// use seqsync_core::protocol::encode::connect_url;
/// assert_eq!(connect_url("ws://h/ws", Some("a.b=")), "ws://h/ws?token=a.b%3D");
/// assert_eq!(connect_url("ws://h/ws?x=1", Some("t")), "ws://h/ws?x=1&token=t");
/// assert_eq!(connect_url("ws://h/ws", None), "ws://h/ws");
/// ```
pub fn connect_url(endpoint: &str, token: Option<&str>) -> String {
    let Some(token) = token else {
        return endpoint.to_string();
    };
    let mut url = String::with_capacity(endpoint.len() + 7 + token.len() * 3);
    url.push_str(endpoint);
    url.push(if endpoint.contains('?') { '&' } else { '?' });
    url.push_str("token=");
    percent(&mut url, token);
    url
}

/// Appends `text` percent-encoded: every byte but RFC 3986's unreserved
/// characters as `%XX`.
pub(crate) fn percent(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(byte >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(byte & 0x0f)]));
        }
    }
}

fn open(out: &mut String, kind: &str, stream: &str) {
    out.push_str("{\"type\":\"");
    out.push_str(kind);
    out.push_str("\",\"stream\":");
    string(out, stream);
}

/// `text` as a JSON string.
fn string(out: &mut String, text: &str) {
    out.push('"');
    escaped(out, text);
    out.push('"');
}

/// Appends `text` escaped for the inside of a JSON string.
pub(crate) fn escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                out.push_str("\\u00");
                out.push(char::from(HEX_LOWER[(c as usize) >> 4]));
                out.push(char::from(HEX_LOWER[(c as usize) & 0x0f]));
            }
            c => out.push(c),
        }
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Appends `value` in decimal. Written out by hand: `core::fmt` would be
/// most of what the browser module needs it for.
pub(crate) fn decimal(out: &mut String, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for &digit in &digits[at..] {
        out.push(char::from(digit));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Epoch, Seq, SeqRange, StreamName};

    fn name() -> StreamName {
        StreamName::new("a\"b\\c").expect("name")
    }

    #[test]
    fn requests_encode_as_protocol_frames() {
        let r = RequestRef::new("3.1").expect("ref");
        let range = SeqRange::from_u64(5, 9).expect("range");
        let cases = [
            (
                Request::FetchHistory {
                    stream: name(),
                    range,
                },
                r#"{"type":"history","stream":"a\"b\\c","from":5,"to":9,"ref":"3.1"}"#,
            ),
            (
                Request::Subscribe {
                    stream: name(),
                    since: Some(Seq::new(4).expect("seq")),
                    epoch: Some(Epoch(7)),
                },
                r#"{"type":"subscribe","stream":"a\"b\\c","since":4,"epoch":7,"ref":"3.1"}"#,
            ),
            (
                Request::Subscribe {
                    stream: name(),
                    since: None,
                    epoch: None,
                },
                r#"{"type":"subscribe","stream":"a\"b\\c","ref":"3.1"}"#,
            ),
            (
                Request::FetchSnapshot { stream: name() },
                r#"{"type":"snapshot","stream":"a\"b\\c","ref":"3.1"}"#,
            ),
            (
                Request::Unsubscribe { stream: name() },
                r#"{"type":"unsubscribe","stream":"a\"b\\c"}"#,
            ),
        ];
        for (req, want) in cases {
            assert_eq!(request(&req, Some(&r)), want);
        }
        assert_eq!(
            request(&Request::FetchSnapshot { stream: name() }, None),
            r#"{"type":"snapshot","stream":"a\"b\\c"}"#
        );
    }

    #[test]
    fn numbers_and_escapes_are_written_as_core_fmt_would() {
        for value in [0, 7, 10, 4_096, 9_007_199_254_740_991, u64::MAX] {
            let mut out = String::new();
            decimal(&mut out, value);
            assert_eq!(out, value.to_string());
        }
        let mut out = String::new();
        string(&mut out, "a\u{1}\u{1f}\n\u{7f}");
        assert_eq!(out, "\"a\\u0001\\u001f\\u000a\u{7f}\"");
        assert_eq!(
            connect_url("ws://h/ws", Some("\u{0}~ é")),
            "ws://h/ws?token=%00~%20%C3%A9"
        );
    }

    #[test]
    fn publish_puts_the_payload_text_in_as_it_is() {
        assert_eq!(
            publish("room", "id-1", r#"{"t":[1,2]}"#),
            r#"{"type":"publish","stream":"room","id":"id-1","data":{"t":[1,2]}}"#
        );
    }

    #[cfg(feature = "json")]
    #[test]
    fn encoded_frames_parse_back() {
        use crate::protocol::{ClientFrame, parse_client_frame};
        let text = publish("ünï\"code", "x", "null");
        let frame: ClientFrame<serde_json::Value> =
            parse_client_frame(&text, 1 << 20).expect("parses");
        assert!(
            matches!(frame, ClientFrame::Publish { stream, .. } if stream.as_str() == "ünï\"code")
        );
    }
}
