//! Cost per message of the full adapter cycle through [`Sequencer`], with a
//! floor and two reorder-buffer baselines measured in the same run.
//!
//! Every case feeds batches of about 10,000 messages. One batch is one
//! criterion iteration and the throughput is counted per message, so
//! criterion's "thrpt" line reads as messages per second. The sequencer
//! cycle is what an adapter does for each arriving frame: `handle_message`,
//! then `poll_event` until `None`, handing each delivered message to the
//! application (here: a push onto an output `Vec`). Time is a constant, so
//! no gap timeout ever expires and the sequencer must not ask for anything;
//! this is checked after every batch.
//!
//! Implementations, all delivering into the same kind of output `Vec`:
//! - `floor`: pushes every input as it arrives, with no ordering at all.
//! - `seqsync`: the [`Sequencer`].
//! - `btreemap`: a `BTreeMap<u64, P>` holding what arrives ahead of a gap.
//! - `parked`: a `Vec` of ahead-of-gap messages scanned linearly whenever the
//!   next expected seq arrives.
//!
//! Before anything is timed, every case checks that the three sequencing
//! implementations deliver exactly the same output and that it is the
//! complete, ordered, duplicate-free sequence. After the criterion run
//! (`cargo bench`, not `cargo test`), `main` measures every implementation
//! again, interleaved round by round so that load from other processes hits
//! them alike, and prints a table of medians and ratios, plus the resident
//! memory of idle streams.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use seqsync_core::{
    Config, Epoch, Event, Millis, Seq, Sequencer, StartAt, StreamId, SubscribeOptions,
};

/// Constant time: no gap timeout can expire, so nothing may be requested.
const NOW: Millis = Millis(1_000);
const EPOCH: Epoch = Epoch(1);
/// Messages per batch (one criterion iteration).
const BATCH: usize = 10_000;
const STREAMS: usize = 1_000;
/// Samples per implementation in the final table.
const ROUNDS: usize = 101;

// ---- inputs -------------------------------------------------------------------

/// Deterministic generator (splitmix64): the inputs are the same on every run.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n small; the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent` / 100.
    fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A message payload: built from a tag so that outputs can be compared.
trait Payload: Copy + PartialEq + Debug + 'static {
    fn make(tag: u64) -> Self;
    fn words(&self) -> &[u64];
}

impl Payload for u64 {
    fn make(tag: u64) -> u64 {
        tag
    }

    fn words(&self) -> &[u64] {
        std::slice::from_ref(self)
    }
}

/// A heavier payload: 64 bytes moved through every queue.
type Heavy = [u64; 8];

impl Payload for Heavy {
    fn make(tag: u64) -> Heavy {
        let mut out = [0u64; 8];
        for (i, word) in out.iter_mut().enumerate() {
            *word = tag.rotate_left(8 * i as u32) ^ i as u64;
        }
        out
    }

    fn words(&self) -> &[u64] {
        self
    }
}

/// One arriving message. `seq` is relative to the batch: batch `k` sends
/// `k * span + seq`, so every batch continues the streams where the previous
/// one stopped.
#[derive(Clone, Copy)]
struct Msg<P> {
    stream: u32,
    seq: u64,
    payload: P,
}

/// A batch of arrivals over `streams` streams; each stream advances by
/// exactly `span` seqs per batch and every batch covers them completely.
struct Input<P> {
    msgs: Vec<Msg<P>>,
    span: u64,
    streams: usize,
}

fn tag(stream: u32, seq: u64) -> u64 {
    SplitMix64((u64::from(stream) << 40) ^ seq).next_u64()
}

fn msg<P: Payload>(stream: u32, seq: u64) -> Msg<P> {
    Msg {
        stream,
        seq,
        payload: P::make(tag(stream, seq)),
    }
}

/// Seqs 1..=n in order on one stream.
fn in_order<P: Payload>(n: usize) -> Input<P> {
    Input {
        msgs: (1..=n as u64).map(|s| msg(0, s)).collect(),
        span: n as u64,
        streams: 1,
    }
}

/// Seqs 1..=n on one stream where `percent`% of the messages arrive late,
/// each behind the next 1..=`max_delay` messages.
fn reordered<P: Payload>(n: usize, percent: u64, max_delay: u64, seed: u64) -> Input<P> {
    let mut rng = SplitMix64(seed);
    let mut keyed: Vec<(u64, u64)> = (1..=n as u64)
        .map(|s| {
            // A late message sorts right after the one `delay` places later.
            let key = if rng.percent(percent) {
                (s + 1 + rng.below(max_delay)) * 2 + 1
            } else {
                s * 2
            };
            (key, s)
        })
        .collect();
    keyed.sort_by_key(|&(key, _)| key);
    Input {
        msgs: keyed.into_iter().map(|(_, s)| msg(0, s)).collect(),
        span: n as u64,
        streams: 1,
    }
}

/// `n` arrivals on one stream, in order, where `percent`% of them repeat one
/// of the last 8 seqs already sent.
fn duplicated<P: Payload>(n: usize, percent: u64, seed: u64) -> Input<P> {
    let mut rng = SplitMix64(seed);
    let mut msgs = Vec::with_capacity(n);
    let mut last = 0u64;
    while msgs.len() < n {
        if last > 0 && rng.percent(percent) {
            msgs.push(msg(0, last - rng.below(last.min(8))));
        } else {
            last += 1;
            msgs.push(msg(0, last));
        }
    }
    Input {
        msgs,
        span: last,
        streams: 1,
    }
}

/// `streams` streams, each in order with `per_stream` messages per batch,
/// randomly interleaved.
fn interleaved<P: Payload>(streams: usize, per_stream: usize, seed: u64) -> Input<P> {
    let mut rng = SplitMix64(seed);
    let mut order: Vec<u32> = (0..streams as u32)
        .flat_map(|s| std::iter::repeat_n(s, per_stream))
        .collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut next = vec![0u64; streams];
    let msgs = order
        .into_iter()
        .map(|stream| {
            next[stream as usize] += 1;
            msg(stream, next[stream as usize])
        })
        .collect();
    Input {
        msgs,
        span: per_stream as u64,
        streams,
    }
}

// ---- implementations ------------------------------------------------------------

/// One implementation fed batch after batch of the same input pattern.
trait Runner {
    /// Feeds one batch; returns how many messages were delivered.
    fn batch(&mut self) -> usize;
    /// What the last batch delivered, as `(seq, payload)` in delivery order.
    fn delivered(&self) -> Vec<(u64, u64)>;
}

/// Reduces a payload to one number for output comparison.
fn fingerprint<P: Payload>(payload: &P) -> u64 {
    payload
        .words()
        .iter()
        .fold(0, |acc, w| acc.rotate_left(7) ^ w)
}

struct Common<P> {
    input: Input<P>,
    base: u64,
    out: Vec<(u64, P)>,
}

impl<P: Payload> Common<P> {
    fn new(input: Input<P>) -> Common<P> {
        let out = Vec::with_capacity(input.msgs.len());
        Common {
            input,
            base: 0,
            out,
        }
    }

    fn delivered(&self) -> Vec<(u64, u64)> {
        self.out.iter().map(|(s, p)| (*s, fingerprint(p))).collect()
    }
}

/// The floor: every arrival pushed as is.
struct Floor<P>(Common<P>);

impl<P: Payload> Runner for Floor<P> {
    fn batch(&mut self) -> usize {
        let c = &mut self.0;
        c.out.clear();
        for m in &c.input.msgs {
            c.out.push((c.base + m.seq, m.payload));
        }
        c.base += c.input.span;
        c.out.len()
    }

    fn delivered(&self) -> Vec<(u64, u64)> {
        self.0.delivered()
    }
}

/// The sequencer, through the cycle an adapter runs for every frame.
struct Seqsync<P> {
    common: Common<P>,
    core: Sequencer<P>,
    ids: Vec<StreamId>,
    /// Use `handle_message_direct`, which hands an in-order message straight
    /// back instead of queueing it as an event.
    direct: bool,
}

impl<P: Payload> Seqsync<P> {
    fn new(input: Input<P>, direct: bool) -> Seqsync<P> {
        let mut core = Sequencer::new(Config::default());
        core.handle_connected(NOW);
        let options = SubscribeOptions {
            start: StartAt::After {
                seq: Seq::ZERO,
                epoch: Some(EPOCH),
            },
            ..SubscribeOptions::default()
        };
        let ids: Vec<StreamId> = (0..input.streams)
            .map(|i| {
                let id = core
                    .subscribe(NOW, &format!("stream-{i}"), options)
                    .expect("fresh stream name");
                core.handle_subscribed(NOW, id, EPOCH, Seq::ZERO)
                    .expect("subscribed stream");
                id
            })
            .collect();
        while core.poll_request().is_some() {}
        while core.poll_event().is_some() {}
        assert_eq!(core.poll_timeout(), None, "setup leaves no timer");
        Seqsync {
            common: Common::new(input),
            core,
            ids,
            direct,
        }
    }
}

impl<P: Payload> Runner for Seqsync<P> {
    fn batch(&mut self) -> usize {
        let c = &mut self.common;
        c.out.clear();
        for m in &c.input.msgs {
            let seq = Seq::message(c.base + m.seq).expect("seq in range");
            let id = self.ids[m.stream as usize];
            if self.direct {
                let now = self
                    .core
                    .handle_message_direct(NOW, id, seq, Some(EPOCH), m.payload)
                    .expect("known stream, valid seq");
                if let Some(payload) = now {
                    c.out.push((seq.get(), payload));
                    continue;
                }
            } else {
                self.core
                    .handle_message(NOW, id, seq, Some(EPOCH), m.payload)
                    .expect("known stream, valid seq");
            }
            while let Some(event) = self.core.poll_event() {
                if let Event::Message { seq, payload, .. } = event {
                    c.out.push((seq.get(), payload));
                }
            }
        }
        // Requests are only ever taken here, so one check covers the batch.
        assert!(
            self.core.poll_request().is_none(),
            "no request may be issued before a gap timeout expires"
        );
        c.base += c.input.span;
        c.out.len()
    }

    fn delivered(&self) -> Vec<(u64, u64)> {
        self.common.delivered()
    }
}

/// Reorder buffer on a `BTreeMap`: delivers in order, holds what is ahead of
/// the gap, drops duplicates.
struct BTreeStream<P> {
    next: u64,
    ahead: BTreeMap<u64, P>,
}

impl<P> BTreeStream<P> {
    fn new() -> BTreeStream<P> {
        BTreeStream {
            next: 1,
            ahead: BTreeMap::new(),
        }
    }

    #[inline]
    fn push(&mut self, seq: u64, payload: P, out: &mut Vec<(u64, P)>) {
        if seq == self.next {
            out.push((seq, payload));
            self.next += 1;
            while let Some(entry) = self.ahead.first_entry() {
                if *entry.key() != self.next {
                    break;
                }
                out.push((self.next, entry.remove()));
                self.next += 1;
            }
        } else if seq > self.next {
            self.ahead.entry(seq).or_insert(payload);
        }
    }
}

struct BTree<P> {
    common: Common<P>,
    streams: Vec<BTreeStream<P>>,
}

impl<P: Payload> Runner for BTree<P> {
    fn batch(&mut self) -> usize {
        let c = &mut self.common;
        c.out.clear();
        for m in &c.input.msgs {
            self.streams[m.stream as usize].push(c.base + m.seq, m.payload, &mut c.out);
        }
        c.base += c.input.span;
        c.out.len()
    }

    fn delivered(&self) -> Vec<(u64, u64)> {
        self.common.delivered()
    }
}

/// The "parked list": ahead-of-gap messages in a `Vec`, scanned linearly
/// every time the next expected seq arrives.
struct ParkedStream<P> {
    next: u64,
    parked: Vec<(u64, P)>,
}

impl<P> ParkedStream<P> {
    fn new() -> ParkedStream<P> {
        ParkedStream {
            next: 1,
            parked: Vec::new(),
        }
    }

    #[inline]
    fn push(&mut self, seq: u64, payload: P, out: &mut Vec<(u64, P)>) {
        if seq == self.next {
            out.push((seq, payload));
            self.next += 1;
            while let Some(i) = self.parked.iter().position(|(s, _)| *s == self.next) {
                let (s, p) = self.parked.swap_remove(i);
                out.push((s, p));
                self.next += 1;
            }
        } else if seq > self.next && !self.parked.iter().any(|(s, _)| *s == seq) {
            self.parked.push((seq, payload));
        }
    }
}

struct Parked<P> {
    common: Common<P>,
    streams: Vec<ParkedStream<P>>,
}

impl<P: Payload> Runner for Parked<P> {
    fn batch(&mut self) -> usize {
        let c = &mut self.common;
        c.out.clear();
        for m in &c.input.msgs {
            self.streams[m.stream as usize].push(c.base + m.seq, m.payload, &mut c.out);
        }
        c.base += c.input.span;
        c.out.len()
    }

    fn delivered(&self) -> Vec<(u64, u64)> {
        self.common.delivered()
    }
}

// ---- cases ----------------------------------------------------------------------

const IMPLS: [&str; 5] = ["seqsync", "floor", "btreemap", "parked", "direct"];

/// One workload: builds a fresh runner per implementation.
struct Case {
    name: &'static str,
    /// Messages per batch (arrivals, duplicates included).
    len: usize,
    make: fn(&str) -> Box<dyn Runner>,
}

fn runner<P: Payload>(which: &str, input: Input<P>) -> Box<dyn Runner> {
    let streams = input.streams;
    match which {
        "seqsync" => Box::new(Seqsync::new(input, false)),
        "direct" => Box::new(Seqsync::new(input, true)),
        "floor" => Box::new(Floor(Common::new(input))),
        "btreemap" => Box::new(BTree {
            common: Common::new(input),
            streams: (0..streams).map(|_| BTreeStream::new()).collect(),
        }),
        "parked" => Box::new(Parked {
            common: Common::new(input),
            streams: (0..streams).map(|_| ParkedStream::new()).collect(),
        }),
        other => unreachable!("unknown implementation {other}"),
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "in_order",
            len: BATCH,
            make: |w| runner(w, in_order::<u64>(BATCH)),
        },
        Case {
            name: "reorder_10pct",
            len: BATCH,
            make: |w| runner(w, reordered::<u64>(BATCH, 10, 8, 0x5eed_0001)),
        },
        Case {
            name: "duplicates_5pct",
            len: BATCH,
            make: |w| runner(w, duplicated::<u64>(BATCH, 5, 0x5eed_0002)),
        },
        Case {
            name: "streams_1000",
            len: BATCH,
            make: |w| runner(w, interleaved::<u64>(STREAMS, BATCH / STREAMS, 0x5eed_0003)),
        },
        Case {
            name: "in_order_64B",
            len: BATCH,
            make: |w| runner(w, in_order::<Heavy>(BATCH)),
        },
        Case {
            name: "reorder_10pct_64B",
            len: BATCH,
            make: |w| runner(w, reordered::<Heavy>(BATCH, 10, 8, 0x5eed_0001)),
        },
    ]
}

/// Checks, before any timing, that the sequencing implementations agree and
/// deliver each stream's seqs exactly once, in order, with their payloads.
fn verify(case: &Case) {
    let mut runners: Vec<Box<dyn Runner>> = IMPLS.iter().map(|w| (case.make)(w)).collect();
    for _ in 0..3 {
        let counts: Vec<usize> = runners.iter_mut().map(|r| r.batch()).collect();
        let outputs: Vec<Vec<(u64, u64)>> = runners.iter().map(|r| r.delivered()).collect();
        let (seqsync, floor) = (&outputs[0], &outputs[1]);
        assert_eq!(counts[0], seqsync.len());
        for (name, output) in IMPLS.iter().zip(&outputs).skip(2) {
            assert_eq!(
                output, seqsync,
                "{}: {name} differs from seqsync",
                case.name
            );
        }
        // Each stream's seqs must be exactly its distinct arrivals, ascending.
        let mut expected: Vec<(u64, u64)> = floor.clone();
        expected.sort_unstable();
        expected.dedup();
        let mut got = seqsync.clone();
        got.sort_unstable();
        assert_eq!(
            got, expected,
            "{}: not every message delivered once",
            case.name
        );
        if !case.name.starts_with("streams") {
            assert!(
                seqsync.windows(2).all(|w| w[1].0 == w[0].0 + 1),
                "{}: one stream must come out contiguous",
                case.name
            );
        }
    }
}

/// In the interleaved case the floor's arrival order is already the order of
/// every stream, so the sequencer must reproduce it exactly.
fn verify_interleaved_order() {
    let case = &cases()[3];
    let mut seqsync = (case.make)("seqsync");
    let mut floor = (case.make)("floor");
    seqsync.batch();
    floor.batch();
    assert_eq!(seqsync.delivered(), floor.delivered());
}

// ---- criterion ------------------------------------------------------------------

fn bench_cases(c: &mut Criterion, cases: &[Case]) {
    for case in cases {
        let mut group = c.benchmark_group(case.name);
        group.throughput(Throughput::Elements(case.len as u64));
        for which in IMPLS {
            let mut runner = (case.make)(which);
            group.bench_function(BenchmarkId::from_parameter(which), |b| {
                b.iter(|| black_box(runner.batch()))
            });
        }
        group.finish();
    }
}

// ---- the ratio table --------------------------------------------------------------

/// Median ns per message of each implementation, measured round-robin.
fn measure(case: &Case, rounds: usize, batches_per_sample: usize) -> Vec<f64> {
    let mut runners: Vec<Box<dyn Runner>> = IMPLS.iter().map(|w| (case.make)(w)).collect();
    for r in &mut runners {
        for _ in 0..batches_per_sample {
            black_box(r.batch());
        }
    }
    let mut samples = vec![Vec::with_capacity(rounds); runners.len()];
    for _ in 0..rounds {
        for (r, s) in runners.iter_mut().zip(&mut samples) {
            let start = Instant::now();
            for _ in 0..batches_per_sample {
                black_box(r.batch());
            }
            let ns = start.elapsed().as_nanos() as f64;
            s.push(ns / (batches_per_sample * case.len) as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
}

/// Resident set size of this process, from /proc (Linux only).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Resident bytes per idle stream: `n` streams subscribed, live and caught
/// up, in one sequencer. Includes everything the sequencer keeps per stream
/// (slot, name, name index), amortized over the collections' spare capacity.
fn idle_stream_bytes(n: usize) -> Option<f64> {
    let before = resident_bytes()?;
    let mut core = Sequencer::<u64>::new(Config {
        max_streams: n,
        ..Config::default()
    });
    core.handle_connected(NOW);
    let options = SubscribeOptions {
        start: StartAt::After {
            seq: Seq::ZERO,
            epoch: Some(EPOCH),
        },
        ..SubscribeOptions::default()
    };
    for i in 0..n {
        let id = core
            .subscribe(NOW, &format!("room:{i:06}"), options)
            .expect("fresh stream name");
        core.handle_subscribed(NOW, id, EPOCH, Seq::ZERO)
            .expect("subscribed stream");
        // Drained as an adapter would, so the queues stay small.
        while core.poll_request().is_some() {}
        while core.poll_event().is_some() {}
    }
    assert_eq!(core.len(), n);
    let after = resident_bytes()?;
    black_box(&core);
    Some(after.saturating_sub(before) as f64 / n as f64)
}

fn print_table(cases: &[Case], idle_measured: Option<f64>) {
    println!();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "Medians of {ROUNDS} interleaved one-batch samples, ns per message ({BATCH} messages per batch); load average: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!();
    println!(
        "| case | seqsync | direct | floor | btreemap | parked | seqsync / floor | direct / floor | btreemap / seqsync | btreemap / direct |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut results = Vec::new();
    for case in cases {
        let m = measure(case, ROUNDS, 1);
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}x | {:.2}x | {:.2}x | {:.2}x |",
            case.name,
            m[0],
            m[4],
            m[1],
            m[2],
            m[3],
            m[0] / m[1],
            m[4] / m[1],
            m[2] / m[0],
            m[2] / m[4]
        );
        results.push((case.name, m));
    }
    println!();
    let get = |name: &str| {
        results
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| m.clone())
    };
    if let Some(m) = get("in_order") {
        let (ns, ratio) = (m[0], m[0] / m[1]);
        let (direct_ns, direct_ratio) = (m[4], m[4] / m[1]);
        println!(
            "target in order <= 15 ns/msg: {:.2} ns (direct {:.2} ns) -> {}",
            ns,
            direct_ns,
            verdict(ns <= 15.0)
        );
        println!(
            "target in order <= 3x floor: {:.2}x (direct {:.2}x) -> {} ({} with direct delivery)",
            ratio,
            direct_ratio,
            verdict(ratio <= 3.0),
            verdict(direct_ratio <= 3.0)
        );
    }
    if let Some(m) = get("reorder_10pct") {
        let (ns, speedup) = (m[0].min(m[4]), m[2] / m[0].min(m[4]));
        println!(
            "target 10% reorder <= 40 ns/msg: {:.2} ns -> {}",
            ns,
            verdict(ns <= 40.0)
        );
        println!(
            "target 10% reorder >= 3x faster than btreemap: {:.2}x -> {}",
            speedup,
            verdict(speedup >= 3.0)
        );
    }
    let (state, total) = seqsync_core::idle_stream_bytes::<u64>("room:42");
    let with_heap = state + 2 * std::mem::size_of::<usize>() + "room:42".len();
    println!(
        "target idle stream state <= 128 bytes: slot {state} bytes -> {}; slot + its name allocation {with_heap} bytes -> {}; core's estimate with name index {total} bytes",
        verdict(state <= 128),
        verdict(with_heap <= 128)
    );
    match idle_measured {
        Some(bytes) => println!(
            "idle streams measured: {bytes:.0} resident bytes per stream in a sequencer of 100000 (slots, names, name index, spare capacity)"
        ),
        None => println!("idle streams measured: /proc/self/statm unavailable"),
    }
    let mut probe = Seqsync::new(reordered::<u64>(BATCH, 10, 8, 0x5eed_0001), false);
    probe.batch();
    let stats = probe.core.stats(probe.ids[0]).expect("subscribed stream");
    println!(
        "reorder_10pct, one batch: {} gaps detected and healed, {} still buffered, {} requests",
        stats.gaps, stats.buffered, stats.resyncs
    );
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benchmarking = args.iter().any(|a| a == "--bench")
        && !args
            .iter()
            .any(|a| a == "--test" || a == "--list" || a.starts_with("--profile-time"));
    // First, while the heap holds nothing freed that the streams could reuse.
    let idle_measured = if benchmarking {
        idle_stream_bytes(100_000)
    } else {
        None
    };

    let cases = cases();
    for case in &cases {
        verify(case);
    }
    verify_interleaved_order();

    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(400))
        .measurement_time(Duration::from_millis(1_500))
        .configure_from_args();
    bench_cases(&mut criterion, &cases);
    criterion.final_summary();

    if benchmarking {
        print_table(&cases, idle_measured);
    }
}
