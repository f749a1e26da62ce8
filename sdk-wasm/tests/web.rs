//! The `Core` binding in a real browser (`wasm-pack test --headless --chrome`):
//! JavaScript payloads pass through the core untouched, numbers from
//! JavaScript are checked, and the flags and scratch area say what is ready.
#![cfg(target_arch = "wasm32")]
// `allow-unwrap-in-tests` knows `#[test]`, not `#[wasm_bindgen_test]`.
#![allow(clippy::unwrap_used)]

use seqsync_wasm::{
    Core, EVENT_GAP_DETECTED, EVENT_GAP_HEALED, EVENT_MESSAGE, EVENT_PHASE, EVENT_RESET,
    EVENT_SNAPSHOT, READY_ERROR, READY_EVENTS, READY_REQUESTS, READY_TIMEOUT,
};
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
    let (kind, stream, seq, _, data) = &got[0];
    assert_eq!((*kind, *stream, *seq), (EVENT_MESSAGE, room, 11.0));
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
