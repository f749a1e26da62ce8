//! The session's publishes waiting for their `ack`: each with its wire id,
//! its frame (kept to send again after a reconnect or a retryable refusal),
//! its deadline and, after a `rate_limited` or `internal` refusal, the time
//! it is sent again.

use crate::prelude::*;
use alloc::collections::VecDeque;

use crate::types::{Millis, StreamName};

/// A handle to one publish of a [`Session`](crate::Session): what its
/// outcome event names. Handles grow with each publish and are never
/// reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublishId(u64);

impl PublishId {
    /// The handle as one number (for a JavaScript boundary, a map key...).
    pub const fn to_raw(self) -> u64 {
        self.0
    }

    /// Unpacks a number made by [`PublishId::to_raw`].
    pub const fn from_raw(raw: u64) -> PublishId {
        PublishId(raw)
    }
}

#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) wire_id: Box<str>,
    pub(crate) stream: StreamName,
    /// The whole `publish` frame, sent as it is every time.
    pub(crate) frame: Box<str>,
    /// When the publish fails with a timeout if no `ack` came.
    pub(crate) deadline: Millis,
    /// Refusals that were retried so far.
    pub(crate) retries: u32,
    /// Set while the publish waits out a retryable refusal.
    pub(crate) retry_at: Option<Millis>,
}

/// Pending publishes in creation order, which is handle order and, as
/// every publish gets the same timeout, deadline order: the first entry is
/// the next to time out. One queue instead of maps by handle, wire id and
/// retry time: acks come back mostly in order, so lookups end near the
/// front, and the rarer questions (which retries are due) scan a list that
/// `max_pending_publishes` bounds. It keeps the browser module small.
#[derive(Debug, Default)]
pub(crate) struct Publishes {
    queue: VecDeque<(u64, Pending)>,
    /// The earliest `retry_at` of the queue, kept so that
    /// [`next_deadline`](Self::next_deadline) stays O(1).
    next_retry: Option<Millis>,
    next: u64,
}

impl Publishes {
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn insert(&mut self, pending: Pending) -> PublishId {
        self.next += 1;
        self.queue.push_back((self.next, pending));
        PublishId(self.next)
    }

    fn position(&self, id: PublishId) -> Option<usize> {
        self.queue.binary_search_by_key(&id.0, |(h, _)| *h).ok()
    }

    pub(crate) fn get(&self, id: PublishId) -> Option<&Pending> {
        self.position(id).map(|i| &self.queue[i].1)
    }

    /// The publish a wire id names.
    pub(crate) fn find(&self, wire_id: &str) -> Option<PublishId> {
        self.queue
            .iter()
            .find(|(_, p)| &*p.wire_id == wire_id)
            .map(|(h, _)| PublishId(*h))
    }

    pub(crate) fn remove(&mut self, id: PublishId) -> Option<Pending> {
        let (_, pending) = self.queue.remove(self.position(id)?)?;
        if pending.retry_at.is_some() {
            self.settle_retries();
        }
        Some(pending)
    }

    /// Holds the publish back until `at`.
    pub(crate) fn retry_at(&mut self, id: PublishId, at: Millis) {
        if let Some(i) = self.position(id) {
            let pending = &mut self.queue[i].1;
            pending.retry_at = Some(at);
            pending.retries += 1;
            self.settle_retries();
        }
    }

    /// The publishes whose retry time came, no longer held back, in the
    /// order they were made.
    pub(crate) fn take_due_retries(&mut self, now: Millis) -> Vec<PublishId> {
        if self.next_retry.is_none_or(|at| at > now) {
            return Vec::new();
        }
        let mut due = Vec::new();
        for (h, pending) in &mut self.queue {
            if pending.retry_at.is_some_and(|at| at <= now) {
                pending.retry_at = None;
                due.push(PublishId(*h));
            }
        }
        self.settle_retries();
        due
    }

    /// Forgets every hold: after a reconnect everything is sent again.
    pub(crate) fn clear_retries(&mut self) {
        for (_, pending) in &mut self.queue {
            pending.retry_at = None;
        }
        self.next_retry = None;
    }

    /// The publishes that timed out at `now`, oldest first.
    pub(crate) fn take_expired(&mut self, now: Millis) -> Vec<(PublishId, Pending)> {
        let mut expired = Vec::new();
        while self.queue.front().is_some_and(|(_, p)| p.deadline <= now) {
            if let Some((h, pending)) = self.queue.pop_front() {
                expired.push((PublishId(h), pending));
            }
        }
        if expired.iter().any(|(_, p)| p.retry_at.is_some()) {
            self.settle_retries();
        }
        expired
    }

    /// Every pending publish not held back, oldest first.
    pub(crate) fn sendable(&self) -> impl Iterator<Item = (PublishId, &Pending)> + '_ {
        self.queue
            .iter()
            .filter(|(_, p)| p.retry_at.is_none())
            .map(|(h, p)| (PublishId(*h), p))
    }

    /// The publish with the largest frame over `above` bytes among those not
    /// held back, the oldest of equals; `None` when no frame is over it.
    pub(crate) fn largest_in_flight(&self, above: usize) -> Option<PublishId> {
        let mut largest = None;
        let mut most = above;
        for (h, pending) in &self.queue {
            if pending.retry_at.is_none() && pending.frame.len() > most {
                most = pending.frame.len();
                largest = Some(PublishId(*h));
            }
        }
        largest
    }

    /// Removes and returns every pending publish, oldest first.
    pub(crate) fn drain(&mut self) -> Vec<(PublishId, Pending)> {
        self.next_retry = None;
        self.queue
            .drain(..)
            .map(|(h, p)| (PublishId(h), p))
            .collect()
    }

    /// The earliest time something is due: a timeout or a retry.
    pub(crate) fn next_deadline(&self) -> Option<Millis> {
        let timeout = self.queue.front().map(|(_, p)| p.deadline);
        match (timeout, self.next_retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Recomputes the earliest retry after holds changed (rare: refusals).
    fn settle_retries(&mut self) {
        self.next_retry = self.queue.iter().filter_map(|(_, p)| p.retry_at).min();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(n: u64) -> Pending {
        Pending {
            wire_id: format!("id-{n}").into_boxed_str(),
            stream: StreamName::new("s").expect("name"),
            frame: "{}".into(),
            deadline: Millis(1_000 + n),
            retries: 0,
            retry_at: None,
        }
    }

    fn table(count: u64) -> (Publishes, Vec<PublishId>) {
        let mut p = Publishes::default();
        let ids = (1..=count).map(|n| p.insert(pending(n))).collect();
        (p, ids)
    }

    #[test]
    fn due_retries_come_back_in_creation_order_and_stop_holding() {
        let (mut p, ids) = table(4);
        p.retry_at(ids[3], Millis(10));
        p.retry_at(ids[0], Millis(20));
        p.retry_at(ids[2], Millis(10));
        assert_eq!(p.next_deadline(), Some(Millis(10)));
        assert_eq!(p.take_due_retries(Millis(15)), [ids[2], ids[3]]);
        assert_eq!(p.next_deadline(), Some(Millis(20)));
        assert_eq!(p.take_due_retries(Millis(25)), [ids[0]]);
        assert_eq!(p.next_deadline(), Some(Millis(1_001)), "only timeouts left");
        assert_eq!(p.sendable().count(), 4);
        assert_eq!(p.get(ids[0]).map(|x| x.retries), Some(1));
    }

    #[test]
    fn removing_the_earliest_hold_moves_the_next_deadline() {
        let (mut p, ids) = table(3);
        p.retry_at(ids[1], Millis(5));
        p.retry_at(ids[2], Millis(7));
        assert_eq!(p.find("id-2"), Some(ids[1]));
        assert!(p.remove(ids[1]).is_some());
        assert_eq!(p.find("id-2"), None);
        assert_eq!(p.next_deadline(), Some(Millis(7)));
        assert!(p.remove(ids[1]).is_none(), "removed once");
        p.clear_retries();
        assert_eq!(p.next_deadline(), Some(Millis(1_001)));
    }

    #[test]
    fn the_largest_in_flight_is_over_the_bound_not_held_and_the_oldest_of_equals() {
        let mut p = Publishes::default();
        let frame = |n: usize| Pending {
            frame: "x".repeat(n).into_boxed_str(),
            ..pending(n as u64)
        };
        let ids: Vec<PublishId> = [30, 50, 50, 80].map(|n| p.insert(frame(n))).to_vec();
        assert_eq!(p.largest_in_flight(0), Some(ids[3]));
        p.retry_at(ids[3], Millis(10));
        assert_eq!(
            p.largest_in_flight(0),
            Some(ids[1]),
            "held back, then a tie"
        );
        assert_eq!(p.largest_in_flight(50), None, "none over the bound");
    }

    #[test]
    fn publishes_time_out_oldest_first() {
        let (mut p, ids) = table(3);
        p.retry_at(ids[0], Millis(2_000));
        let expired: Vec<PublishId> = p
            .take_expired(Millis(1_002))
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(expired, [ids[0], ids[1]]);
        assert_eq!(p.len(), 1);
        assert_eq!(
            p.next_deadline(),
            Some(Millis(1_003)),
            "the expired hold is gone too"
        );
        assert_eq!(p.drain().len(), 1);
        assert!(p.is_empty());
        assert_eq!(p.next_deadline(), None);
    }
}
