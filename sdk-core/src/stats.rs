//! Per-stream counters.

use crate::event::StreamPhase;
use crate::types::{Epoch, Seq};

/// The counters kept inline in every stream. All but `delivered` are `u32`
/// to keep an idle stream small; they saturate instead of wrapping.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) delivered: u64,
    pub(crate) duplicates: u32,
    pub(crate) dropped: u32,
    pub(crate) skipped: u32,
    pub(crate) gaps: u32,
    pub(crate) gaps_healed: u32,
    pub(crate) resyncs: u32,
    pub(crate) resets: u32,
    pub(crate) resubscribes: u32,
}

/// Adds one, saturating.
#[inline]
pub(crate) fn bump(counter: &mut u32) {
    *counter = counter.saturating_add(1);
}

/// A snapshot of one stream's counters and position, from
/// [`Sequencer::stats`](crate::Sequencer::stats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStats {
    /// Messages handed to the application.
    pub delivered: u64,
    /// Messages dropped because they were delivered (or held) already.
    pub duplicates: u64,
    /// Messages dropped for lack of room: beyond the reorder window, over the
    /// snapshot hold limit, or (in `Latest` mode) older than the latest. An
    /// `Ordered` stream fetches these again; nothing is lost.
    pub dropped: u64,
    /// Seqs the server said it will never send (filtered or deleted).
    pub skipped: u64,
    /// Holes detected.
    pub gaps: u64,
    /// Times every hole closed again.
    pub gaps_healed: u64,
    /// History requests sent (first tries and retries).
    pub resyncs: u64,
    /// Resets (history gone, epoch changed, server behind).
    pub resets: u64,
    /// Subscribes sent again because the live stream heard nothing for a
    /// whole silence period (see `Sequencer::resubscribe_silent`).
    pub resubscribes: u64,
    /// Messages held back right now (waiting for a gap or a snapshot).
    pub buffered: u64,
    /// Last contiguous seq delivered.
    pub last_seq: Seq,
    /// Highest seq known to exist.
    pub head: Seq,
    /// `head - last_seq`: how far delivery is behind the server.
    pub lag: u64,
    /// The log incarnation, once known.
    pub epoch: Option<Epoch>,
    /// The stream's phase.
    pub phase: StreamPhase,
}
