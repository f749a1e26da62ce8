//! Cost of reading a foreign server's frame through a description
//! (`Described::read`: is it a message, its room, seq and payload as a
//! slice of the frame) against, in the same run and interleaved round by
//! round: parsing the same frame into a `serde_json::Value` (what a
//! hand-written client does), and reading the seqsync protocol's own `msg`
//! frame with the client's borrowing parser.
//!
//! `cargo bench -p seqsync --bench adapter` prints the medians per frame and
//! the ratios.

use std::hint::black_box;
use std::time::Instant;

use seqsync::adapter::{Adapter, Described, Frame, Inbound};
use seqsync_core::protocol::parse_server_frame_raw;

const FRAMES: u64 = 10_000;
const ROUNDS: usize = 15;

fn main() {
    let description = serde_json::from_str(
        r#"{"message": {"stream": {"path": "room"}, "seq": "sequence_id", "payload": "$"},
            "history": {"url": "http://h/rooms/{stream}/messages?since={since}", "messages": "messages"}}"#,
    )
    .expect("description");
    let adapter = Described::new(description).expect("usable");
    let foreign: Vec<Frame> = (1..=FRAMES)
        .map(|n| {
            Frame::new(format!(
                r#"{{"user_id":"u{}","sequence_id":{n},"message":"hello there, this is line {n}","timestamp":"2026-11-30T01:02:03Z","room":"lobby"}}"#,
                n % 7
            ))
        })
        .collect();
    let protocol: Vec<String> = (1..=FRAMES)
        .map(|n| {
            format!(
                r#"{{"type":"msg","stream":"lobby","seq":{n},"epoch":1,"data":{{"user_id":"u{}","message":"hello there, this is line {n}","timestamp":"2026-11-30T01:02:03Z"}}}}"#,
                n % 7
            )
        })
        .collect();

    // Every reader sees every frame as a message with the right seq.
    let mut seen = 0;
    for frame in &foreign {
        if let Inbound::Message { seq, .. } = adapter.read(frame) {
            seen += 1;
            assert_eq!(seq.get(), seen);
        }
    }
    assert_eq!(seen, FRAMES);

    let mut described = Vec::new();
    let mut value = Vec::new();
    let mut raw = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for frame in &foreign {
            black_box(adapter.read(black_box(frame)));
        }
        described.push(per_frame(start));
        let start = Instant::now();
        for frame in &foreign {
            let v: serde_json::Value =
                serde_json::from_str(black_box(frame.as_str())).expect("json");
            black_box(v["sequence_id"].as_u64());
        }
        value.push(per_frame(start));
        let start = Instant::now();
        for text in &protocol {
            black_box(parse_server_frame_raw(black_box(text), 1 << 20).expect("frame"));
        }
        raw.push(per_frame(start));
    }
    let (d, v, r) = (median(described), median(value), median(raw));
    println!("ns per frame, median of {ROUNDS} rounds of {FRAMES}:");
    println!("  described read (foreign frame)        {d:8.1}");
    println!(
        "  serde_json::Value (foreign frame)     {v:8.1}   described/value {:.2}",
        d / v
    );
    println!(
        "  protocol msg, borrowing parser        {r:8.1}   described/protocol {:.2}",
        d / r
    );
}

fn per_frame(start: Instant) -> f64 {
    start.elapsed().as_nanos() as f64 / FRAMES as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
