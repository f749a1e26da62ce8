//! The session's publishes waiting for their `ack`: each with its wire id,
//! its frame (kept to send again after a reconnect or a retryable refusal),
//! its deadline and, after a `rate_limited` or `internal` refusal, the time
//! it is sent again.

use std::collections::{BTreeMap, BTreeSet, HashMap};

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

/// Pending publishes in creation order. Every publish gets the same
/// timeout, so creation order is deadline order: the first entry is the
/// next to time out.
#[derive(Debug, Default)]
pub(crate) struct Publishes {
    by_handle: BTreeMap<u64, Pending>,
    by_wire_id: HashMap<Box<str>, u64>,
    /// Publishes waiting out a refusal, by the time they are sent again.
    retries: BTreeSet<(Millis, u64)>,
    next: u64,
}

impl Publishes {
    pub(crate) fn len(&self) -> usize {
        self.by_handle.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_handle.is_empty()
    }

    pub(crate) fn insert(&mut self, pending: Pending) -> PublishId {
        self.next += 1;
        let handle = self.next;
        self.by_wire_id.insert(pending.wire_id.clone(), handle);
        self.by_handle.insert(handle, pending);
        PublishId(handle)
    }

    pub(crate) fn get(&self, id: PublishId) -> Option<&Pending> {
        self.by_handle.get(&id.0)
    }

    /// The publish a wire id names.
    pub(crate) fn find(&self, wire_id: &str) -> Option<PublishId> {
        self.by_wire_id.get(wire_id).copied().map(PublishId)
    }

    pub(crate) fn remove(&mut self, id: PublishId) -> Option<Pending> {
        let pending = self.by_handle.remove(&id.0)?;
        self.by_wire_id.remove(&pending.wire_id);
        if let Some(at) = pending.retry_at {
            self.retries.remove(&(at, id.0));
        }
        Some(pending)
    }

    /// Holds the publish back until `at`.
    pub(crate) fn retry_at(&mut self, id: PublishId, at: Millis) {
        if let Some(pending) = self.by_handle.get_mut(&id.0) {
            if let Some(old) = pending.retry_at.replace(at) {
                self.retries.remove(&(old, id.0));
            }
            pending.retries += 1;
            self.retries.insert((at, id.0));
        }
    }

    /// The publishes whose retry time came, no longer held back, in the
    /// order they were made.
    pub(crate) fn take_due_retries(&mut self, now: Millis) -> Vec<PublishId> {
        let mut due = Vec::new();
        while let Some(&(at, handle)) = self.retries.first() {
            if at > now {
                break;
            }
            self.retries.pop_first();
            if let Some(pending) = self.by_handle.get_mut(&handle) {
                pending.retry_at = None;
            }
            due.push(PublishId(handle));
        }
        due.sort_unstable();
        due
    }

    /// Forgets every hold: after a reconnect everything is sent again.
    pub(crate) fn clear_retries(&mut self) {
        for (_, handle) in std::mem::take(&mut self.retries) {
            if let Some(pending) = self.by_handle.get_mut(&handle) {
                pending.retry_at = None;
            }
        }
    }

    /// The publishes that timed out at `now`, oldest first.
    pub(crate) fn take_expired(&mut self, now: Millis) -> Vec<(PublishId, Pending)> {
        let mut expired = Vec::new();
        while let Some((&handle, pending)) = self.by_handle.first_key_value() {
            if pending.deadline > now {
                break;
            }
            if let Some(pending) = self.remove(PublishId(handle)) {
                expired.push((PublishId(handle), pending));
            }
        }
        expired
    }

    /// Every pending publish not held back, oldest first.
    pub(crate) fn sendable(&self) -> impl Iterator<Item = (PublishId, &Pending)> + '_ {
        self.by_handle
            .iter()
            .filter(|(_, p)| p.retry_at.is_none())
            .map(|(&h, p)| (PublishId(h), p))
    }

    /// Removes and returns every pending publish, oldest first.
    pub(crate) fn drain(&mut self) -> Vec<(PublishId, Pending)> {
        self.by_wire_id.clear();
        self.retries.clear();
        std::mem::take(&mut self.by_handle)
            .into_iter()
            .map(|(h, p)| (PublishId(h), p))
            .collect()
    }

    /// The earliest time something is due: a timeout or a retry.
    pub(crate) fn next_deadline(&self) -> Option<Millis> {
        let timeout = self.by_handle.first_key_value().map(|(_, p)| p.deadline);
        let retry = self.retries.first().map(|&(at, _)| at);
        match (timeout, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
