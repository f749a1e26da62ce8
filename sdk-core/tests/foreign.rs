//! A session over a server that does not speak the protocol: one test per
//! rule of how the sequencer's requests become the server's requests and
//! its answers become the sequencer's inputs, with virtual time.

use seqsync_core::adapter::{
    Description, FetchAnswer, FetchId, ForeignRequest, Outbound, Plan, Start,
};
use seqsync_core::{
    ConnId, Epoch, Error, Event, Millis, PublishError, ResetReason, Seq, Session, SessionConfig,
    SessionEvent, StreamPhase, Transmit,
};

fn seq(n: u64) -> Seq {
    Seq::new(n).expect("test seq in range")
}

fn config() -> SessionConfig {
    SessionConfig {
        endpoints: vec!["ws://chat/ws".into()],
        reconnect_initial_ms: 100,
        heartbeat_timeout_ms: 3_000,
        silence_timeout_ms: 0,
        publish_timeout_ms: 20_000,
        ..SessionConfig::default()
    }
}

fn history_plan() -> Plan {
    Plan {
        history: true,
        limit: 3,
        ..Plan::default()
    }
}

/// A session over a foreign server, the time, and what it asked and told.
struct Fx {
    s: Session<String>,
    now: u64,
    conn: Option<ConnId>,
    requests: Vec<(Option<FetchId>, ForeignRequest)>,
    events: Vec<SessionEvent<String>>,
    disconnects: Vec<&'static str>,
}

impl Fx {
    fn new(plan: Plan) -> Fx {
        let s = Session::foreign(config(), plan, String::new, [5; 32], Millis(0)).expect("session");
        let mut f = Fx {
            s,
            now: 0,
            conn: None,
            requests: Vec::new(),
            events: Vec::new(),
            disconnects: Vec::new(),
        };
        f.drain();
        f
    }

    fn open(plan: Plan) -> Fx {
        let mut f = Fx::new(plan);
        f.opened();
        f
    }

    fn opened(&mut self) {
        let conn = self.conn.expect("an attempt");
        self.s.handle_opened(Millis(self.now), conn);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(t) = self.s.poll_transmit() {
            match t {
                Transmit::Connect { conn, .. } => self.conn = Some(conn),
                Transmit::Foreign { id, request } => self.requests.push((id, request)),
                Transmit::Send { text } => panic!("a foreign session sent a protocol frame {text}"),
                Transmit::Disconnect { reason, .. } => self.disconnects.push(reason),
            }
        }
        while let Some(e) = self.s.poll_event() {
            self.events.push(e);
        }
    }

    fn at(&mut self, t: u64) {
        self.now = t;
        self.s.handle_timeout(Millis(t));
        self.drain();
    }

    fn subscribe(&mut self, name: &str) {
        self.s
            .subscribe(Millis(self.now), name, Default::default())
            .expect("subscribe");
        self.drain();
    }

    fn msg(&mut self, n: u64) {
        self.s
            .handle_foreign_message(Millis(self.now), "room", seq(n), None, format!("m{n}"))
            .expect("message");
        self.drain();
    }

    fn msg_in(&mut self, n: u64, epoch: u64) {
        self.s
            .handle_foreign_message(
                Millis(self.now),
                "room",
                seq(n),
                Some(Epoch(epoch)),
                format!("m{n}"),
            )
            .expect("message");
        self.drain();
    }

    fn resets(&self) -> Vec<ResetReason> {
        self.events
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Stream(Event::Reset { reason, .. }) => Some(*reason),
                _ => None,
            })
            .collect()
    }

    /// The last request that expects an answer, taken.
    fn take_fetch(&mut self) -> (FetchId, ForeignRequest) {
        let i = self
            .requests
            .iter()
            .rposition(|(id, _)| id.is_some())
            .expect("a request waiting for its answer");
        let (id, request) = self.requests.remove(i);
        (id.expect("id"), request)
    }

    fn answer(&mut self, id: FetchId, answer: FetchAnswer<String>) {
        self.s.handle_fetched(Millis(self.now), id, 100, answer);
        self.drain();
    }

    fn messages(&self, upto: usize) -> Vec<u64> {
        self.events[..upto]
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Stream(Event::Message { seq, .. }) => Some(seq.get()),
                _ => None,
            })
            .collect()
    }

    fn delivered(&self) -> Vec<u64> {
        self.messages(self.events.len())
    }

    fn phase(&self) -> StreamPhase {
        let id = self.s.stream_id("room").expect("subscribed");
        self.s.sequencer().stats(id).expect("stats").phase
    }
}

fn page(seqs: &[u64]) -> FetchAnswer<String> {
    FetchAnswer::Messages {
        messages: seqs.iter().map(|&n| (seq(n), format!("m{n}"))).collect(),
        earliest: None,
        epoch: None,
    }
}

fn page_in(seqs: &[u64], epoch: u64) -> FetchAnswer<String> {
    FetchAnswer::Messages {
        messages: seqs.iter().map(|&n| (seq(n), format!("m{n}"))).collect(),
        earliest: None,
        epoch: Some(Epoch(epoch)),
    }
}

fn history(request: &ForeignRequest) -> (u64, Option<u64>, u32) {
    match request {
        ForeignRequest::History {
            since, to, limit, ..
        } => (since.get(), to.map(Seq::get), *limit),
        other => panic!("expected a history request, got {other:?}"),
    }
}

#[test]
fn a_new_stream_joins_then_catches_up_from_its_first_message_page_by_page() {
    let mut f = Fx::open(history_plan());
    f.subscribe("room");
    assert!(matches!(
        &f.requests[0],
        (None, ForeignRequest::Subscribe { since, .. }) if *since == Seq::ZERO
    ));
    let (id, request) = f.take_fetch();
    assert_eq!(history(&request), (0, None, 3));
    assert_eq!(f.phase(), StreamPhase::Subscribing);
    // A full page (3 of 3): the next page follows at once.
    f.answer(id, page(&[3, 1, 2]));
    assert_eq!(f.delivered(), [1, 2, 3]);
    let (id, request) = f.take_fetch();
    assert_eq!(history(&request), (3, None, 3));
    assert_eq!(f.phase(), StreamPhase::Subscribing);
    // A short page: caught up, the stream is live.
    f.answer(id, page(&[4]));
    assert_eq!(f.delivered(), [1, 2, 3, 4]);
    assert_eq!(f.phase(), StreamPhase::Live);
    assert!(
        !f.events
            .iter()
            .any(|e| matches!(e, SessionEvent::Stream(Event::Snapshot { .. })))
    );
    // Live messages continue after the catch-up, a repeat of it dropped.
    f.msg(4);
    f.msg(5);
    assert_eq!(f.delivered(), [1, 2, 3, 4, 5]);
}

#[test]
fn a_hole_is_fetched_as_exactly_its_range_after_the_gap_timeout() {
    let mut f = Fx::open(history_plan());
    f.subscribe("room");
    let (id, _) = f.take_fetch();
    f.answer(id, page(&[1]));
    f.msg(2);
    f.msg(5);
    assert!(
        f.requests.iter().all(|(id, _)| id.is_none()),
        "nothing asked before the gap timeout"
    );
    let timeout = f.s.poll_timeout().expect("the gap timeout").0;
    f.at(timeout);
    let (id, request) = f.take_fetch();
    assert_eq!(history(&request), (2, Some(4), 2));
    f.answer(id, page(&[3, 4]));
    assert_eq!(f.delivered(), [1, 2, 3, 4, 5]);
    assert_eq!(
        f.s.stats().history_messages,
        3,
        "one catch-up message and two repaired"
    );
}

#[test]
fn a_short_answer_covers_only_what_it_reaches_and_the_rest_is_asked_at_once() {
    let mut f = Fx::open(Plan {
        limit: 500,
        ..history_plan()
    });
    f.subscribe("room");
    let (id, _) = f.take_fetch();
    f.answer(id, page(&[1]));
    f.msg(6);
    let timeout = f.s.poll_timeout().expect("the gap timeout").0;
    f.at(timeout);
    let (id, request) = f.take_fetch();
    assert_eq!(history(&request), (1, Some(5), 4));
    // The server had only 2 and 3 stored yet: 4 and 5 are not skipped.
    f.answer(id, page(&[2, 3]));
    assert_eq!(f.delivered(), [1, 2, 3]);
    let (id, request) = f.take_fetch();
    assert_eq!(history(&request), (3, Some(5), 2));
    f.answer(id, page(&[4, 5, 6, 7]));
    assert_eq!(
        f.delivered(),
        [1, 2, 3, 4, 5, 6, 7],
        "7, past the hole, is fed as live"
    );
    assert!(
        !f.events
            .iter()
            .any(|e| matches!(e, SessionEvent::Stream(Event::Skipped { .. })))
    );
}

#[test]
fn an_empty_answer_is_asked_again_with_backoff_and_never_skips() {
    let mut f = Fx::open(history_plan());
    f.subscribe("room");
    let (id, _) = f.take_fetch();
    f.answer(id, page(&[1]));
    f.msg(3);
    let timeout = f.s.poll_timeout().expect("gap timeout").0;
    f.at(timeout);
    let (id, _) = f.take_fetch();
    f.answer(id, page(&[]));
    f.answer(FetchId(999), page(&[2]));
    assert_eq!(
        f.delivered(),
        [1],
        "an answer to nothing asked counts for nothing"
    );
    let retry = f.s.poll_timeout().expect("a retry").0;
    assert!(retry > f.now);
    f.at(retry);
    let (id, request) = f.take_fetch();
    assert_eq!(history(&request), (1, Some(2), 1));
    f.answer(id, page(&[2]));
    assert_eq!(f.delivered(), [1, 2, 3]);
}

#[test]
fn an_answer_past_the_first_seq_asked_resets_the_stream_and_restarts_at_the_earliest() {
    let mut f = Fx::open(history_plan());
    f.subscribe("room");
    let (id, _) = f.take_fetch();
    // Retention dropped 1..=9: the answer starts at 10.
    f.answer(id, page(&[10, 11]));
    let reset = f.events.iter().position(|e| {
        matches!(e, SessionEvent::Stream(Event::Reset { reason: ResetReason::HistoryUnavailable, earliest, .. }) if *earliest == Some(seq(10)))
    });
    let snapshot = f.events.iter().position(|e| {
        matches!(e, SessionEvent::Stream(Event::Snapshot { seq, state, .. }) if seq.get() == 9 && state.is_empty())
    });
    assert!(reset.is_some() && snapshot > reset, "{:?}", f.events);
    assert!(
        f.delivered().is_empty(),
        "nothing of a range that starts past the position is delivered"
    );
    // The new start catches up from the earliest seq.
    let (id, request) = f.take_fetch();
    assert_eq!(history(&request).0, 9);
    f.answer(id, page(&[10, 11]));
    assert_eq!(f.delivered(), [10, 11]);
    assert_eq!(f.phase(), StreamPhase::Live);
}

#[test]
fn a_gone_status_or_an_earliest_past_the_hole_resets() {
    for answer in [
        FetchAnswer::Gone { earliest: None },
        FetchAnswer::Messages {
            messages: vec![(seq(8), "m8".to_string())],
            earliest: Some(seq(8)),
            epoch: None,
        },
    ] {
        let mut f = Fx::open(history_plan());
        f.subscribe("room");
        let (id, _) = f.take_fetch();
        f.answer(id, page(&[1]));
        f.msg(9);
        let timeout = f.s.poll_timeout().expect("gap timeout").0;
        f.at(timeout);
        let (id, _) = f.take_fetch();
        f.answer(id, answer);
        assert!(
            f.events
                .iter()
                .any(|e| matches!(e, SessionEvent::Stream(Event::Reset { .. }))),
            "{:?}",
            f.events
        );
        assert_eq!(f.delivered(), [1]);
    }
}

#[test]
fn with_holes_allowed_a_missing_seq_is_skipped_not_reset() {
    let mut f = Fx::open(Plan {
        holes: true,
        ..history_plan()
    });
    f.subscribe("room");
    let (id, _) = f.take_fetch();
    f.answer(id, page(&[1]));
    f.msg(4);
    let timeout = f.s.poll_timeout().expect("gap timeout").0;
    f.at(timeout);
    let (id, _) = f.take_fetch();
    f.answer(id, page(&[3]));
    assert_eq!(f.delivered(), [1, 3, 4]);
    assert!(f.events.iter().any(|e| matches!(e, SessionEvent::Stream(Event::Skipped { range, .. }) if range.to_string() == "2..=2")));
    assert!(
        !f.events
            .iter()
            .any(|e| matches!(e, SessionEvent::Stream(Event::Reset { .. })))
    );
}

#[test]
fn with_a_head_a_resume_fetches_exactly_up_to_the_head() {
    let mut f = Fx::open(Plan {
        head: true,
        ..history_plan()
    });
    f.subscribe("room");
    let (id, request) = f.take_fetch();
    assert!(matches!(request, ForeignRequest::Head { .. }));
    f.answer(id, FetchAnswer::Head { seq: seq(2) });
    assert_eq!(f.phase(), StreamPhase::Live);
    let (id, request) = f.take_fetch();
    assert_eq!(history(&request), (0, Some(2), 2));
    f.answer(id, page(&[1, 2]));
    assert_eq!(f.delivered(), [1, 2]);
}

#[test]
fn a_snapshot_start_loads_the_state_then_catches_up_past_it() {
    let mut f = Fx::open(Plan {
        snapshot: true,
        start: Start::Snapshot,
        ..history_plan()
    });
    f.subscribe("room");
    let (id, request) = f.take_fetch();
    assert!(matches!(request, ForeignRequest::Snapshot { .. }));
    f.msg(8);
    f.answer(
        id,
        FetchAnswer::Snapshot {
            seq: seq(6),
            state: "state@6".into(),
        },
    );
    assert!(f.events.iter().any(|e| matches!(e, SessionEvent::Stream(Event::Snapshot { seq, state, .. }) if seq.get() == 6 && state == "state@6")));
    let (id, request) = f.take_fetch();
    assert_eq!(history(&request), (6, None, 3));
    f.answer(id, page(&[7, 8]));
    assert_eq!(f.delivered(), [7, 8]);
}

#[test]
fn a_head_start_begins_at_the_head_with_an_empty_state() {
    let mut f = Fx::open(Plan {
        head: true,
        start: Start::Head,
        ..Plan::default()
    });
    f.subscribe("room");
    let (id, request) = f.take_fetch();
    assert!(matches!(request, ForeignRequest::Head { .. }));
    f.answer(id, FetchAnswer::Head { seq: seq(41) });
    f.msg(42);
    assert!(f.events.iter().any(
        |e| matches!(e, SessionEvent::Stream(Event::Snapshot { seq, .. }) if seq.get() == 41)
    ));
    assert_eq!(f.delivered(), [42]);
}

#[test]
fn a_start_takes_its_epoch_from_the_first_message_that_names_one() {
    // A server whose epoch is 7 and whose answers carry none: the epoch of
    // a start is assumed, and the first message sets it without a reset.
    let mut f = Fx::open(history_plan());
    f.subscribe("room");
    let (id, _) = f.take_fetch();
    f.answer(id, page(&[1, 2]));
    f.msg_in(3, 7);
    f.msg_in(4, 7);
    assert_eq!(f.resets(), []);
    assert_eq!(f.delivered(), [1, 2, 3, 4]);
    // A real change after that still resets.
    f.msg_in(1, 8);
    assert_eq!(f.resets(), [ResetReason::EpochChanged]);

    let mut g = Fx::open(Plan {
        head: true,
        start: Start::Head,
        ..Plan::default()
    });
    g.subscribe("room");
    let (id, _) = g.take_fetch();
    g.answer(id, FetchAnswer::Head { seq: seq(41) });
    g.msg_in(42, 7);
    assert_eq!(g.resets(), []);
    assert_eq!(g.delivered(), [42]);
}

#[test]
fn after_an_epoch_change_the_earliest_seq_of_the_old_log_is_forgotten() {
    let mut f = Fx::open(Plan {
        head: true,
        ..history_plan()
    });
    f.subscribe("room");
    let (id, _) = f.take_fetch();
    f.answer(id, FetchAnswer::Head { seq: seq(1) });
    let (id, _) = f.take_fetch();
    f.answer(id, page(&[1]));
    f.msg_in(2, 1);
    // Retention: 3..=110 are gone; the stream restarts at 110.
    f.msg_in(120, 1);
    let timeout = f.s.poll_timeout().expect("gap timeout").0;
    f.at(timeout);
    let (id, _) = f.take_fetch();
    f.answer(
        id,
        FetchAnswer::Gone {
            earliest: Some(seq(111)),
        },
    );
    assert_eq!(f.resets(), [ResetReason::HistoryUnavailable]);
    f.requests.clear();
    // The log starts over (epoch 2, seqs from 1): the stream starts at the
    // new log's head, not at the old log's earliest.
    f.msg_in(1, 2);
    assert_eq!(
        f.resets(),
        [ResetReason::HistoryUnavailable, ResetReason::EpochChanged]
    );
    let (id, request) = f.take_fetch();
    assert!(
        matches!(request, ForeignRequest::Head { .. }),
        "{request:?}"
    );
    f.answer(id, FetchAnswer::Head { seq: seq(5) });
    let snapshot_at = f.events.iter().rev().find_map(|e| match e {
        SessionEvent::Stream(Event::Snapshot { seq, .. }) => Some(seq.get()),
        _ => None,
    });
    assert_eq!(snapshot_at, Some(5));
    f.msg_in(6, 2);
    assert_eq!(f.delivered().last(), Some(&6));
}

#[test]
fn history_of_another_epoch_resets_the_stream_instead_of_continuing_it() {
    // Live in epoch 1 up to 5; the log starts over (epoch 2) unheard; the
    // next read of what follows 5 returns epoch 2's messages.
    let mut f = Fx::open(Plan {
        poll_ms: 500,
        ..history_plan()
    });
    f.subscribe("room");
    let (id, _) = f.take_fetch();
    f.answer(id, page_in(&[1, 2, 3], 1));
    let (id, _) = f.take_fetch();
    f.answer(id, page_in(&[4, 5], 1));
    assert_eq!(f.delivered(), [1, 2, 3, 4, 5]);
    f.at(500);
    let (id, request) = f.take_fetch();
    assert_eq!(history(&request).0, 5);
    f.answer(id, page_in(&[6, 7], 2));
    assert_eq!(f.resets(), [ResetReason::EpochChanged]);
    assert_eq!(
        f.delivered(),
        [1, 2, 3, 4, 5],
        "epoch 2's messages are not a continuation of epoch 1"
    );
}

#[test]
fn polling_the_head_finds_a_lost_last_message() {
    let mut f = Fx::open(Plan {
        head: true,
        poll_ms: 1_000,
        ..history_plan()
    });
    f.subscribe("room");
    let (id, _) = f.take_fetch();
    f.answer(id, FetchAnswer::Head { seq: seq(1) });
    let (id, _) = f.take_fetch();
    f.answer(id, page(&[1]));
    // 2 is published and its frame lost; nothing else comes.
    f.at(1_000);
    let (id, request) = f.take_fetch();
    assert!(matches!(request, ForeignRequest::Head { .. }));
    f.answer(id, FetchAnswer::Head { seq: seq(2) });
    let timeout = f.s.poll_timeout().expect("the hole is due").0;
    f.at(timeout.max(f.now));
    let (id, request) = f.take_fetch();
    assert_eq!(history(&request), (1, Some(2), 1));
    f.answer(id, page(&[2]));
    assert_eq!(f.delivered(), [1, 2]);
}

#[test]
fn without_a_head_polling_reads_what_follows_the_position() {
    let mut f = Fx::open(Plan {
        poll_ms: 500,
        ..history_plan()
    });
    f.subscribe("room");
    let (id, _) = f.take_fetch();
    f.answer(id, page(&[1]));
    f.at(500);
    let (id, request) = f.take_fetch();
    assert_eq!(history(&request), (1, None, 3));
    f.answer(id, page(&[2]));
    assert_eq!(f.delivered(), [1, 2]);
}

#[test]
fn a_silent_stream_reads_again_and_finds_a_lost_last_message() {
    let mut f = Fx::new(history_plan());
    f.s = Session::foreign(
        SessionConfig {
            silence_timeout_ms: 5_000,
            ..config()
        },
        history_plan(),
        String::new,
        [5; 32],
        Millis(0),
    )
    .expect("session");
    f.drain();
    f.opened();
    f.subscribe("room");
    let (id, _) = f.take_fetch();
    f.answer(id, page(&[1]));
    assert_eq!(f.phase(), StreamPhase::Live);
    f.requests.clear();
    // 2 is published and its frame lost; nothing else comes, no poll is set.
    // The check looks at whole periods: the answer was heard in the first,
    // so the stream is silent at the end of the second.
    f.at(5_000);
    assert!(f.requests.is_empty(), "the answer was heard in this period");
    f.at(9_999);
    assert!(
        f.requests.is_empty(),
        "nothing asked before the second check"
    );
    f.at(10_000);
    let subscribes = f
        .requests
        .iter()
        .filter(|(_, r)| matches!(r, ForeignRequest::Subscribe { .. }))
        .count();
    assert_eq!(
        subscribes, 1,
        "the stream subscribes again: {:?}",
        f.requests
    );
    let (id, request) = f.take_fetch();
    assert_eq!(history(&request), (1, None, 3));
    f.answer(id, page(&[2]));
    assert_eq!(f.delivered(), [1, 2]);
}

#[test]
fn without_heartbeats_a_quiet_connection_stays_but_with_them_it_is_dead() {
    let mut quiet = Fx::open(history_plan());
    quiet.subscribe("room");
    quiet.at(10_000);
    assert!(quiet.disconnects.is_empty());
    assert!(quiet.s.connection().is_some());

    let mut beating = Fx::open(Plan {
        heartbeats: true,
        ..history_plan()
    });
    beating.subscribe("room");
    beating.at(3_000);
    beating.at(6_000);
    assert!(
        !beating.disconnects.is_empty(),
        "silence past the heartbeat timeout"
    );
}

#[test]
fn a_heartbeat_reveals_a_lost_last_message() {
    let mut f = Fx::open(Plan {
        heartbeats: true,
        ..history_plan()
    });
    f.subscribe("room");
    let (id, _) = f.take_fetch();
    f.answer(id, page(&[1]));
    f.s.handle_foreign_head(Millis(f.now), "room", seq(3), None)
        .expect("head");
    f.drain();
    let timeout = f.s.poll_timeout().expect("the hole is due").0;
    f.at(timeout.max(f.now));
    let (id, request) = f.take_fetch();
    assert_eq!(history(&request), (1, Some(3), 2));
    f.answer(id, page(&[2, 3]));
    assert_eq!(f.delivered(), [1, 2, 3]);
}

#[test]
fn answers_asked_on_a_lost_connection_no_longer_count() {
    let mut f = Fx::open(history_plan());
    f.subscribe("room");
    let (old, _) = f.take_fetch();
    let conn = f.conn.expect("conn");
    f.s.handle_closed(Millis(f.now), conn, "cut");
    f.drain();
    let retry = f.s.poll_timeout().expect("a reconnect").0;
    f.at(retry);
    f.opened();
    let (new, _) = f.take_fetch();
    f.answer(old, page(&[1, 2]));
    assert!(
        f.delivered().is_empty(),
        "the old catch-up's answer is stale"
    );
    assert_eq!(f.s.stats().stale_answers, 1);
    f.answer(new, page(&[1, 2]));
    assert_eq!(f.delivered(), [1, 2]);
}

#[test]
fn an_answer_of_the_wrong_kind_is_counted_as_bad() {
    let mut f = Fx::open(history_plan());
    f.subscribe("room");
    let (id, _) = f.take_fetch();
    f.answer(id, FetchAnswer::Head { seq: seq(3) });
    assert_eq!(f.s.stats().bad_frames, 1);
    assert!(f.delivered().is_empty());
}

#[test]
fn a_message_of_another_epoch_resets_the_stream() {
    let mut f = Fx::open(Plan::default());
    f.subscribe("room");
    f.s.handle_foreign_message(Millis(0), "room", seq(1), Some(Epoch(1)), "a".into())
        .expect("msg");
    f.s.handle_foreign_message(Millis(0), "room", seq(1), Some(Epoch(2)), "b".into())
        .expect("msg");
    f.drain();
    assert!(
        f.events.iter().any(|e| matches!(
            e,
            SessionEvent::Stream(Event::Reset {
                reason: ResetReason::EpochChanged,
                ..
            })
        )),
        "{:?}",
        f.events
    );
}

#[test]
fn publishes_go_as_requests_and_end_once_acked_retried_or_failed() {
    let mut f = Fx::new(Plan {
        publish: true,
        ..history_plan()
    });
    // Publishing needs no open socket: it is an HTTP request.
    let ok =
        f.s.publish(Millis(0), "room", r#"{"t":1}"#)
            .expect("publish");
    f.drain();
    let (id, request) = f.take_fetch();
    let ForeignRequest::Publish { data, id: wire, .. } = &request else {
        panic!("{request:?}")
    };
    assert_eq!(data, r#"{"t":1}"#);
    assert_eq!(wire.len(), 36);
    f.answer(id, FetchAnswer::Published { seq: Some(seq(7)) });
    assert!(f.events.iter().any(|e| matches!(e, SessionEvent::PublishAcked { publish, seq } if *publish == ok && seq.get() == 7)));

    let busy = f.s.publish(Millis(0), "room", "2").expect("publish");
    f.drain();
    let (id, _) = f.take_fetch();
    f.answer(
        id,
        FetchAnswer::Failed {
            reason: "HTTP 503".into(),
            status: Some(503),
        },
    );
    assert!(
        !f.events
            .iter()
            .any(|e| matches!(e, SessionEvent::PublishFailed { .. }))
    );
    let retry = f.s.poll_timeout().expect("a retry").0;
    f.at(retry);
    let (id, request) = f.take_fetch();
    assert!(matches!(request, ForeignRequest::Publish { .. }));
    f.answer(
        id,
        FetchAnswer::Failed {
            reason: "HTTP 400".into(),
            status: Some(400),
        },
    );
    assert!(f.events.iter().any(|e| matches!(e, SessionEvent::PublishFailed { publish, error: PublishError::Failed { status: Some(400), .. } } if *publish == busy)));
    assert_eq!(f.s.pending_publishes(), 0);
}

#[test]
fn publishing_without_a_publish_request_is_refused_up_front() {
    let mut f = Fx::open(history_plan());
    assert!(matches!(
        f.s.publish(Millis(0), "room", "1"),
        Err(Error::Unsupported { .. })
    ));
}

#[test]
fn a_description_writes_frames_and_urls_from_its_templates() {
    let description: Description = serde_json::from_str(
        r#"{
          "message": {"stream": {"path": "room"}, "seq": "sequence_id", "payload": "$"},
          "subscribe": "{\"action\":\"join\",\"room\":\"{stream}\"}",
          "history": {"url": "http://h/rooms/{stream}/messages?since={since}&limit={limit}", "messages": "messages"},
          "publish": {"url": "http://h/rooms/{stream}/messages", "body": "{\"message\":{data},\"id\":\"{id}\"}"},
          "headers": {"authorization": "Bearer t"}
        }"#,
    )
    .expect("description");
    description.check().expect("usable");
    let plan = description.plan();
    assert!(plan.history && plan.publish && !plan.head && !plan.heartbeats);
    let stream = seqsync_core::StreamName::new("a b").expect("name");
    assert_eq!(
        description.request(&ForeignRequest::Subscribe {
            stream: stream.clone(),
            since: Seq::ZERO
        }),
        Outbound::Frame(r#"{"action":"join","room":"a b"}"#.into())
    );
    let Outbound::Http(get) = description.request(&ForeignRequest::History {
        stream: stream.clone(),
        since: seq(4),
        to: None,
        limit: 500,
    }) else {
        panic!("history is HTTP")
    };
    assert_eq!(
        (get.method, get.url.as_str()),
        ("GET", "http://h/rooms/a%20b/messages?since=4&limit=500")
    );
    assert_eq!(
        get.headers,
        [("authorization".to_string(), "Bearer t".to_string())]
    );
    let Outbound::Http(post) = description.request(&ForeignRequest::Publish {
        stream,
        data: r#"{"x":1}"#.into(),
        id: "u-1".into(),
    }) else {
        panic!("publish is HTTP")
    };
    assert_eq!(post.method, "POST");
    assert_eq!(
        post.body.as_deref(),
        Some(r#"{"message":{"x":1},"id":"u-1"}"#)
    );
    let bad: Description =
        serde_json::from_str(r#"{"message": {"seq": "s"}, "start": "snapshot"}"#).expect("parses");
    assert!(bad.check().is_err());
}

#[test]
fn history_asked_as_a_frame_ends_the_subscribe_and_its_messages_come_as_frames() {
    let mut f = Fx::open(history_plan());
    f.subscribe("room");
    let (id, request) = f.take_fetch();
    assert_eq!(history(&request), (0, None, 3));
    // The adapter sent it as a frame: the answer is the messages, live.
    f.answer(id, FetchAnswer::Sent);
    assert_eq!(f.phase(), StreamPhase::Live);
    f.msg(2);
    f.msg(1);
    assert_eq!(f.delivered(), [1, 2]);
}

#[test]
fn a_publish_answered_429_is_sent_again_with_the_same_id_after_a_backoff() {
    let mut f = Fx::new(Plan {
        publish: true,
        ..history_plan()
    });
    let p = f.s.publish(Millis(0), "room", "1").expect("publish");
    f.drain();
    let (id, request) = f.take_fetch();
    let ForeignRequest::Publish { id: first, .. } = &request else {
        panic!("{request:?}")
    };
    f.answer(
        id,
        FetchAnswer::Failed {
            reason: "HTTP 429".into(),
            status: Some(429),
        },
    );
    assert!(
        !f.events
            .iter()
            .any(|e| matches!(e, SessionEvent::PublishFailed { .. })),
        "{:?}",
        f.events
    );
    assert!(
        f.requests.iter().all(|(id, _)| id.is_none()),
        "not sent again before its backoff"
    );
    let retry = f.s.poll_timeout().expect("a retry").0;
    f.at(retry);
    let (id, again) = f.take_fetch();
    let ForeignRequest::Publish { id: second, .. } = &again else {
        panic!("{again:?}")
    };
    assert_eq!(first, second, "the same publish");
    f.answer(id, FetchAnswer::Published { seq: Some(seq(4)) });
    assert!(f.events.iter().any(|e| matches!(e, SessionEvent::PublishAcked { publish, seq } if *publish == p && seq.get() == 4)));
    assert_eq!(f.s.pending_publishes(), 0);
}

#[test]
fn at_most_4096_requests_are_in_flight_and_the_rest_wait_for_their_retry() {
    const STREAMS: usize = 4_100;
    let mut f = Fx::open(history_plan());
    for i in 0..STREAMS {
        f.s.subscribe(Millis(0), &format!("r{i}"), Default::default())
            .expect("subscribe");
    }
    f.drain();
    let live = |f: &Fx| {
        let seq = f.s.sequencer();
        seq.streams()
            .filter(|(id, _)| seq.phase(*id) == Some(StreamPhase::Live))
            .count()
    };
    let mut most = 0;
    for _ in 0..20 {
        // Every catch-up read asked so far; none was answered yet.
        let asked: Vec<FetchId> = f.requests.drain(..).filter_map(|(id, _)| id).collect();
        most = most.max(asked.len());
        assert!(asked.len() <= 4_096, "{} in flight", asked.len());
        // A short page: each stream answered is caught up and live.
        for id in asked {
            f.answer(id, page(&[1]));
        }
        if live(&f) == STREAMS {
            break;
        }
        let next = f.s.poll_timeout().expect("the waiting reads retry").0;
        f.at(next);
    }
    assert_eq!(most, 4_096, "the cap is reached");
    assert_eq!(live(&f), STREAMS, "the reads that waited were all made");
}

#[test]
fn a_catch_up_slower_than_the_subscribe_retry_still_completes_the_subscribe() {
    let mut f = Fx::open(history_plan());
    f.subscribe("room");
    let (first, request) = f.take_fetch();
    assert_eq!(history(&request).0, 0);
    // The read takes longer than the subscribe's wait, several times over:
    // each retry joins again and reads again.
    let mut later = Vec::new();
    for _ in 0..3 {
        while f.requests.iter().all(|(id, _)| id.is_none()) {
            let next = f.s.poll_timeout().expect("the subscribe's retry").0;
            f.at(next);
        }
        let (id, request) = f.take_fetch();
        assert_eq!(history(&request).0, 0);
        later.push(id);
    }
    assert_eq!(f.phase(), StreamPhase::Subscribing);
    // The first read's answer, though its attempt was retried, ends the
    // subscribe.
    f.answer(first, page(&[1, 2]));
    assert_eq!(f.delivered(), [1, 2]);
    assert_eq!(f.phase(), StreamPhase::Live);
    assert_eq!(f.s.stats().stale_answers, 0);
    // The later attempts' answers no longer count.
    let before = f.events.len();
    for id in later {
        f.answer(id, page(&[1, 2, 3]));
    }
    assert_eq!(f.s.stats().stale_answers, 3);
    assert_eq!(f.events.len(), before, "{:?}", &f.events[before..]);
    assert!(f.requests.iter().all(|(id, _)| id.is_none()));
}
