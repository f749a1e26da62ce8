//! The reorder ring: messages that arrived ahead of a gap, indexed by their
//! distance from the next expected seq.
//!
//! The ring grows by doubling from a small start up to the stream's window,
//! so a stream that only ever sees short reordering keeps a few slots.
//! Lookups, inserts and pops are O(1); no allocation is proportional to a
//! seq value, only to the offset, which the caller bounds by the window.

use crate::prelude::*;

/// What a slot holds.
#[derive(Debug)]
pub(crate) enum Slot<P> {
    Empty,
    /// A message waiting for the gap before it to close.
    Msg(P),
    /// A seq the server said it will not send (filtered or deleted); the
    /// stream advances past it.
    Skipped,
}

const INITIAL_CAPACITY: usize = 16;

#[derive(Debug)]
pub(crate) struct Ring<P> {
    slots: Vec<Slot<P>>,
    /// Index of the slot for offset 0 (the next expected seq).
    head: usize,
    /// Occupied slots (messages and skips).
    len: usize,
    /// Largest capacity this ring may grow to (a power of two).
    max_capacity: usize,
}

impl<P> Ring<P> {
    pub(crate) fn new(max_capacity: usize) -> Ring<P> {
        debug_assert!(max_capacity.is_power_of_two());
        Ring {
            slots: Vec::new(),
            head: 0,
            len: 0,
            max_capacity,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Whether the slot at `offset` is occupied. Offsets past the capacity are empty.
    pub(crate) fn is_occupied(&self, offset: usize) -> bool {
        offset < self.slots.len()
            && !matches!(self.slots[(self.head + offset) & self.mask()], Slot::Empty)
    }

    /// Puts `slot` at `offset`; returns false (and drops nothing) when the
    /// slot is taken. The caller guarantees `offset < max_capacity`.
    pub(crate) fn insert(&mut self, offset: usize, slot: Slot<P>) -> bool {
        debug_assert!(offset < self.max_capacity);
        if offset >= self.slots.len() {
            self.grow(offset + 1);
        }
        let index = (self.head + offset) & self.mask();
        if !matches!(self.slots[index], Slot::Empty) {
            return false;
        }
        self.slots[index] = slot;
        self.len += 1;
        true
    }

    /// Takes the slot at offset 0 if occupied and moves the ring forward by one.
    pub(crate) fn pop_front(&mut self) -> Option<Slot<P>> {
        if self.len == 0 {
            return None;
        }
        let index = self.head;
        if matches!(self.slots[index], Slot::Empty) {
            return None;
        }
        let slot = core::mem::replace(&mut self.slots[index], Slot::Empty);
        self.head = (self.head + 1) & self.mask();
        self.len -= 1;
        Some(slot)
    }

    /// Empties the ring, keeping its allocation.
    pub(crate) fn clear(&mut self) {
        for slot in &mut self.slots {
            *slot = Slot::Empty;
        }
        self.head = 0;
        self.len = 0;
    }

    fn grow(&mut self, needed: usize) {
        let new_capacity = needed
            .next_power_of_two()
            .max(INITIAL_CAPACITY)
            .min(self.max_capacity);
        let old_capacity = self.slots.len();
        let mut slots = Vec::with_capacity(new_capacity);
        if old_capacity > 0 {
            let mask = old_capacity - 1;
            for i in 0..old_capacity {
                let index = (self.head + i) & mask;
                slots.push(core::mem::replace(&mut self.slots[index], Slot::Empty));
            }
        }
        slots.resize_with(new_capacity, || Slot::Empty);
        self.slots = slots;
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ring: &mut Ring<u32>) -> Option<u32> {
        match ring.pop_front() {
            Some(Slot::Msg(v)) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn grows_from_small_start_to_window_only() {
        let mut ring = Ring::<u32>::new(1024);
        assert_eq!(ring.capacity(), 0);
        assert!(ring.insert(3, Slot::Msg(3)));
        assert_eq!(ring.capacity(), INITIAL_CAPACITY);
        assert!(ring.insert(700, Slot::Msg(700)));
        assert_eq!(ring.capacity(), 1024);
        assert_eq!(ring.len(), 2);
    }

    #[test]
    fn growth_keeps_positions_after_wraparound() {
        let mut ring = Ring::<u32>::new(64);
        for round in 0..20u32 {
            assert!(ring.insert(0, Slot::Msg(round)));
            assert_eq!(msg(&mut ring), Some(round));
        }
        assert!(ring.insert(5, Slot::Msg(5)));
        assert!(ring.insert(40, Slot::Msg(40)));
        assert!(ring.insert(0, Slot::Msg(0)));
        assert_eq!(msg(&mut ring), Some(0));
        assert!(ring.is_occupied(4));
        assert!(ring.is_occupied(39));
        assert!(!ring.is_occupied(5));
    }

    #[test]
    fn occupied_slot_rejects_second_insert() {
        let mut ring = Ring::<u32>::new(16);
        assert!(ring.insert(2, Slot::Msg(1)));
        assert!(!ring.insert(2, Slot::Msg(2)));
        assert_eq!(ring.len(), 1);
    }
}
