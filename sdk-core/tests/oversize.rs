//! Publishes over the server's frame size limit (protocol sections 3.7 and
//! 8.9): refused before sending once the server announced its limit,
//! failed at once and never sent again when the server refuses one.

use seqsync_core::protocol::parse_server_frame_raw;
use seqsync_core::{
    ConnId, Error, Input, LimitSide, Millis, PublishError, PublishId, Session, SessionConfig,
    SessionEvent, Transmit,
};

/// A session over one endpoint, the time, and what it sent and told.
struct Fixture {
    s: Session<String>,
    now: u64,
    conn: Option<ConnId>,
    sent: Vec<String>,
    events: Vec<SessionEvent<String>>,
}

impl Fixture {
    /// A session with `max_publish_bytes` of `max`, connected.
    fn open(max: usize) -> Fixture {
        let config = SessionConfig {
            max_publish_bytes: max,
            reconnect_initial_ms: 100,
            ..SessionConfig::new("ws://h/ws")
        };
        let s = Session::new(config, [8; 32], Millis(0)).expect("a session");
        let mut f = Fixture {
            s,
            now: 0,
            conn: None,
            sent: Vec::new(),
            events: Vec::new(),
        };
        f.drain();
        f.opened();
        f
    }

    fn drain(&mut self) {
        while let Some(t) = self.s.poll_transmit() {
            match t {
                Transmit::Connect { conn, .. } => self.conn = Some(conn),
                Transmit::Send { text } => self.sent.push(text),
                Transmit::Disconnect { .. } | Transmit::Foreign { .. } => {}
            }
        }
        self.events
            .extend(std::iter::from_fn(|| self.s.poll_event()));
    }

    fn opened(&mut self) {
        let conn = self.conn.expect("an attempt is under way");
        self.s
            .handle_input(Millis(self.now), Input::Opened { conn })
            .expect("opened");
        self.drain();
    }

    /// The connection closes with `code`, then the session reconnects.
    fn closed_and_reopened(&mut self, code: Option<u16>) {
        let conn = self.conn.expect("a connection");
        let input = Input::Closed {
            conn,
            code,
            reason: "closed",
        };
        self.s
            .handle_input(Millis(self.now), input)
            .expect("closed");
        self.drain();
        let retry = self.s.poll_timeout().expect("a reconnect is scheduled");
        self.now = retry.0;
        self.s.handle_input(retry, Input::Timeout).expect("timeout");
        self.drain();
        assert_ne!(self.conn, Some(conn), "a new attempt");
        self.opened();
    }

    /// A server frame, read as the native shell reads it.
    fn frame(&mut self, text: &str) {
        let frame = parse_server_frame_raw(text, 1 << 20).map(|f| f.map(|d| d.get().to_string()));
        let input = Input::Frame {
            bytes: text.len(),
            frame,
        };
        self.s
            .handle_input(Millis(self.now), input)
            .expect("a good frame");
        self.drain();
    }

    fn announce(&mut self, limit: usize) {
        self.frame(&format!(
            r#"{{"type":"head","heads":{{}},"frame_limit":{limit}}}"#
        ));
    }

    fn frame_too_large(&mut self) {
        self.frame(r#"{"type":"error","code":"frame_too_large","message":"too large"}"#);
    }

    /// Publishes `bytes` bytes of payload (a JSON string).
    fn publish(&mut self, bytes: usize) -> PublishId {
        let data = format!("\"{}\"", "x".repeat(bytes.saturating_sub(2)));
        let id = self
            .s
            .publish(Millis(self.now), "s", &data)
            .expect("publish");
        self.drain();
        id
    }

    fn wire_id(&self, p: PublishId) -> String {
        self.s.publish_wire_id(p).expect("pending").to_string()
    }

    fn take_sent(&mut self) -> Vec<String> {
        std::mem::take(&mut self.sent)
    }

    /// Every outcome of publish `p` reported so far.
    fn outcomes(&self, p: PublishId) -> Vec<&PublishError> {
        self.events
            .iter()
            .filter_map(|e| match e {
                SessionEvent::PublishFailed { publish, error } if *publish == p => Some(error),
                _ => None,
            })
            .collect()
    }

    /// How many frames sent so far carry `wire_id`.
    fn sent_with(&self, wire_id: &str) -> usize {
        self.sent.iter().filter(|t| t.contains(wire_id)).count()
    }
}

#[test]
fn a_publish_over_the_announced_limit_is_refused_before_sending() {
    let mut f = Fixture::open(65_536);
    assert_eq!(f.s.server_frame_limit(), None);
    f.announce(1_000);
    assert_eq!(f.s.server_frame_limit(), Some(1_000));
    f.take_sent();
    let refused =
        f.s.publish(Millis(0), "s", &format!("\"{}\"", "x".repeat(2_000)));
    let Err(Error::PublishTooLarge { len, max, side }) = refused else {
        panic!("refused as too large: {refused:?}")
    };
    assert!(len > 2_000, "the frame's size, {len}");
    assert_eq!((max, side), (1_000, LimitSide::Server));
    assert_eq!(
        Error::PublishTooLarge { len, max, side }.to_string(),
        format!("publish of {len} bytes is over the server's limit of 1000 bytes")
    );
    assert!(f.sent.is_empty(), "nothing sent: {:?}", f.sent);
    assert_eq!(f.s.pending_publishes(), 0);
    // Under the limit, a publish goes out as before.
    f.publish(500);
    assert_eq!(f.take_sent().len(), 1);
}

#[test]
fn the_smaller_limit_is_the_one_a_publish_is_held_to_and_its_side_is_named() {
    let mut f = Fixture::open(300);
    f.announce(1_000);
    let refused =
        f.s.publish(Millis(0), "s", &format!("\"{}\"", "x".repeat(500)));
    assert!(
        matches!(
            refused,
            Err(Error::PublishTooLarge {
                max: 300,
                side: LimitSide::Client,
                ..
            })
        ),
        "{refused:?}"
    );
    // A later announcement replaces the earlier one.
    f.announce(200);
    let refused =
        f.s.publish(Millis(0), "s", &format!("\"{}\"", "x".repeat(250)));
    assert!(
        matches!(
            refused,
            Err(Error::PublishTooLarge {
                max: 200,
                side: LimitSide::Server,
                ..
            })
        ),
        "{refused:?}"
    );
}

#[test]
fn frame_too_large_without_ref_fails_the_publish_in_flight_once_and_nothing_is_resent() {
    // A server that announces nothing: only the client's limit applies.
    let mut f = Fixture::open(65_536);
    let small = f.publish(50);
    let large = f.publish(5_000);
    let (small_id, large_id) = (f.wire_id(small), f.wire_id(large));
    let len = f
        .sent
        .iter()
        .find(|t| t.contains(&large_id))
        .map(String::len)
        .expect("the large publish was sent");
    f.frame_too_large();
    assert_eq!(
        f.outcomes(large),
        [&PublishError::TooLarge { len, limit: None }]
    );
    assert!(f.outcomes(small).is_empty(), "the small one still waits");
    assert_eq!(f.s.pending_publishes(), 1);
    f.take_sent();
    f.closed_and_reopened(None);
    assert_eq!(f.sent_with(&small_id), 1, "the small one is sent again");
    assert_eq!(f.sent_with(&large_id), 0, "the refused one never is");
    assert_eq!(f.outcomes(large).len(), 1, "it failed once");
}

#[test]
fn frame_too_large_naming_a_publish_fails_that_publish_as_too_large() {
    let mut f = Fixture::open(65_536);
    f.announce(10_000);
    let p = f.publish(100);
    let id = f.wire_id(p);
    f.frame(&format!(
        r#"{{"type":"error","code":"frame_too_large","message":"too large","ref":"{id}"}}"#
    ));
    assert!(matches!(
        f.outcomes(p)[..],
        [PublishError::TooLarge {
            limit: Some(10_000),
            ..
        }]
    ));
    assert_eq!(f.s.pending_publishes(), 0);
}

#[test]
fn frame_too_large_never_fails_a_publish_within_the_announced_limit() {
    let mut f = Fixture::open(65_536);
    // Sent before the announcement came: the server will refuse the large
    // one, not the small one.
    let small = f.publish(100);
    let large = f.publish(3_000);
    f.announce(1_000);
    f.frame_too_large();
    assert!(matches!(
        f.outcomes(large)[..],
        [PublishError::TooLarge {
            limit: Some(1_000),
            ..
        }]
    ));
    // A second refusal matches nothing in flight: diagnostics only.
    f.frame_too_large();
    assert!(f.outcomes(small).is_empty());
    assert_eq!(f.s.pending_publishes(), 1);
    assert!(f.events.iter().any(|e| matches!(
        e,
        SessionEvent::ServerError {
            code: seqsync_core::protocol::ErrorCode::FrameTooLarge,
            ..
        }
    )));
}

#[test]
fn a_close_with_1009_fails_the_publish_sent_and_it_is_not_resent() {
    let mut f = Fixture::open(4 << 20);
    let small = f.publish(50);
    let large = f.publish(2_000_000);
    let (small_id, large_id) = (f.wire_id(small), f.wire_id(large));
    f.take_sent();
    f.closed_and_reopened(Some(1009));
    assert!(matches!(
        f.outcomes(large)[..],
        [PublishError::TooLarge { limit: None, .. }]
    ));
    assert_eq!(f.sent_with(&large_id), 0, "never sent again");
    assert_eq!(f.sent_with(&small_id), 1, "the other one is");
    // The next connection ends the same way: the small publish, sent on
    // it, is the one that fails, and nothing is left to resend.
    f.closed_and_reopened(Some(1009));
    assert_eq!(f.outcomes(small).len(), 1);
    assert_eq!(f.s.pending_publishes(), 0);
}

#[test]
fn a_close_with_another_code_resends_every_publish() {
    let mut f = Fixture::open(4 << 20);
    let large = f.publish(2_000_000);
    let id = f.wire_id(large);
    f.take_sent();
    f.closed_and_reopened(Some(1006));
    assert_eq!(f.sent_with(&id), 1);
    assert!(f.outcomes(large).is_empty());
}
