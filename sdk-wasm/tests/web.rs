//! The `Core` and `Session` bindings in a real browser (`wasm-pack test
//! --headless --chrome`): JavaScript payloads pass through the core
//! untouched, numbers from JavaScript are checked, and the flags and scratch
//! area say what is ready.
#![cfg(all(target_arch = "wasm32", feature = "sequencer"))]
// `allow-unwrap-in-tests` knows `#[test]`, not `#[wasm_bindgen_test]`.
#![allow(clippy::unwrap_used)]

mod support;

use seqsync_wasm::{
    Core, EVENT_CONNECTED, EVENT_CONNECTING, EVENT_GAP_DETECTED, EVENT_GAP_HEALED, EVENT_MESSAGE,
    EVENT_PHASE, EVENT_PUBLISH_ACKED, EVENT_PUBLISH_FAILED, EVENT_RESET, EVENT_SNAPSHOT,
    INPUT_FRAME, INPUT_UNREADABLE, READY_DELIVER, READY_ERROR, READY_EVENTS, READY_REQUESTS,
    READY_TIMEOUT, READY_TRANSMIT, Session, TRANSMIT_CONNECT, TRANSMIT_SEND,
};
use support::{session_events, session_scratch};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// Reads the scratch area the way the JavaScript side does.
fn scratch(core: &Core) -> [f64; 9] {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().into();
    let view = js_sys::Float64Array::new_with_byte_offset_and_length(
        &memory.buffer(),
        core.scratch_ptr(),
        9,
    );
    let mut out = [0.0; 9];
    view.copy_to(&mut out);
    out
}

/// Drains every event as (kind, stream, a, b, payload).
fn events(core: &mut Core) -> Vec<(u32, f64, f64, f64, JsValue)> {
    let mut out = Vec::new();
    loop {
        let payload = core.poll_event();
        let s = scratch(core);
        if s[0] == 0.0 {
            return out;
        }
        out.push((s[0] as u32, s[2], s[3], s[4], payload));
        if s[1] == 0.0 {
            return out;
        }
    }
}

fn requests(core: &mut Core) -> Vec<String> {
    std::iter::from_fn(|| core.poll_request()).collect()
}

fn live_core(gap_timeout_ms: f64) -> (Core, f64) {
    let mut core = Core::new(None, Some(gap_timeout_ms), None, None, None, None, None);
    let room = core.subscribe(0.0, "room", None, None, false).unwrap();
    let flags = core.connected(0.0);
    assert_ne!(flags & READY_REQUESTS, 0);
    assert_eq!(
        requests(&mut core),
        [r#"{"type":"subscribe","stream":"room"}"#]
    );
    let flags = core.snapshot(1.0, room, 10.0, 3.0, JsValue::from_str("state"));
    assert_eq!(flags & READY_ERROR, 0);
    events(&mut core);
    (core, room)
}

#[wasm_bindgen_test]
fn payload_objects_come_back_identical() {
    let (mut core, room) = live_core(100.0);
    let payload = js_sys::Object::new();
    let flags = core.message(2.0, room, 11.0, 3.0, payload.clone().into());
    assert_eq!(flags, READY_EVENTS);
    let got = events(&mut core);
    assert_eq!(got.len(), 1);
    let (kind, stream, seq, epoch, data) = &got[0];
    assert_eq!(
        (*kind, *stream, *seq, *epoch),
        (EVENT_MESSAGE, room, 11.0, 3.0)
    );
    assert!(js_sys::Object::is(data, &payload), "the very same object");
}

#[wasm_bindgen_test]
fn snapshot_state_and_epoch_reach_javascript() {
    let mut core = Core::new(None, None, None, None, None, None, None);
    let room = core.subscribe(0.0, "room", None, None, false).unwrap();
    core.connected(0.0);
    requests(&mut core);
    core.snapshot(1.0, room, 42.0, 9.0, JsValue::from_str("at 42"));
    let got = events(&mut core);
    let snapshot = got.iter().find(|e| e.0 == EVENT_SNAPSHOT).unwrap();
    assert_eq!((snapshot.2, snapshot.3), (42.0, 9.0));
    assert_eq!(snapshot.4.as_string().as_deref(), Some("at 42"));
    assert!(got.iter().any(|e| e.0 == EVENT_PHASE));
}

#[wasm_bindgen_test]
fn a_hole_is_requested_after_the_gap_timeout_and_heals_in_order() {
    let (mut core, room) = live_core(50.0);
    let flags = core.message(2.0, room, 13.0, 3.0, JsValue::from_f64(13.0));
    assert_ne!(flags & READY_TIMEOUT, 0, "a deadline was set");
    assert_eq!(scratch(&core)[7], 52.0);
    let got = events(&mut core);
    assert_eq!(got[0].0, EVENT_GAP_DETECTED);
    assert_eq!((got[0].2, got[0].3), (11.0, 12.0));
    assert!(
        requests(&mut core).is_empty(),
        "nothing asked before the timeout"
    );

    let flags = core.timeout(52.0);
    assert_ne!(flags & READY_REQUESTS, 0);
    assert_eq!(
        requests(&mut core),
        [r#"{"type":"history","stream":"room","from":11,"to":12}"#]
    );
    let data = vec![JsValue::from_f64(11.0), JsValue::from_f64(12.0)];
    core.history(60.0, room, 11.0, 12.0, 3.0, vec![11.0, 12.0], data);
    let got = events(&mut core);
    let delivered: Vec<f64> = got
        .iter()
        .filter(|e| e.0 == EVENT_MESSAGE)
        .map(|e| e.4.as_f64().unwrap())
        .collect();
    assert_eq!(delivered, [11.0, 12.0, 13.0]);
    assert!(got.iter().any(|e| e.0 == EVENT_GAP_HEALED && e.2 == 13.0));
}

#[wasm_bindgen_test]
fn duplicates_are_dropped_and_counted() {
    let (mut core, room) = live_core(100.0);
    core.message(2.0, room, 11.0, 3.0, JsValue::from_f64(1.0));
    core.message(3.0, room, 11.0, 3.0, JsValue::from_f64(2.0));
    let got = events(&mut core);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].4.as_f64(), Some(1.0));
    let stats = core.stats(room).unwrap();
    assert_eq!(stats[0], 1.0, "delivered");
    assert_eq!(stats[1], 1.0, "duplicates");
    assert_eq!(stats[9], 11.0, "last seq");
    assert_eq!(stats[13], 3.0, "live");
}

#[wasm_bindgen_test]
fn bad_numbers_are_rejected_without_changing_anything() {
    let (mut core, room) = live_core(100.0);
    for seq in [0.0, -1.0, 1.5, f64::NAN, 9_007_199_254_740_992.0] {
        let flags = core.message(2.0, room, seq, 3.0, JsValue::NULL);
        assert_ne!(flags & READY_ERROR, 0, "seq {seq}");
    }
    assert!(!core.last_error().is_empty());
    assert_ne!(
        core.message(2.0, room, 11.0, 2.5, JsValue::NULL) & READY_ERROR,
        0
    );
    assert_ne!(
        core.message(2.0, 77.0, 11.0, 3.0, JsValue::NULL) & READY_ERROR,
        0
    );
    assert!(events(&mut core).is_empty());
    assert_eq!(core.stats(room).unwrap()[9], 10.0);
}

#[wasm_bindgen_test]
fn reset_then_snapshot_is_requested() {
    let (mut core, room) = live_core(100.0);
    core.reset(5.0, room, "history_unavailable", 40.0);
    let got = events(&mut core);
    let reset = got.iter().find(|e| e.0 == EVENT_RESET).unwrap();
    assert_eq!((reset.2, reset.3), (0.0, 40.0));
    assert_eq!(
        requests(&mut core),
        [r#"{"type":"snapshot","stream":"room"}"#]
    );
}

#[wasm_bindgen_test]
fn resuming_subscribe_carries_since_and_epoch() {
    let mut core = Core::new(None, None, None, None, None, None, None);
    core.subscribe(0.0, "feed", Some(25.0), Some(4.0), false)
        .unwrap();
    core.connected(0.0);
    assert_eq!(
        requests(&mut core),
        [r#"{"type":"subscribe","stream":"feed","since":25,"epoch":4}"#]
    );
    assert!(core.subscribe(0.0, "feed", None, None, false).is_err());
    assert!(core.subscribe(0.0, "", None, None, false).is_err());
    assert!(core.subscribe(0.0, "x", Some(0.5), None, false).is_err());
}

#[wasm_bindgen_test]
fn unsubscribe_drops_pending_events_and_stales_the_handle() {
    let (mut core, room) = live_core(100.0);
    core.message(2.0, room, 11.0, 3.0, JsValue::NULL);
    core.unsubscribe(3.0, room);
    assert!(events(&mut core).is_empty());
    assert_eq!(
        requests(&mut core),
        [r#"{"type":"unsubscribe","stream":"room"}"#]
    );
    assert!(core.stats(room).is_none());
    assert_eq!(core.stream_handle("room"), -1.0);
}

#[wasm_bindgen_test]
fn deliver_hands_back_the_message_and_reports_flags() {
    let (mut core, room) = live_core(100.0);
    let data = core.deliver(2.0, room, 11.0, 3.0, JsValue::from_str("eleven"));
    let s = scratch(&core);
    assert_eq!(data.as_string().as_deref(), Some("eleven"));
    assert_eq!((s[0] as u32, s[2], s[3]), (EVENT_MESSAGE, room, 11.0));
    assert_eq!(s[8] as u32 & READY_EVENTS, READY_EVENTS);

    // Ahead of a gap: held, so the first event is the gap, not a message.
    let data = core.deliver(3.0, room, 13.0, 3.0, JsValue::from_str("thirteen"));
    let s = scratch(&core);
    assert!(data.is_undefined());
    assert_eq!(s[0] as u32, EVENT_GAP_DETECTED);
    assert_ne!(s[8] as u32 & READY_TIMEOUT, 0);

    // A duplicate: nothing to deliver.
    let data = core.deliver(4.0, room, 11.0, 3.0, JsValue::from_str("again"));
    assert!(data.is_undefined());
    assert_eq!(scratch(&core)[0], 0.0);
}

// ---- Session ---------------------------------------------------------------------

/// Drains every transmit as (kind, connection, endpoint or close code, text).
fn transmits(session: &mut Session) -> Vec<(u32, f64, f64, String)> {
    std::iter::from_fn(|| {
        let text = session.poll_transmit()?;
        let s = session_scratch(session);
        Some((s[9] as u32, s[10], s[11], text))
    })
    .collect()
}

/// A frame's members as the package's JavaScript reads them from
/// `JSON.parse`, the way it hands them to `Session::input`.
struct Frame<'a> {
    /// The stream's handle (-1: `stream` names it), then `seq`, `epoch`,
    /// `head`, `from`, `to`, `earliest`: NaN when absent.
    numbers: [f64; 7],
    kind: &'a str,
    stream: Option<&'a str>,
    /// `id`, `code`, `message`, `ref`.
    texts: [Option<&'a str>; 4],
    data: JsValue,
    state: JsValue,
    /// A `head` frame's entries: name, seq, epoch (NaN: absent).
    heads: Option<Vec<(&'a str, f64, f64)>>,
}

impl<'a> Frame<'a> {
    fn new(kind: &'a str, handle: f64) -> Frame<'a> {
        let mut numbers = [f64::NAN; 7];
        numbers[0] = handle;
        Frame {
            numbers,
            kind,
            stream: None,
            texts: [None; 4],
            data: JsValue::UNDEFINED,
            state: JsValue::UNDEFINED,
            heads: None,
        }
    }

    /// Hands the frame, `bytes` long, to `session` at `now`; its flags.
    fn to(self, session: &mut Session, now: f64, bytes: f64) -> u32 {
        let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().into();
        let view = js_sys::Float64Array::new_with_byte_offset_and_length(
            &memory.buffer(),
            session.scratch_ptr(),
            7,
        );
        view.copy_from(&self.numbers);
        let text = |t: Option<&str>| t.map_or(JsValue::UNDEFINED, JsValue::from_str);
        let [id, code, message, reference] = self.texts.map(text);
        let texts = vec![
            text(Some(self.kind)),
            text(self.stream),
            JsValue::UNDEFINED,
            id,
            code,
            message,
            reference,
        ];
        let (names, heads) = match self.heads {
            Some(entries) => (
                Some(entries.iter().map(|e| JsValue::from_str(e.0)).collect()),
                Some(entries.iter().flat_map(|e| [e.1, e.2]).collect()),
            ),
            None => (None, None),
        };
        session.input(
            now,
            INPUT_FRAME,
            bytes,
            Some(texts),
            self.data,
            self.state,
            None,
            None,
            names,
            heads,
        )
    }
}

/// A `snapshot` frame for stream `handle` at `seq`, epoch 3, with `ref`.
fn snapshot(handle: f64, seq: f64, reference: &str) -> Frame<'_> {
    let mut f = Frame::new("snapshot", handle);
    f.numbers[1] = seq;
    f.numbers[2] = 3.0;
    f.state = JsValue::NULL;
    f.texts[3] = Some(reference);
    f
}

/// A `msg` frame for stream `handle`, epoch 3.
fn msg(handle: f64, seq: f64, data: JsValue) -> Frame<'static> {
    let mut f = Frame::new("msg", handle);
    f.numbers[1] = seq;
    f.numbers[2] = 3.0;
    f.data = data;
    f
}

/// An `error` frame about `reference`.
fn error<'a>(code: &'a str, message: &'a str, reference: &'a str) -> Frame<'a> {
    let mut f = Frame::new("error", -1.0);
    f.texts = [None, Some(code), Some(message), Some(reference)];
    f
}

/// A session connected to one endpoint, with `room` live at seq 10.
fn live_session() -> (Session, f64) {
    let endpoints = vec!["ws://h/ws".to_string()];
    let mut session = Session::new(0.0, &[7; 32], endpoints, None, &[]).unwrap();
    session.pending();
    let conn = transmits(&mut session)[0].1;
    let room = session.subscribe(0.0, "room", None, None, false);
    session.opened(1.0, conn);
    transmits(&mut session);
    snapshot(room, 10.0, "0.0").to(&mut session, 2.0, 60.0);
    session_events(&mut session);
    (session, room)
}

#[wasm_bindgen_test]
fn a_session_connects_with_the_token_encoded_then_subscribes_with_a_ref() {
    let endpoints = vec!["ws://h/ws".to_string()];
    let mut session = Session::new(0.0, &[7; 32], endpoints, Some("a+b".into()), &[]).unwrap();
    let flags = session.pending();
    assert_ne!(flags & READY_TRANSMIT, 0);
    let connect = transmits(&mut session);
    assert_eq!(connect.len(), 1);
    let (kind, conn, endpoint, url) = &connect[0];
    assert_eq!((*kind, *endpoint), (TRANSMIT_CONNECT, 0.0));
    assert_eq!(url, "ws://h/ws?token=a%2Bb");
    assert_eq!(
        session_scratch(&session)[7],
        5_000.0,
        "the connect deadline"
    );
    assert_eq!(session_events(&mut session)[0].0, EVENT_CONNECTING);

    let room = session.subscribe(0.0, "room", None, None, false);
    assert!(room >= 0.0);
    session.opened(1.0, *conn);
    let sent = transmits(&mut session);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, TRANSMIT_SEND);
    assert_eq!(
        sent[0].3,
        r#"{"type":"subscribe","stream":"room","ref":"0.0"}"#
    );
    assert!(
        session_events(&mut session)
            .iter()
            .any(|e| e.0 == EVENT_CONNECTED)
    );
}

#[wasm_bindgen_test]
fn a_message_payload_comes_back_as_the_very_same_object() {
    let (mut session, room) = live_session();
    let payload = js_sys::Object::new();
    let flags = msg(room, 11.0, payload.clone().into()).to(&mut session, 3.0, 40.0);
    assert_ne!(flags & READY_EVENTS, 0);
    let events = session_events(&mut session);
    assert_eq!(
        (events[0].0, events[0].1, events[0].2),
        (EVENT_MESSAGE, room, 11.0)
    );
    assert!(
        js_sys::Object::is(&events[0].5, &payload),
        "the very same object"
    );
    // A stale answer (another subscription's ref) is dropped and counted.
    snapshot(room, 50.0, "9.9").to(&mut session, 4.0, 60.0);
    assert!(session_events(&mut session).is_empty());
    let stats = session.stats();
    assert_eq!(stats[3], 3.0, "frames");
    assert_eq!(stats[4], 160.0, "bytes");
    assert_eq!(stats[17], 1.0, "stale answers");
}

#[wasm_bindgen_test]
fn a_frame_is_judged_by_the_core_whatever_shell_read_it() {
    let (mut session, room) = live_session();
    // A message without `data`, a seq that is not a number (-1), an
    // unknown type, a frame the shell could not read: each counted as bad.
    let no_data = msg(room, 11.0, JsValue::UNDEFINED);
    assert_ne!(no_data.to(&mut session, 3.0, 30.0) & READY_ERROR, 0);
    let mut not_a_number = msg(room, 11.0, JsValue::NULL);
    not_a_number.numbers[1] = -1.0;
    assert_ne!(not_a_number.to(&mut session, 3.0, 30.0) & READY_ERROR, 0);
    assert_ne!(
        Frame::new("teleport", room).to(&mut session, 3.0, 30.0) & READY_ERROR,
        0
    );
    let none = JsValue::UNDEFINED;
    let unreadable = session.input(
        3.0,
        INPUT_UNREADABLE,
        30.0,
        None,
        none.clone(),
        none,
        None,
        None,
        None,
        None,
    );
    assert_ne!(unreadable & READY_ERROR, 0);
    // A head entry without an epoch: the whole frame is refused, as the
    // native client refuses it, and the stream's head stays.
    let mut head = Frame::new("head", -1.0);
    head.heads = Some(vec![("room", 15.0, f64::NAN)]);
    assert_ne!(head.to(&mut session, 4.0, 30.0) & READY_ERROR, 0);
    assert_eq!(
        session.stream_stats(room).unwrap()[10],
        10.0,
        "head unchanged"
    );
    let stats = session.stats();
    assert_eq!((stats[3], stats[5]), (6.0, 5.0), "frames, bad frames");
    assert!(session_events(&mut session).is_empty());
    // The stream's name instead of its handle reaches the same stream.
    let mut by_name = msg(-1.0, 11.0, JsValue::from_str("eleven"));
    by_name.stream = Some("room");
    by_name.to(&mut session, 5.0, 30.0);
    let events = session_events(&mut session);
    assert_eq!(
        (events[0].0, events[0].1, events[0].2),
        (EVENT_MESSAGE, room, 11.0)
    );
}

#[wasm_bindgen_test]
fn in_order_takes_only_the_next_seq_and_keeps_no_payload() {
    let (mut session, room) = live_session();
    assert_ne!(
        session.in_order(3.0, room, 11.0, 3.0, 40.0) & READY_DELIVER,
        0
    );
    assert_eq!(session.in_order(3.0, room, 11.0, 3.0, 40.0), 0, "a repeat");
    assert_eq!(session.in_order(3.0, room, 13.0, 3.0, 40.0), 0, "one ahead");
    assert_eq!(session.in_order(3.0, room, 0.5, 3.0, 40.0), 0, "not a seq");
    assert_eq!(
        session.in_order(3.0, room, 12.0, -1.0, 40.0),
        0,
        "not an epoch"
    );
    assert!(session_events(&mut session).is_empty());
    // What was not taken was not counted: it goes to `input`.
    msg(room, 13.0, JsValue::from_str("13")).to(&mut session, 4.0, 40.0);
    let events = session_events(&mut session);
    assert!(
        events.iter().all(|e| e.0 != EVENT_MESSAGE),
        "13 waits for 12"
    );
    msg(room, 12.0, JsValue::from_str("12")).to(&mut session, 4.0, 40.0);
    let events = session_events(&mut session);
    let data: Vec<_> = events
        .iter()
        .filter(|e| e.0 == EVENT_MESSAGE)
        .map(|e| e.5.as_string())
        .collect();
    assert_eq!(data, [Some("12".to_string()), Some("13".to_string())]);
    let stats = session.stats();
    assert_eq!(
        stats[3], 4.0,
        "frames: the snapshot, 11 through inOrder, 13 and 12 through input"
    );
    assert_eq!(stats[4], 180.0, "bytes");
    assert_eq!(
        session.stream_stats(room).unwrap()[0],
        3.0,
        "delivered: 11, 12, 13"
    );
}

#[wasm_bindgen_test]
fn a_publish_goes_out_with_a_random_id_and_its_ack_resolves_it() {
    let (mut session, _) = live_session();
    let handle = session.publish(5.0, "room", r#"{"n":1}"#);
    assert!(handle >= 1.0);
    let sent = transmits(&mut session);
    let text = &sent[0].3;
    let id = text
        .split(r#""id":""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    assert_eq!(id.len(), 36, "a UUID: {text}");
    assert!(text.ends_with(r#","data":{"n":1}}"#), "{text}");
    let mut ack = Frame::new("ack", -1.0);
    ack.stream = Some("room");
    ack.numbers[1] = 12.0;
    ack.texts[0] = Some(id);
    ack.to(&mut session, 6.0, 60.0);
    let events = session_events(&mut session);
    let acked = events.iter().find(|e| e.0 == EVENT_PUBLISH_ACKED).unwrap();
    assert_eq!((acked.2, acked.3), (handle, 12.0));
}

#[wasm_bindgen_test]
fn refusals_come_as_codes() {
    let (mut session, _) = live_session();
    assert_eq!(session.publish(5.0, "bad\nname", "1"), -1.0);
    assert_eq!(session.last_error(), "invalid_stream");
    assert_eq!(session.subscribe(5.0, "room", None, None, false), -1.0);
    assert_eq!(session.last_error(), "already_subscribed");
    assert_eq!(
        session.code(-1),
        "already_subscribed",
        "as JavaScript reads it"
    );

    let handle = session.publish(5.0, "room", "1");
    let text = transmits(&mut session).remove(0).3;
    let id = text.split('"').nth(11).unwrap().to_string();
    error("unauthorized", "not for you", &id).to(&mut session, 6.0, 60.0);
    let events = session_events(&mut session);
    let failed = events.iter().find(|e| e.0 == EVENT_PUBLISH_FAILED).unwrap();
    assert_eq!((failed.2, failed.3), (handle, 0.0), "refused");
    assert_eq!(session.code(failed.4 as i32), "unauthorized");
    assert_eq!(failed.5.as_string().as_deref(), Some("not for you"));

    // A code this version does not know is named as the server wrote it.
    let handle = session.publish(7.0, "room", "2");
    let text = transmits(&mut session).remove(0).3;
    let id = text.split('"').nth(11).unwrap().to_string();
    error("payment_required", "pay first", &id).to(&mut session, 8.0, 60.0);
    let events = session_events(&mut session);
    let failed = events.iter().find(|e| e.0 == EVENT_PUBLISH_FAILED).unwrap();
    assert_eq!(failed.2, handle);
    assert_eq!(session.code(failed.4 as i32), "payment_required");
    assert_eq!(failed.5.as_string().as_deref(), Some("pay first"));
}

#[wasm_bindgen_test]
fn a_seed_that_is_not_32_bytes_is_refused() {
    let endpoints = vec!["ws://h/ws".to_string()];
    assert!(Session::new(0.0, &[7; 16], endpoints, None, &[]).is_err());
    assert!(Session::new(0.0, &[7; 32], Vec::new(), None, &[]).is_err());
}
