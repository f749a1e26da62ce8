//! # seqsync-server
//!
//! The reference server of seqsync: it speaks protocol v1 over WebSocket
//! (`/ws`), keeps every stream in a [`log::Log`] (SQLite on disk, Redis
//! Streams shared by several instances, or memory), and serves `/healthz`,
//! `/metrics` (Prometheus text) and static files.
//!
//! ## Architecture
//!
//! ```text
//!  client ──ws──> reader ──publish──> stream sequencing point ──append──> Log
//!                   │                    │ (one task per stream,          (SQLite / memory)
//!                   │ subscribe/history/ │  batches appends)
//!                   │ snapshot (Log reads)│
//!                   v                    v  after commit: head, fan-out, acks
//!               Outbound queue  <────────┘
//!               [control: ack head reset error subscribed snapshot history]
//!               [live: msg ... bounded, drops when full]
//!                   │
//!                 writer ── fault injection (live msgs only) ──ws──> client
//! ```
//!
//! - **One sequencing point per stream**: a task that owns the
//!   stream's publish channel. It takes publishes in batches, appends each
//!   batch to the log in one atomic step (one SQLite transaction), and only
//!   then advances the cached head, fans the new `msg` frames out and queues
//!   the `ack`s. An ack therefore always names a committed message, and a
//!   restart never loses an acknowledged publish. Seqs come from the log,
//!   contiguous from 1; retried publish ids get their first seq back.
//! - **Subscribe registers first**, then reads the snapshot or the head, so
//!   no live message can fall between the answer and the live flow (some may
//!   arrive twice; the client's sequencer drops them).
//! - **Outbound queue per connection** with two parts: control frames are
//!   always sent before live ones; the live part is bounded
//!   ([`Limits::live_queue`]) and drops new frames when full (counted in
//!   `/metrics`), so a slow reader costs bounded memory and recovers through
//!   `head` heartbeats and `history`. The control part is bounded by
//!   back-pressure: the reader stops reading a connection's requests while
//!   its control queue is full.
//! - **The `Log` trait is synchronous** ([`log`]): SQLite and a map behind a
//!   mutex are synchronous by nature; a blocking backend is called through
//!   `spawn_blocking` once per batch, the memory log inline.
//! - **Several instances over one Redis** ([`Storage::Redis`]): seqs are
//!   assigned in Redis by one script per batch, and each instance runs a
//!   follower (one blocking `XREAD` over the streams it has open) through
//!   which every live message reaches its subscribers, its own appends
//!   included: one path, in seq order, no double delivery; the head in
//!   heartbeats is what the follower last read from Redis. A Redis that
//!   loses its data gives streams a new epoch, so clients reset.
//! - **Fault injection** ([`faults`]): deterministic from a seed; drops,
//!   duplicates, reorders or delays live `msg` frames and cuts connections,
//!   for every connection (`--faults`) or one (`/ws?faults=...`).
//! - **Tokens** ([`auth`]): optional HMAC-SHA256 tokens (`/ws?token=...`)
//!   naming readable and writable stream patterns.
//!
//! Bad input never panics and never costs unbounded memory: each case gets an
//! `error` frame with its code and the connection goes on, except a frame
//! above the hard size limit (close code 1009) and a flood of bad frames
//! (close code 1008).
//!
//! ## Error codes
//!
//! | input | `error` code | connection |
//! | --- | --- | --- |
//! | not JSON, not an object, no or non-string `type`, missing or mistyped field, binary frame, publish `id` empty or over 128 bytes | `malformed_frame` | stays |
//! | unknown `type` | `unknown_type` | stays |
//! | frame over `--max-frame-bytes` | `frame_too_large` | stays |
//! | frame over `--hard-frame-bytes` | (not read) | closed, 1009 |
//! | a seq (`since`, `from`, `to`) negative, fractional or over 2^53-1 | `seq_out_of_range` | stays |
//! | history `from` = 0 or `from > to` | `invalid_range` | stays |
//! | history `from` beyond the head | `range_beyond_head` | stays |
//! | stream name empty, over 256 bytes or with control characters; a new stream beyond `--max-streams` | `invalid_stream` | stays |
//! | stream not allowed by the token | `unauthorized` | stays |
//! | subscription beyond `--max-subscriptions` | `too_many_subscriptions` | stays |
//! | publish beyond `--publish-rate` | `rate_limited` | stays |
//! | unsubscribe of a stream not subscribed | `not_subscribed` | stays |
//! | the log failed | `internal` | stays |
//! | more error frames in one second than `max(1000, --publish-rate)` | (flood) | closed, 1008 |
//!
//! Each error frame's `ref` names the offending publish `id`, or else the
//! stream, when the frame had one.
//!
//! ## Starting a server in-process
//!
//! ```no_run
//! # async fn demo() -> Result<(), seqsync_server::ServerError> {
//! use seqsync_server::{Server, ServerConfig};
//!
//! let server = Server::start(ServerConfig::for_tests()).await?; // memory log, 127.0.0.1:0
//! println!("connect to {}", server.ws_url());
//! // ... run clients against it ...
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

pub mod auth;
mod config;
mod conn;
pub mod faults;
mod follow;
mod hub;
pub mod log;
pub mod metrics;
mod outbound;
mod server;

pub use config::{Limits, ServerConfig, Storage};
pub use conn::MAX_PUBLISH_ID_LEN;
pub use log::Retention;
pub use metrics::MetricsSnapshot;
pub use server::{RunningServer, Server, ServerError};
