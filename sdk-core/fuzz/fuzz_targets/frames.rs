//! Fuzz target: arbitrary bytes as protocol v1 frames (the checks are in
//! `checks/frames.rs`).

#![no_main]

#[path = "../checks/frames.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::run(data));
