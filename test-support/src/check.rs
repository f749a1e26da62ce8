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
#[derive(Debug, Default)]
pub struct StreamCheck {
    /// Last contiguous seq the application holds.
    pub last: u64,
    /// Payloads delivered by seq (those after the last reset/snapshot).
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
    /// Every event applied, in order, when made with [`StreamCheck::recording`].
    pub events: Option<Vec<SubscriptionEvent>>,
    reset_pending: bool,
}

impl StreamCheck {
    /// A checker that also keeps every event it applies.
    pub fn recording() -> StreamCheck {
        StreamCheck {
            events: Some(Vec::new()),
            ..StreamCheck::default()
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
            SubscriptionEvent::Message { seq, data } => {
                assert!(
                    !self.reset_pending,
                    "{stream}: message {seq} between reset and snapshot"
                );
                assert_eq!(
                    seq.get(),
                    self.last + 1,
                    "{stream}: expected seq {} next, got {seq}",
                    self.last + 1
                );
                self.last = seq.get();
                self.delivered
                    .insert(seq.get(), data.to_value().unwrap_or_default());
            }
            SubscriptionEvent::Snapshot { seq, epoch, .. } => {
                self.reset_pending = false;
                self.last = seq.get();
                self.snapshots.push(seq.get());
                self.snapshot_epochs.push(epoch);
            }
            SubscriptionEvent::Reset { reason, .. } => {
                self.resets += 1;
                self.reset_reasons.push(reason);
                self.reset_pending = true;
            }
            SubscriptionEvent::Skipped { range } => {
                assert_eq!(
                    range.start().get(),
                    self.last + 1,
                    "{stream}: skip not contiguous"
                );
                self.skipped += range.len();
                self.last = range.end().get();
            }
            _ => {}
        }
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
    /// Asserts that everything after the first snapshot, up to `last`, was
    /// delivered with the payload `expected` gives for its seq, and that
    /// nothing was lost or skipped on the way.
    pub fn assert_exact(&self, stream: &str, last: u64, expected: impl Fn(u64) -> Value) {
        assert_eq!(self.resets, 0, "{stream}: nothing was lost, so no reset");
        assert_eq!(self.skipped, 0, "{stream}: nothing was skipped");
        assert_eq!(self.last, last, "{stream}: everything delivered");
        let first = self.snapshots.first().copied().unwrap_or(0);
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
