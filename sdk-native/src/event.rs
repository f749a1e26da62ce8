//! What a [`Subscription`](crate::Subscription) yields.

use seqsync_core::protocol::ErrorCode;
use seqsync_core::{Epoch, Event, ResetReason, Seq, SeqRange, StalledRequest, StreamPhase};
use serde::de::DeserializeOwned;

use crate::payload::Payload;

/// One event of a subscribed stream, in the order it happened. `T` is what
/// a message's payload is handed over as: the raw [`Payload`] by default,
/// or the application's own type for a subscription made with
/// [`Client::subscribe_as`](crate::Client::subscribe_as).
///
/// `Message` seqs are strictly increasing and contiguous, except across a
/// `Skipped` range (seqs the server will never send), an `Undecodable`
/// message (typed subscriptions only), or a `Reset` followed by a
/// `Snapshot`.
#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionEvent<T = Payload> {
    /// The next message.
    Message {
        /// Its seq.
        seq: Seq,
        /// The log incarnation `seq` belongs to: with `seq`, the position
        /// to store with what the application made of the message, and to
        /// resume from ([`StartAt::After`](crate::StartAt::After)). `None`
        /// only for a server that names no epochs.
        epoch: Option<Epoch>,
        /// Its payload.
        data: T,
    },
    /// The next message, whose payload does not decode into the type the
    /// subscription asked for. The stream goes on after it: the message is
    /// accounted for, not lost silently, and its raw payload is here.
    Undecodable {
        /// Its seq.
        seq: Seq,
        /// Its epoch, as in `Message`.
        epoch: Option<Epoch>,
        /// The payload as it came.
        data: Payload,
        /// What the decoder said.
        error: String,
    },
    /// The stream's state at `seq`; replaces whatever the application held.
    Snapshot {
        /// Last seq folded into `state`.
        seq: Seq,
        /// The log's epoch.
        epoch: Epoch,
        /// The state (its shape is the application's: the reference server
        /// sends `{"messages": [{"seq", "data"}, ...]}`).
        state: Payload,
    },
    /// The server no longer has what is missing: drop the state, a
    /// `Snapshot` follows.
    Reset {
        /// Why.
        reason: ResetReason,
        /// Earliest seq still held, when the server said.
        earliest: Option<Seq>,
    },
    /// Seqs the server will never send (filtered or deleted).
    Skipped {
        /// The seqs.
        range: SeqRange,
    },
    /// A hole was detected; later messages wait for it.
    GapDetected {
        /// The missing seqs as first seen.
        range: SeqRange,
    },
    /// Every hole closed again.
    GapHealed {
        /// Last contiguous seq.
        through: Seq,
    },
    /// A request keeps going unanswered (retries continue).
    Stalled {
        /// Which request.
        request: StalledRequest,
        /// Attempts so far.
        attempts: u32,
    },
    /// The stream's phase changed (disconnected, subscribing, live, ...).
    Phase(StreamPhase),
    /// The server refused a request for this stream (for example
    /// `unauthorized`); it is retried with backoff like an unanswered one.
    Refused {
        /// The server's code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
}

impl<T> SubscriptionEvent<T> {
    /// The same event with the message's payload turned into `U`.
    fn map<U>(
        self,
        decode: impl FnOnce(T) -> Result<U, (Payload, String)>,
    ) -> SubscriptionEvent<U> {
        match self {
            SubscriptionEvent::Message { seq, epoch, data } => match decode(data) {
                Ok(data) => SubscriptionEvent::Message { seq, epoch, data },
                Err((data, error)) => SubscriptionEvent::Undecodable {
                    seq,
                    epoch,
                    data,
                    error,
                },
            },
            SubscriptionEvent::Undecodable {
                seq,
                epoch,
                data,
                error,
            } => SubscriptionEvent::Undecodable {
                seq,
                epoch,
                data,
                error,
            },
            SubscriptionEvent::Snapshot { seq, epoch, state } => {
                SubscriptionEvent::Snapshot { seq, epoch, state }
            }
            SubscriptionEvent::Reset { reason, earliest } => {
                SubscriptionEvent::Reset { reason, earliest }
            }
            SubscriptionEvent::Skipped { range } => SubscriptionEvent::Skipped { range },
            SubscriptionEvent::GapDetected { range } => SubscriptionEvent::GapDetected { range },
            SubscriptionEvent::GapHealed { through } => SubscriptionEvent::GapHealed { through },
            SubscriptionEvent::Stalled { request, attempts } => {
                SubscriptionEvent::Stalled { request, attempts }
            }
            SubscriptionEvent::Phase(phase) => SubscriptionEvent::Phase(phase),
            SubscriptionEvent::Refused { code, message } => {
                SubscriptionEvent::Refused { code, message }
            }
        }
    }
}

impl SubscriptionEvent<Payload> {
    /// The event with the message's payload decoded into `T`; a payload
    /// that does not fit becomes [`SubscriptionEvent::Undecodable`].
    pub fn decode<T: DeserializeOwned>(self) -> SubscriptionEvent<T> {
        self.map(|data| match data.parse::<T>() {
            Ok(value) => Ok(value),
            Err(error) => Err((data, error.to_string())),
        })
    }
}

impl From<Event<Payload>> for SubscriptionEvent {
    fn from(event: Event<Payload>) -> SubscriptionEvent {
        match event {
            Event::Message {
                seq,
                epoch,
                payload,
                ..
            } => SubscriptionEvent::Message {
                seq,
                epoch,
                data: payload,
            },
            Event::Snapshot {
                seq, epoch, state, ..
            } => SubscriptionEvent::Snapshot { seq, epoch, state },
            Event::Reset {
                reason, earliest, ..
            } => SubscriptionEvent::Reset { reason, earliest },
            Event::Skipped { range, .. } => SubscriptionEvent::Skipped { range },
            Event::GapDetected { range, .. } => SubscriptionEvent::GapDetected { range },
            Event::GapHealed { through, .. } => SubscriptionEvent::GapHealed { through },
            Event::Stalled {
                request, attempts, ..
            } => SubscriptionEvent::Stalled { request, attempts },
            Event::PhaseChanged { phase, .. } => SubscriptionEvent::Phase(phase),
        }
    }
}

/// The client's connection, as seen through
/// [`Client::connection_state`](crate::Client::connection_state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Trying `endpoint`.
    Connecting {
        /// The endpoint being tried.
        endpoint: String,
        /// Attempts since the last successful connection.
        attempt: u32,
    },
    /// Connected to `endpoint`.
    Connected {
        /// The endpoint.
        endpoint: String,
    },
    /// Waiting before the next attempt.
    Disconnected {
        /// Why the last connection ended or failed.
        reason: String,
    },
    /// `disconnect()` was called: no connection until `reconnect()`.
    Stopped,
    /// No connection opened within `initial_connect_timeout_ms`: the client
    /// stopped trying until `reconnect()`. Subscriptions stay, and pending
    /// publishes wait, each until its timeout.
    Failed {
        /// The endpoint tried last.
        endpoint: String,
        /// Why that attempt failed.
        reason: String,
    },
    /// `close()` was called or every handle was dropped.
    Closed,
}

/// Client-wide counters, from [`Client::stats`](crate::Client::stats): the
/// core session's (connections, frames, recovery traffic, publishes).
pub type ClientStats = seqsync_core::SessionStats;
