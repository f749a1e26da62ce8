//! The sequencer's timer queue: when each stream next needs a `service`
//! pass, earliest first, so that `poll_timeout` is O(1) and a timeout visits
//! only the streams that are due.
//!
//! Entries are never updated in place. A stream whose deadline moves gets a
//! new entry; the old one stays until it reaches the top, where the
//! sequencer finds it stale (the stream's deadline is no longer that time,
//! or the stream is gone) and drops it. The queue is rebuilt when stale
//! entries outnumber live streams, so its size stays proportional to them.

use alloc::collections::BinaryHeap;
use core::cmp::Reverse;

use crate::types::Millis;

/// One scheduled pass: stream slot `index` of incarnation `generation`
/// is due at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Due {
    pub(crate) at: Millis,
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

#[derive(Debug, Default)]
pub(crate) struct DeadlineQueue {
    heap: BinaryHeap<Reverse<Due>>,
}

impl DeadlineQueue {
    pub(crate) fn push(&mut self, due: Due) {
        self.heap.push(Reverse(due));
    }

    /// The earliest entry, stale or not.
    pub(crate) fn peek(&self) -> Option<Due> {
        self.heap.peek().map(|entry| entry.0)
    }

    pub(crate) fn pop(&mut self) -> Option<Due> {
        self.heap.pop().map(|entry| entry.0)
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Replaces every entry with `live` (the current deadline of each
    /// stream that has one).
    pub(crate) fn rebuild(&mut self, live: impl Iterator<Item = Due>) {
        self.heap.clear();
        self.heap.extend(live.map(Reverse));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_comes_first() {
        let mut q = DeadlineQueue::default();
        for (at, index) in [(30, 1), (10, 2), (20, 3)] {
            q.push(Due {
                at: Millis(at),
                index,
                generation: 0,
            });
        }
        let order: Vec<u32> = core::iter::from_fn(|| q.pop()).map(|d| d.index).collect();
        assert_eq!(order, [2, 3, 1]);
    }
}
