//! Sequencer configuration: a plain struct with documented defaults.

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
