//! The minimized inputs of past fuzz findings (`fuzz/regressions/`),
//! replayed as plain tests: each goes through the same checks its fuzz
//! target runs (`fuzz/checks/`), decoded the way libFuzzer hands it to the
//! target, so a finding that comes back fails `cargo test` without
//! cargo-fuzz or a nightly toolchain.

#[path = "../fuzz/checks/frames.rs"]
mod frames;
#[path = "../fuzz/checks/sequencer.rs"]
mod sequencer;

use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};

/// Every file of `fuzz/regressions/<target>`, sorted; at least one.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.map(|e| e.path()).expect("a directory entry"))
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no inputs in {}", dir.display());
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        })
        .collect()
}

#[test]
fn frames_regressions_pass_the_frames_checks() {
    for (path, bytes) in inputs("frames") {
        eprintln!("replaying {}", path.display());
        frames::run(&bytes);
    }
}

#[test]
fn sequencer_regressions_pass_the_sequencer_checks_with_and_without_offline_frames() {
    for (path, bytes) in inputs("sequencer") {
        // As libFuzzer's `fuzz_target!` decodes a typed input.
        assert!(
            bytes.len() >= sequencer::Input::size_hint(0).0,
            "{} is shorter than any input",
            path.display()
        );
        let input = sequencer::Input::arbitrary_take_rest(Unstructured::new(&bytes))
            .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
        for offline_frames in [false, true] {
            eprintln!(
                "replaying {} (offline frames: {offline_frames})",
                path.display()
            );
            sequencer::run(&input, offline_frames);
        }
    }
}
