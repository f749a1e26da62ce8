//! What the [`Sequencer`](crate::Sequencer) tells the application
//! ([`Event`]) and the server ([`Request`]). The [`Session`](crate::Session)'s
//! own outputs are in `session/events.rs`.

use crate::types::{Epoch, Seq, SeqRange, StreamId, StreamName};

/// Something the application must see, drained with
/// [`Sequencer::poll_event`](crate::Sequencer::poll_event).
///
/// Events of one stream come in the order they happened. For an `Ordered`
/// stream, `Message` seqs are strictly increasing and contiguous except
/// across a `Skipped` (seqs the server will never send this client) or a
/// `Reset` followed by `Snapshot`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<P> {
    /// The next message of the stream.
    Message {
        /// The stream.
        stream: StreamId,
        /// Its seq.
        seq: Seq,
        /// The log incarnation `seq` belongs to: with `seq`, the position an
        /// application stores to resume after this message. `None` only
        /// while the stream knows no epoch (a resume point given without
        /// one, and messages that name none).
        epoch: Option<Epoch>,
        /// Its payload.
        payload: P,
    },
    /// The stream's state at `seq`: replaces whatever the application held.
    /// Messages after it continue from `seq + 1`. It comes before the
    /// `PhaseChanged` to `Live` that it causes.
    Snapshot {
        /// The stream.
        stream: StreamId,
        /// Last seq folded into `state`.
        seq: Seq,
        /// The log incarnation this snapshot belongs to.
        epoch: Epoch,
        /// The state.
        state: P,
    },
    /// The server no longer has what is missing (or its log changed epoch):
    /// the application must drop its state; a `Snapshot` follows.
    Reset {
        /// The stream.
        stream: StreamId,
        /// Why.
        reason: ResetReason,
        /// The earliest seq the server still holds, when it said so.
        earliest: Option<Seq>,
    },
    /// Seqs the server will never send this client (filtered or deleted);
    /// the stream moved past them.
    Skipped {
        /// The stream.
        stream: StreamId,
        /// The seqs.
        range: SeqRange,
    },
    /// A range is missing: messages beyond it are held back until it arrives.
    GapDetected {
        /// The stream.
        stream: StreamId,
        /// The missing seqs as first seen.
        range: SeqRange,
    },
    /// Every hole of the stream is closed again; delivered through `through`.
    GapHealed {
        /// The stream.
        stream: StreamId,
        /// Last contiguous seq.
        through: Seq,
    },
    /// A request went unanswered `attempts` times; retries continue at the
    /// longest backoff. Told once per request when it reaches
    /// `Config::stall_after_attempts`.
    Stalled {
        /// The stream.
        stream: StreamId,
        /// What is not being answered.
        request: StalledRequest,
        /// Attempts so far.
        attempts: u32,
    },
    /// The stream moved to another phase.
    PhaseChanged {
        /// The stream.
        stream: StreamId,
        /// The new phase.
        phase: StreamPhase,
    },
}

impl<P> Event<P> {
    /// The stream the event is about.
    pub fn stream(&self) -> StreamId {
        match self {
            Event::Message { stream, .. }
            | Event::Snapshot { stream, .. }
            | Event::Reset { stream, .. }
            | Event::Skipped { stream, .. }
            | Event::GapDetected { stream, .. }
            | Event::GapHealed { stream, .. }
            | Event::Stalled { stream, .. }
            | Event::PhaseChanged { stream, .. } => *stream,
        }
    }
}

/// Why a stream was reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    /// The server's retention dropped part of the missing range.
    HistoryUnavailable,
    /// The server's log for the stream is a new incarnation.
    EpochChanged,
    /// The server's head is behind what was already delivered, in the same
    /// epoch: its log lost messages, so later seqs cannot be trusted.
    ServerBehind,
}

impl ResetReason {
    /// The wire name of the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            ResetReason::HistoryUnavailable => "history_unavailable",
            ResetReason::EpochChanged => "epoch_changed",
            ResetReason::ServerBehind => "server_behind",
        }
    }

    /// Parses a wire name; unknown names read as `HistoryUnavailable`, the
    /// conservative meaning (state must be replaced).
    pub fn from_wire(name: &str) -> ResetReason {
        match name {
            "epoch_changed" => ResetReason::EpochChanged,
            "server_behind" => ResetReason::ServerBehind,
            _ => ResetReason::HistoryUnavailable,
        }
    }
}

/// Which request [`Event::Stalled`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StalledRequest {
    /// A history fetch of this range.
    History(SeqRange),
    /// A snapshot (or a subscribe that waits for one).
    Snapshot,
    /// A resuming subscribe that waits for its `subscribed` answer.
    Subscribe,
}

/// The phase of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamPhase {
    /// No connection: nothing is requested until `handle_connected`.
    Disconnected,
    /// A resuming subscribe is out; waiting for the server's `subscribed`.
    Subscribing,
    /// Waiting for a snapshot; live messages are held until it arrives.
    Snapshotting,
    /// Delivering.
    Live,
}

/// Something to send to the server, drained with
/// [`Sequencer::poll_request`](crate::Sequencer::poll_request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Subscribe to `stream`. Without `since` the server answers with a
    /// snapshot; with it, with `subscribed` (its head and epoch).
    Subscribe {
        /// The stream.
        stream: StreamName,
        /// Last seq the client has.
        since: Option<Seq>,
        /// Epoch of `since`, when known.
        epoch: Option<Epoch>,
    },
    /// Stop receiving `stream`.
    Unsubscribe {
        /// The stream.
        stream: StreamName,
    },
    /// Send the messages of `range` (inclusive).
    FetchHistory {
        /// The stream.
        stream: StreamName,
        /// Exactly the missing seqs.
        range: SeqRange,
    },
    /// Send a fresh snapshot.
    FetchSnapshot {
        /// The stream.
        stream: StreamName,
    },
}
