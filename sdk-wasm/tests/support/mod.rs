//! What the browser tests of `Session` share: reading the scratch area and
//! draining events the way the JavaScript side does.

use seqsync_wasm::Session;
use wasm_bindgen::JsValue;

/// The scratch area of a session, as the JavaScript side reads it.
pub fn session_scratch(session: &Session) -> [f64; 15] {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().into();
    let view = js_sys::Float64Array::new_with_byte_offset_and_length(
        &memory.buffer(),
        session.scratch_ptr(),
        15,
    );
    let mut out = [0.0; 15];
    view.copy_to(&mut out);
    out
}

/// Drains every event as (kind, stream, a, b, c, payload).
pub fn session_events(session: &mut Session) -> Vec<(u32, f64, f64, f64, f64, JsValue)> {
    let mut out = Vec::new();
    loop {
        let payload = session.poll_event();
        let s = session_scratch(session);
        if s[0] == 0.0 {
            return out;
        }
        out.push((s[0] as u32, s[2], s[3], s[4], s[5], payload));
        if s[1] == 0.0 {
            return out;
        }
    }
}
