//! The `Session` binding over a server that does not speak the protocol, in
//! a real browser: the requests its adapter gets, and the adapter's inputs
//! and answers, numbers checked.
#![cfg(all(target_arch = "wasm32", feature = "foreign"))]
// `allow-unwrap-in-tests` knows `#[test]`, not `#[wasm_bindgen_test]`.
#![allow(clippy::unwrap_used)]

mod support;

use seqsync_wasm::{
    ANSWER_FAILED, ANSWER_MESSAGES, ANSWER_PUBLISHED, EVENT_MESSAGE, EVENT_PUBLISH_ACKED,
    EVENT_PUBLISH_FAILED, READY_ERROR, READY_EVENTS, REQUEST_HISTORY, REQUEST_PUBLISH,
    REQUEST_SUBSCRIBE, Session, TRANSMIT_CONNECT, TRANSMIT_FOREIGN,
};
use support::{session_events, session_scratch};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// A foreign request as `pollTransmit` leaves it: (kind, fetch id, since,
/// to, limit, stream).
type ForeignTransmit = (u32, f64, f64, f64, f64, String);

fn foreign_transmits(session: &mut Session) -> Vec<ForeignTransmit> {
    transmits_with_slots(session)
        .into_iter()
        .filter(|(s, _)| s[9] as u32 == TRANSMIT_FOREIGN)
        .map(|(s, stream)| (s[11] as u32, s[10], s[12], s[13], s[14], stream))
        .collect()
}

fn transmits_with_slots(session: &mut Session) -> Vec<([f64; 15], String)> {
    std::iter::from_fn(|| {
        let text = session.poll_transmit()?;
        Some((session_scratch(session), text))
    })
    .collect()
}

/// A foreign session (history with pages of 3, publish) with `room`
/// subscribed on an open connection; returns the requests it made.
fn foreign_session(plan: &[f64]) -> (Session, Vec<ForeignTransmit>) {
    let endpoints = vec!["ws://chat/ws".to_string()];
    let mut session = Session::foreign(0.0, &[7; 32], endpoints, None, &[], plan).unwrap();
    session.pending();
    let (connect, url) = transmits_with_slots(&mut session).remove(0);
    assert_eq!(connect[9] as u32, TRANSMIT_CONNECT);
    assert_eq!(url, "ws://chat/ws");
    session.subscribe(0.0, "room", None, None, false);
    session.opened(1.0, connect[10]);
    let requests = foreign_transmits(&mut session);
    session_events(&mut session);
    (session, requests)
}

const HISTORY_AND_PUBLISH: [f64; 9] = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 3.0];

#[wasm_bindgen_test]
fn a_foreign_session_asks_its_adapter_and_takes_its_answers() {
    let (mut session, requests) = foreign_session(&HISTORY_AND_PUBLISH);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        requests[0],
        (REQUEST_SUBSCRIBE, -1.0, 0.0, -1.0, 0.0, "room".to_string()),
        "no answer expected"
    );
    let (kind, id, since, to, limit, stream) = requests[1].clone();
    assert_eq!((kind, since, to, limit), (REQUEST_HISTORY, 0.0, -1.0, 3.0));
    assert_eq!(stream, "room");
    assert!(id >= 0.0);

    let seqs = vec![2.0, 1.0];
    let data = vec![JsValue::from_str("two"), JsValue::from_str("one")];
    let flags = session.fetched(
        2.0,
        id,
        120.0,
        ANSWER_MESSAGES,
        -1.0,
        seqs,
        data,
        JsValue::NULL,
    );
    assert_ne!(flags & READY_EVENTS, 0);
    let delivered: Vec<(f64, Option<String>)> = session_events(&mut session)
        .into_iter()
        .filter(|e| e.0 == EVENT_MESSAGE)
        .map(|e| (e.2, e.5.as_string()))
        .collect();
    assert_eq!(
        delivered,
        [(1.0, Some("one".into())), (2.0, Some("two".into()))]
    );
    assert_eq!(session.stats()[9], 120.0, "history bytes");

    // Live messages by stream name; others are ignored, bad numbers counted.
    session.foreign_message(3.0, "room", 3.0, None, JsValue::from_str("three"));
    let events = session_events(&mut session);
    assert_eq!((events[0].0, events[0].2), (EVENT_MESSAGE, 3.0));
    assert_eq!(
        session.foreign_message(3.0, "elsewhere", 1.0, None, JsValue::NULL),
        0
    );
    let flags = session.foreign_message(3.0, "room", 0.0, None, JsValue::NULL);
    assert_ne!(flags & READY_ERROR, 0);
    let flags = session.foreign_message(3.0, "room", 4.0, Some(-2.0), JsValue::NULL);
    assert_ne!(flags & READY_ERROR, 0);
    assert_eq!(session.stats()[5], 2.0, "bad frames");
    // An answer to nothing asked counts for nothing.
    session.fetched(
        4.0,
        99.0,
        10.0,
        ANSWER_MESSAGES,
        -1.0,
        vec![4.0],
        vec![JsValue::NULL],
        JsValue::NULL,
    );
    assert!(session_events(&mut session).is_empty());
    assert_eq!(session.stats()[17], 1.0, "stale answers");
}

#[wasm_bindgen_test]
fn a_foreign_publish_carries_its_data_and_id_and_ends_with_the_server_word() {
    let (mut session, _) = foreign_session(&HISTORY_AND_PUBLISH);
    let handle = session.publish(5.0, "room", r#"{"text":"hi"}"#);
    assert!(handle >= 0.0);
    let request = foreign_transmits(&mut session).remove(0);
    assert_eq!((request.0, request.5.as_str()), (REQUEST_PUBLISH, "room"));
    assert_eq!(session.foreign_data(), r#"{"text":"hi"}"#);
    assert_eq!(session.foreign_id().len(), 36, "a UUID");
    assert_eq!(session.foreign_data(), "", "taken");
    session.fetched(
        6.0,
        request.1,
        30.0,
        ANSWER_PUBLISHED,
        7.0,
        Vec::new(),
        Vec::new(),
        JsValue::NULL,
    );
    let events = session_events(&mut session);
    let acked = events.iter().find(|e| e.0 == EVENT_PUBLISH_ACKED).unwrap();
    assert_eq!((acked.2, acked.3), (handle, 7.0));

    let handle = session.publish(7.0, "room", "2");
    let request = foreign_transmits(&mut session).remove(0);
    let reason = JsValue::from_str("HTTP 400");
    session.fetched(
        8.0,
        request.1,
        0.0,
        ANSWER_FAILED,
        400.0,
        Vec::new(),
        Vec::new(),
        reason,
    );
    let events = session_events(&mut session);
    let failed = events.iter().find(|e| e.0 == EVENT_PUBLISH_FAILED).unwrap();
    assert_eq!((failed.2, failed.3, failed.4), (handle, 3.0, 400.0));
    assert_eq!(failed.5.as_string().as_deref(), Some("HTTP 400"));
}

#[wasm_bindgen_test]
fn an_answer_with_invalid_numbers_is_a_failure_and_is_asked_again() {
    let (mut session, requests) = foreign_session(&HISTORY_AND_PUBLISH);
    let id = requests[1].1;
    let data = vec![JsValue::NULL, JsValue::NULL];
    session.fetched(
        2.0,
        id,
        10.0,
        ANSWER_MESSAGES,
        -1.0,
        vec![1.0, 1.5],
        data,
        JsValue::NULL,
    );
    assert!(session_events(&mut session).is_empty());
    let retry = session_scratch(&session)[7];
    assert!(retry > 2.0, "a retry is due");
    session.timeout(retry);
    // The subscribe is retried: it goes out again with a new catch-up.
    let again = foreign_transmits(&mut session);
    let kinds: Vec<u32> = again.iter().map(|r| r.0).collect();
    assert_eq!(kinds, [REQUEST_SUBSCRIBE, REQUEST_HISTORY]);
    assert_eq!(again[1].2, 0.0, "from the same position");
    assert_ne!(again[1].1, id, "a new fetch id");
}

#[wasm_bindgen_test]
fn publishing_to_a_foreign_server_without_a_publish_request_is_unsupported() {
    let (mut session, _) = foreign_session(&[1.0]);
    assert_eq!(session.publish(1.0, "room", "1"), -1.0);
    assert_eq!(session.last_error(), "unsupported");
}
