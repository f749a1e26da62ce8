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
//!  client ──tcp──> admission (limits per server and per address,
//!                  deadline for the request head) ──upgrade──>
//!  client ──ws──> reader (conn) ──publish──> stream hub: sequencing point ──append──> Log
//!                   │                          (a commit task while        (SQLite / Redis /
//!                   │ subscribe/history/        publishes wait)              memory)
//!                   │ snapshot (Log reads,         │ after commit: head, fan-out, acks
//!                   │ answers from `decide`)       v
//!                   v                     Outbound queue (per connection)
//!               Outbound queue  <───────  [control: ack head reset error subscribed snapshot history]
//!                                         [live: msg ... bounded, drops when full]
//!                   │
//!                 writer ── fault injection (live msgs only) ──ws──> client
//! ```
//!
//! - **One sequencing point per live stream** ([`stream_hub`]): publishes
//!   of every connection are queued on the stream's hub and committed in
//!   batches, each batch appended to the log in one atomic step (one SQLite
//!   transaction, one Redis script); only then does the hub advance its
//!   cached head, fan the new `msg` frames out and queue the `ack`s. An ack
//!   therefore always names a committed message. Seqs come from the log,
//!   contiguous from 1; retried publish ids get their first seq back while
//!   the [`log::IdWindow`] remembers them.
//! - **Reading creates nothing**: `history` and `snapshot` read the log; a
//!   stream becomes live (a hub, counted against [`Limits::max_streams`])
//!   only when subscribed or published to, and is let go once nobody uses
//!   it, so stream names from a flood cost nothing lasting.
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
//! - **Several instances over one Redis or Redis Cluster**
//!   ([`Storage::Redis`], [`Storage::RedisCluster`]): seqs are assigned in
//!   Redis by one script per batch, and each instance's follower reads the
//!   streams that have subscribers on it, when an append announces itself,
//!   one `XREAD` per stream; every live message reaches the subscribers
//!   through it, the instance's own appends included. A Redis that loses
//!   its data gives streams a new epoch, so clients reset.
//! - **Fault injection** ([`faults`]): deterministic from a seed; drops,
//!   duplicates, reorders or delays live `msg` frames and cuts connections,
//!   for every connection (`--faults`) or one (`/ws?faults=...`).
//! - **Tokens** ([`auth`]): optional HMAC-SHA256 tokens (`/ws?token=...`)
//!   naming readable and writable stream patterns; without a valid token the
//!   upgrade is refused (401), and a connection whose token expires is
//!   closed (1008, `token expired`).
//!
//! Bad input never panics and never costs unbounded memory: each case gets an
//! `error` frame with its code and the connection goes on, except a frame
//! above the hard size limit (close code 1009), text that is not UTF-8
//! (1007) and a flood of refused frames (1008).
//!
//! ## Error codes
//!
//! | input | `error` code | connection |
//! | --- | --- | --- |
//! | not JSON, not an object, a repeated member, no or non-string `type`, missing or mistyped member, binary frame, publish `id` empty or over 128 bytes, a `ref` that is not a string of 1 to 64 bytes | `malformed_frame` | stays |
//! | a seq (`since`, `from`, `to`) or an epoch that is negative, fractional or written with an exponent | `malformed_frame` | stays |
//! | a seq (`since`, `from`, `to`) above 2^53-1, however many digits | `seq_out_of_range` | stays |
//! | unknown `type` | `unknown_type` | stays |
//! | frame over `--max-frame-bytes` | `frame_too_large` | stays |
//! | frame over `--hard-frame-bytes` | (not read) | closed, 1009 |
//! | text frame that is not UTF-8 | (not read) | closed, 1007 |
//! | history `from` = 0 or `from > to` | `invalid_range` | stays |
//! | history `from` beyond the head (a stream never published to has head 0) | `range_beyond_head` | stays |
//! | stream name empty, over 256 bytes or with control characters | `invalid_stream` | stays |
//! | a subscribe or publish naming another stream while the client's address holds `--max-streams-per-ip` live streams, or the server `--max-streams` | `too_many_streams` | stays |
//! | stream not allowed by the token | `unauthorized` | stays |
//! | the token expired | (none) | closed, 1008 |
//! | subscription beyond `--max-subscriptions` | `too_many_subscriptions` | stays |
//! | publish beyond `--publish-rate` | `rate_limited` | stays |
//! | unsubscribe of a stream not subscribed | `not_subscribed` | stays |
//! | the log failed | `internal` | stays |
//! | more error frames in one second than `--max-errors-per-sec` | (flood) | closed, 1008 |
//!
//! Each error frame's `ref` names the refused frame's `ref`, else its
//! publish `id`, else its stream, when the frame had one.
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

mod admission;
pub mod auth;
mod config;
mod conn;
mod decide;
pub mod faults;
mod frame;
pub mod log;
mod memory;
pub mod metrics;
mod outbound;
mod server;
mod state;
pub mod stream_hub;
mod tls;
mod writer;

pub use config::{Limits, ServerConfig, Storage};
pub use log::{IdWindow, Retention};
pub use metrics::MetricsSnapshot;
pub use seqsync_core::protocol::{ErrorCode, MAX_PUBLISH_ID_LEN};
pub use server::{RunningServer, Server, ServerError};
pub use tls::{TlsConfig, TlsError};
