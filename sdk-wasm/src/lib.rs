//! # seqsync-wasm
//!
//! The browser binding of seqsync, published on npm as `seqsync`. It exports
//! two classes over `seqsync-core`, with payloads kept as JavaScript values
//! and every other argument a plain number, so that a message crosses the
//! JS/WASM boundary without copying or encoding:
//!
//! - [`Session`]: the whole client (`seqsync_core::Session`): streams,
//!   endpoints and reconnects, dead-peer check, publishes and their ids,
//!   resume positions. The package's JavaScript `Client` is an IO shell over
//!   it: it owns the WebSocket, one timer, `JSON.parse`, the callbacks and
//!   the storage, and carries out what the session asks.
//! - [`Core`]: the bare [`Sequencer`](seqsync_core::Sequencer), behind the
//!   `Sequencer` class of the package's `seqsync/sequencer` module, for
//!   applications with their own transport.
//!
//! Each class has its cargo feature, and the package ships one module per
//! entry, each built with only what its entry uses (every feature is on by
//! default, for tests): the default module (`seqsync`) with `session`, the
//! `seqsync/sequencer` module with `sequencer`, the `seqsync/foreign` module
//! with `foreign`.
//!
//! With the feature `foreign`, `Session`
//! also runs over a server that does not speak the protocol
//! (docs/protocol.md section 12): `Session.foreign` takes the adapter's
//! plan, `foreignMessage` and `foreignHead` what the adapter read from a
//! frame, `fetched` its answers, and `pollTransmit` hands it requests
//! ([`TRANSMIT_FOREIGN`]). The adapter, reading JSON and carrying requests
//! out, is the package's JavaScript.
//!
//! Nothing here decides anything: every method translates its arguments,
//! calls the core, and reports what the core queued.
//!
//! ## The calling convention
//!
//! Inputs return a bit set of what is ready ([`READY_TRANSMIT`] (for `Core`:
//! [`READY_REQUESTS`]), [`READY_EVENTS`], [`READY_TIMEOUT`],
//! [`READY_ERROR`]); methods that return something else (`Core::deliver`,
//! `subscribe`, `publish`) leave the bit set in scratch slot 8.
//!
//! A `Session` has one input, `input` ([`INPUT_FRAME`] and the other
//! `INPUT_*`): what arrived from the socket or the clock. A frame's
//! members cross as `JSON.parse` read them, whatever its `type`, and the
//! core judges and routes them (`seqsync_core::Session::handle_input`);
//! its numbers go through scratch slots 0 to 6 just before the call, its
//! stream as the handle of a subscription when it names one. The one
//! exception is `inOrder`, the measured fast path for a message next in
//! order (docs/design.md, "One inbound path"). The caller
//! then drains, in this order, `pollTransmit()` (`Session`: what to do with
//! the socket) or `pollRequest()` (`Core`: JSON text frames), reads the new
//! timer deadline from the scratch area, and drains `pollEvent()`: it
//! returns the event's payload (or `undefined`) and writes the event's kind
//! and numbers into the scratch area, a small `Float64Array` in WASM memory
//! at `scratchPtr()`:
//!
//! | slot | meaning |
//! | --- | --- |
//! | 0 | event kind (`EVENT_*`, 0: none); for `Session::input`, slots 0 to 6 are a frame's stream handle (-1: none), `seq`, `epoch`, `head`, `from`, `to`, `earliest` (NaN: absent) |
//! | 1 | 1 when another event is queued |
//! | 2 | stream handle |
//! | 3..=6 | the event's numbers (see `EVENT_*`): a message's seq in 3, its epoch in 4 |
//! | 7 | the timer deadline in ms, -1 for none |
//! | 8 | the flags of the last `deliver`, `subscribe` or `publish` |
//! | 9 | `Session::pollTransmit`: kind ([`TRANSMIT_CONNECT`], [`TRANSMIT_SEND`], [`TRANSMIT_DISCONNECT`], [`TRANSMIT_FOREIGN`]) |
//! | 10 | its connection id; for a foreign request, the fetch id its answer names (-1: none expected) |
//! | 11 | the endpoint index (connect), the close code (disconnect) or the request kind (foreign: `REQUEST_*`) |
//! | 12 | a foreign request's `since` (subscribe, history) |
//! | 13 | a foreign history request's `to` (-1: no known end) |
//! | 14 | a foreign history request's `limit` |
//!
//! `Core::deliver` is a message followed by the first `pollEvent`, for the
//! hot path: one crossing instead of two when the message is delivered at
//! once.
//!
//! Seqs, epochs and times are JavaScript numbers: every valid seq is at most
//! 2^53 - 1, so it is exact. A stream handle is `StreamId::to_raw` as a
//! number, a publish handle `PublishId::to_raw`.
//!
//! Error messages are fixed strings or codes, never formatted: formatting
//! code is a large part of a WASM module, and the JavaScript side words its
//! own messages. For the same reason the package's builds are `no_std` on
//! wasm32 (without the feature `std`): a panic is a trap, the module's own
//! panic handler, and nothing of std's panic hook or `core::fmt` is linked.
#![cfg_attr(all(target_arch = "wasm32", not(feature = "std"), not(test)), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

/// The part of std's prelude the crate uses, from `alloc`.
mod prelude {
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec;
    pub(crate) use alloc::vec::Vec;
}
use prelude::*;

/// A panic (a bug: the binding checks what JavaScript passes, the core
/// never panics on what a peer sends) stops the module with a trap, which
/// JavaScript sees as a `RuntimeError`. Nothing of the panic's message is
/// formatted.
#[cfg(all(target_arch = "wasm32", not(feature = "std"), not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(feature = "sequencer")]
mod sequencer;
#[cfg(feature = "session")]
mod session;
#[cfg(feature = "websys")]
mod websys;

// The module runs on one thread (no `atomics` target feature), which is
// what `TalckWasm`'s lock-free `new_global` requires.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
#[allow(unsafe_code)]
static ALLOCATOR: talc::TalckWasm = unsafe { talc::TalckWasm::new_global() };

#[cfg(feature = "sequencer")]
pub use sequencer::Core;
#[cfg(feature = "session")]
pub use session::Session;
#[cfg(feature = "websys")]
pub use websys::WebClient;

use seqsync_core::{
    Config, Epoch, Error, Event, MAX_SEQ, Millis, ResetReason, Seq, StalledRequest, StreamId,
    StreamPhase, StreamStats,
};
use wasm_bindgen::JsValue;

/// Flag: `Core::pollRequest()` has frames to send.
pub const READY_REQUESTS: u32 = 1;
/// Flag: `Session::pollTransmit()` has something to do with the socket.
pub const READY_TRANSMIT: u32 = 1;
/// Flag: `pollEvent()` has events.
pub const READY_EVENTS: u32 = 2;
/// Flag: the timer deadline (scratch slot 7) changed.
pub const READY_TIMEOUT: u32 = 4;
/// Flag of `Session::inOrder`: the message is delivered now, with the
/// payload the caller kept.
pub const READY_DELIVER: u32 = 16;
/// Flag: the input was rejected. `Core`: `lastError()` says why, the core is
/// unchanged. `Session`: the frame was counted as bad.
pub const READY_ERROR: u32 = 8;

/// `Message`: slot 3 seq, slot 4 epoch (-1: the stream knows none); the
/// payload is returned.
pub const EVENT_MESSAGE: u32 = 1;
/// `Snapshot`: slot 3 seq, slot 4 epoch; the state is returned.
pub const EVENT_SNAPSHOT: u32 = 2;
/// `Reset`: slot 3 reason (0 history_unavailable, 1 epoch_changed,
/// 2 server_behind), slot 4 earliest seq or -1.
pub const EVENT_RESET: u32 = 3;
/// `Skipped`: slots 3, 4 the inclusive range.
pub const EVENT_SKIPPED: u32 = 4;
/// `GapDetected`: slots 3, 4 the inclusive range.
pub const EVENT_GAP_DETECTED: u32 = 5;
/// `GapHealed`: slot 3 the last contiguous seq.
pub const EVENT_GAP_HEALED: u32 = 6;
/// `Stalled`: slot 3 request (0 history, 1 snapshot, 2 subscribe), slots 4,
/// 5 the history range (else -1), slot 6 attempts.
pub const EVENT_STALLED: u32 = 7;
/// `PhaseChanged`: slot 3 phase (0 disconnected, 1 subscribing,
/// 2 snapshotting, 3 live).
pub const EVENT_PHASE: u32 = 8;
/// `Connecting`: slot 3 endpoint index, slot 4 failures in a row before it.
pub const EVENT_CONNECTING: u32 = 9;
/// `Connected`: slot 3 endpoint index.
pub const EVENT_CONNECTED: u32 = 10;
/// `Disconnected`: slot 3 the wait before the next attempt in ms; the
/// reason (a string) is returned.
pub const EVENT_DISCONNECTED: u32 = 11;
/// `Closed`: the session ended (closed by the application).
pub const EVENT_CLOSED: u32 = 12;
/// `PublishAcked`: slot 3 publish handle, slot 4 seq.
pub const EVENT_PUBLISH_ACKED: u32 = 13;
/// `PublishFailed`: slot 3 publish handle, slot 4 why (0 refused, 1 timed
/// out, 2 closed, 3 a foreign server's request failed), slot 5 the error
/// code's index (see `Session::code`) or, for 3, the HTTP status (-1:
/// none); a refusal's message or a failure's reason is returned.
pub const EVENT_PUBLISH_FAILED: u32 = 14;
/// `Position`: slot 3 seq, slot 4 epoch; the stream name is returned.
pub const EVENT_POSITION: u32 = 15;
/// `Refused`: slot 2 the stream, slot 3 the error code's index; the
/// server's message is returned.
pub const EVENT_REFUSED: u32 = 16;
/// `ServerError`: slot 3 the error code's index; the message is returned.
pub const EVENT_SERVER_ERROR: u32 = 17;
/// `Stopped`: no connection until `connect`; slot 3 0 (`disconnect` was
/// called) or 1 (no first connection in time; the last attempt's failure
/// is returned).
pub const EVENT_STOPPED: u32 = 18;

/// `Session.command`: close cleanly.
pub const COMMAND_CLOSE: u32 = 0;
/// `Session.command`: close at once, failing pending publishes.
pub const COMMAND_ABORT: u32 = 1;
/// `Session.command`: connect again after a disconnect or a give-up.
pub const COMMAND_CONNECT: u32 = 2;
/// `Session.command`: close the connection and stop until connect.
pub const COMMAND_DISCONNECT: u32 = 3;

/// Transmit: open a WebSocket to the returned URL (slot 10 the connection,
/// slot 11 the endpoint index).
pub const TRANSMIT_CONNECT: u32 = 1;
/// Transmit: send the returned text on the open connection.
pub const TRANSMIT_SEND: u32 = 2;
/// Transmit: close connection slot 10 with code slot 11 and the returned
/// reason.
pub const TRANSMIT_DISCONNECT: u32 = 3;
/// Transmit (a session over a foreign server): carry out a request through
/// the adapter. The stream is returned; slot 11 is the request kind
/// (`REQUEST_*`), slot 10 the fetch id that `Session::fetched` must name
/// (-1 when no answer is expected), slots 12 to 14 `since`, `to` and
/// `limit`; a publish's data and id are read with `Session::foreignData`
/// and `Session::foreignId`.
pub const TRANSMIT_FOREIGN: u32 = 4;

/// Foreign request: start the stream on the connection (`since`).
pub const REQUEST_SUBSCRIBE: u32 = 1;
/// Foreign request: stop the stream on the connection.
pub const REQUEST_UNSUBSCRIBE: u32 = 2;
/// Foreign request: the messages after `since`, at most `limit`, up to
/// `to` when known.
pub const REQUEST_HISTORY: u32 = 3;
/// Foreign request: the stream's state.
pub const REQUEST_SNAPSHOT: u32 = 4;
/// Foreign request: the stream's latest seq.
pub const REQUEST_HEAD: u32 = 5;
/// Foreign request: publish (data and id from `foreignData`, `foreignId`).
pub const REQUEST_PUBLISH: u32 = 6;

/// Answer to a foreign request: messages (`seqs`, `data`; the number is
/// the earliest seq the server still has, -1 when it did not say).
pub const ANSWER_MESSAGES: u32 = 1;
/// Answer: a snapshot (the number is its seq, the value its state).
pub const ANSWER_SNAPSHOT: u32 = 2;
/// Answer: the stream's latest seq (the number).
pub const ANSWER_HEAD: u32 = 3;
/// Answer: the publish is stored (the number is its seq, -1 when the
/// server did not say).
pub const ANSWER_PUBLISHED: u32 = 4;
/// Answer: the request went out as a frame; the messages come as frames.
pub const ANSWER_SENT: u32 = 5;
/// Answer: what was asked is gone (the number is the earliest seq, -1 when
/// the server did not say).
pub const ANSWER_GONE: u32 = 6;
/// Answer: no usable answer (the number is the HTTP status, -1 for none;
/// the value is the reason, a string).
pub const ANSWER_FAILED: u32 = 7;

/// `Session::input`: a frame read by `JSON.parse`, its members given.
pub const INPUT_FRAME: u32 = 0;
/// `Session::input`: a frame that could not be read (not text, too large,
/// not JSON, a member of the wrong type).
pub const INPUT_UNREADABLE: u32 = 1;
/// `Session::input`: the socket of a connection opened.
pub const INPUT_OPENED: u32 = 2;
/// `Session::input`: the socket of a connection closed or failed.
pub const INPUT_CLOSED: u32 = 3;
/// `Session::input`: the timer fired.
pub const INPUT_TIMEOUT: u32 = 4;

// A frame's numbers as `Session::input` reads them, written by the caller
// just before: the outputs' slots, free while an input runs.
#[cfg(feature = "session")]
const SLOT_IN_STREAM: usize = 0;
#[cfg(feature = "session")]
const SLOT_IN_SEQ: usize = 1;
#[cfg(feature = "session")]
const SLOT_IN_EPOCH: usize = 2;
#[cfg(feature = "session")]
const SLOT_IN_HEAD: usize = 3;
#[cfg(feature = "session")]
const SLOT_IN_FROM: usize = 4;
#[cfg(feature = "session")]
const SLOT_IN_TO: usize = 5;
#[cfg(feature = "session")]
const SLOT_IN_EARLIEST: usize = 6;
/// A `head` frame's `frame_limit`: a slot that only outputs of the
/// `foreign` feature use, free while an input runs.
#[cfg(feature = "session")]
const SLOT_IN_FRAME_LIMIT: usize = 12;
/// For `INPUT_CLOSED`: the close code the server sent (NaN: none).
#[cfg(feature = "session")]
const SLOT_IN_CLOSE_CODE: usize = 1;

const SLOT_KIND: usize = 0;
const SLOT_MORE: usize = 1;
const SLOT_STREAM: usize = 2;
const SLOT_A: usize = 3;
const SLOT_B: usize = 4;
const SLOT_C: usize = 5;
const SLOT_D: usize = 6;
const SLOT_DEADLINE: usize = 7;
const SLOT_FLAGS: usize = 8;
#[cfg(feature = "session")]
const SLOT_TRANSMIT: usize = 9;
#[cfg(feature = "session")]
const SLOT_CONN: usize = 10;
#[cfg(feature = "session")]
const SLOT_ARG: usize = 11;
#[cfg(feature = "foreign")]
const SLOT_SINCE: usize = 12;
#[cfg(feature = "foreign")]
const SLOT_TO: usize = 13;
#[cfg(feature = "foreign")]
const SLOT_LIMIT: usize = 14;
/// Slots 12 to 14 are used only by the `foreign` feature; the area has the
/// same size in every build, so that one JavaScript shell reads both.
const SLOTS: usize = 15;

/// The scratch area: numbers that JavaScript reads through a `Float64Array`.
type Scratch = Box<[f64; SLOTS]>;

fn new_scratch() -> Scratch {
    let mut scratch = Box::new([0.0; SLOTS]);
    scratch[SLOT_DEADLINE] = -1.0;
    scratch
}

/// Writes a stream event's kind-specific numbers and its stream into the
/// scratch area; returns its kind and payload.
fn write_event(s: &mut [f64; SLOTS], event: Event<JsValue>) -> (u32, JsValue) {
    s[SLOT_STREAM] = event.stream().to_raw() as f64;
    let none = JsValue::UNDEFINED;
    match event {
        Event::Message {
            seq,
            epoch,
            payload,
            ..
        } => {
            s[SLOT_A] = seq.get() as f64;
            s[SLOT_B] = epoch.map_or(-1.0, |e| e.0 as f64);
            (EVENT_MESSAGE, payload)
        }
        Event::Snapshot {
            seq, epoch, state, ..
        } => {
            s[SLOT_A] = seq.get() as f64;
            s[SLOT_B] = epoch.0 as f64;
            (EVENT_SNAPSHOT, state)
        }
        Event::Reset {
            reason, earliest, ..
        } => {
            s[SLOT_A] = match reason {
                ResetReason::HistoryUnavailable => 0.0,
                ResetReason::EpochChanged => 1.0,
                ResetReason::ServerBehind => 2.0,
            };
            s[SLOT_B] = earliest.map_or(-1.0, |e| e.get() as f64);
            (EVENT_RESET, none)
        }
        Event::Skipped { range, .. } => {
            s[SLOT_A] = range.start().get() as f64;
            s[SLOT_B] = range.end().get() as f64;
            (EVENT_SKIPPED, none)
        }
        Event::GapDetected { range, .. } => {
            s[SLOT_A] = range.start().get() as f64;
            s[SLOT_B] = range.end().get() as f64;
            (EVENT_GAP_DETECTED, none)
        }
        Event::GapHealed { through, .. } => {
            s[SLOT_A] = through.get() as f64;
            (EVENT_GAP_HEALED, none)
        }
        Event::Stalled {
            request, attempts, ..
        } => {
            let (code, from, to) = match request {
                StalledRequest::History(range) => {
                    (0.0, range.start().get() as f64, range.end().get() as f64)
                }
                StalledRequest::Snapshot => (1.0, -1.0, -1.0),
                StalledRequest::Subscribe => (2.0, -1.0, -1.0),
            };
            s[SLOT_A] = code;
            s[SLOT_B] = from;
            s[SLOT_C] = to;
            s[SLOT_D] = f64::from(attempts);
            (EVENT_STALLED, none)
        }
        Event::PhaseChanged { phase, .. } => {
            s[SLOT_A] = phase_code(phase);
            (EVENT_PHASE, none)
        }
    }
}

/// A stream's counters as numbers: delivered, duplicates, dropped, skipped,
/// gaps, gapsHealed, resyncs, resets, buffered, lastSeq, head, lag, epoch
/// (-1: unknown), phase (as in `EVENT_PHASE`).
fn stream_stats(stats: StreamStats) -> Vec<f64> {
    vec![
        stats.delivered as f64,
        stats.duplicates as f64,
        stats.dropped as f64,
        stats.skipped as f64,
        stats.gaps as f64,
        stats.gaps_healed as f64,
        stats.resyncs as f64,
        stats.resets as f64,
        stats.buffered as f64,
        stats.last_seq.get() as f64,
        stats.head.get() as f64,
        stats.lag as f64,
        stats.epoch.map_or(-1.0, |e| e.0 as f64),
        phase_code(stats.phase),
    ]
}

/// The sequencer's tuning from optional numbers, in the order of
/// `Core`'s constructor: window, gapTimeoutMs, requestTimeoutMs,
/// maxBackoffMs, stallAfterAttempts, maxFetch, maxStreams. Absent, negative
/// or non-finite values leave the default.
fn core_config(values: [Option<f64>; 7]) -> Config {
    let d = Config::default();
    let n = |i: usize| values[i].and_then(whole);
    let small =
        |i: usize, default: u32| n(i).map_or(default, |v| v.min(u64::from(u32::MAX)) as u32);
    Config {
        window: small(0, d.window),
        gap_timeout_ms: n(1).unwrap_or(d.gap_timeout_ms),
        request_timeout_ms: n(2).unwrap_or(d.request_timeout_ms),
        max_backoff_ms: n(3).unwrap_or(d.max_backoff_ms),
        stall_after_attempts: small(4, d.stall_after_attempts),
        max_fetch: small(5, d.max_fetch).max(1),
        max_streams: n(6).map_or(d.max_streams, count),
    }
}

fn millis(now: f64) -> Millis {
    // `as` saturates: NaN and negatives read as 0, huge values as u64::MAX.
    Millis(now as u64)
}

fn whole(value: f64) -> Option<u64> {
    (value >= 0.0 && value.is_finite()).then_some(value as u64)
}

fn count(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

fn exact(value: f64) -> Option<u64> {
    (value >= 0.0 && value <= MAX_SEQ as f64 && is_integer(value)).then_some(value as u64)
}

fn position(value: f64) -> Result<Seq, Error> {
    let raw = exact(value).ok_or(Error::SeqOutOfRange {
        seq: whole(value).unwrap_or(0),
    })?;
    Seq::new(raw)
}

fn message_seq(value: f64) -> Result<Seq, Error> {
    let raw = exact(value).ok_or(Error::SeqOutOfRange {
        seq: whole(value).unwrap_or(0),
    })?;
    Seq::message(raw)
}

fn required_epoch(value: f64) -> Result<Epoch, Error> {
    exact(value).map(Epoch).ok_or(Error::MalformedFrame {
        reason: String::new(),
    })
}

#[cfg(feature = "sequencer")]
fn optional_epoch(value: f64) -> Result<Option<Epoch>, Error> {
    if value == -1.0 {
        Ok(None)
    } else {
        required_epoch(value).map(Some)
    }
}

/// The messages of a `history` answer: `seqs[i]` is the seq of `data[i]`.
#[cfg(any(feature = "sequencer", feature = "foreign"))]
fn history_messages(seqs: Vec<f64>, data: Vec<JsValue>) -> Result<Vec<(Seq, JsValue)>, Error> {
    if seqs.len() != data.len() {
        return Err(Error::MalformedFrame {
            reason: String::new(),
        });
    }
    seqs.into_iter()
        .zip(data)
        .map(|(seq, payload)| Ok((message_seq(seq)?, payload)))
        .collect()
}

/// Whether a number in `0.0..2^64` has no fraction (`f64::fract` is std's:
/// it is not in `core`).
fn is_integer(value: f64) -> bool {
    value as u64 as f64 == value
}

fn handle_id(handle: f64) -> Option<StreamId> {
    (handle >= 0.0 && is_integer(handle) && handle < 18_446_744_073_709_551_616.0)
        .then(|| StreamId::from_raw(handle as u64))
}

/// The error for a handle that names no stream (no message: see the crate
/// docs).
#[cfg(feature = "sequencer")]
fn unknown_stream() -> Error {
    Error::UnknownStream {
        stream: String::new(),
    }
}

fn phase_code(phase: StreamPhase) -> f64 {
    match phase {
        StreamPhase::Disconnected => 0.0,
        StreamPhase::Subscribing => 1.0,
        StreamPhase::Snapshotting => 2.0,
        StreamPhase::Live => 3.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_from_javascript_are_checked() {
        assert!(message_seq(0.0).is_err());
        assert!(message_seq(1.5).is_err());
        assert!(message_seq(f64::NAN).is_err());
        assert!(message_seq(MAX_SEQ as f64 + 2.0).is_err());
        assert_eq!(message_seq(MAX_SEQ as f64).unwrap().get(), MAX_SEQ);
        assert_eq!(position(0.0).unwrap(), Seq::ZERO);
        #[cfg(feature = "sequencer")]
        {
            assert_eq!(optional_epoch(-1.0).unwrap(), None);
            assert!(optional_epoch(-2.0).is_err());
        }
        assert!(handle_id(-1.0).is_none());
        assert!(handle_id(0.5).is_none());
        assert_eq!(millis(f64::NAN), Millis(0));
        assert_eq!(millis(-5.0), Millis(0));
    }

    #[test]
    fn whole_numbers_are_told_from_fractions_without_std() {
        for whole in [
            0.0,
            1.0,
            MAX_SEQ as f64,
            9_007_199_254_740_994.0,
            18_446_744_073_709_549_568.0,
        ] {
            assert!(is_integer(whole), "{whole}");
        }
        for fraction in [0.5, 1.25, 4_503_599_627_370_495.5] {
            assert!(!is_integer(fraction), "{fraction}");
        }
        assert_eq!(handle_id(3.0), Some(StreamId::from_raw(3)));
        assert!(handle_id(18_446_744_073_709_551_616.0).is_none());
    }

    #[test]
    fn absent_or_invalid_options_keep_the_defaults() {
        let d = Config::default();
        assert_eq!(core_config([None; 7]), d);
        let c = core_config([
            Some(64.0),
            Some(f64::NAN),
            Some(-3.0),
            Some(f64::INFINITY),
            Some(2.0),
            Some(0.0),
            Some(10.0),
        ]);
        assert_eq!(c.window, 64);
        assert_eq!(c.gap_timeout_ms, d.gap_timeout_ms);
        assert_eq!(c.request_timeout_ms, d.request_timeout_ms);
        assert_eq!(c.max_backoff_ms, d.max_backoff_ms);
        assert_eq!(c.stall_after_attempts, 2);
        assert_eq!(c.max_fetch, 1, "at least one seq per fetch");
        assert_eq!(c.max_streams, 10);
    }
}
