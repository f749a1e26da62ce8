//! Model-checked: a session over a foreign server (a since-style history
//! endpoint, optionally a head or a snapshot endpoint and retention, no
//! heartbeats, no epochs) on a network that drops, duplicates and reorders live frames,
//! fails and reorders HTTP answers and cuts connections, while messages are
//! published. Every stream must be exactly the server's log (in order, no
//! holes, no repeats, the right payloads; after a reset, exactly the log
//! from the new start), with no skip the server did not cause, and once the
//! faults stop every stream must reach the log's end through polling.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use seqsync_core::adapter::{FetchAnswer, FetchId, ForeignRequest, Plan, Start};
use seqsync_core::{
    Config, ConnId, Event, Millis, Seq, Session, SessionConfig, SessionEvent, StreamId, Transmit,
};

/// A deterministic generator (xorshift*): the case's seed decides all.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn percent(&mut self, p: u32) -> bool {
        self.below(100) < u64::from(p)
    }
}

#[derive(Debug, Clone)]
struct Case {
    seed: u64,
    streams: usize,
    messages: u64,
    publish_every_ms: u64,
    drop_pct: u32,
    dup_pct: u32,
    reorder_ms: u64,
    http_fail_pct: u32,
    http_delay_ms: u64,
    cut_every_ms: u64,
    head: bool,
    start: Start,
    /// Messages the server keeps per stream (0: all).
    retain: u64,
    limit: u32,
    gap_timeout_ms: u64,
}

enum Ev {
    Publish(usize),
    Opened(ConnId),
    Live {
        conn: ConnId,
        stream: usize,
        seq: u64,
    },
    Answer {
        id: FetchId,
        request: ForeignRequest,
    },
    Cut,
}

struct World {
    case: Case,
    dice: Dice,
    now: u64,
    s: Session<String>,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Ev>,
    next_event: u64,
    logs: Vec<u64>,
    /// Streams the current connection joined.
    joined: Vec<bool>,
    conn: Option<ConnId>,
    ids: Vec<StreamId>,
    /// What the application holds per stream: the next seq it expects
    /// (None: it waits for a start after a reset).
    expect: Vec<Option<u64>>,
    resets: u64,
    faults_until: u64,
}

const NAMES: [&str; 3] = ["a", "b", "c"];

impl World {
    fn new(case: Case) -> World {
        let plan = Plan {
            history: true,
            head: case.head,
            snapshot: case.start == Start::Snapshot,
            start: case.start,
            poll_ms: 300,
            limit: case.limit,
            ..Plan::default()
        };
        let config = SessionConfig {
            endpoints: vec!["ws://foreign/ws".into()],
            reconnect_initial_ms: 20,
            reconnect_max_ms: 200,
            silence_timeout_ms: 0,
            core: Config {
                gap_timeout_ms: case.gap_timeout_ms,
                request_timeout_ms: 200,
                max_backoff_ms: 800,
                ..Config::default()
            },
            ..SessionConfig::default()
        };
        let s = Session::foreign(config, plan, String::new, [case.seed as u8; 32], Millis(0))
            .expect("session");
        let faults_until = case.messages * case.publish_every_ms + 200;
        let mut w = World {
            dice: Dice(case.seed | 1),
            now: 0,
            s,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            next_event: 0,
            logs: vec![0; case.streams],
            joined: vec![false; case.streams],
            conn: None,
            ids: Vec::new(),
            expect: Vec::new(),
            resets: 0,
            faults_until,
            case,
        };
        for name in NAMES.iter().take(w.case.streams) {
            let id =
                w.s.subscribe(Millis(0), name, Default::default())
                    .expect("subscribe");
            w.ids.push(id);
            w.expect.push(match w.case.start {
                Start::Beginning => Some(1),
                _ => None,
            });
        }
        for i in 0..w.case.streams {
            for k in 0..w.case.messages {
                let at = 1 + k * w.case.publish_every_ms + w.dice.below(w.case.publish_every_ms);
                w.at(at, Ev::Publish(i));
            }
        }
        if w.case.cut_every_ms > 0 {
            let mut t = w.case.cut_every_ms;
            while t < w.faults_until {
                w.at(t, Ev::Cut);
                t += w.case.cut_every_ms + w.dice.below(w.case.cut_every_ms);
            }
        }
        w
    }

    fn at(&mut self, time: u64, ev: Ev) {
        let key = self.next_event;
        self.next_event += 1;
        self.queue.push(Reverse((time, key)));
        self.events.insert(key, ev);
    }

    fn faulty(&self) -> bool {
        self.now < self.faults_until
    }

    fn earliest(&self, stream: usize) -> u64 {
        let log = self.logs[stream];
        if self.case.retain == 0 || log <= self.case.retain {
            1
        } else {
            log - self.case.retain + 1
        }
    }

    fn run(mut self) -> Result<(), String> {
        let end = self.faults_until + 20_000;
        self.pump()?;
        loop {
            let next_ev = self.queue.peek().map(|Reverse((t, _))| *t);
            let next_timer = self.s.poll_timeout().map(|m| m.0);
            let next = match (next_ev, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            if next_timer.is_some_and(|t| t <= self.now) {
                self.s.handle_timeout(Millis(self.now));
            }
            while let Some(Reverse((t, key))) = self.queue.peek().copied() {
                if t > self.now {
                    break;
                }
                self.queue.pop();
                if let Some(ev) = self.events.remove(&key) {
                    self.on(ev)?;
                }
            }
            self.pump()?;
            if self.now > self.faults_until + 2_000 && self.caught_up() {
                return Ok(());
            }
        }
        if self.caught_up() {
            Ok(())
        } else {
            Err(format!(
                "not caught up by {end}: expect {:?}, logs {:?}, stats {:?}",
                self.expect,
                self.logs,
                self.s.stats()
            ))
        }
    }

    fn caught_up(&self) -> bool {
        (0..self.case.streams).all(|i| self.expect[i] == Some(self.logs[i] + 1))
    }

    fn on(&mut self, ev: Ev) -> Result<(), String> {
        let now = Millis(self.now);
        match ev {
            Ev::Publish(stream) => {
                self.logs[stream] += 1;
                let seq = self.logs[stream];
                if let (Some(conn), true) = (self.conn, self.joined[stream]) {
                    self.send_live(conn, stream, seq);
                }
            }
            Ev::Opened(conn) => {
                if Some(conn) == self.conn {
                    self.s.handle_opened(now, conn);
                }
            }
            Ev::Live { conn, stream, seq } => {
                if Some(conn) == self.conn && self.s.connection() == Some(conn) {
                    let payload = format!("{}:{seq}", NAMES[stream]);
                    let seq = Seq::message(seq).map_err(|e| e.to_string())?;
                    self.s
                        .handle_foreign_message(now, NAMES[stream], seq, None, payload)
                        .map_err(|e| format!("live message refused: {e}"))?;
                }
            }
            Ev::Answer { id, request } => {
                let answer = self.answer(&request);
                self.s.handle_fetched(now, id, 10, answer);
            }
            Ev::Cut => {
                if let Some(conn) = self.s.connection() {
                    self.conn = None;
                    self.joined.iter_mut().for_each(|j| *j = false);
                    self.s.handle_closed(now, conn, "cut");
                }
            }
        }
        Ok(())
    }

    fn send_live(&mut self, conn: ConnId, stream: usize, seq: u64) {
        let faulty = self.faulty();
        if faulty && self.dice.percent(self.case.drop_pct) {
            return;
        }
        let copies = if faulty && self.dice.percent(self.case.dup_pct) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = 1 + if faulty {
                self.dice.below(self.case.reorder_ms + 1)
            } else {
                0
            };
            self.at(self.now + delay, Ev::Live { conn, stream, seq });
        }
    }

    fn answer(&mut self, request: &ForeignRequest) -> FetchAnswer<String> {
        if self.faulty() && self.dice.percent(self.case.http_fail_pct) {
            return FetchAnswer::Failed {
                reason: "fault".into(),
                status: Some(500),
            };
        }
        let stream = NAMES
            .iter()
            .position(|n| *n == request.stream().as_str())
            .expect("a known stream");
        let log = self.logs[stream];
        match request {
            ForeignRequest::History { since, limit, .. } => {
                let earliest = self.earliest(stream);
                if since.get() + 1 < earliest {
                    return FetchAnswer::Gone {
                        earliest: Seq::message(earliest).ok(),
                    };
                }
                let last = log.min(since.get() + u64::from(*limit));
                FetchAnswer::Messages {
                    messages: (since.get() + 1..=last)
                        .map(|n| {
                            (
                                Seq::message(n).expect("seq"),
                                format!("{}:{n}", NAMES[stream]),
                            )
                        })
                        .collect(),
                    earliest: None,
                    epoch: None,
                }
            }
            ForeignRequest::Head { .. } => FetchAnswer::Head {
                seq: Seq::new(log).expect("seq"),
            },
            ForeignRequest::Snapshot { .. } => FetchAnswer::Snapshot {
                seq: Seq::new(log).expect("seq"),
                state: format!("{}@{log}", NAMES[stream]),
            },
            other => FetchAnswer::Failed {
                reason: format!("not served: {other:?}"),
                status: None,
            },
        }
    }

    /// Drains the session: transmits become world events, events are
    /// checked against the logs.
    fn pump(&mut self) -> Result<(), String> {
        while let Some(t) = self.s.poll_transmit() {
            match t {
                Transmit::Connect { conn, .. } => {
                    self.conn = Some(conn);
                    self.joined.iter_mut().for_each(|j| *j = false);
                    let delay = 1 + self.dice.below(10);
                    self.at(self.now + delay, Ev::Opened(conn));
                }
                Transmit::Disconnect { .. } => {
                    self.conn = None;
                    self.joined.iter_mut().for_each(|j| *j = false);
                }
                Transmit::Send { text } => return Err(format!("a protocol frame: {text}")),
                Transmit::Foreign { id, request } => match (id, &request) {
                    (None, ForeignRequest::Subscribe { stream, .. }) => {
                        let i = NAMES
                            .iter()
                            .position(|n| *n == stream.as_str())
                            .expect("name");
                        self.joined[i] = true;
                    }
                    (None, ForeignRequest::Unsubscribe { stream }) => {
                        let i = NAMES
                            .iter()
                            .position(|n| *n == stream.as_str())
                            .expect("name");
                        self.joined[i] = false;
                    }
                    (Some(id), _) => {
                        let delay = 1 + self.dice.below(self.case.http_delay_ms + 1);
                        self.at(self.now + delay, Ev::Answer { id, request });
                    }
                    (None, other) => return Err(format!("no id on {other:?}")),
                },
            }
        }
        while let Some(event) = self.s.poll_event() {
            let SessionEvent::Stream(event) = event else {
                continue;
            };
            let i = self
                .ids
                .iter()
                .position(|id| *id == event.stream())
                .ok_or("an event of an unknown stream")?;
            match event {
                Event::Message { seq, payload, .. } => {
                    let want = self.expect[i]
                        .ok_or_else(|| format!("{}: message {seq} before a start", NAMES[i]))?;
                    if seq.get() != want {
                        return Err(format!("{}: got {seq}, expected {want}", NAMES[i]));
                    }
                    if payload != format!("{}:{seq}", NAMES[i]) {
                        return Err(format!("{}: wrong payload {payload} at {seq}", NAMES[i]));
                    }
                    if seq.get() > self.logs[i] {
                        return Err(format!("{}: {seq} beyond the log", NAMES[i]));
                    }
                    self.expect[i] = Some(want + 1);
                }
                Event::Reset { earliest, .. } => {
                    // Only when the server really lost what was missing.
                    let next = self.expect[i].unwrap_or(1);
                    let e = self.earliest(i);
                    if self.case.retain == 0 || next >= e {
                        return Err(format!(
                            "{}: reset at {next} though the server keeps {e}.. ({earliest:?})",
                            NAMES[i]
                        ));
                    }
                    self.resets += 1;
                    self.expect[i] = None;
                }
                Event::Snapshot { seq, state, .. } => {
                    if let Some(next) = self.expect[i] {
                        return Err(format!("{}: a start at {seq} while at {next}", NAMES[i]));
                    }
                    let loaded = format!("{}@{seq}", NAMES[i]);
                    if self.case.start == Start::Snapshot && state != loaded {
                        return Err(format!("{}: state {state:?} at {seq}", NAMES[i]));
                    }
                    self.expect[i] = Some(seq.get() + 1);
                }
                Event::Skipped { range, .. } => {
                    return Err(format!("{}: skipped {range} of a contiguous log", NAMES[i]));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn cases() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        1usize..=3,
        20u64..=300,
        1u64..=20,
        (0u32..=30, 0u32..=20, 0u64..=60),
        (
            0u32..=40,
            1u64..=80,
            prop::sample::select(vec![0u64, 150, 400, 1_500]),
        ),
        (
            any::<bool>(),
            prop::sample::select(vec![Start::Beginning, Start::Head, Start::Snapshot]),
            prop::sample::select(vec![0u64, 0, 40, 120]),
            prop::sample::select(vec![1u32, 3, 16, 500]),
            5u64..=200,
        ),
    )
        .prop_map(
            |(
                seed,
                streams,
                messages,
                publish_every_ms,
                (drop_pct, dup_pct, reorder_ms),
                (http_fail_pct, http_delay_ms, cut_every_ms),
                (head, start, retain, limit, gap_timeout_ms),
            )| Case {
                seed,
                streams,
                messages,
                publish_every_ms,
                drop_pct,
                dup_pct,
                reorder_ms,
                http_fail_pct,
                http_delay_ms,
                cut_every_ms,
                head: head || start == Start::Head,
                start,
                retain,
                limit,
                gap_timeout_ms,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_foreign_server_under_faults_is_delivered_exactly_and_caught_up(case in cases()) {
        World::new(case).run().map_err(TestCaseError::fail)?;
    }
}
