//! Protocol v1 frames: parse, encode, and a clear error for every kind of bad input.

use seqsync_core::protocol::{
    ClientFrame, DEFAULT_MAX_FRAME_BYTES, ServerFrame, parse_client_frame, parse_server_frame,
};
use seqsync_core::{
    Config, Epoch, Error, Event, Millis, Request, Seq, SeqRange, Sequencer, StreamName,
    SubscribeOptions,
};
use serde_json::{Value, json};

fn server(text: &str) -> Result<ServerFrame<Value>, Error> {
    parse_server_frame(text, DEFAULT_MAX_FRAME_BYTES)
}

fn client(text: &str) -> Result<ClientFrame<Value>, Error> {
    parse_client_frame(text, DEFAULT_MAX_FRAME_BYTES)
}

#[test]
fn every_server_frame_round_trips() {
    let frames = [
        json!({"type":"msg","stream":"a","seq":1,"epoch":5,"data":{"x":1}}),
        json!({"type":"snapshot","stream":"a","seq":0,"epoch":5,"state":[]}),
        json!({"type":"subscribed","stream":"a","epoch":5,"head":9}),
        json!({"type":"history","stream":"a","from":2,"to":4,"epoch":5,
               "messages":[{"seq":2,"data":"b"}],"skipped":[{"from":3,"to":4}]}),
        json!({"type":"head","heads":{"a":{"seq":9,"epoch":5},"b":{"seq":0,"epoch":1}}}),
        json!({"type":"reset","stream":"a","reason":"history_unavailable","earliest":7}),
        json!({"type":"ack","id":"p-1","stream":"a","seq":10}),
        json!({"type":"error","code":"unauthorized","message":"no","ref":"a"}),
    ];
    for expected in frames {
        let frame = server(&expected.to_string()).expect("parses");
        let encoded = frame.to_json().expect("encodes");
        let actual: Value = serde_json::from_str(&encoded).expect("valid json");
        assert_eq!(actual, expected);
    }
}

#[test]
fn every_client_frame_round_trips() {
    let frames = [
        json!({"type":"subscribe","stream":"a"}),
        json!({"type":"subscribe","stream":"a","since":41,"epoch":5}),
        json!({"type":"unsubscribe","stream":"a"}),
        json!({"type":"history","stream":"a","from":1,"to":3}),
        json!({"type":"snapshot","stream":"a"}),
        json!({"type":"publish","stream":"a","id":"k1","data":{"text":"hi"}}),
    ];
    for expected in frames {
        let frame = client(&expected.to_string()).expect("parses");
        let actual: Value =
            serde_json::from_str(&frame.to_json().expect("encodes")).expect("valid json");
        assert_eq!(actual, expected);
    }
}

#[test]
fn requests_encode_as_client_frames() {
    let stream = StreamName::new("room").expect("name");
    let request = Request::FetchHistory {
        stream,
        range: SeqRange::from_u64(3, 8).expect("range"),
    };
    let frame: ClientFrame<Value> = request.into();
    assert_eq!(
        serde_json::from_str::<Value>(&frame.to_json().expect("encodes")).expect("json"),
        json!({"type":"history","stream":"room","from":3,"to":8})
    );
}

#[test]
fn bad_input_gets_a_typed_error() {
    let max_seq_plus_one = (1u64 << 53).to_string();
    type Expect = fn(&Error) -> bool;
    let table: Vec<(String, Expect)> = vec![
        ("not json".into(), |e| {
            matches!(e, Error::MalformedFrame { .. })
        }),
        ("[1,2]".into(), |e| {
            matches!(e, Error::MalformedFrame { .. })
        }),
        (
            r#"{"stream":"a"}"#.into(),
            |e| matches!(e, Error::MalformedFrame { reason } if reason.contains("type")),
        ),
        (
            r#"{"type":"bogus","stream":"a"}"#.into(),
            |e| matches!(e, Error::UnknownFrameType { kind } if kind == "bogus"),
        ),
        (
            format!(r#"{{"type":"msg","stream":"a","seq":{max_seq_plus_one},"data":1}}"#),
            |e| matches!(e, Error::SeqOutOfRange { seq } if *seq == 1 << 53),
        ),
        (
            r#"{"type":"msg","stream":"a","seq":-1,"data":1}"#.into(),
            |e| matches!(e, Error::MalformedFrame { .. }),
        ),
        (
            r#"{"type":"msg","stream":"a","seq":"7","data":1}"#.into(),
            |e| matches!(e, Error::MalformedFrame { .. }),
        ),
        (
            r#"{"type":"msg","stream":"","seq":1,"data":1}"#.into(),
            |e| matches!(e, Error::InvalidStreamName { .. }),
        ),
        (
            r#"{"type":"msg","stream":"a","seq":1}"#.into(),
            |e| matches!(e, Error::MalformedFrame { reason } if reason.contains("data")),
        ),
        (
            r#"{"type":"history","stream":"a","from":5,"to":4,"messages":[]}"#.into(),
            |e| matches!(e, Error::InvalidRange { from: 5, to: 4 }),
        ),
        (
            r#"{"type":"history","stream":"a","from":0,"to":4,"messages":[]}"#.into(),
            |e| matches!(e, Error::InvalidRange { from: 0, to: 4 }),
        ),
    ];
    for (text, expected) in table {
        let error = server(&text).expect_err(&text);
        assert!(expected(&error), "{text} gave {error:?}");
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn client_bad_input_gets_a_typed_error() {
    assert!(matches!(
        client(r#"{"type":"history","stream":"a","from":9,"to":3}"#),
        Err(Error::InvalidRange { from: 9, to: 3 })
    ));
    assert!(matches!(
        client(r#"{"type":"msg","stream":"a","seq":1,"data":1}"#),
        Err(Error::UnknownFrameType { .. })
    ));
    assert!(matches!(
        client(r#"{"type":"subscribe","stream":"a","since":9007199254740992}"#),
        Err(Error::SeqOutOfRange { .. })
    ));
}

#[test]
fn oversized_frame_is_refused_before_parsing() {
    let text = format!(
        r#"{{"type":"msg","stream":"a","seq":1,"data":"{}"}}"#,
        "x".repeat(100)
    );
    assert_eq!(
        parse_server_frame::<Value>(&text, 64),
        Err(Error::FrameTooLarge {
            len: text.len(),
            max: 64
        })
    );
}

#[test]
fn unknown_fields_are_ignored_for_forward_compatibility() {
    let frame =
        server(r#"{"type":"msg","stream":"a","seq":3,"data":1,"trace":"x"}"#).expect("parses");
    assert!(matches!(frame, ServerFrame::Msg { seq, .. } if seq.get() == 3));
}

#[test]
fn frames_drive_the_sequencer() {
    let mut core = Sequencer::<Value>::new(Config::default());
    let id = core
        .subscribe(Millis(0), "a", SubscribeOptions::default())
        .expect("subscribe");
    core.handle_connected(Millis(0));
    let texts = [
        r#"{"type":"msg","stream":"a","seq":3,"epoch":5,"data":"c"}"#,
        r#"{"type":"snapshot","stream":"a","seq":1,"epoch":5,"state":"s"}"#,
        r#"{"type":"msg","stream":"a","seq":2,"epoch":5,"data":"b"}"#,
        r#"{"type":"msg","stream":"other","seq":1,"data":"x"}"#,
        r#"{"type":"ack","id":"k","stream":"a","seq":4}"#,
    ];
    let mut handed_back = Vec::new();
    for text in texts {
        let frame = server(text).expect("parses");
        if let Some(frame) = core.handle_frame(Millis(1), frame).expect("handled") {
            handed_back.push(frame);
        }
    }
    assert_eq!(handed_back.len(), 2, "unknown stream and ack come back");
    let seen: Vec<String> = std::iter::from_fn(|| core.poll_event())
        .filter_map(|e| match e {
            Event::Snapshot { seq, epoch, .. } => Some(format!("snap{seq}@{epoch}")),
            Event::Message { seq, payload, .. } => Some(format!("{seq}={payload}")),
            _ => None,
        })
        .collect();
    assert_eq!(seen, ["snap1@5", "2=\"b\"", "3=\"c\""]);
    assert_eq!(
        core.stats(id).expect("stats").epoch,
        Some(Epoch(5)),
        "epoch learned from the snapshot"
    );
    let zero = server(r#"{"type":"msg","stream":"a","seq":0,"data":1}"#).expect("parses");
    assert_eq!(
        core.handle_frame(Millis(2), zero),
        Err(Error::SeqOutOfRange { seq: 0 })
    );
    assert_eq!(Seq::new(4).expect("4").next().get(), 5);
}

#[test]
fn range_bound_above_2_pow_53_is_seq_out_of_range() {
    assert!(matches!(
        client(r#"{"type":"history","stream":"a","from":1,"to":9007199254740992}"#),
        Err(Error::SeqOutOfRange {
            seq: 9_007_199_254_740_992
        })
    ));
}
