//! # seqsync-core
//!
//! The sans-IO heart of seqsync: it makes a sequenced stream exact — every
//! message once, in order, no holes — or says explicitly (a `Reset`) that the
//! server no longer has what is missing. It does no IO and reads no clock,
//! so the same code runs in the tokio client, in the browser (WASM) and in
//! deterministic simulations.
//!
//! ## The flow
//!
//! The shell (the code around the core) owns the socket and the timer. It feeds the [`Sequencer`]
//! what arrives and drains what comes out, after every call, in this order:
//! requests, timeout, events.
//!
//! ```
//! use seqsync_core::{Config, Epoch, Event, Millis, Request, Seq, Sequencer, SubscribeOptions};
//!
//! let mut core = Sequencer::<String>::new(Config { gap_timeout_ms: 50, ..Config::default() });
//! let chat = core.subscribe(Millis(0), "chat", SubscribeOptions::default())?;
//! core.handle_connected(Millis(0));
//! // -> send {"type":"subscribe","stream":"chat"}
//! assert!(matches!(core.poll_request(), Some(Request::Subscribe { .. })));
//!
//! // The snapshot says the state includes seq 4. A live message sent while
//! // the snapshot was built overlaps it and is dropped.
//! core.handle_message(Millis(1), chat, Seq::new(4)?, None, "four".into())?;
//! core.handle_snapshot(Millis(2), chat, Seq::new(4)?, Epoch(1), "state".into())?;
//!
//! // Seq 6 arrives, 5 is lost: nothing is asked before the gap timeout...
//! core.handle_message(Millis(3), chat, Seq::new(6)?, None, "six".into())?;
//! assert_eq!(core.poll_request(), None);
//! assert_eq!(core.poll_timeout(), Some(Millis(53)));
//! // ...then exactly the missing seq is requested.
//! core.handle_timeout(Millis(53));
//! match core.poll_request() {
//!     Some(Request::FetchHistory { range, .. }) => assert_eq!(range.to_string(), "5..=5"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! let range = seqsync_core::SeqRange::new(Seq::new(5)?, Seq::new(5)?)?;
//! core.handle_history(Millis(60), chat, range, None, vec![(Seq::new(5)?, "five".into())])?;
//!
//! let seqs: Vec<u64> = std::iter::from_fn(|| core.poll_event())
//!     .filter_map(|e| match e {
//!         Event::Message { seq, .. } => Some(seq.get()),
//!         _ => None,
//!     })
//!     .collect();
//! assert_eq!(seqs, [5, 6]);
//! # Ok::<(), seqsync_core::Error>(())
//! ```
//!
//! ## The session: a whole client, still without IO
//!
//! Above the sequencer, a [`Session`] holds the connection policy both
//! client builds share: endpoints and failover, backoff with full jitter,
//! connect and dead-peer deadlines, publish ids and pending publishes,
//! request references, the silence check, resume positions. Its shell opens
//! sockets and sends frames when [`Session::poll_transmit`] says so, feeds
//! back what arrives, and sleeps until [`Session::poll_timeout`]:
//!
//! ```
//! use seqsync_core::{Millis, Session, SessionConfig, SessionEvent, Transmit};
//!
//! let mut session = Session::<String>::new(SessionConfig::new("ws://h/ws"), [9; 32], Millis(0))?;
//! session.subscribe(Millis(0), "room", Default::default())?;
//! let Some(Transmit::Connect { conn, .. }) = session.poll_transmit() else { unreachable!() };
//! // The socket failed: the session waits (full jitter) and tries again.
//! session.handle_closed(Millis(3), conn, "refused");
//! let retry_at = session.poll_timeout().expect("a retry is scheduled");
//! assert!(retry_at <= Millis(3 + 100));
//! assert!(std::iter::from_fn(|| session.poll_event())
//!     .any(|e| matches!(e, SessionEvent::Disconnected { .. })));
//! # Ok::<(), seqsync_core::Error>(())
//! ```
//!
//! ## What lives where
//!
//! - [`types`]: `Seq`, `SeqRange`, `Epoch`, `Millis`, `StreamName`, `StreamId`.
//! - [`Sequencer`] (`sequencer.rs`) routes by stream; the per-stream state
//!   machine (`stream.rs`) holds every rule of the contract; the reorder ring
//!   (`ring.rs`) buffers messages ahead of a gap; `timers.rs` keeps the
//!   deadlines.
//! - [`Session`] (`session.rs` and `session/`) is the whole client:
//!   `session/input.rs` the one inbound path ([`Session::handle_input`]
//!   decides what every server frame means), `session/connection.rs` the
//!   connection policy, `session/publishes.rs` and `publish.rs` publishes,
//!   `session/positions.rs` resume positions, `session/events.rs` what it
//!   asks of its shell and tells the application; `rng.rs` its seeded
//!   randomness. The sequencer's own events and requests (`event.rs`) know
//!   nothing of the session's.
//! - [`protocol`]: error codes, request references, the encoder of client
//!   frames and [`InboundFrame`](protocol::InboundFrame) (a server frame's
//!   members judged once, whichever shell read them) in every build; with
//!   the feature `json` (on by default) the serde types of every v1 frame
//!   and their parsers.
//! - [`Config`], [`Error`], [`Event`], [`Request`], [`StreamStats`].
//!
//! ## `no_std`
//!
//! Without its `std` feature (on with `json`, so by default) the crate is
//! `#![no_std]` and needs only `alloc`: the browser build leaves std's
//! panic and formatting machinery out.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

/// The part of std's prelude the crate uses, from `alloc`.
mod prelude {
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec;
    pub(crate) use alloc::vec::Vec;
}

pub mod adapter;
mod config;
mod error;
mod event;
mod map;
pub mod protocol;
mod publish;
mod ring;
mod rng;
mod sequencer;
mod session;
mod stats;
mod stream;
mod timers;
pub mod types;

pub use config::{Config, SessionConfig};
pub use error::{Error, LimitSide};
pub use event::{Event, Request, ResetReason, StalledRequest, StreamPhase};
pub use publish::PublishId;
pub use sequencer::{Sequencer, SubscribeOptions, idle_stream_bytes};
pub use session::{
    CloseReason, ConnId, Input, PublishError, Session, SessionEvent, SessionStats, StopReason,
    Transmit,
};
pub use stats::StreamStats;
pub use types::{
    DeliveryMode, Epoch, MAX_SEQ, Millis, Seq, SeqRange, StartAt, StreamId, StreamName,
};
