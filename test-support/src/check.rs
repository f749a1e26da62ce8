//! The contract checker: fed a subscription's events, it fails the test
//! at the first breach of the delivery contract and keeps what was
//! delivered.

use std::collections::HashMap;
use std::time::Duration;

use seqsync::{Client, ResetReason, SubscriptionEvent};
use seqsync_core::Epoch;
use serde_json::Value;
use tokio::sync::mpsc;

/// Checks the contract on one stream's events and keeps what was delivered.
///
/// The rules are the README's contract, as strictly as an application sees
/// it:
/// - a `Snapshot` comes only as the first delivery or right after a
///   `Reset`;
/// - messages (and skips) go on from the last contiguous seq, one seq at a
///   time, never between a `Reset` and its `Snapshot`;
/// - the position never moves backwards, except through a `Reset` that says
///   the log changed (`EpochChanged`, `ServerBehind`): its snapshot starts a
///   new incarnation of the stream, and what was delivered above it is
///   forgotten;
/// - so every seq is delivered at most once per incarnation, and
///   [`StreamCheck::assert_exact`] then checks that each one expected was
///   delivered with its payload.
///
/// Any breach panics at the event that breaks the rule.
#[derive(Debug, Default)]
pub struct StreamCheck {
    /// Last contiguous seq the application holds.
    pub last: u64,
    /// Payloads delivered by seq, in the current incarnation of the stream.
    pub delivered: HashMap<u64, Value>,
    /// Resets seen.
    pub resets: u64,
    /// Snapshots seen, with their seq.
    pub snapshots: Vec<u64>,
    /// The epoch of each snapshot seen.
    pub snapshot_epochs: Vec<Epoch>,
    /// The reason of each reset seen.
    pub reset_reasons: Vec<ResetReason>,
    /// Seqs skipped.
    pub skipped: u64,
    /// Messages whose payload did not decode (each counts as delivered).
    pub undecodable: u64,
    /// Every event applied, in order, when made with [`StreamCheck::recording`].
    pub events: Option<Vec<SubscriptionEvent>>,
    /// Whether anything was delivered yet (a snapshot, a message, a skip), or
    /// the check started from a known position.
    started: bool,
    /// The reason of the reset whose snapshot has not come yet.
    reset_pending: Option<ResetReason>,
    /// Where a resumed subscription started (0 for one that starts from a
    /// snapshot).
    resumed_after: u64,
}

impl StreamCheck {
    /// A checker that also keeps every event it applies.
    pub fn recording() -> StreamCheck {
        StreamCheck {
            events: Some(Vec::new()),
            ..StreamCheck::default()
        }
    }

    /// A checker for a subscription that resumes after `last` (the
    /// application already holds everything up to it), recording its events.
    pub fn resuming_after(last: u64) -> StreamCheck {
        StreamCheck {
            last,
            resumed_after: last,
            started: true,
            ..StreamCheck::recording()
        }
    }

    /// The events applied so far (empty unless recording).
    pub fn events(&self) -> &[SubscriptionEvent] {
        self.events.as_deref().unwrap_or_default()
    }

    /// Applies one event; panics on any breach of the contract.
    pub fn apply(&mut self, stream: &str, event: SubscriptionEvent) {
        if let Some(events) = self.events.as_mut() {
            events.push(event.clone());
        }
        match event {
            SubscriptionEvent::Message { seq, data, .. } => {
                self.next_delivery(stream, "message", seq.get());
                let earlier = self
                    .delivered
                    .insert(seq.get(), data.to_value().unwrap_or_default());
                assert!(earlier.is_none(), "{stream}: seq {seq} delivered twice");
            }
            SubscriptionEvent::Undecodable { seq, .. } => {
                self.next_delivery(stream, "undecodable message", seq.get());
                self.undecodable += 1;
            }
            SubscriptionEvent::Snapshot { seq, epoch, .. } => {
                let seq = seq.get();
                match self.reset_pending.take() {
                    None => assert!(
                        !self.started,
                        "{stream}: snapshot at {seq} with no reset before it \
                         (the application held {})",
                        self.last
                    ),
                    Some(ResetReason::HistoryUnavailable) => assert!(
                        seq >= self.last,
                        "{stream}: the snapshot after a history_unavailable reset \
                         moved the position back from {} to {seq}",
                        self.last
                    ),
                    // The log changed: its seqs start a new incarnation.
                    Some(ResetReason::EpochChanged | ResetReason::ServerBehind) => {
                        self.delivered.retain(|&held, _| held <= seq);
                    }
                }
                self.started = true;
                self.last = seq;
                self.snapshots.push(seq);
                self.snapshot_epochs.push(epoch);
            }
            SubscriptionEvent::Reset { reason, .. } => {
                self.resets += 1;
                self.reset_reasons.push(reason);
                // Two resets before one snapshot: the snapshot may go back if
                // either of them said the log changed.
                self.reset_pending = match (self.reset_pending, reason) {
                    (Some(ResetReason::HistoryUnavailable) | None, next) => Some(next),
                    (Some(earlier), _) => Some(earlier),
                };
            }
            SubscriptionEvent::Skipped { range } => {
                assert!(
                    self.reset_pending.is_none(),
                    "{stream}: skip {range} between reset and snapshot"
                );
                assert_eq!(
                    range.start().get(),
                    self.last + 1,
                    "{stream}: skip not contiguous"
                );
                self.started = true;
                self.skipped += range.len();
                self.last = range.end().get();
            }
            _ => {}
        }
    }

    /// Checks that a delivery of `seq` is the next one, and takes it.
    fn next_delivery(&mut self, stream: &str, what: &str, seq: u64) {
        assert!(
            self.reset_pending.is_none(),
            "{stream}: {what} {seq} between reset and snapshot"
        );
        assert!(
            seq > self.last,
            "{stream}: {what} {seq} moves the position backwards from {}",
            self.last
        );
        assert_eq!(
            seq,
            self.last + 1,
            "{stream}: expected seq {} next, got {what} {seq}",
            self.last + 1
        );
        self.started = true;
        self.last = seq;
    }
}

/// Applies `sub`'s events to `check` until it holds `last`; false when that
/// takes longer than `limit` (the subscription ending is a panic).
pub async fn read_until(
    sub: &mut seqsync::Subscription,
    check: &mut StreamCheck,
    last: u64,
    limit: Duration,
) -> bool {
    let stream = sub.stream().to_string();
    let read = async {
        while check.last < last {
            match futures_util::StreamExt::next(sub).await {
                Some(event) => check.apply(&stream, event),
                None => panic!("{stream}: subscription ended at {}", check.last),
            }
        }
    };
    tokio::time::timeout(limit, read).await.is_ok()
}

/// As [`read_until`], with 30 seconds, failing the test when they pass.
pub async fn read_to(sub: &mut seqsync::Subscription, check: &mut StreamCheck, last: u64) {
    let reached = read_until(sub, check, last, Duration::from_secs(30)).await;
    assert!(
        reached,
        "{}: stuck at {} of {last}",
        sub.stream(),
        check.last
    );
}

impl StreamCheck {
    /// Asserts that everything after the first snapshot (or the resume
    /// point), up to `last`, was
    /// delivered with the payload `expected` gives for its seq, and that
    /// nothing was lost or skipped on the way.
    pub fn assert_exact(&self, stream: &str, last: u64, expected: impl Fn(u64) -> Value) {
        assert_eq!(self.resets, 0, "{stream}: nothing was lost, so no reset");
        assert_eq!(self.skipped, 0, "{stream}: nothing was skipped");
        assert_eq!(self.undecodable, 0, "{stream}: every payload decoded");
        assert!(
            self.snapshots.len() <= 1,
            "{stream}: one snapshot at most without a reset"
        );
        assert_eq!(self.last, last, "{stream}: everything delivered");
        let first = self
            .snapshots
            .first()
            .copied()
            .unwrap_or(self.resumed_after);
        for seq in first + 1..=last {
            assert_eq!(
                self.delivered.get(&seq),
                Some(&expected(seq)),
                "{stream} seq {seq}"
            );
        }
    }
}

/// Applies `sub`'s events to `check` until it has seen a snapshot; false
/// when that takes longer than `limit`.
pub async fn read_until_snapshot(
    sub: &mut seqsync::Subscription,
    check: &mut StreamCheck,
    limit: Duration,
) -> bool {
    let stream = sub.stream().to_string();
    let read = async {
        while check.snapshots.is_empty() {
            match futures_util::StreamExt::next(sub).await {
                Some(event) => check.apply(&stream, event),
                None => panic!("{stream}: subscription ended before a snapshot"),
            }
        }
    };
    tokio::time::timeout(limit, read).await.is_ok()
}

/// Subscribes `client` to every stream of `names` and checks each in a task
/// of its own until it holds `last`; each check is sent to `done` when it
/// gets there (or when the subscription ends).
pub async fn watch_streams(
    client: &Client,
    names: &[String],
    last: u64,
    done: &mpsc::UnboundedSender<(String, StreamCheck)>,
) {
    for name in names {
        let mut sub = match client.subscribe(name).await {
            Ok(sub) => sub,
            Err(e) => panic!("subscribe {name}: {e}"),
        };
        let done = done.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let mut check = StreamCheck::default();
            while check.last < last {
                let Some(event) = futures_util::StreamExt::next(&mut sub).await else {
                    break;
                };
                check.apply(&name, event);
            }
            let _ = done.send((name, check));
        });
    }
}

#[cfg(test)]
mod tests {
    //! The checker must fail where the contract is broken: each rule is
    //! shown to panic on a breach, and the allowed paths to pass.

    use super::*;
    use seqsync::Payload;
    use seqsync_core::{Seq, SeqRange};

    fn seq(n: u64) -> Seq {
        Seq::new(n).expect("a valid seq")
    }

    fn message(n: u64) -> SubscriptionEvent {
        SubscriptionEvent::Message {
            seq: seq(n),
            epoch: Some(Epoch(1)),
            data: Payload::from_json(&format!("{{\"n\":{n}}}")).expect("JSON"),
        }
    }

    fn snapshot(n: u64, epoch: u64) -> SubscriptionEvent {
        SubscriptionEvent::Snapshot {
            seq: seq(n),
            epoch: Epoch(epoch),
            state: Payload::from_json("{}").expect("JSON"),
        }
    }

    fn reset(reason: ResetReason) -> SubscriptionEvent {
        SubscriptionEvent::Reset {
            reason,
            earliest: None,
        }
    }

    fn feed(check: &mut StreamCheck, events: impl IntoIterator<Item = SubscriptionEvent>) {
        for event in events {
            check.apply("s", event);
        }
    }

    #[test]
    fn an_exact_stream_passes() {
        let mut check = StreamCheck::default();
        feed(
            &mut check,
            [snapshot(2, 7), message(3), message(4), message(5)],
        );
        check.assert_exact("s", 5, |n| serde_json::json!({ "n": n }));
    }

    #[test]
    #[should_panic(expected = "snapshot at 1 with no reset before it")]
    fn a_duplicate_after_a_second_snapshot_fails() {
        let mut check = StreamCheck::default();
        feed(
            &mut check,
            [
                snapshot(0, 7),
                message(1),
                message(2),
                snapshot(1, 7),
                message(2),
            ],
        );
    }

    #[test]
    #[should_panic(expected = "moves the position backwards from 3")]
    fn a_backwards_step_fails() {
        let mut check = StreamCheck::default();
        feed(
            &mut check,
            [
                snapshot(0, 7),
                message(1),
                message(2),
                message(3),
                message(2),
            ],
        );
    }

    #[test]
    #[should_panic(expected = "expected seq 2 next")]
    fn a_hole_fails() {
        let mut check = StreamCheck::default();
        feed(&mut check, [snapshot(0, 7), message(1), message(3)]);
    }

    #[test]
    #[should_panic(expected = "between reset and snapshot")]
    fn a_message_between_reset_and_snapshot_fails() {
        let mut check = StreamCheck::default();
        feed(
            &mut check,
            [
                snapshot(0, 7),
                message(1),
                reset(ResetReason::HistoryUnavailable),
                message(2),
            ],
        );
    }

    #[test]
    #[should_panic(expected = "moved the position back from 4 to 2")]
    fn a_history_unavailable_snapshot_behind_the_position_fails() {
        let mut check = StreamCheck::default();
        feed(
            &mut check,
            [
                snapshot(0, 7),
                message(1),
                message(2),
                message(3),
                message(4),
                reset(ResetReason::HistoryUnavailable),
                snapshot(2, 7),
            ],
        );
    }

    #[test]
    #[should_panic(expected = "snapshot at 5 with no reset before it")]
    fn a_snapshot_of_a_resumed_stream_needs_a_reset() {
        let mut check = StreamCheck::resuming_after(3);
        feed(&mut check, [snapshot(5, 7)]);
    }

    #[test]
    fn a_reset_then_a_snapshot_ahead_passes_and_forgets_nothing_it_should_keep() {
        let mut check = StreamCheck::default();
        feed(
            &mut check,
            [
                snapshot(0, 7),
                message(1),
                reset(ResetReason::HistoryUnavailable),
                snapshot(300, 7),
                message(301),
            ],
        );
        assert_eq!(check.last, 301);
        assert_eq!(check.resets, 1);
        assert!(check.delivered.contains_key(&1) && check.delivered.contains_key(&301));
        assert!(!check.delivered.contains_key(&2));
    }

    #[test]
    fn a_changed_log_may_start_over_below_the_position() {
        for reason in [ResetReason::EpochChanged, ResetReason::ServerBehind] {
            let mut check = StreamCheck::default();
            feed(
                &mut check,
                [
                    snapshot(0, 7),
                    message(1),
                    message(2),
                    message(3),
                    reset(reason),
                    snapshot(1, 8),
                    message(2),
                ],
            );
            assert_eq!(check.last, 2, "{reason:?}");
            assert!(
                !check.delivered.contains_key(&3),
                "{reason:?}: old seq 3 forgotten"
            );
        }
    }

    #[test]
    #[should_panic(expected = "skip not contiguous")]
    fn a_skip_that_leaves_a_hole_fails() {
        let mut check = StreamCheck::default();
        feed(
            &mut check,
            [
                snapshot(0, 7),
                SubscriptionEvent::Skipped {
                    range: SeqRange::new(seq(2), seq(3)).expect("a range"),
                },
            ],
        );
    }

    #[test]
    #[should_panic(expected = "one snapshot at most without a reset")]
    fn assert_exact_refuses_two_snapshots() {
        let check = StreamCheck {
            snapshots: vec![0, 0],
            ..StreamCheck::default()
        };
        check.assert_exact("s", 0, |n| serde_json::json!({ "n": n }));
    }
}
