//! The one inbound path: what `Session::handle_input` makes of each server
//! frame, whichever shell read it.

use std::borrow::Cow;

use seqsync_core::protocol::{
    ErrorCode, Fields, InboundFrame, RequestRef, StreamKey, parse_server_frame_raw,
    split_unknown_code,
};
use seqsync_core::{
    Error, Input, Millis, PublishError, Session, SessionConfig, SessionEvent, StreamId, Transmit,
};

/// A session with one open connection.
struct Fixture {
    s: Session<String>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(SessionConfig::new("ws://h/ws"))
    }

    fn with(config: SessionConfig) -> Fixture {
        let mut s = Session::new(config, [5; 32], Millis(0)).expect("a session");
        let Some(Transmit::Connect { conn, .. }) = s.poll_transmit() else {
            panic!("the session asks for a socket first")
        };
        s.handle_input(Millis(1), Input::Opened { conn })
            .expect("opened");
        let mut f = Fixture { s };
        f.drain();
        f
    }

    fn subscribe(&mut self, name: &str) -> StreamId {
        let id = self
            .s
            .subscribe(Millis(2), name, Default::default())
            .expect("subscribe");
        self.drain();
        id
    }

    /// Starts `room` (subscribed as `id`) from an empty snapshot at epoch 1;
    /// the snapshot frame's length.
    fn empty_snapshot(&mut self, id: StreamId) -> usize {
        let snapshot = format!(
            r#"{{"type":"snapshot","stream":"room","seq":0,"epoch":1,"state":null,"ref":"{}"}}"#,
            RequestRef::for_stream(id).as_str()
        );
        self.frame(&snapshot).expect("snapshot");
        snapshot.len()
    }

    /// Feeds `text` as the native shell does; the result of the input.
    fn frame(&mut self, text: &str) -> Result<(), Error> {
        let frame = parse_server_frame_raw(text, 1 << 20).map(|f| f.map(|d| d.get().to_string()));
        self.s.handle_input(
            Millis(3),
            Input::Frame {
                bytes: text.len(),
                frame,
            },
        )
    }

    fn drain(&mut self) -> Vec<SessionEvent<String>> {
        while self.s.poll_transmit().is_some() {}
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }
}

#[test]
fn an_unknown_error_code_is_reported_with_the_code_in_front_of_the_message() {
    let mut f = Fixture::new();
    let room = f.subscribe("room");
    let reference = RequestRef::for_stream(room);
    let text = format!(
        r#"{{"type":"error","code":"quota_exceeded","message":"slow down","ref":"{}"}}"#,
        reference.as_str()
    );
    f.frame(&text).expect("an error frame is a good frame");
    let refused = f.drain().into_iter().find_map(|e| match e {
        SessionEvent::Refused {
            stream,
            code,
            message,
        } => Some((stream, code, message)),
        _ => None,
    });
    let (stream, code, message) = refused.expect("the request was refused");
    assert_eq!((stream, code), (room, ErrorCode::Unknown));
    assert_eq!(message, "quota_exceeded: slow down");
    assert_eq!(
        split_unknown_code(&message),
        ("quota_exceeded", "slow down")
    );
}

#[test]
fn a_known_error_code_keeps_the_message_as_the_server_wrote_it() {
    let mut f = Fixture::new();
    f.frame(r#"{"type":"error","code":"unauthorized","message":"no"}"#)
        .expect("good frame");
    let events = f.drain();
    assert!(
        events.iter().any(|e| matches!(
            e,
            SessionEvent::ServerError { code: ErrorCode::Unauthorized, message } if message == "no"
        )),
        "{events:?}"
    );
}

#[test]
fn a_publish_refused_with_an_unknown_code_fails_with_the_code_in_its_message() {
    let mut f = Fixture::new();
    let publish = f.s.publish(Millis(2), "room", "1").expect("publish");
    let id = f.s.publish_wire_id(publish).expect("pending").to_string();
    f.drain();
    let text = format!(r#"{{"type":"error","code":"banned","message":"go away","ref":"{id}"}}"#);
    f.frame(&text).expect("good frame");
    let failed = f.drain().into_iter().find_map(|e| match e {
        SessionEvent::PublishFailed { error, .. } => Some(error),
        _ => None,
    });
    assert_eq!(
        failed,
        Some(PublishError::Refused {
            code: ErrorCode::Unknown,
            message: "banned: go away".to_string()
        })
    );
}

#[test]
fn a_history_answer_for_a_stream_not_subscribed_is_counted_as_history() {
    let mut f = Fixture::new();
    f.subscribe("room");
    let text = r#"{"type":"history","stream":"gone","from":1,"to":2,"messages":[{"seq":1,"data":1},{"seq":2,"data":2}]}"#;
    f.frame(text).expect("a late answer is no bad frame");
    let stats = f.s.stats();
    assert_eq!(stats.history_frames, 1);
    assert_eq!(stats.history_messages, 2);
    assert_eq!(stats.history_bytes, text.len() as u64);
    assert_eq!(stats.bad_frames, 0);
    assert!(
        !f.drain()
            .iter()
            .any(|e| matches!(e, SessionEvent::Stream(_))),
        "nothing is delivered"
    );
}

#[test]
fn history_bytes_are_those_of_the_history_frame_handed_in() {
    let mut f = Fixture::new();
    let room = f.subscribe("room");
    let snapshot_len = f.empty_snapshot(room);
    let history = format!(
        r#"{{"type":"history","stream":"room","from":1,"to":1,"epoch":1,"messages":[{{"seq":1,"data":"a"}}],"ref":"{}"}}"#,
        RequestRef::for_stream(room).as_str()
    );
    f.frame(&history).expect("history");
    let stats = f.s.stats();
    assert_eq!(stats.history_bytes, history.len() as u64);
    assert_eq!(
        stats.bytes,
        (snapshot_len + history.len()) as u64,
        "every frame counts in bytes"
    );
}

#[test]
fn a_frame_that_could_not_be_read_is_counted_bad_and_handed_back() {
    let mut f = Fixture::new();
    let error = f.frame("not json").expect_err("not a frame");
    assert!(matches!(error, Error::MalformedFrame { .. }));
    let stats = f.s.stats();
    assert_eq!((stats.frames, stats.bad_frames), (1, 1));
}

#[test]
fn a_frame_the_sequencer_refuses_is_counted_bad() {
    let mut f = Fixture::new();
    let room = f.subscribe("room");
    let reference = RequestRef::for_stream(room);
    // A history answer with a message outside the range it covers.
    let text = format!(
        r#"{{"type":"history","stream":"room","from":1,"to":1,"messages":[{{"seq":5,"data":"a"}}],"ref":"{}"}}"#,
        reference.as_str()
    );
    assert!(f.frame(&text).is_err());
    assert_eq!(f.s.stats().bad_frames, 1);
}

#[test]
fn a_message_for_a_stream_not_subscribed_is_ignored() {
    let mut f = Fixture::new();
    f.subscribe("room");
    f.frame(r#"{"type":"msg","stream":"other","seq":1,"data":1}"#)
        .expect("late, not bad");
    let stats = f.s.stats();
    assert_eq!((stats.frames, stats.bad_frames), (1, 0));
    assert!(
        !f.drain()
            .iter()
            .any(|e| matches!(e, SessionEvent::Stream(_)))
    );
}

#[test]
fn members_read_by_any_shell_make_the_same_input() {
    // What the browser's binding builds from `JSON.parse`: the same head
    // frame as the native parser's.
    let mut f = Fixture::new();
    let room = f.subscribe("room");
    f.empty_snapshot(room);
    let fields: Fields<'_, String> = Fields {
        kind: Cow::Borrowed("head"),
        heads: Some(vec![(Cow::Borrowed("room"), Some(4), Some(1))]),
        ..Fields::default()
    };
    let frame = InboundFrame::from_fields(fields);
    f.s.handle_input(Millis(3), Input::Frame { bytes: 40, frame })
        .expect("a head frame");
    let head = f.s.sequencer().stats(room).expect("subscribed").head;
    assert_eq!(head.get(), 4);
}

/// What a shell that keeps each subscription's handle (the browser's)
/// hands over for a frame naming `stream`: the handle instead of the name.
fn by_handle(kind: &'static str, stream: StreamId) -> Fields<'static, String> {
    Fields {
        kind: Cow::Borrowed(kind),
        stream: Some(StreamKey::Id(stream)),
        ..Fields::default()
    }
}

#[test]
fn a_frame_may_name_its_stream_by_the_handle_the_session_gave_it() {
    let mut f = Fixture::new();
    let room = f.subscribe("room");
    let snapshot = Fields {
        seq: Some(2),
        epoch: Some(1),
        state: Some("s".to_string()),
        ..by_handle("snapshot", room)
    };
    let frame = InboundFrame::from_fields(snapshot);
    f.s.handle_input(Millis(3), Input::Frame { bytes: 50, frame })
        .expect("a snapshot");
    let message = Fields {
        seq: Some(3),
        data: Some("m".to_string()),
        ..by_handle("msg", room)
    };
    let frame = InboundFrame::from_fields(message);
    f.s.handle_input(Millis(4), Input::Frame { bytes: 40, frame })
        .expect("a message");
    let stats = f.s.sequencer().stats(room).expect("subscribed");
    assert_eq!((stats.last_seq.get(), stats.delivered), (3, 1));
}

#[test]
fn a_handle_of_a_stream_no_longer_subscribed_names_nothing() {
    let mut f = Fixture::new();
    let room = f.subscribe("room");
    f.s.unsubscribe(Millis(3), room).expect("subscribed");
    f.drain();
    let message = Fields {
        seq: Some(1),
        data: Some("m".to_string()),
        ..by_handle("msg", room)
    };
    let frame = InboundFrame::from_fields(message);
    f.s.handle_input(Millis(4), Input::Frame { bytes: 40, frame })
        .expect("ignored, not refused");
    assert!(f.drain().is_empty());
    assert_eq!(f.s.stats().bad_frames, 0);
}

#[test]
fn an_ack_naming_its_stream_by_handle_completes_the_publish() {
    let mut f = Fixture::new();
    let room = f.subscribe("room");
    let publish = f.s.publish(Millis(3), "room", "1").expect("publish");
    let id = f.s.publish_wire_id(publish).expect("pending").to_string();
    f.drain();
    let ack = Fields {
        id: Some(Cow::Owned(id)),
        seq: Some(9),
        ..by_handle("ack", room)
    };
    let frame = InboundFrame::from_fields(ack);
    f.s.handle_input(Millis(4), Input::Frame { bytes: 60, frame })
        .expect("an ack");
    let acked = f.drain().into_iter().find_map(|e| match e {
        SessionEvent::PublishAcked { publish, seq } => Some((publish, seq.get())),
        _ => None,
    });
    assert_eq!(acked, Some((publish, 9)));
}

/// The positions a session reported, in order.
fn positions(events: &[SessionEvent<String>]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Position { seq, .. } => Some(seq.get()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_position_due_is_reported_by_the_next_message_when_the_timer_runs_late() {
    let mut config = SessionConfig::new("ws://h/ws");
    config.persist_interval_ms = 250;
    let mut f = Fixture::with(config);
    let room = f.subscribe("room");
    f.empty_snapshot(room);
    f.drain();
    let msg = |seq: u64| Fields {
        seq: Some(seq),
        epoch: Some(1),
        data: Some(format!("m{seq}")),
        ..by_handle("msg", room)
    };
    // Seq 1 arms the persist deadline (at 10 + 250); the timer never fires,
    // as on a page too busy to run it.
    let frame = InboundFrame::from_fields(msg(1));
    f.s.handle_input(Millis(10), Input::Frame { bytes: 40, frame })
        .expect("a message");
    assert!(positions(&f.drain()).is_empty(), "not due yet");
    // The next frame after the deadline reports what was handed out before
    // it, never the message it carries: that one is polled after.
    let frame = InboundFrame::from_fields(msg(2));
    f.s.handle_input(Millis(400), Input::Frame { bytes: 40, frame })
        .expect("a message");
    let events = f.drain();
    assert_eq!(positions(&events), [1]);
    let message_at = events
        .iter()
        .position(|e| matches!(e, SessionEvent::Stream(seqsync_core::Event::Message { seq, .. }) if seq.get() == 2));
    let position_at = events
        .iter()
        .position(|e| matches!(e, SessionEvent::Position { .. }));
    assert!(position_at < message_at, "{events:?}");
    // An in-order message the shell delivers itself re-arms the deadline,
    // and the first one after it reports the position with that message in.
    assert!(
        f.s.handle_message_in_order(Millis(410), room, seq(3), None)
            .expect("in order")
    );
    assert!(positions(&f.drain()).is_empty(), "not due yet");
    assert!(
        f.s.handle_message_in_order(Millis(700), room, seq(4), None)
            .expect("in order")
    );
    assert_eq!(positions(&f.drain()), [4]);
}

fn seq(n: u64) -> seqsync_core::Seq {
    seqsync_core::Seq::new(n).expect("a seq")
}
