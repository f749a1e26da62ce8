//! The queue between the client's task and one subscription: bounded in
//! events, filled a turn's worth at a time and emptied a whole queue at a
//! time, so that a burst costs one wake-up per turn instead of one per
//! message, and memory stays bounded when the application reads slowly.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use crate::event::SubscriptionEvent;

struct Shared {
    queue: Mutex<Queue>,
    /// The subscription waits for events.
    reader: AtomicWaker,
    /// The client's task waits for room.
    writer: AtomicWaker,
    limit: usize,
}

#[derive(Default)]
struct Queue {
    events: VecDeque<SubscriptionEvent>,
    /// No more events will come (the client closed or dropped the stream).
    closed: bool,
    /// The subscription is gone: events have nowhere to go.
    dropped: bool,
}

/// The client task's end.
pub(crate) struct Outbox {
    shared: Arc<Shared>,
}

/// The subscription's end.
pub(crate) struct Inbox {
    shared: Arc<Shared>,
    /// What the last take brought, read without the lock.
    ready: VecDeque<SubscriptionEvent>,
}

/// A queue holding at most `limit` events (a batch that finds it below
/// its limit may pass it once: a turn's events go in together).
pub(crate) fn mailbox(limit: usize) -> (Outbox, Inbox) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        reader: AtomicWaker::new(),
        writer: AtomicWaker::new(),
        limit: limit.max(1),
    });
    (
        Outbox {
            shared: shared.clone(),
        },
        Inbox {
            shared,
            ready: VecDeque::new(),
        },
    )
}

fn lock(shared: &Shared) -> MutexGuard<'_, Queue> {
    // A panic while holding the lock cannot leave the queue half-changed
    // (every change is one call), so a poisoned lock is still sound.
    shared
        .queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Outbox {
    /// Moves `events` into the queue, waiting while it is at its limit.
    /// Returns false when the subscription is gone (the events are dropped).
    pub(crate) async fn send(&self, events: &mut Vec<SubscriptionEvent>) -> bool {
        poll_fn(|cx| self.poll_send(cx, events)).await
    }

    fn poll_send(&self, cx: &mut Context<'_>, events: &mut Vec<SubscriptionEvent>) -> Poll<bool> {
        let shared = &*self.shared;
        let mut queue = lock(shared);
        if queue.dropped {
            events.clear();
            return Poll::Ready(false);
        }
        if queue.events.len() >= shared.limit {
            shared.writer.register(cx.waker());
            // Registered under the lock: a take after it wakes this task.
            return Poll::Pending;
        }
        queue.events.extend(events.drain(..));
        drop(queue);
        shared.reader.wake();
        Poll::Ready(true)
    }

    /// Whether the subscription is gone.
    #[cfg(test)]
    fn is_dropped(&self) -> bool {
        lock(&self.shared).dropped
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        lock(&self.shared).closed = true;
        self.shared.reader.wake();
    }
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

impl Inbox {
    /// The next event; `None` once the stream is closed and read out.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<SubscriptionEvent>> {
        if let Some(event) = self.ready.pop_front() {
            return Poll::Ready(Some(event));
        }
        match self.poll_take(cx) {
            Poll::Ready(true) => Poll::Ready(self.ready.pop_front()),
            Poll::Ready(false) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Up to `limit` events into `out`, waiting for at least one; 0 once
    /// the stream is closed and read out.
    pub(crate) async fn next_batch(
        &mut self,
        out: &mut Vec<SubscriptionEvent>,
        limit: usize,
    ) -> usize {
        if self.ready.is_empty() && !poll_fn(|cx| self.poll_take(cx)).await {
            return 0;
        }
        let n = limit.max(1).min(self.ready.len());
        out.extend(self.ready.drain(..n));
        n
    }

    /// Takes everything queued (one lock, one swap). Ready(true) when
    /// something was taken, Ready(false) when closed and empty.
    fn poll_take(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let shared = &*self.shared;
        let mut queue = lock(shared);
        if queue.events.is_empty() {
            if queue.closed {
                return Poll::Ready(false);
            }
            shared.reader.register(cx.waker());
            return Poll::Pending;
        }
        std::mem::swap(&mut queue.events, &mut self.ready);
        drop(queue);
        shared.writer.wake();
        Poll::Ready(true)
    }

    /// Hands what is queued to another inbox (a typed view of the stream).
    pub(crate) fn take(&mut self) -> Inbox {
        Inbox {
            shared: self.shared.clone(),
            ready: std::mem::take(&mut self.ready),
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        // Only the last handle on this end counts: `take` makes a second.
        if Arc::strong_count(&self.shared) <= 2 {
            lock(&self.shared).dropped = true;
            self.shared.writer.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seqsync_core::StreamPhase;

    fn event() -> SubscriptionEvent {
        SubscriptionEvent::Phase(StreamPhase::Live)
    }

    #[tokio::test]
    async fn a_full_queue_holds_the_writer_until_the_reader_takes() {
        let (outbox, mut inbox) = mailbox(2);
        assert!(outbox.send(&mut vec![event(), event()]).await);
        let mut third = vec![event()];
        let blocked = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            outbox.send(&mut third),
        )
        .await;
        assert!(blocked.is_err(), "the queue is at its limit");
        let mut out = Vec::new();
        assert_eq!(inbox.next_batch(&mut out, 10).await, 2);
        assert!(outbox.send(&mut third).await, "room again");
        drop(outbox);
        assert_eq!(inbox.next_batch(&mut out, 10).await, 1);
        assert_eq!(
            inbox.next_batch(&mut out, 10).await,
            0,
            "closed and read out"
        );
    }

    #[tokio::test]
    async fn a_dropped_reader_frees_the_writer() {
        let (outbox, inbox) = mailbox(1);
        assert!(outbox.send(&mut vec![event()]).await);
        drop(inbox);
        assert!(outbox.is_dropped());
        assert!(!outbox.send(&mut vec![event()]).await);
    }
}
