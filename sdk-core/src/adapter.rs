//! Servers that do not speak the seqsync protocol: what a client needs to
//! know about one, as data ([`Description`]), and the policy that turns the
//! sequencer's requests into that server's frames and HTTP requests, and its
//! answers back into sequencer inputs.
//!
//! The split between core and shell: the core decides everything — which
//! request goes out when, what an answer covers, what means "gone", when to
//! poll — and writes every frame and URL from the description's templates.
//! The shell only reads JSON: it finds a message's stream, seq and payload
//! in a frame, and the messages, seq or state in an HTTP answer, at the
//! paths the description names, and carries out the fetches the core asks
//! for (`Transmit::Fetch`).

use crate::prelude::*;
use alloc::collections::BTreeMap;

use crate::protocol::encode;
use crate::types::{Epoch, Seq, StreamName};

/// How to use a server that does not speak the seqsync protocol, as data:
/// one JSON-serializable value that configures the native client and the
/// browser package alike. Paths name a member inside a JSON value:
/// dot-separated member names (`meta.seq`), array indices as numbers, `$`
/// for the value itself.
///
/// ```
/// # #[cfg(feature = "json")] {
/// use seqsync_core::adapter::Description;
/// let seed: Description = serde_json::from_str(r#"{
///   "message": {"stream": {"path": "room"}, "seq": "sequence_id", "payload": "$"},
///   "subscribe": "{\"action\":\"join\",\"room\":\"{stream}\"}",
///   "history": {"url": "http://chat.example/rooms/{stream}/messages?since={since}", "messages": "messages"}
/// }"#)?;
/// assert_eq!(seed.message.seq, "sequence_id");
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "json",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "camelCase", default, deny_unknown_fields)
)]
pub struct Description {
    /// Which frames are messages, and where their parts are.
    pub message: MessageShape,
    /// The frame that starts a stream on the connection (`{stream}` filled
    /// in), when the server needs one.
    pub subscribe: Option<String>,
    /// The frame that stops a stream, when the server has one.
    pub unsubscribe: Option<String>,
    /// A frame the server sends now and then with a stream's latest seq (at
    /// the shape's `seq` path), so that a lost last message is noticed.
    /// With it, a connection silent for the heartbeat timeout is dead;
    /// without it, silence proves nothing and a lost last message is found
    /// by `pollMs` or by the silence check (protocol.md 12.4, 12.5).
    pub heartbeat: Option<MessageShape>,
    /// How missing messages are fetched. Without it, a hole can only be
    /// filled by later live messages, and is reported as stalled.
    pub history: Option<HistorySource>,
    /// Where a stream's state is loaded from, with the seq it reflects.
    pub snapshot: Option<SnapshotSource>,
    /// Where a stream's latest seq is read, to find a lost last message.
    pub head: Option<HeadSource>,
    /// Every so many milliseconds while connected, each live stream polls
    /// `head` (or, without it, fetches what follows its position from
    /// `history`): the only way to notice a lost last message on a server
    /// without heartbeats. 0: never.
    pub poll_ms: u64,
    /// Where a stream without a resume point starts: from its first message
    /// (`beginning`, the default), from a snapshot (`snapshot`: needs
    /// `snapshot`), or at its head, with what comes after (`head`: needs
    /// `head`).
    pub start: Start,
    /// How the application publishes, if it does through the client.
    pub publish: Option<PublishSink>,
    /// HTTP headers sent with every request (for example `Authorization`).
    pub headers: BTreeMap<String, String>,
}

/// Where a message's parts are in a frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "json",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "camelCase", default, deny_unknown_fields)
)]
pub struct MessageShape {
    /// A frame is a message only when the member at this path holds
    /// `matches` (default: any frame with a seq at `seq`).
    pub when: Option<String>,
    /// The value `when` must hold: a string value equal to it, or any
    /// value whose JSON text is it (`3`, `true`).
    pub matches: Option<String>,
    /// Where the stream's name is.
    pub stream: StreamSource,
    /// Path of the seq: an integer in `1..=2^53-1`.
    pub seq: String,
    /// Path of the epoch (an integer), for a server whose log can start
    /// over: a message of another epoch resets the stream.
    pub epoch: Option<String>,
    /// Path of the payload (`$`: the whole frame; unused in a heartbeat).
    pub payload: String,
}

/// Where a message's stream comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "json",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "camelCase", deny_unknown_fields)
)]
pub enum StreamSource {
    /// A member of the frame holds it.
    Path(String),
    /// Every message of the connection belongs to this stream (a server
    /// with one room per connection URL).
    Fixed(String),
}

impl Default for StreamSource {
    fn default() -> StreamSource {
        StreamSource::Path("stream".to_string())
    }
}

/// How missing messages are fetched.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "json",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "camelCase", default, deny_unknown_fields)
)]
pub struct HistorySource {
    /// An HTTP GET; the template may use `{stream}`, `{since}` (the last
    /// seq held), `{from}`, `{to}` (the missing range) and `{limit}`.
    pub url: Option<String>,
    /// Or a frame on the socket, with the same placeholders; the server
    /// answers with ordinary messages.
    pub frame: Option<String>,
    /// Path of the array of messages in an HTTP answer (`$`: the answer is
    /// the array). Each element has the message's shape (its seq and
    /// payload paths).
    pub messages: String,
    /// Path of the earliest seq the server still has, when its answer says.
    pub earliest: Option<String>,
    /// HTTP statuses that mean "gone": the range is no longer there, and the
    /// stream resets. Default 404 and 410.
    pub gone: Vec<u16>,
    /// Whether the server's seqs can have holes of their own (messages
    /// deleted for good). By default a stream's seqs are contiguous, so an
    /// answer that starts after the first seq asked for means the server no
    /// longer has it: the stream resets. With `holes`, such seqs are
    /// skipped instead.
    pub holes: bool,
    /// How many messages to ask for at once (`{limit}`; a since-style
    /// endpoint's page). Default 500.
    pub limit: u32,
}

/// Where a stream's state is loaded from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "json",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "camelCase", default, deny_unknown_fields)
)]
pub struct SnapshotSource {
    /// An HTTP GET (`{stream}`).
    pub url: String,
    /// Path of the seq the state reflects.
    pub seq: String,
    /// Path of the state (`$`: the whole answer).
    pub state: String,
}

/// Where a stream's latest seq is read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "json",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "camelCase", default, deny_unknown_fields)
)]
pub struct HeadSource {
    /// An HTTP GET (`{stream}`).
    pub url: String,
    /// Path of the seq.
    pub seq: String,
}

/// Where a stream without a resume point starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "json",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "camelCase")
)]
pub enum Start {
    /// From its first message: the whole history is fetched.
    #[default]
    Beginning,
    /// From a snapshot (`Description::snapshot`).
    Snapshot,
    /// At its head (`Description::head`): only what comes after.
    Head,
}

/// How the application publishes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "json",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "camelCase", default, deny_unknown_fields)
)]
pub struct PublishSink {
    /// An HTTP POST (`{stream}`).
    pub url: String,
    /// The body template: `{data}` is the payload's JSON text, `{stream}`
    /// the stream, `{id}` the publish's random id, for a server that
    /// drops repeats (default: `{data}`).
    pub body: Option<String>,
    /// Path of the seq the server gave the message, in its answer.
    pub seq: Option<String>,
}

/// What a [`Session`](crate::Session) over a foreign server needs to know
/// about it: which requests the adapter can carry out, and the policy
/// choices. [`Description::plan`] derives it from a description; an
/// adapter written by hand states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Missing messages can be fetched ([`ForeignRequest::History`]).
    pub history: bool,
    /// Snapshots can be loaded ([`ForeignRequest::Snapshot`]).
    pub snapshot: bool,
    /// A stream's latest seq can be read ([`ForeignRequest::Head`]).
    pub head: bool,
    /// Publishes can be carried out ([`ForeignRequest::Publish`]).
    pub publish: bool,
    /// The server sends heartbeats: a silent connection is dead.
    pub heartbeats: bool,
    /// The server's seqs can have holes of their own (see
    /// [`HistorySource::holes`]).
    pub holes: bool,
    /// Where a stream without a resume point starts.
    pub start: Start,
    /// Head (or history) polling period while connected; 0: never.
    pub poll_ms: u64,
    /// The most messages one history request asks for.
    pub limit: u32,
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
            history: false,
            snapshot: false,
            head: false,
            publish: false,
            heartbeats: false,
            holes: false,
            start: Start::Beginning,
            poll_ms: 0,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// The page size when the description does not name one.
pub const DEFAULT_LIMIT: u32 = 500;

/// Names one request to a foreign server, so that its answer finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FetchId(pub u64);

/// What the session asks of a foreign server, in the server's own terms;
/// the adapter turns it into a frame, an HTTP request or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForeignRequest {
    /// Start receiving the stream on this connection. `since`: the last seq
    /// the client has (0: none). No answer is expected.
    Subscribe {
        /// The stream.
        stream: StreamName,
        /// The last seq held.
        since: Seq,
    },
    /// Stop receiving the stream. No answer is expected.
    Unsubscribe {
        /// The stream.
        stream: StreamName,
    },
    /// The messages after `since`, at most `limit`, up to `to` when known.
    /// Answered with [`FetchAnswer::Messages`] (or `Sent`, when the
    /// messages come back as ordinary frames).
    History {
        /// The stream.
        stream: StreamName,
        /// The last seq held: the first one wanted is `since + 1`.
        since: Seq,
        /// The last seq wanted, when the hole's end is known.
        to: Option<Seq>,
        /// The most messages wanted.
        limit: u32,
    },
    /// The stream's state. Answered with [`FetchAnswer::Snapshot`].
    Snapshot {
        /// The stream.
        stream: StreamName,
    },
    /// The stream's latest seq. Answered with [`FetchAnswer::Head`].
    Head {
        /// The stream.
        stream: StreamName,
    },
    /// Publish `data` (JSON text) to the stream. Answered with
    /// [`FetchAnswer::Published`].
    Publish {
        /// The stream.
        stream: StreamName,
        /// The payload as JSON text.
        data: String,
        /// The publish's random id.
        id: String,
    },
}

impl ForeignRequest {
    /// Whether the session waits for an answer
    /// ([`Session::handle_fetched`](crate::Session::handle_fetched)).
    pub fn expects_answer(&self) -> bool {
        !matches!(
            self,
            ForeignRequest::Subscribe { .. } | ForeignRequest::Unsubscribe { .. }
        )
    }

    /// The stream the request is about.
    pub fn stream(&self) -> &StreamName {
        match self {
            ForeignRequest::Subscribe { stream, .. }
            | ForeignRequest::Unsubscribe { stream }
            | ForeignRequest::History { stream, .. }
            | ForeignRequest::Snapshot { stream }
            | ForeignRequest::Head { stream }
            | ForeignRequest::Publish { stream, .. } => stream,
        }
    }
}

/// How the adapter carries out a [`ForeignRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// Send this frame on the socket.
    Frame(String),
    /// Make this HTTP request; its answer is read back into a
    /// [`FetchAnswer`].
    Http(HttpRequest),
    /// Nothing to do (the server needs no subscribe frame, say).
    Nothing,
}

/// One HTTP request to a foreign server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The URL.
    pub url: String,
    /// Headers (the description's, plus `content-type` with a body).
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<String>,
}

/// What an answer held, as the adapter read it.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchAnswer<P> {
    /// Messages (in any order; repeats and seqs outside what was asked are
    /// fine), and the earliest seq the server still has, when it said.
    Messages {
        /// The messages.
        messages: Vec<(Seq, P)>,
        /// The earliest seq the server still has.
        earliest: Option<Seq>,
        /// The epoch the messages name, for a server with epochs (every
        /// message of one answer names the same one; an adapter refuses an
        /// answer whose messages disagree). Another epoch than the stream's
        /// resets it, as a live message of that epoch would.
        epoch: Option<Epoch>,
    },
    /// A snapshot.
    Snapshot {
        /// The last seq folded into the state.
        seq: Seq,
        /// The state.
        state: P,
    },
    /// The stream's latest seq (0: no message yet).
    Head {
        /// The latest seq.
        seq: Seq,
    },
    /// The publish is stored, as `seq` when the server said.
    Published {
        /// The message's seq.
        seq: Option<Seq>,
    },
    /// The request went out as a frame: the messages come as ordinary
    /// frames.
    Sent,
    /// What was asked for is no longer there: the stream resets.
    Gone {
        /// The earliest seq the server still has, when it said.
        earliest: Option<Seq>,
    },
    /// No usable answer: the request failed, the status was not a success,
    /// or the answer could not be read. The session retries with backoff
    /// where it can.
    Failed {
        /// Why.
        reason: String,
        /// The HTTP status, when there was one (`429` and `503` mean "not
        /// done, try later": a publish is then sent again).
        status: Option<u16>,
    },
}

impl Description {
    /// What a session can ask of the server this describes.
    pub fn plan(&self) -> Plan {
        Plan {
            history: self.history.is_some(),
            snapshot: self.snapshot.is_some(),
            head: self.head.is_some(),
            publish: self.publish.is_some(),
            heartbeats: self.heartbeat.is_some(),
            holes: self.history.as_ref().is_some_and(|h| h.holes),
            start: self.start,
            poll_ms: self.poll_ms,
            limit: match &self.history {
                Some(h) if h.limit > 0 => h.limit,
                _ => DEFAULT_LIMIT,
            },
        }
    }

    /// Whether the description is usable: every path it needs is there and
    /// every choice has what it needs.
    ///
    /// # Errors
    /// What is wrong, in a sentence.
    pub fn check(&self) -> Result<(), String> {
        if self.message.seq.is_empty() {
            return Err("message.seq names no path".into());
        }
        if let StreamSource::Path(path) = &self.message.stream {
            if path.is_empty() {
                return Err("message.stream names no path".into());
            }
        }
        if let Some(h) = &self.history {
            if h.url.is_some() == h.frame.is_some() {
                return Err("history needs exactly one of url and frame".into());
            }
        }
        match self.start {
            Start::Snapshot if self.snapshot.is_none() => {
                Err("start \"snapshot\" needs a snapshot source".into())
            }
            Start::Head if self.head.is_none() => Err("start \"head\" needs a head source".into()),
            _ => Ok(()),
        }
    }

    /// Whether an HTTP status means "gone" (default: 404 and 410).
    pub fn is_gone(&self, status: u16) -> bool {
        match &self.history {
            Some(h) if !h.gone.is_empty() => h.gone.contains(&status),
            _ => matches!(status, 404 | 410),
        }
    }

    /// The frame or HTTP request that carries out `request` on this server,
    /// every template filled in.
    pub fn request(&self, request: &ForeignRequest) -> Outbound {
        let mut values = Fill {
            stream: Some(request.stream()),
            ..Fill::default()
        };
        match request {
            ForeignRequest::Subscribe { since, .. } => {
                values.since = Some(since.get());
                self.frame(self.subscribe.as_deref(), &values)
            }
            ForeignRequest::Unsubscribe { .. } => self.frame(self.unsubscribe.as_deref(), &values),
            ForeignRequest::History {
                since, to, limit, ..
            } => {
                let Some(history) = &self.history else {
                    return Outbound::Nothing;
                };
                let since = since.get();
                values.since = Some(since);
                values.from = Some(since + 1);
                values.to = Some(to.map_or(since + u64::from(*limit), Seq::get));
                values.limit = Some(u64::from(*limit));
                match (&history.url, &history.frame) {
                    (Some(url), _) => self.get(url, &values),
                    (None, frame) => self.frame(frame.as_deref(), &values),
                }
            }
            ForeignRequest::Snapshot { .. } => match &self.snapshot {
                Some(source) => self.get(&source.url, &values),
                None => Outbound::Nothing,
            },
            ForeignRequest::Head { .. } => match &self.head {
                Some(source) => self.get(&source.url, &values),
                None => Outbound::Nothing,
            },
            ForeignRequest::Publish { data, id, .. } => {
                let Some(sink) = &self.publish else {
                    return Outbound::Nothing;
                };
                values.data = Some(data);
                values.id = Some(id);
                let body = fill(
                    sink.body.as_deref().unwrap_or("{data}"),
                    &values,
                    Escape::Json,
                );
                let mut http = self.http("POST", &sink.url, &values);
                http.headers
                    .push(("content-type".into(), "application/json".into()));
                http.body = Some(body);
                Outbound::Http(http)
            }
        }
    }

    fn frame(&self, template: Option<&str>, values: &Fill<'_>) -> Outbound {
        match template {
            Some(template) => Outbound::Frame(fill(template, values, Escape::Json)),
            None => Outbound::Nothing,
        }
    }

    fn get(&self, url: &str, values: &Fill<'_>) -> Outbound {
        Outbound::Http(self.http("GET", url, values))
    }

    fn http(&self, method: &'static str, url: &str, values: &Fill<'_>) -> HttpRequest {
        HttpRequest {
            method,
            url: fill(url, values, Escape::Url),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body: None,
        }
    }
}

/// The values a template's placeholders take.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Fill<'a> {
    pub(crate) stream: Option<&'a StreamName>,
    pub(crate) since: Option<u64>,
    pub(crate) from: Option<u64>,
    pub(crate) to: Option<u64>,
    pub(crate) limit: Option<u64>,
    /// JSON text, put in as it is.
    pub(crate) data: Option<&'a str>,
    pub(crate) id: Option<&'a str>,
}

/// How a placeholder's text is written into the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escape {
    /// Inside a JSON string of a frame: escaped for JSON.
    Json,
    /// In a URL: percent-encoded.
    Url,
}

/// `template` with every placeholder it uses filled in: `{name}`, a name
/// of lowercase letters. Other braces (a JSON frame's own) and unknown or
/// empty placeholders stay as they are.
pub(crate) fn fill(template: &str, values: &Fill<'_>, into: Escape) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after.bytes().take_while(u8::is_ascii_lowercase).count();
        let value = match after.as_bytes().get(name_len) {
            Some(b'}') if name_len > 0 => value(&after[..name_len], values, into),
            _ => None,
        };
        match value {
            Some(value) => {
                out.push_str(&value);
                rest = &after[name_len + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn value(name: &str, values: &Fill<'_>, into: Escape) -> Option<String> {
    let number = |v: Option<u64>| v.map(|n| n.to_string());
    match name {
        "stream" => values.stream.map(|s| {
            let mut out = String::with_capacity(s.as_str().len() + 8);
            match into {
                Escape::Json => encode::escaped(&mut out, s.as_str()),
                Escape::Url => encode::percent(&mut out, s.as_str()),
            }
            out
        }),
        "since" => number(values.since),
        "from" => number(values.from),
        "to" => number(values.to),
        "limit" => number(values.limit),
        "data" => values.data.map(str::to_string),
        "id" => values.id.map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_their_placeholders_for_where_they_go() {
        let stream = StreamName::new("room \"1\"/a").expect("name");
        let values = Fill {
            stream: Some(&stream),
            since: Some(41),
            data: Some(r#"{"t":1}"#),
            ..Fill::default()
        };
        assert_eq!(
            fill(
                r#"{"join":"{stream}","m":{data},"x":"{nope}"}"#,
                &values,
                Escape::Json
            ),
            r#"{"join":"room \"1\"/a","m":{"t":1},"x":"{nope}"}"#
        );
        assert_eq!(
            fill(
                "http://h/rooms/{stream}/messages?since={since}&to={to}",
                &values,
                Escape::Url
            ),
            "http://h/rooms/room%20%221%22%2Fa/messages?since=41&to={to}"
        );
        assert_eq!(fill("{unclosed", &values, Escape::Url), "{unclosed");
    }
}
