//! The `sequencer` fuzz target's checks: arbitrary operation sequences
//! against a `Sequencer<u32>`. Shared by the fuzz target
//! (`fuzz_targets/sequencer.rs`) and the replay of `regressions/sequencer`
//! in `sdk-core/tests/fuzz_regressions.rs`.
//!
//! The input drives a small sequencer (window 16, three stream names)
//! through subscribes, connection changes, server frames with any seq and
//! epoch, answers to the requests it made, and time moving forward. After
//! every operation all outputs are drained and checked against the contract:
//!
//! - nothing panics; a rejected input changes nothing and emits nothing;
//! - per `Ordered` stream, `Message` seqs are contiguous except across
//!   `Skipped` ranges or a `Reset` followed by a `Snapshot`; a `Latest`
//!   stream only moves forward between snapshots; every payload is the one
//!   sent with its seq;
//! - `stats` agrees with what was delivered, `buffered` stays within the
//!   reorder window plus the snapshot hold limit, phases match the events;
//! - requests are well formed, go out only while connected, ask only for
//!   undelivered seqs inside the window, and encode as valid client frames;
//! - right after `handle_timeout(now)` the next deadline lies after `now`,
//!   and a second `handle_timeout(now)` sends nothing (no hot loop);
//! - a `Settle` operation plays a perfect server until the sequencer goes
//!   quiet: every connected `Ordered` stream must then be live with nothing
//!   missing or held.
//!
//! Server frames are fed only while connected, as an adapter does, unless
//! `offline_frames` is set: then they are fed while disconnected too.

use std::collections::HashMap;

use arbitrary::Arbitrary;
use seqsync_core::protocol::{ClientFrame, parse_client_frame};
use seqsync_core::{
    Config, DeliveryMode, Epoch, Error, Event, MAX_SEQ, Millis, Request, ResetReason, Seq,
    SeqRange, Sequencer, StartAt, StreamId, StreamPhase, SubscribeOptions,
};

const NAMES: [&str; 3] = ["a", "b", "c"];
const WINDOW: u32 = 16;
const MAX_FETCH: u32 = 8;
const MAX_OPS: usize = 256;
/// Rounds of a `Settle` before the sequencer must be quiet.
const SETTLE_ROUNDS: usize = 200;
/// A stream must catch up in a `Settle` when at most this far behind.
const SETTLE_LAG: u64 = 64;

fn config() -> Config {
    Config {
        window: WINDOW,
        gap_timeout_ms: 100,
        request_timeout_ms: 200,
        max_backoff_ms: 1_600,
        stall_after_attempts: 3,
        max_fetch: MAX_FETCH,
        max_streams: 8,
    }
}

/// A seq chosen relative to the stream's state, so that the interesting
/// neighbourhoods (just delivered, just ahead, around the window edge, the
/// head, the protocol limit) are easy to reach.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum SeqSpec {
    /// `last_seq + 1 + delta`.
    Next(i8),
    /// `head + delta`.
    Head(i8),
    Small(u8),
    /// `MAX_SEQ - n`.
    NearMax(u8),
    /// Anything, including 0 and values above `MAX_SEQ`.
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Subscribe {
        stream: u8,
        after: Option<(SeqSpec, Option<u8>)>,
        latest: bool,
    },
    Unsubscribe {
        stream: u8,
    },
    Connected,
    Disconnected,
    Message {
        stream: u8,
        seq: SeqSpec,
        epoch: Option<u8>,
    },
    /// `count` consecutive messages from `first`, in an order picked by `shuffle`.
    Burst {
        stream: u8,
        first: SeqSpec,
        count: u8,
        shuffle: u64,
    },
    Snapshot {
        stream: u8,
        seq: SeqSpec,
        epoch: u8,
        state: u32,
    },
    Subscribed {
        stream: u8,
        epoch: u8,
        head: SeqSpec,
    },
    History {
        stream: u8,
        from: SeqSpec,
        len: u8,
        epoch: Option<u8>,
        messages: Vec<SeqSpec>,
    },
    Head {
        stream: u8,
        head: SeqSpec,
        epoch: Option<u8>,
    },
    Reset {
        stream: u8,
        reason: u8,
        earliest: Option<SeqSpec>,
    },
    /// Answers one request the sequencer made.
    Answer {
        pick: u8,
        /// Bit `i % 64` set: seq `from + i` is left out (skipped).
        missing: u64,
        /// Nonzero: only the first `cut` seqs are covered (a page).
        cut: u8,
        epoch: Option<u8>,
        head: i8,
    },
    /// Time moves forward; timers fire at their deadlines.
    Sleep {
        ms: u16,
    },
    /// Time moves forward and the timer fires late.
    LateTimeout {
        ms: u16,
    },
    /// A perfect server answers everything until the sequencer is quiet.
    Settle,
}

/// One fuzz input: the operations, in order.
#[derive(Arbitrary, Debug)]
pub struct Input {
    ops: Vec<Op>,
}

/// Runs the first operations of `input` (at most 256) against a fresh
/// sequencer, checking the contract after each; panics on a violation.
/// With `offline_frames`, server frames are fed while disconnected too.
pub fn run(input: &Input, offline_frames: bool) {
    let mut harness = Harness::new(offline_frames);
    for op in input.ops.iter().take(MAX_OPS) {
        harness.op(op);
    }
}

/// What the application has seen of one stream.
#[derive(Debug)]
struct Model {
    id: StreamId,
    mode: DeliveryMode,
    /// Position delivered so far; `None` while a snapshot is awaited.
    last: Option<u64>,
    /// A `Snapshot` event may come (first one, or after a `Reset`).
    snapshot_ok: bool,
    phase: StreamPhase,
}

struct Harness {
    seq: Sequencer<u32>,
    now: Millis,
    models: HashMap<&'static str, Model>,
    /// Handles of unsubscribed streams.
    stale: Vec<StreamId>,
    /// Requests sent on the current connection and not answered yet.
    outstanding: Vec<Request>,
    /// Per name, the highest seq any server input mentioned: the head the
    /// perfect server of `Settle` answers with.
    server_head: HashMap<&'static str, u64>,
    /// Per name, history ranges in flight and when each was sent.
    inflight: HashMap<&'static str, Vec<(SeqRange, Millis)>>,
    /// Set while a reordering that must heal without any request is fed.
    quiet: bool,
    /// Set while the perfect server answers: nothing may reset then.
    settling: bool,
    /// Per name, recent history answers: their range and the seqs they held.
    /// Only seqs an answer covered without holding may be skipped.
    absent: HashMap<&'static str, Vec<(SeqRange, Vec<u64>)>>,
    /// Server frames are fed while disconnected too.
    offline_frames: bool,
}

fn epoch_of(e: u8) -> Epoch {
    Epoch(u64::from(e % 3) + 1)
}

fn name_of(stream: u8) -> &'static str {
    NAMES[usize::from(stream) % NAMES.len()]
}

impl Harness {
    fn new(offline_frames: bool) -> Harness {
        Harness {
            seq: Sequencer::new(config()),
            now: Millis(0),
            models: HashMap::new(),
            stale: Vec::new(),
            outstanding: Vec::new(),
            server_head: HashMap::new(),
            inflight: HashMap::new(),
            quiet: false,
            settling: false,
            absent: HashMap::new(),
            offline_frames,
        }
    }

    fn resolve(&self, id: Option<StreamId>, spec: SeqSpec) -> u64 {
        let stats = id.and_then(|id| self.seq.stats(id));
        let (last, head) = stats.map_or((0, 0), |s| (s.last_seq.get(), s.head.get()));
        match spec {
            SeqSpec::Next(d) => (last + 1).saturating_add_signed(i64::from(d)),
            SeqSpec::Head(d) => head.saturating_add_signed(i64::from(d)),
            SeqSpec::Small(n) => u64::from(n),
            SeqSpec::NearMax(n) => MAX_SEQ - u64::from(n),
            SeqSpec::Raw(v) => v,
        }
    }

    fn saw(&mut self, stream: u8, seq: u64) {
        let head = self.server_head.entry(name_of(stream)).or_insert(0);
        *head = (*head).max(seq.min(MAX_SEQ));
    }

    /// The head the perfect server claims for a stream.
    fn head_of(&self, name: &str, id: StreamId) -> Seq {
        let seen = self.server_head.get(name).copied().unwrap_or(0);
        let known = self.seq.stats(id).map_or(0, |s| s.head.get());
        Seq::new(seen.max(known)).expect("both at most MAX_SEQ")
    }

    /// A valid seq, or `None` after checking that the value is refused.
    fn seq_value(&self, id: Option<StreamId>, spec: SeqSpec) -> Option<Seq> {
        let v = self.resolve(id, spec);
        match Seq::new(v) {
            Ok(s) => Some(s),
            Err(e) => {
                assert!(v > MAX_SEQ, "Seq::new({v}) refused: {e}");
                assert_eq!(e, Error::SeqOutOfRange { seq: v });
                None
            }
        }
    }

    /// The handle to use for `stream`: the live one, else a stale one (whose
    /// every call must fail), else none. `None` also while disconnected,
    /// unless offline frames are on.
    fn target(&self, stream: u8) -> Option<(StreamId, bool)> {
        if !self.seq.is_connected() && !self.offline_frames {
            return None;
        }
        let name = name_of(stream);
        match self.models.get(name) {
            Some(m) => Some((m.id, true)),
            None => self
                .stale
                .get(usize::from(stream) % self.stale.len().max(1))
                .map(|&id| (id, false)),
        }
    }

    /// Checks the result of one input: a stale handle is refused, a refused
    /// input emits nothing.
    fn after_input(&mut self, live: bool, result: Result<(), Error>) {
        match result {
            Ok(()) => assert!(live, "a stale handle was accepted"),
            Err(e) => {
                if !live {
                    assert!(matches!(e, Error::UnknownStream { .. }), "{e:?}");
                }
                assert!(
                    self.seq.poll_request().is_none(),
                    "refused input sent {e:?}"
                );
                assert!(
                    self.seq.poll_event().is_none(),
                    "refused input emitted {e:?}"
                );
            }
        }
        self.drain();
    }

    fn op(&mut self, op: &Op) {
        match *op {
            Op::Subscribe {
                stream,
                after,
                latest,
            } => {
                let name = name_of(stream);
                let existing = self.models.get(name).map(|m| m.id);
                let start = match after {
                    None => StartAt::Snapshot,
                    Some((spec, epoch)) => match self.seq_value(existing, spec) {
                        Some(seq) => StartAt::After {
                            seq,
                            epoch: epoch.map(epoch_of),
                        },
                        None => return,
                    },
                };
                let mode = if latest {
                    DeliveryMode::Latest
                } else {
                    DeliveryMode::Ordered
                };
                let result = self
                    .seq
                    .subscribe(self.now, name, SubscribeOptions { start, mode });
                match (existing, result) {
                    (Some(_), Err(Error::AlreadySubscribed { .. })) => {
                        assert!(self.seq.poll_request().is_none());
                    }
                    (None, Ok(id)) => {
                        let last = match start {
                            StartAt::Snapshot => None,
                            StartAt::After { seq, .. } => Some(seq.get()),
                        };
                        self.models.insert(
                            name,
                            Model {
                                id,
                                mode,
                                last,
                                snapshot_ok: last.is_none(),
                                phase: StreamPhase::Disconnected,
                            },
                        );
                    }
                    (existing, result) => {
                        panic!("subscribe {name} (existing {existing:?}) gave {result:?}")
                    }
                }
                self.drain();
            }
            Op::Unsubscribe { stream } => {
                let name = name_of(stream);
                if let Some(model) = self.models.remove(name) {
                    self.seq
                        .unsubscribe(self.now, model.id)
                        .expect("unsubscribe of a live handle");
                    assert!(self.seq.stats(model.id).is_none());
                    assert!(self.seq.stream_id(name).is_none());
                    self.outstanding.retain(|r| request_stream(r) != name);
                    self.inflight.remove(name);
                    self.absent.remove(name);
                    if self.stale.len() < 4 {
                        self.stale.push(model.id);
                    }
                    self.drain();
                } else if let Some(&id) = self.stale.first() {
                    assert!(matches!(
                        self.seq.unsubscribe(self.now, id),
                        Err(Error::UnknownStream { .. })
                    ));
                    self.drain();
                }
            }
            Op::Connected => {
                // A new connection: answers to earlier requests cannot come.
                self.outstanding.clear();
                self.inflight.clear();
                self.seq.handle_connected(self.now);
                self.drain();
            }
            Op::Disconnected => {
                self.outstanding.clear();
                self.inflight.clear();
                self.seq.handle_disconnected(self.now);
                self.drain();
                for (name, m) in &self.models {
                    assert_eq!(
                        self.seq.phase(m.id),
                        Some(StreamPhase::Disconnected),
                        "{name}"
                    );
                }
            }
            Op::Message { stream, seq, epoch } => {
                let Some((id, live)) = self.target(stream) else {
                    return;
                };
                let Some(seq) = self.seq_value(Some(id), seq) else {
                    return;
                };
                self.saw(stream, seq.get());
                let result =
                    self.seq
                        .handle_message(self.now, id, seq, epoch.map(epoch_of), payload(seq));
                if seq.get() == 0 {
                    assert_eq!(result, Err(Error::SeqOutOfRange { seq: 0 }));
                }
                self.after_input(live || seq.get() == 0, result);
            }
            Op::Burst {
                stream,
                first,
                count,
                shuffle,
            } => {
                let Some((id, live)) = self.target(stream) else {
                    return;
                };
                let first = self.resolve(Some(id), first).max(1);
                let count = u64::from(count % 40) + 1;
                let mut seqs: Vec<u64> = (first..first.saturating_add(count))
                    .filter(|&s| s <= MAX_SEQ)
                    .collect();
                let mut bits = shuffle;
                for i in (1..seqs.len()).rev() {
                    let j = (bits % (i as u64 + 1)) as usize;
                    bits = bits.rotate_right(7) ^ 0x9e37_79b9_7f4a_7c15;
                    seqs.swap(i, j);
                }
                // A shuffled block right after the last delivered seq of a
                // stream with nothing missing heals within the window, with
                // no request, and is delivered in full.
                let before = self.seq.stats(id).filter(|_| live);
                let heals = before.as_ref().is_some_and(|b| {
                    b.phase == StreamPhase::Live
                        && b.lag == 0
                        && b.buffered == 0
                        && first == b.last_seq.get() + 1
                        && count <= u64::from(WINDOW)
                        && seqs.len() as u64 == count
                });
                self.quiet = heals;
                for s in seqs {
                    self.saw(stream, s);
                    let seq = Seq::new(s).expect("checked above");
                    let result = self
                        .seq
                        .handle_message(self.now, id, seq, None, payload(seq));
                    self.after_input(live, result);
                }
                self.quiet = false;
                if heals {
                    let after = self.seq.stats(id).expect("live handle");
                    assert_eq!(after.last_seq.get(), first + count - 1, "{after:?}");
                    assert_eq!(after.buffered, 0, "{after:?}");
                }
            }
            Op::Snapshot {
                stream,
                seq,
                epoch,
                state,
            } => {
                let Some((id, live)) = self.target(stream) else {
                    return;
                };
                let Some(seq) = self.seq_value(Some(id), seq) else {
                    return;
                };
                self.saw(stream, seq.get());
                let result = self
                    .seq
                    .handle_snapshot(self.now, id, seq, epoch_of(epoch), state);
                self.after_input(live, result);
            }
            Op::Subscribed {
                stream,
                epoch,
                head,
            } => {
                let Some((id, live)) = self.target(stream) else {
                    return;
                };
                let Some(head) = self.seq_value(Some(id), head) else {
                    return;
                };
                self.saw(stream, head.get());
                let result = self
                    .seq
                    .handle_subscribed(self.now, id, epoch_of(epoch), head);
                self.after_input(live, result);
            }
            Op::History {
                stream,
                from,
                len,
                epoch,
                ref messages,
            } => {
                let Some((id, live)) = self.target(stream) else {
                    return;
                };
                let from = self.resolve(Some(id), from);
                let to = from.saturating_add(u64::from(len));
                let range = match SeqRange::from_u64(from, to) {
                    Ok(range) => range,
                    Err(e) => {
                        assert!(from == 0 || to > MAX_SEQ, "{from}..={to}: {e}");
                        return;
                    }
                };
                let mut msgs = Vec::new();
                for &spec in messages.iter().take(64) {
                    if let Some(seq) = self.seq_value(Some(id), spec)
                        && seq.get() >= 1
                    {
                        msgs.push((seq, payload(seq)));
                    }
                }
                self.saw(stream, to);
                let outside = msgs.iter().any(|(s, _)| !range.contains(*s));
                let present: Vec<u64> = msgs.iter().map(|(s, _)| s.get()).collect();
                let result =
                    self.seq
                        .handle_history(self.now, id, range, epoch.map(epoch_of), msgs);
                if live && result.is_ok() {
                    self.answered(name_of(stream), range, present);
                }
                if outside {
                    assert!(
                        matches!(result, Err(Error::HistoryOutOfRange { .. })),
                        "{result:?}"
                    );
                }
                self.after_input(live || outside, result);
            }
            Op::Head {
                stream,
                head,
                epoch,
            } => {
                let Some((id, live)) = self.target(stream) else {
                    return;
                };
                let Some(head) = self.seq_value(Some(id), head) else {
                    return;
                };
                self.saw(stream, head.get());
                let result = self
                    .seq
                    .handle_head(self.now, id, head, epoch.map(epoch_of));
                self.after_input(live, result);
            }
            Op::Reset {
                stream,
                reason,
                earliest,
            } => {
                let Some((id, live)) = self.target(stream) else {
                    return;
                };
                let earliest = earliest.and_then(|spec| self.seq_value(Some(id), spec));
                let reason = match reason % 3 {
                    0 => ResetReason::HistoryUnavailable,
                    1 => ResetReason::EpochChanged,
                    _ => ResetReason::ServerBehind,
                };
                let result = self.seq.handle_reset(self.now, id, reason, earliest);
                self.after_input(live, result);
            }
            Op::Answer {
                pick,
                missing,
                cut,
                epoch,
                head,
            } => {
                if self.outstanding.is_empty() {
                    return;
                }
                let request = self
                    .outstanding
                    .remove(usize::from(pick) % self.outstanding.len());
                self.answer(&request, missing, cut, epoch, head);
            }
            Op::Sleep { ms } => self.sleep(u64::from(ms)),
            Op::LateTimeout { ms } => {
                self.now = self.now.plus(u64::from(ms));
                self.timeout();
            }
            Op::Settle => self.settle(),
        }
    }

    /// Answers `request` as a server would, shaped by the fuzz input.
    fn answer(&mut self, request: &Request, missing: u64, cut: u8, epoch: Option<u8>, head: i8) {
        let Some(id) = self.seq.stream_id(request_stream(request)) else {
            return;
        };
        let stats = self.seq.stats(id).expect("subscribed");
        let known = stats.epoch.unwrap_or(Epoch(1));
        let epoch = epoch.map_or(known, epoch_of);
        let result = match request {
            Request::FetchHistory { range, .. } => {
                let from = range.start().get();
                let mut to = range.end().get();
                if cut != 0 {
                    to = to.min(from + u64::from(cut) - 1);
                }
                let present: Vec<u64> = (from..=to)
                    .filter(|s| missing & (1 << ((s - from) % 64)) == 0)
                    .collect();
                let messages = present
                    .iter()
                    .map(|&s| {
                        let seq = Seq::new(s).expect("in a requested range");
                        (seq, payload(seq))
                    })
                    .collect();
                let covered = SeqRange::from_u64(from, to).expect("inside a requested range");
                let result = self
                    .seq
                    .handle_history(self.now, id, covered, Some(epoch), messages);
                if result.is_ok() {
                    self.answered(request_stream(request), covered, present);
                }
                result
            }
            Request::Subscribe {
                since: Some(since), ..
            } => {
                let head = since
                    .get()
                    .saturating_add_signed(i64::from(head))
                    .min(MAX_SEQ);
                let head = Seq::new(head).expect("clamped");
                self.seq.handle_subscribed(self.now, id, epoch, head)
            }
            Request::Subscribe { since: None, .. } | Request::FetchSnapshot { .. } => {
                let at = stats
                    .head
                    .get()
                    .saturating_add_signed(i64::from(head))
                    .min(MAX_SEQ);
                let at = Seq::new(at).expect("clamped");
                self.seq
                    .handle_snapshot(self.now, id, at, epoch, u32::from(cut))
            }
            Request::Unsubscribe { .. } => Ok(()),
        };
        self.after_input(true, result);
    }

    fn timeout(&mut self) {
        let now = self.now;
        self.seq.handle_timeout(now);
        self.drain();
        if let Some(deadline) = self.seq.poll_timeout() {
            assert!(
                deadline > now,
                "deadline {deadline:?} not after now {now:?} right after handle_timeout"
            );
        }
        self.seq.handle_timeout(now);
        if let Some(request) = self.seq.poll_request() {
            panic!("second handle_timeout({now:?}) sent {request:?}");
        }
        self.drain();
    }

    fn sleep(&mut self, ms: u64) {
        let target = self.now.plus(ms);
        let mut wakeups = 0;
        while let Some(deadline) = self.seq.poll_timeout() {
            if deadline > target {
                break;
            }
            wakeups += 1;
            assert!(wakeups < 10_000, "timer keeps firing at {deadline:?}");
            self.now = self.now.max(deadline);
            self.timeout();
        }
        self.now = target;
    }

    /// A perfect server answers every request in full until the sequencer
    /// is quiet; every connected `Ordered` stream that was not too far
    /// behind must then have caught up.
    fn settle(&mut self) {
        if !self.seq.is_connected() {
            self.outstanding.clear();
            self.inflight.clear();
            self.seq.handle_connected(self.now);
            self.drain();
        }
        let behind: Vec<(&'static str, u64)> = self
            .models
            .iter()
            .map(|(&name, m)| {
                let s = self.seq.stats(m.id).expect("subscribed");
                (name, self.head_of(name, m.id).get() - s.last_seq.get())
            })
            .collect();
        // Far behind, catching up takes more rounds than a fuzz run affords.
        let bounded = behind.iter().all(|&(_, lag)| lag <= SETTLE_LAG);
        let mut quiet = false;
        self.settling = true;
        for _ in 0..SETTLE_ROUNDS {
            let requests = std::mem::take(&mut self.outstanding);
            for request in &requests {
                self.perfect_answer(request);
            }
            if !self.outstanding.is_empty() {
                continue;
            }
            match self.seq.poll_timeout() {
                Some(deadline) => {
                    self.now = self.now.max(deadline);
                    self.timeout();
                }
                None => {
                    quiet = true;
                    break;
                }
            }
        }
        self.settling = false;
        if !bounded {
            return;
        }
        assert!(
            quiet,
            "not quiet after {SETTLE_ROUNDS} rounds of perfect answers"
        );
        for (name, lag) in behind {
            let m = &self.models[name];
            let s = self.seq.stats(m.id).expect("subscribed");
            assert_eq!(
                s.phase,
                StreamPhase::Live,
                "{name} not live after settling: {s:?}"
            );
            if m.mode != DeliveryMode::Ordered || lag > SETTLE_LAG {
                continue;
            }
            assert_eq!(s.lag, 0, "{name} still behind after settling: {s:?}");
            assert_eq!(
                s.buffered, 0,
                "{name} still holds messages after settling: {s:?}"
            );
        }
    }

    fn perfect_answer(&mut self, request: &Request) {
        let name = request_stream(request);
        let Some(id) = self.seq.stream_id(name) else {
            return;
        };
        let stats = self.seq.stats(id).expect("subscribed");
        let head = self.head_of(name, id);
        let epoch = stats.epoch.unwrap_or(Epoch(1));
        let result = match request {
            Request::FetchHistory { range, .. } => {
                let messages = (range.start().get()..=range.end().get())
                    .map(|s| {
                        let seq = Seq::new(s).expect("in a requested range");
                        (seq, payload(seq))
                    })
                    .collect();
                let result = self
                    .seq
                    .handle_history(self.now, id, *range, Some(epoch), messages);
                if result.is_ok() {
                    let present = (range.start().get()..=range.end().get()).collect();
                    self.answered(name, *range, present);
                }
                result
            }
            Request::Subscribe {
                since: Some(since),
                epoch: asked,
                ..
            } => {
                let head = head.max(*since);
                // The server's epoch is the one the stream knows now: a
                // request sent before a reset may name an older one.
                self.seq.handle_subscribed(
                    self.now,
                    id,
                    stats.epoch.or(*asked).unwrap_or(epoch),
                    head,
                )
            }
            Request::Subscribe { since: None, .. } | Request::FetchSnapshot { .. } => {
                self.seq.handle_snapshot(self.now, id, head, epoch, 0)
            }
            Request::Unsubscribe { .. } => Ok(()),
        };
        self.after_input(true, result);
    }

    /// Drains every output in the documented order and checks it.
    fn drain(&mut self) {
        let mut fetched: Vec<(String, SeqRange)> = Vec::new();
        while let Some(request) = self.seq.poll_request() {
            self.check_request(&request, &mut fetched);
            self.outstanding.push(request);
        }
        let _ = self.seq.poll_timeout();
        while let Some(event) = self.seq.poll_event() {
            self.check_event(&event);
        }
        self.check_streams();
        // Ranges requested in this drain must still be missing.
        for (name, range) in fetched {
            let m = &self.models[name.as_str()];
            let s = self.seq.stats(m.id).expect("subscribed");
            assert!(
                range.start() > s.last_seq,
                "{name}: requested {range} but delivered through {}",
                s.last_seq
            );
            assert!(
                range.end().get() <= s.last_seq.get() + u64::from(WINDOW),
                "{name}: requested {range} beyond the window after {}",
                s.last_seq
            );
        }
    }

    /// A history answer ends every request in flight that it overlaps, and
    /// says which seqs of its range the server will never send.
    fn answered(&mut self, name: &str, range: SeqRange, present: Vec<u64>) {
        let name = static_name(name);
        if let Some(list) = self.inflight.get_mut(name) {
            list.retain(|(r, _)| r.end() < range.start() || r.start() > range.end());
        }
        let absent = self.absent.entry(name).or_default();
        if absent.len() >= 256 {
            absent.remove(0);
        }
        absent.push((range, present));
    }

    fn check_request(&mut self, request: &Request, fetched: &mut Vec<(String, SeqRange)>) {
        assert!(
            self.seq.is_connected(),
            "request while disconnected: {request:?}"
        );
        let frame: ClientFrame<serde_json::Value> = request.clone().into();
        let json = frame.to_json().expect("a request encodes");
        let back = parse_client_frame::<serde_json::Value>(&json, usize::MAX)
            .unwrap_or_else(|e| panic!("request {request:?} encodes to invalid {json}: {e}"));
        assert_eq!(back, frame);
        let name = request_stream(request);
        if let Request::Unsubscribe { .. } = request {
            return;
        }
        let model = self
            .models
            .get(name)
            .unwrap_or_else(|| panic!("request for a stream not subscribed: {request:?}"));
        if let Request::FetchHistory { range, .. } = request {
            assert!(
                !self.quiet,
                "{name}: reordering within the window asked for {range}"
            );
            assert_eq!(model.mode, DeliveryMode::Ordered, "{request:?}");
            assert!(range.len() <= u64::from(MAX_FETCH), "{request:?}");
            for (other_name, other) in fetched.iter() {
                let overlap = other.start() <= range.end() && range.start() <= other.end();
                assert!(
                    !(other_name == name && overlap),
                    "{name}: {range} overlaps {other} requested at the same time"
                );
            }
            fetched.push((name.to_string(), *range));
            // One request in flight per range: asking again for part of a
            // range is a retry, due only after the request timeout.
            let now = self.now;
            let key = static_name(name);
            let list = self.inflight.entry(key).or_default();
            for (r, sent) in list.iter() {
                let overlap = r.start() <= range.end() && range.start() <= r.end();
                assert!(
                    !overlap || now.0 >= sent.0 + config().request_timeout_ms,
                    "{name}: {range} asked at {now:?} while {r} is in flight since {sent:?}"
                );
            }
            list.retain(|(r, _)| r.end() < range.start() || r.start() > range.end());
            list.push((*range, now));
        }
    }

    fn check_event(&mut self, event: &Event<u32>) {
        let id = event.stream();
        let (name, model) = self
            .models
            .iter_mut()
            .find(|(_, m)| m.id == id)
            .unwrap_or_else(|| panic!("event for a stream not subscribed: {event:?}"));
        let ordered = model.mode == DeliveryMode::Ordered;
        match *event {
            Event::Message {
                seq, payload: p, ..
            } => {
                assert_eq!(p, payload(seq), "{name}: payload of {seq} mixed up");
                let Some(last) = model.last else {
                    panic!("{name}: message {seq} before a snapshot");
                };
                if ordered {
                    assert_eq!(seq.get(), last + 1, "{name}: message {seq} after {last}");
                } else {
                    assert!(
                        seq.get() > last,
                        "{name}: latest message {seq} after {last}"
                    );
                }
                model.last = Some(seq.get());
                model.snapshot_ok = false;
            }
            Event::Snapshot { seq, .. } => {
                self.inflight.remove(*name);
                if ordered {
                    assert!(
                        model.snapshot_ok,
                        "{name}: snapshot at {seq} without a reset (delivered {:?})",
                        model.last
                    );
                }
                model.last = Some(seq.get());
                model.snapshot_ok = false;
            }
            Event::Reset { .. } => {
                assert!(
                    !self.settling,
                    "{name}: reset while a perfect server answers"
                );
                self.inflight.remove(*name);
                model.last = None;
                model.snapshot_ok = true;
            }
            Event::Skipped { range, .. } => {
                assert!(ordered, "{name}: skip in latest mode");
                let last = model.last.expect("skip before a snapshot");
                let answers = self.absent.get(*name).map_or(&[][..], Vec::as_slice);
                for s in range.start().get()..=range.end().get() {
                    assert!(
                        answers
                            .iter()
                            .any(|(r, present)| r.contains(Seq::new(s).expect("in a range"))
                                && !present.contains(&s)),
                        "{name}: skipped {s}, which no history answer covered as absent"
                    );
                }
                assert_eq!(
                    range.start().get(),
                    last + 1,
                    "{name}: skipped {range} after {last}"
                );
                model.last = Some(range.end().get());
            }
            Event::GapDetected { range, .. } => {
                assert!(ordered, "{name}: gap in latest mode");
                if let Some(last) = model.last {
                    assert!(
                        range.start().get() > last,
                        "{name}: gap {range} after {last}"
                    );
                }
            }
            Event::GapHealed { through, .. } => {
                assert_eq!(
                    Some(through.get()),
                    model.last,
                    "{name}: healed through {through}"
                );
            }
            Event::Stalled { .. } => {}
            Event::PhaseChanged { phase, .. } => {
                assert_ne!(phase, model.phase, "{name}: phase change to the same phase");
                model.phase = phase;
            }
        }
    }

    fn check_streams(&self) {
        assert_eq!(self.seq.len(), self.models.len());
        for (name, m) in &self.models {
            let s = self
                .seq
                .stats(m.id)
                .unwrap_or_else(|| panic!("{name}: no stats"));
            assert_eq!(self.seq.stream_id(name), Some(m.id));
            assert!(
                s.buffered <= 2 * u64::from(WINDOW),
                "{name}: {} held, window {WINDOW}",
                s.buffered
            );
            assert_eq!(s.phase, m.phase, "{name}: phase differs from the events");
            if !self.seq.is_connected() {
                assert_eq!(s.phase, StreamPhase::Disconnected, "{name}");
            }
            if let Some(last) = m.last {
                assert_eq!(
                    s.last_seq.get(),
                    last,
                    "{name}: stats disagree with delivery"
                );
            }
            assert!(s.head >= s.last_seq);
            assert_eq!(s.lag, s.head.get() - s.last_seq.get());
        }
        for &id in &self.stale {
            assert!(self.seq.stats(id).is_none());
        }
    }
}

fn payload(seq: Seq) -> u32 {
    (seq.get() as u32) ^ ((seq.get() >> 32) as u32).rotate_left(16)
}

fn static_name(name: &str) -> &'static str {
    NAMES
        .iter()
        .find(|n| **n == name)
        .unwrap_or_else(|| panic!("unknown stream name {name:?}"))
}

fn request_stream(request: &Request) -> &str {
    match request {
        Request::Subscribe { stream, .. }
        | Request::Unsubscribe { stream }
        | Request::FetchHistory { stream, .. }
        | Request::FetchSnapshot { stream } => stream.as_str(),
    }
}
