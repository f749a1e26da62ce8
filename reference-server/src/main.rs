//! seqsync-server binary.
fn main() {}
