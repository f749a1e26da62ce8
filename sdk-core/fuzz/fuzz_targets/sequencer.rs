//! Fuzz target: arbitrary operation sequences against a `Sequencer<u32>`
//! (the checks are in `checks/sequencer.rs`).
//!
//! Setting `SEQSYNC_FUZZ_OFFLINE_FRAMES=1` feeds server frames while
//! disconnected too.

#![no_main]

#[path = "../checks/sequencer.rs"]
mod checks;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn offline_frames() -> bool {
    static FLAG: OnceLock<bool> = OnceLock::new();
    *FLAG.get_or_init(|| std::env::var_os("SEQSYNC_FUZZ_OFFLINE_FRAMES").is_some())
}

fuzz_target!(|input: checks::Input| checks::run(&input, offline_frames()));
