//! The `frames` fuzz target's checks: arbitrary bytes as protocol v1
//! frames. Shared by the fuzz target (`fuzz_targets/frames.rs`) and the
//! replay of `regressions/frames` in `sdk-core/tests/fuzz_regressions.rs`.
//!
//! Parsing a frame from a peer never panics, whatever the bytes; an
//! oversized frame is refused before it is parsed; and every frame that
//! parses encodes back to JSON that parses to the same frame (and encodes to
//! the same text again).

use seqsync_core::Error;
use seqsync_core::protocol::{
    ClientFrame, DEFAULT_MAX_FRAME_BYTES, ServerFrame, parse_client_frame, parse_server_frame,
};
use serde_json::Value;

/// Checks one input; panics on a violation.
pub fn run(data: &[u8]) {
    match std::str::from_utf8(data) {
        Ok(text) => check(text),
        // A transport hands the core text; lossy decoding still reaches the
        // parser with whatever shape the bytes had.
        Err(_) => check(&String::from_utf8_lossy(data)),
    }
}

fn check(text: &str) {
    match parse_server_frame::<Value>(text, DEFAULT_MAX_FRAME_BYTES) {
        Ok(frame) => {
            let json = frame.to_json().expect("a parsed server frame encodes");
            let back: ServerFrame<Value> = parse_server_frame(&json, usize::MAX)
                .unwrap_or_else(|e| panic!("re-encoded server frame {json} fails to parse: {e}"));
            assert_eq!(frame, back, "server frame changed through {json}");
            assert_eq!(back.to_json().ok().as_deref(), Some(json.as_str()));
        }
        Err(e) => drop(e.to_string()),
    }

    match parse_client_frame::<Value>(text, DEFAULT_MAX_FRAME_BYTES) {
        Ok(frame) => {
            let json = frame.to_json().expect("a parsed client frame encodes");
            let back: ClientFrame<Value> = parse_client_frame(&json, usize::MAX)
                .unwrap_or_else(|e| panic!("re-encoded client frame {json} fails to parse: {e}"));
            assert_eq!(frame, back, "client frame changed through {json}");
            assert_eq!(back.to_json().ok().as_deref(), Some(json.as_str()));
        }
        Err(e) => drop(e.to_string()),
    }

    // The size limit is checked before any parsing.
    if let Some(max) = text.len().checked_sub(1) {
        for result in [
            parse_server_frame::<Value>(text, max).map(|_| ()),
            parse_client_frame::<Value>(text, max).map(|_| ()),
        ] {
            assert_eq!(
                result,
                Err(Error::FrameTooLarge {
                    len: text.len(),
                    max
                })
            );
        }
    }
}
