//! Sequencer configuration: a plain struct with documented defaults.

use crate::prelude::*;

/// Tuning of a [`Sequencer`](crate::Sequencer). Every field has a sane default.
///
/// ```
/// use seqsync_core::Config;
/// let config = Config { gap_timeout_ms: 50, ..Config::default() };
/// assert_eq!(config.window, 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Reorder window in seqs: a stream buffers messages up to
    /// `window - 1` ahead of the next expected seq. Messages further ahead
    /// are dropped (counted in `StreamStats::dropped`) and fetched once the
    /// window reaches them, so memory per stream is bounded by
    /// `window` slots whatever seq a peer sends. Rounded up to a power of
    /// two, at least 2, at most 2^20.
    pub window: u32,
    /// How long a hole may stay open before its range is requested. Reordering
    /// that heals within this time costs no request.
    pub gap_timeout_ms: u64,
    /// First wait for a history or snapshot response before asking again.
    pub request_timeout_ms: u64,
    /// Longest wait between retries; the wait doubles from
    /// `request_timeout_ms` up to this.
    pub max_backoff_ms: u64,
    /// After this many unanswered attempts for one range, a
    /// `Event::Stalled` tells the application (retries go on at
    /// `max_backoff_ms`).
    pub stall_after_attempts: u32,
    /// Largest range asked for in one history request.
    pub max_fetch: u32,
    /// Most streams one sequencer tracks.
    pub max_streams: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            window: 1024,
            gap_timeout_ms: 100,
            request_timeout_ms: 2_000,
            max_backoff_ms: 30_000,
            stall_after_attempts: 5,
            max_fetch: 512,
            max_streams: 100_000,
        }
    }
}

impl Config {
    /// The window actually used: a power of two in `2..=2^20`.
    pub fn effective_window(&self) -> u32 {
        self.window.clamp(2, 1 << 20).next_power_of_two()
    }

    /// Wait before attempt `attempt + 1` (attempt 0 is the first request).
    pub(crate) fn backoff(&self, attempt: u32) -> u64 {
        let factor = 1u64 << attempt.min(20);
        self.request_timeout_ms
            .saturating_mul(factor)
            .min(self.max_backoff_ms.max(self.request_timeout_ms))
    }
}

/// Tuning of a [`Session`](crate::Session): where to connect and the whole
/// connection policy. Every field but `endpoints` has a default.
///
/// ```
/// use seqsync_core::SessionConfig;
/// let config = SessionConfig {
///     heartbeat_timeout_ms: 3_000,
///     ..SessionConfig::new("ws://127.0.0.1:8080/ws")
/// };
/// assert_eq!(config.endpoints.len(), 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// WebSocket URLs of the servers, tried in turn (failover).
    pub endpoints: Vec<String>,
    /// Access token, sent percent-encoded as the `token` query parameter.
    pub token: Option<String>,
    /// The sequencer's tuning (window, gap timeout, request timeouts).
    pub core: Config,
    /// Bound of the first reconnect wait; the bound doubles with each
    /// failure in a row up to `reconnect_max_ms`, and each wait is drawn
    /// uniformly between 0 and the bound (full jitter).
    pub reconnect_initial_ms: u64,
    /// Largest bound of a reconnect wait.
    pub reconnect_max_ms: u64,
    /// A connection that stayed open this long resets the backoff when it
    /// ends; one that ends sooner counts as a failure, so a server that
    /// accepts and drops every connection is not hammered.
    pub stable_after_ms: u64,
    /// Longest wait for one connection attempt to open.
    pub connect_timeout_ms: u64,
    /// How long the first connection (after the start, or after
    /// `Session::connect`) may take, over all attempts, before the session
    /// gives up and stops until `Session::connect` (0: never give up).
    pub initial_connect_timeout_ms: u64,
    /// A connection on which nothing arrived for this long, while the
    /// session expects traffic (a subscription, or a publish waiting for
    /// its ack), is declared dead and replaced.
    pub heartbeat_timeout_ms: u64,
    /// Period of the silence check (`Sequencer::resubscribe_silent`): a live
    /// stream that heard nothing for a whole period subscribes again. Keep
    /// it several server heartbeats long; 0 turns the check off (for
    /// servers that send no heartbeats).
    pub silence_timeout_ms: u64,
    /// How long a publish waits for its ack, across reconnects and retries.
    pub publish_timeout_ms: u64,
    /// Most publishes waiting for an ack at once.
    pub max_pending_publishes: usize,
    /// Largest `publish` frame, in bytes: the server's frame limit (65536
    /// for the reference server). Larger publishes fail at once.
    pub max_publish_bytes: usize,
    /// Largest frame accepted from the server, in bytes; the shell refuses
    /// larger frames before parsing them.
    pub max_frame_bytes: usize,
    /// How often resume positions are reported (`SessionEvent::Position`)
    /// while messages flow; 0 reports them only on `checkpoint`,
    /// `unsubscribe` and `close`.
    pub persist_interval_ms: u64,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            endpoints: Vec::new(),
            token: None,
            core: Config::default(),
            reconnect_initial_ms: 100,
            reconnect_max_ms: 10_000,
            stable_after_ms: 5_000,
            connect_timeout_ms: 5_000,
            initial_connect_timeout_ms: 10_000,
            heartbeat_timeout_ms: 5_000,
            silence_timeout_ms: 10_000,
            publish_timeout_ms: 30_000,
            max_pending_publishes: 10_000,
            max_publish_bytes: 65_536,
            max_frame_bytes: 1 << 20,
            persist_interval_ms: 0,
        }
    }
}

impl SessionConfig {
    /// Defaults with one endpoint.
    pub fn new(endpoint: impl Into<String>) -> SessionConfig {
        SessionConfig {
            endpoints: vec![endpoint.into()],
            ..SessionConfig::default()
        }
    }

    /// The bound of the reconnect wait after `failures` failures in a row.
    pub(crate) fn reconnect_bound(&self, failures: u32) -> u64 {
        let initial = self.reconnect_initial_ms.max(1);
        initial
            .saturating_mul(1u64 << failures.min(32))
            .min(self.reconnect_max_ms.max(initial))
    }
}
