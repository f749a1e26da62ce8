//! One test per behaviour of the contract, driven through the public API.

use seqsync_core::{
    Config, DeliveryMode, Epoch, Error, Event, Millis, Request, ResetReason, Seq, SeqRange,
    Sequencer, StalledRequest, StartAt, StreamId, StreamPhase, SubscribeOptions,
};

const EPOCH: Epoch = Epoch(77);

fn seq(n: u64) -> Seq {
    Seq::new(n).expect("test seq in range")
}

fn range(a: u64, b: u64) -> SeqRange {
    SeqRange::from_u64(a, b).expect("test range valid")
}

fn config() -> Config {
    Config {
        window: 16,
        gap_timeout_ms: 100,
        request_timeout_ms: 1_000,
        max_backoff_ms: 8_000,
        stall_after_attempts: 3,
        max_fetch: 8,
        ..Config::default()
    }
}

/// A connected sequencer with one live `Ordered` stream whose snapshot was at `base`.
struct Fixture {
    core: Sequencer<u64>,
    id: StreamId,
}

impl Fixture {
    fn live(base: u64) -> Fixture {
        Fixture::with(config(), base, DeliveryMode::Ordered)
    }

    fn with(config: Config, base: u64, mode: DeliveryMode) -> Fixture {
        let mut core = Sequencer::new(config);
        let id = core
            .subscribe(
                Millis(0),
                "s",
                SubscribeOptions {
                    mode,
                    ..SubscribeOptions::default()
                },
            )
            .expect("subscribe");
        core.handle_connected(Millis(0));
        core.handle_snapshot(Millis(0), id, seq(base), EPOCH, base)
            .expect("snapshot");
        let mut f = Fixture { core, id };
        f.requests();
        f.events();
        f
    }

    fn msg(&mut self, now: u64, n: u64) {
        self.core
            .handle_message(Millis(now), self.id, seq(n), None, n * 10)
            .expect("message accepted");
    }

    fn requests(&mut self) -> Vec<Request> {
        std::iter::from_fn(|| self.core.poll_request()).collect()
    }

    fn events(&mut self) -> Vec<Event<u64>> {
        std::iter::from_fn(|| self.core.poll_event()).collect()
    }

    fn delivered(&mut self) -> Vec<u64> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Message { seq, payload, .. } => {
                    assert_eq!(payload, seq.get() * 10, "payload belongs to its seq");
                    Some(seq.get())
                }
                _ => None,
            })
            .collect()
    }

    fn fetches(&mut self) -> Vec<SeqRange> {
        self.requests()
            .into_iter()
            .filter_map(|r| match r {
                Request::FetchHistory { range, .. } => Some(range),
                _ => None,
            })
            .collect()
    }

    fn history(&mut self, now: u64, a: u64, b: u64, present: &[u64]) {
        let messages = present.iter().map(|&n| (seq(n), n * 10)).collect();
        self.core
            .handle_history(Millis(now), self.id, range(a, b), Some(EPOCH), messages)
            .expect("history accepted");
    }

    fn stats(&self) -> seqsync_core::StreamStats {
        self.core.stats(self.id).expect("stream exists")
    }
}

#[test]
fn in_order_messages_are_delivered_at_once() {
    let mut f = Fixture::live(0);
    for n in 1..=5 {
        f.msg(1, n);
    }
    assert_eq!(f.delivered(), [1, 2, 3, 4, 5]);
    assert!(f.requests().is_empty());
    assert_eq!(f.core.poll_timeout(), None);
    assert_eq!(f.stats().delivered, 5);
}

#[test]
fn reordering_within_window_is_delivered_in_order() {
    let mut f = Fixture::live(0);
    for n in [3, 1, 5, 2, 4] {
        f.msg(1, n);
    }
    assert_eq!(f.delivered(), [1, 2, 3, 4, 5]);
    assert_eq!(f.stats().buffered, 0);
}

#[test]
fn reorder_healed_before_gap_timeout_costs_no_request() {
    let mut f = Fixture::live(0);
    f.msg(0, 2);
    assert_eq!(f.core.poll_timeout(), Some(Millis(100)));
    f.msg(99, 1);
    f.core.handle_timeout(Millis(100));
    assert!(f.requests().is_empty());
    assert_eq!(f.core.poll_timeout(), None);
    assert_eq!(f.stats().resyncs, 0);
}

#[test]
fn duplicate_behind_cursor_is_dropped_and_counted() {
    let mut f = Fixture::live(0);
    f.msg(1, 1);
    f.msg(1, 2);
    f.msg(1, 1);
    assert_eq!(f.delivered(), [1, 2]);
    assert_eq!(f.stats().duplicates, 1);
}

#[test]
fn duplicate_inside_buffer_is_dropped_and_counted() {
    let mut f = Fixture::live(0);
    f.msg(1, 3);
    f.msg(1, 3);
    f.msg(1, 1);
    f.msg(1, 2);
    assert_eq!(f.delivered(), [1, 2, 3]);
    assert_eq!(f.stats().duplicates, 1);
}

#[test]
fn snapshot_overlap_is_buffered_then_deduplicated() {
    let mut core = Sequencer::<u64>::new(config());
    let id = core
        .subscribe(Millis(0), "s", SubscribeOptions::default())
        .expect("subscribe");
    core.handle_connected(Millis(0));
    assert_eq!(
        core.poll_request(),
        Some(Request::Subscribe {
            stream: seqsync_core::StreamName::new("s").expect("name"),
            since: None,
            epoch: None
        })
    );
    // Live messages arrive before the snapshot: 9 and 10 are inside it.
    for n in [11, 9, 10, 12] {
        core.handle_message(Millis(1), id, seq(n), None, n * 10)
            .expect("held");
    }
    assert!(std::iter::from_fn(|| core.poll_event()).all(|e| !matches!(e, Event::Message { .. })));
    core.handle_snapshot(Millis(2), id, seq(10), EPOCH, 1000)
        .expect("snapshot");
    let events: Vec<_> = std::iter::from_fn(|| core.poll_event()).collect();
    let shape: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Snapshot { seq, state, .. } => Some(format!("snap{seq}={state}")),
            Event::Message { seq, .. } => Some(format!("m{seq}")),
            _ => None,
        })
        .collect();
    assert_eq!(shape, ["snap10=1000", "m11", "m12"]);
    let stats = core.stats(id).expect("stats");
    assert_eq!(stats.duplicates, 2);
    assert_eq!(stats.epoch, Some(EPOCH));
}

#[test]
fn gap_is_requested_after_gap_timeout_exactly() {
    let mut f = Fixture::live(0);
    f.msg(0, 1);
    f.msg(0, 4);
    assert!(f.fetches().is_empty());
    let detected: Vec<_> = f
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::GapDetected { range, .. } => Some(range),
            _ => None,
        })
        .collect();
    assert_eq!(detected, [range(2, 3)]);
    f.core.handle_timeout(Millis(99));
    assert!(f.fetches().is_empty());
    f.core.handle_timeout(Millis(100));
    assert_eq!(f.fetches(), [range(2, 3)]);
    f.history(120, 2, 3, &[2, 3]);
    let events = f.events();
    let seqs: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message { seq, .. } => Some(seq.get()),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [2, 3, 4]);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::GapHealed { through, .. } if through.get() == 4))
    );
    assert_eq!(f.core.poll_timeout(), None);
}

#[test]
fn several_holes_are_fetched_as_separate_exact_ranges() {
    let mut f = Fixture::live(0);
    for n in [1, 3, 4, 7, 9] {
        f.msg(0, n);
    }
    f.core.handle_timeout(Millis(100));
    assert_eq!(f.fetches(), [range(2, 2), range(5, 6), range(8, 8)]);
}

#[test]
fn one_request_in_flight_per_range() {
    let mut f = Fixture::live(0);
    f.msg(0, 5);
    f.core.handle_timeout(Millis(100));
    assert_eq!(f.fetches(), [range(1, 4)]);
    // Another hole appears later; the first one is not asked for again.
    f.msg(150, 8);
    f.core.handle_timeout(Millis(200));
    assert!(f.fetches().is_empty());
    f.core.handle_timeout(Millis(250));
    assert_eq!(f.fetches(), [range(6, 7)]);
}

#[test]
fn unanswered_fetch_is_retried_with_backoff_then_stalls() {
    let mut f = Fixture::live(0);
    f.msg(0, 3);
    f.core.handle_timeout(Millis(100));
    assert_eq!(f.fetches(), [range(1, 2)]);
    // request_timeout 1000, doubling: retries at 1100, 3100, 7100.
    assert_eq!(f.core.poll_timeout(), Some(Millis(1_100)));
    f.core.handle_timeout(Millis(1_099));
    assert!(f.fetches().is_empty());
    f.core.handle_timeout(Millis(1_100));
    assert_eq!(f.fetches(), [range(1, 2)]);
    assert_eq!(f.core.poll_timeout(), Some(Millis(3_100)));
    f.core.handle_timeout(Millis(3_100));
    assert_eq!(f.fetches(), [range(1, 2)]);
    let stalled: Vec<_> = f
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Stalled { .. }))
        .collect();
    assert_eq!(
        stalled,
        [Event::Stalled {
            stream: f.id,
            request: StalledRequest::History(range(1, 2)),
            attempts: 3
        }]
    );
    // Backoff is capped at max_backoff_ms: never a hot loop.
    let mut now = 3_100;
    for _ in 0..10 {
        let next = f.core.poll_timeout().expect("retry scheduled").0;
        assert!(next > now && next - now <= 8_000, "{now} -> {next}");
        now = next;
        f.core.handle_timeout(Millis(now));
        assert_eq!(f.fetches().len(), 1);
    }
    assert_eq!(f.stats().resyncs, 13);
}

#[test]
fn retry_asks_only_for_what_is_still_missing() {
    let mut f = Fixture::live(0);
    f.msg(0, 6);
    f.core.handle_timeout(Millis(100));
    assert_eq!(f.fetches(), [range(1, 5)]);
    f.msg(500, 3);
    f.core.handle_timeout(Millis(1_100));
    assert_eq!(f.fetches(), [range(1, 2), range(4, 5)]);
}

#[test]
fn lost_tail_is_revealed_by_head() {
    let mut f = Fixture::live(0);
    f.msg(0, 1);
    f.core
        .handle_head(Millis(10), f.id, seq(3), Some(EPOCH))
        .expect("head");
    assert!(
        f.events()
            .iter()
            .any(|e| matches!(e, Event::GapDetected { range: r, .. } if *r == range(2, 3)))
    );
    f.core.handle_timeout(Millis(110));
    assert_eq!(f.fetches(), [range(2, 3)]);
    f.history(120, 2, 3, &[2, 3]);
    assert_eq!(f.delivered(), [2, 3]);
}

#[test]
fn head_at_or_below_known_changes_nothing() {
    let mut f = Fixture::live(0);
    f.msg(0, 1);
    assert_eq!(f.delivered(), [1]);
    f.core
        .handle_head(Millis(10), f.id, seq(1), Some(EPOCH))
        .expect("head");
    assert_eq!(f.core.poll_timeout(), None);
    assert!(f.events().is_empty());
}

#[test]
fn history_paged_answer_requests_the_rest_at_once() {
    let mut f = Fixture::live(0);
    f.msg(0, 7);
    f.core.handle_timeout(Millis(100));
    assert_eq!(f.fetches(), [range(1, 6)]);
    f.history(110, 1, 3, &[1, 2, 3]);
    assert_eq!(f.delivered(), [1, 2, 3]);
    assert_eq!(f.fetches(), [range(4, 6)]);
}

#[test]
fn history_missing_seq_is_skipped_not_asked_again() {
    let mut f = Fixture::live(0);
    f.msg(0, 5);
    f.core.handle_timeout(Millis(100));
    assert_eq!(f.fetches(), [range(1, 4)]);
    f.history(110, 1, 4, &[1, 3]);
    let events = f.events();
    let shape: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message { seq, .. } => Some(format!("m{seq}")),
            Event::Skipped { range, .. } => Some(format!("skip{range}")),
            _ => None,
        })
        .collect();
    assert_eq!(shape, ["m1", "skip2..=2", "m3", "skip4..=4", "m5"]);
    assert_eq!(f.stats().skipped, 2);
    f.core.handle_timeout(Millis(10_000));
    assert!(f.fetches().is_empty());
}

#[test]
fn history_cannot_skip_what_was_not_requested() {
    let mut f = Fixture::live(0);
    f.msg(0, 5);
    f.core.handle_timeout(Millis(100));
    assert_eq!(f.fetches(), [range(1, 4)]);
    f.msg(105, 2);
    // An answer claiming 1..=10 only covers what was asked: 1..=4.
    f.history(110, 1, 10, &[1]);
    assert_eq!(f.delivered(), [1, 2, 5]);
    assert_eq!(f.stats().skipped, 2);
    // 6..=10 were never asked for, so they were not skipped: 6 still comes.
    f.msg(120, 6);
    assert_eq!(f.delivered(), [6]);
}

#[test]
fn unsolicited_history_is_ignored() {
    let mut f = Fixture::live(0);
    f.msg(0, 3);
    f.history(10, 1, 2, &[]);
    assert!(f.delivered().is_empty());
    assert_eq!(f.stats().skipped, 0);
}

#[test]
fn history_with_message_outside_its_range_is_rejected() {
    let mut f = Fixture::live(0);
    f.msg(0, 3);
    f.core.handle_timeout(Millis(100));
    let err = f
        .core
        .handle_history(
            Millis(110),
            f.id,
            range(1, 2),
            None,
            vec![(seq(1), 10), (seq(9), 90)],
        )
        .expect_err("out of range");
    assert!(matches!(err, Error::HistoryOutOfRange { seq: 9, .. }));
    assert!(f.delivered().is_empty(), "rejected answer changes nothing");
}

#[test]
fn history_unavailable_resets_then_snapshot_continues() {
    let mut f = Fixture::live(0);
    f.msg(0, 1);
    f.msg(0, 5);
    f.core.handle_timeout(Millis(100));
    assert_eq!(f.fetches(), [range(2, 4)]);
    f.core
        .handle_reset(
            Millis(110),
            f.id,
            ResetReason::HistoryUnavailable,
            Some(seq(4)),
        )
        .expect("reset");
    let requests = f.requests();
    assert!(matches!(requests[..], [Request::FetchSnapshot { .. }]));
    f.core
        .handle_message(Millis(111), f.id, seq(7), None, 70)
        .expect("held");
    f.core
        .handle_snapshot(Millis(120), f.id, seq(6), EPOCH, 600)
        .expect("snapshot");
    let shape: Vec<String> = f
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Message { seq, .. } => Some(format!("m{seq}")),
            Event::Reset {
                reason, earliest, ..
            } => Some(format!(
                "reset:{}:{:?}",
                reason.as_str(),
                earliest.map(Seq::get)
            )),
            Event::Snapshot { seq, .. } => Some(format!("snap{seq}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        shape,
        ["m1", "reset:history_unavailable:Some(4)", "snap6", "m7"]
    );
    assert_eq!(f.stats().resets, 1);
}

#[test]
fn epoch_change_on_message_resets() {
    let mut f = Fixture::live(0);
    f.msg(0, 1);
    f.core
        .handle_message(Millis(1), f.id, seq(1), Some(Epoch(99)), 10)
        .expect("accepted");
    let events = f.events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Reset {
            reason: ResetReason::EpochChanged,
            ..
        }
    )));
    assert!(matches!(f.requests()[..], [Request::FetchSnapshot { .. }]));
    // The new epoch's snapshot at 0: the held seq 1 of epoch 99 is delivered.
    f.core
        .handle_snapshot(Millis(2), f.id, seq(0), Epoch(99), 0)
        .expect("snapshot");
    assert_eq!(f.delivered(), [1]);
}

#[test]
fn epoch_change_on_head_resets() {
    let mut f = Fixture::live(0);
    f.core
        .handle_head(Millis(1), f.id, seq(0), Some(Epoch(5)))
        .expect("head");
    assert!(f.events().iter().any(|e| matches!(e, Event::Reset { .. })));
    assert_eq!(f.core.phase(f.id), Some(StreamPhase::Snapshotting));
}

#[test]
fn unsolicited_snapshot_is_ignored() {
    let mut f = Fixture::live(0);
    f.msg(0, 1);
    f.core
        .handle_snapshot(Millis(1), f.id, seq(50), EPOCH, 5)
        .expect("ignored");
    f.msg(2, 2);
    assert_eq!(f.delivered(), [1, 2]);
}

#[test]
fn reconnect_resubscribes_from_last_contiguous_seq() {
    let mut f = Fixture::live(0);
    f.msg(0, 1);
    f.msg(0, 2);
    f.msg(0, 4);
    f.core.handle_disconnected(Millis(10));
    assert_eq!(f.core.phase(f.id), Some(StreamPhase::Disconnected));
    // No requests while disconnected, even when timers expire.
    f.core.handle_timeout(Millis(500));
    assert!(f.requests().is_empty());
    f.core.handle_connected(Millis(600));
    assert_eq!(
        f.requests(),
        [Request::Subscribe {
            stream: seqsync_core::StreamName::new("s").expect("name"),
            since: Some(seq(2)),
            epoch: Some(EPOCH)
        }]
    );
    // The server's head is 6: 3 (known hole) and 5..=6 are fetched at once.
    f.core
        .handle_subscribed(Millis(610), f.id, EPOCH, seq(6))
        .expect("subscribed");
    assert_eq!(f.fetches(), [range(3, 3), range(5, 6)]);
    f.history(620, 3, 3, &[3]);
    f.history(620, 5, 6, &[5, 6]);
    assert_eq!(f.delivered(), [1, 2, 3, 4, 5, 6]);
}

#[test]
fn resume_with_other_epoch_resets() {
    let mut f = Fixture::live(0);
    f.msg(0, 1);
    f.core.handle_disconnected(Millis(1));
    f.core.handle_connected(Millis(2));
    f.requests();
    f.core
        .handle_subscribed(Millis(3), f.id, Epoch(1234), seq(0))
        .expect("subscribed");
    assert!(f.events().iter().any(|e| matches!(
        e,
        Event::Reset {
            reason: ResetReason::EpochChanged,
            ..
        }
    )));
    assert!(matches!(f.requests()[..], [Request::FetchSnapshot { .. }]));
}

#[test]
fn server_behind_in_same_epoch_resets() {
    let mut f = Fixture::live(0);
    for n in 1..=5 {
        f.msg(0, n);
    }
    f.core.handle_disconnected(Millis(1));
    f.core.handle_connected(Millis(2));
    f.core
        .handle_subscribed(Millis(3), f.id, EPOCH, seq(3))
        .expect("subscribed");
    assert!(f.events().iter().any(|e| matches!(
        e,
        Event::Reset {
            reason: ResetReason::ServerBehind,
            ..
        }
    )));
}

#[test]
fn seq_far_beyond_window_costs_no_memory_and_no_requests() {
    let mut f = Fixture::live(0);
    f.msg(0, 1);
    f.msg(0, seqsync_core::MAX_SEQ);
    let stats = f.stats();
    assert_eq!(stats.buffered, 0);
    assert_eq!(stats.dropped, 1);
    assert_eq!(
        stats.head.get(),
        1,
        "a live seq beyond the window proves nothing"
    );
    // In-order traffic goes on without a single request.
    for n in 2..=100 {
        f.msg(n, n);
    }
    f.core.handle_timeout(Millis(10_000));
    assert!(f.fetches().is_empty());
    assert_eq!(f.delivered(), (1..=100).collect::<Vec<_>>());
}

#[test]
fn head_far_ahead_is_fetched_window_by_window() {
    let mut f = Fixture::live(0);
    f.core
        .handle_head(Millis(0), f.id, seq(40), Some(EPOCH))
        .expect("head");
    f.core.handle_timeout(Millis(100));
    // Window 16, max_fetch 8: the first window's worth, in two pieces.
    assert_eq!(f.fetches(), [range(1, 8), range(9, 16)]);
    let first: Vec<u64> = (1..=8).collect();
    f.history(110, 1, 8, &first);
    assert_eq!(f.fetches(), [range(17, 24)]);
}

#[test]
fn buffer_full_drops_far_end_and_fetches_it_later() {
    let mut f = Fixture::live(0);
    // Window 16: offsets 0..16 from next=1 fit (seqs 1..=16); 20 does not.
    for n in [2, 16, 20] {
        f.msg(0, n);
    }
    let stats = f.stats();
    assert_eq!(stats.buffered, 2);
    assert_eq!(stats.dropped, 1);
    f.msg(1, 1);
    assert_eq!(f.delivered(), [1, 2]);
    // The next heartbeat says 20 exists.
    f.core
        .handle_head(Millis(2), f.id, seq(20), Some(EPOCH))
        .expect("head");
    f.core.handle_timeout(Millis(102));
    // Window now covers 3..=18. The hole 17..=20 is cut by the window, and
    // its piece inside (17..=18) is smaller than half a fetch: it waits
    // until the window reaches the whole hole.
    assert_eq!(f.fetches(), [range(3, 10), range(11, 15)]);
    let present: Vec<u64> = (3..=15).collect();
    f.history(110, 3, 10, &present[..8]);
    f.history(110, 11, 15, &present[8..]);
    assert_eq!(f.fetches(), [range(17, 20)]);
    f.history(120, 17, 20, &[17, 18, 19, 20]);
    assert_eq!(f.delivered(), (3..=20).collect::<Vec<_>>());
}

#[test]
fn live_resume_answered_after_live_messages_is_not_server_behind() {
    let mut f = Fixture::live(0);
    for n in 1..=5 {
        f.msg(0, n);
    }
    f.core.handle_disconnected(Millis(1));
    f.core.handle_connected(Millis(2));
    f.requests();
    // A message published after the server registered the resume overtakes
    // the `subscribed` answer, whose head is the old 5.
    f.msg(3, 6);
    f.core
        .handle_subscribed(Millis(4), f.id, EPOCH, seq(5))
        .expect("subscribed");
    assert!(!f.events().iter().any(|e| matches!(e, Event::Reset { .. })));
    f.msg(5, 7);
    assert_eq!(f.delivered(), [7]);
}

#[test]
fn late_frame_of_the_old_epoch_does_not_reset_again() {
    let mut f = Fixture::live(4);
    f.core
        .handle_message(Millis(1), f.id, seq(1), Some(Epoch(2)), 10)
        .expect("new epoch");
    f.core
        .handle_snapshot(Millis(2), f.id, seq(0), Epoch(2), 0)
        .expect("snapshot");
    f.events();
    f.core
        .handle_message(Millis(3), f.id, seq(5), Some(EPOCH), 50)
        .expect("late");
    let events = f.events();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Reset { .. })),
        "{events:?}"
    );
    assert_eq!(f.stats().resets, 1);
}

#[test]
fn message_before_any_snapshot_is_never_delivered() {
    let mut core = Sequencer::<u64>::new(config());
    let id = core
        .subscribe(Millis(0), "s", SubscribeOptions::default())
        .expect("subscribe");
    // Fed while not connected: there is nothing to sequence against.
    core.handle_message(Millis(1), id, seq(1), None, 10)
        .expect("accepted");
    core.handle_connected(Millis(2));
    core.handle_snapshot(Millis(3), id, seq(0), EPOCH, 0)
        .expect("snapshot");
    core.handle_message(Millis(4), id, seq(1), None, 10)
        .expect("accepted");
    let seqs: Vec<u64> = std::iter::from_fn(|| core.poll_event())
        .filter_map(|e| match e {
            Event::Message { seq, .. } => Some(seq.get()),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [1], "seq 1 exactly once, after the snapshot");
}

#[test]
fn latest_mode_keeps_the_newest_message_held_for_a_snapshot() {
    let mut core = Sequencer::<u64>::new(Config {
        window: 2,
        ..config()
    });
    let id = core
        .subscribe(
            Millis(0),
            "s",
            SubscribeOptions {
                mode: DeliveryMode::Latest,
                ..SubscribeOptions::default()
            },
        )
        .expect("subscribe");
    core.handle_connected(Millis(0));
    for n in [11, 13, 12] {
        core.handle_message(Millis(1), id, seq(n), None, n)
            .expect("held");
    }
    core.handle_snapshot(Millis(2), id, seq(10), EPOCH, 10)
        .expect("snapshot");
    let seqs: Vec<u64> = std::iter::from_fn(|| core.poll_event())
        .filter_map(|e| match e {
            Event::Message { seq, .. } => Some(seq.get()),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [13]);
}

#[test]
fn second_reset_while_awaiting_snapshot_is_not_repeated() {
    let mut f = Fixture::live(3);
    for _ in 0..2 {
        f.core
            .handle_reset(Millis(1), f.id, ResetReason::HistoryUnavailable, None)
            .expect("reset");
    }
    let resets = f
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Reset { .. }))
        .count();
    assert_eq!(resets, 1);
    assert_eq!(f.requests().len(), 1, "one snapshot request");
}

#[test]
fn seq_zero_is_a_typed_error() {
    let mut f = Fixture::live(0);
    let err = f
        .core
        .handle_message(Millis(0), f.id, Seq::ZERO, None, 0)
        .expect_err("seq 0");
    assert_eq!(err, Error::SeqOutOfRange { seq: 0 });
}

#[test]
fn seq_above_2_pow_53_is_a_typed_error() {
    assert_eq!(
        Seq::new(1 << 53),
        Err(Error::SeqOutOfRange { seq: 1 << 53 })
    );
    assert_eq!(Seq::message(0), Err(Error::SeqOutOfRange { seq: 0 }));
    assert!(SeqRange::from_u64(5, 4).is_err());
}

#[test]
fn latest_mode_delivers_only_newer_and_never_resyncs() {
    let mut f = Fixture::with(config(), 0, DeliveryMode::Latest);
    for n in [2, 1, 5, 3, 6] {
        f.msg(0, n);
    }
    f.core
        .handle_head(Millis(1), f.id, seq(10), Some(EPOCH))
        .expect("head");
    f.core.handle_timeout(Millis(10_000));
    assert_eq!(f.delivered(), [2, 5, 6]);
    assert!(f.requests().is_empty());
    assert_eq!(f.stats().dropped, 2);
    assert_eq!(f.stats().lag, 4);
}

#[test]
fn unsubscribe_frees_everything() {
    let mut f = Fixture::live(0);
    f.msg(0, 3);
    f.core.unsubscribe(Millis(1), f.id).expect("unsubscribe");
    assert!(matches!(f.requests()[..], [Request::Unsubscribe { .. }]));
    assert!(
        f.events().is_empty(),
        "queued events of the stream are gone"
    );
    assert_eq!(f.core.poll_timeout(), None);
    assert!(f.core.is_empty());
    let err = f
        .core
        .handle_message(Millis(2), f.id, seq(1), None, 1)
        .expect_err("stale handle");
    assert!(matches!(err, Error::UnknownStream { .. }));
    // The name can be subscribed again and gets a fresh handle.
    let again = f
        .core
        .subscribe(Millis(3), "s", SubscribeOptions::default())
        .expect("again");
    assert_ne!(again, f.id);
}

#[test]
fn resume_point_subscribes_with_since() {
    let mut core = Sequencer::<u64>::new(config());
    let id = core
        .subscribe(
            Millis(0),
            "s",
            SubscribeOptions {
                start: StartAt::After {
                    seq: seq(41),
                    epoch: Some(EPOCH),
                },
                ..SubscribeOptions::default()
            },
        )
        .expect("subscribe");
    assert_eq!(core.poll_request(), None, "nothing sent while disconnected");
    core.handle_connected(Millis(1));
    assert_eq!(
        core.poll_request(),
        Some(Request::Subscribe {
            stream: seqsync_core::StreamName::new("s").expect("name"),
            since: Some(seq(41)),
            epoch: Some(EPOCH),
        })
    );
    core.handle_subscribed(Millis(2), id, EPOCH, seq(41))
        .expect("subscribed");
    core.handle_message(Millis(3), id, seq(42), None, 420)
        .expect("msg");
    let seqs: Vec<u64> = std::iter::from_fn(|| core.poll_event())
        .filter_map(|e| match e {
            Event::Message { seq, .. } => Some(seq.get()),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [42]);
}

#[test]
fn unanswered_snapshot_is_asked_again() {
    let mut core = Sequencer::<u64>::new(config());
    let id = core
        .subscribe(Millis(0), "s", SubscribeOptions::default())
        .expect("subscribe");
    core.handle_connected(Millis(0));
    assert!(core.poll_request().is_some());
    assert_eq!(core.poll_timeout(), Some(Millis(1_000)));
    core.handle_timeout(Millis(1_000));
    assert!(matches!(
        core.poll_request(),
        Some(Request::Subscribe { since: None, .. })
    ));
    assert_eq!(core.phase(id), Some(StreamPhase::Snapshotting));
}

#[test]
fn subscribing_twice_is_an_error() {
    let mut core = Sequencer::<u64>::new(config());
    core.subscribe(Millis(0), "s", SubscribeOptions::default())
        .expect("first");
    assert!(matches!(
        core.subscribe(Millis(0), "s", SubscribeOptions::default()),
        Err(Error::AlreadySubscribed { .. })
    ));
    assert!(matches!(
        core.subscribe(Millis(0), "", SubscribeOptions::default()),
        Err(Error::InvalidStreamName { .. })
    ));
}

#[test]
fn too_many_streams_is_an_error() {
    let mut core = Sequencer::<u64>::new(Config {
        max_streams: 2,
        ..config()
    });
    core.subscribe(Millis(0), "a", SubscribeOptions::default())
        .expect("a");
    core.subscribe(Millis(0), "b", SubscribeOptions::default())
        .expect("b");
    assert_eq!(
        core.subscribe(Millis(0), "c", SubscribeOptions::default()),
        Err(Error::TooManyStreams { limit: 2 })
    );
}

#[test]
fn streams_are_independent() {
    let mut core = Sequencer::<u64>::new(config());
    let a = core
        .subscribe(Millis(0), "a", SubscribeOptions::default())
        .expect("a");
    let b = core
        .subscribe(Millis(0), "b", SubscribeOptions::default())
        .expect("b");
    core.handle_connected(Millis(0));
    core.handle_snapshot(Millis(0), a, seq(0), EPOCH, 0)
        .expect("a snap");
    core.handle_snapshot(Millis(0), b, seq(100), EPOCH, 0)
        .expect("b snap");
    core.handle_message(Millis(1), a, seq(2), None, 2)
        .expect("a2");
    core.handle_message(Millis(1), b, seq(101), None, 101)
        .expect("b101");
    let delivered: Vec<(StreamId, u64)> = std::iter::from_fn(|| core.poll_event())
        .filter_map(|e| match e {
            Event::Message { stream, seq, .. } => Some((stream, seq.get())),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, [(b, 101)]);
    assert_eq!(core.stats(a).expect("a").buffered, 1);
}

#[test]
fn phase_changes_are_reported() {
    let mut core = Sequencer::<u64>::new(config());
    let id = core
        .subscribe(Millis(0), "s", SubscribeOptions::default())
        .expect("subscribe");
    core.handle_connected(Millis(0));
    core.handle_snapshot(Millis(1), id, seq(0), EPOCH, 0)
        .expect("snap");
    core.handle_disconnected(Millis(2));
    let phases: Vec<StreamPhase> = std::iter::from_fn(|| core.poll_event())
        .filter_map(|e| match e {
            Event::PhaseChanged { phase, .. } => Some(phase),
            _ => None,
        })
        .collect();
    assert_eq!(
        phases,
        [
            StreamPhase::Snapshotting,
            StreamPhase::Live,
            StreamPhase::Disconnected
        ]
    );
}

#[test]
fn snapshot_is_delivered_before_the_stream_goes_live() {
    let mut core = Sequencer::<u64>::new(config());
    let id = core
        .subscribe(Millis(0), "s", SubscribeOptions::default())
        .expect("subscribe");
    core.handle_connected(Millis(0));
    while core.poll_event().is_some() {}
    core.handle_snapshot(Millis(1), id, seq(7), EPOCH, 70)
        .expect("snap");
    let events: Vec<Event<u64>> = std::iter::from_fn(|| core.poll_event()).collect();
    assert!(
        matches!(
            events.as_slice(),
            [
                Event::Snapshot { state: 70, .. },
                Event::PhaseChanged {
                    phase: StreamPhase::Live,
                    ..
                }
            ]
        ),
        "{events:?}"
    );
}

#[test]
fn idle_stream_state_fits_budget() {
    let (state, total) = seqsync_core::idle_stream_bytes::<u64>("room:42");
    println!("idle stream: state {state} bytes, with name index and name {total} bytes");
    assert!(state <= 128, "idle stream state is {state} bytes");
    assert!(total <= 192, "idle stream costs {total} bytes in all");
}

#[test]
fn live_stream_that_hears_nothing_for_a_whole_period_subscribes_again() {
    let mut f = Fixture::live(5);
    // The first check only starts a period: the stream just went live.
    assert_eq!(f.core.resubscribe_silent(Millis(10_000)), 0);
    assert!(f.requests().is_empty());
    // Nothing at all arrived for a whole period: the server may not hold
    // the subscription, so it is asked for again from the position held.
    assert_eq!(f.core.resubscribe_silent(Millis(20_000)), 1);
    assert_eq!(
        f.requests(),
        [Request::Subscribe {
            stream: seqsync_core::StreamName::new("s").expect("name"),
            since: Some(seq(5)),
            epoch: Some(EPOCH),
        }]
    );
    assert_eq!(f.core.phase(f.id), Some(StreamPhase::Subscribing));
    assert_eq!(f.stats().resubscribes, 1);
}

#[test]
fn a_head_or_a_message_keeps_a_quiet_stream_from_resubscribing() {
    let mut f = Fixture::live(5);
    f.core.resubscribe_silent(Millis(10_000));
    f.core
        .handle_head(Millis(15_000), f.id, seq(5), Some(EPOCH))
        .expect("head");
    assert_eq!(f.core.resubscribe_silent(Millis(20_000)), 0);
    f.msg(25_000, 6);
    assert_eq!(f.core.resubscribe_silent(Millis(30_000)), 0);
    assert_eq!(f.delivered(), [6]);
    assert!(f.requests().is_empty());
}

#[test]
fn streams_waiting_for_an_answer_are_not_silent() {
    let mut core = Sequencer::<u64>::new(config());
    let id = core
        .subscribe(Millis(0), "s", SubscribeOptions::default())
        .expect("subscribe");
    core.handle_connected(Millis(0));
    let _ = std::iter::from_fn(|| core.poll_request()).count();
    // Snapshotting has its own retry timer; the silence check leaves it be.
    assert_eq!(core.resubscribe_silent(Millis(500)), 0);
    assert_eq!(core.resubscribe_silent(Millis(900)), 0);
    assert_eq!(core.phase(id), Some(StreamPhase::Snapshotting));
}

#[test]
fn timeout_is_the_earliest_deadline_of_any_stream() {
    let mut core = Sequencer::<u64>::new(config());
    let ids: Vec<StreamId> = (0..3)
        .map(|i| {
            core.subscribe(Millis(0), &format!("s{i}"), SubscribeOptions::default())
                .expect("subscribe")
        })
        .collect();
    core.handle_connected(Millis(0));
    for &id in &ids {
        core.handle_snapshot(Millis(0), id, seq(0), EPOCH, 0)
            .expect("snapshot");
    }
    assert_eq!(core.poll_timeout(), None);
    // Holes seen at 30, 10 and 20 ms: due at gap timeout (100 ms) after each.
    for (&id, at) in ids.iter().zip([30, 10, 20]) {
        core.handle_message(Millis(at), id, seq(2), None, 2)
            .expect("ahead of a hole");
    }
    assert_eq!(core.poll_timeout(), Some(Millis(110)));
    // The earliest hole heals: the next deadline is the next stream's.
    core.handle_message(Millis(50), ids[1], seq(1), None, 1)
        .expect("fills the hole");
    assert_eq!(core.poll_timeout(), Some(Millis(120)));
    core.handle_timeout(Millis(120));
    let asked: Vec<String> = std::iter::from_fn(|| core.poll_request())
        .filter_map(|r| match r {
            Request::FetchHistory { stream, .. } => Some(stream.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(asked, ["s2"]);
    // s0's hole is due at 130; s2's request is retried at 120 + 1000.
    assert_eq!(core.poll_timeout(), Some(Millis(130)));
    core.unsubscribe(Millis(121), ids[0]).expect("unsubscribe");
    assert_eq!(core.poll_timeout(), Some(Millis(1_120)));
}

// ---- rules of docs/protocol.md section 8, one fixed case each ----------------

/// 8.3 rule 3: of the messages held while a snapshot was awaited, those of
/// another epoch than the snapshot's are dropped, not delivered as part of
/// the snapshot's log.
#[test]
fn held_messages_of_another_epoch_than_the_snapshot_are_dropped() {
    let mut core = Sequencer::<u64>::new(config());
    let id = core
        .subscribe(Millis(0), "s", SubscribeOptions::default())
        .expect("subscribe");
    core.handle_connected(Millis(0));
    while core.poll_request().is_some() {}
    // Seq 2 comes from another log (epoch 5) than the snapshot's (77); its
    // payload says so.
    let held = [
        (1, Some(EPOCH), 10),
        (2, Some(Epoch(5)), 999),
        (3, None, 30),
    ];
    for (n, epoch, payload) in held {
        core.handle_message(Millis(1), id, seq(n), epoch, payload)
            .expect("held");
    }
    core.handle_snapshot(Millis(2), id, seq(0), EPOCH, 0)
        .expect("snapshot");
    let messages = |core: &mut Sequencer<u64>| -> Vec<(u64, u64)> {
        std::iter::from_fn(|| core.poll_event())
            .filter_map(|e| match e {
                Event::Message { seq, payload, .. } => Some((seq.get(), payload)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(messages(&mut core), [(1, 10)], "3 waits for the real 2");
    let stats = core.stats(id).expect("stats");
    assert_eq!(stats.dropped, 1);
    assert_eq!(stats.epoch, Some(EPOCH));
    // The dropped seq is a hole like any other: fetched from the
    // snapshot's log after the gap timeout.
    core.handle_timeout(Millis(102));
    let fetches: Vec<Request> = std::iter::from_fn(|| core.poll_request()).collect();
    assert!(
        matches!(&fetches[..], [Request::FetchHistory { range: r, .. }] if *r == range(2, 2)),
        "{fetches:?}"
    );
    core.handle_history(
        Millis(103),
        id,
        range(2, 2),
        Some(EPOCH),
        vec![(seq(2), 20)],
    )
    .expect("history");
    assert_eq!(messages(&mut core), [(2, 20), (3, 30)]);
}

/// 8.4, last paragraph: a `subscribed` that arrives while the stream is not
/// subscribing is a `head` entry: below the position it changes nothing
/// (no `server_behind` reset), above it it reveals a lost tail fetched after
/// the gap timeout, and before the snapshot it is ignored.
#[test]
fn subscribed_outside_the_subscribing_phase_counts_as_a_head() {
    // Live at 5: a `subscribed` naming head 3 (a late answer of an earlier
    // subscribe) is a head below the position.
    let mut f = Fixture::live(0);
    for n in 1..=5 {
        f.msg(0, n);
    }
    f.events();
    f.core
        .handle_subscribed(Millis(1), f.id, EPOCH, seq(3))
        .expect("subscribed");
    assert!(f.events().is_empty(), "no reset, nothing at all");
    assert!(f.requests().is_empty());
    assert_eq!(f.core.phase(f.id), Some(StreamPhase::Live));
    // Head 8: 6..=8 is a lost tail, asked for after the gap timeout (a
    // `subscribed` of the subscribing phase would ask at once).
    f.core
        .handle_subscribed(Millis(10), f.id, EPOCH, seq(8))
        .expect("subscribed");
    assert!(
        f.events()
            .iter()
            .any(|e| matches!(e, Event::GapDetected { range: r, .. } if *r == range(6, 8)))
    );
    assert!(f.fetches().is_empty(), "not at once");
    f.core.handle_timeout(Millis(110));
    assert_eq!(f.fetches(), [range(6, 8)]);

    // Snapshotting: a head is ignored there, so the stream stays waiting
    // for its snapshot.
    let mut core = Sequencer::<u64>::new(config());
    let id = core
        .subscribe(Millis(0), "s", SubscribeOptions::default())
        .expect("subscribe");
    core.handle_connected(Millis(0));
    while core.poll_request().is_some() {}
    core.handle_subscribed(Millis(1), id, EPOCH, seq(4))
        .expect("subscribed");
    assert_eq!(core.phase(id), Some(StreamPhase::Snapshotting));
    assert_eq!(core.poll_request(), None);
    core.handle_snapshot(Millis(2), id, seq(4), EPOCH, 40)
        .expect("snapshot");
    assert!(std::iter::from_fn(|| core.poll_event()).any(|e| matches!(e, Event::Snapshot { .. })));
}

/// 8.5 rule 1: a `history` frame for a stream that is not live is ignored,
/// even one that answers what the stream asked before it left the live
/// phase: it delivers nothing and skips nothing.
#[test]
fn history_in_a_non_live_phase_is_ignored() {
    // Live at 1 with 2..=3 missing and asked for.
    let asked = || {
        let mut f = Fixture::live(0);
        f.msg(0, 1);
        f.msg(0, 4);
        f.core.handle_timeout(Millis(100));
        assert_eq!(f.fetches(), [range(2, 3)]);
        assert_eq!(f.delivered(), [1]);
        f
    };
    let ignored = |f: &mut Fixture, phase: StreamPhase| {
        assert_eq!(f.core.phase(f.id), Some(phase));
        f.history(200, 2, 3, &[2]);
        assert_eq!(f.delivered(), Vec::<u64>::new(), "{phase:?}");
        assert_eq!(f.stats().skipped, 0, "{phase:?}");
        assert_eq!(f.stats().last_seq, seq(1), "{phase:?}");
        assert_eq!(f.core.phase(f.id), Some(phase));
    };
    // Disconnected.
    let mut f = asked();
    f.core.handle_disconnected(Millis(150));
    ignored(&mut f, StreamPhase::Disconnected);
    // Subscribing again on a new connection.
    f.core.handle_connected(Millis(160));
    f.requests();
    ignored(&mut f, StreamPhase::Subscribing);
    // Subscribing again on the same connection, after a silence.
    let mut f = asked();
    f.events();
    for t in [10_100, 20_200] {
        f.core.resubscribe_silent(Millis(t));
    }
    f.requests();
    ignored(&mut f, StreamPhase::Subscribing);
    // Snapshotting after a reset.
    let mut f = asked();
    f.core
        .handle_reset(Millis(150), f.id, ResetReason::HistoryUnavailable, None)
        .expect("reset");
    f.events();
    f.requests();
    ignored(&mut f, StreamPhase::Snapshotting);
}

/// 8.5 rule 2: a `history` frame naming another epoch than the known one
/// resets the stream (`epoch_changed`) instead of continuing the old log
/// with the new one's messages.
#[test]
fn history_of_another_epoch_resets() {
    let mut f = Fixture::live(0);
    f.msg(0, 1);
    f.msg(0, 4);
    f.core.handle_timeout(Millis(100));
    assert_eq!(f.fetches(), [range(2, 3)]);
    f.delivered();
    f.core
        .handle_history(
            Millis(110),
            f.id,
            range(2, 3),
            Some(Epoch(78)),
            vec![(seq(2), 20), (seq(3), 30)],
        )
        .expect("history");
    let events = f.events();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Message { .. })),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Reset {
            reason: ResetReason::EpochChanged,
            ..
        }
    )));
    assert!(matches!(f.requests()[..], [Request::FetchSnapshot { .. }]));
    assert_eq!(f.stats().skipped, 0);
}

/// 8.6: members of a `head` frame are ignored in every phase but live, and
/// a live stream's head below its position changes nothing (a heartbeat
/// built before a message was appended can arrive after it).
#[test]
fn head_in_a_non_live_phase_or_below_the_position_changes_nothing() {
    // Below the position: delivered up to 5, head 3.
    let mut f = Fixture::live(0);
    for n in 1..=5 {
        f.msg(0, n);
    }
    f.events();
    f.core
        .handle_head(Millis(1), f.id, seq(3), Some(EPOCH))
        .expect("head");
    assert!(f.events().is_empty());
    assert!(f.requests().is_empty());
    assert_eq!(f.core.poll_timeout(), None);
    assert_eq!(f.stats().resets, 0);
    f.msg(2, 6);
    assert_eq!(f.delivered(), [6]);

    // Subscribing (resuming after a reconnect): neither a head past the
    // position nor one of another epoch counts before `subscribed`.
    f.core.handle_disconnected(Millis(3));
    f.core.handle_connected(Millis(4));
    f.requests();
    f.events();
    f.core
        .handle_head(Millis(5), f.id, seq(9), Some(EPOCH))
        .expect("head");
    f.core
        .handle_head(Millis(5), f.id, seq(9), Some(Epoch(78)))
        .expect("head");
    assert!(f.events().is_empty());
    assert!(f.requests().is_empty());
    assert_eq!(f.core.phase(f.id), Some(StreamPhase::Subscribing));
    assert_eq!(f.stats().head, seq(6));
    // Its `subscribed` then finds the tail, asked for at once.
    f.core
        .handle_subscribed(Millis(6), f.id, EPOCH, seq(8))
        .expect("subscribed");
    assert_eq!(f.fetches(), [range(7, 8)]);

    // Disconnected: ignored as well.
    f.core.handle_disconnected(Millis(7));
    f.events();
    f.core
        .handle_head(Millis(8), f.id, seq(20), Some(Epoch(78)))
        .expect("head");
    assert!(f.events().is_empty());
    assert_eq!(f.stats().head, seq(8));
}
