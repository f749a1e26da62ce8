//! A deterministic simulator for the client core: virtual time in ms, a
//! seeded PRNG, a server that keeps one log per stream, and a lossy network
//! between them. Time moves only from one scheduled item or core deadline to
//! the next; nothing sleeps.
//!
//! It drives either the bare `Sequencer<u64>` (the simulator opens and cuts
//! the connection itself) or a `Session<u64>` (`Scenario::session`): then
//! the session decides when to connect and where, and the simulator only
//! answers its transmits — attempts that open, are refused or never answer,
//! an endpoint that is down, a server that goes silent on an open
//! connection, `ref`s echoed or not — and the application publishes through
//! the session as well.
//!
//! Only live `msg` frames suffer drop, duplication and reordering; control
//! replies (`snapshot`, `subscribed`, `history`, `reset`, `head`) are never
//! dropped but are delayed, in order, on the connection that carried the
//! request. A connection cut loses everything in flight on it.
//!
//! The model is the application's view of each stream, built only from
//! events: either "awaiting a snapshot" or "has every seq up to `last` of
//! epoch `E`". A `Message` must be `last + 1` (`Latest`: above `last`) and
//! carry the log's payload; a `Skipped` range must start at `last + 1` and
//! hold only filtered seqs; a `Snapshot` may come only while one is awaited
//! (`Latest`: when newer) and must carry the server's state at its seq; a
//! `Reset` only when the server answered `reset`, or when the stream's epoch
//! really changed. Requests may ask only for what the view lacks, with one
//! history request in flight per range. Once the faults stop, every stream
//! must reach the server's head with its counters at rest.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};

use std::collections::HashMap;

use seqsync_core::protocol::{ClientFrame, ErrorCode, parse_client_frame};
use seqsync_core::{
    Config, ConnId, DeliveryMode, Epoch, Event, MAX_SEQ, Millis, PublishError, PublishId, Request,
    ResetReason, Seq, SeqRange, Sequencer, Session, SessionConfig, SessionEvent, StartAt, StreamId,
    StreamPhase, StreamStats, SubscribeOptions, Transmit,
};

/// The splitmix64 generator: tiny, fast, and good enough to drive faults.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n > 0`); the modulo bias is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `pct` percent.
    pub fn percent(&mut self, pct: u32) -> bool {
        self.below(100) < u64::from(pct)
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The payload of message `seq` of `stream` in `epoch`: a 64-bit hash of
/// the triple, so a message delivered from the wrong place is caught.
pub fn msg_payload(stream: usize, epoch: u64, seq: u64) -> u64 {
    mix(mix(epoch ^ ((stream as u64) << 56)) ^ seq) & !HOSTILE
}

/// The snapshot state of `stream` at `seq` in `epoch`.
pub fn state_value(stream: usize, epoch: u64, seq: u64) -> u64 {
    mix(msg_payload(stream, epoch, seq) ^ 0x5A5A_5A5A) | STATE_TAG
}

/// Payload of messages a hostile peer injects.
pub const HOSTILE: u64 = 1 << 63;
const STATE_TAG: u64 = 1 << 62;
/// Marks the payloads the application publishes through the session.
const CLIENT_TAG: u64 = 1 << 61;

/// Everything a run is made of. Percentages are per live message (drop,
/// dup, reorder, filtered, hostile) or per control reply (slow control).
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Seeds the PRNG that makes every choice of the run.
    pub seed: u64,
    /// Streams subscribed by the client.
    pub streams: usize,
    /// Messages published in total (over all streams) while faults are on.
    pub messages: usize,
    /// Mean time between two publishes (over all streams).
    pub publish_gap_ms: u64,
    /// Delivery mode of every stream.
    pub mode: DeliveryMode,
    /// Chance that a stream starts from a resume point instead of a snapshot.
    pub start_after_pct: u32,
    /// The sequencer's configuration.
    pub config: Config,
    /// Interval of `head` heartbeats.
    pub heartbeat_ms: u64,
    /// A history answer covers at most `1..=max_page` seqs (random per answer).
    pub max_page: u64,
    /// One-way delay of a live message.
    pub live_delay_ms: u64,
    /// Control replies take `1..=control_delay_ms`.
    pub control_delay_ms: u64,
    /// Chance that a control reply is slow: up to three request timeouts.
    pub slow_control_pct: u32,
    /// Chance that a live message is lost.
    pub drop_pct: u32,
    /// Chance that a live message arrives twice.
    pub dup_pct: u32,
    /// Chance that a live message is delayed by up to `reorder_window_ms` more.
    pub reorder_pct: u32,
    /// See `reorder_pct`.
    pub reorder_window_ms: u64,
    /// Mean time between connection cuts (0: never).
    pub cut_every_ms: u64,
    /// A cut connection comes back after `1..=reconnect_ms`.
    pub reconnect_ms: u64,
    /// Mean time between history truncations of a random stream (0: never).
    pub truncate_every_ms: u64,
    /// Mean time between epoch changes of a random stream (0: never).
    pub epoch_every_ms: u64,
    /// Chance that an epoch change also cuts the connection (a restart).
    pub epoch_cut_pct: u32,
    /// Mean time between the application unsubscribing a random stream and
    /// subscribing again, from its last seq or from a snapshot (0: never).
    pub resubscribe_every_ms: u64,
    /// Chance that a published seq is filtered: never sent, skipped in history.
    pub filtered_pct: u32,
    /// The last message of every stream is lost (all copies): only a `head`
    /// heartbeat can reveal it.
    pub drop_tail: bool,
    /// Chance that the server refuses a request (`error {code:
    /// "rate_limited"}`, which the core never sees): only a retry helps.
    pub refuse_pct: u32,
    /// Chance, per publish, that a hostile message with a wild seq is injected.
    pub hostile_pct: u32,
    /// Fail on a reset caused by a delayed frame of an epoch the stream
    /// already left (instead of only counting it).
    pub strict_epoch: bool,
    /// A live message never overtakes a control reply sent before it (one
    /// ordered connection); live messages still reorder among themselves.
    pub control_first: bool,
    /// Drive a `Session` with these knobs instead of the bare `Sequencer`.
    pub session: Option<SessionScenario>,
}

/// The session's side of a scenario: its configuration and the faults only
/// a session meets (connection attempts, silent peers, publishes).
#[derive(Clone, Debug)]
pub struct SessionScenario {
    /// The session's configuration; `core` is replaced by `Scenario::config`.
    pub config: SessionConfig,
    /// The server copies `ref` into its answers (a server that does not
    /// predates section 3.8 and names the stream in `error` frames).
    pub echo_ref: bool,
    /// Messages the application publishes through the session while the
    /// faults are on.
    pub client_publishes: usize,
    /// The first endpoint refuses every attempt while the faults are on.
    pub first_endpoint_down: bool,
    /// Chance that an attempt is refused at once.
    pub connect_fail_pct: u32,
    /// Chance that an attempt never answers (the session abandons it).
    pub connect_stall_pct: u32,
    /// Mean time between spells of silence of the server on an open
    /// connection (0: never): nothing arrives, nothing is answered.
    pub silent_every_ms: u64,
    /// How long a spell of silence lasts.
    pub silent_for_ms: u64,
    /// Chance that a stored publish is answered `internal` instead of
    /// `ack` (stored all the same: only a retry with the same id can tell).
    pub internal_pct: u32,
}

impl Scenario {
    /// A fault-free scenario to start from.
    pub fn calm(seed: u64) -> Scenario {
        Scenario {
            seed,
            streams: 2,
            messages: 50,
            publish_gap_ms: 5,
            mode: DeliveryMode::Ordered,
            start_after_pct: 0,
            config: Config {
                window: 64,
                gap_timeout_ms: 50,
                request_timeout_ms: 400,
                max_backoff_ms: 3_200,
                stall_after_attempts: 4,
                max_fetch: 32,
                ..Config::default()
            },
            heartbeat_ms: 500,
            max_page: 20,
            live_delay_ms: 2,
            control_delay_ms: 20,
            slow_control_pct: 0,
            drop_pct: 0,
            dup_pct: 0,
            reorder_pct: 0,
            reorder_window_ms: 0,
            cut_every_ms: 0,
            reconnect_ms: 200,
            truncate_every_ms: 0,
            epoch_every_ms: 0,
            epoch_cut_pct: 0,
            resubscribe_every_ms: 0,
            filtered_pct: 0,
            drop_tail: false,
            refuse_pct: 0,
            hostile_pct: 0,
            strict_epoch: true,
            control_first: false,
            session: None,
        }
    }
}

impl SessionScenario {
    /// A session over two endpoints, tuned to the calm scenario's timing.
    pub fn calm() -> SessionScenario {
        SessionScenario {
            config: SessionConfig {
                endpoints: vec!["ws://a/ws".into(), "ws://b/ws".into()],
                reconnect_initial_ms: 50,
                reconnect_max_ms: 2_000,
                stable_after_ms: 1_000,
                connect_timeout_ms: 500,
                initial_connect_timeout_ms: 0,
                heartbeat_timeout_ms: 2_500,
                silence_timeout_ms: 4_000,
                publish_timeout_ms: 20_000,
                persist_interval_ms: 300,
                ..SessionConfig::default()
            },
            echo_ref: true,
            client_publishes: 0,
            first_endpoint_down: false,
            connect_fail_pct: 0,
            connect_stall_pct: 0,
            silent_every_ms: 0,
            silent_for_ms: 0,
            internal_pct: 0,
        }
    }
}

/// What a run counted.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Live messages the server sent (first copies).
    pub live_sent: u64,
    /// Live messages the network lost.
    pub live_dropped: u64,
    /// Extra copies the network made.
    pub live_duplicated: u64,
    /// Frames lost because their connection was cut while they were in flight.
    pub lost_in_cut: u64,
    /// `FetchHistory` requests the server answered (or refused).
    pub history_requests: u64,
    /// Messages carried by history answers that reached the sequencer.
    pub history_messages: u64,
    /// Seqs after the first snapshot that never reached the sequencer live.
    pub missing: u64,
    /// Snapshots the server sent.
    pub snapshots_sent: u64,
    /// `Message` events.
    pub delivered: u64,
    /// `Skipped` seqs.
    pub skipped: u64,
    /// `Reset` events.
    pub resets: u64,
    /// Resets caused by a delayed frame of an epoch the stream had left.
    pub stale_epoch_resets: u64,
    /// `Stalled` events.
    pub stalls: u64,
    /// Connection cuts.
    pub cuts: u64,
    /// History truncations.
    pub truncations: u64,
    /// Epoch changes.
    pub epoch_changes: u64,
    /// Unsubscribe-and-subscribe-again cycles.
    pub resubscribes: u64,
    /// History requests beyond the server's head (answered with an error).
    pub beyond_head: u64,
    /// Requests the server refused.
    pub refused: u64,
    /// Hostile messages injected.
    pub hostile: u64,
    /// Inputs the sequencer rejected with an error.
    pub rejected: u64,
    /// Largest `buffered` seen in any stream.
    pub max_buffered: u64,
    /// Largest number of requests one call produced.
    pub max_requests_per_call: usize,
    /// Virtual time at the end.
    pub end_ms: u64,
    /// Time of the last publish.
    pub last_publish_ms: u64,
    /// Time of the last change of any application view.
    pub settled_ms: u64,
    /// Connection attempts the session made.
    pub connect_attempts: u64,
    /// Most attempts in any minute of virtual time.
    pub max_attempts_per_minute: u64,
    /// Connections the session opened.
    pub connections: u64,
    /// Attempts to the first endpoint while it was down.
    pub attempts_to_down_endpoint: u64,
    /// Connections to endpoints other than the first.
    pub failovers: u64,
    /// Open connections the session declared dead.
    pub dead_peers: u64,
    /// Spells of silence of the server.
    pub silences: u64,
    /// Publishes made through the session.
    pub client_publishes: u64,
    /// Of those, acknowledged.
    pub publishes_acked: u64,
    /// Of those, failed with a timeout.
    pub publishes_timed_out: u64,
    /// Publish frames the server received (retries included).
    pub publish_frames: u64,
    /// Answers the session dropped because their `ref` named an earlier
    /// subscription.
    pub stale_answers: u64,
    /// Answers the server delivered with the `ref` of an earlier
    /// subscription of their stream: what the session must count as stale.
    pub late_answers: u64,
    /// Resubscribes after a silence.
    pub silence_resubscribes: u64,
    /// Positions the session reported.
    pub positions: u64,
}

/// The application's view of one stream, built only from events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Base {
    /// Nothing yet, or dropped by a `Reset`: the next thing must be a `Snapshot`.
    Awaiting,
    /// Holds every seq `<= last` of `epoch`.
    Has { epoch: u64, last: u64 },
}

/// One incarnation of a stream's log on the server.
#[derive(Clone, Debug)]
struct Log {
    epoch: u64,
    /// Entry `i` is seq `i + 1`; `None` is a filtered seq.
    entries: Vec<Option<u64>>,
}

struct SimStream {
    id: StreamId,
    name: String,
    /// The current log; `past` keeps earlier epochs for checking only.
    log: Log,
    past: Vec<Log>,
    /// Earliest seq the server still serves from history.
    earliest: u64,
    /// Registered on the current connection.
    subscribed: bool,
    /// Seqs of the current log handed to the sequencer live.
    arrived_live: Vec<bool>,
    base: Base,
    /// Seq of the first snapshot (or resume point).
    first_base: Option<u64>,
    messages: u64,
    skipped: u64,
    resets: u64,
    /// History requests not answered yet: (from, to, sent at).
    inflight: Vec<(u64, u64, u64)>,
    /// The application unsubscribed it; one `unsubscribe` request may follow.
    unsubscribing: bool,
    /// Seqs at which hostile messages were injected.
    hostile: HashSet<u64>,
    /// Publishes still to come while the faults are on.
    to_publish: usize,
    /// Publish ids the server remembers for the current log, with their seq.
    publish_ids: HashMap<String, u64>,
    /// The `ref` of the last request the session sent for the stream: its
    /// current subscription's.
    current_ref: Option<String>,
}

impl SimStream {
    fn head(&self) -> u64 {
        self.log.entries.len() as u64
    }

    fn log_of(&self, epoch: u64) -> Option<&Log> {
        std::iter::once(&self.log)
            .chain(self.past.iter())
            .find(|l| l.epoch == epoch)
    }
}

#[derive(Clone, Debug)]
enum Frame {
    Msg {
        seq: u64,
        epoch: u64,
        payload: u64,
    },
    Snapshot {
        seq: u64,
        epoch: u64,
        state: u64,
        reference: Option<String>,
    },
    Subscribed {
        epoch: u64,
        head: u64,
        reference: Option<String>,
    },
    History {
        from: u64,
        to: u64,
        epoch: u64,
        messages: Vec<(u64, u64)>,
        reference: Option<String>,
    },
    Head {
        seq: u64,
        epoch: u64,
    },
    Reset {
        reason: ResetReason,
        earliest: Option<u64>,
        reference: Option<String>,
    },
    /// Only a session sees these.
    Error {
        code: ErrorCode,
        reference: Option<String>,
    },
    Ack {
        id: String,
        seq: u64,
    },
    /// A heartbeat naming no stream.
    Beat,
}

#[derive(Clone, Debug)]
enum What {
    Deliver {
        conn: u64,
        stream: usize,
        frame: Frame,
    },
    Publish {
        stream: usize,
    },
    Heartbeat,
    Cut,
    Reconnect,
    Truncate,
    EpochChange,
    Resubscribe,
    FaultsEnd,
    /// Latest mode: once every stream is live, one last message per stream.
    FinalPublish,
    /// The session's attempt `conn` opens.
    Opens {
        conn: u64,
    },
    /// The session's attempt `conn` is refused.
    Refused {
        conn: u64,
    },
    /// The server goes silent on the open connection.
    Silence,
    /// The application publishes through the session.
    ClientPublish {
        stream: usize,
    },
}

struct Item {
    at: u64,
    order: u64,
    what: What,
}

impl PartialEq for Item {
    fn eq(&self, other: &Item) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Item) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Item {
    // Reversed: `BinaryHeap` is a max-heap and the earliest item goes first.
    fn cmp(&self, other: &Item) -> Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

/// A failed check, with enough context to replay it.
pub type Failure = String;

macro_rules! check {
    ($sim:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!(
                "seed {:#x} t={}ms: {}",
                $sim.scenario.seed,
                $sim.now,
                format!($($fmt)+)
            ));
        }
    };
}

/// The client under test: the bare sequencer, or a session around one.
enum Client {
    Seq(Box<Sequencer<u64>>),
    Session(Box<Session<u64>>),
}

impl Client {
    fn seq(&self) -> &Sequencer<u64> {
        match self {
            Client::Seq(c) => c,
            Client::Session(c) => c.sequencer(),
        }
    }

    fn stats(&self, id: StreamId) -> Option<StreamStats> {
        self.seq().stats(id)
    }

    fn phase(&self, id: StreamId) -> Option<StreamPhase> {
        self.seq().phase(id)
    }

    fn stream_id(&self, name: &str) -> Option<StreamId> {
        self.seq().stream_id(name)
    }

    fn handle_timeout(&mut self, now: Millis) {
        match self {
            Client::Seq(c) => c.handle_timeout(now),
            Client::Session(c) => c.handle_timeout(now),
        }
    }

    fn subscribe(
        &mut self,
        now: Millis,
        name: &str,
        options: SubscribeOptions,
    ) -> Result<StreamId, seqsync_core::Error> {
        match self {
            Client::Seq(c) => c.subscribe(now, name, options),
            Client::Session(c) => c.subscribe(now, name, options),
        }
    }

    fn unsubscribe(&mut self, now: Millis, id: StreamId) -> Result<(), seqsync_core::Error> {
        match self {
            Client::Seq(c) => c.unsubscribe(now, id),
            Client::Session(c) => c.unsubscribe(now, id),
        }
    }
}

/// A publish the application made through the session.
#[derive(Debug)]
struct ClientPublish {
    stream: usize,
    payload: u64,
    /// The seq it was acknowledged with, or the failure.
    outcome: Option<Result<u64, PublishError>>,
}

/// One simulated client, server and network.
pub struct Sim {
    scenario: Scenario,
    rng: SplitMix64,
    now: u64,
    core: Client,
    streams: Vec<SimStream>,
    queue: BinaryHeap<Item>,
    order: u64,
    conn: u64,
    conn_up: bool,
    faults_on: bool,
    faults_end_at: u64,
    /// Control replies leave in order: none is delivered before this time.
    control_free_at: u64,
    timeout: Option<Millis>,
    /// The stream whose server `reset` frame is being fed right now.
    feeding_reset: Option<usize>,
    window: u64,
    report: Report,
    /// Prints every step to stderr when `SEQSYNC_SIM_TRACE` is set (for
    /// replaying a failing scenario by hand).
    trace: bool,
    /// Publishes made through the session.
    publishes: HashMap<PublishId, ClientPublish>,
    /// Times of the session's connection attempts.
    attempts: Vec<u64>,
    /// The server says nothing on the open connection until then.
    silent_until: u64,
    /// Every `ref` the session sent with a subscribe, history or snapshot.
    subscription_refs: HashSet<String>,
}

impl Sim {
    /// Builds the run; nothing happens before [`Sim::run`].
    pub fn new(scenario: Scenario) -> Sim {
        let mut rng = SplitMix64::new(scenario.seed);
        let mut core = match &scenario.session {
            None => Client::Seq(Box::new(Sequencer::new(scenario.config.clone()))),
            Some(knobs) => {
                let config = SessionConfig {
                    core: scenario.config.clone(),
                    ..knobs.config.clone()
                };
                let mut seed = [0u8; 32];
                for chunk in seed.chunks_exact_mut(8) {
                    chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
                }
                match Session::new(config, seed, Millis(0)) {
                    Ok(session) => Client::Session(Box::new(session)),
                    Err(e) => panic!("session: {e}"),
                }
            }
        };
        let window = u64::from(scenario.config.effective_window());
        let mut streams = Vec::new();
        for i in 0..scenario.streams {
            let name = format!("s{i}");
            let epoch = rng.between(1, MAX_SEQ);
            // Streams start with some history so resume points and
            // snapshots are not all at 0.
            let initial = rng.below(8);
            let entries = (1..=initial)
                .map(|s| Some(msg_payload(i, epoch, s)))
                .collect();
            let log = Log { epoch, entries };
            let (start, base, first_base) = if rng.percent(scenario.start_after_pct) {
                let seq = rng.below(initial + 1);
                (
                    StartAt::After {
                        seq: Seq::new(seq).unwrap_or(Seq::ZERO),
                        epoch: Some(Epoch(epoch)),
                    },
                    Base::Has { epoch, last: seq },
                    Some(seq),
                )
            } else {
                (StartAt::Snapshot, Base::Awaiting, None)
            };
            let options = SubscribeOptions {
                start,
                mode: scenario.mode,
            };
            let id = match core.subscribe(Millis(0), &name, options) {
                Ok(id) => id,
                Err(e) => panic!("subscribe {name}: {e}"),
            };
            streams.push(SimStream {
                id,
                name,
                arrived_live: vec![false; initial as usize],
                log,
                past: Vec::new(),
                earliest: 1,
                subscribed: false,
                base,
                first_base,
                messages: 0,
                skipped: 0,
                resets: 0,
                inflight: Vec::new(),
                unsubscribing: false,
                to_publish: 0,
                hostile: HashSet::new(),
                publish_ids: HashMap::new(),
                current_ref: None,
            });
        }
        Sim {
            scenario,
            rng,
            now: 0,
            core,
            streams,
            queue: BinaryHeap::new(),
            order: 0,
            conn: 0,
            conn_up: false,
            faults_on: true,
            faults_end_at: 0,
            control_free_at: 0,
            timeout: None,
            feeding_reset: None,
            window,
            report: Report::default(),
            trace: std::env::var_os("SEQSYNC_SIM_TRACE").is_some(),
            publishes: HashMap::new(),
            attempts: Vec::new(),
            silent_until: 0,
            subscription_refs: HashSet::new(),
        }
    }

    fn session(&mut self) -> Option<&mut Session<u64>> {
        match &mut self.core {
            Client::Session(c) => Some(c),
            Client::Seq(_) => None,
        }
    }

    fn knobs(&self) -> Option<&SessionScenario> {
        self.scenario.session.as_ref()
    }

    /// Whether the server says nothing right now (a spell of silence).
    fn silent(&self) -> bool {
        self.now < self.silent_until
    }

    fn schedule(&mut self, at: u64, what: What) {
        self.order += 1;
        self.queue.push(Item {
            at,
            order: self.order,
            what,
        });
    }

    /// Mean-`every` spacing with some spread.
    fn spaced(&mut self, every: u64) -> u64 {
        self.rng.between(every / 2, every + every / 2).max(1)
    }

    /// Runs the scenario to the end, checking every event; then checks
    /// liveness and the counters.
    pub fn run(mut self) -> Result<Report, Failure> {
        let sc = self.scenario.clone();
        let mut t = 0;
        for _ in 0..sc.messages {
            t += self.rng.below(2 * sc.publish_gap_ms + 1);
            let stream = self.rng.below(sc.streams as u64) as usize;
            self.streams[stream].to_publish += 1;
            self.schedule(t, What::Publish { stream });
        }
        self.report.last_publish_ms = t;
        self.faults_end_at = t + 1;
        self.schedule(t + 1, What::FaultsEnd);
        self.schedule(sc.heartbeat_ms, What::Heartbeat);
        if sc.cut_every_ms > 0 {
            let at = self.spaced(sc.cut_every_ms);
            self.schedule(at, What::Cut);
        }
        if sc.truncate_every_ms > 0 {
            let at = self.spaced(sc.truncate_every_ms);
            self.schedule(at, What::Truncate);
        }
        if sc.epoch_every_ms > 0 {
            let at = self.spaced(sc.epoch_every_ms);
            self.schedule(at, What::EpochChange);
        }
        if sc.resubscribe_every_ms > 0 {
            let at = self.spaced(sc.resubscribe_every_ms);
            self.schedule(at, What::Resubscribe);
        }
        if let Some(knobs) = sc.session.clone() {
            for _ in 0..knobs.client_publishes {
                let at = self.rng.below(t + 1);
                let stream = self.rng.below(sc.streams as u64) as usize;
                self.schedule(at, What::ClientPublish { stream });
            }
            if knobs.silent_every_ms > 0 {
                let at = self.spaced(knobs.silent_every_ms);
                self.schedule(at, What::Silence);
            }
            // The session asked for its first connection when it was made.
            self.pump()?;
        } else {
            self.pump()?;
            self.conn_up = true;
            if let Client::Seq(core) = &mut self.core {
                core.handle_connected(Millis(0));
            }
            self.pump()?;
        }

        // Long enough for heartbeats and the longest backoff to play out
        // several times; a hostile run checks safety only and stops sooner.
        let settle = if sc.hostile_pct > 0 {
            2 * sc.heartbeat_ms
        } else {
            30_000 + 8 * sc.config.max_backoff_ms + 4 * sc.heartbeat_ms
        };
        let mut steps: u64 = 0;
        loop {
            steps += 1;
            check!(self, steps < 50_000_000, "no progress after {steps} steps");
            let next_item = self.queue.peek().map(|i| i.at);
            let next_timer = self.timeout.map(|m| m.0);
            let at = match (next_item, next_timer) {
                (None, None) => break,
                (Some(a), None) | (None, Some(a)) => a,
                (Some(a), Some(b)) => a.min(b),
            };
            if !self.faults_on && at > self.faults_end_at + settle {
                break;
            }
            check!(self, at >= self.now, "time went back to {at}");
            self.now = at;
            if next_timer == Some(at) {
                self.core.handle_timeout(Millis(at));
                self.pump()?;
                if let Some(t) = self.timeout {
                    check!(
                        self,
                        t.0 > at,
                        "poll_timeout {t:?} not after the handle_timeout it followed"
                    );
                }
                continue;
            }
            let Some(item) = self.queue.pop() else { break };
            let converged_check = matches!(item.what, What::Heartbeat);
            self.step(item.what)?;
            if converged_check && !self.faults_on && self.converged() {
                break;
            }
        }
        self.finish()
    }

    fn step(&mut self, what: What) -> Result<(), Failure> {
        let sc = &self.scenario;
        match what {
            What::Deliver {
                conn,
                stream,
                frame,
            } => {
                if conn != self.conn || !self.conn_up || self.silent() {
                    self.report.lost_in_cut += 1;
                    return Ok(());
                }
                self.deliver(stream, frame)?;
            }
            What::Publish { stream } => self.publish(stream)?,
            What::Heartbeat => {
                let every = sc.heartbeat_ms;
                if self.conn_up && !self.silent() {
                    let mut any = false;
                    for i in 0..self.streams.len() {
                        let s = &self.streams[i];
                        if s.subscribed {
                            any = true;
                            let frame = Frame::Head {
                                seq: s.head(),
                                epoch: s.log.epoch,
                            };
                            self.send_control(i, frame);
                        }
                    }
                    // `{"heads":{}}`: a session without a registered
                    // stream still hears that the connection lives.
                    if !any && self.knobs().is_some() {
                        self.send_control(0, Frame::Beat);
                    }
                }
                self.schedule(self.now + every, What::Heartbeat);
            }
            What::Cut => {
                let every = sc.cut_every_ms;
                if self.faults_on {
                    self.cut()?;
                    let at = self.now + self.spaced(every);
                    self.schedule(at, What::Cut);
                }
            }
            What::Reconnect => {
                self.conn_up = true;
                self.control_free_at = self.now;
                if let Client::Seq(core) = &mut self.core {
                    core.handle_connected(Millis(self.now));
                }
                self.pump()?;
            }
            What::Opens { conn } => {
                let now = Millis(self.now);
                let opened = self.session().map(|session| {
                    session.handle_opened(now, ConnId(conn));
                    session.connection() == Some(ConnId(conn))
                });
                if opened == Some(true) {
                    if self.trace {
                        eprintln!("{:>6} opened {conn}", self.now);
                    }
                    self.report.connections += 1;
                    self.conn = conn;
                    self.conn_up = true;
                    self.control_free_at = self.now;
                    self.silent_until = 0;
                }
                self.pump()?;
            }
            What::Refused { conn } => {
                let now = Millis(self.now);
                if let Some(session) = self.session() {
                    session.handle_closed(now, ConnId(conn), "refused");
                }
                self.pump()?;
            }
            What::Silence => {
                let Some(knobs) = self.knobs().cloned() else {
                    return Ok(());
                };
                if self.faults_on {
                    if self.conn_up {
                        if self.trace {
                            eprintln!("{:>6} silence on {}", self.now, self.conn);
                        }
                        self.report.silences += 1;
                        self.silent_until = self.now + knobs.silent_for_ms;
                    }
                    let at = self.now + self.spaced(knobs.silent_every_ms);
                    self.schedule(at, What::Silence);
                }
            }
            What::ClientPublish { stream } => self.client_publish(stream)?,
            What::Truncate => {
                let every = sc.truncate_every_ms;
                if self.faults_on {
                    let i = self.rng.below(self.streams.len() as u64) as usize;
                    let s = &self.streams[i];
                    let head = s.head();
                    if s.earliest <= head {
                        let raise = self.rng.between(0, head + 1 - s.earliest);
                        self.streams[i].earliest += raise;
                        if self.trace {
                            eprintln!(
                                "{:>6} s{i} earliest -> {}",
                                self.now, self.streams[i].earliest
                            );
                        }
                        self.report.truncations += 1;
                    }
                    let at = self.now + self.spaced(every);
                    self.schedule(at, What::Truncate);
                }
            }
            What::Resubscribe => {
                let every = sc.resubscribe_every_ms;
                if self.faults_on {
                    let i = self.rng.below(self.streams.len() as u64) as usize;
                    self.resubscribe(i)?;
                    let at = self.now + self.spaced(every);
                    self.schedule(at, What::Resubscribe);
                }
            }
            What::EpochChange => {
                let every = sc.epoch_every_ms;
                let with_cut = self.rng.percent(sc.epoch_cut_pct);
                if self.faults_on {
                    let i = self.rng.below(self.streams.len() as u64) as usize;
                    let mut epoch = self.rng.between(1, MAX_SEQ);
                    while self.streams[i].log_of(epoch).is_some() {
                        epoch = self.rng.between(1, MAX_SEQ);
                    }
                    let s = &mut self.streams[i];
                    let old = std::mem::replace(
                        &mut s.log,
                        Log {
                            epoch,
                            entries: Vec::new(),
                        },
                    );
                    s.past.push(old);
                    s.earliest = 1;
                    s.arrived_live.clear();
                    // The new log remembers no publish of the old one.
                    s.publish_ids.clear();
                    self.report.epoch_changes += 1;
                    if self.trace {
                        eprintln!("{:>6} s{i} epoch -> {epoch}", self.now);
                    }
                    if with_cut {
                        self.cut()?;
                    }
                    let at = self.now + self.spaced(every);
                    self.schedule(at, What::EpochChange);
                }
            }
            What::FaultsEnd => {
                self.faults_on = false;
                self.silent_until = 0;
                if self.scenario.mode == DeliveryMode::Latest {
                    self.schedule(self.now + 1, What::FinalPublish);
                }
            }
            What::FinalPublish => {
                // Latest never fetches: one more message per stream, sent on
                // a calm network to a live stream, must bring it to head.
                let live = self.conn_up
                    && self
                        .streams
                        .iter()
                        .all(|s| self.core.phase(s.id) == Some(StreamPhase::Live) && s.subscribed);
                if live {
                    for stream in 0..self.streams.len() {
                        self.publish(stream)?;
                    }
                } else {
                    self.schedule(self.now + 10, What::FinalPublish);
                }
            }
        }
        Ok(())
    }

    /// The application drops a stream and follows it again: from the last
    /// seq it has (as if it had persisted it) or from a fresh snapshot.
    /// Frames still in flight for the old subscription reach the new one,
    /// as an adapter that routes by stream name would deliver them.
    fn resubscribe(&mut self, i: usize) -> Result<(), Failure> {
        self.report.resubscribes += 1;
        if self.trace {
            eprintln!("{:>6} s{i} resubscribe", self.now);
        }
        let now = Millis(self.now);
        self.streams[i].unsubscribing = true;
        let old = self.streams[i].id;
        self.core.unsubscribe(now, old).map_err(|e| e.to_string())?;
        self.pump()?;
        check!(
            self,
            self.core.stats(old).is_none() && self.core.stream_id(&self.streams[i].name).is_none(),
            "stream {i} still known after unsubscribe"
        );
        // A session resumes an ordered stream from the position it reported
        // at the unsubscribe, whatever the application passes.
        let resumes = self.knobs().is_some() && self.scenario.mode == DeliveryMode::Ordered;
        let from_last = self.rng.percent(50) || resumes;
        let s = &mut self.streams[i];
        s.unsubscribing = false;
        s.inflight.clear();
        let start = match (s.base, from_last) {
            (Base::Has { epoch, last }, true) => StartAt::After {
                seq: Seq::new(last).map_err(|e| e.to_string())?,
                epoch: Some(Epoch(epoch)),
            },
            _ => {
                s.base = Base::Awaiting;
                StartAt::Snapshot
            }
        };
        let options = SubscribeOptions {
            start,
            mode: self.scenario.mode,
        };
        let id = self
            .core
            .subscribe(now, &s.name, options)
            .map_err(|e| e.to_string())?;
        check!(
            self,
            id != old,
            "stream {i} got its stale handle {old:?} back"
        );
        let s = &mut self.streams[i];
        s.id = id;
        // The counters belong to the subscription.
        s.messages = 0;
        s.skipped = 0;
        s.resets = 0;
        s.first_base = None;
        self.pump()
    }

    fn cut(&mut self) -> Result<(), Failure> {
        if !self.conn_up {
            return Ok(());
        }
        if self.trace {
            eprintln!("{:>6} cut", self.now);
        }
        self.report.cuts += 1;
        let conn = self.conn;
        self.drop_connection();
        let now = Millis(self.now);
        match &mut self.core {
            Client::Seq(core) => {
                core.handle_disconnected(now);
                let at = self.now + self.rng.between(1, self.scenario.reconnect_ms);
                self.schedule(at, What::Reconnect);
            }
            Client::Session(session) => session.handle_closed(now, ConnId(conn), "cut"),
        }
        self.pump()
    }

    /// The server forgets the connection: subscriptions, requests in flight.
    fn drop_connection(&mut self) {
        self.conn_up = false;
        self.conn += 1;
        for s in &mut self.streams {
            s.subscribed = false;
            s.inflight.clear();
        }
    }

    fn publish(&mut self, i: usize) -> Result<(), Failure> {
        let filtered = self.faults_on && self.rng.percent(self.scenario.filtered_pct);
        let s = &mut self.streams[i];
        let seq = s.head() + 1;
        let epoch = s.log.epoch;
        let payload = msg_payload(i, epoch, seq);
        s.log.entries.push((!filtered).then_some(payload));
        s.arrived_live.push(false);
        let tail = self.faults_on && s.to_publish == 1 && self.scenario.drop_tail;
        s.to_publish = s.to_publish.saturating_sub(1);
        if tail {
            self.report.live_sent += 1;
            self.report.live_dropped += 1;
        } else if self.conn_up && s.subscribed {
            if !filtered {
                self.send_live(i, seq, epoch, payload);
            }
            if self.faults_on && self.rng.percent(self.scenario.hostile_pct) {
                self.inject_hostile(i);
            }
        }
        Ok(())
    }

    fn send_live(&mut self, stream: usize, seq: u64, epoch: u64, payload: u64) {
        self.report.live_sent += 1;
        let sc = &self.scenario;
        let (drop, dup, reorder) = if self.faults_on {
            (sc.drop_pct, sc.dup_pct, sc.reorder_pct)
        } else {
            (0, 0, 0)
        };
        let copies = if self.rng.percent(dup) {
            self.report.live_duplicated += 1;
            2
        } else {
            1
        };
        let (base, window) = (sc.live_delay_ms, sc.reorder_window_ms);
        for _ in 0..copies {
            if self.rng.percent(drop) {
                self.report.live_dropped += 1;
                continue;
            }
            let mut at = self.now + base;
            if self.rng.percent(reorder) {
                at += self.rng.between(0, window);
            }
            if self.scenario.control_first {
                at = at.max(self.control_free_at);
            }
            let frame = Frame::Msg {
                seq,
                epoch,
                payload,
            };
            let conn = self.conn;
            self.schedule(
                at,
                What::Deliver {
                    conn,
                    stream,
                    frame,
                },
            );
        }
    }

    fn inject_hostile(&mut self, i: usize) {
        self.report.hostile += 1;
        let head = self.streams[i].head();
        let seq = match self.rng.below(5) {
            0 => self.rng.between(1, MAX_SEQ),
            1 => MAX_SEQ - self.rng.below(4),
            2 => head + self.rng.between(1, 4 * self.window),
            3 => MAX_SEQ + 1 + self.rng.below(1 << 20),
            _ => 0,
        };
        self.streams[i].hostile.insert(seq);
        let frame = Frame::Msg {
            seq,
            epoch: self.streams[i].log.epoch,
            payload: HOSTILE,
        };
        let (at, conn) = (self.now + self.scenario.live_delay_ms, self.conn);
        self.schedule(
            at,
            What::Deliver {
                conn,
                stream: i,
                frame,
            },
        );
    }

    fn send_control(&mut self, stream: usize, frame: Frame) {
        let sc = &self.scenario;
        let delay = if self.rng.percent(sc.slow_control_pct) {
            self.rng.between(1, 3 * sc.config.request_timeout_ms)
        } else {
            self.rng.between(1, sc.control_delay_ms.max(1))
        };
        let at = (self.now + delay).max(self.control_free_at);
        self.control_free_at = at;
        let conn = self.conn;
        self.schedule(
            at,
            What::Deliver {
                conn,
                stream,
                frame,
            },
        );
    }

    fn deliver(&mut self, i: usize, frame: Frame) -> Result<(), Failure> {
        if self.trace {
            eprintln!("{:>6} -> s{i} {frame:?}", self.now);
        }
        let now = Millis(self.now);
        let id = self.streams[i].id;
        if let Client::Session(session) = &mut self.core {
            session.handle_received(now, 64);
        }
        let answer_ref = match &frame {
            Frame::Snapshot { reference, .. }
            | Frame::Subscribed { reference, .. }
            | Frame::History { reference, .. }
            | Frame::Reset { reference, .. }
            | Frame::Error { reference, .. } => reference.as_deref(),
            _ => None,
        };
        if let Some(r) = answer_ref {
            if self.subscription_refs.contains(r)
                && self.streams[i].current_ref.as_deref() != Some(r)
            {
                self.report.late_answers += 1;
            }
        }
        let result = match frame {
            Frame::Msg {
                seq,
                epoch,
                payload,
            } => {
                let s = &mut self.streams[i];
                if epoch == s.log.epoch && payload != HOSTILE {
                    if let Some(flag) = s.arrived_live.get_mut(seq as usize - 1) {
                        *flag = true;
                    }
                }
                match (Seq::new(seq), &mut self.core) {
                    (Ok(seq), Client::Seq(c)) => {
                        c.handle_message(now, id, seq, Some(Epoch(epoch)), payload)
                    }
                    (Ok(seq), Client::Session(c)) => {
                        c.handle_message(now, id, seq, Some(Epoch(epoch)), payload)
                    }
                    (Err(e), _) => Err(e),
                }
            }
            Frame::Snapshot {
                seq,
                epoch,
                state,
                reference,
            } => {
                let seq = Seq::new(seq).map_err(|e| e.to_string())?;
                let epoch = Epoch(epoch);
                match &mut self.core {
                    Client::Seq(c) => c.handle_snapshot(now, id, seq, epoch, state),
                    Client::Session(c) => {
                        c.handle_snapshot(now, id, seq, epoch, state, reference.as_deref())
                    }
                }
            }
            Frame::Subscribed {
                epoch,
                head,
                reference,
            } => {
                let head = Seq::new(head).map_err(|e| e.to_string())?;
                let epoch = Epoch(epoch);
                match &mut self.core {
                    Client::Seq(c) => c.handle_subscribed(now, id, epoch, head),
                    Client::Session(c) => {
                        c.handle_subscribed(now, id, epoch, head, reference.as_deref())
                    }
                }
            }
            Frame::History {
                from,
                to,
                epoch,
                messages,
                reference,
            } => {
                // Without request ids an answer to an earlier attempt counts
                // for every request it overlaps.
                self.streams[i]
                    .inflight
                    .retain(|&(a, b, _)| b < from || to < a);
                self.report.history_messages += messages.len() as u64;
                let range = SeqRange::from_u64(from, to).map_err(|e| e.to_string())?;
                let messages = messages
                    .into_iter()
                    .map(|(s, p)| Seq::new(s).map(|s| (s, p)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                let epoch = Some(Epoch(epoch));
                let r = match &mut self.core {
                    Client::Seq(c) => c.handle_history(now, id, range, epoch, messages),
                    Client::Session(c) => {
                        c.handle_history(now, id, range, epoch, messages, reference.as_deref())
                    }
                };
                check!(self, r.is_ok(), "history answer rejected: {r:?}");
                r
            }
            Frame::Head { seq, epoch } => {
                let seq = Seq::new(seq).map_err(|e| e.to_string())?;
                let epoch = Some(Epoch(epoch));
                match &mut self.core {
                    Client::Seq(c) => c.handle_head(now, id, seq, epoch),
                    Client::Session(c) => c.handle_head(now, id, seq, epoch),
                }
            }
            Frame::Reset {
                reason,
                earliest,
                reference,
            } => {
                let earliest = earliest
                    .map(Seq::new)
                    .transpose()
                    .map_err(|e| e.to_string())?;
                self.feeding_reset = Some(i);
                match &mut self.core {
                    Client::Seq(c) => c.handle_reset(now, id, reason, earliest),
                    Client::Session(c) => {
                        c.handle_reset(now, id, reason, earliest, reference.as_deref())
                    }
                }
            }
            Frame::Error { code, reference } => {
                if let Client::Session(c) = &mut self.core {
                    c.handle_error(now, code, "refused", reference.as_deref());
                }
                Ok(())
            }
            Frame::Beat => Ok(()),
            Frame::Ack { id: wire_id, seq } => {
                let name = self.streams[i].name.clone();
                if let (Client::Session(c), Ok(seq)) = (&mut self.core, Seq::new(seq)) {
                    c.handle_ack(now, &wire_id, &name, seq);
                }
                Ok(())
            }
        };
        if result.is_err() {
            self.report.rejected += 1;
            check!(
                self,
                self.scenario.hostile_pct > 0,
                "input rejected: {result:?}"
            );
        }
        let pumped = self.pump();
        self.feeding_reset = None;
        pumped
    }

    /// Drains the sequencer in its documented order: requests, timeout,
    /// events. Events are checked before requests are answered so that a
    /// request is judged against what the application has seen.
    fn pump(&mut self) -> Result<(), Failure> {
        let core = match &mut self.core {
            Client::Seq(core) => core,
            Client::Session(_) => return self.pump_session(),
        };
        let mut requests = Vec::new();
        while let Some(r) = core.poll_request() {
            requests.push(r);
        }
        self.timeout = core.poll_timeout();
        let mut events = Vec::new();
        while let Some(e) = core.poll_event() {
            events.push(e);
        }
        for e in events {
            self.on_event(e)?;
        }
        self.check_requests(requests.len())?;
        for r in requests {
            self.on_request(r, None)?;
        }
        self.check_buffers()
    }

    /// Drains the session in its documented order: transmits, timeout,
    /// events; then answers what it sent, as the server would. Events are
    /// checked first here too.
    fn pump_session(&mut self) -> Result<(), Failure> {
        let mut transmits = Vec::new();
        let mut events = Vec::new();
        if let Client::Session(session) = &mut self.core {
            while let Some(t) = session.poll_transmit() {
                transmits.push(t);
            }
            self.timeout = session.poll_timeout();
            while let Some(e) = session.poll_event() {
                events.push(e);
            }
        }
        for e in events {
            self.on_session_event(e)?;
        }
        let sends = transmits
            .iter()
            .filter(|t| matches!(t, Transmit::Send { .. }))
            .count();
        self.check_requests(sends)?;
        for t in transmits {
            self.on_transmit(t)?;
        }
        self.check_buffers()
    }

    fn check_requests(&mut self, count: usize) -> Result<(), Failure> {
        self.report.max_requests_per_call = self.report.max_requests_per_call.max(count);
        let bound = self.streams.len() * (self.window as usize + 4)
            + self
                .scenario
                .session
                .as_ref()
                .map_or(0, |k| k.client_publishes);
        check!(self, count <= bound, "{count} requests from one call");
        Ok(())
    }

    fn check_buffers(&mut self) -> Result<(), Failure> {
        for i in 0..self.streams.len() {
            let buffered = self
                .core
                .stats(self.streams[i].id)
                .map_or(0, |s| s.buffered);
            self.report.max_buffered = self.report.max_buffered.max(buffered);
            check!(
                self,
                buffered <= self.window,
                "stream {i} buffers {buffered} > window {}",
                self.window
            );
        }
        Ok(())
    }

    /// What the session asks of the network and the server.
    fn on_transmit(&mut self, transmit: Transmit) -> Result<(), Failure> {
        match transmit {
            Transmit::Connect { conn, endpoint, .. } => {
                self.connect_attempt(conn.0, endpoint);
                Ok(())
            }
            Transmit::Disconnect { conn, .. } => {
                if self.trace {
                    eprintln!("{:>6} session drops {}", self.now, conn.0);
                }
                if self.conn_up && conn.0 == self.conn {
                    self.drop_connection();
                }
                Ok(())
            }
            Transmit::Foreign { request, .. } => Err(format!(
                "a protocol session made a foreign request {request:?}"
            )),
            Transmit::Send { text } => {
                check!(self, self.conn_up, "sends while disconnected: {text}");
                let frame: ClientFrame<serde_json::Value> = match parse_client_frame(&text, 1 << 20)
                {
                    Ok(frame) => frame,
                    Err(e) => return Err(format!("the session sent a bad frame {text}: {e}")),
                };
                self.note_ref(&frame);
                if self.silent() {
                    // The server reads nothing during a spell of silence.
                    return Ok(());
                }
                match frame {
                    ClientFrame::Subscribe {
                        stream,
                        since,
                        epoch,
                        reference,
                    } => self.on_request(
                        Request::Subscribe {
                            stream,
                            since,
                            epoch,
                        },
                        reference.map(|r| r.as_str().to_string()),
                    ),
                    ClientFrame::History {
                        stream,
                        range,
                        reference,
                    } => self.on_request(
                        Request::FetchHistory {
                            stream,
                            range: range.0,
                        },
                        reference.map(|r| r.as_str().to_string()),
                    ),
                    ClientFrame::Snapshot { stream, reference } => self.on_request(
                        Request::FetchSnapshot { stream },
                        reference.map(|r| r.as_str().to_string()),
                    ),
                    ClientFrame::Unsubscribe { stream } => {
                        self.on_request(Request::Unsubscribe { stream }, None)
                    }
                    ClientFrame::Publish { stream, id, data } => {
                        self.on_publish_frame(stream.as_str(), id, &data)
                    }
                }
            }
        }
    }

    /// Records the `ref` a request of the session carries: it names the
    /// stream's current subscription from now on.
    fn note_ref(&mut self, frame: &ClientFrame<serde_json::Value>) {
        let (stream, reference) = match frame {
            ClientFrame::Subscribe {
                stream, reference, ..
            }
            | ClientFrame::History {
                stream, reference, ..
            }
            | ClientFrame::Snapshot { stream, reference } => (stream, reference),
            _ => return,
        };
        let (Some(i), Some(reference)) = (self.index_by_name(stream.as_str()), reference) else {
            return;
        };
        let reference = reference.as_str().to_string();
        self.subscription_refs.insert(reference.clone());
        self.streams[i].current_ref = Some(reference);
    }

    /// A connection attempt: it opens, is refused, or never answers.
    fn connect_attempt(&mut self, conn: u64, endpoint: usize) {
        let Some(knobs) = self.knobs().cloned() else {
            return;
        };
        self.report.connect_attempts += 1;
        self.attempts.push(self.now);
        let down = self.faults_on && knobs.first_endpoint_down && endpoint == 0;
        if down {
            self.report.attempts_to_down_endpoint += 1;
        }
        let delay = self.rng.between(1, 20);
        let (fail, stall) = if self.faults_on {
            (knobs.connect_fail_pct, knobs.connect_stall_pct)
        } else {
            (0, 0)
        };
        if self.trace {
            eprintln!("{:>6} attempt {conn} to endpoint {endpoint}", self.now);
        }
        if down || self.rng.percent(fail) {
            self.schedule(self.now + delay, What::Refused { conn });
        } else if self.rng.percent(stall) {
            // Nothing: the session gives the attempt up itself.
        } else {
            if endpoint != 0 {
                self.report.failovers += 1;
            }
            self.schedule(self.now + delay, What::Opens { conn });
        }
    }

    fn index_of(&self, id: StreamId) -> Option<usize> {
        self.streams.iter().position(|s| s.id == id)
    }

    fn index_by_name(&self, name: &str) -> Option<usize> {
        self.streams.iter().position(|s| s.name == name)
    }

    fn on_event(&mut self, event: Event<u64>) -> Result<(), Failure> {
        if self.trace {
            eprintln!("{:>6}    event {event:?}", self.now);
        }
        let Some(i) = self.index_of(event.stream()) else {
            return Err(format!("event for unknown stream: {event:?}"));
        };
        let ordered = self.scenario.mode == DeliveryMode::Ordered;
        let hostile = self.scenario.hostile_pct > 0;
        let server_epoch = self.streams[i].log.epoch;
        match event {
            Event::Message { seq, payload, .. } => {
                let seq = seq.get();
                let s = &self.streams[i];
                let Base::Has { epoch, last } = s.base else {
                    return Err(format!(
                        "seed {:#x} t={}: stream {i} message {seq} before any snapshot",
                        self.scenario.seed, self.now
                    ));
                };
                if ordered {
                    check!(
                        self,
                        seq == last + 1,
                        "stream {i}: message {seq} after {last}"
                    );
                } else {
                    check!(
                        self,
                        seq > last,
                        "stream {i}: latest message {seq} after {last}"
                    );
                }
                let expected = s
                    .log_of(epoch)
                    .and_then(|l| l.entries.get(seq as usize - 1).copied());
                let forged_ok = hostile && payload == HOSTILE && s.hostile.contains(&seq);
                check!(
                    self,
                    forged_ok || expected == Some(Some(payload)),
                    "stream {i}: message {seq} of epoch {epoch} has payload {payload:#x}, log says {expected:?}"
                );
                let s = &mut self.streams[i];
                s.base = Base::Has { epoch, last: seq };
                s.messages += 1;
                self.report.delivered += 1;
                self.report.settled_ms = self.now;
            }
            Event::Skipped { range, .. } => {
                let (a, b) = (range.start().get(), range.end().get());
                check!(self, ordered, "stream {i}: skipped {range} in latest mode");
                let s = &self.streams[i];
                let Base::Has { epoch, last } = s.base else {
                    return Err(format!("stream {i}: skipped {range} before any snapshot"));
                };
                check!(
                    self,
                    a == last + 1,
                    "stream {i}: skipped {range} after {last}"
                );
                if !hostile {
                    let log = s.log_of(epoch);
                    for seq in a..=b {
                        let entry = log.and_then(|l| l.entries.get(seq as usize - 1));
                        check!(
                            self,
                            entry == Some(&None),
                            "stream {i}: skipped seq {seq} that the log holds as {entry:?}"
                        );
                    }
                }
                self.streams[i].base = Base::Has { epoch, last: b };
                self.report.settled_ms = self.now;
                self.report.skipped += b - a + 1;
                self.streams[i].skipped += b - a + 1;
            }
            Event::Snapshot {
                seq, epoch, state, ..
            } => {
                let (seq, epoch) = (seq.get(), epoch.0);
                let s = &self.streams[i];
                match s.base {
                    Base::Awaiting => {}
                    Base::Has { epoch: e, last } => {
                        check!(
                            self,
                            !ordered,
                            "stream {i}: snapshot at {seq} without a reset (has {last} of epoch {e})"
                        );
                        check!(
                            self,
                            e != epoch || seq > last,
                            "stream {i}: latest snapshot at {seq} not newer than {last}"
                        );
                    }
                }
                let len = s.log_of(epoch).map(|l| l.entries.len() as u64);
                check!(
                    self,
                    len.is_some_and(|len| seq <= len),
                    "stream {i}: snapshot at {seq} of epoch {epoch}, log length {len:?}"
                );
                check!(
                    self,
                    state == state_value(i, epoch, seq),
                    "stream {i}: snapshot state {state:#x} is not the state at {seq}"
                );
                let s = &mut self.streams[i];
                s.base = Base::Has { epoch, last: seq };
                s.first_base.get_or_insert(seq);
                self.report.settled_ms = self.now;
            }
            Event::Reset { reason, .. } => {
                self.report.resets += 1;
                self.streams[i].resets += 1;
                let fed = self.feeding_reset == Some(i);
                let base = self.streams[i].base;
                match reason {
                    _ if fed || hostile => {}
                    ResetReason::EpochChanged => {
                        let stale = match base {
                            Base::Has { epoch, .. } => epoch == server_epoch,
                            Base::Awaiting => true,
                        };
                        if stale {
                            self.report.stale_epoch_resets += 1;
                            check!(
                                self,
                                !self.scenario.strict_epoch,
                                "stream {i}: epoch_changed reset while the stream has the server's current epoch ({base:?})"
                            );
                        }
                    }
                    other => {
                        return Err(format!(
                            "seed {:#x} t={}: stream {i}: {other:?} reset the server never caused (view {base:?}, head {}, earliest {})",
                            self.scenario.seed,
                            self.now,
                            self.streams[i].head(),
                            self.streams[i].earliest
                        ));
                    }
                }
                // What the stream asked before the reset no longer counts.
                self.streams[i].base = Base::Awaiting;
                self.streams[i].inflight.clear();
            }
            Event::GapDetected { range, .. } => {
                // A gap lies after what the application has and inside the
                // log it belongs to.
                let s = &self.streams[i];
                if let (Base::Has { epoch, last }, false) = (s.base, hostile) {
                    let len = s.log_of(epoch).map_or(0, |l| l.entries.len() as u64);
                    check!(
                        self,
                        range.start().get() > last && range.end().get() <= len,
                        "stream {i}: gap {range} with {last} delivered and log length {len}"
                    );
                }
            }
            Event::Stalled { .. } => self.report.stalls += 1,
            Event::GapHealed { .. } | Event::PhaseChanged { .. } => {}
        }
        Ok(())
    }

    /// One event of the session: stream events go through `on_event`; the
    /// rest are checked here.
    fn on_session_event(&mut self, event: SessionEvent<u64>) -> Result<(), Failure> {
        if self.trace && !matches!(event, SessionEvent::Stream(_)) {
            eprintln!("{:>6}    session {event:?}", self.now);
        }
        match event {
            SessionEvent::Stream(event) => self.on_event(event)?,
            SessionEvent::PublishAcked { publish, seq } => {
                let Some(p) = self.publishes.get_mut(&publish) else {
                    return Err(format!("ack of a publish nobody made: {publish:?}"));
                };
                check!(
                    self,
                    p.outcome.is_none(),
                    "publish {publish:?} ends twice: acked after {:?}",
                    self.publishes.get(&publish).map(|p| &p.outcome)
                );
                p.outcome = Some(Ok(seq.get()));
                let (i, payload) = (p.stream, p.payload);
                let s = &self.streams[i];
                let stored = std::iter::once(&s.log)
                    .chain(s.past.iter())
                    .any(|log| log.entries.get(seq.get() as usize - 1) == Some(&Some(payload)));
                check!(
                    self,
                    stored,
                    "publish {publish:?} acked as seq {seq}, which does not hold its payload"
                );
                self.report.publishes_acked += 1;
            }
            SessionEvent::PublishFailed { publish, error } => {
                let Some(p) = self.publishes.get_mut(&publish) else {
                    return Err(format!("failure of a publish nobody made: {publish:?}"));
                };
                check!(
                    self,
                    p.outcome.is_none(),
                    "publish {publish:?} ends twice: {error:?} after {:?}",
                    self.publishes.get(&publish).map(|p| &p.outcome)
                );
                // The server refuses only with codes a retry fixes, and
                // nothing closes the session: only a timeout may end one.
                check!(
                    self,
                    error == PublishError::TimedOut,
                    "publish {publish:?} failed with {error:?}"
                );
                p.outcome = Some(Err(error));
                self.report.publishes_timed_out += 1;
            }
            SessionEvent::Position { stream, seq, epoch } => {
                self.report.positions += 1;
                let Some(i) = self.index_by_name(stream.as_str()) else {
                    return Err(format!("position of an unknown stream {stream}"));
                };
                let want = Base::Has {
                    epoch: epoch.0,
                    last: seq.get(),
                };
                check!(
                    self,
                    self.streams[i].base == want,
                    "stream {i}: position {seq} of epoch {epoch} reported, application has {:?}",
                    self.streams[i].base
                );
            }
            SessionEvent::Closed { reason } => {
                return Err(format!("the session closed: {reason:?}"));
            }
            SessionEvent::Stopped { reason } => {
                return Err(format!("the session stopped connecting: {reason:?}"));
            }
            SessionEvent::Disconnected { reason, .. } => {
                if reason.starts_with("no frame") {
                    self.report.dead_peers += 1;
                }
            }
            SessionEvent::Connecting { .. }
            | SessionEvent::Connected { .. }
            | SessionEvent::Refused { .. }
            | SessionEvent::ServerError { .. } => {}
        }
        Ok(())
    }

    /// A request of the client, with its `ref` (a session's only).
    fn on_request(&mut self, request: Request, reference: Option<String>) -> Result<(), Failure> {
        if self.trace {
            eprintln!("{:>6} <- {request:?} ref {reference:?}", self.now);
        }
        let session = self.knobs().is_some();
        let echo = self.knobs().is_none_or(|k| k.echo_ref);
        // What the answers carry back: the `ref`, when the server echoes it.
        let answer_ref = if echo { reference.clone() } else { None };
        check!(
            self,
            self.conn_up,
            "request while disconnected: {request:?}"
        );
        let refused = self.faults_on && self.rng.percent(self.scenario.refuse_pct);
        let ordered = self.scenario.mode == DeliveryMode::Ordered;
        let hostile = self.scenario.hostile_pct > 0;
        match request {
            Request::Subscribe {
                stream,
                since,
                epoch,
            } => {
                let Some(i) = self.index_by_name(stream.as_str()) else {
                    return Err(format!("subscribe for unknown stream {stream}"));
                };
                // A refused subscribe is invisible to the bare sequencer,
                // which takes any later `subscribed` or `snapshot` for the
                // stream as its answer. After a resubscribe on the same
                // connection that can be the reply to the dropped
                // subscription, leaving the stream unregistered for good; so
                // sequencer runs with resubscriptions refuse only the other
                // requests. A session matches answers by `ref`, and without
                // `ref` its silence check subscribes such a stream again.
                if refused && (session || self.scenario.resubscribe_every_ms == 0) {
                    self.report.refused += 1;
                    if self.trace {
                        eprintln!("{:>6}    refused", self.now);
                    }
                    self.refuse(i, ErrorCode::RateLimited, answer_ref);
                    return Ok(());
                }
                self.streams[i].subscribed = true;
                let s = &self.streams[i];
                let (head, earliest, server_epoch) = (s.head(), s.earliest, s.log.epoch);
                let Some(since) = since else {
                    self.send_snapshot(i, answer_ref);
                    return Ok(());
                };
                let since = since.get();
                check!(
                    self,
                    ordered,
                    "stream {i}: latest stream resumes with since"
                );
                match s.base {
                    Base::Has { epoch: e, last } => {
                        check!(
                            self,
                            hostile || since == last,
                            "stream {i}: resumes since {since}, application has {last}"
                        );
                        check!(
                            self,
                            epoch.is_none_or(|x| x.0 == e),
                            "stream {i}: resumes with epoch {epoch:?}, application has {e}"
                        );
                    }
                    Base::Awaiting => {
                        return Err(format!("stream {i}: resumes since {since} with no base"));
                    }
                }
                let frame = if epoch.is_some_and(|e| e.0 != server_epoch) {
                    Frame::Reset {
                        reason: ResetReason::EpochChanged,
                        earliest: None,
                        reference: answer_ref,
                    }
                } else if since + 1 < earliest && since < head {
                    Frame::Reset {
                        reason: ResetReason::HistoryUnavailable,
                        earliest: Some(earliest),
                        reference: answer_ref,
                    }
                } else {
                    Frame::Subscribed {
                        epoch: server_epoch,
                        head,
                        reference: answer_ref,
                    }
                };
                self.send_control(i, frame);
            }
            Request::FetchHistory { stream, range } => {
                let Some(i) = self.index_by_name(stream.as_str()) else {
                    return Err(format!("history for unknown stream {stream}"));
                };
                check!(
                    self,
                    ordered,
                    "stream {i}: history request {range} in latest mode"
                );
                self.report.history_requests += 1;
                let (from, to) = (range.start().get(), range.end().get());
                // One request in flight per range: asking again for a seq
                // is allowed only once its earlier request timed out.
                let timeout = self.scenario.config.request_timeout_ms;
                let now = self.now;
                let s = &self.streams[i];
                if let Some(&(a, b, at)) = s
                    .inflight
                    .iter()
                    .find(|&&(a, b, at)| a <= to && from <= b && now < at + timeout)
                {
                    return Err(format!(
                        "seed {:#x} t={now}: stream {i}: asks {range} while {a}..={b} (sent at {at}) is in flight",
                        self.scenario.seed
                    ));
                }
                self.streams[i].inflight.push((from, to, now));
                let s = &self.streams[i];
                match s.base {
                    Base::Has { epoch, last } => {
                        check!(
                            self,
                            from > last,
                            "stream {i}: asks {range} but the application has {last}"
                        );
                        if epoch == s.log.epoch && !hostile {
                            check!(
                                self,
                                to <= s.head(),
                                "stream {i}: asks {range} beyond head {}",
                                s.head()
                            );
                        }
                    }
                    Base::Awaiting => {
                        return Err(format!("stream {i}: asks {range} with no base"));
                    }
                }
                let head = s.head();
                if refused {
                    self.report.refused += 1;
                    if self.trace {
                        eprintln!("{:>6}    refused", self.now);
                    }
                    self.refuse(i, ErrorCode::RateLimited, answer_ref);
                } else if from < s.earliest {
                    let earliest = s.earliest;
                    self.send_control(
                        i,
                        Frame::Reset {
                            reason: ResetReason::HistoryUnavailable,
                            earliest: Some(earliest),
                            reference: answer_ref,
                        },
                    );
                } else if from > head {
                    // `error {code: "range_beyond_head"}`: nothing for the
                    // bare sequencer.
                    self.report.beyond_head += 1;
                    self.refuse(i, ErrorCode::RangeBeyondHead, answer_ref);
                } else {
                    let page = self.rng.between(1, self.scenario.max_page);
                    let covered_to = to.min(head).min(from + page - 1);
                    let s = &self.streams[i];
                    let messages = (from..=covered_to)
                        .filter_map(|seq| s.log.entries[seq as usize - 1].map(|p| (seq, p)))
                        .collect();
                    let frame = Frame::History {
                        from,
                        to: covered_to,
                        epoch: s.log.epoch,
                        messages,
                        reference: answer_ref,
                    };
                    self.send_control(i, frame);
                }
            }
            Request::FetchSnapshot { stream } => {
                let Some(i) = self.index_by_name(stream.as_str()) else {
                    return Err(format!("snapshot for unknown stream {stream}"));
                };
                if refused {
                    self.report.refused += 1;
                    if self.trace {
                        eprintln!("{:>6}    refused", self.now);
                    }
                    self.refuse(i, ErrorCode::RateLimited, answer_ref);
                } else {
                    self.send_snapshot(i, answer_ref);
                }
            }
            Request::Unsubscribe { stream } => {
                let i = self.index_by_name(stream.as_str());
                let Some(i) = i.filter(|&i| self.streams[i].unsubscribing) else {
                    return Err(format!("unsubscribe {stream} nobody asked for"));
                };
                self.streams[i].subscribed = false;
            }
        }
        Ok(())
    }

    fn send_snapshot(&mut self, i: usize, reference: Option<String>) {
        self.report.snapshots_sent += 1;
        let s = &self.streams[i];
        let (seq, epoch) = (s.head(), s.log.epoch);
        let frame = Frame::Snapshot {
            seq,
            epoch,
            state: state_value(i, epoch, seq),
            reference,
        };
        self.send_control(i, frame);
    }

    /// An `error` frame refusing a request of stream `i`; only a session
    /// gets one (the bare sequencer never sees errors). A server that does
    /// not echo `ref` names the stream instead.
    fn refuse(&mut self, i: usize, code: ErrorCode, reference: Option<String>) {
        if self.knobs().is_none() {
            return;
        }
        let reference = reference.or_else(|| Some(self.streams[i].name.clone()));
        self.send_control(i, Frame::Error { code, reference });
    }

    /// A `publish` frame: stored once per id per log, answered with `ack`
    /// (or, sometimes, `internal` although stored, or `rate_limited` and not
    /// stored).
    fn on_publish_frame(
        &mut self,
        stream: &str,
        id: String,
        data: &serde_json::Value,
    ) -> Result<(), Failure> {
        self.report.publish_frames += 1;
        let Some(i) = self.index_by_name(stream) else {
            return Err(format!("publish to unknown stream {stream}"));
        };
        let Some(payload) = data.as_u64().filter(|p| p & CLIENT_TAG != 0) else {
            return Err(format!(
                "publish with a payload the application never gave: {data}"
            ));
        };
        let internal_pct = self.knobs().map_or(0, |k| k.internal_pct);
        if self.faults_on && self.rng.percent(self.scenario.refuse_pct) {
            self.report.refused += 1;
            // A publish is always named by its id: that predates `ref`.
            self.send_control(
                i,
                Frame::Error {
                    code: ErrorCode::RateLimited,
                    reference: Some(id),
                },
            );
            return Ok(());
        }
        let s = &mut self.streams[i];
        let seq = match s.publish_ids.get(&id) {
            Some(&seq) => seq,
            None => {
                let seq = s.head() + 1;
                s.log.entries.push(Some(payload));
                s.arrived_live.push(false);
                s.publish_ids.insert(id.clone(), seq);
                let epoch = s.log.epoch;
                if self.conn_up && self.streams[i].subscribed {
                    self.send_live(i, seq, epoch, payload);
                }
                seq
            }
        };
        if self.faults_on && self.rng.percent(internal_pct) {
            self.send_control(
                i,
                Frame::Error {
                    code: ErrorCode::Internal,
                    reference: Some(id),
                },
            );
        } else {
            self.send_control(i, Frame::Ack { id, seq });
        }
        Ok(())
    }

    /// The application publishes through the session.
    fn client_publish(&mut self, i: usize) -> Result<(), Failure> {
        self.report.client_publishes += 1;
        let payload = CLIENT_TAG | self.report.client_publishes;
        let name = self.streams[i].name.clone();
        let now = Millis(self.now);
        let Some(session) = self.session() else {
            return Ok(());
        };
        match session.publish(now, &name, &payload.to_string()) {
            Ok(publish) => {
                self.publishes.insert(
                    publish,
                    ClientPublish {
                        stream: i,
                        payload,
                        outcome: None,
                    },
                );
            }
            Err(e) => return Err(format!("publish refused by the session: {e}")),
        }
        self.pump()
    }

    /// Every publish ended exactly once, none was stored twice, and the
    /// session never reconnected in a hot loop.
    fn finish_session(&mut self) -> Result<(), Failure> {
        let mut open: Vec<PublishId> = self
            .publishes
            .iter()
            .filter(|(_, p)| p.outcome.is_none())
            .map(|(id, _)| *id)
            .collect();
        open.sort_unstable();
        check!(self, open.is_empty(), "publishes never ended: {open:?}");
        for (i, s) in self.streams.iter().enumerate() {
            for log in std::iter::once(&s.log).chain(s.past.iter()) {
                let mut seen = HashSet::new();
                for payload in log.entries.iter().flatten() {
                    if payload & CLIENT_TAG != 0 && payload & HOSTILE == 0 {
                        check!(
                            self,
                            seen.insert(*payload),
                            "stream {i}: publish {payload:#x} stored twice in epoch {}",
                            log.epoch
                        );
                    }
                }
            }
        }
        let mut most = 0;
        let mut first = 0;
        for (last, &at) in self.attempts.iter().enumerate() {
            while self.attempts[first] + 60_000 <= at {
                first += 1;
            }
            most = most.max(last + 1 - first);
        }
        self.report.max_attempts_per_minute = most as u64;
        Ok(())
    }

    fn converged(&self) -> bool {
        // A session always has a timer (the dead-peer and silence checks):
        // it is at rest when its streams are and no publish is pending.
        let at_rest = match &self.core {
            Client::Seq(_) => self.timeout.is_none(),
            Client::Session(session) => {
                session.sequencer().poll_timeout().is_none() && session.pending_publishes() == 0
            }
        };
        self.conn_up
            && at_rest
            && self.streams.iter().all(|s| {
                s.base
                    == Base::Has {
                        epoch: s.log.epoch,
                        last: s.head(),
                    }
            })
    }

    /// Liveness and counters, after the faults stopped and time settled.
    fn finish(mut self) -> Result<Report, Failure> {
        self.report.end_ms = self.now;
        if let Client::Session(session) = &self.core {
            let stats = session.stats();
            self.report.stale_answers = stats.stale_answers;
            self.report.silence_resubscribes = stats.resubscribes;
            self.finish_session()?;
        }
        let hostile = self.scenario.hostile_pct > 0;
        for i in 0..self.streams.len() {
            let s = &self.streams[i];
            let Some(stats) = self.core.stats(s.id) else {
                return Err(format!("stream {i} vanished"));
            };
            check!(
                self,
                stats.delivered == s.messages,
                "stream {i}: stats.delivered {} but {} message events",
                stats.delivered,
                s.messages
            );
            check!(
                self,
                stats.skipped == s.skipped && stats.resets == s.resets,
                "stream {i}: {stats:?} but {} skipped seqs and {} resets seen",
                s.skipped,
                s.resets
            );
            if hostile {
                continue;
            }
            let want = Base::Has {
                epoch: s.log.epoch,
                last: s.head(),
            };
            check!(
                self,
                s.base == want,
                "stream {i} not live at the end: application has {:?}, server {want:?} (earliest {}); stats {stats:?}",
                s.base,
                s.earliest
            );
            check!(
                self,
                stats.buffered == 0,
                "stream {i}: {stats:?} at quiescence"
            );
            check!(
                self,
                stats.last_seq.get() == s.head() && stats.lag == 0,
                "stream {i}: {stats:?} at quiescence, head {}",
                s.head()
            );
            check!(
                self,
                stats.phase == StreamPhase::Live && stats.epoch == Some(Epoch(s.log.epoch)),
                "stream {i}: {stats:?} at quiescence"
            );
            if let (Some(base), true) = (s.first_base, s.past.is_empty()) {
                self.report.missing += s
                    .log
                    .entries
                    .iter()
                    .zip(&s.arrived_live)
                    .skip(base as usize)
                    .filter(|(entry, arrived)| entry.is_some() && !**arrived)
                    .count() as u64;
            }
        }
        Ok(self.report)
    }
}
