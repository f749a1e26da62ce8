//! One test per rule of the connection policy, driven through the
//! `Session`'s public API with virtual time.

use seqsync_core::protocol::ErrorCode;
use seqsync_core::{
    CloseReason, ConnId, Epoch, Error, Event, Millis, PublishError, PublishId, ResetReason, Seq,
    Session, SessionConfig, SessionEvent, StopReason, StreamId, StreamName, StreamPhase,
    SubscribeOptions, Transmit,
};

const EPOCH: Epoch = Epoch(9);

fn seq(n: u64) -> Seq {
    Seq::new(n).expect("test seq in range")
}

fn config() -> SessionConfig {
    SessionConfig {
        endpoints: vec!["ws://a/ws".into(), "ws://b/ws".into()],
        reconnect_initial_ms: 100,
        reconnect_max_ms: 1_600,
        stable_after_ms: 5_000,
        connect_timeout_ms: 1_000,
        initial_connect_timeout_ms: 0,
        heartbeat_timeout_ms: 3_000,
        silence_timeout_ms: 10_000,
        publish_timeout_ms: 20_000,
        ..SessionConfig::default()
    }
}

/// A session, the time, and everything it asked for and told so far.
struct Fixture {
    s: Session<u64>,
    now: u64,
    conn: Option<ConnId>,
    sent: Vec<String>,
    events: Vec<SessionEvent<u64>>,
    connects: Vec<(usize, String)>,
    disconnects: Vec<&'static str>,
}

impl Fixture {
    fn new(config: SessionConfig) -> Fixture {
        Fixture::seeded(config, [3; 32])
    }

    /// A new session whose randomness comes from `seed`.
    fn seeded(config: SessionConfig, seed: [u8; 32]) -> Fixture {
        let s = Session::new(config, seed, Millis(0)).expect("session");
        let mut f = Fixture {
            s,
            now: 0,
            conn: None,
            sent: Vec::new(),
            events: Vec::new(),
            connects: Vec::new(),
            disconnects: Vec::new(),
        };
        f.drain();
        f
    }

    /// A session connected to the first endpoint.
    fn open(config: SessionConfig) -> Fixture {
        let mut f = Fixture::new(config);
        f.opened();
        f
    }

    fn drain(&mut self) {
        while let Some(t) = self.s.poll_transmit() {
            match t {
                Transmit::Connect {
                    conn,
                    endpoint,
                    url,
                } => {
                    self.conn = Some(conn);
                    self.connects.push((endpoint, url));
                }
                Transmit::Send { text } => self.sent.push(text),
                Transmit::Foreign { request, .. } => {
                    panic!("a protocol session made a foreign request {request:?}")
                }
                Transmit::Disconnect { reason, .. } => self.disconnects.push(reason),
            }
        }
        while let Some(e) = self.s.poll_event() {
            self.events.push(e);
        }
    }

    fn at(&mut self, t: u64) -> Millis {
        assert!(t >= self.now, "time goes forward");
        self.now = t;
        Millis(t)
    }

    /// Runs every timeout due up to `t`.
    fn advance(&mut self, t: u64) {
        while let Some(at) = self.s.poll_timeout() {
            if at.0 > t {
                break;
            }
            let now = self.at(at.0.max(self.now));
            self.s.handle_timeout(now);
            self.drain();
        }
        self.at(t);
    }

    fn opened(&mut self) {
        let conn = self.conn.expect("an attempt is under way");
        let now = Millis(self.now);
        self.s.handle_opened(now, conn);
        self.drain();
    }

    fn closed(&mut self, reason: &str) {
        let conn = self.conn.expect("a connection");
        let now = Millis(self.now);
        self.s.handle_closed(now, conn, reason);
        self.drain();
    }

    fn received(&mut self) {
        let now = Millis(self.now);
        self.s.handle_received(now, 10);
    }

    fn subscribe(&mut self, name: &str) -> StreamId {
        let now = Millis(self.now);
        let id = self
            .s
            .subscribe(now, name, SubscribeOptions::default())
            .expect("subscribe");
        self.drain();
        id
    }

    fn publish(&mut self, stream: &str, data: &str) -> PublishId {
        let now = Millis(self.now);
        let id = self.s.publish(now, stream, data).expect("publish");
        self.drain();
        id
    }

    fn wire_id(&self, p: PublishId) -> String {
        self.s.publish_wire_id(p).expect("pending").to_string()
    }

    fn take_sent(&mut self) -> Vec<String> {
        std::mem::take(&mut self.sent)
    }

    fn take_events(&mut self) -> Vec<SessionEvent<u64>> {
        std::mem::take(&mut self.events)
    }

    fn outcome(&self, p: PublishId) -> Vec<&SessionEvent<u64>> {
        self.events
            .iter()
            .filter(|e| {
                matches!(e, SessionEvent::PublishAcked { publish, .. }
                    | SessionEvent::PublishFailed { publish, .. } if *publish == p)
            })
            .collect()
    }

    fn snapshot(&mut self, id: StreamId, at: u64, reference: Option<&str>) {
        self.received();
        let now = Millis(self.now);
        self.s
            .handle_snapshot(now, id, seq(at), EPOCH, at, reference)
            .expect("snapshot");
        self.drain();
    }
}

fn kind(text: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(text).expect("frames are JSON");
    v["type"].as_str().unwrap_or("").to_string()
}

fn field(text: &str, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(text).expect("frames are JSON");
    v[name].clone()
}

#[test]
fn a_new_session_connects_to_the_first_endpoint_with_the_token_encoded() {
    let f = Fixture::new(SessionConfig {
        token: Some("a+b/c=".into()),
        ..config()
    });
    assert_eq!(
        f.connects,
        [(0, "ws://a/ws?token=a%2Bb%2Fc%3D".to_string())]
    );
    assert!(matches!(
        f.events[..],
        [SessionEvent::Connecting {
            endpoint: 0,
            attempt: 0
        }]
    ));
}

#[test]
fn no_endpoint_is_an_error() {
    assert!(matches!(
        Session::<u64>::new(SessionConfig::default(), [0; 32], Millis(0)),
        Err(Error::NoEndpoints)
    ));
}

#[test]
fn on_connect_streams_subscribe_first_then_pending_publishes_go_again() {
    let mut f = Fixture::new(config());
    f.subscribe("room");
    let p = f.publish("room", "1");
    assert!(f.sent.is_empty(), "nothing is sent before a connection");
    f.opened();
    let sent = f.take_sent();
    assert_eq!(
        sent.iter().map(|t| kind(t)).collect::<Vec<_>>(),
        ["subscribe", "publish"]
    );
    assert_eq!(field(&sent[0], "ref"), "0.0");
    assert_eq!(field(&sent[1], "id"), f.wire_id(p).as_str());
    // Cut and back: the same publish again, with the same id, after the
    // subscribe that now resumes nothing (no snapshot came).
    f.closed("cut");
    f.advance(200);
    f.opened();
    let again = f.take_sent();
    assert_eq!(
        again.iter().map(|t| kind(t)).collect::<Vec<_>>(),
        ["subscribe", "publish"]
    );
    assert_eq!(field(&again[1], "id"), field(&sent[1], "id"));
}

#[test]
fn publish_ids_are_random_uuids() {
    let mut f = Fixture::open(config());
    let ids: Vec<String> = (0..50)
        .map(|i| {
            let p = f.publish("s", &i.to_string());
            f.wire_id(p)
        })
        .collect();
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 50);
    for id in &ids {
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(id.as_bytes()[14], b'4', "version 4: {id}");
    }
    // Another seed gives other ids.
    let mut other = Session::<u64>::new(config(), [4; 32], Millis(0)).expect("session");
    let p = other.publish(Millis(0), "s", "0").expect("publish");
    assert_ne!(other.publish_wire_id(p), Some(ids[0].as_str()));
}

#[test]
fn an_ack_completes_its_publish_once() {
    let mut f = Fixture::open(config());
    let p = f.publish("s", r#"{"x":1}"#);
    let id = f.wire_id(p);
    // An ack naming another stream is not this publish's.
    f.s.handle_ack(Millis(1), &id, "other", seq(3));
    f.drain();
    assert!(f.outcome(p).is_empty());
    f.s.handle_ack(Millis(1), &id, "s", seq(3));
    f.s.handle_ack(Millis(2), &id, "s", seq(3));
    f.drain();
    assert_eq!(
        f.outcome(p),
        [&SessionEvent::PublishAcked {
            publish: p,
            seq: seq(3)
        }]
    );
    assert_eq!(f.s.stats().published, 1);
    assert_eq!(f.s.pending_publishes(), 0);
}

#[test]
fn rate_limited_and_internal_are_sent_again_with_the_same_id() {
    for code in [ErrorCode::RateLimited, ErrorCode::Internal] {
        let mut f = Fixture::open(config());
        let p = f.publish("s", "1");
        let id = f.wire_id(p);
        f.take_sent();
        f.s.handle_error(Millis(0), code, "slow down", Some(&id));
        f.drain();
        assert!(f.outcome(p).is_empty(), "{code}: not failed");
        assert!(f.sent.is_empty(), "{code}: not at once");
        // The first retry waits at most the first backoff bound.
        f.advance(100);
        let sent = f.take_sent();
        assert_eq!(sent.len(), 1, "{code}: sent again");
        assert_eq!(field(&sent[0], "id"), id.as_str());
        assert_eq!(f.s.stats().publish_retries, 1);
    }
}

#[test]
fn other_refusals_fail_the_publish_with_the_code() {
    let mut f = Fixture::open(config());
    let p = f.publish("s", "1");
    let id = f.wire_id(p);
    f.s.handle_error(Millis(0), ErrorCode::Unauthorized, "no", Some(&id));
    f.drain();
    assert_eq!(
        f.outcome(p),
        [&SessionEvent::PublishFailed {
            publish: p,
            error: PublishError::Refused {
                code: ErrorCode::Unauthorized,
                message: "no".into()
            }
        }]
    );
}

#[test]
fn an_unacknowledged_publish_times_out_once() {
    let mut f = Fixture::open(config());
    let p = f.publish("s", "1");
    f.advance(19_999);
    f.received();
    assert!(f.outcome(p).is_empty());
    f.advance(20_000);
    assert_eq!(
        f.outcome(p),
        [&SessionEvent::PublishFailed {
            publish: p,
            error: PublishError::TimedOut
        }]
    );
    // A late ack finds nothing.
    f.s.handle_ack(Millis(20_001), "whatever", "s", seq(1));
    f.drain();
    assert_eq!(f.outcome(p).len(), 1);
}

#[test]
fn publishes_over_the_limits_are_typed_errors() {
    let mut f = Fixture::open(SessionConfig {
        max_pending_publishes: 1,
        max_publish_bytes: 100,
        ..config()
    });
    assert!(matches!(
        f.s.publish(Millis(0), "s", &"7".repeat(100)),
        Err(Error::PublishTooLarge { max: 100, .. })
    ));
    assert!(matches!(
        f.s.publish(Millis(0), "bad\nname", "1"),
        Err(Error::InvalidStreamName { .. })
    ));
    f.publish("s", "1");
    assert_eq!(
        f.s.publish(Millis(0), "s", "2"),
        Err(Error::TooManyPendingPublishes { limit: 1 })
    );
}

#[test]
fn failed_attempts_back_off_and_go_round_the_endpoints() {
    let mut f = Fixture::new(config());
    let mut waits = Vec::new();
    for _ in 0..6 {
        f.closed("refused");
        let wait = f
            .events
            .iter()
            .rev()
            .find_map(|e| match e {
                SessionEvent::Disconnected { retry_in_ms, .. } => Some(*retry_in_ms),
                _ => None,
            })
            .expect("a wait");
        waits.push(wait);
        let t = f.now + wait;
        f.advance(t);
    }
    let bounds = [100, 200, 400, 800, 1_600, 1_600];
    for (wait, bound) in waits.iter().zip(bounds) {
        assert!(*wait <= bound, "waits {waits:?} within {bounds:?}");
    }
    let endpoints: Vec<usize> = f.connects.iter().map(|(e, _)| *e).collect();
    assert_eq!(endpoints, [0, 1, 0, 1, 0, 1, 0]);
    assert_eq!(f.s.stats().connect_failures, 6);
}

/// The reconnect waits of `failures` attempts in a row that all fail.
fn waits_of_failures(f: &mut Fixture, failures: usize) -> Vec<u64> {
    let mut waits = Vec::new();
    for _ in 0..failures {
        f.closed("refused");
        let wait = f
            .events
            .iter()
            .rev()
            .find_map(|e| match e {
                SessionEvent::Disconnected { retry_in_ms, .. } => Some(*retry_in_ms),
                _ => None,
            })
            .expect("a wait");
        waits.push(wait);
        let t = f.now + wait;
        f.advance(t);
    }
    waits
}

#[test]
fn reconnect_waits_are_full_jitter_over_a_doubling_bound() {
    // The bound starts at reconnect_initial_ms, doubles per failure in a
    // row and stops at reconnect_max_ms; each wait is uniform in 0..=bound.
    let bounds: [u64; 7] = [100, 200, 400, 800, 1_600, 1_600, 1_600];
    const SEEDS: u32 = 400;
    let mut by_failure: Vec<Vec<u64>> = vec![Vec::new(); bounds.len()];
    for i in 0..SEEDS {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&i.to_le_bytes());
        let mut f = Fixture::seeded(config(), seed);
        let waits = waits_of_failures(&mut f, bounds.len());
        for (all, wait) in by_failure.iter_mut().zip(waits) {
            all.push(wait);
        }
    }
    for (k, (waits, bound)) in by_failure.iter().zip(bounds).enumerate() {
        let max = waits.iter().copied().max().unwrap_or(0);
        assert!(max <= bound, "failure {k}: {max} over the bound {bound}");
        // Nearly reached: the bound really is this large.
        assert!(
            max >= bound * 95 / 100,
            "failure {k}: at most {max} of {bound}"
        );
        // Spread over the whole range (no floor but 0, no fixed wait): each
        // outer quarter holds about a quarter of the draws.
        let low = waits.iter().filter(|&&w| w < bound / 4).count();
        let high = waits.iter().filter(|&&w| w > bound - bound / 4).count();
        let quarter = SEEDS as usize / 4;
        assert!(
            low > quarter * 6 / 10 && high > quarter * 6 / 10,
            "failure {k}, bound {bound}: {low} low and {high} high of {SEEDS}"
        );
        let mean = waits.iter().sum::<u64>() / u64::from(SEEDS);
        assert!(
            mean.abs_diff(bound / 2) <= bound / 10,
            "failure {k}: mean {mean} for the bound {bound}"
        );
    }
    // A bound is never below reconnect_initial_ms, even with a smaller
    // maximum.
    let mut waits = Vec::new();
    for i in 0..SEEDS {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&i.to_le_bytes());
        let mut f = Fixture::seeded(
            SessionConfig {
                reconnect_initial_ms: 400,
                reconnect_max_ms: 50,
                ..config()
            },
            seed,
        );
        waits.extend(waits_of_failures(&mut f, 3));
    }
    let max = waits.iter().copied().max().unwrap_or(0);
    assert!((380..=400).contains(&max), "waits up to {max}");
}

#[test]
fn only_a_connection_that_lasted_resets_the_backoff() {
    let mut f = Fixture::new(SessionConfig {
        reconnect_initial_ms: 1_000,
        reconnect_max_ms: 64_000,
        ..config()
    });
    let attempt = |f: &Fixture| match f.events.last() {
        Some(SessionEvent::Connecting { attempt, .. }) => *attempt,
        other => panic!("expected an attempt, got {other:?}"),
    };
    // Runs to the next attempt.
    let retry = |f: &mut Fixture| {
        let t = f.s.poll_timeout().expect("a retry is scheduled").0;
        f.advance(t);
    };
    // Accepted and dropped at once, three times: each counts as a failure.
    for expected in 1..=3 {
        f.opened();
        f.closed("dropped");
        retry(&mut f);
        assert_eq!(attempt(&f), expected);
    }
    // A connection that lasted resets the count.
    f.opened();
    let t = f.now + 5_000;
    for step in (f.now..t).step_by(1_000) {
        f.advance(step);
        f.received();
    }
    f.advance(t);
    f.closed("lost after a while");
    retry(&mut f);
    // The loss itself is the one failure in a row (the drops before it
    // would have made this the fourth).
    assert_eq!(attempt(&f), 1);
}

#[test]
fn an_attempt_that_never_opens_is_abandoned_after_the_connect_timeout() {
    let mut f = Fixture::new(config());
    let first = f.conn;
    f.advance(1_000);
    assert_eq!(f.disconnects, ["connect timed out"]);
    // A late "opened" for the abandoned attempt changes nothing.
    f.s.handle_opened(Millis(1_000), first.expect("conn"));
    f.drain();
    assert!(f.s.connected_endpoint().is_none());
    f.advance(1_100);
    assert_eq!(f.connects.len(), 2);
    assert_eq!(f.connects[1].0, 1, "the next endpoint");
}

#[test]
fn a_silent_peer_is_declared_dead_while_traffic_is_expected() {
    let mut f = Fixture::open(config());
    // Nothing subscribed, nothing pending: a quiet connection is fine.
    f.advance(10_000);
    assert!(f.disconnects.is_empty());
    f.subscribe("s");
    f.advance(12_999);
    assert!(
        f.disconnects.is_empty(),
        "the clock starts with the subscription"
    );
    f.advance(13_000);
    assert_eq!(f.disconnects, ["no frame within the heartbeat timeout"]);
    assert_eq!(f.s.stats().disconnects, 1);
    assert_eq!(
        f.s.sequencer().phase(f.s.stream_id("s").expect("id")),
        Some(StreamPhase::Disconnected)
    );
}

#[test]
fn frames_keep_a_connection_alive() {
    let mut f = Fixture::open(config());
    f.subscribe("s");
    for t in (1_000..=20_000).step_by(1_000) {
        f.advance(t);
        f.received();
    }
    assert!(f.disconnects.is_empty());
}

/// Whether the last event says the session gave up.
fn gave_up(f: &Fixture) -> bool {
    matches!(
        f.events.last(),
        Some(SessionEvent::Stopped {
            reason: StopReason::GaveUp { .. }
        })
    )
}

#[test]
fn the_first_connection_deadline_is_kept_to_whatever_the_attempts_do() {
    // An attempt that hangs is cut at the deadline, not at its own timeout.
    let mut f = Fixture::new(SessionConfig {
        initial_connect_timeout_ms: 1_000,
        connect_timeout_ms: 5_000,
        ..config()
    });
    assert_eq!(f.s.poll_timeout(), Some(Millis(1_000)));
    f.advance(1_000);
    assert!(gave_up(&f), "gave up at the deadline");
    assert_eq!(f.disconnects.first(), Some(&"connect timed out"));

    // Attempts refused at once: the last one ends no later than the
    // deadline, and no attempt starts at or after it.
    let mut g = Fixture::new(SessionConfig {
        initial_connect_timeout_ms: 1_000,
        ..config()
    });
    while !gave_up(&g) {
        let started = g.now;
        assert!(started < 1_000, "an attempt started at {started}");
        g.at(started + 30);
        g.closed("refused");
        if let Some(at) = g.s.poll_timeout() {
            g.advance(at.0);
        }
    }
    assert!(g.now <= 1_000, "gave up at {}", g.now);
    assert!(!g.s.is_closed(), "a session that gave up is not closed");
}

#[test]
fn a_session_that_gives_up_stops_and_keeps_its_streams_and_publishes() {
    let mut f = Fixture::new(SessionConfig {
        initial_connect_timeout_ms: 3_000,
        ..config()
    });
    f.subscribe("s");
    let p = f.publish("s", "1");
    f.advance(10_000);
    assert!(gave_up(&f));
    assert!(!f.s.is_closed());
    assert!(
        f.outcome(p).is_empty(),
        "the publish waits on its own clock"
    );
    assert_eq!(f.s.pending_publishes(), 1);
    let attempts = f.connects.len();
    // Stopped: the only deadline left is the publish's.
    assert_eq!(f.s.poll_timeout(), Some(Millis(20_000)));
    f.advance(19_999);
    assert_eq!(f.connects.len(), attempts, "no attempt while stopped");
    // A subscription made meanwhile is kept too.
    f.subscribe("t");
    assert!(f.sent.is_empty(), "nothing is sent while stopped");
}

#[test]
fn connect_after_a_give_up_starts_at_once_and_resends_streams_then_publishes() {
    let mut f = Fixture::new(SessionConfig {
        initial_connect_timeout_ms: 3_000,
        ..config()
    });
    f.subscribe("s");
    let p = f.publish("s", "1");
    f.advance(10_000);
    assert!(gave_up(&f));
    f.subscribe("t");
    f.take_events();
    let attempts = f.connects.len();
    f.s.connect(Millis(f.now)).expect("connect");
    f.drain();
    assert_eq!(f.connects.len(), attempts + 1, "an attempt at once");
    assert!(matches!(
        f.take_events().first(),
        Some(SessionEvent::Connecting { attempt: 0, .. })
    ));
    f.opened();
    let sent = f.take_sent();
    assert_eq!(
        sent.iter().map(|t| kind(t)).collect::<Vec<_>>(),
        ["subscribe", "subscribe", "publish"]
    );
    assert_eq!(field(&sent[2], "id"), f.wire_id(p).as_str());
    // Connected again: the give-up deadline is over.
    f.closed("lost");
    f.advance(f.now + 60_000);
    assert!(
        !f.events
            .iter()
            .any(|e| matches!(e, SessionEvent::Stopped { .. }))
    );
}

#[test]
fn connect_gives_the_first_connection_a_new_deadline() {
    let mut f = Fixture::new(SessionConfig {
        initial_connect_timeout_ms: 1_000,
        ..config()
    });
    f.advance(5_000);
    assert!(gave_up(&f));
    f.take_events();
    f.s.connect(Millis(5_000)).expect("connect");
    f.drain();
    f.advance(5_999);
    assert!(!gave_up(&f), "not before the new deadline");
    f.advance(6_000);
    assert!(gave_up(&f), "at the new deadline");
}

#[test]
fn a_pending_publish_times_out_on_its_own_clock_while_stopped() {
    let mut f = Fixture::open(config());
    let p = f.publish("s", "1");
    f.at(5_000);
    f.s.disconnect(Millis(5_000));
    f.drain();
    f.advance(19_999);
    assert!(f.outcome(p).is_empty());
    f.advance(20_000);
    assert_eq!(
        f.outcome(p),
        [&SessionEvent::PublishFailed {
            publish: p,
            error: PublishError::TimedOut
        }]
    );
}

#[test]
fn disconnect_closes_the_socket_and_stops_until_connect() {
    let mut f = Fixture::open(config());
    let id = f.subscribe("s");
    f.snapshot(id, 4, Some("0.0"));
    f.take_sent();
    f.take_events();
    f.at(100);
    f.s.disconnect(Millis(100));
    f.drain();
    assert_eq!(f.disconnects, ["client disconnected"]);
    assert!(f.take_events().iter().any(|e| matches!(
        e,
        SessionEvent::Stopped {
            reason: StopReason::Disconnected
        }
    )));
    assert_eq!(f.s.connection(), None);
    assert_eq!(f.s.stats().disconnects, 1);
    // No deadline: nothing is pending and nothing is tried.
    assert_eq!(f.s.poll_timeout(), None);
    f.advance(100_000);
    assert_eq!(f.connects.len(), 1, "no reconnect");
    // A late close of the socket changes nothing.
    f.closed("closed (1000)");
    assert_eq!(f.connects.len(), 1);

    f.s.connect(Millis(f.now)).expect("connect");
    f.drain();
    assert_eq!(f.connects.len(), 2);
    f.opened();
    let sent = f.take_sent();
    assert_eq!(kind(&sent[0]), "subscribe");
    assert_eq!(field(&sent[0], "since"), 4, "resumes from its position");
}

#[test]
fn connect_while_waiting_out_a_backoff_tries_now() {
    let mut f = Fixture::open(SessionConfig {
        reconnect_initial_ms: 10_000,
        reconnect_max_ms: 10_000,
        ..config()
    });
    let attempts = f.connects.len();
    f.closed("lost");
    assert_eq!(f.connects.len(), attempts, "waiting out the backoff");
    assert!(f.s.poll_timeout().is_some_and(|at| at.0 > f.now));
    f.s.connect(Millis(f.now)).expect("connect");
    f.drain();
    assert_eq!(f.connects.len(), attempts + 1, "an attempt now");
    // Already trying: nothing more.
    f.s.connect(Millis(f.now)).expect("connect");
    f.drain();
    assert_eq!(f.connects.len(), attempts + 1);
}

#[test]
fn connect_after_close_is_an_error_and_disconnect_is_ignored() {
    let mut f = Fixture::open(config());
    f.s.close(Millis(0));
    f.drain();
    assert!(f.s.is_closed());
    assert_eq!(f.s.connect(Millis(1)), Err(Error::Closed));
    f.s.disconnect(Millis(1));
    f.drain();
    assert!(
        !f.events
            .iter()
            .any(|e| matches!(e, SessionEvent::Stopped { .. }))
    );
}

#[test]
fn close_while_stopped_fails_pending_publishes_at_once() {
    let mut f = Fixture::open(config());
    let p = f.publish("s", "1");
    f.s.disconnect(Millis(0));
    f.s.close(Millis(0));
    f.drain();
    assert!(f.s.is_closed());
    assert_eq!(
        f.outcome(p),
        [&SessionEvent::PublishFailed {
            publish: p,
            error: PublishError::Closed
        }]
    );
}

#[test]
fn close_during_a_first_connection_that_never_comes_fails_what_is_pending() {
    let mut f = Fixture::new(SessionConfig {
        initial_connect_timeout_ms: 3_000,
        ..config()
    });
    let p = f.publish("s", "1");
    f.s.close(Millis(0));
    f.drain();
    assert!(!f.s.is_closed(), "waits for the publish");
    f.advance(10_000);
    assert!(f.s.is_closed());
    assert!(!gave_up(&f));
    assert_eq!(
        f.outcome(p),
        [&SessionEvent::PublishFailed {
            publish: p,
            error: PublishError::Closed
        }]
    );
}

#[test]
fn close_waits_for_pending_publishes_even_through_an_outage() {
    let mut f = Fixture::open(config());
    f.subscribe("s");
    let p = f.publish("s", "1");
    f.closed("outage");
    f.take_sent();
    f.s.close(Millis(f.now));
    f.drain();
    assert!(!f.s.is_closed(), "a publish is still pending");
    assert!(matches!(
        f.s.publish(Millis(f.now), "s", "2"),
        Err(Error::Closed)
    ));
    // It reconnects for the publish alone: no subscribe goes out.
    f.advance(200);
    f.opened();
    let sent = f.take_sent();
    assert_eq!(
        sent.iter().map(|t| kind(t)).collect::<Vec<_>>(),
        ["publish"]
    );
    let id = f.wire_id(p);
    f.s.handle_ack(Millis(f.now), &id, "s", seq(1));
    f.drain();
    assert!(f.s.is_closed());
    assert_eq!(f.disconnects, ["client closed"]);
    assert!(matches!(
        f.events.last(),
        Some(SessionEvent::Closed {
            reason: CloseReason::Closed
        })
    ));
}

#[test]
fn close_with_nothing_pending_unsubscribes_and_closes_at_once() {
    let mut f = Fixture::open(config());
    f.subscribe("s");
    f.take_sent();
    f.s.close(Millis(0));
    f.drain();
    assert_eq!(
        f.take_sent().iter().map(|t| kind(t)).collect::<Vec<_>>(),
        ["unsubscribe"]
    );
    assert!(f.s.is_closed());
    assert_eq!(f.disconnects, ["client closed"]);
}

#[test]
fn abort_fails_what_is_pending() {
    let mut f = Fixture::open(config());
    let p = f.publish("s", "1");
    // Through an outage too, at once: no wait for the publish timeout.
    f.closed("outage");
    f.s.abort(Millis(0));
    f.drain();
    assert_eq!(f.s.poll_timeout(), None);
    assert_eq!(
        f.outcome(p),
        [&SessionEvent::PublishFailed {
            publish: p,
            error: PublishError::Closed
        }]
    );
    assert!(f.s.is_closed());
}

#[test]
fn a_late_answer_to_an_earlier_subscription_is_dropped() {
    let mut f = Fixture::open(config());
    let old = f.subscribe("s");
    let first = f.take_sent();
    assert_eq!(field(&first[0], "ref"), "0.0");
    f.s.unsubscribe(Millis(1), old).expect("unsubscribe");
    let new = f.subscribe("s");
    let second = f.take_sent();
    assert_eq!(
        second.iter().map(|t| kind(t)).collect::<Vec<_>>(),
        ["unsubscribe", "subscribe"]
    );
    let new_ref = field(&second[1], "ref");
    assert_ne!(new_ref, "0.0");
    // The answer to the first subscribe arrives now: it must not complete
    // the second handshake.
    f.snapshot(new, 4, Some("0.0"));
    assert_eq!(f.s.sequencer().phase(new), Some(StreamPhase::Snapshotting));
    assert_eq!(f.s.stats().stale_answers, 1);
    // Its own answer does.
    f.snapshot(new, 5, new_ref.as_str());
    assert_eq!(f.s.sequencer().phase(new), Some(StreamPhase::Live));
}

#[test]
fn a_refused_request_is_reported_for_its_stream() {
    let mut f = Fixture::open(config());
    let id = f.subscribe("s");
    let reference = field(&f.take_sent()[0], "ref");
    f.s.handle_error(
        Millis(0),
        ErrorCode::Unauthorized,
        "not for you",
        reference.as_str(),
    );
    f.drain();
    assert!(f.events.iter().any(|e| matches!(e,
        SessionEvent::Refused { stream, code: ErrorCode::Unauthorized, .. } if *stream == id)));
    // Sequencing state is unchanged: the subscribe is retried on its timeout.
    assert_eq!(f.s.sequencer().phase(id), Some(StreamPhase::Snapshotting));
    f.advance(config().core.request_timeout_ms);
    assert_eq!(
        f.take_sent().iter().map(|t| kind(t)).collect::<Vec<_>>(),
        ["subscribe"]
    );
    // An error naming nothing pending is a diagnostic.
    f.s.handle_error(Millis(f.now), ErrorCode::NotSubscribed, "?", Some("gone"));
    f.drain();
    assert!(matches!(
        f.events.last(),
        Some(SessionEvent::ServerError {
            code: ErrorCode::NotSubscribed,
            ..
        })
    ));
}

#[test]
fn a_live_stream_that_stays_silent_subscribes_again() {
    let mut f = Fixture::open(config());
    let id = f.subscribe("s");
    f.snapshot(id, 3, None);
    f.take_sent();
    // Frames keep coming (other streams' heads), but none for this one.
    for t in (1_000..=20_000).step_by(1_000) {
        f.advance(t);
        f.received();
    }
    let sent = f.take_sent();
    assert_eq!(
        sent.iter().map(|t| kind(t)).collect::<Vec<_>>(),
        ["subscribe"]
    );
    assert_eq!(field(&sent[0], "since"), 3);
    assert_eq!(f.s.stats().resubscribes, 1);
}

#[test]
fn a_message_whose_payload_the_shell_keeps_is_taken_only_when_next_in_order() {
    let mut f = Fixture::open(SessionConfig {
        persist_interval_ms: 250,
        ..config()
    });
    let id = f.subscribe("s");
    f.snapshot(id, 3, None);
    f.take_events();
    let in_order = |f: &mut Fixture, n: u64| {
        f.s.handle_message_in_order(Millis(f.now), id, seq(n), Some(EPOCH))
            .expect("message")
    };
    assert!(in_order(&mut f, 4), "the next seq is taken");
    assert!(!in_order(&mut f, 4), "a repeat is not");
    assert!(!in_order(&mut f, 6), "nor one ahead of a hole");
    assert!(f.take_events().is_empty(), "nothing happened to the stream");
    // The one ahead goes through handle_message as usual and waits for 5.
    f.s.handle_message(Millis(f.now), id, seq(6), Some(EPOCH), 6)
        .expect("message");
    assert!(
        !in_order(&mut f, 5),
        "with an event waiting, nothing is taken"
    );
    assert_eq!(f.s.sequencer().stats(id).map(|s| s.delivered), Some(1));
    // Delivered that way, the position is reported like any other.
    f.advance(300);
    let reported = f
        .take_events()
        .into_iter()
        .any(|e| matches!(e, SessionEvent::Position { seq: s, .. } if s.get() == 4));
    assert!(reported);
}

#[test]
fn positions_are_reported_when_they_change_and_resume_a_later_subscribe() {
    let mut f = Fixture::open(SessionConfig {
        persist_interval_ms: 250,
        ..config()
    });
    let id = f.subscribe("s");
    f.snapshot(id, 3, None);
    for n in 4..=6 {
        f.received();
        let d =
            f.s.handle_message_direct(Millis(f.now), id, seq(n), Some(EPOCH), n)
                .expect("message");
        assert_eq!(d, Some(n));
    }
    f.take_events();
    f.advance(300);
    let positions: Vec<(String, u64)> = f
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::Position { stream, seq, epoch } => {
                assert_eq!(epoch, EPOCH);
                Some((stream.to_string(), seq.get()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(positions, [("s".to_string(), 6)]);
    // Nothing changed: nothing reported.
    f.s.checkpoint(Millis(f.now));
    f.drain();
    assert!(
        !f.events
            .iter()
            .any(|e| matches!(e, SessionEvent::Position { .. }))
    );

    // A new session handed the position resumes after it.
    let mut g = Fixture::open(config());
    g.s.resume_from([(StreamName::new("s").expect("name"), seq(6), EPOCH)]);
    g.subscribe("s");
    let sent = g.take_sent();
    assert_eq!(field(&sent[0], "since"), 6);
    assert_eq!(field(&sent[0], "epoch"), EPOCH.0);
}

#[test]
fn a_stream_subscribed_again_starts_from_a_snapshot_unless_positions_are_kept() {
    for keeps in [false, true] {
        let mut f = Fixture::open(config());
        if keeps {
            f.s.resume_from([]);
        }
        let id = f.subscribe("s");
        f.snapshot(id, 8, None);
        f.s.unsubscribe(Millis(1), id).expect("unsubscribe");
        f.drain();
        f.take_sent();
        f.subscribe("s");
        let sent = f.take_sent();
        let subscribe = sent
            .iter()
            .find(|t| t.contains("\"subscribe\""))
            .expect("a subscribe");
        if keeps {
            assert_eq!(field(subscribe, "since"), 8, "{subscribe}");
        } else {
            assert!(!subscribe.contains("since"), "a fresh start: {subscribe}");
        }
    }
}

#[test]
fn unsubscribe_reports_the_last_position() {
    let mut f = Fixture::open(config());
    let id = f.subscribe("s");
    f.snapshot(id, 8, None);
    f.take_events();
    f.s.unsubscribe(Millis(1), id).expect("unsubscribe");
    f.drain();
    assert!(f.events.iter().any(|e| matches!(e,
        SessionEvent::Position { stream, seq, .. } if stream.as_str() == "s" && seq.get() == 8)));
}

#[test]
fn stream_events_pass_through_in_order() {
    let mut f = Fixture::open(config());
    let id = f.subscribe("s");
    f.snapshot(id, 0, None);
    f.take_events();
    f.received();
    f.s.handle_message(Millis(1), id, seq(2), Some(EPOCH), 2)
        .expect("ahead");
    f.s.handle_message(Millis(2), id, seq(1), Some(EPOCH), 1)
        .expect("fills");
    f.drain();
    let seqs: Vec<u64> = f
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::Stream(Event::Message { seq, .. }) => Some(seq.get()),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [1, 2]);
    f.s.handle_reset(
        Millis(3),
        id,
        ResetReason::HistoryUnavailable,
        None,
        Some("77.0"),
    )
    .expect("reset");
    f.drain();
    assert!(
        !f.events
            .iter()
            .any(|e| matches!(e, SessionEvent::Stream(Event::Reset { .. }))),
        "a reset for another subscription is dropped"
    );
}

#[test]
fn the_timeout_is_the_earliest_of_every_timer() {
    let mut f = Fixture::open(SessionConfig {
        publish_timeout_ms: 500,
        ..config()
    });
    // Open with nothing expected: the dead-peer check at the heartbeat
    // timeout, the silence check later.
    assert_eq!(f.s.poll_timeout(), Some(Millis(3_000)));
    f.publish("s", "1");
    assert_eq!(f.s.poll_timeout(), Some(Millis(500)));
}
